"""Numerical configuration: precision, and which backend's code paths run.

**Precision.** jaxcoll computes in float64 unless told otherwise. Set the environment variable
``JAXCOLL_X64=0`` before importing jaxcoll to leave JAX's default (float32) untouched, e.g. for
fast single-precision runs on a GPU.

**Backend paths.** A few operations have one implementation for the CPU and another for
accelerators (GPU, TPU), chosen when a function is traced:

- spectra of Hermitian matrices (`_evolve._spectrum`: general ergotropy, von Neumann entropy of
  stored states): on CPU NumPy's LAPACK `eigvalsh` through `jax.pure_callback`; on accelerators
  `jnp.linalg.eigvalsh` (cuSOLVER `syevd` on NVIDIA GPUs);
- the sorts of eq. (23) and of the passive energy (`_observables._sorted_form`): on CPU NumPy's
  stable sort through `jax.pure_callback` (rows of 512 entries or more); on accelerators
  `lax.sort`;
- the tridiagonal solver of the spin model's `tridiagonal="auto"` (`_evolve._spin_operator`): on CPU
  the partitioned Thomas sweep for long chains or large batches; on accelerators cyclic
  reduction, whose levels are vectorised (no sequential sweep).

The accelerator paths use no host callback, so nothing inside a traced solve leaves the device.
The linear algebra they use: `jax.lax.linalg.tridiagonal_solve` (cuSPARSE `gtsv2` on NVIDIA
GPUs; the short reduced system left by cyclic reduction, and `tridiagonal="lapack"`),
`jnp.linalg.eigvalsh` / `jnp.linalg.eigh` (cuSOLVER `syevd`: spectra of stored states,
`ergotropy`, `von_neumann_entropy`, `relative_entropy`, `CollisionalModel.entropy_production_rate`),
`lax.sort` (eq. 23), and LU factorisation with triangular solves (cuSOLVER `getrf`/`getrs`:
`jax.scipy.linalg.lu_factor` / `lu_solve` in the Rosenbrock steps of the general model's dense
generators, `jnp.linalg.solve` for its steady state and energy flows). No non-symmetric
eigendecomposition (`eig`) is used anywhere; `CollisionalModel` diagonalises its Hamiltonians
once, in NumPy, when it is built (outside any trace).

To run the accelerator paths on a CPU (tests, checking a GPU run before one is available), set
``JAXCOLL_BACKEND_PATHS=accelerator`` before importing jaxcoll, or use the context manager
`backend_paths("accelerator")` (which empties JAX's compilation caches on entry and exit, so
that functions traced before are traced again with the other paths). The default, ``"auto"``,
follows `jax.default_backend()`.
"""

from __future__ import annotations

import contextlib
import os

import jax

if os.environ.get("JAXCOLL_X64", "1") not in ("0", "false", "False", "no"):
    jax.config.update("jax_enable_x64", True)

_BACKEND_PATHS = ("auto", "cpu", "accelerator")


def _check_paths(value: str, name: str) -> str:
    if value not in _BACKEND_PATHS:
        raise ValueError(f"{name} must be one of {_BACKEND_PATHS}, got {value!r}")
    return value


_paths = _check_paths(os.environ.get("JAXCOLL_BACKEND_PATHS", "auto"), "JAXCOLL_BACKEND_PATHS")


def accelerator_paths() -> bool:
    """Whether code traced now takes the accelerator branches (see the module docstring)."""
    if _paths == "auto":
        return jax.default_backend() != "cpu"
    return _paths == "accelerator"


def platform_dependent(*args, cpu, default):
    """`jax.lax.platform_dependent(*args, cpu=cpu, default=default)`, unless the backend paths
    are forced: then `default` (forced `"accelerator"`) or `cpu` (forced `"cpu"`) is traced
    alone."""
    if _paths == "accelerator":
        return default(*args)
    if _paths == "cpu":
        return cpu(*args)
    return jax.lax.platform_dependent(*args, cpu=cpu, default=default)


@contextlib.contextmanager
def backend_paths(paths: str):
    """Trace jaxcoll's functions with the `"cpu"` or `"accelerator"` paths (or `"auto"`) inside
    the block, whatever the backend. JAX's caches are cleared on entry and exit, so that
    compiled functions are traced again."""
    global _paths
    _check_paths(paths, "paths")
    previous = _paths
    _paths = paths
    jax.clear_caches()
    try:
        yield
    finally:
        _paths = previous
        jax.clear_caches()
