r"""Evolution on Bohr sectors: the generator of any `AbstractModel` block by block.

In the frame rotating with $h_S$ the generator maps each block of `Sectors` into itself. `evolve`
integrates the blocks as one structured operator for the Rosenbrock solver:

- 1 x 1 blocks in closed form, $x(t) = e^{\lambda (t - t_0)} x(t_0)$ with
  $\lambda = \sum_c r_c (A_c)_{ii}\overline{(A_c)_{jj}} - \tfrac12(K_{ii} + K_{jj})
  - i(h_{{\rm eff},ii} - h_{{\rm eff},jj})$ (decay and dephasing);
- chain (tridiagonal) blocks of a real generator packed into equal rows of a batched real
  tridiagonal operator (real and imaginary parts as two right-hand sides; the rows of the spin
  are its folded coherence bands);
- the other blocks (and the chains of a complex generator) as batched dense complex matrices in
  real form, grouped by size.

`Plan` holds the static index maps (NumPy), `coefficients` fills them from the channels (traced,
differentiable).
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._protocol import Sectors, StaticArrays, _pairs_by_group
from ._solver import AbstractStructuredOperator


def _pack_rows(chains, width: int) -> np.ndarray:
    """First-fit decreasing packing of chains into rows of length `width` (flat indices,
    -1 padding): consecutive chains in a row are decoupled at the seam."""
    order = sorted(range(len(chains)), key=lambda c: -len(chains[c]))
    caps = np.zeros(0, dtype=np.int64)
    rows: list[list[int]] = []
    for c in order:
        n = len(chains[c])
        fits = np.flatnonzero(caps >= n)
        if len(fits):
            r = int(fits[0])
        else:
            rows.append([])
            caps = np.append(caps, width)
            r = len(rows) - 1
        rows[r].extend(int(x) for x in chains[c])
        caps[r] -= n
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for r, row in enumerate(rows):
        out[r, : len(row)] = row
    return out


class Plan:
    """Static layout of the kept blocks and the scatter maps of the generator (NumPy)."""

    def __init__(self, sectors: Sectors, real_chains: bool):
        d = sectors.dim
        self.d = d
        self.singles = sectors.singles
        chains = list(sectors.chains)
        dense = list(sectors.dense)
        if not real_chains:
            dense += chains
            chains = []
        if chains:
            layout = sectors.layout
            if layout is None:
                layout = _pack_rows(chains, max(len(c) for c in chains))
        else:
            layout = None
        self.layout = layout
        sizes = sorted({len(b) for b in dense})
        self.groups = tuple(np.stack([b for b in dense if len(b) == s]) for s in sizes)
        valid = np.zeros(0, dtype=np.int64) if layout is None else np.flatnonzero(layout >= 0)
        self.chain_valid = valid  # positions in layout.ravel()
        parts = [self.singles]
        if layout is not None:
            parts.append(layout.ravel()[valid])
        parts += [g.ravel() for g in self.groups]
        self.kept = np.concatenate(parts).astype(np.int64)
        self.n_singles = len(self.singles)
        self.n_chain = len(valid)
        i, j = np.divmod(self.kept, d)
        is_kept = np.zeros(d * d, dtype=bool)
        is_kept[self.kept] = True
        self.mirror = (i != j) & ~is_kept[j * d + i]
        self.diag_pos = np.flatnonzero(i == j)
        self.diag_level = i[self.diag_pos]
        # slots: where each kept element sits
        n = d * d
        self._kind = np.zeros(n, dtype=np.int8)
        self._a = np.zeros(n, dtype=np.int64)  # single index / chain row / group
        self._b = np.zeros(n, dtype=np.int64)  # chain position / block in group
        self._c = np.zeros(n, dtype=np.int64)  # local index in a dense block
        self._kind[self.singles] = 1
        self._a[self.singles] = np.arange(self.n_singles)
        if layout is not None:
            r, p = np.divmod(valid, layout.shape[1])
            f = layout.ravel()[valid]
            self._kind[f] = 2
            self._a[f], self._b[f] = r, p
        offs = [self.n_singles + (0 if layout is None else 3 * layout.size)]
        for g, blocks in enumerate(self.groups):
            nb, s = blocks.shape
            f = blocks.ravel()
            self._kind[f] = 3
            self._a[f] = g
            self._b[f] = np.repeat(np.arange(nb), s)
            self._c[f] = np.tile(np.arange(s), nb)
            offs.append(offs[-1] + nb * s * s)
        self.group_offsets = tuple(offs[:-1])
        self.buffer_size = offs[-1]

    def dest(self, tgt, src):
        """Buffer slot of each generator entry (`tgt` <- `src`), and a mask of those kept."""
        kind = self._kind[tgt]
        keep = kind > 0
        tgt, src, kind = tgt[keep], src[keep], kind[keep]
        out = np.zeros(len(tgt), dtype=np.int64)
        s = kind == 1
        out[s] = self._a[tgt[s]]
        c = kind == 2
        if np.any(c):
            W = self.layout.shape[1]
            size = self.layout.size
            step = self._b[src[c]] - self._b[tgt[c]]
            base = self.n_singles + (step + 1) * size  # lower, diag, upper
            out[c] = base + self._a[tgt[c]] * W + self._b[tgt[c]]
        g = kind == 3
        if np.any(g):
            grp = self._a[tgt[g]]
            sz = np.array([b.shape[1] for b in self.groups])[grp]
            off = np.array(self.group_offsets)[grp]
            out[g] = off + (self._b[tgt[g]] * sz + self._c[tgt[g]]) * sz + self._c[src[g]]
        return out, keep


class GeneratorMaps:
    """Static scatter maps from the channel entries to the plan's coefficient buffer."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _maps(plan: Plan, ch: StaticArrays, he: StaticArrays) -> GeneratorMaps:
    d = plan.d
    c, r, k = ch.channel, ch.row, ch.col
    p, q = _pairs_by_group(c)
    tgt, src = r[p] * d + r[q], k[p] * d + k[q]
    jd, keep = plan.dest(tgt, src)
    jp, jq = p[keep], q[keep]
    # off-diagonal entries of G = -K/2 - i h_eff
    kp, kq = _pairs_by_group(c, r)
    off = k[kp] != k[kq]
    kp, kq = kp[off], kq[off]
    hoff = he.row != he.col
    keys = np.concatenate([k[kp] * d + k[kq], he.row[hoff] * d + he.col[hoff]])
    slots_key, inv = np.unique(keys, return_inverse=True)
    k_slot, h_slot = inv[: len(kp)], inv[len(kp) :]
    a, b = np.divmod(slots_key, d)
    x = np.arange(d)
    ns = len(slots_key)
    # (G rho)_{a x} <- rho_{b x} with G_ab; (rho G^dag)_{x a} <- rho_{x b} with conj(G_ab)
    t1 = (a[:, None] * d + x[None, :]).ravel()
    s1 = (b[:, None] * d + x[None, :]).ravel()
    t2 = (x[None, :] * d + a[:, None]).ravel()
    s2 = (x[None, :] * d + b[:, None]).ravel()
    slot = np.repeat(np.arange(ns), d)
    d1, k1 = plan.dest(t1, s1)
    d2, k2 = plan.dest(t2, s2)
    kd = plan.kept
    dd, _ = plan.dest(kd, kd)
    di, dj = np.divmod(kd, d)
    return GeneratorMaps(
        jump_p=jp,
        jump_q=jq,
        jump_dest=jd,
        k_p=kp,
        k_q=kq,
        k_slot=k_slot,
        h_slot=h_slot,
        h_off=np.flatnonzero(hoff),
        n_slots=ns,
        off_slot1=slot[k1],
        off_dest1=d1,
        off_slot2=slot[k2],
        off_dest2=d2,
        diag_dest=dd,
        diag_i=di,
        diag_j=dj,
    )


