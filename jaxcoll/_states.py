r"""Initial states and their validation: ground, thermal (any sign of $\beta$), spin coherent.

Basis order is ascending energy: index 0 is the ground state (for the spin, $m = -J$).
Density matrices are returned as complex arrays, populations as real arrays.
"""

from __future__ import annotations

import functools
import math
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float

from . import _config  # noqa: F401
from ._validation import check_spin, is_concrete

__all__ = [
    "ground_populations",
    "ground_state",
    "thermal_populations",
    "thermal_state",
    "spin_coherent_state",
    "spin_coherent_populations",
    "validate_density_matrix",
    "validate_populations",
    "validate_state",
]


def _complex_dtype():
    return jnp.result_type(complex)


def _float_dtype():
    return jnp.result_type(float)


def _check_dim(d) -> int:
    if isinstance(d, bool | np.bool_) or not isinstance(d, numbers.Integral):
        raise TypeError(f"d must be a positive integer (the Hilbert-space dimension), got {d!r}")
    if d < 1:
        raise ValueError(f"d must be a positive integer (the Hilbert-space dimension), got {d}")
    return int(d)


def _diag_embed(p):
    """`(..., d)` -> `(..., d, d)` diagonal matrices."""
    d = p.shape[-1]
    return p[..., :, None] * jnp.eye(d, dtype=p.dtype)


# --- simple states ---------------------------------------------------------------------------


def ground_populations(d: int) -> Float[Array, " d"]:
    """Populations of the ground state: `[1, 0, ..., 0]` (index 0 is the lowest level).

    **Arguments:**
    - `d`: Hilbert-space dimension (for a spin, $2J+1$).

    **Returns:** a real array of shape `(d,)`.
    """
    d = _check_dim(d)
    return jnp.zeros(d, dtype=_float_dtype()).at[0].set(1.0)


def ground_state(d: int) -> Complex[Array, "d d"]:
    r"""Density matrix $|0\rangle\langle 0|$ of the ground state, complex, shape `(d, d)`."""
    return _diag_embed(ground_populations(d).astype(_complex_dtype()))


@jax.jit
def thermal_populations(energies: ArrayLike, beta: ArrayLike) -> Float[Array, "*batch d"]:
    r"""Gibbs populations $P_i = e^{-\beta\varepsilon_i} / \sum_j e^{-\beta\varepsilon_j}$.

    Valid for any real $\beta$, including $\beta = 0$ (uniform) and $\beta < 0$ (population
    inversion, the negative effective temperatures of eq. (21)). Evaluated as a softmax, so
    it never overflows, whatever $d\,|\beta|$.

    **Arguments:**
    - `energies`: levels $\varepsilon_i$, shape `(..., d)` (any order).
    - `beta`: inverse temperature, shape broadcastable with `energies[..., 0]`.

    **Returns:** real populations of shape `(..., d)` summing to one.
    """
    energies = jnp.asarray(energies, dtype=_float_dtype())
    beta = jnp.asarray(beta, dtype=_float_dtype())
    return jax.nn.softmax(-beta[..., None] * energies, axis=-1)


@jax.jit
def thermal_state(energies: ArrayLike, beta: ArrayLike) -> Complex[Array, "*batch d d"]:
    r"""Gibbs state $e^{-\beta h}/Z$ for $h = \mathrm{diag}(\varepsilon)$, any real $\beta$.

    **Arguments:** as `thermal_populations`.

    **Returns:** complex diagonal density matrices of shape `(..., d, d)`.
    """
    return _diag_embed(thermal_populations(energies, beta).astype(_complex_dtype()))


# --- spin coherent states ----------------------------------------------------------------------


def _log_abs_pow(x, k):
    """`k * log|x|` with the convention `0 * log 0 = 0` (so `0^0 = 1`); `k` a NumPy constant."""
    k = np.asarray(k, dtype=float)
    ax = jnp.abs(x)
    safe = jnp.where(ax > 0, ax, jnp.ones_like(ax))
    val = jnp.asarray(k) * jnp.log(safe)
    minus_inf = jnp.full_like(val, -jnp.inf)
    return jnp.where(jnp.asarray(k == 0), jnp.zeros_like(val), jnp.where(ax > 0, val, minus_inf))


def _sign_pow(x, k):
    """`sign(x)^k` for integer-valued NumPy `k` (1 where `k` is even)."""
    odd = jnp.asarray(np.mod(np.asarray(k), 2) == 1)
    return jnp.where(odd & (x < 0), -jnp.ones_like(x), jnp.ones_like(x))


