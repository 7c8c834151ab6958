r"""One protocol for every model: levels, channels, forward shift and Bohr sectors.

Every model of this package is a Lindblad generator of the form of eq. (6)-(7),

$$\dot\rho = -i[h_S + h_{\rm eff}, \rho]
  + \sum_c r_c\Big(A_c\rho A_c^\dagger - \tfrac12\{A_c^\dagger A_c, \rho\}\Big),$$

written in the model's *working basis*, an eigenbasis of $h_S$ with levels $e_i$
(`energies()`). Each channel $c$ raises the system energy by one Bohr frequency $E_c$: every
matrix element $(A_c)_{ij} \ne 0$ has $e_i - e_j = E_c$. The same jump changes the ancilla
energy by $\Delta E_A = \epsilon_k - \epsilon_l$ and the motional energy by
$-(E_c + \Delta E_A)$ (first law channel by channel). $h_{\rm eff}$ commutes with $h_S$.

`AbstractModel` is what `SpinGas`, `CollisionalModel` and user models implement:

- `dim`, `energies()` (levels of the working basis), `to_working` / `from_working` (basis
  change of density matrices; identity when the model is defined in its eigenbasis);
- `channels()`: a `Channels` with per channel `bohr`, `ancilla`, `motion`, `rates` (traced,
  differentiable) and the operators $A_c$ as COO entries `(channel, row, col, value)` in the
  working basis; never `(n_channels, d, d)` dense;
- `h_eff_entries()`: the secular forward shift as a `SparseMatrix` in the working basis;
- `sectors()`: the connected components of the generator's action on matrix elements
  (`Sectors`), derived from the channel pattern unless the model supplies its own.

Because every $A_c$ carries one Bohr frequency and $A_c^\dagger A_c$, $h_{\rm eff}$ are secular,
the generator maps the elements $\rho_{ij}$ with $e_i - e_j = \omega$ into themselves, and in
the frame rotating with $h_S$ it splits further into the components of its action: the jump
term couples $\rho_{jl} \to \rho_{ik}$ for entries $(i,j)$, $(k,l)$ of one channel, and
$K = \sum_c r_c A_c^\dagger A_c$ and $h_{\rm eff}$ couple $\rho_{ij}$ to $\rho_{i'j}$ and
$\rho_{ij'}$ through their off-diagonal entries.
"""

from __future__ import annotations

import abc
import functools
import hashlib

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float

from . import _config  # noqa: F401
from ._profiles import InteractionProfile, check_drift, check_profile
from ._rates import gamma_tilde_from
from ._validation import check_rate_scale, check_real, is_concrete

_FLOAT = jnp.result_type(float)


def complex_dtype(dtype):
    """The complex dtype of the same precision as `dtype`."""
    dtype = jnp.dtype(dtype)
    return (
        jnp.dtype(jnp.complex64)
        if dtype in (jnp.float32, jnp.complex64)
        else jnp.dtype(jnp.complex128)
    )


class StaticArrays:
    """NumPy integer arrays as a hashable, immutable static value (pytree structure, not data).

    Hashes by content (digest computed once), so that equal structures share compilations.
    """

    __slots__ = ("_arrays", "_hash", "_names")

    def __init__(self, **arrays):
        names = tuple(sorted(arrays))
        arrs = []
        for n in names:
            a = np.ascontiguousarray(np.asarray(arrays[n]))
            a.setflags(write=False)
            arrs.append(a)
        h = hashlib.blake2b(digest_size=16)
        for n, a in zip(names, arrs, strict=True):
            h.update(n.encode())
            h.update(str(a.shape).encode() + a.dtype.str.encode())
            h.update(a.tobytes())
        self._names = names
        self._arrays = tuple(arrs)
        self._hash = hash(h.digest())

    def __getattr__(self, name):
        try:
            return self._arrays[self._names.index(name)]
        except ValueError:
            raise AttributeError(name) from None

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        if self is other:
            return True
        if not isinstance(other, StaticArrays) or self._hash != other._hash:
            return False
        return self._names == other._names and all(
            a.shape == b.shape and np.array_equal(a, b)
            for a, b in zip(self._arrays, other._arrays, strict=True)
        )

    def __repr__(self):
        shapes = ", ".join(f"{n}{a.shape}" for n, a in zip(self._names, self._arrays, strict=True))
        return f"StaticArrays({shapes})"


