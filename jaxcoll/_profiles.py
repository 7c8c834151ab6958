r"""Isotropic interaction profiles and their first-Born collision rates, eq. (12).

The interaction is $V = V_0\,\hat v \otimes g(|\hat{\mathbf x}|/R)$ with a radial profile $g$
(the Gaussian of eq. (D1) is $g(r) = e^{-r^2/2}$). Its first Born amplitude is

$$f(\mathbf q, \mathbf p) = -(2\pi)^2\hbar m\,\langle\mathbf q|V|\mathbf p\rangle
  = -\frac{R}{4\pi}\frac{V_0}{E_R}\,\hat v\;G\!\Big(\frac{|\mathbf q - \mathbf p|R}{\hbar}\Big),
  \qquad G(k) = \int d^3\xi\, g(|\xi|)\,e^{-i\mathbf k\cdot\xi}
  = 4\pi\int_0^\infty dr\, r^2 g(r)\,\frac{\sin kr}{kr},$$

the dimensionless 3-D Fourier transform (`InteractionProfile.fourier`); for the Gaussian
$G(k) = (2\pi)^{3/2}e^{-k^2/2}$ and this is eq. (D2).

**The rate of eq. (12).** For a channel that changes the internal energy by
$\Delta E = s E_R$, write eq. (12) with the energy shell as a delta function and change
variables to the momentum transfer $\boldsymbol\kappa = \mathbf q - \mathbf p$:

$$R = \frac{n}{m^2}\int d^3p\,d^3q\;\mu(\mathbf p)\,|f|^2\,
  \delta\Big(\frac{q^2 - p^2}{2m} + \Delta E\Big)
  = \frac nm\int\frac{d^3\kappa}{\kappa}\,|f(\kappa)|^2\;
  \mu_\parallel\Big(-\frac\kappa2 - \frac{m\Delta E}{\kappa}\Big),$$

where $\mu_\parallel$ is the distribution of the momentum component along $\hat\kappa$: only
that component is fixed by energy conservation, the two transverse ones integrate out. (The
angular integral of eq. (12) is the $\kappa$-integral on the sphere
$|\mathbf q| = \mathrm{const}$; exchanging it with the $|\mathbf p|$ integral leaves the
Maxwellian in closed form.) For the Maxwellian at $T_M$, drifting with velocity $\mathbf u$,
$\mu_\parallel(p) = (2\pi m k_BT_M)^{-1/2}\exp[-(p - m\mathbf u\cdot\hat\kappa)^2/2mk_BT_M]$,
and with $k = \kappa R/\hbar$, $\alpha = E_R/k_BT_M$ and the drift $w = m|\mathbf u|R/\hbar$
(drift speed in units of $\hbar/mR$, drift kinetic energy $w^2E_R$), the rate is
$R = \tilde\Gamma\,|v|^2\, I_g(\alpha, s, w)$ with the same $\tilde\Gamma$ as eq. (D4) and

$$I_g(\alpha, s, w) = \frac{1}{8\pi^3\alpha}\int_0^\infty dk\; k\,|G(k)|^2\,
  M\Big(\alpha, \frac{k + s/k}{2}, w\Big), \qquad
  M(\alpha, c, w) = \frac12\int_{-1}^{1}d\mu\; e^{-\alpha(c + w\mu)^2}.$$

Without drift $M = e^{-\alpha c^2}$, and since $(k + s/k)^2/4 = s/2 + (k^2 + s^2/k^2)/4$,

$$I_g(\alpha, s, 0) = e^{-\alpha s/2}\,\frac{1}{8\pi^3\alpha}\int_0^\infty dk\,k|G(k)|^2
  e^{-\alpha(k^2 + s^2/k^2)/4},$$

whose integral is even in $s$: $I_g(\alpha, -s) = e^{\alpha s} I_g(\alpha, s)$ for every
profile, which is local detailed balance (13) at $T_A = T_M$. For the Gaussian the integral
is $e^{-\alpha s/2}|s|K_1(x)/k$ with $x = |s|\sqrt{\alpha(\alpha+4)}/2$, the closed form of
$I(\alpha, s)$ in `jaxcoll._integral`. A drift breaks the symmetry: a streaming gas is not an
equilibrium reservoir. With drift, for $\beta = 2\alpha|c|w + \alpha w^2 > 1$,

$$M(\alpha, c, w) = \frac{\sqrt\pi}{4w\sqrt\alpha}
  \Big[\mathrm{erf}\big(\sqrt\alpha(|c| + w)\big)
  - \mathrm{erf}\big(\sqrt\alpha(|c| - w)\big)\Big],$$

evaluated through $\mathrm{erfc}$ in log space; for $\beta \le 1$ a 12-point Gauss-Legendre
rule in $\mu$ (exact to rounding there).

**Quadrature.** $k = \mathrm{softplus}(\tau)$ spaces the nodes logarithmically below $k = 1$
and linearly above (profiles vary on $k \sim 1$, e.g. the oscillations of the square well);
the $\tau$-integrand is analytic and decays at both ends, so the trapezoid rule converges
geometrically. The nodes cover where the integrand is within $e^{-40}$ of its largest value:
an outer window from the Maxwellian factor in closed form, trimmed by a scan of the full
integrand. Everything is summed in log space, so deep tails do not underflow.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf, log_ndtr

from . import _config  # noqa: F401
from ._validation import check_real, common_float, is_concrete

_LN2 = math.log(2.0)
_LOG_PREF = -math.log(8.0 * math.pi**3)  # ln 1/(8 pi^3)


def _safe_log_sq(x):
    """ln x^2 with -inf at x = 0 and a zero (not NaN) gradient there ("double where")."""
    x2 = x * x
    pos = x2 > 0
    out = jnp.where(pos, jnp.log(jnp.where(pos, x2, 1.0)), -jnp.inf)
    return jnp.where(jnp.isnan(x2), jnp.nan, out)  # a NaN profile must not pass as G = 0


# ---------------------------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------------------------


class InteractionProfile(eqx.Module):
    r"""An isotropic interaction profile $g(r/R)$, $V = V_0\,\hat v\otimes g(|\hat{\mathbf x}|/R)$.

    Subclasses implement `fourier(k)`, the dimensionless 3-D Fourier transform
    $G(k) = 4\pi\int_0^\infty dr\,r^2 g(r)\sin(kr)/(kr)$ at $k = |\mathbf q - \mathbf p|R/\hbar$,
    and may override `log_fourier_sq(k)` $= \ln G(k)^2$ with a form that does not underflow.
    `fourier(0.0)` is the volume integral $\int d^3\xi\, g$. A subclass is an `eqx.Module`:
    float fields are pytree leaves that `jit`, `vmap` and `grad` see.
    """

    def fourier(self, k):
        raise NotImplementedError

    def log_fourier_sq(self, k):
        r"""$\ln G(k)^2$ ($-\infty$ where $G = 0$, with a zero gradient there)."""
        return _safe_log_sq(self.fourier(k))


class Gaussian(InteractionProfile):
    r"""The Gaussian of eq. (D1), $g(r) = e^{-r^2/2}$: $G(k) = (2\pi)^{3/2}e^{-k^2/2}$.

    The default profile; its rates are the closed form $\tilde\Gamma I(\alpha, s)$ of eq. (19)-(20).
    """

    name: str = eqx.field(static=True, default="gaussian")

    def fourier(self, k):
        k = jnp.asarray(k, dtype=float)
        return (2.0 * jnp.pi) ** 1.5 * jnp.exp(-0.5 * k * k)

    def log_fourier_sq(self, k):
        k = jnp.asarray(k, dtype=float)
        return 3.0 * math.log(2.0 * math.pi) - k * k


class Exponential(InteractionProfile):
    r"""Exponential (Yukawa-like, finite at the origin) profile $g(r) = e^{-r}$.

    $G(k) = 8\pi/(1 + k^2)^2$; the amplitude decays as a power of the momentum transfer, so
    large detunings are suppressed far less than with the Gaussian.
    """

    name: str = eqx.field(static=True, default="exponential")

    def fourier(self, k):
        k = jnp.asarray(k, dtype=float)
        return 8.0 * jnp.pi / (1.0 + k * k) ** 2

    def log_fourier_sq(self, k):
        k = jnp.asarray(k, dtype=float)
        return math.log(64.0 * math.pi**2) - 4.0 * jnp.log1p(k * k)


class Yukawa(InteractionProfile):
    r"""Screened-Coulomb (Yukawa) profile $g(r) = e^{-r}/r$: $G(k) = 4\pi/(1 + k^2)$.

    The Born amplitude of the screened Coulomb potential; singular (but integrable) at $r = 0$.
    """

    name: str = eqx.field(static=True, default="yukawa")

    def fourier(self, k):
        k = jnp.asarray(k, dtype=float)
        return 4.0 * jnp.pi / (1.0 + k * k)

    def log_fourier_sq(self, k):
        k = jnp.asarray(k, dtype=float)
        return math.log(16.0 * math.pi**2) - 2.0 * jnp.log1p(k * k)


# Taylor coefficients of (sin k - k cos k)/k^3 = sum_n (-1)^(n+1) 2n k^(2n-2)/(2n+1)!, n >= 1.
_J1_SERIES = tuple((-1) ** (n + 1) * 2 * n / math.factorial(2 * n + 1) for n in range(1, 10))


def _j1_over_k(k):
    r"""$j_1(k)/k = (\sin k - k\cos k)/k^3$, by its series for $|k| < 1$ (no cancellation)."""
    small = jnp.abs(k) < 1.0
    ks = jnp.where(small, k, 0.0)
    kl = jnp.where(small, 1.0, k)
    k2 = ks * ks
    series = jnp.zeros_like(k2)
    for c in reversed(_J1_SERIES):
        series = series * k2 + c
    direct = (jnp.sin(kl) - kl * jnp.cos(kl)) / kl**3
    return jnp.where(small, series, direct)


class SquareWell(InteractionProfile):
    r"""Square well / soft sphere, $g(r) = 1$ for $r < 1$ and 0 beyond.

    $G(k) = 4\pi(\sin k - k\cos k)/k^3 = 4\pi j_1(k)/k$ (series below $k = 1$). A soft sphere
    for $V_0 > 0$, a square well for $V_0 < 0$ (the Born rates depend on $V_0^2$ only). The
    amplitude has zeros (a diffraction pattern) at the zeros of $j_1$.
    """

    name: str = eqx.field(static=True, default="square_well")

    def fourier(self, k):
        k = jnp.asarray(k, dtype=float)
        return 4.0 * jnp.pi * _j1_over_k(k)


class FourierProfile(InteractionProfile):
    r"""A profile given by its dimensionless 3-D Fourier transform $G(k)$.

    **Arguments:**

    - `fourier_fn`: callable `k -> G(k)`, elementwise in a float array `k >= 0`, written in
      `jax.numpy` (it is traced). It must be real and finite.
    - `log_fourier_sq_fn`: optional callable `k -> ln G(k)^2`, for transforms that underflow
      in the tails (e.g. Gaussian-like decay); by default $\ln G^2$ is taken from `fourier_fn`.
    - `name`: a label.
    """

    fourier_fn: Callable = eqx.field(static=True)
    log_fourier_sq_fn: Callable | None = eqx.field(static=True, default=None)
    name: str = eqx.field(static=True, default="fourier")

    def __check_init__(self):
        if not callable(self.fourier_fn):
            raise TypeError(f"fourier_fn must be callable, got {type(self.fourier_fn).__name__}")
        if self.log_fourier_sq_fn is not None and not callable(self.log_fourier_sq_fn):
            raise TypeError("log_fourier_sq_fn must be callable or None")

    def fourier(self, k):
        return jnp.asarray(self.fourier_fn(jnp.asarray(k, dtype=float)), dtype=float)

    def log_fourier_sq(self, k):
        if self.log_fourier_sq_fn is None:
            return _safe_log_sq(self.fourier(k))
        return jnp.asarray(self.log_fourier_sq_fn(jnp.asarray(k, dtype=float)), dtype=float)


_GL16_X, _GL16_W = np.polynomial.legendre.leggauss(16)


class RadialProfile(InteractionProfile):
    r"""A profile given by its radial shape $g(r)$, $r$ in units of $R$, zero beyond `r_max`.

    $G(k) = 4\pi\int_0^{r_{\max}} dr\, r^2 g(r)\,\frac{\sin kr}{kr}$ by composite 16-point
    Gauss-Legendre quadrature on `n // 16` equal panels. Exact to rounding for smooth $g$
    while a panel holds few oscillations, $k\,r_{\max}\,16/n \lesssim 10$; put a
    discontinuity of $g$ at `r_max` (e.g. a hard edge) rather than inside.

    **Arguments:**

    - `g`: callable `r -> g(r)`, elementwise on a float array, written in `jax.numpy`.
    - `r_max`: the cutoff radius (> 0), in units of $R$.
    - `n`: number of radial nodes, a multiple of 16 (default 512).
    - `name`: a label.
    """

    g: Callable = eqx.field(static=True)
    r_max: float = eqx.field(static=True)
    n: int = eqx.field(static=True, default=512)
    name: str = eqx.field(static=True, default="radial")

    def __check_init__(self):
        if not callable(self.g):
            raise TypeError(f"g must be callable, got {type(self.g).__name__}")
        ok = isinstance(self.r_max, numbers.Real) and not isinstance(self.r_max, bool)
        if not ok or not (math.isfinite(self.r_max) and self.r_max > 0):
            raise ValueError(f"r_max must be a finite number > 0, got {self.r_max!r}")
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 16 or self.n % 16:
            raise ValueError(f"n must be a positive multiple of 16, got {self.n!r}")

    def _nodes(self):
        panels = self.n // 16
        h = float(self.r_max) / panels
        left = h * np.arange(panels)[:, None]
        r = (left + 0.5 * h * (_GL16_X[None, :] + 1.0)).ravel()
        wts = np.tile(0.5 * h * _GL16_W, panels)
        return jnp.asarray(r), jnp.asarray(wts)

    def fourier(self, k):
        k = jnp.asarray(k, dtype=float)
        r, wts = self._nodes()
        gr = jnp.asarray(self.g(r), dtype=float)
        kr = k[..., None] * r
        # sin(kr)/(kr) through jnp.sinc (sin(pi x)/(pi x)), smooth through kr = 0
        kernel = jnp.sinc(kr / jnp.pi)
        return 4.0 * jnp.pi * jnp.sum(wts * r * r * gr * kernel, axis=-1)


_BY_NAME = {
    "gaussian": Gaussian,
    "exponential": Exponential,
    "yukawa": Yukawa,
    "square_well": SquareWell,
}


def check_profile(profile) -> InteractionProfile:
    """`profile` as an `InteractionProfile` (`None` is the Gaussian; names are accepted)."""
    if profile is None:
        return Gaussian()
    if isinstance(profile, str):
        if profile not in _BY_NAME:
            raise ValueError(f"profile must be one of {sorted(_BY_NAME)}, got {profile!r}")
        return _BY_NAME[profile]()
    if not isinstance(profile, InteractionProfile):
        raise TypeError(
            "profile must be an InteractionProfile (Gaussian(), Exponential(), SquareWell(), "
            f"RadialProfile(g, r_max=...), FourierProfile(G), ...) or a name, got "
            f"{type(profile).__name__}"
        )
    return profile


def check_drift(drift):
    """`drift` as its magnitude $w \\ge 0$: a real scalar, or a length-3 drift vector."""
    if drift is None:
        return None
    if isinstance(drift, list | tuple):
        drift = np.asarray(drift, dtype=float)
    shape = np.shape(drift)
    if shape not in ((), (3,)):
        raise ValueError(f"drift must be a scalar speed or a 3-vector, got shape {shape}")
    if shape == ():
        return check_real("drift", drift, nonnegative=True)
    drift = check_real("drift", drift)
    return _safe_norm(jnp.asarray(drift, dtype=float))


def _safe_norm(v):
    """Euclidean norm with a zero (not NaN) gradient at the zero vector."""
    sq = jnp.sum(v * v)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


# ---------------------------------------------------------------------------------------------
# The angular factor of a drifting Maxwellian
# ---------------------------------------------------------------------------------------------

_GL12_X, _GL12_W = np.polynomial.legendre.leggauss(12)


def _log_mean_factor(alpha, c, w):
    r"""$\ln N$ with $M(\alpha, c, w) = e^{-\alpha c^2} N$, $N = \frac12\int_{-1}^1 d\mu\,
    e^{-2\alpha c w\mu - \alpha w^2\mu^2}$ (see the module docstring); $N = 1$ at $w = 0$."""
    a = jnp.abs(c)
    beta = 2.0 * alpha * a * w + alpha * w * w
    small = beta <= 1.0
    # Gauss-Legendre branch: ln(1 + sum w_i expm1(...)/2), exactly 0 at w = 0.
    a_s = jnp.where(small, a, 0.0)[..., None]
    w_s = jnp.where(small, w, 0.0)[..., None]
    alpha_ = jnp.asarray(alpha)[..., None]
    x = jnp.asarray(_GL12_X)
    ex = -2.0 * alpha_ * a_s * w_s * x - alpha_ * w_s * w_s * x * x
    gl = jnp.log1p(0.5 * jnp.sum(jnp.asarray(_GL12_W) * jnp.expm1(ex), axis=-1))
    # erf branch: M = sqrt(pi)/(4 w sqrt(alpha)) [erf(x2) - erf(x1)], x1,2 = sqrt(alpha)(a -+ w).
    a_l = jnp.where(small, 1.0, a)
    w_l = jnp.where(small, 1.0, w)
    sa = jnp.sqrt(alpha)
    x1 = sa * (a_l - w_l)
    x2 = sa * (a_l + w_l)
    pref = 0.5 * math.log(math.pi) - 2.0 * _LN2 - jnp.log(w_l) - 0.5 * jnp.log(alpha)
    # x1 >= 0: erfc(x1) - erfc(x2) in log space, ln erfc(x) = ln 2 + log_ndtr(-sqrt(2) x)
    x1p = jnp.where(x1 >= 0, x1, 0.0)
    x2p = jnp.where(x1 >= 0, x2, 1.0)
    le1 = _LN2 + log_ndtr(-math.sqrt(2.0) * x1p)
    le2 = _LN2 + log_ndtr(-math.sqrt(2.0) * x2p)
    gap = jnp.maximum(le1 - le2, jnp.finfo(le1.dtype).tiny)
    tail = le1 + jnp.log(-jnp.expm1(-gap))
    # x1 < 0: erf(x2) + erf(|x1|), a sum of positive terms
    x1n = jnp.where(x1 >= 0, 1.0, -x1)
    x2n = jnp.where(x1 >= 0, 1.0, x2)
    core = jnp.log(erf(x2n) + erf(x1n))
    log_m = pref + jnp.where(x1 >= 0, tail, core)
    big = log_m + alpha * a_l * a_l  # ln N = ln M + alpha c^2
    return jnp.where(small, gl, big)


# ---------------------------------------------------------------------------------------------
# The rate integral
# ---------------------------------------------------------------------------------------------

_DELTA_RIGHT = 80.0  # margin of the outer window beyond the Maxwellian peak (in ln units)
_DELTA_LEFT = 2000.0  # before it: a fast-decaying profile moves the mass far into that side
_DROP = 40.0  # the nodes cover where the integrand is within e^-40 of its largest value
_K_FLOOR = 1e-12  # relative floor of the window at s ~ 0 (the integrand vanishes as k^2)


def _tau_of_k(k):
    """Inverse of softplus, ln(e^k - 1), stable for small and large k."""
    big = k > 1.0
    kb = jnp.where(big, k, 1.0)
    ks = jnp.where(big, 1.0, k)
    return jnp.where(big, kb + jnp.log(-jnp.expm1(-kb)), jnp.log(jnp.expm1(ks)))


def _outer_window(alpha, s, w):
    r"""$k$-interval outside which the Maxwellian factor is below its peak by the margins.

    $|c| \le C = w + \sqrt{(\sqrt{s_+} - w)_+^2 + \Delta/\alpha}$ with $c = (k + s/k)/2$ gives
    $k \in [2|s|/(b + r), (b + r)/2]$, $b = 2C$, $r = \sqrt{b^2 - 4s}$; symmetric in $s$ at
    $w = 0$.
    """
    rs = jnp.sqrt(jnp.maximum(s, 0.0))
    abs_s = jnp.abs(s)

    def edges(delta):
        C = w + jnp.sqrt(jnp.maximum(rs - w, 0.0) ** 2 + delta / alpha)
        b = 2.0 * C
        r = jnp.sqrt(jnp.maximum(b * b - 4.0 * s, 0.0))
        return 2.0 * abs_s / (b + r), 0.5 * (b + r)

    k_lo, _ = edges(_DELTA_LEFT)
    _, k_hi = edges(_DELTA_RIGHT)
    k_lo = jnp.maximum(k_lo, _K_FLOOR * jnp.minimum(k_hi, 1.0))
    return k_lo, k_hi


def _log_integrand(profile, alpha, s, w, tau):
    r"""ln of the $\tau$-integrand, $k^2|G|^2 e^{-\alpha(k^2 + s^2/k^2)/4} N\,dk/d\tau / k$."""
    k = jax.nn.softplus(tau)
    log_k = jnp.log(k)
    inv = s / k
    val = log_k + profile.log_fourier_sq(k) - 0.25 * alpha * (k * k + inv * inv)
    val = val + jax.nn.log_sigmoid(tau)  # dk/dtau
    if w is None:  # the gas at rest: N = 1
        return val
    return val + _log_mean_factor(alpha, 0.5 * (k + inv), w)


def _log_profile_integral_scalar(profile, alpha, s, w, n, n_scan):
    """ln I_g(alpha, s, w) for scalar arguments (see `profile_integral`); `w=None`: at rest."""
    a0, s0, w0 = jax.lax.stop_gradient((alpha, s, w))
    k_lo, k_hi = _outer_window(a0, s0, 0.0 if w is None else w0)
    t_lo, t_hi = _tau_of_k(k_lo), _tau_of_k(k_hi)
    grid = t_lo + (t_hi - t_lo) * jnp.linspace(0.0, 1.0, n_scan, dtype=t_lo.dtype)
    psi = _log_integrand(jax.lax.stop_gradient(profile), a0, s0, w0, grid)
    broken = jnp.any(jnp.isnan(psi))  # a profile that is NaN anywhere poisons the result
    psi = jnp.where(jnp.isnan(psi), -jnp.inf, psi)
    top = jnp.max(psi)
    above = psi >= top - _DROP
    idx = jnp.arange(n_scan)
    first = jnp.min(jnp.where(above, idx, n_scan - 1))
    last = jnp.max(jnp.where(above, idx, 0))
    t1 = grid[jnp.maximum(first - 1, 0)]
    t2 = grid[jnp.minimum(last + 1, n_scan - 1)]
    h = (t2 - t1) / (n - 1)
    nodes = t1 + h * jnp.arange(n, dtype=t1.dtype)
    ends = (jnp.arange(n) == 0) | (jnp.arange(n) == n - 1)
    log_wts = jnp.log(h) - jnp.where(ends, _LN2, 0.0)
    terms = _log_integrand(profile, alpha, s, w, nodes) + log_wts
    out = _LOG_PREF - jnp.log(alpha) - 0.5 * alpha * s + jax.nn.logsumexp(terms)
    return jnp.where(broken, jnp.nan, out)


# Trapezoid nodes: at rest, and with a drift, whose angular factor M has erf edges at
# |c| = w of width ~ 1/sqrt(alpha) in c, i.e. 1/(sqrt(alpha) w) in tau on the small-k side.
_N_REST = 256
_N_DRIFT = 1024


@functools.partial(jax.jit, static_argnames=("n", "n_scan"))
def _log_profile_integral_unchecked(profile, alpha, s, w=None, n=None, n_scan=128):
    if n is None:
        n = _N_REST if w is None else _N_DRIFT
    if w is None:
        one = lambda a, s_: _log_profile_integral_scalar(profile, a, s_, None, n, n_scan)
        return jnp.vectorize(one)(alpha, s)
    one = lambda a, s_, w_: _log_profile_integral_scalar(profile, a, s_, w_, n, n_scan)
    return jnp.vectorize(one)(alpha, s, w)


_NAN_MESSAGE = (
    "the interaction profile gave a non-finite rate integral: its fourier(k) (or "
    "log_fourier_sq(k)) must be real and finite for all k >= 0"
)


def _log_profile_integral(profile, alpha, s, w=None, n=None, n_scan=128):
    """`ln I_g` for the models (`w=None`: gas at rest); a faulty profile raises at run time."""
    out = _log_profile_integral_unchecked(profile, alpha, s, w, n=n, n_scan=n_scan)
    return eqx.error_if(out, jnp.any(jnp.isnan(out)), _NAN_MESSAGE)


def profile_integral(profile, alpha, s, *, drift=None, log: bool = False, n: int | None = None):
    r"""The first-Born rate of eq. (12) for any isotropic profile, divided by $\tilde\Gamma|v|^2$.

    $$I_g(\alpha, s, w) = \frac{1}{8\pi^3\alpha}\int_0^\infty dk\; k\,|G(k)|^2\,
      M\Big(\alpha, \frac{k + s/k}{2}, w\Big), \qquad
      M(\alpha, c, w) = \frac12\int_{-1}^{1}d\mu\, e^{-\alpha(c + w\mu)^2},$$

    derived in the module docstring; $G$ is `profile.fourier`. A channel that changes the
    internal energy by $sE_R$ has the rate $\tilde\Gamma\,p(\epsilon_l)\,|v_{ij}^{kl}|^2 I_g$
    with $\tilde\Gamma$ of eq. (D4). For the Gaussian without drift $I_g = I(\alpha, s)$ of
    eq. (20). Without drift $I_g(\alpha, -s) = e^{\alpha s}I_g(\alpha, s)$ exactly (local
    detailed balance, eq. 13).

    **Arguments:**

    - `profile`: an `InteractionProfile` (`Gaussian()`, `Exponential()`, `Yukawa()`,
      `SquareWell()`, `RadialProfile(g, r_max=...)`, `FourierProfile(G)`) or its name.
    - `alpha`: $\alpha = E_R/k_BT_M > 0$, real array.
    - `s`: internal energy gained in the collision in units of $E_R$, real array.
    - `drift`: drift speed $w = m|\mathbf u|R/\hbar \ge 0$ of a drifting Maxwellian (drift
      kinetic energy $w^2E_R$), real array broadcasting with `alpha` and `s`; default
      `None`, the gas at rest (the same value as `drift=0`, without the drift factor's cost).
    - `log`: if `True`, return $\ln I_g$ (finite where $I_g$ underflows).
    - `n`: trapezoid nodes per point; default 256 at rest (about 1e-13 relative accuracy)
      and 1024 with a drift: about 1e-13 while $\sqrt\alpha\,w \lesssim 45$ (drift energy
      below ~2000 $k_BT_M$); a colder, faster beam needs more nodes, about $40\sqrt\alpha\,w$
      (at $\sqrt\alpha\,w = 100$ the default gives only ~1e-6).

    **Returns:**

    $I_g$ (or $\ln I_g$), broadcast over `alpha`, `s` and `drift`. Works under `jit`, `vmap`
    and `grad` (in `alpha`, `s`, `drift` and float fields of the profile).
    """
    profile = check_profile(profile)
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 16):
        raise ValueError(f"n must be an integer >= 16 or None, got {n!r}")
    alpha, s, drift = (
        np.asarray(a) if isinstance(a, list | tuple) else a for a in (alpha, s, drift)
    )
    alpha = check_real("alpha", alpha, positive=True)
    s = check_real("s", s)
    if drift is None:
        out = _log_profile_integral_unchecked(profile, *common_float(alpha, s), n=n)
    else:
        drift = check_real("drift", drift, nonnegative=True)
        out = _log_profile_integral_unchecked(profile, *common_float(alpha, s, drift), n=n)
    if is_concrete(out):
        if np.any(np.isnan(np.asarray(out))):
            raise ValueError(_NAN_MESSAGE)
    else:
        out = eqx.error_if(out, jnp.any(jnp.isnan(out)), _NAN_MESSAGE)
    return out if log else jnp.exp(out)
