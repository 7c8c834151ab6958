r"""The general collisional master equation, eq. (6)-(7), in the first Born approximation.

A system with Hamiltonian $h_S$ collides with gas particles that carry an internal ancilla
(Hamiltonian $h_A$, thermal at $T_A$) and move thermally at $T_M$. The interaction is
$V = V_0\, v \otimes g(|x|/R)$, by default the Gaussian of eq. (D1), $g = e^{-r^2/2}$, whose
first-Born amplitudes (D2) turn eq. (6)-(7) into a Lindblad equation with one jump operator per
system Bohr frequency $\mathcal E$ and ancilla transition $l \to k$ (eq. B23, D3):

$$L_{\mathcal E}^{kl} = \sqrt{\tilde\Gamma\, p(\epsilon_l)\,
    I\!\big(\alpha, (\mathcal E + \epsilon_k - \epsilon_l)/E_R\big)}
    \sum_{\varepsilon_i - \varepsilon_j = \mathcal E} v_{ij}^{kl}\,
    |\varepsilon_i\rangle\langle\varepsilon_j|,
  \qquad v_{ij}^{kl} = \langle\varepsilon_i, \epsilon_k|v|\varepsilon_j, \epsilon_l\rangle,$$

with $\alpha = E_R/T_M$ and $I$ the scattering integral of eq. (20). For any other isotropic
profile (`jaxcoll._profiles`), or a drifting gas, $I$ becomes $I_g$ of `profile_integral`. The
channel structure
(which matrix elements share a Bohr frequency) is fixed by the concrete Hamiltonians when the
model is built; temperatures and rate scales stay differentiable pytree leaves.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float, Int

from . import _config  # noqa: F401
from ._integral import log_scattering_integral
from ._profiles import (
    _log_profile_integral,
)
from ._protocol import (
    AbstractGasModel,
    Channels,
    SparseMatrix,
    StaticArrays,
    complex_dtype,
    empty_sparse,
)
from ._rates import uses_closed_form

_FLOAT = jnp.result_type(float)  # float64 unless x64 is switched off


def _concrete(name: str, x):
    if isinstance(x, jax.core.Tracer):
        raise TypeError(
            f"{name} fixes the channel structure of the model and must be a concrete array, "
            "not a traced value; build the model outside jit/vmap/grad or close over it"
        )


def _numeric(name: str, a):
    if a.dtype == bool or a.dtype.kind not in "iufc":
        raise TypeError(f"{name} must be a numeric array, got dtype {a.dtype}")
    return a


def _hermitian_matrix(name: str, x, shape: tuple[int, int] | None) -> np.ndarray:
    """Concrete Hermitian matrix check; returns the exactly Hermitian part as complex128."""
    _concrete(name, x)
    try:
        a = np.asarray(x)
    except Exception as err:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}") from err
    _numeric(name, a)
    if shape is None:
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
            raise ValueError(f"{name} must be a square (n, n) matrix, got shape {a.shape}")
    elif a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    a = a.astype(np.complex128)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got non-finite entries")
    scale = max(1.0, float(np.max(np.abs(a))))
    err = float(np.max(np.abs(a - a.conj().T)))
    if err > 1e-10 * scale:
        raise ValueError(f"{name} must be Hermitian, got max |{name} - {name}^H| = {err:.3g}")
    return 0.5 * (a + a.conj().T)


def _sparse_hermitian(name: str, s, shape: tuple[int, int] | None):
    """A SciPy sparse matrix checked like `_hermitian_matrix`; returns CSR complex128."""
    import scipy.sparse as sp

    s = sp.csr_matrix(s, dtype=np.complex128)
    if shape is None:
        if s.shape[0] != s.shape[1] or s.shape[0] < 1:
            raise ValueError(f"{name} must be a square (n, n) matrix, got shape {s.shape}")
    elif s.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {s.shape}")
    if not np.all(np.isfinite(s.data)):
        raise ValueError(f"{name} must be finite, got non-finite entries")
    scale = max(1.0, float(np.max(np.abs(s.data), initial=0.0)))
    diff = s - s.conj().T
    err = float(np.max(np.abs(diff.data), initial=0.0))
    if err > 1e-10 * scale:
        raise ValueError(f"{name} must be Hermitian, got max |{name} - {name}^H| = {err:.3g}")
    return ((s + s.conj().T) * 0.5).tocsr()


def _system_hamiltonian(h_s):
    """`(levels, U, dense)`: a diagonal `h_s` (1-D, or a matrix without off-diagonal entries)
    keeps its order (`U = None`); otherwise `eigh` (levels ascending)."""
    import scipy.sparse as sp

    _concrete("h_s", h_s)
    if sp.issparse(h_s):
        s = _sparse_hermitian("h_s", h_s, None)
        off = s - sp.diags(s.diagonal())
        if off.count_nonzero() == 0:
            return np.real(s.diagonal()).astype(float), None, None
        hs = s.toarray()
    else:
        a = np.asarray(h_s)
        _numeric("h_s", a)
        if a.ndim == 1:
            if a.shape[0] < 1:
                raise ValueError(
                    f"h_s must be a square (n, n) matrix or its diagonal, got {a.shape}"
                )
            if np.iscomplexobj(a) and np.any(np.imag(a) != 0):
                raise ValueError("h_s given as a diagonal must be real (Hermitian)")
            e = np.real(a).astype(float)
            if not np.all(np.isfinite(e)):
                raise ValueError("h_s must be finite, got non-finite entries")
            return e, None, None
        hs = _hermitian_matrix("h_s", a, None)
        if np.count_nonzero(hs - np.diag(np.diag(hs))) == 0:
            return np.real(np.diag(hs)).astype(float), None, hs
    e, U = np.linalg.eigh(hs)
    return e, U, hs


def _coupling(v, d: int, k: int):
    """`v` (dense `(d*k, d*k)`, SciPy sparse, or terms `[(S_i, A_i)]`) as CSR complex128 and,
    when given dense, the dense matrix."""
    import scipy.sparse as sp

    _concrete("v", v)
    if isinstance(v, list | tuple) and not (
        len(v) > 0 and isinstance(v[0], numbers.Number | np.generic)
    ):
        if len(v) == 0:
            raise ValueError("v given as terms [(S_i, A_i)] must hold at least one term")
        total = None
        for n, term in enumerate(v):
            if not (isinstance(term, list | tuple) and len(term) == 2):
                raise TypeError(f"v[{n}] must be a pair (S, A) of system and ancilla operators")
            S, A = term
            _concrete("v", S)
            S = sp.csr_matrix(S, dtype=np.complex128) if sp.issparse(S) else np.asarray(S)
            if not sp.issparse(S):
                _numeric("v", S)
                S = sp.csr_matrix(S.astype(np.complex128))
            A = np.asarray(A)
            _numeric("v", A)
            if S.shape != (d, d):
                raise ValueError(
                    f"v[{n}]: the system factor must have shape ({d}, {d}), got {S.shape}"
                )
            if A.shape != (k, k):
                raise ValueError(
                    f"v[{n}]: the ancilla factor must have shape ({k}, {k}), got {A.shape}"
                )
            t = sp.kron(S, sp.csr_matrix(A.astype(np.complex128)), format="csr")
            total = t if total is None else total + t
        return _sparse_hermitian("v", total, (d * k, d * k)), None
    if sp.issparse(v):
        return _sparse_hermitian("v", v, (d * k, d * k)), None
    vv = _hermitian_matrix("v", v, (d * k, d * k))
    return sp.csr_matrix(vv), vv


def _cluster(values: np.ndarray, atol: float) -> tuple[np.ndarray, np.ndarray]:
    """Group sorted-able values whose neighbours differ by <= atol.

    **Returns:** `(labels, reps)`: the cluster index of each value and each cluster's
    representative $(\\min + \\max)/2$, which is exactly antisymmetric for a value set that is
    symmetric under negation (as Bohr frequencies are).
    """
    flat = np.asarray(values, dtype=float).ravel()
    order = np.argsort(flat, kind="stable")
    srt = flat[order]
    new = np.concatenate([[True], np.diff(srt) > atol])
    ids_sorted = np.cumsum(new) - 1
    labels = np.empty_like(ids_sorted)
    labels[order] = ids_sorted
    n = int(ids_sorted[-1]) + 1
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    np.minimum.at(lo, ids_sorted, srt)
    np.maximum.at(hi, ids_sorted, srt)
    reps = 0.5 * (lo + hi)
    reps[np.abs(reps) <= atol] = 0.0
    return labels.reshape(np.shape(values)), reps


class EnergyFlows(NamedTuple):
    r"""Energy changes per unit time in each collision channel (first law, eq. 14-15).

    Channel $c$ (system Bohr frequency $\mathcal E_c$, ancilla change
    $\Delta\epsilon_c = \epsilon_k - \epsilon_l$) changes the system energy by $\mathcal E_c$, the
    ancilla energy by $\Delta\epsilon_c$ and the motional energy by
    $-(\mathcal E_c + \Delta\epsilon_c)$ per jump, so `system + ancilla + motion = 0` channel by
    channel. Each field has shape `(n_channels,)`; `totals()` sums them.
    """

    system: Float[Array, " n"]
    ancilla: Float[Array, " n"]
    motion: Float[Array, " n"]

    def totals(self):
        """`(dE_S/dt, dE_A/dt, dE_M/dt)` summed over channels; `dE_S/dt` is the heat flow (15)."""
        return jnp.sum(self.system), jnp.sum(self.ancilla), jnp.sum(self.motion)


class CollisionalModel(AbstractGasModel):
    r"""A $d$-level system in a dilute gas of particles with a $k$-level ancilla, eq. (6)-(7).

    $$\dot\rho = -i[h_S + h_{\rm eff}, \rho] + \mathcal C\rho, \qquad
      \mathcal C\rho = \sum_{\mathcal E, k, l} \mathcal D[L_{\mathcal E}^{kl}]\rho, \qquad
      \mathcal D[L]\rho = L\rho L^\dagger - \tfrac12\{L^\dagger L, \rho\},$$

    with the Born-approximation jump operators of eq. (B23)/(D3) (see the module docstring) and
    the forward-scattering shift of eq. (6)/(B24),
    $h_{\rm eff} = (2\pi)^{3/2}\, nR^3\, V_0 \sum_k p(\epsilon_k)\,
    \mathcal P_{\rm sec}\langle\epsilon_k|v|\epsilon_k\rangle$, where $\mathcal P_{\rm sec}$ keeps
    the blocks of equal system energy (it is the mean field $n\int d^3x\, V$).
    Here $\hbar = k_B = 1$.

    **Arguments:**
    - `h_s`: `(d, d)` Hermitian system Hamiltonian in any basis; density matrices passed to the
      methods are in this same basis.
    - `h_a`: `(k, k)` Hermitian ancilla Hamiltonian; the ancilla populations are thermal,
      $p(\epsilon_l) \propto e^{-\epsilon_l/T_A}$.
    - `v`: `(d*k, d*k)` Hermitian dimensionless coupling on $S\otimes A$, system factor first
      (as `kron(S, A)`).
    - `T_a`: temperature of the ancillas (internal states of the gas).
    - `T_m`: temperature of the gas motion; $\alpha = E_R/T_M$.
    - `E_R`: interaction energy $\hbar^2/(2mR^2)$.
    - `gamma_tilde`: the rate prefactor $\tilde\Gamma$ of eq. (D4) directly; or
    - `density`, `coupling`: $nR^3$ and $V_0/E_R$, giving $\tilde\Gamma$ by eq. (D4) and also
      the forward-scattering shift $h_{\rm eff}$. With `gamma_tilde` alone $h_{\rm eff} = 0$:
      $\tilde\Gamma \propto nV_0^2$ while $h_{\rm eff} \propto nV_0$, so $n$ and $V_0$ are not
      separately known.
    - `profile`: the interaction profile $g(r/R)$, an `InteractionProfile` or its name
      (default: the Gaussian of eq. (D1), with the closed form of $I$). It sets the rates
      through $I_g$ of `profile_integral` and the forward shift through $G(0) = \int d^3\xi\,g$.
    - `drift`: drift of the gas, a speed $w = m|\mathbf u|R/\hbar \ge 0$ or a 3-vector
      (only its length matters for an isotropic profile); default `None`, the gas at rest.
    - `bohr_tol`: two Bohr frequencies (or two levels) closer than `bohr_tol` times the spectral
      width of `h_s` count as equal, so that degenerate spectra such as an equidistant ladder
      keep their coherent sums in one jump operator.

    `h_s`, `h_a` and `v` must be concrete; the temperatures and rate scales are pytree leaves,
    so `jit`, `vmap` and `grad` act through them.

    Example, the spin model of eq. (17) with basis index 0 the ground state:
    `CollisionalModel(omega_s * Jz, diag(0, omega_a), kron(Jp, sm) + kron(Jm, sp), ...)` with
    $\sigma_- = |0\rangle\langle 1|$ reproduces eq. (18)-(19).
    """

    levels: Float[Array, " d"]
    h_a: Complex[Array, "k k"]
    ancilla_energies: Float[Array, " k"]
    channel_bohr: Float[Array, " n"]
    channel_ancilla: Float[Array, " n"]
    channel_source: Int[Array, " n"]
    channel_target: Int[Array, " n"]
    _U: Complex[Array, "d d"] | None
    _h_s_dense: Complex[Array, "d d"] | None
    _v_dense: Complex[Array, "dk dk"] | None
    _values: Complex[Array, " m"]
    _forward: Complex[Array, "k mf"]
    _pattern: StaticArrays = eqx.field(static=True)  # channel, row, col (working basis)
    _forward_pattern: StaticArrays = eqx.field(static=True)  # row, col
    _real: bool = eqx.field(static=True)
    bohr_tol: float = eqx.field(static=True)
    degenerate: bool = eqx.field(static=True)

    def __init__(
        self,
        h_s,
        h_a,
        v,
        *,
        T_a,
        T_m,
        E_R=1.0,
        gamma_tilde=None,
        density=None,
        coupling=None,
        profile=None,
        drift=None,
        bohr_tol: float = 1e-9,
    ):
        e, U, hs_dense = _system_hamiltonian(h_s)
        d = e.shape[0]
        ha = _hermitian_matrix("h_a", h_a, None)
        k = ha.shape[0]
        v_csr, v_dense = _coupling(v, d, k)
        if not (isinstance(bohr_tol, int | float) and np.isfinite(bohr_tol) and bohr_tol >= 0):
            raise ValueError(f"bohr_tol must be a finite number >= 0, got {bohr_tol!r}")
        self.bohr_tol = float(bohr_tol)

        self._init_gas(T_a, T_m, E_R, gamma_tilde, density, coupling, profile, drift)

        eps, W = np.linalg.eigh(ha)
        # v in the product eigenbasis, entries <e_i, eps_k| v |e_j, eps_l> (COO); exactly
        # Hermitian so that the channel (E, k, l) is the adjoint of (-E, l, k) to the last bit.
        import scipy.sparse as sp

        if U is None:
            X = sp.kron(sp.identity(d, dtype=np.complex128, format="csr"), sp.csr_matrix(W))
            vp = (X.conj().T @ v_csr @ X).tocsr()
            vp = ((vp + vp.conj().T) * 0.5).tocoo()
        else:
            Xd = np.kron(U, W)
            vpd = Xd.conj().T @ v_csr.toarray() @ Xd
            vp = sp.coo_matrix(0.5 * (vpd + vpd.conj().T))
        rows, cols, vals = vp.row.astype(np.int64), vp.col.astype(np.int64), vp.data
        vmax = float(np.max(np.abs(vals), initial=0.0))
        keep = np.abs(vals) > 32 * np.finfo(float).eps * vmax
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
        i, kk = np.divmod(rows, k)
        j, ll = np.divmod(cols, k)

        # Levels and Bohr frequencies equal within the tolerance are grouped; the floor covers
        # the rounding of eigh on (nearly) degenerate spectra.
        width = float(np.max(e) - np.min(e))
        atol = max(self.bohr_tol * width, 64 * np.finfo(float).eps * float(np.max(np.abs(e))))
        level_id, level_rep = _cluster(e, atol)
        ec = level_rep[level_id]
        self.degenerate = bool(len(level_rep) < d)

        # Channel (g, k, l) holds sum_{(i, j) in Bohr group g} v_ij^kl |i><j| (working basis);
        # only channels with a non-negligible matrix element exist.
        if len(vals):
            bohr_id, bohr_rep = _cluster(ec[i] - ec[j], atol)
        else:
            bohr_id, bohr_rep = np.zeros(0, dtype=np.int64), np.zeros(1)
        n_g = len(bohr_rep)
        key = (kk * k + ll) * n_g + bohr_id
        uniq, chan = np.unique(key, return_inverse=True)
        if len(uniq) == 0:  # v = 0: one empty channel keeps every shape non-empty
            uniq = np.zeros(1, dtype=np.int64)
        kl, g_idx = np.divmod(uniq, n_g)
        k_idx, l_idx = np.divmod(kl, k)
        order = np.lexsort((i, j, chan))  # by channel, then column, then row
        self._pattern = StaticArrays(
            channel=chan[order].astype(np.int64), row=i[order], col=j[order]
        )
        self._values = jnp.asarray(vals[order])
        self._real = bool(np.all(np.imag(vals) == 0))

        # Secular part of <eps_q| v |eps_q> (entries of equal system level), eq. (B24).
        fsel = (kk == ll) & (level_id[i] == level_id[j])
        fi, fj, fq = i[fsel], j[fsel], kk[fsel]
        fkey, finv = np.unique(fi * d + fj, return_inverse=True)
        forward = np.zeros((k, len(fkey)), dtype=np.complex128)
        np.add.at(forward, (fq, finv), vals[fsel])
        fr, fc = np.divmod(fkey, d)
        self._forward_pattern = StaticArrays(row=fr, col=fc)
        self._forward = jnp.asarray(forward)

        self.levels = jnp.asarray(e)
        self._U = None if U is None else jnp.asarray(U.astype(np.complex128))
        self._h_s_dense = None if hs_dense is None else jnp.asarray(hs_dense)
        self._v_dense = None if v_dense is None else jnp.asarray(v_dense)
        self.h_a = jnp.asarray(ha)
        self.ancilla_energies = jnp.asarray(eps)
        self.channel_bohr = jnp.asarray(bohr_rep[g_idx])
        self.channel_ancilla = jnp.asarray(eps[k_idx] - eps[l_idx])
        self.channel_source = jnp.asarray(l_idx)
        self.channel_target = jnp.asarray(k_idx)

    # --- sizes and parameters ----------------------------------------------------------------
    @property
    def dim(self) -> int:
        """System dimension $d$."""
        return self.levels.shape[0]

    @property
    def n_channels(self) -> int:
        """Number of jump operators $L_{\\mathcal E}^{kl}$ kept (identically zero ones dropped)."""
        return self.channel_bohr.shape[0]

    def energies(self):
        """Levels of the working basis: ascending (`eigh`) for a non-diagonal `h_s`, in the
        given order for a diagonal one."""
        return self.levels

    @property
    def eigenbasis(self):
        """`(d, d)` unitary whose columns are the working basis in the basis of `h_s`
        (the identity for a diagonal `h_s`; dense, small models only)."""
        if self._U is None:
            return jnp.eye(self.dim, dtype=jnp.result_type(complex))
        return self._U

    @property
    def h_s(self):
        """The system Hamiltonian as a dense `(d, d)` matrix (small models only)."""
        if self._h_s_dense is not None:
            return self._h_s_dense
        if self._U is None:
            return jnp.diag(self.levels).astype(jnp.result_type(complex))
        return (self._U * self.levels) @ self._U.conj().T

    @property
    def v(self):
        """The coupling as a dense `(d*k, d*k)` matrix (small models only)."""
        if self._v_dense is not None:
            return self._v_dense
        d, k = self.dim, self.h_a.shape[0]
        p = self._pattern
        W = np.linalg.eigh(np.asarray(self.h_a))[1]
        kk = np.asarray(self.channel_target)[p.channel]
        ll = np.asarray(self.channel_source)[p.channel]
        vp = np.zeros((d * k, d * k), dtype=np.complex128)
        np.add.at(vp, (p.row * k + kk, p.col * k + ll), np.asarray(self._values))
        X = np.kron(np.asarray(self.eigenbasis), W)
        return jnp.asarray(X @ vp @ X.conj().T)

    def coupling_norm(self):
        r"""$\|v\|$, the largest $|$eigenvalue$|$ of the coupling (dense: small models)."""
        return jnp.max(jnp.abs(jnp.linalg.eigvalsh(self.v)))

    def to_working(self, rho):
        """`(..., d, d)` from the basis of `h_s` to the working (energy) basis."""
        if self._U is None:
            return rho
        U = self._U.astype(complex_dtype(rho.dtype))
        return jnp.conj(U).T @ rho @ U

    def from_working(self, rho):
        """Inverse of `to_working`."""
        if self._U is None:
            return rho
        U = self._U.astype(complex_dtype(rho.dtype))
        return U @ rho @ jnp.conj(U).T

    def is_real(self) -> bool:
        return self._real and self.density is None

    def channels(self) -> Channels:
        """The channels in the working basis (see `AbstractModel`)."""
        p = self._pattern
        return Channels(
            self.channel_bohr,
            self.channel_ancilla,
            self.channel_rates(),
            p.channel,
            p.row,
            p.col,
            self._values,
            self.dim,
        )

    def h_eff_entries(self) -> SparseMatrix:
        """$h_{\\rm eff}$ as COO entries in the working basis (none with `gamma_tilde` only)."""
        p = self._forward_pattern
        if self.density is None or len(p.row) == 0:
            return empty_sparse(self.dim)
        volume = self.profile.fourier(jnp.zeros((), dtype=_FLOAT))  # (2 pi)^(3/2): Gaussian
        pref = volume * self.density * self.coupling * self.E_R
        w = (pref * self.ancilla_populations()).astype(self._forward.dtype)
        return SparseMatrix(p.row, p.col, w @ self._forward, self.dim)

    def ancilla_populations(self):
        """Thermal ancilla populations $p(\\epsilon_l) \\propto e^{-\\epsilon_l/T_A}$."""
        return jax.nn.softmax(-self.ancilla_energies / self.T_a)

    def channel_motional(self):
        """Motional energy change per jump, $-(\\mathcal E + \\epsilon_k - \\epsilon_l)$."""
        return -(self.channel_bohr + self.channel_ancilla)

    @eqx.filter_jit
    def channel_rates(self):
        r"""Channel weights $\tilde\Gamma\,p(\epsilon_l)\,I(\alpha, s)$, eq. (D3).

        Here $s = (\mathcal E + \epsilon_k - \epsilon_l)/E_R$ is the internal energy gained per
        jump in units of $E_R$; for another `profile` or a `drift`, $I$ is $I_g$ of
        `profile_integral`.

        Evaluated in log space so that neither the ancilla population nor the scattering
        integral underflows on its own. `channel_bohr`, `channel_ancilla`, `channel_source` ($l$)
        and `channel_target` ($k$) label the channels.

        **Returns:** shape `(n_channels,)`, all $\geq 0$.
        """
        log_p = jax.nn.log_softmax(-self.ancilla_energies / self.T_a)
        s = (self.channel_bohr + self.channel_ancilla) / self.E_R
        if uses_closed_form(self.profile, self.drift):
            log_i = log_scattering_integral(self.alpha, s)
        else:
            log_i = _log_profile_integral(self.profile, self.alpha, s, self.drift)
        log_w = log_p[self.channel_source] + log_i
        return self.rate_scale() * jnp.exp(log_w)

    def _ops_working(self):
        """Dense $A_c$ in the working basis, `(n, d, d)` (small models only)."""
        p = self._pattern
        d = self.dim
        out = jnp.zeros((self.n_channels, d, d), dtype=self._values.dtype)
        return out.at[p.channel, p.row, p.col].add(self._values)

    @property
    def _ops(self):
        """Dense $A_c$ in the basis of `h_s`, `(n, d, d)` (small models only)."""
        return self.from_working(self._ops_working())

    @eqx.filter_jit
    def channel_operators(self):
        """The jump operators $L_{\\mathcal E}^{kl}$ of eq. (7), `(n_channels, d, d)`, in the
        basis of `h_s` (dense: small models only)."""
        r = jnp.sqrt(self.channel_rates()).astype(self._values.dtype)
        return r[:, None, None] * self._ops

    @eqx.filter_jit
    def h_eff(self):
        r"""Forward-scattering correction of eq. (6)/(B24) in the Born approximation.

        $h_{\rm eff} = G(0)\, (nR^3)(V_0/E_R) E_R \sum_k p(\epsilon_k)
        \mathcal P_{\rm sec}\langle\epsilon_k|v|\epsilon_k\rangle$ with the volume integral
        $G(0) = \int d^3\xi\, g(|\xi|)$ of the profile ($(2\pi)^{3/2}$ for the Gaussian; the
        mean field $n\int d^3x\,V$, independent of a drift); it commutes with $h_S$. Zero
        when the model was given `gamma_tilde` only (then $n$ and $V_0$ are not separately
        known), and zero for the spin model, whose $v$ has no ancilla-diagonal part.
        Dense `(d, d)` in the basis of `h_s`.
        """
        return self.from_working(self.h_eff_entries().dense().astype(jnp.result_type(complex)))

    # --- generators --------------------------------------------------------------------------
    def _check_rho(self, rho, batch: bool = True):
        rho = jnp.asarray(rho)
        d = self.dim
        if rho.ndim < 2 or rho.shape[-2:] != (d, d) or (not batch and rho.ndim != 2):
            shape = f"(..., {d}, {d})" if batch else f"({d}, {d})"
            raise ValueError(f"rho must have shape {shape}, got {rho.shape}")
        return rho.astype(self._values.dtype)

    @eqx.filter_jit
    def dissipator(self, rho):
        r"""The collision term $\mathcal C\rho = \sum_c \mathcal D[L_c]\rho$ of eq. (6).

        **Arguments:**
        - `rho`: `(..., d, d)` matrix in the basis of `h_s`.

        **Returns:** $\mathcal C\rho$, same shape, complex.
        """
        rho = self._check_rho(rho)
        r = self.channel_rates().astype(rho.dtype)
        A = self._ops
        jump = jnp.einsum("c,cij,...jk,clk->...il", r, A, rho, A.conj(), optimize=True)
        K = jnp.einsum("c,cji,cjk->ik", r, A.conj(), A)
        return jump - 0.5 * (K @ rho + rho @ K)

    @eqx.filter_jit
    def lindbladian(self, rho):
        r"""$\dot\rho = -i[h_S + h_{\rm eff}, \rho] + \mathcal C\rho$ of eq. (6).

        **Arguments:**
        - `rho`: `(..., d, d)` density matrix in the basis of `h_s`.

        **Returns:** $\dot\rho$, same shape, complex.
        """
        rho = self._check_rho(rho)
        H = self.h_s + self.h_eff()
        return -1j * (H @ rho - rho @ H) + self.dissipator(rho)

    @eqx.filter_jit
    def superoperator(self):
        r"""The Lindbladian as a dense `(d^2, d^2)` matrix (small $d$ only).

        Row-major vectorisation: `vec(rho) = rho.reshape(d * d)`, i.e. `vec[i*d + j] = rho[i, j]`,
        so that `vec(A rho B) = kron(A, B.T) @ vec(rho)` and
        `lindbladian(rho).reshape(-1) == superoperator() @ rho.reshape(-1)`.
        """
        d = self.dim
        r = self.channel_rates().astype(self._values.dtype)
        A = self._ops
        eye = jnp.eye(d, dtype=A.dtype)
        H = self.h_s + self.h_eff()
        K = jnp.einsum("c,cji,cjk->ik", r, A.conj(), A)
        jump = jnp.einsum("c,cij,ckl->ikjl", r, A, A.conj()).reshape(d * d, d * d)
        G = -1j * H - 0.5 * K
        return jump + jnp.kron(G, eye) + jnp.kron(eye, G.conj())

    @eqx.filter_jit
    def steady_state(self):
        r"""The stationary state: $\mathcal L\rho_\infty = 0$, $\mathrm{tr}\rho_\infty = 1$.

        Solves $(\mathcal L + u\,t^\top) x = u$ with $t = \mathrm{vec}(1)$, $u = t/d$, whose unique
        solution is the normalised null vector whenever the steady state is unique (the usual
        case; with conserved quantities the matrix is singular). Differentiable.

        **Returns:** `(d, d)` Hermitian, unit-trace matrix in the basis of `h_s`.
        """
        d = self.dim
        S = self.superoperator()
        t = jnp.eye(d, dtype=S.dtype).reshape(-1)
        u = t / d
        x = jnp.linalg.solve(S + jnp.outer(u, t), u).reshape(d, d)
        x = 0.5 * (x + x.conj().T)
        return x / jnp.trace(x)  # real: the diagonal of the Hermitian part is real

    # --- population sector (eq. 11-13) ---------------------------------------------------------
    def _require_nondegenerate(self, what: str):
        if self.degenerate:
            raise ValueError(
                f"{what} needs a non-degenerate h_s: within a degenerate eigenspace the "
                "populations do not decouple from the coherences (Appendix C); use "
                "lindbladian/superoperator instead"
            )

    @eqx.filter_jit
    def rate_matrix(self):
        r"""Transition rates of eq. (12) in the Born approximation, in the energy eigenbasis.

        $$R_{ij} = \sum_{k,l}\tilde\Gamma\,p(\epsilon_l)\,
          I\big(\alpha, (\varepsilon_i-\varepsilon_j+\epsilon_k-\epsilon_l)/E_R\big)
          |v_{ij}^{kl}|^2 \qquad (i \neq j),$$

        the rate of $j \to i$, levels ascending as in `energies`. The diagonal is set to zero
        (elastic collisions leave the populations unchanged). For $T_A = T_M = T$ the rates obey
        local detailed balance (13), $R_{ij}/R_{ji} = e^{-(\varepsilon_i-\varepsilon_j)/T}$.

        **Returns:** `(d, d)` real, non-negative.
        """
        self._require_nondegenerate("rate_matrix")
        r = self.channel_rates()
        p = self._pattern
        w = r[p.channel] * jnp.abs(self._values) ** 2
        R = jnp.zeros((self.dim, self.dim), dtype=w.dtype).at[p.row, p.col].add(w)
        return R * (1.0 - jnp.eye(self.dim))

    @eqx.filter_jit
    def population_generator(self):
        r"""Generator $M$ of the rate equation (11), $\dot P = M P$, in the energy eigenbasis.

        $M_{ij} = R_{ij}$ for $i \ne j$ and $M_{ii} = -\sum_j R_{ji}$ (columns sum to zero).

        **Returns:** `(d, d)` real.
        """
        R = self.rate_matrix()
        return R - jnp.diag(jnp.sum(R, axis=0))

    # --- thermodynamics (eq. 14-16) -------------------------------------------------------------
    @eqx.filter_jit
    def energy_flows(self, rho) -> EnergyFlows:
        r"""Energy flows per channel: system, ancilla and motion (first law, eq. 14-15).

        The system part is $\mathrm{tr}(h_S\,\mathcal D[L_c]\rho)$; the ancilla and motional parts
        are $\Delta\epsilon_c\,\nu_c$ and $-(\mathcal E_c + \Delta\epsilon_c)\,\nu_c$ with the jump
        rate $\nu_c = \mathrm{tr}(L_c^\dagger L_c\rho)$. Since $L_c$ raises the system energy by
        exactly $\mathcal E_c$, the three add up to zero channel by channel.

        **Arguments:**
        - `rho`: `(d, d)` density matrix in the basis of `h_s`.

        **Returns:** an `EnergyFlows` with fields of shape `(n_channels,)`.
        """
        rho = self._check_rho(rho, batch=False)
        r = self.channel_rates()
        A = self._ops
        h = self.h_s
        AdA = jnp.einsum("cji,cjk->cik", A.conj(), A)
        jumps = r * jnp.real(jnp.einsum("cij,ji->c", AdA, rho))
        AdhA = jnp.einsum("cji,jk,ckl->cil", A.conj(), h, A)
        X = AdhA - 0.5 * (h @ AdA + AdA @ h)
        system = r * jnp.real(jnp.einsum("cij,ji->c", X, rho))
        return EnergyFlows(
            system=system,
            ancilla=self.channel_ancilla * jumps,
            motion=self.channel_motional() * jumps,
        )

    @eqx.filter_jit
    def heat_current(self, rho):
        r"""Heat flow into the system, $\dot Q = \mathrm{tr}(h_S\,\mathcal C\rho)$, eq. (15).

        Excludes $h_{\rm eff}$, as in the paper. `rho` is a `(d, d)` matrix.
        """
        rho = self._check_rho(rho, batch=False)
        return jnp.real(jnp.trace(self.h_s @ self.dissipator(rho)))

    @eqx.filter_jit
    def entropy_production_rate(self, rho):
        r"""$\dot S - \dot Q/T_M$ with $\dot S = -\mathrm{tr}(\mathcal C(\rho)\ln\rho)$, eq. (16).

        The Hamiltonian part does not change the entropy. For a gas in equilibrium,
        $T_A = T_M$, this is $-\frac{d}{dt}S(\rho\|\gamma_S) \geq 0$ (Clausius inequality);
        for $T_A \neq T_M$ it is only a bookkeeping quantity and may be negative. Needs a
        full-rank `rho` (eigenvalues are floored at the smallest normal float).

        **Returns:** a real scalar.
        """
        rho = self._check_rho(rho, batch=False)
        w, V = jnp.linalg.eigh(0.5 * (rho + rho.conj().T))
        logw = jnp.log(jnp.maximum(w, jnp.finfo(w.dtype).tiny))
        log_rho = (V * logw.astype(V.dtype)) @ V.conj().T
        C = self.dissipator(rho)
        s_dot = -jnp.real(jnp.trace(C @ log_rho))
        q_dot = jnp.real(jnp.trace(self.h_s @ C))
        return s_dot - q_dot / self.T_m