def _cs_monomials(theta, a, b, log_norm):
    r"""$e^{N}\cos(\theta/2)^{a}\sin(\theta/2)^{b}$ for NumPy integer vectors `a`, `b`, `N`.

    Evaluated in log space (no overflow for large exponents), with a derivative that is exact
    also where $\cos(\theta/2)$ or $\sin(\theta/2)$ vanishes ($\theta = 0, \pi$), where the
    naive log-space derivative would be $0\cdot\infty$.

    `theta` has shape `(...)`; the result has shape `(..., len(a))`.
    """

    def value(th, aa, bb, nn):
        c = jnp.cos(0.5 * th)[..., None]
        s = jnp.sin(0.5 * th)[..., None]
        logmag = jnp.asarray(nn) + _log_abs_pow(c, aa) + _log_abs_pow(s, bb)
        return jnp.exp(logmag) * _sign_pow(c, aa) * _sign_pow(s, bb)

    @jax.custom_jvp
    def f(th):
        return value(th, a, b, log_norm)

    @f.defjvp
    def f_jvp(primals, tangents):
        (th,), (dth,) = primals, tangents
        out = f(th)
        # d/dθ c^a s^b = -(a/2) c^(a-1) s^(b+1) + (b/2) c^(a+1) s^(b-1); a term with a zero
        # prefactor is dropped (its exponent would be negative).
        am1 = np.maximum(a - 1, 0)
        bm1 = np.maximum(b - 1, 0)
        t1 = jnp.asarray(-0.5 * a) * value(th, am1, b + 1, log_norm)
        t2 = jnp.asarray(0.5 * b) * value(th, a + 1, bm1, log_norm)
        return out, (t1 + t2) * dth[..., None]

    return f(theta)


@functools.lru_cache(maxsize=32)
def _spin_binomial(J: float):
    d = int(round(2 * J)) + 1
    k_up = np.arange(d)  # J + m, m = -J..J in basis order
    k_dn = (d - 1) - k_up  # J - m
    n = d - 1
    # exact integers, then one correctly rounded log: no lgamma cancellation at large J
    log_binom = np.array([math.log(math.comb(n, int(k))) for k in k_up])
    return d, k_up, k_dn, log_binom


def spin_coherent_state(J, theta: ArrayLike, phi: ArrayLike = 0.0) -> Complex[Array, "*batch d d"]:
    r"""Spin coherent state $|\theta, \phi\rangle\langle\theta, \phi|$ in ascending-$m$ order.

    $$|\theta,\phi\rangle = \sum_{m=-J}^{J} \sqrt{\binom{2J}{J+m}}
      \cos^{J+m}(\theta/2)\,\sin^{J-m}(\theta/2)\,e^{-im\phi}\,|J, m\rangle,$$

    the state whose spin points along $(\sin\theta\cos\phi, \sin\theta\sin\phi, \cos\theta)$:
    $\langle \mathbf J\rangle = J(\sin\theta\cos\phi, \sin\theta\sin\phi, \cos\theta)$.
    Hence $\theta = 0$ is $m = +J$ (the top level for $h_S = \omega_S J_z$), $\theta = \pi$ the
    ground state $m = -J$ and $\theta = \pi/2$ lies on the equator. This agrees with QuTiP's
    `spin_coherent(J, theta, phi)` up to a global phase $e^{iJ\phi}$ (QuTiP lists $m = +J$
    first; reverse its basis to compare). Amplitudes are evaluated in log space, so large $J$
    (e.g. 1000) works; derivatives in $\theta$ and $\phi$ are finite everywhere.

    **Arguments:**
    - `J`: spin quantum number (concrete integer or half-integer; dimension $2J+1$).
    - `theta`: polar angle, any shape `(...)`.
    - `phi`: azimuth, broadcastable with `theta`.

    **Returns:** complex density matrices of shape `(..., 2J+1, 2J+1)`.
    """
    return _spin_coherent_state(check_spin(J), theta, phi)


@functools.partial(jax.jit, static_argnums=0)
def _spin_coherent_state(J: float, theta, phi):
    d, k_up, k_dn, log_binom = _spin_binomial(J)
    theta = jnp.asarray(theta, dtype=_float_dtype())
    phi = jnp.asarray(phi, dtype=_float_dtype())
    theta, phi = jnp.broadcast_arrays(theta, phi)
    amp = _cs_monomials(theta, k_up, k_dn, 0.5 * log_binom)
    m = jnp.asarray(np.arange(d) - J)
    phase = (-m * phi[..., None]).astype(_complex_dtype())
    psi = amp.astype(_complex_dtype()) * jnp.exp(1j * phase)
    return psi[..., :, None] * jnp.conj(psi[..., None, :])


