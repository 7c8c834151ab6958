r"""Modified Bessel functions of the second kind, K_0 and K_1, as scaled and product forms.

`jax.scipy.special` has no K_0 or K_1, and the scattering integral of eq. (20) needs K_1 over
many decades of its argument, so this module provides float64-accurate (relative error about
1e-15) pure `jax.numpy` kernels:

- `k0e(x)` $= e^x K_0(x)$ and `k1e(x)` $= e^x K_1(x)$ for $x > 0$;
- `xk0(x)` $= x K_0(x)$ and `xk1(x)` $= x K_1(x)$ for $x \ge 0$ (values 0 and 1 at $x = 0$);
- `xk1e(x)` $= x e^x K_1(x)$ for $x \ge 0$ (value 1 at $x = 0$), the form eq. (20) needs.

For $x \le 2$ they sum the ascending series (Abramowitz & Stegun 9.6.10-9.6.13) in
$t = x^2/4$ by Horner's rule; for $x > 2$ they evaluate, by Clenshaw's recurrence, Chebyshev
expansions in $w = 4/x - 1$ of $\sqrt{2x/\pi}\, e^x K_\nu(x)$, fitted with mpmath
(`scripts/gen_bessel_coeffs.py`). Both branches are evaluated on safe arguments and selected
with `jnp.where` (the "double where" trick), and every function carries a `jax.custom_jvp`
with the exact derivative, so gradients are accurate and never poisoned by the unused branch:

$$K_0' = -K_1, \qquad K_1' = -K_0 - K_1/x, \qquad (x K_1)' = -x K_0,
\qquad (x K_0)' = K_0 - x K_1.$$
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from . import _config  # noqa: F401
from ._bessel_coeffs import C0, C1, CD, P0, P1, Q0, Q1, X_SPLIT

_HALF_PI = math.pi / 2
_QUARTER_PI = math.pi / 4


def _horner(coeffs, t):
    r"""$\sum_k c_k t^k$ with `coeffs` lowest order first."""
    acc = jnp.full_like(t, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = acc * t + c
    return acc


def _clenshaw(coeffs, w):
    r"""$\sum_j c_j T_j(w)$ for $w \in [-1, 1]$ with `coeffs` $T_0$ first."""
    two_w = 2 * w
    b1 = jnp.zeros_like(w)
    b2 = jnp.zeros_like(w)
    for c in reversed(coeffs[1:]):
        b1, b2 = two_w * b1 - b2 + c, b1
    return w * b1 - b2 + coeffs[0]


def _small(x):
    r"""`(K_0(x), x K_1(x))` by the ascending series; for $0 < x \le 2$."""
    t = 0.25 * x * x
    log_half_x = jnp.log(0.5 * x)
    k0 = _horner(Q0, t) - log_half_x * _horner(P0, t)
    xk1 = 1.0 + t * (2 * log_half_x * _horner(P1, t) - _horner(Q1, t))
    return k0, xk1


def _small_xk1(x):
    r"""$x K_1(x)$ by the ascending series, without the K_0 polynomials; for $0 < x \le 2$."""
    t = 0.25 * x * x
    return 1.0 + t * (2 * jnp.log(0.5 * x) * _horner(P1, t) - _horner(Q1, t))


def _large(coeffs, x):
    r"""$\sqrt{2x/\pi}\, e^x K_\nu(x)$ from its Chebyshev expansion; for $x > 2$."""
    return _clenshaw(coeffs, 4 / x - 1)


def _large_scaled(coeffs, x):
    r"""$e^x K_\nu(x)$ from the Chebyshev expansion `coeffs` of $\sqrt{2x/\pi}\, e^x K_\nu(x)$;
    for $x > 2$."""
    return jnp.sqrt(_QUARTER_PI * (2 / x)) * _large(coeffs, x)


def _split(x):
    r"""Boolean mask of the series branch, and safe arguments for both branches."""
    small = x <= X_SPLIT
    xs = jnp.where(small, x, 1.0)
    xl = jnp.where(small, 4.0, x)
    return small, xs, xl


def _as_float(x):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


@jax.custom_jvp
def k0e(x):
    r"""Exponentially scaled modified Bessel function of the second kind of order 0.

    $$\mathrm{k0e}(x) = e^x K_0(x), \qquad x > 0.$$

    **Arguments:**

    - `x`: positive real array (float64 recommended).

    **Returns:**

    $e^x K_0(x)$, same shape as `x` (`inf` at $x = 0$). Relative error about 1e-15.
    """
    x = _as_float(x)
    small, xs, xl = _split(x)
    k0, _ = _small(xs)
    return jnp.where(small, jnp.exp(xs) * k0, _large_scaled(C0, xl))


@jax.custom_jvp
def k1e(x):
    r"""Exponentially scaled modified Bessel function of the second kind of order 1.

    $$\mathrm{k1e}(x) = e^x K_1(x), \qquad x > 0.$$

    **Arguments:**

    - `x`: positive real array (float64 recommended).

    **Returns:**

    $e^x K_1(x)$, same shape as `x` (`inf` at $x = 0$). Relative error about 1e-15.
    """
    x = _as_float(x)
    small, xs, xl = _split(x)
    return jnp.where(small, jnp.exp(xs) * _small_xk1(xs) / xs, _large_scaled(C1, xl))


def _xk_nu_large(coeffs, xl):
    # x K_nu(x) = e^{-x/2} sqrt(pi x/2) f_nu(x) e^{-x/2}: splitting e^{-x} keeps full precision
    # until the result itself leaves the normal float64 range.
    half = jnp.exp(-0.5 * xl)
    return (half * jnp.sqrt(_HALF_PI * xl) * _large(coeffs, xl)) * half


@jax.custom_jvp
def xk0(x):
    r"""The product $x K_0(x)$, smooth and finite down to $x = 0$.

    $$\mathrm{xk0}(x) = x K_0(x), \qquad x \ge 0, \qquad \mathrm{xk0}(0) = 0.$$

    **Arguments:**

    - `x`: non-negative real array.

    **Returns:**

    $x K_0(x)$, same shape as `x`. Its derivative $K_0(x) - x K_1(x)$ diverges
    logarithmically at $x = 0$ (returned as `inf` there).
    """
    x = _as_float(x)
    small, xs, xl = _split(x)
    xs0 = jnp.where(xs > 0, xs, 1.0)
    k0, _ = _small(xs0)
    out_small = jnp.where(xs > 0, xs * k0, 0.0)
    return jnp.where(small, out_small, _xk_nu_large(C0, xl))


@jax.custom_jvp
def xk1(x):
    r"""The product $x K_1(x)$, smooth and finite down to $x = 0$.

    $$\mathrm{xk1}(x) = x K_1(x), \qquad x \ge 0, \qquad \mathrm{xk1}(0) = 1.$$

    **Arguments:**

    - `x`: non-negative real array.

    **Returns:**

    $x K_1(x)$, same shape as `x`; derivative $-x K_0(x)$ (0 at $x = 0$).
    """
    x = _as_float(x)
    small, xs, xl = _split(x)
    xs0 = jnp.where(xs > 0, xs, 1.0)
    out_small = jnp.where(xs > 0, _small_xk1(xs0), 1.0)
    return jnp.where(small, out_small, _xk_nu_large(C1, xl))


@jax.custom_jvp
def xk1e(x):
    r"""The scaled product $x e^x K_1(x)$, smooth and finite down to $x = 0$.

    $$\mathrm{xk1e}(x) = x e^x K_1(x) \sim \sqrt{\pi x/2}, \qquad x \ge 0,
    \qquad \mathrm{xk1e}(0) = 1.$$

    **Arguments:**

    - `x`: non-negative real array.

    **Returns:**

    $x e^x K_1(x)$, same shape as `x`; derivative $x e^x (K_1(x) - K_0(x))$ (1 at $x = 0$).
    """
    x = _as_float(x)
    small, xs, xl = _split(x)
    xs0 = jnp.where(xs > 0, xs, 1.0)
    out_small = jnp.where(xs > 0, jnp.exp(xs) * _small_xk1(xs0), 1.0)
    return jnp.where(small, out_small, jnp.sqrt(_HALF_PI * xl) * _large(C1, xl))


def _k1e_minus_k0e(x):
    r"""$e^x (K_1(x) - K_0(x))$ for $x > 0$, without the cancellation of the difference.

    For $x > 2$ it uses its own expansion of $2x\sqrt{2x/\pi}\, e^x (K_1 - K_0) \to 1$; the
    difference of `k1e` and `k0e` would lose $\log_{10}(2x)$ digits. Used by the derivatives.
    """
    small, xs, xl = _split(x)
    k0, xk1 = _small(xs)
    out_small = jnp.exp(xs) * (xk1 / xs - k0)
    out_large = _large_scaled(CD, xl) / (2 * xl)
    return jnp.where(small, out_small, out_large)


@k0e.defjvp
def _k0e_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return k0e(x), -_k1e_minus_k0e(_as_float(x)) * dx


@k1e.defjvp
def _k1e_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    x = _as_float(x)
    b = k1e(x)
    return b, (_k1e_minus_k0e(x) - b / x) * dx


@xk0.defjvp
def _xk0_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    x = _as_float(x)
    # K_0(x) = e^{-x} k0e(x); at x = 0 this is +inf, the true (divergent) derivative.
    pos = x > 0
    xp = jnp.where(pos, x, 1.0)
    k0 = jnp.where(pos, jnp.exp(-xp) * k0e(xp), jnp.inf)
    return xk0(x), (k0 - xk1(x)) * dx


@xk1.defjvp
def _xk1_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return xk1(x), -xk0(x) * dx


@xk1e.defjvp
def _xk1e_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    x = _as_float(x)
    small, xs, xl = _split(x)
    # d/dx [x e^x K_1] = e^x (x K_1 - x K_0): from the products for small x (finite at x = 0),
    # from the cancellation-free difference for large x.
    deriv = jnp.where(small, jnp.exp(xs) * (xk1(xs) - xk0(xs)), xl * _k1e_minus_k0e(xl))
    return xk1e(x), deriv * dx
