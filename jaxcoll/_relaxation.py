r"""Stationary states and relaxation rates of any model, block by block over its Bohr sectors.

The Liouvillian of an `AbstractModel` is block diagonal over the connected components of its
action on matrix elements (`Sectors`, see `jaxcoll._protocol`). In the frame rotating with
$h_S$ a block of Bohr frequency $\omega$ differs from the lab frame only by $-i\omega$ times the
identity, so its decay rates $-\mathrm{Re}\,\lambda$ are the same in both frames and are found
block by block:

- 1 x 1 blocks in closed form, $\lambda = \mathcal L_{(ij),(ij)}$;
- tridiagonal chains from their real generator $(\ell, d, u)$: a real tridiagonal matrix with
  $\ell_{p+1} u_p \ge 0$ is similar to the symmetric one with off-diagonals
  $\sqrt{\ell_{p+1} u_p}$ (where a product vanishes the matrix is block triangular there, and
  a zero off-diagonal gives the same eigenvalues), so LAPACK's bisection (`stebz`) returns the
  eigenvalues above a threshold in $O(n)$ per eigenvalue, however long the chain; the
  similarity vector itself would overflow for long chains and is never formed;
- dense blocks (and chains that cannot be symmetrised) by `numpy.linalg.eigvals`.

The stationary state is the null vector of the blocks that hold populations (the $\omega = 0$
sector: the Pauli rate equation (11) for a non-degenerate spectrum plus the coherences inside
degenerate levels). A chain of populations with all its rates positive is solved by detailed
balance across every link, in log space (exact and positive at any size); any other block by a
sparse LU solve with one row replaced by the trace. Several such blocks, or a rate graph with
several closed classes, mean several stationary states: reported as a `ValueError`.

Everything here is NumPy/SciPy on concrete model parameters (not traced).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from . import _config  # noqa: F401
from ._protocol import AbstractModel, Sectors, _pairs_by_group, coupling_edges
from ._validation import check_int

__all__ = ["relaxation_rates", "steady_state"]

_EPS = float(np.finfo(float).eps)
_CHUNK = 1 << 22  # matrix elements per chunk of chain coefficients


def _check_model(model, what: str):
    if not isinstance(model, AbstractModel):
        raise TypeError(
            f"model must be a jaxcoll model (an AbstractModel such as SpinGas or "
            f"CollisionalModel), got {type(model).__name__}"
        )
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(model)):
        raise TypeError(
            f"{what} needs concrete model parameters, got traced ones; call it outside "
            "jit/vmap/grad"
        )


class _Generator:
    r"""Matrix elements $\mathcal L_{(ij),(kl)}$ of the rotating-frame generator, looked up
    from the channel list (NumPy; memory linear in the number of channel entries)."""

    def __init__(self, model: AbstractModel):
        import scipy.sparse as sp

        ch = model.channels()
        d = model.dim
        self.d = d
        self.model = model
        self.pattern = ch.pattern
        self.heff = model.h_eff_entries()
        rates = np.asarray(ch.rates, dtype=float)
        if not np.all(np.isfinite(rates)) or np.any(rates < 0):
            raise ValueError("model: channel rates must be finite and >= 0")
        # one entry per (channel, row, col), sorted by that key
        key = (ch.channel.astype(np.int64) * d + ch.row) * d + ch.col
        uniq, inv = np.unique(key, return_inverse=True)
        vals = np.zeros(len(uniq), dtype=complex)
        np.add.at(vals, inv, np.asarray(ch.value, dtype=complex))
        c, rc = np.divmod(uniq, d * d)
        r, k = np.divmod(rc, d)
        self.key, self.vals, self.c, self.rates = uniq, vals, c, rates
        self.rc = r * d + k
        self.order = np.argsort(self.rc, kind="stable")
        self.rc_sorted = self.rc[self.order]
        # G = -K/2 - i h_eff, K = sum_c r_c A_c^dag A_c
        w = rates[c] * np.abs(vals) ** 2
        kdiag = np.bincount(k, weights=w, minlength=d)
        p, q = _pairs_by_group(c, r)
        off = k[p] != k[q]
        p, q = p[off], q[off]
        kval = rates[c[p]] * np.conj(vals[p]) * vals[q]
        he = self.heff
        rows = np.concatenate([np.arange(d), k[p], he.row])
        cols = np.concatenate([np.arange(d), k[q], he.col])
        gv = np.concatenate([-0.5 * kdiag, -0.5 * kval, -1j * np.asarray(he.value, dtype=complex)])
        self.G = sp.csr_matrix((gv.astype(complex), (rows, cols)), shape=(d, d))
        self.G.sum_duplicates()
        self.scale = float(np.max(kdiag, initial=0.0))

    def _g(self, a, b):
        if len(a) == 0:
            return np.zeros(0, dtype=complex)
        return np.asarray(self.G[a, b]).ravel()

    def elements(self, ti, tj, si, sj):
        r"""$\mathcal L_{(t_i t_j),(s_i s_j)}$ for arrays of index pairs (rotating frame)."""
        d = self.d
        ti, tj, si, sj = (np.asarray(x, dtype=np.int64).ravel() for x in (ti, tj, si, sj))
        n = len(ti)
        out = np.zeros(n, dtype=complex)
        # jump: sum_c r_c (A_c)_{ti si} conj((A_c)_{tj sj})
        want = ti * d + si
        lo = np.searchsorted(self.rc_sorted, want, "left")
        hi = np.searchsorted(self.rc_sorted, want, "right")
        cnt = hi - lo
        total = int(cnt.sum())
        if total:
            qi = np.repeat(np.arange(n), cnt)
            start = np.repeat(np.cumsum(cnt) - cnt, cnt)
            ent = self.order[np.repeat(lo, cnt) + np.arange(total) - start]
            cc = self.c[ent]
            look = (cc * d + tj[qi]) * d + sj[qi]
            pos = np.minimum(np.searchsorted(self.key, look), len(self.key) - 1)
            hit = self.key[pos] == look
            val = np.where(hit, self.rates[cc] * self.vals[ent] * np.conj(self.vals[pos]), 0)
            out += np.bincount(qi, weights=val.real, minlength=n)
            out += 1j * np.bincount(qi, weights=val.imag, minlength=n)
        # -K/2 - i h_eff from the left and its adjoint from the right
        a = tj == sj
        out[a] += self._g(ti[a], si[a])
        b = ti == si
        out[b] += np.conj(self._g(tj[b], sj[b]))
        return out

    def block(self, flat):
        """The dense block on flat indices `flat` (small blocks)."""
        ti, tj = np.divmod(np.asarray(flat), self.d)
        n = len(flat)
        a = np.repeat(np.arange(n), n)
        b = np.tile(np.arange(n), n)
        return self.elements(ti[a], tj[a], ti[b], tj[b]).reshape(n, n)

    def sparse_block(self, flat):
        """The block on flat indices `flat` as a SciPy CSR matrix, from the coupling pattern."""
        import scipy.sparse as sp

        d = self.d
        flat = np.asarray(flat, dtype=np.int64)
        n = len(flat)
        tgt, src = coupling_edges(self.pattern, self.heff.pattern, d)
        where = np.full(d * d, -1, dtype=np.int64)
        where[flat] = np.arange(n)
        keep = (where[tgt] >= 0) & (where[src] >= 0)
        pairs = np.unique(np.concatenate([tgt[keep] * (d * d) + src[keep], flat * (d * d + 1)]))
        tgt, src = np.divmod(pairs, d * d)
        ti, tj = np.divmod(tgt, d)
        si, sj = np.divmod(src, d)
        v = self.elements(ti, tj, si, sj)
        return sp.csr_matrix((v, (where[tgt], where[src])), shape=(n, n))

    def tridiagonal(self, chain):
        """`(lower, diag, upper)` of a chain in its order (complex)."""
        ti, tj = np.divmod(np.asarray(chain), self.d)
        diag = self.elements(ti, tj, ti, tj)
        lower = np.zeros(len(chain), dtype=complex)
        upper = np.zeros(len(chain), dtype=complex)
        if len(chain) > 1:
            lower[1:] = self.elements(ti[1:], tj[1:], ti[:-1], tj[:-1])
            upper[:-1] = self.elements(ti[:-1], tj[:-1], ti[1:], tj[1:])
        return lower, diag, upper


def _chains_coefficients(model, gen, chains, d):
    """Yield `(chain, lower, diag, upper)` for every chain: from the model's real fast path
    (`chain_generators`, in chunks of rows of one chain each) when it has one, else from the
    channel list."""
    probe = None
    if chains and model.is_real():
        c0 = chains[0]
        probe = model.chain_generators(Sectors(d, [], (c0,), layout=c0[None]))
    if probe is None:
        for c in chains:
            yield (c, *gen().tridiagonal(c))
        return
    order = sorted(range(len(chains)), key=lambda i: len(chains[i]))  # shortest first
    k = 0
    while k < len(order):
        e = k + 1
        while e < len(order) and (e - k + 1) * len(chains[order[e]]) <= _CHUNK:
            e += 1
        idx = order[k:e]
        width = len(chains[idx[-1]])
        k = e
        layout = np.full((len(idx), width), -1, dtype=np.int64)
        for r, i in enumerate(idx):
            layout[r, : len(chains[i])] = chains[i]
        sub = Sectors(d, [], tuple(chains[i] for i in idx), layout=layout)
        lo, di, up = (np.asarray(x, dtype=float) for x in model.chain_generators(sub))
        for r, i in enumerate(idx):
            n = len(chains[i])
            yield chains[i], lo[r, :n], di[r, :n], up[r, :n]


def _symmetric_tridiagonal(lower, diag, upper):
    """`(diag, offdiag)` of the symmetric tridiagonal similar to a real chain generator, or
    `None` when it has no real symmetric form (complex entries or a negative product)."""
    lower, diag, upper = (np.asarray(x) for x in (lower, diag, upper))
    scale = float(np.max(np.abs(diag), initial=0.0)) + float(
        np.max(np.abs(lower), initial=0.0) + np.max(np.abs(upper), initial=0.0)
    )
    if np.iscomplexobj(diag) or np.iscomplexobj(lower):
        tiny = 1e-14 * max(scale, 1e-300)
        if max(np.max(np.abs(np.imag(x)), initial=0.0) for x in (lower, diag, upper)) > tiny:
            return None
        lower, diag, upper = (np.real(x) for x in (lower, diag, upper))
    prod = lower[1:] * upper[:-1]
    if np.any(prod < -((1e-14 * scale) ** 2)):
        return None
    return diag.astype(float), np.sqrt(np.maximum(prod, 0.0))


def _tridiagonal_eigenvalues(diag, off, above=None):
    """Eigenvalues of a symmetric tridiagonal: all, or those `>= above` (LAPACK stebz)."""
    from scipy.linalg import eigh_tridiagonal

    n = len(diag)
    if n == 1:
        vals = diag.copy()
    elif above is None:
        vals = eigh_tridiagonal(diag, off, eigvals_only=True)
    else:
        top = float(np.max(diag) + 2 * np.max(off, initial=0.0)) + 1.0
        if above > top:
            return np.zeros(0)
        vals = eigh_tridiagonal(
            diag,
            off,
            eigvals_only=True,
            select="v",
            select_range=(above, top),
            lapack_driver="stebz",
        )
    return vals if above is None else vals[vals >= above]


def _tridiag_dense(lower, diag, upper):
    n = len(diag)
    M = np.diag(np.asarray(diag, dtype=complex))
    if n > 1:
        M[np.arange(1, n), np.arange(n - 1)] = lower[1:]
        M[np.arange(n - 1), np.arange(1, n)] = upper[:-1]
    return M


def _self_transposed(flat, d) -> bool:
    """Whether a block is its own transpose (else its transpose is a disjoint block)."""
    i, j = divmod(int(flat[0]), d)
    return bool(np.any(np.asarray(flat) == j * d + i))


def relaxation_rates(model, k: int = 1) -> np.ndarray:
    r"""The `k` slowest decay rates of the model's Liouvillian; the first is the spectral gap.

    The rates are $-\mathrm{Re}\,\lambda > 0$ over the eigenvalues $\lambda$ of the whole
    Liouvillian (eq. 6, $d^2$ of them), counted with multiplicity (a complex-conjugate pair
    counts twice), in ascending order; the stationary eigenvalue(s) $\lambda = 0$ (and any
    undamped coherence, $\mathrm{Re}\,\lambda = 0$) are left out. They are found block by
    block over the model's sectors (see the module docstring): closed form for 1 x 1 blocks,
    symmetrised tridiagonal bisection for chains (only the eigenvalues above the current k-th
    slowest are computed, so a long chain costs $O(n)$), `eigvals` for dense blocks. The
    slowest block need not be the populations: for the spin of the paper's Fig. 2 the gap
    lies in the first coherence band.

    **Arguments:**
    - `model`: any `AbstractModel` (`SpinGas`, `CollisionalModel`, a model of your own) with
      concrete parameters.
    - `k`: how many rates, a positive integer.

    **Returns:** NumPy array of shape `(k,)`, ascending (fewer when the Liouvillian has fewer
    decaying modes), in the model's inverse time unit.

    **Raises:** `TypeError` for a traced model, `ValueError` for a bad `k`.
    """
    _check_model(model, "relaxation_rates")
    k = check_int("k", k, minimum=1)
    d = model.dim
    sec = model.sectors()
    cache = {}

    def gen():
        if "g" not in cache:
            cache["g"] = _Generator(model)
        return cache["g"]

    best = np.zeros(0)  # the k slowest rates so far, with multiplicity, ascending

    def add(lam, mult, tol):
        nonlocal best
        lam = np.asarray(lam)
        rates = -np.real(lam)
        keep = rates > tol
        new = np.repeat(rates[keep], np.broadcast_to(np.asarray(mult), lam.shape)[keep])
        if len(new) > k:
            new = np.partition(new, k - 1)[:k]
        best = np.sort(np.concatenate([best, new]))[:k]

    def kth() -> float:
        return float(best[-1]) if len(best) == k else math.inf

    # 1 x 1 blocks in closed form
    if len(sec.singles):
        i, j = np.divmod(sec.singles, d)
        lam = gen().elements(i, j, i, j)
        scale = float(np.max(np.abs(lam), initial=0.0))
        add(lam, np.where(i == j, 1, 2), 1e-12 * scale)
    # dense blocks
    for b in sec.dense:
        M = gen().block(b)
        lam = np.linalg.eigvals(M)
        tol = 1e-10 * max(float(np.max(np.abs(M), initial=0.0)), 1e-300)
        add(lam, 1 if _self_transposed(b, d) else 2, tol)
    # chains: shortest first (cheap, and they set a threshold for the long ones)
    chains = sorted(sec.chains, key=len)
    for chain, lo, di, up in _chains_coefficients(model, gen, chains, d):
        mult = 1 if _self_transposed(chain, d) else 2
        sym = _symmetric_tridiagonal(lo, di, up)
        if sym is None:
            M = _tridiag_dense(lo, di, up)
            tol = 1e-10 * max(float(np.max(np.abs(M), initial=0.0)), 1e-300)
            add(np.linalg.eigvals(M), mult, tol)
            continue
        dd, off = sym
        norm = float(np.max(np.abs(dd), initial=0.0) + 2 * np.max(off, initial=0.0))
        tol = 64 * _EPS * math.sqrt(len(dd)) * max(norm, 1e-300)
        t = kth()
        if not math.isinf(t):
            # Gershgorin: every eigenvalue lies below max_p (d_p + o_{p-1} + o_p)
            o = np.concatenate([[0.0], off, [0.0]])
            if float(np.max(dd + o[:-1] + o[1:])) < -t * (1 + 1e-12) - tol:
                continue
        vals = _tridiagonal_eigenvalues(dd, off, None if math.isinf(t) else -t * (1 + 1e-12))
        add(vals, mult, tol)
    return best


def _population_blocks(model):
    s = model.population_sectors()
    d = model.dim
    blocks = [("single", np.array([x])) for x in s.singles if x // d == x % d]
    blocks += [("chain", b) for b in s.chains]
    blocks += [("dense", b) for b in s.dense]
    return s, blocks


def _levels(flat, d):
    i, j = np.divmod(np.asarray(flat), d)
    return i[i == j]


def _chain_coefficients_one(model, gen, chain, sectors):
    d = model.dim
    if model.is_real():
        lay = sectors.layout
        if lay is not None and lay.shape[0] == 1 and np.array_equal(lay[0], chain):
            tri = model.chain_generators(sectors)
        else:
            tri = model.chain_generators(Sectors(d, [], (chain,), layout=chain[None]))
        if tri is not None:
            return tuple(np.asarray(x, dtype=float)[0] for x in tri)
    return gen().tridiagonal(chain)


def _detailed_balance(lower, diag, upper):
    """Stationary vector of a birth-death chain with all link rates positive, in log space."""
    lower, upper = np.real(lower), np.real(upper)
    logp = np.concatenate([[0.0], np.cumsum(np.log(lower[1:]) - np.log(upper[:-1]))])
    logp -= np.max(logp)
    p = np.exp(logp)
    return p / p.sum()


def _closed_classes(B, n) -> int:
    """Number of closed communicating classes of a rate generator (columns: sources)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    C = sp.coo_matrix(B)
    off = (C.row != C.col) & (np.abs(C.data) > 0)
    # graph edge src -> tgt
    g = sp.csr_matrix((np.ones(int(off.sum())), (C.col[off], C.row[off])), shape=(n, n))
    ncomp, lab = connected_components(g, directed=True, connection="strong")
    leaves = np.ones(ncomp, dtype=bool)
    src_l, tgt_l = lab[C.col[off]], lab[C.row[off]]
    leaves[src_l[src_l != tgt_l]] = False
    return int(leaves.sum())


