r"""The scattering integral $I(\alpha, s)$ of eq. (20), in closed form and by direct quadrature.

$$I(\alpha, s) = e^s \int_{\max\{0, s\}}^\infty dz\, e^{-(2+\alpha) z}
\sinh\!\left(2\sqrt{z}\sqrt{z - s}\right). \qquad (20)$$

The substitution $z = s/2 + (|s|/2)\cosh u$ turns eq. (20) into a Bessel integral,

$$I(\alpha, s) = \frac{|s|}{k}\, e^{-\alpha s/2} K_1\!\left(\frac{|s| k}{2}\right)
= \frac{2}{k^2}\, e^{-\alpha s/2}\, x K_1(x), \qquad k = \sqrt{\alpha(\alpha+4)},
\quad x = \frac{|s| k}{2},$$

smooth through $s = 0$, where $I(\alpha, 0) = 2/(\alpha(\alpha+4))$, and with the symmetry
$I(\alpha, -s) = e^{\alpha s} I(\alpha, s)$ (detailed balance of the rates of eq. (19)).

`scattering_integral_quad` evaluates eq. (20) directly, without Bessel functions, through
`log_threshold_integral`, a quadrature for integrals over these collision kinematics: an
independent check on the closed form. (Other interaction shapes have their own quadrature, over
momentum transfer, in `_profiles.py`.)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import _config  # noqa: F401
from ._bessel import xk1e
from ._validation import check_real, common_float

_LN2 = math.log(2.0)


def _validated(alpha, s):
    alpha, s = (np.asarray(a) if isinstance(a, list | tuple) else a for a in (alpha, s))
    alpha = check_real("alpha", alpha, positive=True)
    s = check_real("s", s)
    return common_float(alpha, s)


# ---------------------------------------------------------------------------------------------
# Closed form
# ---------------------------------------------------------------------------------------------


def _closed_form_parts(alpha, s):
    r"""`(e, h)` with $I = \frac{2}{\alpha(\alpha+4)}\, e^{e}\, h$ and $h = x e^x K_1(x)$.

    The exponent $e = -\alpha s/2 - x$ is combined analytically so that nothing overflows and
    nothing cancels: $e = -s(\alpha+k)/2$ for $s \ge 0$ and $e = s\, 2\alpha/(k+\alpha)$
    for $s < 0$.
    """
    k = jnp.sqrt(alpha) * jnp.sqrt(alpha + 4.0)
    pos = s >= 0
    # |s| takes the same branch as the exponent, so that at s = 0 both are differentiated from
    # the same side: d|s|/ds = 1 with de/ds = -(alpha + k)/2 gives dI/ds = -alpha I/2 exactly.
    abs_s = jnp.where(pos, s, -s)
    x = 0.5 * abs_s * k
    # 2 alpha/(k + alpha) = 2/(1 + sqrt(1 + 4/alpha)), the form whose alpha-derivative does not
    # cancel for large alpha.
    e = jnp.where(pos, -0.5 * s * (alpha + k), s * (2.0 / (1.0 + jnp.sqrt(1.0 + 4.0 / alpha))))
    # x overflows only for astronomically large |s| k, where e alone decides (I = 0, ln I = -inf).
    h = xk1e(jnp.minimum(x, 0.25 * float(jnp.finfo(x.dtype).max)))
    return e, h


@jax.jit
def _scattering_integral(alpha, s):
    e, h = _closed_form_parts(alpha, s)
    return (2.0 / (alpha * (alpha + 4.0))) * jnp.exp(e) * h


@jax.jit
def _log_scattering_integral(alpha, s):
    e, h = _closed_form_parts(alpha, s)
    return (_LN2 - jnp.log(alpha) - jnp.log(alpha + 4.0)) + e + jnp.log(h)


def scattering_integral(alpha, s):
    r"""The scattering integral $I(\alpha, s)$ of eq. (20), from its closed form.

    $$I(\alpha, s) = e^s \int_{\max\{0, s\}}^\infty dz\, e^{-(2+\alpha) z}
    \sinh\!\left(2\sqrt{z}\sqrt{z - s}\right)
    = \frac{2}{k^2}\, e^{-\alpha s/2}\, x K_1(x), \quad k = \sqrt{\alpha(\alpha+4)},
    \quad x = \frac{|s| k}{2}. \qquad (20)$$

    In the rates of eq. (19), $\alpha = E_R/k_B T_M$ and $s = \mp\hbar\Delta/E_R$.

    **Arguments:**

    - `alpha`: $\alpha = E_R/k_B T_M > 0$, real array.
    - `s`: the internal energy released in the collision in units of $E_R$, real array.

    **Returns:**

    $I(\alpha, s)$, broadcast over `alpha` and `s`; relative error about
    $10^{-15}\max(1, |\ln I|)$. It underflows to 0 for large positive $s$, where
    `log_scattering_integral` stays finite. Works under `jit`, `vmap` and `grad`; the gradient
    is finite at $s = 0$, where $\partial_s I = -\alpha I/2$ (the second $s$-derivative
    diverges logarithmically there).
    """
    return _scattering_integral(*_validated(alpha, s))


def log_scattering_integral(alpha, s):
    r"""The logarithm $\ln I(\alpha, s)$ of the scattering integral of eq. (20).

    $$\ln I(\alpha, s) = \ln\frac{2}{\alpha(\alpha+4)} + \left(-\frac{\alpha s}{2} - x\right)
    + \ln\!\left(x e^x K_1(x)\right), \qquad x = \frac{|s|\sqrt{\alpha(\alpha+4)}}{2},
    \qquad (20)$$

    with $-\alpha s/2 - x$ combined without cancellation. Finite wherever $\alpha > 0$, also
    where $I$ itself underflows.

    **Arguments:**

    - `alpha`: $\alpha = E_R/k_B T_M > 0$, real array.
    - `s`: real array.

    **Returns:**

    $\ln I(\alpha, s)$, broadcast over `alpha` and `s`; absolute error about
    $10^{-15}\max(1, |\ln I|)$. Works under `jit`, `vmap` and `grad`.
    """
    return _log_scattering_integral(*_validated(alpha, s))


# ---------------------------------------------------------------------------------------------
# Direct quadrature
# ---------------------------------------------------------------------------------------------

# Range of omega = ln u scanned for the peak of the integrand (u from 1e-13 to ~1100).
_OMEGA_LO, _OMEGA_HI = -30.0, 7.0
_N_SCAN = 75
_N_GOLDEN = 32
_N_BISECT = 12
# The nodes cover where the integrand is within e^-50 of its peak (a smaller margin suffices
# for the value, but the s-derivative has a slowly decaying part below the peak).
_DROP = 50.0


def _log1mexp(x):
    """ln(1 - e^{-x}) for x > 0, accurate in value and derivative for small and large x.

    (`expm1` alone would do for the value, but its derivative e^{-x} = expm1(-x) + 1 is lost
    to rounding for large x.)
    """
    small = x < _LN2
    xs = jnp.where(small, x, 1.0)
    xl = jnp.where(small, 1.0, x)
    return jnp.where(small, jnp.log(-jnp.expm1(-xs)), jnp.log1p(-jnp.exp(-xl)))


def log_threshold_integral(
    log_integrand: Callable,
    s,
    *,
    n: int = 128,
    n_scan: int = _N_SCAN,
    n_golden: int = _N_GOLDEN,
    n_bisect: int = _N_BISECT,
):
    r"""Logarithm of a collision integral over the kinematics of eq. (20), by quadrature.

    $$\ln \int_{\max\{0, s\}}^\infty dz\, F(w, y, s), \qquad w = z - \max\{0, s\},
    \qquad y = 2\sqrt{z}\sqrt{z - s},$$

    for a positive integrand $F$ given through $\ln F$ = `log_integrand(w, y, s)`, which must
    be unimodal in $z$, decay for large $z$ and be odd-analytic in the momentum $y$ (as
    $\sinh y$ is). The map $z = s/2 + (|s|/2)\cosh u$, i.e. $w = |s|\sinh^2(u/2)$ and
    $y = |s|\sinh u$, removes the threshold square roots and makes the $u$-integrand
    $F\, y/2$ even and analytic in $u$, so the trapezoid rule converges geometrically. The
    nodes are equally spaced over the $u$-interval where the integrand is within $e^{-50}$ of
    its peak (peak found by a scan in $\ln u$ and a golden-section search, edges by
    bisection), starting at $u = 0$ when that edge is close to it. The sum is taken in log
    space, so neither large nor tiny integrals overflow. $|s|$ below $10^{-103}$ (float64)
    is replaced by $\pm 10^{-103}$.

    Works on a scalar `s`; wrap it in `jnp.vectorize` or `jax.vmap` for arrays. Gradients
    are those of the quadrature sum. The node placement itself is not differentiated (it does
    not change the integral); under differentiation in $s$ the nodes move as
    $u = t - \tanh(t)\, \delta\ln|s|$, i.e. they stay at $u = 0$ near the threshold and
    are fixed in $v = u + \ln(|s|/2)$ far from it, which keeps $\partial_s$ free of
    cancellation as $s \to 0$.

    **Arguments:**

    - `log_integrand`: callable `(w, y, s) -> ln F`, elementwise in `w` and `y`.
    - `s`: the threshold parameter, a real scalar.
    - `n`: number of quadrature nodes (128 gives about 1e-14 relative accuracy for eq. (20)).
    - `n_scan`, `n_golden`, `n_bisect`: effort of the coarse peak scan, of the golden-section
      refinement of the peak, and of the bisection for the edges.

    **Returns:**

    The logarithm of the integral, a scalar.
    """
    s = jnp.asarray(s)
    if not jnp.issubdtype(s.dtype, jnp.floating):
        s = s.astype(jnp.result_type(float))
    finfo = jnp.finfo(s.dtype)
    # Smallest |s| the cosh map uses (1e-103 in float64): I(alpha, s) - I(alpha, 0) = O(s ln s)
    # is far below rounding there.
    floor = float(finfo.tiny) ** (1.0 / 3.0)
    s = s + jnp.where(jnp.abs(s) < floor, jnp.where(s >= 0, floor, -floor), 0.0)
    log_abs_s = jnp.log(jnp.where(s >= 0, s, -s))
    # Keep y = |s| sinh u and w below e^700 (float64) so that nothing overflows.
    omega_max = jnp.log(math.log(float(finfo.max)) - 10.0 - log_abs_s)

    def log_g(u, v, s):
        # ln of the integrand in u: F(w, y) dz/du with dz/du = y/2. Written through
        # v = u + ln(|s|/2): y = e^v (1 - e^{-2u}), w = e^v (1 - e^{-u})^2 / 2, so that
        # nothing cancels as s -> 0 at fixed v.
        log_y = v + _log1mexp(2.0 * u)
        log_w = v - _LN2 + 2.0 * _log1mexp(u)
        return log_integrand(jnp.exp(log_w), jnp.exp(log_y), s) + log_y - _LN2

    # Node placement: searched on stop-gradient copies, so it is not differentiated.
    s0, las0 = jax.lax.stop_gradient((s, log_abs_s))
    phi = lambda om: log_g(jnp.exp(om), jnp.exp(om) + las0 - _LN2, s0)  # of omega = ln u

    grid = jnp.linspace(_OMEGA_LO, _OMEGA_HI, n_scan, dtype=s.dtype)
    inside = grid <= omega_max
    values = jnp.where(inside, phi(jnp.where(inside, grid, _OMEGA_LO)), -jnp.inf)
    j = jnp.argmax(values)
    idx = jnp.arange(n_scan)

    # Peak: golden-section search inside the bracket of the best scan point (the integrand is
    # unimodal). Only the peak value matters below, and only roughly.
    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0

    def golden(_, carry):
        a, b, c, d, fc, fd = carry
        left = fc >= fd  # the peak lies in [a, d]
        a, b = jnp.where(left, a, c), jnp.where(left, d, b)
        c_new = jnp.where(left, b - inv_phi * (b - a), d)
        d_new = jnp.where(left, c, a + inv_phi * (b - a))
        f_new = phi(jnp.where(left, c_new, d_new))
        fc, fd = jnp.where(left, f_new, fd), jnp.where(left, fc, f_new)
        return a, b, c_new, d_new, fc, fd

    a0 = grid[jnp.maximum(j - 1, 0)]
    b0 = jnp.minimum(grid[jnp.minimum(j + 1, n_scan - 1)], omega_max)
    c0, d0 = b0 - inv_phi * (b0 - a0), a0 + inv_phi * (b0 - a0)
    a, b, c, d, fc, fd = jax.lax.fori_loop(0, n_golden, golden, (a0, b0, c0, d0, phi(c0), phi(d0)))
    om_peak = jnp.where(fc >= fd, c, d)
    threshold = jnp.maximum(jnp.maximum(fc, fd), values[j]) - _DROP

    # Edges where phi crosses the threshold, bracketed by the scan and refined by bisection.
    below = values < threshold
    j_left = jnp.max(jnp.where(below & (grid < om_peak), idx, -1))
    j_right = jnp.min(jnp.where(below & (grid > om_peak), idx, n_scan))

    def bisect(lo, hi, rising):
        def body(_, carry):
            lo, hi = carry
            mid = 0.5 * (lo + hi)
            up = (phi(mid) >= threshold) == rising  # the crossing lies left of mid
            return jnp.where(up, lo, mid), jnp.where(up, mid, hi)

        lo, hi = jax.lax.fori_loop(0, n_bisect, body, (lo, hi))
        return jnp.where(rising, lo, hi)  # the outer end of the final bracket

    om_left = bisect(grid[jnp.maximum(j_left, 0)], jnp.minimum(grid[j_left + 1], om_peak), True)
    om_right = bisect(
        jnp.maximum(grid[jnp.maximum(j_right - 1, 0)], om_peak),
        jnp.minimum(grid[jnp.minimum(j_right, n_scan - 1)], omega_max),
        False,
    )
    om_right = jnp.where(j_right < n_scan, om_right, omega_max)
    u_left = jnp.where(j_left >= 0, jnp.exp(om_left), 0.0)
    u_right = jnp.exp(om_right)
    # Start at u = 0 when the left edge is close to it: the u-integrand is even, so the
    # trapezoid rule from 0 (half weight there) keeps its geometric convergence.
    u_left = jnp.where(u_left < 0.1 * (u_right - u_left), 0.0, u_left)
    h = (u_right - u_left) / (n - 1)

    t = u_left + h * jnp.arange(n, dtype=s.dtype)
    ok = t > 0
    t = jnp.where(ok, t, 1.0)
    # Under differentiation in s the nodes move as u = t - delta tanh(t), delta = d ln|s|:
    # fixed near u = 0 (the trapezoid rule from 0 relies on the evenness in u) and fixed in
    # v = u + ln(|s|/2) for large u, where the integrand is a smooth function of (v, s).
    # Holding u fixed there instead would cancel terms of size I/|s| in the derivative.
    delta = log_abs_s - las0
    u = t - delta * jnp.tanh(t)
    v = t + (las0 - _LN2) + delta * (2.0 * jax.nn.sigmoid(-2.0 * t))  # 2 sigmoid(-2t) = 1 - tanh
    sech2 = 4.0 * jax.nn.sigmoid(2.0 * t) * jax.nn.sigmoid(-2.0 * t)
    log_weight = jnp.log(h) + jnp.where(jnp.arange(n) == 0, -_LN2, 0.0) + jnp.log1p(-delta * sech2)
    terms = jnp.where(ok, log_g(u, v, s) + log_weight, -jnp.inf)
    return jax.nn.logsumexp(terms)


def _log_integrand_eq20(alpha):
    r"""$\ln$ of the integrand $e^{s-(2+\alpha)z}\sinh y$ of eq. (20), as a function of $(w, y, s)$.

    Written without cancellation: $s - (2+\alpha)z + y = -\alpha z - s^2/(y + 2w + |s|)$, and
    $\ln\sinh y = y - \ln 2 + \ln(1 - e^{-2y})$.
    """

    def log_f(w, y, s):
        abs_s = jnp.where(s >= 0, s, -s)
        z = jnp.maximum(s, 0.0) + w
        return -alpha * z - s * s / (y + 2.0 * w + abs_s) - _LN2 + _log1mexp(2.0 * y)

    return log_f


@functools.partial(jax.jit, static_argnames=("n",))
def _log_scattering_integral_quad(alpha, s, n):
    one = lambda a, s_: log_threshold_integral(_log_integrand_eq20(a), s_, n=n)
    return jnp.vectorize(one)(alpha, s)


def scattering_integral_quad(alpha, s, *, n: int = 128, log: bool = False):
    r"""The scattering integral of eq. (20) by direct quadrature (no Bessel functions).

    $$I(\alpha, s) = e^s \int_{\max\{0, s\}}^\infty dz\, e^{-(2+\alpha) z}
    \sinh\!\left(2\sqrt{z}\sqrt{z - s}\right) \qquad (20)$$

    evaluated with `log_threshold_integral`: an independent check on `scattering_integral`
    (the Gaussian interaction of eq. D1; other shapes: `profile_integral`).

    **Arguments:**

    - `alpha`: $\alpha > 0$, real array.
    - `s`: real array.
    - `n`: number of quadrature nodes per point.
    - `log`: if `True`, return $\ln I$ instead (finite where $I$ underflows).

    **Returns:**

    $I(\alpha, s)$ (or $\ln I$), broadcast over `alpha` and `s`; relative error about 1e-14.
    Works under `jit`, `vmap` and `grad`.
    """
    if not isinstance(n, int) or n < 8:
        raise ValueError(f"n must be an integer >= 8, got {n!r}")
    out = _log_scattering_integral_quad(*_validated(alpha, s), n)
    return out if log else jnp.exp(out)