def spin_coherent_populations(J, theta: ArrayLike) -> Float[Array, "*batch d"]:
    r"""Diagonal of `spin_coherent_state`: the binomial law
    $P_m = \binom{2J}{J+m}\cos^{2(J+m)}(\theta/2)\sin^{2(J-m)}(\theta/2)$, ascending $m$.

    **Arguments:**
    - `J`: spin quantum number (concrete).
    - `theta`: polar angle, any shape `(...)`.

    **Returns:** real populations of shape `(..., 2J+1)`.
    """
    return _spin_coherent_populations(check_spin(J), theta)


@functools.partial(jax.jit, static_argnums=0)
def _spin_coherent_populations(J: float, theta):
    _, k_up, k_dn, log_binom = _spin_binomial(J)
    theta = jnp.asarray(theta, dtype=_float_dtype())
    return _cs_monomials(theta, 2 * k_up, 2 * k_dn, log_binom)


# --- validation -------------------------------------------------------------------------------


def _default_tol(dtype) -> float:
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.inexact):
        dtype = np.dtype(float)
    return float(np.sqrt(np.finfo(dtype).eps))


def _shape_text(d: int, kinds: tuple[str, ...]) -> str:
    shapes = {"populations": f"({d},)", "density": f"({d}, {d})"}
    return " or ".join(shapes[k] for k in kinds)