def _solve_block(B, flat, d):
    """Null vector of the block `B` (CSR) normalised to unit trace, or raise ValueError."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    n = B.shape[0]
    i, j = np.divmod(np.asarray(flat), d)
    t = (i == j).astype(float)
    if np.all(i == j) and np.max(np.abs(np.imag(B.data)), initial=0.0) == 0:
        classes = _closed_classes(B, n)
        if classes > 1:
            raise ValueError(
                f"the stationary state is not unique: the rate graph of the populations has "
                f"{classes} closed classes (levels that cannot reach each other; a conserved "
                "quantity or a rate that vanishes), so the stationary state depends on the "
                "initial state"
            )
        B = B.real
    r0 = int(np.flatnonzero(i == j)[np.argmax(np.abs(B.diagonal())[i == j])])
    A = sp.lil_matrix(B)
    A[r0, :] = t
    rhs = np.zeros(n, dtype=A.dtype)
    rhs[r0] = 1.0
    try:
        with np.errstate(all="ignore"):
            x = spla.splu(sp.csc_matrix(A)).solve(rhs)
    except RuntimeError:
        x = np.full(n, np.nan)
    res = float(np.max(np.abs(B @ x), initial=0.0))
    bscale = float(np.max(np.abs(B.data), initial=0.0)) * float(np.max(np.abs(x), initial=0.0))
    if not np.all(np.isfinite(x)) or res > 1e-8 * max(bscale, 1e-300):
        raise ValueError(
            "the stationary state is not unique (the generator's w = 0 block has a null space "
            "of dimension > 1: a conserved quantity or a decoupled subspace), so it depends "
            "on the initial state"
        )
    return x


def steady_state(model, *, populations: bool = False):
    r"""The stationary state of `model`: $\mathcal L\rho_\infty = 0$, $\mathrm{tr}\rho_\infty = 1$.

    Found as the null vector of the blocks of the Liouvillian that hold populations (the
    $\omega = 0$ sector, built from the channels): for a non-degenerate spectrum the Pauli
    rate equation (11), else also the coherences inside degenerate levels. A chain of
    populations (a birth-death process, like the spin's) is solved by detailed balance across
    its links in log space, so `populations=True` works at any size (a spin of $J = 10^5$);
    other blocks by a sparse LU solve. All other matrix elements of $\rho_\infty$ vanish.

    **Arguments:**
    - `model`: any `AbstractModel` with concrete parameters.
    - `populations`: return only the diagonal (in the model's working basis, the energy
      eigenbasis in the order of `model.energies()`, as `evolve` returns populations) instead
      of the `(d, d)` density matrix.

    **Returns:** `(d, d)` density matrix in the model's own basis (that of `rho0` in `evolve`:
    basis order for `SpinGas`, the basis of `h_s` for `CollisionalModel`), or `(d,)`
    populations.

    **Raises:** `ValueError` when the stationary state is not unique (several blocks of
    populations, a rate graph with several closed classes, or a singular $\omega = 0$ block:
    conserved quantities), `TypeError` for a traced model.
    """
    _check_model(model, "steady_state")
    if not isinstance(populations, bool):
        raise TypeError(f"populations must be a bool, got {populations!r}")
    d = model.dim
    cache = {}

    def gen():
        if "g" not in cache:
            cache["g"] = _Generator(model)
        return cache["g"]

    sectors, blocks = _population_blocks(model)
    if len(blocks) != 1:
        groups = [list(_levels(b, d)) for _, b in blocks]
        more = " ..." if len(groups) > 4 else ""
        shown = "; ".join(str(g[:6])[:-1] + (", ...]" if len(g) > 6 else "]") for g in groups[:4])
        raise ValueError(
            f"the stationary state is not unique: the populations fall into {len(blocks)} "
            f"blocks that the collisions never connect (levels {shown}{more}); "
            "each holds its own stationary state, so the result depends on the initial state"
        )
    kind, flat = blocks[0]
    if kind == "single":
        x = np.ones(1)
    elif kind == "chain" and np.all(flat // d == flat % d):
        lo, di, up = _chain_coefficients_one(model, gen, flat, sectors)
        if np.all(np.real(lo[1:]) > 0) and np.all(np.real(up[:-1]) > 0):
            x = _detailed_balance(lo, di, up)
        else:
            import scipy.sparse as sp

            n = len(flat)
            B = sp.diags(
                [np.real(lo[1:]), np.real(di), np.real(up[:-1])], [-1, 0, 1], shape=(n, n)
            ).tocsr()
            x = _solve_block(B, flat, d)
    else:
        x = _solve_block(gen().sparse_block(flat), flat, d)
    i, j = np.divmod(flat, d)
    if populations:
        p = np.zeros(d)
        diag = i == j
        p[i[diag]] = np.real(x[diag])
        return jnp.asarray(p / p.sum())
    rho = np.zeros((d, d), dtype=complex)
    rho[i, j] = x
    rho = 0.5 * (rho + rho.conj().T)
    rho /= np.trace(rho).real
    return model.from_working(jnp.asarray(rho))
