r"""Full counting statistics of the collisions: heat cumulants, the SCGF, fluctuation theorems.

Every jump of channel $c$ is one collision. It changes the energy of the ancilla sector by
$\Delta E_{A,c} = \epsilon_k - \epsilon_l$ and that of the motional sector by
$\Delta E_{M,c} = -(E_c + \Delta E_{A,c})$ (eq. 14). A counter $N_k = \sum_c w_{kc} n_c$ adds up
the jumps $n_c$ of every channel with weights $w_{kc}$; the heat $Q_A$, $Q_M$ gained by the two
sectors of the gas since `ts[0]` is the pair of counters with $w_{Ac} = \Delta E_{A,c}$ and
$w_{Mc} = \Delta E_{M,c}$ (every channel counts, also $E_c = 0$ channels that flip the ancilla).

**Tilted generator.** The moment generating function is
$Z(\lambda, t) = E[e^{\lambda\cdot N(t)}] = \mathrm{tr}\,\rho_\lambda(t)$, where
$\rho_\lambda$ solves $\dot\rho_\lambda = \mathcal L_\lambda\rho_\lambda$ with every jump
term of the master equation (6) multiplied by $e^{\lambda\cdot w_c}$:

$$\mathcal L_\lambda\rho = \mathcal L\rho + \sum_c r_c\,(e^{\lambda\cdot w_c} - 1)\,
  A_c\rho A_c^\dagger .$$

The tilt changes no coupling pattern, so $\mathcal L_\lambda$ maps each Bohr sector into
itself; the trace reads only the blocks that hold populations (the $\omega = 0$ sector:
populations and degenerate coherences), so nothing else is evolved. For the spin this sector
is the birth-death chain and $\mathcal L_\lambda$ stays tridiagonal.

**Moments as one linear ODE.** The Taylor coefficients $\rho_\alpha = \partial^\alpha\rho_\lambda
/\alpha!$ at $\lambda = 0$ (multi-indices $|\alpha| \le n$) obey

$$\dot\rho_\alpha = \sum_{\beta \le \alpha} \mathcal L_\beta\,\rho_{\alpha - \beta},
  \qquad \mathcal L_0 = \mathcal L, \quad
  \mathcal L_\beta = \sum_c r_c \frac{w_c^\beta}{\beta!}\, A_c\,\cdot\,A_c^\dagger ,$$

a block lower-triangular system with $\mathcal L$ on the diagonal. Only the traces of the
top-degree blocks are needed, and since $\mathrm{tr}\,\mathcal L\rho = 0$ they obey
$\frac{d}{dt}\mathrm{tr}\,\rho_\alpha = \sum_{0<\beta\le\alpha}\mathrm{tr}\,\mathcal L_\beta
\rho_{\alpha-\beta}$: one number each, so order $n$ evolves the states of degree $< n$ only
(order 1: the state and two numbers). The Rosenbrock solver of `evolve` integrates the system
as it is: its linear solves with $I - \gamma h \mathcal L_{\rm aug}$ are block forward
substitutions that reuse one factorisation of $I - \gamma h\mathcal L$ per step, and the blocks
of one degree, across the resolvent powers of a step, are solved together (for the spin as extra
right-hand sides of one tridiagonal elimination). The step size follows the state and the
moments, each in its own units. The moments $\mathrm{tr}\,\rho_\alpha$ are recorded at the
save times and turned into cumulants by the logarithm of the truncated series $Z$.

**Long times.** $\theta(\lambda) = \lim_t t^{-1}\ln Z$ is the dominant eigenvalue of
$\mathcal L_\lambda$ on that sector (`scgf`); its gradient and Hessian at 0 are the steady
currents and the diffusion matrix, computed by perturbation theory with the Drazin inverse of
$\mathcal L$ (`steady_counting_statistics`).

**Fluctuation theorem.** Micro-reversibility (eq. 9) gives every channel local detailed balance
with the two temperatures, $r_c / r_{\bar c} = e^{\Delta E_{A,c}/T_A + \Delta E_{M,c}/T_M}$,
and with it the Gallavotti-Cohen symmetry
$\theta(\lambda_A, \lambda_M) = \theta(-1/T_A - \lambda_A, -1/T_M - \lambda_M)$. It holds for
real (time-reversal symmetric) couplings, for models without forward shift and for
non-degenerate spectra; a complex coupling with a forward shift on a degenerate spectrum breaks
it (`gallavotti_cohen_residual` measures by how much).
"""

from __future__ import annotations

import functools
import itertools
import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import (
    _config,  # noqa: F401
    _sectors,
)
from ._evolve import (
    EvolveError,
    _as_arrays,
    _check_ts,
    _spin_operator,
    _split_pieces,
)
from ._options import SolverOptions, solver_options
from ._protocol import AbstractModel, Sectors, _pairs_by_group, check_bohr_homogeneous
from ._solver import (
    AbstractStructuredOperator,
    PartitionedTridiagonalOperator,
    TridiagonalOperator,
    integrate,
    rosenbrock,
)
from ._states import validate_state
from ._validation import check_int, is_concrete

__all__ = [
    "CountingStatistics",
    "SteadyStatistics",
    "counting_statistics",
    "heat_statistics",
    "scgf",
    "counting_scgf",
    "steady_counting_statistics",
    "steady_heat_statistics",
    "gallavotti_cohen_residual",
    "heat_weights",
]


# --- results ----------------------------------------------------------------------------------


