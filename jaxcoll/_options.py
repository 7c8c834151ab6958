r"""`SolverOptions`: the solver settings shared by `evolve`, `ergotropy_curve`, the trajectory
functionals and `optimize_ergotropy`.

One frozen, hashable object (every field static), so that a compiled function keys its cache on
it, and one place where each setting is named, checked and documented. Every function that
takes `options=` also takes the fields as keywords (`rtol=`, `atol=`, `mode=`, ...); a keyword
given explicitly overrides the field of `options`.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._solver import Rosenbrock

__all__ = ["SolverOptions"]

_NORMS = ("max", "rms")
_MODES = ("reverse", "forward", "scaling")
_TRIDIAGONAL = ("auto", "cyclic", "partition", "lapack")
_TABLEAUS = ("rodas5p", "rodas4")


class SolverOptions(eqx.Module):
    r"""Solver settings, shared by `evolve`, `ergotropy_curve`, the trajectory functionals
    (`ergotropy_at`, ...) and `optimize_ergotropy`; pass one as `options=`, or any field as a
    keyword of those functions (a keyword other than `None` overrides the field; `None` means
    "not given", so it cannot reset a field of `options`: build a new `SolverOptions` for that).

    **Fields:**
    - `rtol`, `atol`: local error tolerances of the adaptive step (default `1e-8`, `1e-10`);
      on the exact path `atol` bounds the 1-norm error of the populations instead.
    - `max_steps`: the most steps the adaptive solver may take; `None` (default): 100 000
      for `evolve` and `ergotropy_curve`, 16 384 for the functionals (whose reverse-mode
      checkpoints are laid out for it).
    - `norm`: `"max"` (default; every entry of the state within `atol + rtol |y|` per step,
      whatever $d$) or `"rms"` (the root mean square, as SciPy and Diffrax do by default:
      fewer steps, but an error spread over a long ladder counts less).
    - `solver`: the integrator. `None` or `"auto"` (default): for the spin's population
      ladder (`ergotropy_curve`, the functionals) the exact propagation up to $d = 64$ levels
      in float64, the adaptive Rosenbrock solver above; for `evolve` always the latter.
      `"exponential"`: exact propagation of the population ladder by uniformisation
      (`_expm.py`; no time steps, so `rtol` and `max_steps` do not apply; not for `evolve`).
      `"rodas5p"`, `"rodas4"` or a `Rosenbrock` instance: the adaptive L-stable Rosenbrock
      solver with that tableau.
    - `tridiagonal`: the linear solves of the adaptive solver on tridiagonal blocks (the
      spin's coherence bands and population ladder): `"auto"` (default; on CPU cyclic
      reduction below 8192 levels, the partitioned Thomas sweep above and for batches of
      chains; cyclic reduction on accelerators), `"cyclic"`, `"partition"` or `"lapack"`.
      A choice of linear algebra, not of integrator: results agree to the tolerances.
    - `mode`: how derivatives are taken. `"reverse"` (default): Diffrax's
      `RecursiveCheckpointAdjoint`; `"forward"`: `diffrax.ForwardMode` (differentiate with
      `jax.jvp`/`jax.jacfwd`); `"scaling"` (functionals and `optimize_ergotropy` only): one
      forward tangent and the scaling law of the spin's flow.
    - `checkpoints`: checkpoint budget of the reverse mode (`None`: Diffrax's scheme for
      `max_steps`).
    - `dtype`: `None` (float64) or `jnp.float32` (faster on GPUs; tolerances below about
      `1e-6` are then out of reach). The exact path computes in float64.
    - `progress`: show a tqdm progress bar of the adaptive solve.
    """

    rtol: float = eqx.field(static=True, default=1e-8)
    atol: float = eqx.field(static=True, default=1e-10)
    max_steps: int | None = eqx.field(static=True, default=None)
    norm: str = eqx.field(static=True, default="max")
    solver: Any = eqx.field(static=True, default=None)
    tridiagonal: str = eqx.field(static=True, default="auto")
    mode: str = eqx.field(static=True, default="reverse")
    checkpoints: int | None = eqx.field(static=True, default=None)
    dtype: Any = eqx.field(static=True, default=None)
    progress: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        for name in ("rtol", "atol"):
            x = getattr(self, name)
            if isinstance(x, jax.Array):
                raise TypeError(
                    f"{name} must be a Python number (a static setting), got a JAX array"
                )
            if isinstance(x, bool) or not isinstance(x, numbers.Real) or not _finite_positive(x):
                raise ValueError(f"{name} must be a finite number > 0, got {x!r}")
        m = self.max_steps
        if m is not None and (isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 1):
            raise ValueError(f"max_steps must be a positive integer or None, got {m!r}")
        if self.norm not in _NORMS:
            raise ValueError(f"norm must be 'max' or 'rms', got {self.norm!r}")
        s = self.solver
        if isinstance(s, str) and s not in ("auto", "exponential", *_TABLEAUS):
            raise ValueError(
                f"solver must be None, 'auto', 'exponential', 'rodas5p', 'rodas4' or a "
                f"Rosenbrock instance, got {s!r}"
            )
        if s is not None and not isinstance(s, str | Rosenbrock):
            raise TypeError(f"solver must be a string or a Rosenbrock instance, got {s!r}")
        if self.tridiagonal not in _TRIDIAGONAL:
            raise ValueError(
                f"tridiagonal must be 'auto', 'cyclic', 'partition' or 'lapack', "
                f"got {self.tridiagonal!r}"
            )
        if self.mode not in _MODES:
            raise ValueError(f"mode must be 'reverse', 'forward' or 'scaling', got {self.mode!r}")
        c = self.checkpoints
        if c is not None and (isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 1):
            raise ValueError(f"checkpoints must be a positive integer or None, got {c!r}")
        if self.dtype is not None and _dtype_or_none(self.dtype) not in (
            jnp.dtype(jnp.float32).name,
            jnp.dtype(jnp.float64).name,
        ):
            raise ValueError(f"dtype must be None, jnp.float32 or jnp.float64, got {self.dtype}")
        if not isinstance(self.progress, bool):
            raise TypeError(f"progress must be True or False, got {self.progress!r}")

    @property
    def exponential(self) -> bool | None:
        """`True` for `solver="exponential"`, `False` for a Rosenbrock solver, `None` for auto."""
        if self.solver is None or self.solver == "auto":
            return None
        return self.solver == "exponential"

    def steps(self, default: int) -> int:
        """`max_steps`, or `default` where it is `None`."""
        return default if self.max_steps is None else int(self.max_steps)

    def adjoint(self) -> diffrax.AbstractAdjoint:
        """The Diffrax adjoint of `mode`: `ForwardMode` for `"forward"`, else the checkpointed
        reverse mode."""
        if self.mode == "forward":
            return diffrax.ForwardMode()
        return diffrax.RecursiveCheckpointAdjoint(checkpoints=self.checkpoints)


def _dtype_or_none(x):
    """The name of the dtype `x` stands for, or `None` where it stands for none."""
    try:
        return jnp.dtype(x).name
    except TypeError:
        return None


def _finite_positive(x) -> bool:
    return bool(x > 0 and np.isfinite(x))


_FIELDS = tuple(f.name for f in dataclasses.fields(SolverOptions))

# The old `method=` of `evolve`, `ergotropy_curve` and the functionals mixed the integrator
# ("exponential") with the tridiagonal algorithm ("cyclic", "lapack", "partition").
_LEGACY_METHOD = {
    "auto": {},
    "exponential": {"solver": "exponential"},
    "cyclic": {"solver": "rodas5p", "tridiagonal": "cyclic"},
    "partition": {"solver": "rodas5p", "tridiagonal": "partition"},
    "lapack": {"solver": "rodas5p", "tridiagonal": "lapack"},
}


def solver_options(
    options: SolverOptions | None, *, caller: str, base: dict | None = None, **keywords
) -> SolverOptions:
    """`options` (or `SolverOptions(**base)`) with the keywords that were given (not `None`)
    put in; the deprecated `method=` is translated to `solver=` and `tridiagonal=`.

    Unknown keywords raise a `TypeError` naming them and `caller`.
    """
    if options is None:
        options = SolverOptions(**(base or {}))
    elif not isinstance(options, SolverOptions):
        raise TypeError(f"options must be a SolverOptions, got {type(options).__name__}")
    method = keywords.pop("method", None)
    unknown = sorted(set(keywords) - set(_FIELDS))
    if unknown:
        raise TypeError(f"{caller}() got unexpected keyword arguments {unknown}")
    changes = {k: v for k, v in keywords.items() if v is not None}
    if method is not None:
        if method not in _LEGACY_METHOD:
            raise ValueError(
                f"method must be 'auto', 'exponential', 'cyclic', 'partition' or 'lapack', "
                f"got {method!r}"
            )
        new = _LEGACY_METHOD[method]
        spelled = ", ".join(f"{k}={v!r}" for k, v in new.items()) or "the defaults"
        warnings.warn(
            f"{caller}(method={method!r}) is deprecated: method= named the tridiagonal "
            f"algorithm or the exact path; use {spelled} (SolverOptions)",
            DeprecationWarning,
            stacklevel=3,
        )
        for k, v in new.items():
            changes.setdefault(k, v)
    return dataclasses.replace(options, **changes) if changes else options