def _pattern_array(name: str) -> property:
    """A read-only property: the static index array `name` of the instance's `pattern`."""
    return property(lambda self: getattr(self.pattern, name))


class SparseMatrix(eqx.Module):
    """A `(dim, dim)` matrix as COO entries: static `row`, `col`, traced `value`."""

    value: Complex[Array, " m"]
    pattern: StaticArrays = eqx.field(static=True)  # row, col
    dim: int = eqx.field(static=True)

    def __init__(self, row, col, value, dim: int):
        self.pattern = StaticArrays(
            row=np.asarray(row, dtype=np.int64), col=np.asarray(col, dtype=np.int64)
        )
        self.value = jnp.asarray(value)
        self.dim = int(dim)

    row = _pattern_array("row")
    col = _pattern_array("col")

    def dense(self):
        """The `(dim, dim)` matrix (small `dim` only)."""
        out = jnp.zeros((self.dim, self.dim), dtype=complex_dtype(self.value.dtype))
        return out.at[self.row, self.col].add(self.value)


def empty_sparse(dim: int) -> SparseMatrix:
    z = np.zeros(0, dtype=np.int64)
    return SparseMatrix(z, z, jnp.zeros(0, dtype=jnp.result_type(complex)), dim)


class Channels(eqx.Module):
    r"""The collision channels of a model: $L_c = \sqrt{r_c}\,A_c$ in the working basis.

    **Fields:**
    - `bohr` `(n,)`: system energy $E_c$ gained per jump.
    - `ancilla` `(n,)`: ancilla energy change $\Delta E_A = \epsilon_k - \epsilon_l$ per jump.
    - `rates` `(n,)`: $r_c \ge 0$ (differentiable).
    - `value` `(m,)`: the non-zero entries of the operators $A_c$;
      `channel`, `row`, `col` `(m,)` (static NumPy) say which channel and matrix element
      each entry belongs to.
    - `motion` (property): $-(E_c + \Delta E_A)$, the motional energy change per jump.
    """

    bohr: Float[Array, " n"]
    ancilla: Float[Array, " n"]
    rates: Float[Array, " n"]
    value: Complex[Array, " m"]
    pattern: StaticArrays = eqx.field(static=True)  # channel, row, col
    dim: int = eqx.field(static=True)

    def __init__(self, bohr, ancilla, rates, channel, row, col, value, dim: int):
        self.bohr = jnp.asarray(bohr)
        self.ancilla = jnp.asarray(ancilla)
        self.rates = jnp.asarray(rates)
        self.value = jnp.asarray(value)
        self.dim = int(dim)
        self.pattern = StaticArrays(
            channel=np.asarray(channel, dtype=np.int64),
            row=np.asarray(row, dtype=np.int64),
            col=np.asarray(col, dtype=np.int64),
        )

    channel = _pattern_array("channel")
    row = _pattern_array("row")
    col = _pattern_array("col")

    @property
    def n_channels(self) -> int:
        return self.bohr.shape[0]

    @property
    def motion(self):
        """$-(E_c + \\Delta E_A)$ per channel."""
        return -(self.bohr + self.ancilla)

    def operators(self):
        """Dense $L_c = \\sqrt{r_c}A_c$, `(n, d, d)` (small models and tests only)."""
        n, d = self.n_channels, self.dim
        amp = (
            jnp.sqrt(self.rates)[self.channel].astype(complex_dtype(self.value.dtype)) * self.value
        )
        out = jnp.zeros((n, d, d), dtype=complex_dtype(amp.dtype))
        return out.at[self.channel, self.row, self.col].add(amp)


