#!/usr/bin/env bash
# Set up a virtual environment with jaxcoll and run the main job, `jaxcoll reproduce`.
# This is the README's first Quickstart command.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e .
jaxcoll reproduce "$@"