def _as_array(x, name: str):
    if isinstance(x, str | bytes) or x is None:
        raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    if isinstance(x, jax.Array | np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as err:  # ragged lists etc.
            raise TypeError(f"{name} must be an array, got {type(x).__name__}") from err
    if not jnp.issubdtype(arr.dtype, jnp.number):
        raise TypeError(f"{name} must be a real or complex numeric array, got dtype {arr.dtype}")
    return arr


def validate_populations(
    p, d: int, name: str = "rho0", *, atol: float | None = None, batch: bool = False
) -> Float[Array, "*batch d"]:
    """Check a population vector: shape `(d,)`, real, finite, non-negative, summing to one.

    Concrete input raises `ValueError` (`TypeError` for a non-numeric or complex-valued
    array) naming `name` and showing what came; traced input is checked at run time with
    `eqx.error_if`, so this works under `jit`/`vmap`/`grad`.

    **Arguments:**
    - `p`: the populations.
    - `d`: expected dimension.
    - `name`: argument name used in messages.
    - `atol`: tolerance for the sum and for negative entries; default
      $\\sqrt{\\varepsilon}$ of the input's floating dtype ($1.5\\times10^{-8}$ in float64).
    - `batch`: allow leading batch dimensions `(..., d)`.

    **Returns:** `p` as a real floating JAX array (use it: the traced checks live on it).
    """
    return _validate(p, d, name, ("populations",), atol, batch, True)


def validate_density_matrix(
    rho,
    d: int,
    name: str = "rho0",
    *,
    atol: float | None = None,
    batch: bool = False,
    positivity: bool = True,
) -> Complex[Array, "*batch d d"]:
    """Check a density matrix: shape `(d, d)`, finite, Hermitian, unit trace, positive.

    Concrete input raises `ValueError` naming `name` and showing what came (e.g.
    "rho0 must have shape (5, 5), got (4, 4)"); traced input is checked at run time with
    `eqx.error_if`.

    **Arguments:**
    - `rho`: the density matrix.
    - `d`: expected dimension.
    - `name`: argument name used in messages.
    - `atol`: tolerance for hermiticity, trace and negative eigenvalues; default
      $\\sqrt{\\varepsilon}$ of the input's floating dtype.
    - `batch`: allow leading batch dimensions `(..., d, d)`.
    - `positivity`: also check that no eigenvalue is below `-atol` (an $O(d^3)$ `eigvalsh`).

    **Returns:** `rho` as a complex JAX array (use it: the traced checks live on it).
    """
    return _validate(rho, d, name, ("density",), atol, batch, positivity)


def validate_state(
    rho0,
    d: int,
    name: str = "rho0",
    *,
    atol: float | None = None,
    positivity: bool = True,
) -> Float[Array, " d"] | Complex[Array, "d d"]:
    """Check an initial state that is either populations `(d,)` or a density matrix `(d, d)`.

    Dispatches on the number of dimensions to `validate_populations` or
    `validate_density_matrix`; a wrong shape reports both accepted shapes,
    e.g. "rho0 must have shape (5,) or (5, 5), got (4, 4)".

    **Returns:** real populations or a complex density matrix.
    """
    return _validate(rho0, d, name, ("populations", "density"), atol, False, positivity)


def _validate(x, d, name, kinds, atol, batch, positivity):
    d = _check_dim(d)
    x = _as_array(x, name)
    shape = tuple(x.shape)
    if "populations" in kinds and (len(shape) == 1 or (batch and len(shape) >= 1)):
        kind = "populations" if shape[-1:] == (d,) else None
    elif "density" in kinds and (len(shape) == 2 or (batch and len(shape) >= 2)):
        kind = "density" if shape[-2:] == (d, d) else None
    else:
        kind = None
    if kind is None:
        lead = "(..., " if batch else "("
        want = _shape_text(d, kinds)
        if batch:
            want = want.replace("(", lead)
        raise ValueError(f"{name} must have shape {want}, got {shape}")

    tol = _default_tol(x.dtype) if atol is None else float(atol)
    if kind == "populations":
        return _validate_populations(x, name, tol)
    return _validate_density(x, d, name, tol, positivity)


def _validate_populations(x, name, tol):
    is_complex = jnp.issubdtype(x.dtype, jnp.complexfloating)
    if is_concrete(x):
        arr = np.asarray(x)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got {arr}")
        if is_complex:
            if np.max(np.abs(arr.imag), initial=0.0) > tol:
                raise ValueError(f"{name} populations must be real, got {arr}")
            arr = arr.real
        arr = arr.astype(float)
        if np.any(arr < -tol):
            bad = arr[arr < -tol].ravel()[:3]
            raise ValueError(f"{name} populations must be non-negative, got entries {bad}")
        total = arr.sum(axis=-1)
        if np.any(np.abs(total - 1.0) > tol):
            raise ValueError(f"{name} populations must sum to 1, got sum {total}")
        return jnp.asarray(arr, dtype=_float_dtype())
    xa = jnp.asarray(x)
    imag_bad = jnp.any(jnp.abs(jnp.imag(xa)) > tol) if is_complex else jnp.asarray(False)
    p = jnp.real(xa).astype(_float_dtype())
    checks = [
        (jnp.any(~jnp.isfinite(p)) | jnp.any(~jnp.isfinite(jnp.imag(xa))), "be finite"),
        (imag_bad, "be real"),
        (jnp.any(p < -tol), "be non-negative"),
        (jnp.any(jnp.abs(jnp.sum(p, axis=-1) - 1.0) > tol), "sum to 1"),
    ]
    return _error_if(p, checks, f"{name} populations must ")


def _validate_density(x, d, name, tol, positivity):
    if is_concrete(x):
        arr = np.asarray(x).astype(complex)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got non-finite entries")
        herm = np.max(np.abs(arr - np.conj(np.swapaxes(arr, -1, -2))), initial=0.0)
        if herm > tol:
            raise ValueError(f"{name} must be Hermitian, got max |rho - rho^H| = {herm:.3g}")
        tr = np.trace(arr, axis1=-2, axis2=-1)
        if np.any(np.abs(tr - 1.0) > tol):
            raise ValueError(f"{name} must have trace 1, got trace {np.round(tr, 12)}")
        if positivity:
            w = np.linalg.eigvalsh(0.5 * (arr + np.conj(np.swapaxes(arr, -1, -2))))
            if np.min(w) < -tol:
                raise ValueError(
                    f"{name} must be positive semidefinite, got eigenvalue {np.min(w):.3g}"
                )
        return jnp.asarray(arr, dtype=_complex_dtype())
    rho = jnp.asarray(x).astype(_complex_dtype())
    rho_h = jnp.conj(jnp.swapaxes(rho, -1, -2))
    checks = [
        (jnp.any(~jnp.isfinite(rho)), "be finite"),
        (jnp.any(jnp.abs(rho - rho_h) > tol), "be Hermitian"),
        (jnp.any(jnp.abs(jnp.trace(rho, axis1=-2, axis2=-1) - 1.0) > tol), "have trace 1"),
    ]
    if positivity:
        w = jnp.linalg.eigvalsh(0.5 * (rho + rho_h))
        checks.append((jnp.any(w < -tol), "be positive semidefinite"))
    return _error_if(rho, checks, f"{name} must ")


def _error_if(x, checks, prefix):
    preds = jnp.stack([c for c, _ in checks])
    index = jnp.argmax(preds)
    msgs = [prefix + what for _, what in checks]
    return eqx.branched_error_if(x, jnp.any(preds), index, msgs)