@functools.lru_cache(maxsize=16)
def plan_for(sectors: Sectors, real_chains: bool, ch: StaticArrays, he: StaticArrays, fast: bool):
    plan = Plan(sectors, real_chains)
    plan.maps = None if fast else _maps(plan, ch, he)
    return plan


def coefficients(plan: Plan, channels, h_eff):
    """The generator's coefficients in the plan's buffer (complex, traced)."""
    m = plan.maps
    d = plan.d
    cd = channels.value.dtype
    rates = channels.rates.astype(jnp.real(channels.value).dtype)
    amp = channels.value
    rc = rates[channels.channel]
    buf = jnp.zeros(plan.buffer_size, dtype=cd)
    jump = rc[m.jump_p].astype(cd) * amp[m.jump_p] * jnp.conj(amp[m.jump_q])
    buf = buf.at[m.jump_dest].add(jump)
    # diagonal of G
    kdiag = jax.ops.segment_sum(rc * jnp.abs(amp) ** 2, channels.col, num_segments=d)
    gdiag = -0.5 * kdiag.astype(cd)
    he = h_eff
    hd = he.row == he.col
    if np.any(hd):
        gdiag = gdiag.at[he.row[hd]].add(-1j * he.value[hd].astype(cd))
    buf = buf.at[m.diag_dest].add(gdiag[m.diag_i] + jnp.conj(gdiag[m.diag_j]))
    if m.n_slots:
        g = jnp.zeros(m.n_slots, dtype=cd)
        kv = rc[m.k_p].astype(cd) * jnp.conj(amp[m.k_p]) * amp[m.k_q]
        g = g.at[m.k_slot].add(-0.5 * kv)
        if len(m.h_off):
            g = g.at[m.h_slot].add(-1j * he.value[m.h_off].astype(cd))
        buf = buf.at[m.off_dest1].add(g[m.off_slot1])
        buf = buf.at[m.off_dest2].add(jnp.conj(g[m.off_slot2]))
    return buf