class CountingStatistics(eqx.Module):
    r"""Cumulants of the counters at the save times (what `counting_statistics` and
    `heat_statistics` return). `m` is the number of counters (2 for the heat: ancilla, motion).

    **Fields:**
    - `ts`: the save times `(n_t,)`.
    - `mean`: `(n_t, m)`, the first cumulants $\langle N_k\rangle$.
    - `covariance`: `(n_t, m, m)`, $\langle N_k N_l\rangle - \langle N_k\rangle\langle N_l\rangle$
      (`None` for `order=1`).
    - `cumulants`: tuple of the cumulant tensors of orders $1, \dots,$ `order`; entry $k-1$ has
      shape `(n_t,) + (m,) * k` and holds
      $\kappa_{i_1\dots i_k} = \partial_{\lambda_{i_1}}\cdots\partial_{\lambda_{i_k}}
      \ln E[e^{\lambda\cdot N}]$ at $\lambda = 0$ (symmetric in its indices): `cumulants[0]` is
      `mean`, `cumulants[1]` is `covariance`, `cumulants[2][:, 0, 0, 0]` the third cumulant of
      the first counter.
    - `moments`: `(n_t, n_alpha)` raw Taylor coefficients $E[N^\alpha]/\alpha!$ for the
      multi-indices of `multi_indices` (graded order; the first is $\alpha = 0$, the total
      probability).
    - `multi_indices`: the multi-indices $\alpha$ (tuple of `m`-tuples, static).
    """

    ts: Float[Array, " n_t"]
    mean: Float[Array, "n_t m"]
    covariance: Float[Array, "n_t m m"] | None
    cumulants: tuple
    moments: Float[Array, "n_t n_alpha"]
    multi_indices: tuple = eqx.field(static=True)


class SteadyStatistics(eqx.Module):
    r"""Long-time counting statistics (what `steady_heat_statistics` returns).

    **Fields:**
    - `currents`: `(m,)`, $J_k = \partial_k\theta(0) = \lim_t \langle N_k\rangle / t$.
    - `diffusion`: `(m, m)`, $D_{kl} = \partial_k\partial_l\theta(0)
      = \lim_t \mathrm{Cov}(N_k, N_l) / t$ (no factor 1/2).
    """

    currents: Float[Array, " m"]
    diffusion: Float[Array, "m m"]


# --- multi-indices and truncated series -------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _multi_indices(m: int, n: int) -> np.ndarray:
    """All `alpha` in N^m with |alpha| <= n, by degree, then lexicographically descending."""
    out = []
    for deg in range(n + 1):
        out += sorted(
            (a for a in itertools.product(range(deg + 1), repeat=m) if sum(a) == deg),
            reverse=True,
        )
    return np.asarray(out, dtype=np.int64).reshape(-1, m)


@functools.lru_cache(maxsize=32)
def _series_tables(m: int, n: int):
    """Static tables of the truncated multivariate series of degree `n` in `m` variables.

    **Returns:** `(alphas, terms, product)`: `terms[a]` lists `(b, a - b)` index pairs with
    `0 < b <= a` (the coupling of the moment equations), and `product` = `(i, j, k)` arrays
    with `alpha_i + alpha_j = alpha_k` (truncated product).
    """
    alphas = _multi_indices(m, n)
    index = {tuple(a): i for i, a in enumerate(alphas)}
    terms = []
    for a in alphas:
        row = []
        for b in itertools.product(*(range(x + 1) for x in a)):
            if sum(b) == 0:
                continue
            row.append((index[tuple(b)], index[tuple(np.subtract(a, b))]))
        terms.append(tuple(row))
    pi, pj, pk = [], [], []
    for i, a in enumerate(alphas):
        for j, b in enumerate(alphas):
            c = tuple(np.add(a, b))
            if c in index:
                pi.append(i)
                pj.append(j)
                pk.append(index[c])
    prod = tuple(np.asarray(x, dtype=np.int64) for x in (pi, pj, pk))
    return alphas, tuple(terms), prod


def _series_log(z, m: int, n: int):
    r"""Taylor coefficients of $\ln Z$ from those of $Z$ (`(..., n_alpha)`, truncated)."""
    _, _, (pi, pj, pk) = _series_tables(m, n)
    n_alpha = z.shape[-1]

    def mul(a, b):
        out = jnp.zeros(a.shape[:-1] + (n_alpha,), dtype=a.dtype)
        return out.at[..., pk].add(a[..., pi] * b[..., pj])

    z0 = z[..., :1]
    u = z / z0
    u = u.at[..., 0].set(0.0)
    out = jnp.zeros_like(z).at[..., 0].set(jnp.log(z0[..., 0]))
    power = u
    for k in range(1, n + 1):
        out = out + ((-1.0) ** (k + 1) / k) * power
        if k < n:
            power = mul(power, u)
    return out


def _cumulant_tensors(logz, m: int, n: int):
    """The symmetric cumulant tensors of orders 1..n from the Taylor coefficients of ln Z."""
    alphas = _multi_indices(m, n)
    index = {tuple(a): i for i, a in enumerate(alphas)}
    out = []
    for k in range(1, n + 1):
        idx, fac = [], []
        for combo in itertools.product(range(m), repeat=k):
            a = tuple(np.bincount(combo, minlength=m))
            idx.append(index[a])
            fac.append(float(np.prod([math.factorial(x) for x in a])))
        t = logz[..., np.asarray(idx)] * jnp.asarray(fac, dtype=logz.dtype)
        out.append(t.reshape(logz.shape[:-1] + (m,) * k))
    return tuple(out)


# --- the structure: the population sector's blocks and the jump maps (static) -----------------


