"""Numerical configuration: jaxcoll computes in float64 unless told otherwise.

Set the environment variable ``JAXCOLL_X64=0`` before importing jaxcoll to leave JAX's
default (float32) untouched, e.g. for fast single-precision runs on a GPU.
"""

import os

import jax

if os.environ.get("JAXCOLL_X64", "1") not in ("0", "false", "False", "no"):
    jax.config.update("jax_enable_x64", True)