def split_buffer(plan: Plan, buf):
    """`(lambda_singles, (lower, diag, upper) or None, [dense matrices per group])`."""
    n1 = plan.n_singles
    lam = buf[:n1]
    tri = None
    if plan.layout is not None:
        size = plan.layout.size
        shape = plan.layout.shape
        tri = tuple(buf[n1 + k * size : n1 + (k + 1) * size].reshape(shape) for k in range(3))
    mats = []
    for off, blocks in zip(plan.group_offsets, plan.groups, strict=True):
        nb, s = blocks.shape
        mats.append(buf[off : off + nb * s * s].reshape(nb, s, s))
    return lam, tri, mats


def realify(M):
    """Complex `(..., s, s)` -> real `(..., 2s, 2s)` acting on `[Re x; Im x]`."""
    re, im = jnp.real(M), jnp.imag(M)
    top = jnp.concatenate([re, -im], axis=-1)
    bot = jnp.concatenate([im, re], axis=-1)
    return jnp.concatenate([top, bot], axis=-2)


class BatchedDenseOperator(AbstractStructuredOperator):
    """A batch of dense real `(n_b, s, s)` matrices acting on states `(n_b, s)`."""

    matrix: jax.Array

    def mv(self, y):
        flat = y.ndim == 1
        y = y.reshape(self.matrix.shape[:2])
        out = jnp.einsum("bij,bj->bi", self.matrix, y, precision=jax.lax.Precision.HIGHEST)
        return out.reshape(-1) if flat else out

    def factor(self, tau):
        s = self.matrix.shape[-1]
        eye = jnp.eye(s, dtype=self.matrix.dtype)
        return jax.vmap(jax.scipy.linalg.lu_factor)(eye - tau * self.matrix)

    def solve(self, factors, b):
        flat = b.ndim == 1
        b = b.reshape(self.matrix.shape[:2])
        x = jax.vmap(jax.scipy.linalg.lu_solve)(factors, b)
        return x.reshape(-1) if flat else x


class SumOperator(AbstractStructuredOperator):
    """Independent operators on consecutive pieces of a flat state."""

    parts: tuple
    sizes: tuple = eqx.field(static=True)

    def _split(self, y):
        out, k = [], 0
        for n in self.sizes:
            out.append(y[k : k + n])
            k += n
        return out

    def mv(self, y):
        return jnp.concatenate([op.mv(x) for op, x in zip(self.parts, self._split(y), strict=True)])

    def factor(self, tau):
        return tuple(op.factor(tau) for op in self.parts)

    def solve(self, factors, b):
        return jnp.concatenate(
            [op.solve(f, x) for op, f, x in zip(self.parts, factors, self._split(b), strict=True)]
        )