def check_bohr_homogeneous(channels: Channels, energies, *, rtol: float = 1e-8) -> None:
    """Raise `ValueError` if an operator entry $(A_c)_{ij}$ has $e_i - e_j \\ne E_c$.

    Checked only on concrete values (a no-op under tracing).
    """
    if not (is_concrete(channels.bohr) and is_concrete(energies)):
        return
    e = np.asarray(energies, dtype=float)
    if len(channels.row) == 0:
        return
    bohr = np.asarray(channels.bohr, dtype=float)
    gap = e[channels.row] - e[channels.col] - bohr[channels.channel]
    scale = max(float(np.ptp(e)) if e.size else 0.0, float(np.max(np.abs(bohr), initial=0.0)))
    tol = rtol * max(scale, 1e-300) + 1e-12 * max(scale, 1.0)
    bad = np.abs(gap) > tol
    if np.any(bad):
        k = int(np.argmax(bad))
        raise ValueError(
            f"channels: channel {int(channels.channel[k])} is not Bohr-homogeneous: its entry "
            f"({int(channels.row[k])}, {int(channels.col[k])}) has e_i - e_j = "
            f"{e[channels.row[k]] - e[channels.col[k]]:.12g} but the channel's bohr is "
            f"{bohr[channels.channel[k]]:.12g}; split it into one channel per Bohr frequency"
        )


