#!/usr/bin/env bash
# Set up a fresh virtual environment with the test extras and run lint + the whole test suite.
# This is the README's second Quickstart command; .ci/run calls this very script.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-test
. .venv-test/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[test]"
ruff format --check jaxcoll tests benchmarks docs
ruff check jaxcoll tests benchmarks docs
# two workers (the machine has two cores); one file per worker keeps module fixtures single
python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile "$@"
