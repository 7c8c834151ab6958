"""The spin model of eq. (17)-(19): a spin J in a dilute gas of detuned two-level particles.

Basis order is ascending energy: index ``i`` is the state ``m = i - J`` (index 0 is ``m = -J``).
All operators are kept as their diagonals, so the Lindbladian costs O(d^2) on a density matrix
and O(d) on the population sector, d = 2J + 1.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import _config  # noqa: F401
from ._protocol import AbstractGasModel, Channels, Sectors, float_leaf
from ._rates import _rates_for, _ratio_or_inf, effective_temperature
from ._validation import check_real, check_spin, is_concrete


def _shift_down(x):
    """y[..., i, j] = x[..., i-1, j-1], zero on the first row and column."""
    return jnp.pad(x[..., :-1, :-1], [(0, 0)] * (x.ndim - 2) + [(1, 0), (1, 0)])


def _shift_up(x):
    """y[..., i, j] = x[..., i+1, j+1], zero on the last row and column."""
    return jnp.pad(x[..., 1:, 1:], [(0, 0)] * (x.ndim - 2) + [(0, 1), (0, 1)])


def birth_death_bands(gp, gm, c2):
    r"""The bands `(lower, diag, upper)` of the birth-death generator of eq. (11) for eq. (18),
    in LAPACK `gtsv` convention (`lower[0] = upper[-1] = 0`):
    $\dot P_i = \ell_i P_{i-1} + d_i P_i + u_i P_{i+1}$ with $\ell_i = \Gamma_+ c_{i-1}^2$,
    $u_i = \Gamma_- c_i^2$, $d_i = -\Gamma_+ c_i^2 - \Gamma_- c_{i-1}^2$; `c2` holds
    $c_i^2 = (J - m_i)(J + m_i + 1)$, $i = 0, \dots, d-2$."""
    z = jnp.zeros_like(c2[:1])
    lower = gp * jnp.concatenate([z, c2])
    upper = gm * jnp.concatenate([c2, z])
    diag = -(gp * jnp.concatenate([c2, z]) + gm * jnp.concatenate([z, c2]))
    return lower, diag, upper


def tridiagonal_apply(lower, diag, upper, p):
    """$LP$ for the tridiagonal $L$ of bands `(lower, diag, upper)` (`gtsv` convention) and
    populations `p` along the last axis."""
    zero = jnp.zeros_like(p[..., :1])
    prev = jnp.concatenate([zero, p[..., :-1]], axis=-1)
    nxt = jnp.concatenate([p[..., 1:], zero], axis=-1)
    return diag * p + lower * prev + upper * nxt


class SpinGas(AbstractGasModel):
    r"""Spin $J$ in a gas of two-level particles, eq. (17)-(19) of the paper.

    $$\dot\rho = -i\omega_S[J_z, \rho] + \Gamma_+\mathcal D[J_+]\rho + \Gamma_-\mathcal D[J_-]\rho,
      \qquad \Gamma_\pm = \tilde\Gamma\,\frac{I(E_R/T_M, \mp\Delta/E_R)}{1 + e^{\pm\omega_A/T_A}}.$$

    **Arguments:**
    - `J`: spin quantum number, a positive integer or half-integer (static; dimension $2J+1$).
    - `omega_s`: system level spacing $\omega_S$ ($h_S = \omega_S J_z$).
    - `delta`: detuning $\Delta$ of the ancilla gap, $\omega_A = \omega_S + \Delta$.
    - `T_a`: temperature of the gas particles' internal (ancilla) states.
    - `T_m`: temperature of the gas particles' motion.
    - `E_R`: interaction energy $\hbar^2/(2mR^2)$, the default unit.
    - `gamma_tilde`: the rate prefactor $\tilde\Gamma$ directly; or
    - `density`, `coupling`: $nR^3$ and $V_0/E_R$, from which $\tilde\Gamma$ follows
      (eq. D4, depends on `T_m`).
    - `profile`: the interaction profile $g(r/R)$ (an `InteractionProfile` or its name);
      default the Gaussian of eq. (D1), whose rates use the closed form of $I$. Any other
      profile replaces $I(\alpha, \mp\Delta/E_R)$ by $I_g$ of `profile_integral`.
    - `drift`: drift of the gas, a speed $w = m|\mathbf u|R/\hbar \ge 0$ or a 3-vector
      $m\mathbf u R/\hbar$ (only its length matters for an isotropic profile); the drift
      kinetic energy is $w^2E_R$. Default `None`: the gas at rest. A drift breaks detailed
      balance at $T_A = T_M$ (the streaming gas is not an equilibrium reservoir).

    The parameters are float array leaves (Python numbers are converted): `jit`, `vmap` and
    `grad` see them, and new values do not recompile; `J` is static.

    In the protocol of `AbstractModel` the working basis is the basis order ($m = -J..J$),
    the channels are $J_+$ (Bohr frequency $\omega_S$, ancilla change $-\omega_A$, rate
    $\Gamma_+$) and $J_-$, and the sectors are the coherence bands $\rho_{i,i+q}$.
    """

    qutip_spin_order: ClassVar[bool] = True  # QuTiP orders spins m = J..-J (qutip_lindblad)

    J: float = eqx.field(static=True)
    omega_s: Float[Array, ""]
    delta: Float[Array, ""]

    def __init__(
        self,
        J,
        *,
        omega_s,
        delta,
        T_a,
        T_m,
        E_R=1.0,
        gamma_tilde=None,
        density=None,
        coupling=None,
        profile=None,
        drift=None,
    ):
        self.J = check_spin(J)
        self.omega_s = float_leaf(check_real("omega_s", omega_s))
        self.delta = float_leaf(check_real("delta", delta))
        self._init_gas(T_a, T_m, E_R, gamma_tilde, density, coupling, profile, drift)

    # --- parameters -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Hilbert-space dimension $d = 2J + 1$."""
        return int(round(2 * self.J)) + 1

    @property
    def omega_a(self):
        """Ancilla gap $\\omega_A = \\omega_S + \\Delta$."""
        return self.omega_s + self.delta

    @property
    def D(self):
        """$D = \\Delta / T_M$ (Fig. 2 parameter)."""
        return self.delta / self.T_m

    @property
    def A(self):
        """$A = \\omega_A / T_A$ (Fig. 2 parameter)."""
        return self.omega_a / self.T_a

    def rates(self):
        """`(Gamma_plus, Gamma_minus)` of eq. (19), in 1/time."""
        gp, gm = _rates_for(self.profile, self.drift, self.D, self.A, self.alpha, log=False)
        g = self.rate_scale()
        return g * gp, g * gm

    def log_rates(self):
        """Natural logarithms of `rates()`, finite even where the rates underflow."""
        lgp, lgm = _rates_for(self.profile, self.drift, self.D, self.A, self.alpha, log=True)
        lg = jnp.log(self.rate_scale())
        return lg + lgp, lg + lgm

    def coupling_norm(self):
        r"""$\|v\|$ of $v = J_+\sigma_- + J_-\sigma_+$: the largest ladder coefficient
        (block diagonal, blocks $\pm c_m$)."""
        return jnp.max(self.ladder(), initial=0.0)

    def effective_temperature(self):
        r"""Temperature of the spin's stationary Gibbs state; negative for an inverting gas,
        `inf` at the border.

        For a gas at rest (any profile) this is eq. (21): micro-reversibility fixes
        $\Gamma_+/\Gamma_- = e^{-\omega_S/T}$ whatever the shape of the interaction. A drifting
        gas breaks that detailed balance, but the ladder still relaxes to a Gibbs state, at
        $T = \omega_S / \ln(\Gamma_-/\Gamma_+)$ from the rates themselves.
        """
        if self.drift is None:
            return effective_temperature(self.omega_s, self.delta, self.T_a, self.T_m)
        lgp, lgm = self.log_rates()
        return _ratio_or_inf(self.omega_s, lgm - lgp)

    # --- operators as diagonals ---------------------------------------------------------------
    @property
    def m(self):
        """Magnetic quantum numbers in basis order, $m = -J, \\dots, J$."""
        return jnp.arange(self.dim, dtype=float) - self.J

    def energies(self):
        """Levels $\\varepsilon_m = \\omega_S m$ in basis order (ascending for $\\omega_S > 0$)."""
        return self.omega_s * self.m

    def ladder(self):
        """$\\langle m+1|J_+|m\\rangle = \\sqrt{(J-m)(J+m+1)}$ for $m = -J, \\dots, J-1$."""
        m = np.arange(self.dim - 1) - self.J
        return jnp.asarray(np.sqrt((self.J - m) * (self.J + m + 1.0)))

    def operators(self):
        """Dense `(Jz, Jp, Jm)` in basis order (for small J and cross-checks only)."""
        c = self.ladder()
        jp = jnp.diag(c, k=-1)
        return jnp.diag(self.m), jp, jp.T

    # --- generators -----------------------------------------------------------------------------
    def lindbladian(self, rho):
        r"""$\dot\rho$ of eq. (18) for a `(..., d, d)` density matrix, in O(d^2) operations."""
        rho = jnp.asarray(rho)
        d = self.dim
        if rho.shape[-2:] != (d, d):
            raise ValueError(f"rho must have shape ({d}, {d}) for J={self.J}, got {rho.shape}")
        single = rho.dtype in (jnp.float32, jnp.complex64)
        cdtype = jnp.complex64 if single else jnp.complex128
        rho = rho.astype(cdtype)
        gp, gm = self.rates()
        c = self.ladder()
        a = jnp.concatenate([c**2, jnp.zeros(1)])  # diag of J- J+
        b = jnp.concatenate([jnp.zeros(1), c**2])  # diag of J+ J-
        m = self.m
        c_lo = jnp.concatenate([jnp.zeros(1), c])  # c_{i-1}
        c_hi = jnp.concatenate([c, jnp.zeros(1)])  # c_i
        up = (gp * c_lo[:, None] * c_lo[None, :]).astype(cdtype)
        dn = (gm * c_hi[:, None] * c_hi[None, :]).astype(cdtype)
        decay = gp * (a[:, None] + a[None, :]) + gm * (b[:, None] + b[None, :])
        diag = jax.lax.complex(-0.5 * decay, -self.omega_s * (m[:, None] - m[None, :]))
        return diag.astype(cdtype) * rho + up * _shift_down(rho) + dn * _shift_up(rho)

    def population_generator(self):
        r"""The tridiagonal birth-death generator of eq. (11) on the populations.

        **Returns:** `(lower, diag, upper)`, each of length d, in LAPACK `gtsv` convention
        (`lower[0] = upper[-1] = 0`): $\dot P_i = \ell_i P_{i-1} + d_i P_i + u_i P_{i+1}$ with
        $\ell_i = \Gamma_+ c_{i-1}^2$, $u_i = \Gamma_- c_i^2$,
        $d_i = -\Gamma_+ c_i^2 - \Gamma_- c_{i-1}^2$.
        """
        gp, gm = self.rates()
        return birth_death_bands(gp, gm, self.ladder() ** 2)

    def channels(self) -> Channels:
        """$J_+$ and $J_-$ as the two channels of `AbstractModel` (COO entries)."""
        w_s, w_a = jnp.asarray(self.omega_s), jnp.asarray(self.omega_a)
        return ladder_channels(self.ladder(), w_s, -w_a, *self.rates())

    def is_real(self) -> bool:
        return True

    def sectors(self) -> Sectors:
        r"""The coherence bands $\rho_{i,i+q}$, $q = 0..d-1$, packed two per row as in
        `evolve` (band $q$ followed by band $d - q$)."""
        return _band_sectors(self.dim)

    def population_sectors(self) -> Sectors:
        """Band 0 alone: the populations, a birth-death chain."""
        d = self.dim
        diag = np.arange(d) * (d + 1)
        return Sectors(d, np.zeros(0, dtype=np.int64), (diag,), layout=diag[None])

    def chain_generators(self, sectors: Sectors):
        """Real tridiagonal generators of the rows of `sectors.layout` (rotating frame),
        straight from the ladder coefficients (see `band_generators`)."""
        d = self.dim
        layout = sectors.layout
        if layout is None:
            return None
        if layout.shape == (1, d) and np.array_equal(layout[0], np.arange(d) * (d + 1)):
            return tuple(x[None] for x in self.population_generator())
        own = _band_sectors(d)
        if not (
            sectors is own
            or (layout.shape == (d // 2 + 1, d) and np.array_equal(layout, own.layout))
        ):
            return self._layout_generators(layout)
        # Row c holds band c (positions 0..d-1-c) followed by band d - c (positions
        # 0..c-1), as in `_band_sectors`. The indices come from iotas, not from index
        # tables, so that no (d/2, d) constants enter the compiled program.
        gp, gm = self.rates()
        cx = jnp.concatenate([jnp.zeros(1), self.ladder(), jnp.zeros(1)])  # cx[i+1] = c_i
        shape = (d // 2 + 1, d)
        c = jax.lax.broadcasted_iota(jnp.int32, shape, 0)
        p = jax.lax.broadcasted_iota(jnp.int32, shape, 1)
        first = p < d - c
        valid = first | (d - c != c)
        q = jnp.where(first, c, d - c)
        i = jnp.where(first, p, p - (d - c))
        iq = jnp.minimum(i + q, d - 1)
        lower = gp * cx[i] * cx[iq]
        upper = gm * cx[i + 1] * cx[iq + 1]
        diag = -0.5 * (gp * (cx[i + 1] ** 2 + cx[iq + 1] ** 2) + gm * (cx[i] ** 2 + cx[iq] ** 2))
        zero = jnp.zeros(shape, dtype=lower.dtype)
        return tuple(jnp.where(valid, x, zero) for x in (lower, diag, upper))

    def _layout_generators(self, layout):
        r"""Real tridiagonal generators of any layout of matrix elements (rotating frame):
        $\rho_{ij}$ couples to $\rho_{i-1,j-1}$ with $\Gamma_+ c_{i-1}c_{j-1}$ and to
        $\rho_{i+1,j+1}$ with $\Gamma_- c_i c_j$; zero across seams and on padding (-1).
        NumPy for concrete parameters (no compilation per layout shape), else JAX."""
        d = self.dim
        gp, gm = self.rates()
        cx = jnp.concatenate([jnp.zeros(1), self.ladder(), jnp.zeros(1)])  # cx[i+1] = c_i
        xp = np if is_concrete((gp, gm, cx)) else jnp
        if xp is np:
            gp, gm, cx = float(gp), float(gm), np.asarray(cx)
        f = np.asarray(layout, dtype=np.int64)
        valid = f >= 0
        if xp is np and f.size:
            out = _run_generators(f, valid, d, gp, gm, cx)
            if out is not None:
                return out
        i, j = np.divmod(np.where(valid, f, 0), d)
        pad = np.full((f.shape[0], 1), -1, dtype=np.int64)
        prev = np.concatenate([pad, f[:, :-1]], axis=1)
        nxt = np.concatenate([f[:, 1:], pad], axis=1)
        ci, cj, ci1, cj1 = cx[i], cx[j], cx[i + 1], cx[j + 1]
        zero = xp.zeros(f.shape)

        def coupling(nb):
            up_ = valid & (nb == f - (d + 1))  # from (i-1, j-1)
            dn_ = valid & (nb == f + (d + 1)) & (nb >= 0)  # from (i+1, j+1)
            return xp.where(up_, gp * ci * cj, xp.where(dn_, gm * ci1 * cj1, zero))

        diag = -0.5 * (gp * (ci1**2 + cj1**2) + gm * (ci**2 + cj**2))
        return coupling(prev), xp.where(valid, diag, zero), coupling(nxt)

    def band_generators(self):
        r"""Real tridiagonal generators of the coherence bands in the frame rotating with $h_S$.

        Band $q = 0, \dots, d-1$ holds $\rho_{i, i+q}$ for $i = 0, \dots, d-1-q$ (zero-padded to
        length d). In the rotating frame the dissipator of eq. (18) maps each band onto itself;
        in the lab frame band $q$ also rotates, $\dot\rho_{i,i+q} \ni +i\omega_S q\,\rho_{i,i+q}$
        (see `band_frequencies`). Band 0 is the population sector.

        **Returns:** `(lower, diag, upper)`, each of shape `(d, d)` (band, position), LAPACK
        `gtsv` convention along the last axis; padding entries are zero.
        """
        gp, gm = self.rates()
        d = self.dim
        cx = jnp.concatenate([jnp.zeros(1), self.ladder(), jnp.zeros(1)])  # cx[i+1] = c_i
        q = np.arange(d)[:, None]
        i = np.arange(d)[None, :]
        valid = jnp.asarray(i + q <= d - 1)
        iq = np.minimum(i + q, d - 1)
        lower = gp * cx[i] * cx[iq]
        upper = gm * cx[i + 1] * cx[iq + 1]
        a_i, a_iq = cx[i + 1] ** 2, cx[iq + 1] ** 2
        b_i, b_iq = cx[i] ** 2, cx[iq] ** 2
        diag = -0.5 * (gp * (a_i + a_iq) + gm * (b_i + b_iq))
        zero = jnp.zeros((d, d))
        return (
            jnp.where(valid, lower, zero),
            jnp.where(valid, diag, zero),
            jnp.where(valid, upper, zero),
        )

    def band_frequencies(self):
        """Angular frequency $\\omega_S q$ of band $q$ in the lab frame ($e^{+i\\omega_S q t}$)."""
        return self.omega_s * jnp.arange(self.dim, dtype=float)

    def tight_coupling_budget(self, p, ts):
        r"""Energy budget from the populations `p` `(n_t, d)` (used by `energy_budget`): the
        two channels exchange energy in the fixed ratio $\omega_S : -\omega_A : \Delta$, so
        every flow follows from $\langle J_z\rangle$ and every steady current vanishes."""
        del ts
        m = self.m
        c2 = self.ladder() ** 2
        z = jnp.zeros(1)
        gp, gm = self.rates()
        drift = gp * jnp.concatenate([c2, z]) - gm * jnp.concatenate([z, c2])
        jz = p @ m
        djz = jz - jz[0]
        jz_rate = p @ drift
        w_s, w_a, d = self.omega_s, self.omega_a, self.delta
        ss_rate = self.steady_state_populations() @ drift
        return (
            (w_s * jz_rate, -w_a * jz_rate, d * jz_rate),
            (w_s * djz, -w_a * djz, d * djz),
            jnp.stack([w_s * ss_rate, -w_a * ss_rate, d * ss_rate]),
            jnp.zeros(()),
        )

    def steady_state_populations(self):
        r"""Populations of the stationary state: Gibbs at the effective temperature (eq. 21).

        $P_i \propto (\Gamma_+/\Gamma_-)^i$, evaluated in log space, so it is exact for any
        sign of the temperature and any J.
        """
        lgp, lgm = self.log_rates()
        logp = jnp.arange(self.dim, dtype=float) * (lgp - lgm)
        return jax.nn.softmax(logp)


def _run_generators(f, valid, d, gp, gm, cx):
    r"""NumPy fast path of `SpinGas._layout_generators` when every row is one run
    $\rho_{i_0 + p, j_0 + p}$ (a piece of one band) followed by padding; else `None`.
    Contiguous slices of the ladder per row, no gathers."""
    w = f.shape[1]
    n = valid.sum(axis=1)
    if not np.array_equal(valid, np.arange(w)[None, :] < n[:, None]):
        return None
    if w > 1 and not np.all((np.diff(f, axis=1) == d + 1) | ~valid[:, 1:]):
        return None
    c2 = cx * cx
    lower = np.zeros(f.shape)
    diag = np.zeros(f.shape)
    upper = np.zeros(f.shape)
    i0, j0 = np.divmod(f[:, 0], d)
    for r in range(f.shape[0]):
        m, i, j = int(n[r]), int(i0[r]), int(j0[r])
        if m == 0:
            continue
        # from (i-1, j-1): Gamma+ c_{i-1} c_{j-1}; from (i+1, j+1): Gamma- c_i c_j
        lower[r, 1:m] = gp * (cx[i + 1 : i + m] * cx[j + 1 : j + m])
        upper[r, : m - 1] = gm * (cx[i + 1 : i + m] * cx[j + 1 : j + m])
        diag[r, :m] = -0.5 * (
            gp * (c2[i + 1 : i + m + 1] + c2[j + 1 : j + m + 1])
            + gm * (c2[i : i + m] + c2[j : j + m])
        )
    return lower, diag, upper


def to_bands(rho):
    """Pack the upper coherence bands of a `(..., d, d)` `rho`: `bands[..., q, i] = rho[i, i+q]`."""
    d = rho.shape[-1]
    q = np.arange(d)[:, None]
    i = np.arange(d)[None, :]
    j = np.minimum(i + q, d - 1)
    vals = rho[..., i, j]
    return jnp.where(jnp.asarray(i + q <= d - 1), vals, jnp.zeros((), rho.dtype))


def from_bands(bands):
    """Inverse of `to_bands` for a Hermitian matrix (the lower bands are conjugates)."""
    d = bands.shape[-1]
    i = np.arange(d)[:, None]
    j = np.arange(d)[None, :]
    upper = bands[..., np.maximum(j - i, 0), np.minimum(i, j)]
    lower = jnp.conj(bands[..., np.maximum(i - j, 0), np.minimum(i, j)])
    return jnp.where(jnp.asarray(j >= i), upper, lower)


@functools.lru_cache(maxsize=32)
def _fold_maps(d: int):
    r"""Index maps of the folded band layout (static NumPy arrays).

    Chain $c = 0, \dots, \lfloor d/2 \rfloor$ holds band $c$ (positions $0, \dots, d-1-c$)
    followed by band $d - c$ (positions $0, \dots, c - 1$); chain 0 is band 0 alone, and for
    even $d$ the middle band $d/2$ is alone in the last chain (its second half is padding).

    **Returns:** `(q, p, valid)` of shape `(n_chains, d)`, the band and position held by every
    chain entry (padding points at a padding entry of the `to_bands` layout, which is zero),
    and `(c, i, inside)` of shape `(d, d)`, the chain entry holding band `q`, position `p`, and
    whether `p < d - q` is an entry of the band at all (`c`, `i` are 0 where it is not).
    """
    n_chains = d // 2 + 1
    c = np.arange(n_chains)[:, None]
    i = np.arange(d)[None, :]
    first = i < d - c
    valid = first | (d - c != c)
    q = np.where(first, c, d - c)
    p = np.where(first, i, i - (d - c))
    q = np.where(valid, q, d - 1)
    p = np.where(valid, p, d - 1)
    qq = np.arange(d)[:, None]
    pp = np.arange(d)[None, :]
    low = qq <= d // 2
    chain = np.where(low, qq, d - qq) + 0 * pp
    pos = np.where(low, pp, pp + qq)
    inside = pp < d - qq
    chain = np.where(inside, chain, 0)
    pos = np.where(inside, pos, 0)
    return q, p, valid, chain, pos, inside


class _BandSectors(Sectors):
    """The spin's coherence bands; the folded layout is built on first use (it is as large
    as the density matrix, and `relaxation_rates` never needs it)."""

    def __init__(self, d: int):
        bands = tuple(np.arange(d - q) * (d + 1) + q for q in range(d))
        super().__init__(d, np.zeros(0, dtype=np.int64), bands)

    @property
    def layout(self):
        if self._layout is None:
            d = self.dim
            q, p, valid = _fold_maps(d)[:3]
            self._layout = np.where(valid, p * d + p + q, -1)
        return self._layout

    @layout.setter
    def layout(self, value):
        self._layout = value


def ladder_channels(c, bohr, ancilla, gp, gm) -> Channels:
    r"""The two channels $\sqrt{\Gamma_+}J_+$ and $\sqrt{\Gamma_-}J_-$ of a spin ladder with
    coefficients `c` ($\langle m+1|J_+|m\rangle$): $J_+$ gains `bohr` in the system and
    `ancilla` in the ancilla per jump, $J_-$ the opposite."""
    d = c.shape[0] + 1
    i = np.arange(d - 1)
    return Channels(
        bohr=jnp.stack([bohr, -bohr]),
        ancilla=jnp.stack([ancilla, -ancilla]),
        rates=jnp.stack([gp, gm]),
        channel=np.repeat([0, 1], d - 1),
        row=np.concatenate([i + 1, i]),
        col=np.concatenate([i, i + 1]),
        value=jnp.concatenate([c, c]).astype(jnp.result_type(complex)),
        dim=d,
    )


@functools.lru_cache(maxsize=8)
def _band_sectors(d: int) -> Sectors:
    return _BandSectors(d)
