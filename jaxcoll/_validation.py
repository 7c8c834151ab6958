"""Input checks that raise clear errors on concrete values and stay transparent under tracing.

Concrete (Python or NumPy) values are checked eagerly and raise ``ValueError``/``TypeError``
naming the argument. Traced values (inside ``jit``/``vmap``/``grad``) are checked at run time
with ``eqx.error_if``, whose return value is used so the check is not removed as dead code.
"""

from __future__ import annotations

import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True when ``x`` holds a value known at trace time (not a JAX tracer)."""
    leaves = jax.tree_util.tree_leaves(x)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def _as_float_array(name: str, x):
    if isinstance(x, bool | np.bool_):
        raise TypeError(f"{name} must be a real number, got a bool {x!r}")
    if isinstance(x, complex | np.complexfloating) or (
        hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.complexfloating)
    ):
        raise TypeError(f"{name} must be real, got a complex value")
    if not isinstance(x, numbers.Real | np.ndarray | jax.Array | np.generic):
        raise TypeError(f"{name} must be a real number or array, got {type(x).__name__}")
    return x


def _to_float(x):
    """Integers become floats (a Python float, or the default float dtype for arrays), so that
    ``spin_rates(4, 1, 1)`` and ``T_a=3`` work wherever ``4.0`` and ``3.0`` do; floats pass."""
    if isinstance(x, numbers.Integral):
        return float(x)
    if isinstance(x, np.ndarray | np.generic) and np.issubdtype(x.dtype, np.integer):
        return np.asarray(x, dtype=float)
    if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.integer):
        return x.astype(jnp.result_type(float))
    return x


def check_real(name: str, x, *, positive: bool = False, nonnegative: bool = False):
    """Check that ``x`` is real and finite (and optionally > 0 or >= 0); returns ``x``, with
    integers (Python, NumPy or JAX) turned into floats.

    Under tracing the check becomes a run-time ``eqx.error_if`` on the returned value.
    """
    x = _to_float(_as_float_array(name, x))
    if positive:
        what = "finite and > 0"
    elif nonnegative:
        what = "finite and >= 0"
    else:
        what = "finite"
    if is_concrete(x):
        arr = np.asarray(x, dtype=float)
        bad = ~np.isfinite(arr)
        if positive:
            bad |= ~(arr > 0)
        elif nonnegative:
            bad |= ~(arr >= 0)
        if np.any(bad):
            shown = arr if arr.ndim == 0 else arr[bad].ravel()[:3]
            raise ValueError(f"{name} must be {what}, got {shown}")
        return x
    xa = jnp.asarray(x)
    bad = ~jnp.isfinite(xa)
    if positive:
        bad = bad | ~(xa > 0)
    elif nonnegative:
        bad = bad | ~(xa >= 0)
    return eqx.error_if(xa, jnp.any(bad), f"{name} must be {what}")


def check_spin(J) -> float:
    """``J`` must be a concrete positive integer or half-integer; returns it as a float."""
    if isinstance(J, jax.core.Tracer):
        raise TypeError(
            "J sets the Hilbert-space dimension 2J+1 and must be a concrete number, not traced"
        )
    if isinstance(J, bool | np.bool_) or not isinstance(J, numbers.Real):
        raise TypeError(f"J must be a positive integer or half-integer, got {J!r}")
    twoJ = 2 * float(J)
    if not np.isfinite(twoJ) or twoJ < 1 or twoJ != round(twoJ):
        raise ValueError(
            f"J must be a positive integer or half-integer (1/2, 1, 3/2, ...), got {J!r}"
        )
    return round(twoJ) / 2


def check_rate_scale(gamma_tilde, density, coupling):
    """Exactly one rate scale: ``gamma_tilde`` alone, or ``density`` together with ``coupling``."""
    has_gt = gamma_tilde is not None
    has_dc = density is not None or coupling is not None
    if has_gt and has_dc:
        raise ValueError(
            "give exactly one rate scale: either gamma_tilde, or density and coupling (not both)"
        )
    if not has_gt and not has_dc:
        raise ValueError("give a rate scale: gamma_tilde, or both density and coupling")
    if has_dc and (density is None or coupling is None):
        missing = "coupling" if coupling is None else "density"
        raise ValueError(f"density and coupling go together: {missing} is missing")
    if has_gt:
        return check_real("gamma_tilde", gamma_tilde, positive=True), None, None
    return (
        None,
        check_real("density", density, positive=True),
        check_real("coupling", coupling),
    )


def check_int(name: str, x, *, minimum: int) -> int:
    """`x` as a Python `int` >= `minimum`; a float (even 2.0), a bool or a string is refused
    (`ValueError` naming `name`) rather than truncated."""
    if isinstance(x, bool) or not isinstance(x, int | np.integer) or int(x) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {x!r}")
    return int(x)


def check_box(name: str, b, *, positive: bool = False, strict: bool = True):
    """A search interval `(lo, hi)` of finite floats, `lo < hi` (`lo <= hi` when not
    `strict`); `positive`: both ends `> 0`. Errors name the argument."""
    if not isinstance(b, tuple | list) or len(b) != 2:
        raise ValueError(f"{name} must be a (lo, hi) pair, got {b!r}")
    lo = float(check_real(name, b[0], positive=positive))
    hi = float(check_real(name, b[1], positive=positive))
    if not (hi > lo if strict else hi >= lo):
        rel = "<" if strict else "<="
        raise ValueError(f"{name} bounds must satisfy lo {rel} hi, got ({lo:g}, {hi:g})")
    return lo, hi


def common_float(*args):
    """The arguments as arrays of one floating dtype: the promotion of their floating dtypes
    (float64 unless all are lower precision), the default float if none is floating."""
    arrays = [jnp.asarray(a) for a in args]
    floats = [a.dtype for a in arrays if jnp.issubdtype(a.dtype, jnp.floating)]
    dtype = np.result_type(*floats) if floats else jnp.result_type(float)
    return tuple(a.astype(dtype) for a in arrays)
