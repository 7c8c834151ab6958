"""References and test models shared by the tests.

The closed forms and quadratures use SciPy only, nothing of jaxcoll. The models at the end are
what a user would write: `jaxcoll.CollisionalModel` inputs drawn at random, and subclasses of
the public `jaxcoll.AbstractModel` protocol, whose dense superoperators the tests build
independently.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy import special
from scipy.integrate import quad

import jaxcoll


def I_ref(alpha, s):
    """Closed form of eq. (20) with SciPy's exponentially scaled K_1:
    |s| e^{-alpha s/2} K_1(|s| kappa/2)/kappa, kappa = sqrt(alpha (alpha + 4))."""
    alpha = float(alpha)
    s = float(s)
    kap = np.sqrt(alpha * (alpha + 4.0))
    if s == 0.0:
        return 2.0 / (alpha * (alpha + 4.0))
    x = abs(s) * kap / 2.0
    return abs(s) * np.exp(-alpha * s / 2.0 - x) * special.k1e(x) / kap


def spin_rates_ref(omega_s, delta, T_a, T_m, E_R=1.0, gamma_tilde=1.0):
    """Eq. (19): Gamma_pm = Gamma~ I(E_R/T_m, -+delta/E_R) / (1 + exp(+-omega_a/T_a))."""
    omega_a = omega_s + delta
    gp = gamma_tilde * I_ref(E_R / T_m, -delta / E_R) / (1.0 + np.exp(omega_a / T_a))
    gm = gamma_tilde * I_ref(E_R / T_m, delta / E_R) / (1.0 + np.exp(-omega_a / T_a))
    return gp, gm


def birth_death_generator(j, gp, gm):
    """Dense generator of eq. (11) for the spin of eq. (18), levels m = -j..j ascending:
    m -> m+1 at gp |<m+1|J+|m>|^2 = gp (j - m)(j + m + 1), m+1 -> m at gm times the same.
    Columns sum to zero (dP/dt = L P)."""
    d = int(round(2 * j)) + 1
    m = np.arange(d) - j
    c2 = (j - m[:-1]) * (j + m[:-1] + 1.0)
    i = np.arange(d - 1)
    L = np.zeros((d, d))
    L[i + 1, i] += gp * c2
    L[i, i] -= gp * c2
    L[i, i + 1] += gm * c2
    L[i + 1, i + 1] -= gm * c2
    return L


def ergotropy_ref(p, e):
    """Eq. (23): sum_i e_i p_i minus the passive energy (populations sorted descending onto
    ascending energies e). `p` may carry leading axes `(..., d)`."""
    p = np.asarray(p)
    e = np.asarray(e)
    w = p @ e - np.sort(p, axis=-1)[..., ::-1] @ np.sort(e)
    return float(w) if w.ndim == 0 else w


def ergotropy_density_ref(rho, h):
    """The general ergotropy tr(rho h) - sum_k r_k^desc e_k^asc (eigenvalues by NumPy)."""
    r = np.sort(np.linalg.eigvalsh(rho))[::-1]
    e = np.sort(np.linalg.eigvalsh(h))
    return max(float(np.real(np.trace(rho @ h)) - r @ e), 0.0)


def I_quad(alpha, s):
    """Eq. (20) by adaptive SciPy quadrature, integrand in log space (no overflow of sinh)."""

    def f(z):
        a = 2.0 * math.sqrt(z) * math.sqrt(max(z - s, 0.0))
        return 0.5 * math.exp(s - (2.0 + alpha) * z + a) * -math.expm1(-2.0 * a)

    lo = max(0.0, s)
    # split at the integrand's scale so quad resolves the peak and the tail
    mid = lo + 10.0 / (2.0 + alpha)
    kw = dict(epsabs=0, epsrel=1e-12, limit=400)
    return quad(f, lo, mid, **kw)[0] + quad(f, mid, np.inf, **kw)[0]


def fig2_rates_ref(D, A, alpha):
    """Eq. (19) divided by Gamma~ in the parameters of Fig. 2 (delta / E_R = D / alpha,
    omega_a / T_a = A): (I(alpha, -D/alpha) / (1 + e^A), I(alpha, D/alpha) / (1 + e^-A))."""
    gp = I_ref(alpha, -D / alpha) / (1.0 + np.exp(A))
    gm = I_ref(alpha, D / alpha) / (1.0 + np.exp(-A))
    return gp, gm


def square_well_fourier(k):
    """3-D Fourier transform of the square well g(r) = 1 for r < 1: 4 pi j_1(k)/k."""
    if k < 1e-3:
        return 4.0 * math.pi / 3.0 * (1.0 - k * k / 10.0)
    return 4.0 * math.pi * (math.sin(k) - k * math.cos(k)) / k**3


def profile_integral_ref(fourier, alpha, s, w=0.0):
    """I_g(alpha, s, w) of eq. (12) for an isotropic profile with 3-D Fourier transform
    `fourier`, by SciPy quadrature of 1/(8 pi^3 alpha) int_0^inf dk k G(k)^2 M(alpha, c, w),
    c = (k + s/k)/2, M = 1/2 int_{-1}^{1} dmu exp(-alpha (c + w mu)^2) (numerically in mu)."""

    def mean(c):
        if w == 0.0:
            return math.exp(-alpha * c * c)
        f = lambda mu: math.exp(-alpha * (c + w * mu) ** 2)  # noqa: E731
        return 0.5 * quad(f, -1.0, 1.0, epsabs=0, epsrel=1e-13)[0]

    f = lambda k: k * fourier(k) ** 2 * mean((k + s / k) / 2.0)  # noqa: E731
    edges = [1e-12, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64]
    kw = dict(epsabs=0, epsrel=1e-12, limit=200)
    total = sum(quad(f, a, b, **kw)[0] for a, b in zip(edges[:-1], edges[1:], strict=True))
    return total / (8.0 * math.pi**3 * alpha)


def profile_rates_ref(fourier, omega_s, delta, T_a, T_m, *, gamma_tilde, E_R=1.0, drift=0.0):
    """Eq. (19) with I_g of the profile (`profile_integral_ref`) in place of I:
    Gamma_pm = Gamma~ I_g(E_R/T_m, -+delta/E_R, drift) / (1 + exp(+-omega_a/T_a))."""
    alpha, s, A = E_R / T_m, delta / E_R, (omega_s + delta) / T_a
    gp = gamma_tilde * profile_integral_ref(fourier, alpha, -s, drift) / (1.0 + math.exp(A))
    gm = gamma_tilde * profile_integral_ref(fourier, alpha, s, drift) / (1.0 + math.exp(-A))
    return gp, gm


# --- random inputs -------------------------------------------------------------------------------


def random_rho(rng, d):
    """A random full-rank density matrix `(d, d)`: z z^dagger / tr for a complex Gaussian z."""
    z = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    rho = z @ z.conj().T
    return rho / np.trace(rho).real


def random_hermitian(rng, n):
    """A random Hermitian matrix `(n, n)`: (z + z^dagger)/2 for a complex Gaussian z."""
    z = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    return 0.5 * (z + z.conj().T)


# (seed, d, k, spectrum, shift) of `random_collisional_model`, shift: density and coupling (a
# forward shift h_eff) rather than gamma_tilde alone
RANDOM_MODEL_CASES = [
    (0, 2, 2, "random", False),
    (1, 5, 3, "random", True),
    (2, 6, 2, "equidistant", False),
    (3, 7, 3, "repeated", True),
    (4, 8, 2, "folded", False),
]


def random_collisional_model(seed, d, k, spectrum, **kw):
    """A `CollisionalModel` with a random coupling, `T_a = 1.3`, `T_m = 0.8` and `h_s` of the kind
    `spectrum`: "random", "equidistant", "repeated" (degenerate levels in a rotated basis) or the
    folded ladder of the sector benchmark. Returns the model and its generator (for more draws)."""
    rng = np.random.default_rng(seed)
    m = np.arange(d) - (d - 1) / 2
    if spectrum == "random":
        h = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
        hs = h + h.conj().T
    elif spectrum == "equidistant":
        hs = np.diag(0.8 * m)
    elif spectrum == "repeated":
        lev = np.sort(rng.integers(0, 3, size=d)) * 0.7
        q, _ = np.linalg.qr(rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d)))
        hs = q @ np.diag(lev) @ q.conj().T
    else:  # the folded ladder of the benchmark
        hs = np.diag(m + 0.05 * m**2) if d < 5 else np.diag((m + 2) + 0.5 * (m + 2) ** 2)
    ha = np.diag(np.sort(rng.uniform(0, 2, size=k)))
    v = rng.normal(size=(d * k, d * k)) + 1j * rng.normal(size=(d * k, d * k))
    return jaxcoll.CollisionalModel(hs, ha, v + v.conj().T, T_a=1.3, T_m=0.8, **kw), rng


# --- user models of the AbstractModel protocol ---------------------------------------------------


class Oscillator(jaxcoll.AbstractModel):
    """A user's model: truncated harmonic oscillator, a -> a (x) sigma_+ and h.c. channels."""

    omega: jax.Array
    T_a: jax.Array
    T_m: jax.Array
    E_R: jax.Array
    n: int = eqx.field(static=True)

    @property
    def dim(self):
        return self.n

    def energies(self):
        return self.omega * jnp.arange(self.n, dtype=float)

    def channels(self):
        i = np.arange(self.n - 1)
        amp = jnp.sqrt(jnp.arange(1, self.n, dtype=float)).astype(complex)
        up = jnp.exp(-self.omega / self.T_a)
        return jaxcoll.Channels(
            bohr=jnp.stack([self.omega, -self.omega]),
            ancilla=jnp.stack([-self.omega, self.omega]),
            rates=jnp.stack([0.3 * up, 0.3 * jnp.ones(())]),
            channel=np.repeat([0, 1], self.n - 1),
            row=np.concatenate([i + 1, i]),
            col=np.concatenate([i, i + 1]),
            value=jnp.concatenate([amp, amp]),
            dim=self.n,
        )


class ListedModel(jaxcoll.AbstractModel):
    """A user's model written out by hand: its levels and one list of channel entries, each a
    unit matrix element `|row><col|` of operator `channel` (`T_a = T_m = E_R = 1`)."""

    levels: jax.Array
    bohr: jax.Array
    ancilla: jax.Array
    rates: jax.Array
    T_a: jax.Array
    T_m: jax.Array
    E_R: jax.Array
    entries: tuple = eqx.field(static=True)  # (channel, row, col)

    def __init__(self, levels, *, bohr, ancilla, rates, channel, row, col):
        self.levels, self.bohr = jnp.array(levels), jnp.array(bohr)
        self.ancilla, self.rates = jnp.array(ancilla), jnp.array(rates)
        self.T_a = self.T_m = self.E_R = jnp.array(1.0)
        self.entries = (tuple(channel), tuple(row), tuple(col))

    @property
    def dim(self):
        return self.levels.shape[0]

    def energies(self):
        return self.levels

    def channels(self):
        channel, row, col = (list(x) for x in self.entries)
        value = jnp.ones(len(row), dtype=complex)
        return jaxcoll.Channels(
            self.bohr, self.ancilla, self.rates, channel, row, col, value, self.dim
        )