class _Structure:
    """Static layout of the blocks holding populations, and where the jump terms go."""

    def __init__(self, model: AbstractModel, dense_only: bool):
        d = model.dim
        ch = model.channels()
        he = model.h_eff_entries()
        pop = model.population_sectors()
        # 1 x 1 blocks become dense blocks: the tilt can make a lone population count jumps.
        singles = tuple(np.array([s]) for s in pop.singles)
        if dense_only:
            sectors = Sectors(d, np.zeros(0, np.int64), (), pop.chains + pop.dense + singles)
        else:
            sectors = Sectors(d, np.zeros(0, np.int64), pop.chains, pop.dense + singles, pop.layout)
        self.real = bool(model.is_real()) and not dense_only
        fast = (
            self.real
            and sectors.layout is not None
            and not sectors.dense
            and model.chain_generators(sectors) is not None
        )
        self.fast = fast
        self.sectors = sectors
        plan = _sectors.plan_for(sectors, self.real, ch.pattern, he.pattern, fast)
        self.plan = plan
        # Jump pairs (p, q) of one channel whose target (row_p, row_q) is kept. Kept elements
        # link levels of one class, so pairs are only formed within (channel, class of row).
        import scipy.sparse as sp
        from scipy.sparse.csgraph import connected_components

        ki, kj = np.divmod(plan.kept, d)
        g = sp.coo_matrix((np.ones(len(ki)), (ki, kj)), shape=(d, d))
        _, cls = connected_components(g, directed=False)
        c, r, k = ch.channel, ch.row, ch.col
        p, q = _pairs_by_group(c, cls[r].astype(np.int64))
        dest, keep = plan.dest(r[p] * d + r[q], k[p] * d + k[q])
        self.jump_p, self.jump_q, self.jump_dest = p[keep], q[keep], dest
        # diagonal elements: where they sit in the pieces of the state
        layout = plan.layout
        self.chain_diag = (
            None
            if layout is None
            else np.flatnonzero((layout.ravel() >= 0) & (layout.ravel() // d == layout.ravel() % d))
        )
        self.group_diag = tuple(
            np.flatnonzero(blocks.ravel() // d == blocks.ravel() % d) for blocks in plan.groups
        )
        # dense assembly (dense_only): kept order is the groups' blocks, raveled
        self.trace_vector = np.zeros(len(plan.kept))
        self.trace_vector[plan.diag_pos] = 1.0
        rows, cols, off = [], [], plan.n_singles + plan.n_chain
        for blocks in plan.groups:
            nb, s = blocks.shape
            base = off + np.arange(nb)[:, None, None] * s
            rows.append((base + np.arange(s)[None, :, None] + 0 * np.arange(s)).ravel())
            cols.append((base + 0 * np.arange(s)[:, None] + np.arange(s)[None, None, :]).ravel())
            off += nb * s
        self.dense_rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        self.dense_cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)


_STRUCTURES: dict = {}


def _structure(model: AbstractModel, dense_only: bool) -> _Structure:
    ch = model.channels()
    key = (
        type(model),
        model.dim,
        ch.pattern,
        model.h_eff_entries().pattern,
        bool(model.is_real()),
        dense_only,
    )
    s = _STRUCTURES.get(key)
    if s is None:
        if len(_STRUCTURES) > 32:
            _STRUCTURES.clear()
        s = _STRUCTURES[key] = _Structure(model, dense_only)
    return s


def _jump_buffer(st: _Structure, ch, factors):
    r"""Coefficients of $\sum_c f_c r_c A_c\cdot A_c^\dagger$ in the plan's buffer;
    `factors` `(n_channels,)` or `(..., n_channels)` (complex)."""
    cd = ch.value.dtype
    rc = ch.rates.astype(jnp.real(ch.value).dtype)[ch.channel]
    amp = ch.value
    base = rc[st.jump_p].astype(cd) * amp[st.jump_p] * jnp.conj(amp[st.jump_q])
    f = jnp.asarray(factors).astype(cd)[..., ch.channel[st.jump_p]]
    buf = jnp.zeros(f.shape[:-1] + (st.plan.buffer_size,), dtype=cd)
    return buf.at[..., st.jump_dest].add(f * base)


def _base_buffer_or_chains(st: _Structure, model, ch):
    """The generator's coefficients: `("chains", tri)` on the fast path, else the buffer."""
    if st.fast:
        return model.chain_generators(st.sectors), None
    return None, _sectors.coefficients(st.plan, ch, model.h_eff_entries())


# --- the augmented operator --------------------------------------------------------------------


class _TaylorOperator(AbstractStructuredOperator):
    r"""The block lower-triangular generator of the Taylor coefficients $\rho_\alpha$.

    Blocks of degree below `order` are states (`size` each); of the top degree only the trace
    is carried, one number per $\alpha$: since $\mathrm{tr}\,\mathcal L\rho = 0$,
    $\frac{d}{dt}\mathrm{tr}\,\rho_\alpha = \sum_{0<\beta\le\alpha}
    \mathrm{tr}\,\mathcal L_\beta\rho_{\alpha-\beta}$ needs only lower blocks (`tvecs`
    holds the functionals $x \mapsto \mathrm{tr}\,\mathcal L_\beta x$). Block $\alpha$ of
    $\mathcal L_{\rm aug}\,y$ is $\sum_{\beta\le\alpha}\mathcal L_\beta y_{\alpha-\beta}$;
    $(I - \tau\mathcal L_{\rm aug})x = b$ is solved by forward substitution, degree by
    degree, $x_\alpha = S(b_\alpha + \tau\sum_{0<\beta\le\alpha}\mathcal L_\beta
    x_{\alpha-\beta})$ with one factorisation of $S^{-1} = I - \tau\mathcal L$ (the blocks of
    one degree are solved together), and $x_\alpha = b_\alpha + \tau\sum_\beta
    \mathrm{tr}\,\mathcal L_\beta x_{\alpha-\beta}$ for the traces.
    """

    base: AbstractStructuredOperator
    jumps: tuple  # L_beta for beta = alphas[1:], each like `base`
    tvecs: Array  # (n_alpha - 1, size): x -> tr(L_beta x)
    terms: tuple = eqx.field(static=True)
    levels: tuple = eqx.field(static=True)  # indices of the state blocks by degree
    n_blocks: int = eqx.field(static=True)  # state blocks (degree < order), then traces
    size: int = eqx.field(static=True)

    def _parts(self, y):
        k = self.n_blocks * self.size
        return y[:k].reshape(self.n_blocks, self.size), y[k:]

    def _coupling(self, X, a):
        out = None
        for b, rest in self.terms[a]:
            v = self.jumps[b - 1].mv(X[rest])
            out = v if out is None else out + v
        return out

    def _trace_coupling(self, X):
        r"""`(n_traces,)`: $\sum_\beta\mathrm{tr}\,\mathcal L_\beta X_{\alpha-\beta}$ for the
        top-degree $\alpha$ (`X` the state blocks, a list or an array)."""
        out = []
        for a in range(self.n_blocks, len(self.terms)):
            out.append(sum(self.tvecs[b - 1] @ X[rest] for b, rest in self.terms[a]))
        return jnp.stack(out)

    def mv(self, y):
        Y, _ = self._parts(y)
        out = jax.vmap(self.base.mv)(Y)
        rows = [out[0]] + [out[a] + self._coupling(Y, a) for a in range(1, self.n_blocks)]
        return jnp.concatenate([jnp.stack(rows).reshape(-1), self._trace_coupling(Y)])

    def factor(self, tau):
        return tau, self.base.factor(tau)

    def _solve_many(self, F, R):
        """`base.solve` for the rows of `R` `(k, size)` together: as extra right-hand-side
        columns where the base operator takes them (the tridiagonal solvers, one elimination
        for all), else batched."""
        k = R.shape[0]
        if k == 1:
            return self.base.solve(F, R[0])[None]
        if isinstance(self.base, TridiagonalOperator | PartitionedTridiagonalOperator) and (
            self.base.diag.size == self.size
        ):
            return self.base.solve(F, R.T.reshape(-1)).reshape(self.size, k).T
        return jax.vmap(lambda r: self.base.solve(F, r))(R)

    def solve(self, factors, b):
        tau, F = factors
        B, t = self._parts(b)
        X: dict = {}
        for level in self.levels:
            rhs = [B[a] if a == 0 else B[a] + tau * self._coupling(X, a) for a in level]
            for a, x in zip(level, self._solve_many(F, jnp.stack(rhs)), strict=True):
                X[a] = x
        X = [X[a] for a in range(self.n_blocks)]
        return jnp.concatenate([jnp.stack(X).reshape(-1), t + tau * self._trace_coupling(X)])

    def powers(self, factors, tau, y0, n: int):
        r"""The resolvent powers, solved along anti-diagonals.

        Block $\alpha$ of power $j$ needs block $\alpha$ of power $j - 1$ and the blocks of
        lower degree of power $j$. So the blocks of degree $g$ of power $j$ for all
        $j + g = s$ depend only on earlier $s$: they are solved together, one batched solve
        per anti-diagonal (the same arithmetic as one power after the other, in fewer and
        wider solves).
        """
        tau_f, F = factors
        first, t = self._parts(tau * self.mv(y0))
        V: list = [dict() for _ in range(n)]
        for s in range(n + len(self.levels) - 1):
            items = [(s - g, a) for g, lev in enumerate(self.levels) if 0 <= s - g < n for a in lev]
            rhs = []
            for j, a in items:
                r = first[a] if j == 0 else V[j - 1][a]
                if a != 0:
                    r = r + tau_f * self._coupling(V[j], a)
                rhs.append(r)
            for (j, a), x in zip(items, self._solve_many(F, jnp.stack(rhs)), strict=True):
                V[j][a] = x
        out = []
        for j in range(n):
            X = [V[j][a] for a in range(self.n_blocks)]
            t = t + tau_f * self._trace_coupling(X)
            out.append(jnp.concatenate([jnp.stack(X).reshape(-1), t]))
        return jnp.stack(out)


def _operator_parts(st: _Structure, tri, mats, method: str):
    """Structured operator pieces for the chains (real) and the dense groups."""
    parts = []
    if tri is not None:
        lo, di, up = (jnp.real(x) for x in tri)
        if lo.shape[0] == 1:
            lo, di, up = lo[0], di[0], up[0]
        parts.append(_spin_operator(lo, di, up, method))
    for M in mats:
        parts.append(_sectors.BatchedDenseOperator(jnp.real(M) if st.real else _sectors.realify(M)))
    return parts


def _combine(parts, sizes):
    return parts[0] if len(parts) == 1 else _sectors.SumOperator(tuple(parts), sizes)


def _split(st: _Structure, buf):
    _, tri, mats = _sectors.split_buffer(st.plan, buf)
    return tri, mats


def _trace_vector(st: _Structure, base, sizes, shapes, n: int, dtype):
    """The trace functional on the solver's flat layout of the sector, as a vector."""

    def trace(yb):
        pieces = _split_pieces(base, yb, sizes, shapes)
        total = jnp.zeros((), dtype=yb.dtype)
        k = 0
        if st.chain_diag is not None:
            total = total + jnp.sum(pieces[0][..., 0].reshape(-1)[st.chain_diag])
            k = 1
        for g, diag in enumerate(st.group_diag):
            z = pieces[k + g]
            s = z.shape[1] if st.real else z.shape[1] // 2
            total = total + jnp.sum(z[:, :s].reshape(-1)[diag])
        return total

    return jax.grad(trace)(jnp.zeros(n, dtype=dtype))


class _Problem(eqx.Module):
    op: _TaylorOperator
    y0: Array
    trace: Array  # (size,): the trace functional of one state block

    def traces(self, y):
        """`tr rho_alpha` for every multi-index (graded order)."""
        X, t = self.op._parts(y)
        return jnp.concatenate([X @ self.trace, t])


def _build(model, rho0, weights, order: int, method: str) -> _Problem:
    st = _structure(model, dense_only=False)
    plan = st.plan
    ch = model.channels()
    m = weights.shape[0]
    alphas, terms, _ = _series_tables(m, order)
    cdtype = jnp.result_type(complex)
    tri, buf = _base_buffer_or_chains(st, model, ch)
    mats = []
    if buf is not None:
        tri, mats = _split(st, buf)
    # Taylor coefficient operators L_beta: per-channel factors w_c^beta / beta!
    w = weights.astype(jnp.result_type(float))
    facs = []
    for beta in alphas[1:]:
        f = jnp.ones(w.shape[1], dtype=w.dtype)
        for kk, bk in enumerate(beta):
            if bk:
                f = f * w[kk] ** int(bk) / math.factorial(int(bk))
        facs.append(f)
    jbufs = _jump_buffer(st, ch, jnp.stack(facs))
    base_parts = _operator_parts(st, tri, mats, method)
    jump_parts = []
    for jb in jbufs:
        jt, jm = _split(st, jb)
        jump_parts.append(_operator_parts(st, jt, jm, method))
    # initial values of the kept elements
    if rho0.ndim == 1:
        x0 = jnp.zeros(len(plan.kept), dtype=cdtype)
        x0 = x0.at[plan.diag_pos].set(rho0[plan.diag_level].astype(cdtype))
    else:
        x0 = model.to_working(rho0.astype(cdtype)).reshape(-1)[plan.kept]
    pieces = []
    n1, nc = plan.n_singles, plan.n_chain
    if tri is not None:
        z = jnp.zeros(plan.layout.size, dtype=cdtype).at[plan.chain_valid].set(x0[n1 : n1 + nc])
        pieces.append(jnp.real(z).reshape(plan.layout.shape)[..., None])
        if plan.layout.shape[0] == 1:
            pieces[-1] = pieces[-1][0]
    k = n1 + nc
    for blocks in plan.groups:
        nb, s = blocks.shape
        z = x0[k : k + nb * s].reshape(nb, s)
        pieces.append(jnp.real(z) if st.real else jnp.concatenate([jnp.real(z), jnp.imag(z)], -1))
        k += nb * s
    packed = [op.pack(x) for op, x in zip(base_parts, pieces, strict=True)]
    sizes = tuple(x.size for x in packed)
    base = _combine(base_parts, sizes)
    jumps = tuple(_combine(p, sizes) for p in jump_parts)
    y = jnp.concatenate([x.reshape(-1) for x in packed])
    n = y.size
    degree = alphas.sum(axis=1)
    n_blocks = int(np.sum(degree < order))
    levels = tuple(tuple(int(i) for i in np.flatnonzero(degree == g)) for g in range(order))
    tv = _trace_vector(st, base, sizes, tuple(x.shape for x in pieces), n, y.dtype)
    zeros = jnp.zeros(n, dtype=y.dtype)
    tvecs = jnp.stack([jax.vjp(J.mv, zeros)[1](tv)[0] for J in jumps])
    op = _TaylorOperator(
        base=base,
        jumps=jumps,
        tvecs=tvecs,
        terms=terms,
        levels=levels,
        n_blocks=n_blocks,
        size=n,
    )
    y0 = jnp.concatenate([y, jnp.zeros((n_blocks - 1) * n + len(alphas) - n_blocks, y.dtype)])
    return _Problem(op=op, y0=y0, trace=tv)


class _MomentController(diffrax.PIDController):
    r"""Step size control on the state and on the moments, each in its own units.

    Block $\alpha$ of the augmented state is $E[N^\alpha \rho]/\alpha!$ (a state, or its
    trace at the top degree): it carries the units of $N^\alpha$, and its size grows with the
    counts. Its absolute tolerance is `atol` times $\prod_k c_k^{\alpha_k}$, with $c_k$ the
    current count scale of counter $k$ (the first moment's largest entry over the state's, and
    at least the largest weight, one jump's worth). Tolerances so scaled do not depend on the
    units of the weights, and `atol` keeps the meaning it has for the state: a fixed `atol` on
    moments much larger than the state resolves their tails far below anything that reaches
    the cumulants, at several times the steps. A counter with zero weights gets scale 1.
    """

    op: _TaylorOperator | None = None
    alphas: tuple = eqx.field(static=True, default=())
    wmax: Array | None = None

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, state):
        op = self.op
        y = jnp.maximum(jnp.abs(y0), jnp.abs(y1_candidate))
        X, t = op._parts(y)
        top = jnp.concatenate([jnp.max(X, axis=1), t])  # (n_alpha,)
        m = self.wmax.shape[0]
        scale = top[0] if op.n_blocks > 1 else jnp.ones((), y.dtype)  # first moments: traces
        c = jnp.maximum(self.wmax, top[1 : 1 + m] / jnp.maximum(scale, jnp.finfo(y.dtype).tiny))
        c = jnp.where(c > 0, c, 1.0)  # a counter that never counts: its moments stay 0
        units = jnp.prod(c[None] ** jnp.asarray(self.alphas, dtype=y.dtype), axis=1)
        units = jnp.concatenate(
            [
                jnp.repeat(units[: op.n_blocks], op.size, total_repeat_length=X.size),
                units[op.n_blocks :],
            ]
        )
        # the controller divides by atol + rtol |y|: hand it the error that gives
        # error / (atol units + rtol |y|) instead
        y_error = y_error * ((self.atol + self.rtol * y) / (self.atol * units + self.rtol * y))
        return super().adapt_step_size(t0, t1, y0, y1_candidate, args, y_error, error_order, state)


@eqx.filter_jit
def _solve(
    model,
    rho0,
    ts,
    weights,
    rtol,
    atol,
    *,
    order,
    max_steps,
    method,
    error_control,
    solver,
    adjoint,
):
    problem = _build(model, rho0, weights, order, method)
    n = problem.op.size
    if error_control == "state":
        # the moments follow the step sizes the state needs: fast where the state moves,
        # wrong where it does not (a stationary start) while the moments still relax
        controller = diffrax.PIDController(
            rtol=rtol, atol=atol, norm=lambda y: jnp.max(jnp.abs(y[:n]))
        )
    else:
        controller = _MomentController(
            rtol=rtol,
            atol=atol,
            norm=lambda y: jnp.max(jnp.abs(y)),
            op=problem.op,
            alphas=tuple(tuple(int(x) for x in a) for a in _multi_indices(weights.shape[0], order)),
            wmax=jnp.max(jnp.abs(weights), axis=1),
        )

    def save(t, y, args):
        del t, args
        return problem.traces(y)

    sol = integrate(
        problem.op,
        problem.y0,
        ts,
        save=save,
        solver=solver,
        controller=controller,
        max_steps=max_steps,
        adjoint=adjoint,
    )
    ok = sol.result == diffrax.RESULTS.successful
    code = jnp.where(ok, jnp.where(jnp.all(jnp.isfinite(sol.ys)), 0, 3), 1)
    return sol.ys, code


def _check_model(model):
    if not isinstance(model, AbstractModel):
        raise TypeError(
            "model must be a jaxcoll model (an AbstractModel such as SpinGas or "
            f"CollisionalModel), got {type(model).__name__}"
        )
    if is_concrete(model):
        check_bohr_homogeneous(model.channels(), model.energies())


def _check_weights(weights, n_channels: int):
    if weights is None or isinstance(weights, str | bytes):
        raise TypeError(f"weights must be an (n_counters, n_channels) array, got {weights!r}")
    w = jnp.asarray(weights)
    if w.ndim == 1:
        w = w[None]
    if w.ndim != 2 or w.shape[1] != n_channels or w.shape[0] < 1:
        raise ValueError(
            f"weights must have shape (n_counters, {n_channels}) (one column per channel), "
            f"got {jnp.shape(weights)}"
        )
    if jnp.iscomplexobj(w):
        raise TypeError("weights must be real")
    if is_concrete(w) and not bool(jnp.all(jnp.isfinite(w))):
        raise ValueError("weights must be finite")
    return w.astype(jnp.result_type(float))


def heat_weights(model: AbstractModel) -> Float[Array, "2 n_channels"]:
    r"""The counting weights of the heat: rows $\Delta E_{A,c}$ and
    $\Delta E_{M,c} = -(E_c + \Delta E_{A,c})$ of every channel (order: ancilla, motion)."""
    ch = model.channels()
    return jnp.stack([ch.ancilla, ch.motion]).astype(jnp.result_type(float))


# --- public: finite times ------------------------------------------------------------------


def counting_statistics(
    model: AbstractModel,
    rho0,
    ts,
    weights,
    *,
    order: int = 2,
    error_control: str = "all",
    rtol: float | None = None,
    atol: float | None = None,
    options: SolverOptions | None = None,
    **solver_kw,
) -> CountingStatistics:
    r"""Cumulants of weighted collision counts $N_k(t) = \sum_c w_{kc}\,n_c(t)$ since `ts[0]`.

    $n_c(t)$ is the number of jumps of channel $c$ (collisions) between `ts[0]` and $t$. With
    `weights = heat_weights(model)` the counters are the heats $(Q_A, Q_M)$ (`heat_statistics`);
    a row of ones counts all collisions, a unit vector one channel's.

    The cumulants come from the Taylor coefficients of the tilted evolution at $\lambda = 0$
    (module docstring): one linear ODE of $\binom{m + n - 1}{n - 1}$ copies of the sector that
    holds the populations and $\binom{m + n - 1}{n}$ traces, integrated by the Rosenbrock
    solver of `evolve` with one factorisation per step. For the spin the sector is
    tridiagonal, so the cost is $O(d)$ per step.

    **Arguments:**
    - `model`: any `AbstractModel` (`SpinGas`, `CollisionalModel`, or a user's).
    - `rho0`: the state at `ts[0]`: populations `(d,)` in the working (energy) basis or a
      `(d, d)` density matrix in the model's basis (as for `evolve`). Only its populations
      and degenerate coherences matter.
    - `ts`: strictly increasing save times.
    - `weights`: `(m, n_channels)` real weights (one row per counter; a 1-D array is one
      counter), in the order of `model.channels()`.
    - `order`: highest cumulant order $n \ge 1$.
    - `rtol`, `atol`, `options`, and the fields of `SolverOptions` as keywords: the solver
      settings, as for `evolve`. The moments are integrated in float64 with the max norm and
      no progress bar, so `norm="rms"`, `dtype=`, `progress=True`, `mode="scaling"` and
      `solver="exponential"` are refused.
    - `error_control`: `"all"` (default): the step size is controlled on the state and on
      the moments, each against `atol` in its own units (`atol` times the current count scale
      to the power of the moment's order, so the tolerances do not depend on the units of the
      weights) and `rtol`. `"state"`: on the state alone, as in `evolve`, which can be a little
      cheaper but is wrong where the state stands still while the moments relax: from the
      stationary state the steps grow without bound and the variances come out wrong
      (the dense output far from the relaxing moments).

    **Returns:** a `CountingStatistics` (`mean`, `covariance`, `cumulants`; layout there).

    **Raises:** `ValueError`/`TypeError` for bad input; `EvolveError` when the solver fails.
    Jit-able and differentiable in the model's parameters and in `weights`.
    """
    _check_model(model)
    order = check_int("order", order, minimum=1)
    if error_control not in ("state", "all"):
        raise ValueError(f"error_control must be 'state' or 'all', got {error_control!r}")
    opts = solver_options(options, caller="counting_statistics", rtol=rtol, atol=atol, **solver_kw)
    refused = {
        "norm": opts.norm != "max",
        "dtype": opts.dtype is not None,
        "progress": opts.progress,
        "mode": opts.mode == "scaling",
        "solver": opts.exponential is True,
    }
    for name, bad in refused.items():
        if bad:
            raise ValueError(
                f"counting_statistics does not take {name}={getattr(opts, name)!r} "
                "(the moments are integrated in float64 by a Rosenbrock solver, max norm)"
            )
    rtol, atol, max_steps = opts.rtol, opts.atol, opts.steps(100_000)
    d = model.dim
    rho0 = validate_state(rho0, d, "rho0")
    ts = _check_ts(ts)
    w = _check_weights(weights, model.channels().n_channels)
    m = w.shape[0]
    ys, code = _solve(
        _as_arrays(model),
        rho0,
        ts,
        w,
        jnp.asarray(rtol),
        jnp.asarray(atol),
        order=order,
        max_steps=max_steps,
        method=opts.tridiagonal,
        error_control=error_control,
        solver=rosenbrock(opts.solver),
        adjoint=opts.adjoint(),
    )
    msgs = [
        "",
        f"counting_statistics did not reach ts[-1] (max_steps={max_steps}, rtol={rtol}, "
        f"atol={atol}): raise max_steps, loosen rtol/atol, or shorten ts",
        "",
        "counting_statistics produced non-finite values: check that the model's rates and "
        "the weights are finite",
    ]
    if is_concrete(code):
        if int(code) != 0:
            raise EvolveError(msgs[int(code)])
    else:
        ys = eqx.branched_error_if(ys, code != 0, code, msgs)
    logz = _series_log(ys, m, order)
    cum = _cumulant_tensors(logz, m, order)
    return CountingStatistics(
        ts=ts,
        mean=cum[0],
        covariance=cum[1] if order >= 2 else None,
        cumulants=cum,
        moments=ys,
        multi_indices=tuple(tuple(int(x) for x in a) for a in _multi_indices(m, order)),
    )


def heat_statistics(
    model: AbstractModel,
    rho0,
    ts,
    *,
    order: int = 2,
    error_control: str = "all",
    rtol: float | None = None,
    atol: float | None = None,
    options: SolverOptions | None = None,
    **solver_kw,
) -> CountingStatistics:
    r"""Cumulants of the heat $(Q_A, Q_M)$ gained by the ancilla and motional sectors since
    `ts[0]`.

    A jump of channel $c$ adds $\Delta E_{A,c} = \epsilon_k - \epsilon_l$ to $Q_A$ and
    $\Delta E_{M,c} = -(E_c + \Delta E_{A,c})$ to $Q_M$ (eq. 14); every channel counts,
    including $E_c = 0$ channels that only flip the ancilla. Equivalent to
    `counting_statistics(model, rho0, ts, heat_weights(model), order=order)`.

    **Arguments:**
    - `model`, `rho0`, `ts`: as for `evolve` (`rho0` is the state at `ts[0]`).
    - `order`: highest cumulant order (2: mean and covariance).
    - `error_control`, `rtol`, `atol`, `options` and any field of `SolverOptions` as a
      keyword: as for `counting_statistics`.

    **Returns:** a `CountingStatistics` with `.mean` `(n_t, 2)` and `.covariance`
    `(n_t, 2, 2)` of $(Q_A, Q_M)$; `.cumulants[k-1]` `(n_t, 2, ..., 2)` for order $k$.
    """
    _check_model(model)
    return counting_statistics(
        model,
        rho0,
        ts,
        heat_weights(model),
        order=order,
        error_control=error_control,
        rtol=rtol,
        atol=atol,
        options=options,
        **solver_kw,
    )


# --- public: long times ----------------------------------------------------------------------


def _dense_pieces(model):
    """`(st, L0 (n, n), jumps (n_channels, n, n), t (n,))` on the population sector: the
    generator and the per-channel jump superoperators $r_c A_c\\cdot A_c^\\dagger$ (dense,
    complex), and the trace functional."""
    st = _structure(model, dense_only=True)
    ch = model.channels()
    n = len(st.plan.kept)
    buf = _sectors.coefficients(st.plan, ch, model.h_eff_entries())
    eye = jnp.eye(ch.n_channels, dtype=ch.value.dtype)
    jbuf = _jump_buffer(st, ch, eye)

    def dense(b):
        _, _, mats = _sectors.split_buffer(st.plan, b)
        vals = jnp.concatenate([M.reshape(-1) for M in mats])
        return jnp.zeros((n, n), dtype=b.dtype).at[st.dense_rows, st.dense_cols].add(vals)

    return st, dense(buf), jax.vmap(dense)(jbuf), jnp.asarray(st.trace_vector)


def _host_eigvals(a):
    return np.linalg.eigvals(np.asarray(a)).astype(np.asarray(a).dtype)


@jax.custom_jvp
def _dominant_eigenvalue(M, t):
    """Largest real part of the eigenvalues of `M` (real; the Perron root of a tilted
    generator). The derivative takes the left and right eigenvectors from bordered solves."""
    del t
    ev = jnp.linalg.eigvals(M)
    return jnp.max(jnp.real(ev))


def _bordered(M, theta, t):
    n = M.shape[0]
    tt = t.astype(M.dtype)
    top = jnp.concatenate([M - theta * jnp.eye(n, dtype=M.dtype), tt[:, None]], axis=1)
    bot = jnp.concatenate([tt, jnp.zeros(1, M.dtype)])[None]
    return jnp.concatenate([top, bot], axis=0)


@_dominant_eigenvalue.defjvp
def _dominant_eigenvalue_jvp(primals, tangents):
    M, t = primals
    dM, _ = tangents
    theta = _dominant_eigenvalue(M, t)
    B = _bordered(M, theta.astype(M.dtype), t)
    e = jnp.zeros(M.shape[0] + 1, dtype=M.dtype).at[-1].set(1.0)
    r = jnp.linalg.solve(B, e)[:-1]
    left = jnp.linalg.solve(B.T, e)[:-1]
    dtheta = (left @ (dM @ r)) / (left @ r)
    return theta, jnp.real(dtheta).astype(theta.dtype)


@eqx.filter_jit
def _scgf_flat(model, lambdas, weights):
    _, L0, Jc, t = _dense_pieces(model)

    def one(lam):
        f = jnp.expm1(weights.T @ lam).astype(L0.dtype)
        return _dominant_eigenvalue(L0 + jnp.einsum("c,cij->ij", f, Jc), t)

    return jax.vmap(one)(lambdas)


def counting_scgf(model: AbstractModel, lambdas, weights) -> Array:
    r"""Scaled cumulant generating function $\theta(\lambda) = \lim_t t^{-1}\ln
    E[e^{\lambda\cdot N(t)}]$ of weighted collision counts (see `counting_statistics`).

    $\theta$ is the dominant eigenvalue of the tilted generator on the sector that holds the
    populations (populations and degenerate coherences; the tilted jump terms map only
    there), computed densely (small and moderate $d$).

    **Arguments:**
    - `model`: any `AbstractModel` with a unique stationary state.
    - `lambdas`: `(..., m)` counting fields.
    - `weights`: `(m, n_channels)` counting weights.

    **Returns:** $\theta$, shape `lambdas.shape[:-1]`. Differentiable in `lambdas`, `weights`
    and the model's parameters (the eigenvalue's derivatives from its left and right
    eigenvectors, so Hessians are exact, not finite differences).
    """
    _check_model(model)
    w = _check_weights(weights, model.channels().n_channels)
    lam = jnp.asarray(lambdas, dtype=jnp.result_type(float))
    if lam.ndim == 0 or lam.shape[-1] != w.shape[0]:
        raise ValueError(f"lambdas must have shape (..., {w.shape[0]}), got {lam.shape}")
    shape = lam.shape[:-1]
    out = _scgf_flat(_as_arrays(model), lam.reshape(-1, w.shape[0]), w)
    return out.reshape(shape)


def scgf(model: AbstractModel, lambda_a, lambda_m) -> Array:
    r"""Scaled cumulant generating function of the heat,
    $\theta(\lambda_A, \lambda_M) = \lim_t t^{-1}\ln E[e^{\lambda_A Q_A + \lambda_M Q_M}]$.

    The dominant eigenvalue of the tilted generator, every jump term of channel $c$ multiplied by
    $e^{\lambda_A\Delta E_{A,c} + \lambda_M\Delta E_{M,c}}$, on the sector that holds the
    populations (for a non-degenerate spectrum: the tilted rate matrix).

    **Arguments:**
    - `model`: any `AbstractModel` with a unique stationary state.
    - `lambda_a`, `lambda_m`: counting fields (arrays broadcast against each other).

    **Returns:** $\theta$ with the broadcast shape of the fields; differentiable (also twice)
    in the fields and the model's parameters; `theta(0, 0) = 0`.
    """
    la, lm = jnp.broadcast_arrays(
        jnp.asarray(lambda_a, dtype=jnp.result_type(float)),
        jnp.asarray(lambda_m, dtype=jnp.result_type(float)),
    )
    _check_model(model)
    return counting_scgf(model, jnp.stack([la, lm], axis=-1), heat_weights(model))


@eqx.filter_jit
def _steady(model, weights):
    _, L0, Jc, t = _dense_pieces(model)
    n = L0.shape[0]
    B = _bordered(L0, jnp.zeros((), L0.dtype), t)
    lu = jax.scipy.linalg.lu_factor(B)
    e = jnp.zeros(n + 1, dtype=L0.dtype).at[-1].set(1.0)
    rho = jax.scipy.linalg.lu_solve(lu, e)[:n]
    w = weights.astype(L0.dtype)
    L1 = jnp.einsum("kc,cij->kij", w, Jc)  # first derivatives of the tilted generator
    v = L1 @ rho  # (m, n)
    tt = t.astype(L0.dtype)
    J = v @ tt
    # x_k = Drazin inverse of L0 applied to (L_k - J_k) rho
    rhs = jnp.concatenate([v - J[:, None] * rho[None], jnp.zeros((v.shape[0], 1), L0.dtype)], 1)
    x = jax.vmap(lambda b: jax.scipy.linalg.lu_solve(lu, b))(rhs)[:, :n]
    direct = jnp.einsum("kc,lc,c->kl", w, w, jnp.einsum("cij,j,i->c", Jc, rho, tt))
    cross = jnp.einsum("i,kij,lj->kl", tt, L1, x)
    D = direct - cross - cross.T
    return jnp.real(J), jnp.real(D)


def steady_counting_statistics(model: AbstractModel, weights) -> SteadyStatistics:
    r"""Steady currents and diffusion matrix of weighted collision counts: gradient and Hessian
    of `counting_scgf` at $\lambda = 0$, by perturbation theory.

    With $\rho$ the stationary state, $\mathcal L_k = \sum_c w_{kc}\,r_c A_c\cdot A_c^\dagger$,
    $\mathcal L_{kl} = \sum_c w_{kc}w_{lc}\,r_c A_c\cdot A_c^\dagger$ and $\mathcal L^D$ the
    Drazin inverse of the generator,
    $$J_k = \mathrm{tr}\,\mathcal L_k\rho, \qquad D_{kl} = \mathrm{tr}\,\mathcal L_{kl}\rho
      - \mathrm{tr}\,\mathcal L_k\mathcal L^D\mathcal L_l\rho
      - \mathrm{tr}\,\mathcal L_l\mathcal L^D\mathcal L_k\rho,$$
    all from one LU factorisation of the generator bordered by the trace (dense, on the sector
    holding the populations).

    **Arguments:**
    - `model`: any `AbstractModel` with a unique stationary state.
    - `weights`: `(m, n_channels)` counting weights.

    **Returns:** `SteadyStatistics` with `currents` `(m,)` and `diffusion` `(m, m)`.
    Differentiable in the model's parameters.
    """
    _check_model(model)
    w = _check_weights(weights, model.channels().n_channels)
    J, D = _steady(_as_arrays(model), w)
    return SteadyStatistics(currents=J, diffusion=D)


def steady_heat_statistics(model: AbstractModel) -> SteadyStatistics:
    r"""Steady heat currents and diffusion of $(Q_A, Q_M)$: `.currents` $= \nabla\theta(0)$,
    `.diffusion` $=$ the Hessian of `scgf` at 0 (see `steady_counting_statistics`).

    Since $Q_A + Q_M = -\Delta E_S$ stays bounded, $J_A = -J_M$ and the diffusion matrix has
    rank 1 ($D_{AA} = -D_{AM} = D_{MM}$).

    **Arguments:**
    - `model`: any `AbstractModel` with a unique stationary state.

    **Returns:** `SteadyStatistics` (`currents` `(2,)`, `diffusion` `(2, 2)`).
    """
    _check_model(model)
    return steady_counting_statistics(model, heat_weights(model))


def gallavotti_cohen_residual(model: AbstractModel, lambda_a, lambda_m) -> Array:
    r"""$\theta(\lambda_A, \lambda_M) - \theta(-1/T_A - \lambda_A, -1/T_M - \lambda_M)$: zero
    where the Gallavotti-Cohen symmetry of the heat holds.

    The symmetry follows from local detailed balance with the two temperatures (eq. 9). It
    holds to round-off for real (time-reversal symmetric) couplings, for models without
    forward shift ($h_{\rm eff} = 0$, e.g. `gamma_tilde` only) and for non-degenerate spectra;
    a complex coupling with $h_{\rm eff} \ne 0$ on a degenerate spectrum breaks it.

    **Arguments:**
    - `model`: a model with gas temperatures `T_a`, `T_m`.
    - `lambda_a`, `lambda_m`: counting fields (broadcast).

    **Returns:** the residual, with the broadcast shape of the fields.
    """
    if not hasattr(model, "T_a") or not hasattr(model, "T_m"):
        raise TypeError(f"model must have gas temperatures T_a and T_m, got {type(model).__name__}")
    la = jnp.asarray(lambda_a, dtype=jnp.result_type(float))
    lm = jnp.asarray(lambda_m, dtype=jnp.result_type(float))
    return scgf(model, la, lm) - scgf(model, -1.0 / model.T_a - la, -1.0 / model.T_m - lm)
