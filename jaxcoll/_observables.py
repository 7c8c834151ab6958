r"""Observables: energy, ergotropy (eq. 23 and the general definition), entropies, spin moments.

All functions are pure `jax.numpy`, accept leading batch dimensions, and have finite
gradients everywhere they are finite: at passive states ($\mathcal W = 0$), at degenerate
spectra and at vanishing eigenvalues (no $0\cdot\log 0$ or eigenvector derivatives leak NaN).
Basis order is ascending energy (index 0 is the ground state).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float

from . import _config

__all__ = [
    "energy",
    "energy_populations",
    "energy_operator",
    "ergotropy",
    "ergotropy_populations",
    "passive_energy",
    "passive_energy_populations",
    "von_neumann_entropy",
    "shannon_entropy",
    "relative_entropy",
    "relative_entropy_populations",
    "spin_expectations",
    "spin_expectations_from_bands",
]


def _real(x):
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        return jnp.real(x)
    return x.astype(jnp.result_type(float)) if not jnp.issubdtype(x.dtype, jnp.floating) else x


def _common(*xs):
    """Cast arrays to one floating dtype (complex if any is complex): strict-promotion safe."""
    xs = [jnp.asarray(x) for x in xs]
    if any(jnp.issubdtype(x.dtype, jnp.complexfloating) for x in xs):
        dt = jnp.result_type(complex)
    else:
        dt = jnp.result_type(float)
    return [x.astype(dt) for x in xs]


def _xlogx(x):
    """$x\\ln x$ with $0\\ln 0 = 0$ and $x \\le 0$ clipped to 0; gradient finite (double where)."""
    pos = x > 0
    safe = jnp.where(pos, x, jnp.ones_like(x))
    return jnp.where(pos, safe * jnp.log(safe), jnp.zeros_like(x))


# --- energy ------------------------------------------------------------------------------------


@jax.jit
def energy_populations(p: ArrayLike, energies: ArrayLike) -> Float[Array, "*batch"]:
    r"""Mean energy $\sum_i P_i \varepsilon_i$ of populations `p` `(..., d)`."""
    p, e = _real(p), _real(energies)
    return jnp.sum(p * e, axis=-1)


@functools.partial(jax.jit, static_argnames="kind")
def energy(
    rho_or_p: ArrayLike, energies: ArrayLike, *, kind: str = "auto"
) -> Float[Array, "*batch"]:
    r"""Mean energy $\mathrm{tr}(\rho h)$ for $h = \mathrm{diag}(\varepsilon)$ in the energy basis.

    $$E = \mathrm{tr}(\rho h) = \sum_i \rho_{ii}\,\varepsilon_i \quad\text{or}\quad
      E = \sum_i P_i\,\varepsilon_i .$$

    **Arguments:**
    - `rho_or_p`: a density matrix `(..., d, d)` or populations `(..., d)`.
    - `energies`: the levels $\varepsilon_i$, shape `(..., d)`.
    - `kind`: `"density"`, `"populations"`, or `"auto"` (default): an input whose last two
      axes are `(d, d)` is read as density matrices, anything else as populations. A stack
      of exactly `d` population vectors is therefore ambiguous: pass `kind="populations"`
      (or call `energy_populations`).

    **Returns:** the real energy, shape `(...)`.
    """
    x = jnp.asarray(rho_or_p)
    d = jnp.shape(energies)[-1]
    if kind == "auto":
        kind = "density" if x.ndim >= 2 and x.shape[-2:] == (d, d) else "populations"
    if kind == "density":
        return energy_populations(_real(jnp.diagonal(x, axis1=-2, axis2=-1)), energies)
    if kind == "populations":
        return energy_populations(x, energies)
    raise ValueError(f"kind must be 'auto', 'density' or 'populations', got {kind!r}")


@jax.jit
def energy_operator(rho: ArrayLike, h: ArrayLike) -> Float[Array, "*batch"]:
    r"""$\mathrm{tr}(\rho h)$ for a general Hermitian `h` `(..., d, d)`; real, shape `(...)`."""
    rho, h = _common(rho, h)
    return _real(jnp.einsum("...ij,...ji->...", rho, h))


# --- ergotropy ---------------------------------------------------------------------------------

# Sorting for eq. (23) and the passive energy. On CPU the sort runs in NumPy through a callback
# (the permutation only when differentiating): XLA's CPU sort is much slower and would dominate
# the cost of ergotropy curves (timings: benchmarks/README.md, "Host sort and spectra").
# Timsort ("stable") is adaptive: populations are nearly unimodal along the ladder, so it runs
# in about linear time. Elsewhere (GPU), and for short rows (where the fixed cost of a callback
# dominates), `lax.sort`.


def _descending(x):
    return np.flip(np.sort(x, axis=-1, kind="stable"), axis=-1)


def _host_eq23(q, e):
    q = np.asarray(q)
    return np.sum(np.asarray(e) * (q - _descending(q)), axis=-1).astype(q.dtype)


def _host_passive(r, e):
    r = np.asarray(r)
    return np.sum(np.asarray(e) * _descending(r), axis=-1).astype(r.dtype)


def _host_argsort_descending(x):
    return np.flip(np.argsort(np.asarray(x), axis=-1, kind="stable"), axis=-1).astype(np.int32)


def _sorted_form(host, combine):
    """`f(x, e) = combine(x, x_desc, e)` summed over the last axis, sorted on the host."""

    @jax.custom_jvp
    def f(x, e):
        out = jax.ShapeDtypeStruct(x.shape[:-1], x.dtype)
        return jax.pure_callback(host, out, x, e, vmap_method="expand_dims")

    @f.defjvp
    def f_jvp(primals, tangents):
        (x, e), (dx, de) = primals, tangents
        idx = jax.pure_callback(
            _host_argsort_descending,
            jax.ShapeDtypeStruct(x.shape, jnp.int32),
            x,
            vmap_method="expand_dims",
        )
        xd = jnp.take_along_axis(x, idx, axis=-1)
        dxd = jnp.take_along_axis(dx, idx, axis=-1)
        value = jnp.sum(combine(x, xd, e), axis=-1)
        tangent = jnp.sum(combine(dx, dxd, e) + combine(x, xd, de), axis=-1)
        return value, tangent

    def dispatch(x, e):
        def default(x, e):
            xd = jnp.flip(jnp.sort(x, axis=-1), axis=-1)
            return jnp.sum(combine(x, xd, e), axis=-1)

        if x.shape[-1] < _HOST_SORT_MIN:
            return default(x, e)
        return _config.platform_dependent(x, e, cpu=f, default=default)

    return dispatch


_HOST_SORT_MIN = 512

# eq. (23): sum_i e_i [q_i - q^desc_i], q the populations in ascending order of the levels e.
# One sum of differences: exactly zero for a passive state (q already non-increasing).
_eq23 = _sorted_form(_host_eq23, lambda q, qd, e: e * (q - qd))
# Passive energy sum_k r^desc_k e^asc_k of a spectrum r (general ergotropy).
_passive_energy = _sorted_form(_host_passive, lambda r, rd, e: e * rd)


def _ergotropy_ascending(q, e_asc):
    r"""Eq. (23) for populations `q` listed in the ascending order of the levels `e_asc`:
    $\mathcal W = \sum_i \varepsilon^\uparrow_i [q_i - q^\downarrow_i]$, one sum of differences,
    hence exactly zero for passive populations (and with zero gradient there). The one
    implementation of eq. (23): `ergotropy_populations` sorts the levels first; `evolve` and
    the functionals, whose levels are already ascending, call it directly."""
    w = _eq23(q, e_asc)
    return jnp.where(w > 0, w, jnp.zeros_like(w))  # clip rounding noise below zero


@jax.jit
def passive_energy_populations(p: ArrayLike, energies: ArrayLike) -> Float[Array, "*batch"]:
    r"""Energy of the passive rearrangement: $\sum_k P_k^{\downarrow}\,\varepsilon_k^{\uparrow}$."""
    p, e = jnp.broadcast_arrays(_real(p), _real(energies))
    p_desc = -jnp.sort(-p, axis=-1)
    return jnp.sum(p_desc * jnp.sort(e, axis=-1), axis=-1)


@jax.jit
def ergotropy_populations(p: ArrayLike, energies: ArrayLike) -> Float[Array, "*batch"]:
    r"""Ergotropy of an energy-diagonal state, eq. (23).

    $$\mathcal W = \sum_i \varepsilon_i^{\uparrow}\left[P(\varepsilon_i^{\uparrow})
      - P^{\downarrow}(\varepsilon_i^{\uparrow})\right],$$

    with the levels sorted ascending (the populations follow their levels) and $P^\downarrow$
    the populations sorted descending. `energies` need not be sorted; for the spin,
    $\omega_S m$ in basis order already is. Zero for passive states (populations
    non-increasing in energy, e.g. Gibbs states at $T \ge 0$), positive otherwise.

    The gradient is that of the smooth branch selected by the sort: finite everywhere,
    including at $\mathcal W = 0$ and at degenerate populations (where $\mathcal W$ has a
    kink and any subgradient is a valid answer).

    **Arguments:**
    - `p`: populations `(..., d)`.
    - `energies`: levels `(..., d)`, broadcastable with `p`.

    **Returns:** $\mathcal W \ge 0$, shape `(...)`, in the units of `energies`.
    """
    p, e = jnp.broadcast_arrays(_real(p), _real(energies))
    dtype = jnp.promote_types(p.dtype, e.dtype)
    p, e = p.astype(dtype), e.astype(dtype)
    up = jnp.argsort(e, axis=-1)  # the levels ascending, their populations with them
    return _ergotropy_ascending(
        jnp.take_along_axis(p, up, axis=-1), jnp.take_along_axis(e, up, axis=-1)
    )


@jax.jit
def passive_energy(rho: ArrayLike, h: ArrayLike) -> Float[Array, "*batch"]:
    r"""Passive energy $\sum_k r_k^\downarrow e_k^\uparrow$ of the spectrum of `rho` under `h`.

    $r^\downarrow$ are the eigenvalues of $\rho$ in descending order and $e^\uparrow$ those of
    `h` ascending. Invariant under $\rho \to U\rho U^\dagger$.
    """
    rho, h = _common(rho, h)
    r_desc = jnp.flip(jnp.linalg.eigvalsh(rho), axis=-1)  # eigvalsh is ascending
    e_asc = jnp.linalg.eigvalsh(h)
    return jnp.sum(r_desc * e_asc, axis=-1)


@jax.jit
def ergotropy(rho: ArrayLike, h: ArrayLike) -> Float[Array, "*batch"]:
    r"""Ergotropy of any state: the most energy a cyclic unitary can extract.

    $$\mathcal W(\rho) = \mathrm{tr}(\rho h) - \sum_k r_k^{\downarrow} e_k^{\uparrow},$$

    $r^\downarrow$ the eigenvalues of $\rho$ descending, $e^\uparrow$ those of $h$ ascending.
    On energy-diagonal states it reduces to eq. (23) (`ergotropy_populations`, cheaper).
    Zero for passive states; for a pure state $\mathcal W = \mathrm{tr}(\rho h) - e_{\min}$.
    Only eigenvalues are differentiated, so gradients stay finite at degenerate spectra.

    **Arguments:**
    - `rho`: density matrices `(..., d, d)`.
    - `h`: Hermitian Hamiltonians `(..., d, d)`, broadcastable with `rho`.

    **Returns:** $\mathcal W \ge 0$, shape `(...)`.
    """
    w = energy_operator(rho, h) - passive_energy(rho, h)
    return jnp.where(w > 0, w, jnp.zeros_like(w))


# --- entropies -----------------------------------------------------------------------------------


@jax.jit
def shannon_entropy(p: ArrayLike) -> Float[Array, "*batch"]:
    r"""$H(P) = -\sum_i P_i \ln P_i$ (nats), with $0\ln 0 = 0$; shape `(...)` from `(..., d)`."""
    return -jnp.sum(_xlogx(_real(p)), axis=-1)


@jax.jit
def von_neumann_entropy(rho: ArrayLike) -> Float[Array, "*batch"]:
    r"""$S(\rho) = -\mathrm{tr}\,\rho\ln\rho$ (nats), the entropy of the second law, eq. (16).

    Eigenvalues are clipped at zero (rounding can make them slightly negative); the
    gradient is finite also for pure states.
    """
    (rho,) = _common(rho)
    return -jnp.sum(_xlogx(jnp.linalg.eigvalsh(rho)), axis=-1)


@jax.jit
def relative_entropy_populations(p: ArrayLike, q: ArrayLike) -> Float[Array, "*batch"]:
    r"""Kullback-Leibler divergence $D(P\|Q) = \sum_i P_i \ln(P_i / Q_i)$ (nats).

    $+\infty$ where some $P_i > 0$ has $Q_i = 0$. The second law (16) says that
    $D(P(t)\,\|\,\gamma)$ decreases in time towards the Gibbs state $\gamma$.
    """
    p, q = jnp.broadcast_arrays(_real(p), _real(q))
    q_pos = q > 0
    q_safe = jnp.where(q_pos, q, jnp.ones_like(q))
    cross = jnp.where(p > 0, p * jnp.log(q_safe), jnp.zeros_like(p))
    off_support = jnp.any((p > 0) & ~q_pos, axis=-1)
    d = jnp.sum(_xlogx(p) - cross, axis=-1)
    return jnp.where(off_support, jnp.full_like(d, jnp.inf), d)


def _log_divided_difference(s):
    r"""$\Lambda_{ij} = (\ln s_i - \ln s_j)/(s_i - s_j)$, and $1/s_i$ on (near) coincidences."""
    si, sj = s[..., :, None], s[..., None, :]
    u = (si - sj) / sj
    nz = u != 0
    u_safe = jnp.where(nz, u, jnp.ones_like(u))
    ratio = jnp.where(nz, jnp.log1p(u_safe) / u_safe, jnp.ones_like(u))  # accurate for tiny u
    return ratio / sj


def _support_threshold(s):
    eps = jnp.finfo(s.dtype).eps
    return 10 * s.shape[-1] * eps * jnp.max(jnp.abs(s), axis=-1, keepdims=True)


@jax.custom_jvp
def _tr_rho_log_sigma(rho, sigma):
    r"""$\mathrm{tr}(\rho\ln\sigma)$; $-\infty$ when $\rho$ has weight outside supp $\sigma$.

    The derivative in $\sigma$ uses the Daleckii-Krein formula with divided differences of
    $\ln$, exact also for degenerate $\sigma$ (where eigenvector derivatives are undefined).
    """
    s, v = jnp.linalg.eigh(sigma)
    weights = _real(jnp.diagonal(jnp.conj(jnp.swapaxes(v, -1, -2)) @ rho @ v, axis1=-2, axis2=-1))
    return _cross_value(s, weights)


def _cross_value(s, weights):
    thr = _support_threshold(s)
    pos = s > thr
    s_safe = jnp.where(pos, s, jnp.ones_like(s))
    val = jnp.sum(jnp.where(pos, weights * jnp.log(s_safe), jnp.zeros_like(s)), axis=-1)
    off = jnp.any(~pos & (weights > thr), axis=-1)
    return jnp.where(off, jnp.full_like(val, -jnp.inf), val)


@_tr_rho_log_sigma.defjvp
def _tr_rho_log_sigma_jvp(primals, tangents):
    rho, sigma = primals
    drho, dsigma = tangents
    s, v = jnp.linalg.eigh(sigma)
    vh = jnp.conj(jnp.swapaxes(v, -1, -2))
    rho_t = vh @ rho @ v
    out = _cross_value(s, _real(jnp.diagonal(rho_t, axis1=-2, axis2=-1)))
    # Singular sigma: the derivative genuinely diverges; clip to keep it finite.
    tiny = _support_threshold(s)
    s_clip = jnp.maximum(s, jnp.maximum(tiny, jnp.finfo(s.dtype).tiny))
    log_s = jnp.log(s_clip)
    d_rho = jnp.sum(_real(jnp.diagonal(vh @ drho @ v, axis1=-2, axis2=-1)) * log_s, axis=-1)
    lam = _log_divided_difference(s_clip).astype(rho_t.dtype)
    x = vh @ dsigma @ v
    d_sigma = _real(jnp.sum(jnp.swapaxes(rho_t, -1, -2) * lam * x, axis=(-2, -1)))
    return out, d_rho + d_sigma


@jax.jit
def relative_entropy(rho: ArrayLike, sigma: ArrayLike) -> Float[Array, "*batch"]:
    r"""Quantum relative entropy $D(\rho\|\sigma) = \mathrm{tr}\,\rho(\ln\rho - \ln\sigma)$ (nats).

    $+\infty$ when the support of $\rho$ is not inside that of $\sigma$. Monotone decrease of
    $D(\rho(t)\,\|\,\gamma_S)$ towards a stationary Gibbs state $\gamma_S$ is the second law,
    eq. (16). Differentiable in both arguments, also at degenerate spectra; gradients in
    $\sigma$ grow without bound as $\sigma$ becomes singular.

    **Arguments:**
    - `rho`, `sigma`: density matrices `(..., d, d)` (broadcastable).

    **Returns:** $D \ge 0$, real, shape `(...)`.
    """
    rho, sigma = _common(rho, sigma)
    rho, sigma = jnp.broadcast_arrays(rho, sigma)
    return -von_neumann_entropy(rho) - _tr_rho_log_sigma(rho, sigma)


# --- spin moments -----------------------------------------------------------------------------


@jax.jit
def spin_expectations_from_bands(
    bands: ArrayLike, ladder: ArrayLike, m: ArrayLike
) -> tuple[Float[Array, "*batch"], Complex[Array, "*batch"]]:
    r"""$(\langle J_z\rangle, \langle J_+\rangle)$ from the band representation of $\rho$.

    `bands[..., q, i]` $= \rho_{i, i+q}$ (see `to_bands` in the spin module). With
    $(J_+)_{i+1, i} = c_i$ (`ladder`),
    $$\langle J_z\rangle = \sum_i m_i\,\rho_{ii},\qquad
      \langle J_+\rangle = \mathrm{tr}(\rho J_+) = \sum_i c_i\,\rho_{i,i+1},$$
    so $\langle J_x\rangle = \mathrm{Re}\langle J_+\rangle$ and
    $\langle J_y\rangle = \mathrm{Im}\langle J_+\rangle$. Costs $O(d)$. The moments are in
    the frame the bands are in (band 1 rotates at $\omega_S$ in the lab frame).

    **Arguments:**
    - `bands`: `(..., d, d)` band array.
    - `ladder`: $c_i = \sqrt{(J - m_i)(J + m_i + 1)}$, shape `(d - 1,)`.
    - `m`: magnetic quantum numbers in basis order, shape `(d,)`.

    **Returns:** `(jz, jp)`: real `(...)` and complex `(...)`.
    """
    bands = jnp.asarray(bands)
    c, m = _real(ladder), _real(m)
    jz = jnp.sum(m * _real(bands[..., 0, :]), axis=-1)
    (b1,) = _common(bands[..., 1, : c.shape[-1]])
    jp = jnp.sum(c.astype(b1.dtype) * b1, axis=-1).astype(jnp.result_type(complex))
    return jz, jp


@jax.jit
def spin_expectations(
    rho: ArrayLike, ladder: ArrayLike, m: ArrayLike
) -> tuple[Float[Array, "*batch"], Complex[Array, "*batch"]]:
    r"""$(\langle J_z\rangle, \langle J_+\rangle)$ for dense density matrices `(..., d, d)`.

    Same conventions as `spin_expectations_from_bands`: $\langle J_+\rangle =
    \sum_i c_i\rho_{i,i+1}$, $\langle J_x\rangle + i\langle J_y\rangle = \langle J_+\rangle$.
    """
    rho = jnp.asarray(rho)
    c, m = _real(ladder), _real(m)
    jz = jnp.sum(m * _real(jnp.diagonal(rho, axis1=-2, axis2=-1)), axis=-1)
    (sup,) = _common(jnp.diagonal(rho, offset=1, axis1=-2, axis2=-1))
    jp = jnp.sum(c.astype(sup.dtype) * sup, axis=-1).astype(jnp.result_type(complex))
    return jz, jp