class AbstractModel(eqx.Module):
    r"""The protocol every collisional model implements (see the module docstring).

    Subclasses define `dim`, `energies()` and `channels()`; they may override
    `h_eff_entries()` (default: none), `to_working`/`from_working` (default: identity, the model
    is defined in its eigenbasis) and `sectors()` (default: derived from the channel pattern).
    The gas parameters `T_a`, `T_m`, `E_R` are array leaves.
    """

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """System dimension $d$ (static)."""

    @abc.abstractmethod
    def energies(self) -> Float[Array, " d"]:
        """The levels $e_i$ of the working basis, in its order."""

    @abc.abstractmethod
    def channels(self) -> Channels:
        """The collision channels in the working basis."""

    def h_eff_entries(self) -> SparseMatrix:
        """Secular forward shift $h_{\\rm eff}$ in the working basis (default: zero)."""
        return empty_sparse(self.dim)

    def to_working(self, rho):
        """A `(..., d, d)` matrix from the model's basis to the working basis."""
        return rho

    def from_working(self, rho):
        """Inverse of `to_working`."""
        return rho

    def sectors(self) -> Sectors:
        """The connected components of the generator on matrix elements (static, cached)."""
        ch = self.channels()
        return derive_sectors(ch.pattern, self.h_eff_entries().pattern, self.dim)

    def population_sectors(self) -> Sectors:
        """The blocks that hold diagonal elements (what a population start evolves)."""
        s = self.sectors()
        d = self.dim
        diag = lambda b: bool(np.any(b // d == b % d))
        si, sj = np.divmod(s.singles, d)
        return Sectors(
            d,
            s.singles[si == sj],
            tuple(b for b in s.chains if diag(b)),
            tuple(b for b in s.dense if diag(b)),
        )

    def chain_generators(self, sectors: Sectors):
        """Optional fast path: real `(lower, diag, upper)`, each `(n_rows, width)`, of the
        rows of `sectors.layout` in the rotating frame; `None` (default) lets `evolve`
        assemble them from the channels."""
        del sectors
        return None

    def is_real(self) -> bool:
        """Whether the rotating-frame generator is real (static): real operator entries and
        no forward shift. Decides whether coherence chains run in real arithmetic."""
        ch = self.channels()
        if len(self.h_eff_entries().row):
            return False
        if not is_concrete(ch.value):
            return False
        return bool(np.all(np.imag(np.asarray(ch.value)) == 0))


def float_leaf(x):
    """A parameter as a float array leaf (so that new values do not recompile), or `None`."""
    return None if x is None else jnp.asarray(x, dtype=jnp.result_type(float))


class AbstractGasModel(AbstractModel):
    r"""An `AbstractModel` whose reservoir is the gas of the paper (`SpinGas`,
    `CollisionalModel`): its parameters, checked in one place, and what follows from them alone.

    **Fields:** `T_a` (ancillas), `T_m` (motion), `E_R`; the rate scale, `gamma_tilde` or
    `density` with `coupling` (eq. D4; the others `None`); the interaction `profile`; the
    `drift` of the gas (`None`: at rest). Numbers are float array leaves.
    """

    T_a: Float[Array, ""]
    T_m: Float[Array, ""]
    E_R: Float[Array, ""]
    gamma_tilde: Float[Array, ""] | None
    density: Float[Array, ""] | None
    coupling: Float[Array, ""] | None
    profile: InteractionProfile
    drift: Float[Array, ""] | None

    def _init_gas(self, T_a, T_m, E_R, gamma_tilde, density, coupling, profile, drift) -> None:
        """Check and store the gas parameters (part of a subclass's `__init__`)."""
        self.T_a = float_leaf(check_real("T_a", T_a, positive=True))
        self.T_m = float_leaf(check_real("T_m", T_m, positive=True))
        self.E_R = float_leaf(check_real("E_R", E_R, positive=True))
        gt, dens, coup = check_rate_scale(gamma_tilde, density, coupling)
        self.gamma_tilde, self.density = float_leaf(gt), float_leaf(dens)
        self.coupling = float_leaf(coup)
        self.profile = check_profile(profile)
        self.drift = float_leaf(check_drift(drift))

    @property
    def alpha(self):
        """$\\alpha = E_R / T_M$."""
        return self.E_R / self.T_m

    def rate_scale(self):
        """The prefactor $\\tilde\\Gamma$ of eq. (19): given, or from density and coupling (D4)."""
        if self.gamma_tilde is not None:
            return jnp.asarray(self.gamma_tilde, dtype=float)
        return gamma_tilde_from(self.density, self.coupling, self.T_m, self.E_R)


# --- the generator in the working basis -----------------------------------------------------


def generator_parts(model: AbstractModel):
    """`(K, H)`: $K = \\sum_c r_c A_c^\\dagger A_c$ and $h_{\\rm eff}$ as dense `(d, d)`
    (small `d`; the NumPy-free reference path)."""
    ch = model.channels()
    L = ch.operators()
    K = jnp.einsum("cji,cjk->ik", L.conj(), L)
    return K, model.h_eff_entries().dense().astype(K.dtype)


def dense_superoperator(model: AbstractModel, *, rotating: bool = False) -> np.ndarray:
    r"""Reference: the Lindbladian as a dense NumPy `(d^2, d^2)` matrix in the working basis,
    built straight from the channel list (small $d$; row-major `vec`, `vec[i*d + j] = rho[i, j]`).

    `rotating=True` drops $-i[h_S, \cdot]$ (the frame rotating with $h_S$).
    """
    ch = model.channels()
    d = model.dim
    r = np.asarray(ch.rates, dtype=float)
    A = np.zeros((ch.n_channels, d, d), dtype=complex)
    np.add.at(A, (ch.channel, ch.row, ch.col), np.asarray(ch.value))
    L = np.sqrt(r)[:, None, None] * A
    K = np.einsum("cji,cjk->ik", L.conj(), L)
    H = np.zeros((d, d), dtype=complex)
    he = model.h_eff_entries()
    np.add.at(H, (he.row, he.col), np.asarray(he.value))
    if not rotating:
        H = H + np.diag(np.asarray(model.energies(), dtype=float))
    eye = np.eye(d)
    G = -1j * H - 0.5 * K
    jump = np.einsum("cij,ckl->ikjl", L, L.conj()).reshape(d * d, d * d)
    return jump + np.kron(G, eye) + np.kron(eye, G.conj())


# --- sectors ------------------------------------------------------------------------------------


class Sectors:
    r"""The block structure of a generator on the matrix elements $\rho_{ij}$ (static).

    Element $(i, j)$ has flat index $i d + j$. Blocks are the connected components of the
    generator's action (exact; no frequency tolerance involved), of three kinds:

    - `singles` `(n1,)`: 1 x 1 blocks (an element coupled only to itself), evolved in closed
      form;
    - `chains`: tuple of index arrays, each a block that is tridiagonal in the given order
      (every element couples only to its neighbours);
    - `dense`: tuple of index arrays, the other blocks.

    Only one block of each conjugate pair is listed (the transposed elements hold the complex
    conjugates): a single $(i, j)$ with $i \le j$, and a chain or dense block whose smallest
    flat index is at most that of its transpose (a block that is its own transpose, such as
    the populations, is listed once and evolved whole). `layout` optionally fixes how the
    chains are packed into equal-length rows (`(n_rows, width)` flat indices, `-1` padding).

    Hashable by identity (instances are cached per channel pattern).
    """

    def __init__(self, dim: int, singles, chains=(), dense=(), layout=None):
        self.dim = int(dim)
        self.singles = np.asarray(singles, dtype=np.int64)
        self.chains = tuple(np.asarray(b, dtype=np.int64) for b in chains)
        self.dense = tuple(np.asarray(b, dtype=np.int64) for b in dense)
        self.layout = None if layout is None else np.asarray(layout, dtype=np.int64)

    def blocks(self):
        """All listed blocks as `(kind, flat indices)`."""
        out = [("single", np.array([s])) for s in self.singles]
        out += [("chain", b) for b in self.chains]
        out += [("dense", b) for b in self.dense]
        return out

    def frequencies(self, energies):
        """Bohr frequency $e_i - e_j$ of every chain and dense block, in that order."""
        first = np.array([b[0] for b in self.chains + self.dense], dtype=np.int64)
        i, j = np.divmod(first, self.dim)
        e = jnp.asarray(energies)
        return e[i] - e[j]

    def counts(self) -> dict:
        """Number of listed blocks of each kind and the largest block."""
        sizes = [len(b) for b in self.chains + self.dense]
        return {
            "single": len(self.singles),
            "chain": len(self.chains),
            "dense": len(self.dense),
            "largest": max(sizes, default=1 if len(self.singles) else 0),
        }

    def __repr__(self):
        c = self.counts()
        return (
            f"Sectors(dim={self.dim}, single={c['single']}, chain={c['chain']}, "
            f"dense={c['dense']}, largest={c['largest']})"
        )


def _pairs_by_group(group: np.ndarray, *keys: np.ndarray):
    """All ordered pairs `(p, q)` of entries with equal `group` (and equal `keys`)."""
    key = group.astype(np.int64)
    for k in keys:
        key = key * (int(k.max(initial=0)) + 1) + k
    order = np.argsort(key, kind="stable")
    ks = key[order]
    starts = np.flatnonzero(np.concatenate([[True], ks[1:] != ks[:-1]]))
    sizes = np.diff(np.concatenate([starts, [len(ks)]]))
    total = int(np.sum(sizes.astype(np.int64) ** 2))
    if total == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z
    rep = np.repeat(np.arange(len(sizes)), sizes**2)
    base = np.repeat(starts, sizes**2)
    sz = np.repeat(sizes, sizes**2)
    local = np.arange(total) - np.repeat(np.cumsum(sizes**2) - sizes**2, sizes**2)
    del rep
    p = order[base + local // sz]
    q = order[base + local % sz]
    return p, q


def coupling_edges(ch_pattern: StaticArrays, heff_pattern: StaticArrays, d: int):
    """Directed coupling `(target, source)` between matrix elements (flat indices), every
    pair the generator connects (static; duplicates possible)."""
    c, r, k = ch_pattern.channel, ch_pattern.row, ch_pattern.col
    # jump term: rho_{col_p, col_q} -> rho_{row_p, row_q}
    p, q = _pairs_by_group(c)
    tgt = [r[p] * d + r[q]]
    src = [k[p] * d + k[q]]
    # K = sum r A^dag A: K[col_p, col_q] from entries with the same channel and row
    p, q = _pairs_by_group(c, r)
    off = k[p] != k[q]
    a, b = [k[p][off]], [k[q][off]]
    hr, hc = heff_pattern.row, heff_pattern.col
    hoff = hr != hc
    a.append(hr[hoff])
    b.append(hc[hoff])
    a = np.concatenate(a)
    b = np.concatenate(b)
    if len(a):
        ab = np.unique(a * d + b)
        a, b = np.divmod(ab, d)
        x = np.arange(d)
        # (G rho)_{a x} <- rho_{b x}; (rho G^dag)_{x a} <- rho_{x b}
        tgt += [(a[:, None] * d + x[None, :]).ravel(), (x[None, :] * d + a[:, None]).ravel()]
        src += [(b[:, None] * d + x[None, :]).ravel(), (x[None, :] * d + b[:, None]).ravel()]
    return np.concatenate(tgt), np.concatenate(src)


def _path_order(nodes: np.ndarray, adj_indptr, adj_indices) -> np.ndarray | None:
    """The nodes of a connected block in path order if its coupling graph is a simple path,
    else `None`."""
    n = len(nodes)
    deg = adj_indptr[nodes + 1] - adj_indptr[nodes]
    if np.any(deg > 2) or int(np.sum(deg)) != 2 * (n - 1):
        return None
    ends = nodes[deg <= 1]
    start = int(ends[0]) if len(ends) else int(nodes[0])
    order = [start]
    prev, cur = -1, start
    for _ in range(n - 1):
        nb = adj_indices[adj_indptr[cur] : adj_indptr[cur + 1]]
        nxt = [int(v) for v in nb if v != prev]
        if not nxt:
            return None
        prev, cur = cur, nxt[0]
        order.append(cur)
    return np.asarray(order, dtype=np.int64)


@functools.lru_cache(maxsize=16)
def derive_sectors(ch_pattern: StaticArrays, heff_pattern: StaticArrays, d: int) -> Sectors:
    """Connected components of the generator on matrix elements, from the channel pattern
    (NumPy and SciPy, cached per pattern). See `Sectors`."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n = d * d
    tgt, src = coupling_edges(ch_pattern, heff_pattern, d)
    keep = tgt != src
    tgt, src = tgt[keep], src[keep]
    # undirected simple graph
    a = np.minimum(tgt, src)
    b = np.maximum(tgt, src)
    ab = np.unique(a * n + b)
    a, b = np.divmod(ab, n)
    g = sp.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n)).tocsr()
    g = (g + g.T).tocsr()
    n_comp, labels = connected_components(g, directed=False)
    sizes = np.bincount(labels, minlength=n_comp)
    single = sizes[labels] == 1
    flat = np.arange(n)
    si, sj = np.divmod(flat[single], d)
    singles = flat[single][si <= sj]
    multi = np.flatnonzero(~single)
    order = multi[np.argsort(labels[multi], kind="stable")]
    labs = labels[order]
    cuts = np.flatnonzero(np.concatenate([[True], labs[1:] != labs[:-1], [True]]))
    indptr, indices = g.indptr, g.indices
    chains, dense = [], []
    for s, e in zip(cuts[:-1], cuts[1:], strict=True):
        nodes = order[s:e]
        ii, jj = np.divmod(nodes, d)
        if int(nodes.min()) > int((jj * d + ii).min()):
            continue  # the conjugate block is listed
        path = _path_order(nodes, indptr, indices)
        if path is None:
            dense.append(nodes)
        else:
            chains.append(path)
    return Sectors(d, singles, chains, dense)
