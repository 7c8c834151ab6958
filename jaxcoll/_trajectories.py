r"""Collision-resolved trajectories: one jump is one collision, exact in distribution.

Every jump of channel $c$ is one collision with a gas particle: the system gains $E_c$, the
ancilla sector $\Delta E_A$ and the motional sector $\Delta E_M = -(E_c + \Delta E_A)$
(eq. 14). Two unravellings of the master equation of `AbstractModel`, both exact in
distribution for the collision counts and the heat $(Q_A, Q_M)$:

- **Gillespie on levels** (`method="gillespie"`), for models whose jumps map every level to
  one level and whose no-jump evolution keeps levels (`K = \sum_c r_c A_c^\dagger A_c` and
  $h_{\rm eff}$ diagonal in the working basis: every model with a non-degenerate spectrum,
  and the spin). The trajectory sits in a level $j$ and leaves it through the entry
  $(A_c)_{ij}$ at rate $r_c |(A_c)_{ij}|^2$; the waiting time is exponential with the escape
  rate $K_{jj}$.
- **Quantum jumps** (`method="quantum"`) otherwise (degenerate levels coupled coherently,
  or a start with coherences). A pure state $\psi$ (drawn from the eigen-decomposition of
  `rho0`) evolves between jumps under $e^{-iGs}$, $G = h_{\rm eff} - \tfrac{i}{2}K$, in the
  frame rotating with $h_S$ ($G$ commutes with $h_S$, so the frame costs only global phases).
  $G$ is diagonalised once, so $\|e^{-iGs}\psi\|^2$ is exact at any $s$ and the jump time, the
  root of $\|e^{-iGs}\psi\|^2 = u$ with $u$ uniform, is found by a bracketed Newton iteration
  to round-off (no time step). The jump goes to channel $c$ with probability
  $\propto r_c\|A_c\psi\|^2$.

Each trajectory runs in one `lax.while_loop` whose events are either a save time or a jump.
A chunk of trajectories is one `while_loop` over the whole chunk (not a `vmap` of
per-trajectory loops): finished trajectories write into a spare row instead of carrying
their full output through a select each step, so a step costs $O(1)$ per trajectory, not
$O(n_t)$.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec as P
from jaxtyping import Array, Float, Int

from . import _config  # noqa: F401
from ._protocol import AbstractModel
from ._scan import _devices
from ._states import validate_state
from ._validation import check_int, is_concrete

__all__ = ["TrajectoryResult", "collision_trajectories", "entropy_production"]

_METHODS = ("auto", "gillespie", "quantum")


class TrajectoryResult(eqx.Module):
    r"""What `collision_trajectories` returns (NumPy arrays).

    **Fields:**
    - `ts` `(n_t,)`: the save times.
    - `Q` `(n_traj, n_t, 2)`: $(Q_A, Q_M)$, the energy gained by the ancilla and the motional
      sector since `ts[0]` (order (ancilla, motion), CONTRACT.md).
    - `energy` `(n_traj, n_t)`: the system energy: the level's energy (Gillespie), or
      $\langle\psi|h_S|\psi\rangle$ of the normalised conditional state (quantum jumps; its
      mean is $\mathrm{tr}\,\rho(t)h_S$, but it also drifts between jumps, so the first law
      $\Delta E_S + Q_A + Q_M = 0$ holds per trajectory only in the Gillespie case).
    - `counts` `(n_traj, n_t, n_channels)` int32: collisions of each channel since `ts[0]`.
    - `levels` `(n_traj, n_t)` int32: the level (working-basis index) at each save time;
      Gillespie only, else `None`.
    - `n_jumps` `(n_traj,)` int32: collisions in `[ts[0], ts[-1]]`.
    - `jump_times`, `jump_channels` `(n_traj, record_jumps)`: the first `record_jumps`
      collisions of each trajectory (time, channel), padded with `nan` and `-1`; `None`
      unless `record_jumps > 0`.
    - `populations0` `(d,)`: the energy populations of `rho0` in the working basis.
    - `method`: `"gillespie"` or `"quantum"`.
    """

    ts: Float[np.ndarray, " n_t"]
    Q: Float[np.ndarray, "n_traj n_t 2"]
    energy: Float[np.ndarray, "n_traj n_t"]
    counts: Int[np.ndarray, "n_traj n_t n_channels"]
    levels: Int[np.ndarray, "n_traj n_t"] | None
    n_jumps: Int[np.ndarray, " n_traj"]
    jump_times: Float[np.ndarray, "n_traj n_rec"] | None
    jump_channels: Int[np.ndarray, "n_traj n_rec"] | None
    populations0: Float[np.ndarray, " d"]
    method: str = eqx.field(static=True)


class _Config(NamedTuple):
    """Static sizes of one compiled simulation."""

    method: str
    d: int
    n_channels: int
    n_t: int
    max_jumps: int
    n_rec: int


# --- host-side tables ------------------------------------------------------------------------


def _concrete_model(model: AbstractModel):
    if not isinstance(model, AbstractModel):
        raise TypeError(
            f"model must be a jaxcoll model (SpinGas, CollisionalModel or an AbstractModel), "
            f"got {type(model).__name__}"
        )
    if not is_concrete(model):
        raise TypeError(
            "collision_trajectories needs a concrete model (not traced under jit/vmap/grad): "
            "trajectories are sampled, not differentiated"
        )
    ch = model.channels()
    e = np.asarray(model.energies(), dtype=float)
    rates = np.asarray(ch.rates, dtype=float)
    if not np.all(np.isfinite(rates)) or np.any(rates < 0):
        raise ValueError(f"model: channel rates must be finite and >= 0, got {rates}")
    return ch, e, rates


def _entries(ch, rates):
    """The channel entries with a non-zero jump rate: `(channel, row, col, amplitude)` with
    amplitude $\\sqrt{r_c}(A_c)_{ij}$."""
    value = np.asarray(ch.value, dtype=complex)
    amp = np.sqrt(rates)[ch.channel] * value
    keep = amp != 0
    return ch.channel[keep], ch.row[keep], ch.col[keep], amp[keep]


def _is_classical(model, ch, rates) -> bool:
    """Whether levels stay levels: each channel maps a level to one level, and the no-jump
    generator ($K$ and $h_{\\rm eff}$) is diagonal in the working basis."""
    c, r, k, _ = _entries(ch, rates)
    d = model.dim
    if len(np.unique(c * d + k)) != len(c):  # A_c |j> is a superposition
        return False
    if len(np.unique(c * d + r)) != len(c):  # K has off-diagonal entries
        return False
    he = model.h_eff_entries()
    off = (he.row != he.col) & (np.asarray(he.value) != 0)
    return not np.any(off)


def _start(model, rho0):
    """`(populations, rho)` of `rho0` in the working basis (`rho` is `None` for populations)."""
    d = model.dim
    x = validate_state(rho0, d, "rho0")
    if x.ndim == 1:
        p = np.clip(np.asarray(x, dtype=float), 0.0, None)
        return p / p.sum(), None
    rho = np.asarray(model.to_working(jnp.asarray(x)), dtype=complex)
    rho = 0.5 * (rho + rho.conj().T)
    p = np.clip(np.real(np.diag(rho)), 0.0, None)
    return p / p.sum(), rho


def _poisson_cap(rate_max: float, duration: float) -> int:
    """A jump cap that a process whose jump rate never exceeds `rate_max` passes with
    probability below about 1e-20 (a Poisson tail bound)."""
    mu = max(rate_max * duration, 0.0)
    return int(math.ceil(mu + 12.0 * math.sqrt(mu) + 40.0))


def _gillespie_tables(e, ch, rates, p0):
    c, r, k, amp = _entries(ch, rates)
    d = e.shape[0]
    w = np.abs(amp) ** 2
    order = np.lexsort((c, r, k))  # by source level, then target, channel
    c, r, k, w = c[order], r[order], k[order], w[order]
    n_out = np.bincount(k, minlength=d)
    width = max(int(n_out.max(initial=0)), 1)
    start = np.concatenate([[0], np.cumsum(n_out)[:-1]])
    slot = np.arange(len(k)) - start[k]
    target = np.tile(np.arange(d)[:, None], (1, width))
    chan = np.zeros((d, width), dtype=np.int64)
    weight = np.zeros((d, width))
    target[k, slot] = r
    chan[k, slot] = c
    weight[k, slot] = w
    cum = np.cumsum(weight, axis=1)
    escape = cum[:, -1]
    tables = {
        "p0_cum": jnp.asarray(np.cumsum(p0)),
        "target": jnp.asarray(target, dtype=jnp.int32),
        "channel": jnp.asarray(chan, dtype=jnp.int32),
        "cum": jnp.asarray(cum),
        "n_out": jnp.asarray(n_out, dtype=jnp.int32),
        "escape": jnp.asarray(escape),
        "energies": jnp.asarray(e),
    }
    return tables, float(escape.max(initial=0.0))


def _block_eig(G: np.ndarray):
    """`(lam, V, Vinv)` with `G = V diag(lam) Vinv`, diagonalised block by block (the
    connected components of `G`'s pattern, the degenerate energy subspaces)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    d = G.shape[0]
    n_comp, labels = connected_components(sp.csr_matrix(np.abs(G) + np.abs(G.T) > 0))
    lam = np.zeros(d, dtype=complex)
    V = np.zeros((d, d), dtype=complex)
    Vinv = np.zeros((d, d), dtype=complex)
    for b in range(n_comp):
        idx = np.flatnonzero(labels == b)
        blk = G[np.ix_(idx, idx)]
        if len(idx) == 1:
            lam[idx], V[idx, idx], Vinv[idx, idx] = blk[0, 0], 1.0, 1.0
            continue
        w, v = np.linalg.eig(blk)
        v = v / np.linalg.norm(v, axis=0)
        cond = np.linalg.cond(v)
        if not np.isfinite(cond) or cond > 1e8:
            raise ValueError(
                f"model: the no-jump generator h_eff - iK/2 is (nearly) defective on levels "
                f"{idx.tolist()} (eigenvector condition number {cond:.3g}); the quantum-jump "
                "unravelling needs it diagonalisable"
            )
        lam[idx] = w
        V[np.ix_(idx, idx)] = v
        Vinv[np.ix_(idx, idx)] = np.linalg.inv(v)
    return lam, V, Vinv


def _quantum_tables(model, e, ch, rates, p0, rho):
    c, r, k, amp = _entries(ch, rates)
    d = e.shape[0]
    L = np.zeros((ch.n_channels, d, d), dtype=complex)
    np.add.at(L, (c, r, k), amp)
    K = np.einsum("cji,cjk->ik", L.conj(), L)
    he = model.h_eff_entries()
    H = np.zeros((d, d), dtype=complex)
    np.add.at(H, (he.row, he.col), np.asarray(he.value, dtype=complex))
    lam, V, Vinv = _block_eig(H - 0.5j * K)
    if rho is None:
        w, U = p0, np.eye(d, dtype=complex)
    else:
        w, U = np.linalg.eigh(rho)
        w = np.clip(w, 0.0, None)
        w = w / w.sum()
    tables = {
        "w_cum": jnp.asarray(np.cumsum(w)),
        "states0": jnp.asarray(U.T),  # row n: the n-th eigenvector
        "lam": jnp.asarray(lam),
        "V": jnp.asarray(V),
        "Vinv": jnp.asarray(Vinv),
        "K": jnp.asarray(K),
        "e_channel": jnp.asarray(c, dtype=jnp.int32),
        "e_row": jnp.asarray(r, dtype=jnp.int32),
        "e_col": jnp.asarray(k, dtype=jnp.int32),
        "e_amp": jnp.asarray(amp),
        "energies": jnp.asarray(e),
    }
    return tables, float(np.max(np.linalg.eigvalsh(0.5 * (K + K.conj().T)), initial=0.0))


# --- one step of every trajectory of a chunk ---------------------------------------------------


def _pick(cum, u):
    """Index `i` with `cum[i-1] <= u * cum[-1] < cum[i]` (inverse-CDF sampling)."""
    n = cum.shape[-1]
    i = jnp.sum(cum <= u * cum[-1], dtype=jnp.int32)
    return jnp.minimum(i, n - 1)


def _exp_time(u, rate):
    """An exponential waiting time from a uniform `u` in [0, 1); `inf` for a zero rate."""
    safe = jnp.where(rate > 0, rate, 1.0)
    return jnp.where(rate > 0, -jnp.log1p(-u) / safe, jnp.inf)


def _uniforms(key, n, count: int):
    """The `count` uniforms of event `n` of one trajectory (its key folded with `n`)."""
    return jax.random.uniform(jax.random.fold_in(key, n), (count,), dtype=jnp.float64)


def _propagate(tab, coef, s):
    """`(phi, norm^2, <phi|K|phi>)` for `phi = exp(-iGs) psi`, `coef = Vinv psi`."""
    phi = tab["V"] @ (jnp.exp(-1j * tab["lam"] * jnp.asarray(s).astype(coef.dtype)) * coef)
    n = jnp.real(jnp.vdot(phi, phi))
    kk = jnp.real(jnp.vdot(phi, tab["K"] @ phi))
    return phi, n, kk


def _first_passage(tab, coef, u, s_max):
    r"""The time $s \in [0, s_{\max}]$ where $\|e^{-iGs}\psi\|^2 = u$, or `inf` if the norm
    stays above $u$ (no jump before the end); bracketed Newton on $\ln\|\cdot\|^2 - \ln u$."""
    log_u = jnp.log(u)
    _, n_end, _ = _propagate(tab, coef, s_max)
    no_jump = n_end > u
    _, n0, k0 = _propagate(tab, coef, 0.0)
    s0 = jnp.clip(-log_u / jnp.maximum(k0 / n0, 1e-300), 0.0, s_max)

    def cond(c):
        return ~c[4]

    def body(c):
        s, a, b, it, _ = c
        _, n, kk = _propagate(tab, coef, s)
        g = jnp.log(n) - log_u
        gp = -kk / n
        a = jnp.where(g > 0, s, a)
        b = jnp.where(g > 0, b, s)
        newton = s - g / jnp.where(gp < 0, gp, -1.0)
        ok = (gp < 0) & (newton > a) & (newton < b)
        s_new = jnp.where(ok, newton, 0.5 * (a + b))
        done = (jnp.abs(g) <= 1e-14) | (b - a <= 4e-16 * b) | (it >= 200)
        return jnp.where(done, s, s_new), a, b, it + 1, done

    init = (s0, jnp.zeros_like(s0), jnp.asarray(s_max, s0.dtype), 0, no_jump)
    s = jax.lax.while_loop(cond, body, init)[0]
    return jnp.where(no_jump, jnp.inf, s)


class _Lane(NamedTuple):
    """The state of one trajectory (batched over the chunk)."""

    key: Array
    t_next: Array  # time of the next jump (inf: none before the end)
    t_last: Array  # time of the last jump (quantum: the reference of `coef`)
    level: Array  # Gillespie: current level
    coef: Array  # quantum: Vinv psi at the last jump
    Q: Array  # (2,)
    counts: Array  # (n_channels,)
    k: Array  # next save index
    n: Array  # jumps so far
    overflow: Array


class _Out(NamedTuple):
    Q: Array  # (n_t + 1, 2); the last row is the spare row
    energy: Array  # (n_t + 1,)
    level: Array  # (n_t + 1,)
    counts: Array  # (n_t + 1, n_channels)
    rec_t: Array  # (n_rec + 1,)
    rec_c: Array  # (n_rec + 1,)


def _init_lane(tab, dq, ts, key, index, cfg: _Config):
    key = jax.random.fold_in(key, index)
    u = _uniforms(key, 0, 2)
    n_ch = cfg.n_channels
    zero = jnp.zeros((), jnp.float64)
    if cfg.method == "gillespie":
        level = _pick(tab["p0_cum"], u[0])
        t_next = ts[0] + _exp_time(u[1], tab["escape"][level])
        coef = jnp.zeros((1,), jnp.complex128)
    else:
        psi = tab["states0"][_pick(tab["w_cum"], u[0])]
        coef = tab["Vinv"] @ psi
        level = jnp.asarray(-1, jnp.int32)
        t_next = ts[0] + _first_passage(tab, coef, 1.0 - u[1], ts[-1] - ts[0])
    lane = _Lane(
        key=key,
        t_next=t_next,
        t_last=ts[0] + zero,
        level=level,
        coef=coef,
        Q=jnp.zeros((2,)),
        counts=jnp.zeros((n_ch,), jnp.int32),
        k=jnp.asarray(0, jnp.int32),
        n=jnp.asarray(0, jnp.int32),
        overflow=jnp.asarray(False),
    )
    out = _Out(
        Q=jnp.zeros((cfg.n_t + 1, 2)),
        energy=jnp.zeros((cfg.n_t + 1,)),
        level=jnp.zeros((cfg.n_t + 1,), jnp.int32),
        counts=jnp.zeros((cfg.n_t + 1, n_ch), jnp.int32),
        rec_t=jnp.full((cfg.n_rec + 1,), jnp.nan),
        rec_c=jnp.full((cfg.n_rec + 1,), -1, jnp.int32),
    )
    del dq
    return lane, out


def _active(lane: _Lane, cfg: _Config):
    return (lane.k < cfg.n_t) & ~lane.overflow


def _step_lane(tab, dq, ts, lane: _Lane, out: _Out, cfg: _Config):
    """One event of one trajectory: the next save time or the next jump, whichever is first."""
    active = _active(lane, cfg)
    t_save = ts[jnp.minimum(lane.k, cfg.n_t - 1)]
    is_save = t_save <= lane.t_next
    is_jump = active & ~is_save
    overflow = is_jump & (lane.n >= cfg.max_jumps)
    is_jump = is_jump & ~overflow
    is_save = active & is_save
    u = _uniforms(lane.key, lane.n + 1, 2)
    t_end = ts[-1]

    if cfg.method == "gillespie":
        j = lane.level
        slot = jnp.minimum(_pick(tab["cum"][j], u[0]), tab["n_out"][j] - 1)
        c = tab["channel"][j, slot]
        new_level = tab["target"][j, slot]
        t_new = lane.t_next + _exp_time(u[1], tab["escape"][new_level])
        energy = tab["energies"][j]
        coef = lane.coef
    else:
        s = jnp.where(is_save, t_save, lane.t_next) - lane.t_last
        s = jnp.where(jnp.isfinite(s), s, 0.0)
        phi, nrm, _ = _propagate(tab, lane.coef, s)
        energy = jnp.sum(tab["energies"] * jnp.abs(phi) ** 2) / nrm
        y = jnp.zeros((cfg.n_channels, cfg.d), phi.dtype)
        y = y.at[tab["e_channel"], tab["e_row"]].add(tab["e_amp"] * phi[tab["e_col"]])
        w = jnp.sum(jnp.abs(y) ** 2, axis=1)
        c = _pick(jnp.cumsum(w), u[0])
        psi = y[c] * jax.lax.rsqrt(jnp.maximum(w[c], 1e-300)).astype(y.dtype)
        new_coef = tab["Vinv"] @ psi
        # the no-jump search runs for jumps only (a save step gives it an empty interval)
        s_max = jnp.where(is_jump, t_end - lane.t_next, 0.0)
        gap = _first_passage(tab, new_coef, 1.0 - u[1], s_max)
        t_new = jnp.where(is_jump, lane.t_next + gap, lane.t_next)
        new_level = lane.level
        coef = jnp.where(is_jump, new_coef, lane.coef)

    row = jnp.where(is_save, lane.k, cfg.n_t)
    out = _Out(
        Q=out.Q.at[row].set(lane.Q),
        energy=out.energy.at[row].set(energy),
        level=out.level.at[row].set(lane.level),
        counts=out.counts.at[row].set(lane.counts),
        rec_t=out.rec_t.at[jnp.where(is_jump, jnp.minimum(lane.n, cfg.n_rec), cfg.n_rec)].set(
            lane.t_next
        ),
        rec_c=out.rec_c.at[jnp.where(is_jump, jnp.minimum(lane.n, cfg.n_rec), cfg.n_rec)].set(c),
    )
    lane = _Lane(
        key=lane.key,
        t_next=jnp.where(is_jump, t_new, lane.t_next),
        t_last=jnp.where(is_jump, lane.t_next, lane.t_last),
        level=jnp.where(is_jump, new_level, lane.level),
        coef=coef,
        Q=jnp.where(is_jump, lane.Q + dq[c], lane.Q),
        counts=lane.counts.at[c].add(is_jump.astype(jnp.int32)),
        k=lane.k + is_save.astype(jnp.int32),
        n=lane.n + is_jump.astype(jnp.int32),
        overflow=lane.overflow | overflow,
    )
    return lane, out


def _simulate(tab, dq, ts, key, index, *, cfg: _Config):
    """All trajectories `index` (a chunk) to the last save time: one `while_loop` for all."""
    lane, out = jax.vmap(lambda i: _init_lane(tab, dq, ts, key, i, cfg))(index)
    step = jax.vmap(lambda la, o: _step_lane(tab, dq, ts, la, o, cfg))

    def cond(c):
        return jnp.any(_active(c[0], cfg))

    def body(c):
        return step(*c)

    lane, out = jax.lax.while_loop(cond, body, (lane, out))
    n_t, n_rec = cfg.n_t, cfg.n_rec
    return {
        "Q": out.Q[:, :n_t],
        "energy": out.energy[:, :n_t],
        "level": out.level[:, :n_t],
        "counts": out.counts[:, :n_t],
        "n_jumps": lane.n,
        "overflow": lane.overflow,
        "rec_t": out.rec_t[:, :n_rec],
        "rec_c": out.rec_c[:, :n_rec],
    }


@functools.lru_cache(maxsize=16)
def _runner(cfg: _Config, devices: tuple):
    fn = functools.partial(_simulate, cfg=cfg)
    if len(devices) == 1:
        return jax.jit(fn)
    mesh = Mesh(np.asarray(devices), ("traj",))
    run = jax.shard_map(
        fn,
        mesh=mesh,
        in_specs=(P(), P(), P(), P(), P("traj")),
        out_specs=P("traj"),
        check_vma=False,
    )
    return jax.jit(run)


# --- public ----------------------------------------------------------------------------------


def _check_key(key):
    if key is None:
        raise TypeError("key must be a JAX PRNG key, e.g. jax.random.key(0); got None")
    k = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jax.dtypes.issubdtype(k.dtype, jax.dtypes.prng_key):
        if k.shape != ():
            raise ValueError(f"key must be a single PRNG key, got shape {k.shape}")
        return k
    if k.dtype != jnp.uint32 or k.shape != (2,):
        raise TypeError(
            "key must be a JAX PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), "
            f"got dtype {k.dtype} and shape {k.shape}"
        )
    return k


def collision_trajectories(
    model: AbstractModel,
    rho0,
    ts,
    *,
    n_traj: int,
    key,
    method: str = "auto",
    chunk_size: int = 16384,
    max_jumps: int | None = None,
    record_jumps: int = 0,
    shard: bool = True,
) -> TrajectoryResult:
    r"""Sample trajectories in which every jump is one collision with a gas particle.

    A jump of channel $c$ changes the system energy by $E_c$, the ancilla sector's by
    $\Delta E_A$ and the motional sector's by $\Delta E_M = -(E_c + \Delta E_A)$ (eq. 14); the
    trajectories are exact in distribution (no time step), so the statistics of
    $(Q_A, Q_M)$ and of the collision counts are those of the tilted generator (see
    `heat_statistics`), up to sampling error. Two unravellings (see the module docstring):
    a Gillespie simulation on levels, and quantum jumps with the exact no-jump propagator.

    **Arguments:**
    - `model`: a `SpinGas`, `CollisionalModel` or any `AbstractModel` (concrete).
    - `rho0`: the state at `ts[0]`: populations `(d,)` in the working (energy) basis, or a
      `(d, d)` density matrix (for `CollisionalModel` in the basis of `h_s`).
    - `ts`: strictly increasing save times.
    - `n_traj`: the number of trajectories.
    - `key`: a JAX PRNG key. Trajectory `i` uses `jax.random.fold_in(key, i)`, so the result
      for a given key does not depend on `chunk_size` or on the number of devices.
    - `method`: `"auto"` (Gillespie when the model keeps levels, see below, and `rho0` is
      diagonal in the working basis; quantum jumps otherwise), `"gillespie"` or
      `"quantum"`. The model keeps levels when every channel maps a level to one level and
      $K = \sum_c r_cA_c^\dagger A_c$, $h_{\rm eff}$ are diagonal: always for a
      non-degenerate spectrum. Forcing `"gillespie"` with a coherent `rho0` samples its
      energy populations (the state after an energy measurement at `ts[0]`): for a
      non-degenerate spectrum the statistics of $Q$ and of the counts are unchanged, since
      coherences between different energies never reach them.
    - `chunk_size`: trajectories per compiled call (bounds memory; rounded up to a multiple
      of the number of devices).
    - `max_jumps`: the most collisions a trajectory may have in `[ts[0], ts[-1]]`; default: a
      bound exceeded with probability below $10^{-20}$ for the model's largest escape rate
      ($\lambda_{\max}T + 12\sqrt{\lambda_{\max}T} + 40$). A trajectory that reaches it raises
      `RuntimeError`.
    - `record_jumps`: also keep the time and channel of the first `record_jumps` collisions
      of every trajectory (for waiting-time distributions); 0 (default) keeps none.
    - `shard`: spread each chunk over all local devices (as `scan` does).

    **Returns:** a `TrajectoryResult` with `.Q` `(n_traj, n_t, 2)`, `.energy`
    `(n_traj, n_t)`, `.counts` `(n_traj, n_t, n_channels)` and more.

    ```python
    import jax, numpy as np, jaxcoll

    model = jaxcoll.SpinGas(5, omega_s=1.0, delta=2.0, T_a=6.0, T_m=1.0, gamma_tilde=1.0)
    p0 = np.eye(model.dim)[0]
    res = jaxcoll.collision_trajectories(
        model, p0, np.linspace(0, 5, 6), n_traj=10_000, key=jax.random.key(0)
    )
    res.Q[:, -1].mean(axis=0)  # mean heat (Q_A, Q_M) gained by the gas at t = 5
    ```
    """
    from ._evolve import _check_ts

    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    ch, e, rates = _concrete_model(model)
    n_traj = check_int("n_traj", n_traj, minimum=1)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    record_jumps = check_int("record_jumps", record_jumps, minimum=0)
    key = _check_key(key)
    ts = np.asarray(_check_ts(ts), dtype=float)
    p0, rho = _start(model, rho0)

    classical = _is_classical(model, ch, rates)
    diagonal = rho is None or np.max(np.abs(rho - np.diag(np.diag(rho))), initial=0.0) == 0.0
    if method == "auto":
        method = "gillespie" if classical and diagonal else "quantum"
    elif method == "gillespie" and not classical:
        raise ValueError(
            "method='gillespie' needs a model whose jumps map levels to levels with a diagonal "
            "no-jump generator (a non-degenerate spectrum, or the spin); use method='quantum'"
        )
    if method == "gillespie":
        tab, rate_max = _gillespie_tables(e, ch, rates, p0)
    else:
        tab, rate_max = _quantum_tables(model, e, ch, rates, p0, rho)
    if max_jumps is None:
        max_jumps = _poisson_cap(rate_max, float(ts[-1] - ts[0]))
    max_jumps = check_int("max_jumps", max_jumps, minimum=0)
    dq = jnp.stack(
        [jnp.asarray(ch.ancilla, jnp.float64), jnp.asarray(ch.motion, jnp.float64)], axis=1
    )
    cfg = _Config(method, model.dim, ch.n_channels, len(ts), max_jumps, record_jumps)

    devices = tuple(_devices(shard))
    n_dev = len(devices)
    chunk = min(chunk_size, n_traj + (-n_traj) % n_dev)
    chunk += (-chunk) % n_dev
    run = _runner(cfg, devices)
    ts_j = jnp.asarray(ts)
    parts = []
    for lo in range(0, n_traj, chunk):
        index = np.arange(lo, lo + chunk, dtype=np.uint32)
        res = jax.device_get(run(tab, dq, ts_j, key, jnp.asarray(index)))
        m = min(chunk, n_traj - lo)
        res = {k: v[:m] for k, v in res.items()}
        if np.any(res["overflow"]):
            i = lo + int(np.argmax(res["overflow"]))
            raise RuntimeError(
                f"collision_trajectories: trajectory {i} reached max_jumps={max_jumps} "
                f"collisions before ts[-1] = {ts[-1]:g}; pass a larger max_jumps"
            )
        parts.append(res)
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    gill = method == "gillespie"
    return TrajectoryResult(
        ts=ts,
        Q=cat["Q"],
        energy=cat["energy"],
        counts=cat["counts"],
        levels=cat["level"] if gill else None,
        n_jumps=cat["n_jumps"],
        jump_times=cat["rec_t"] if record_jumps else None,
        jump_channels=cat["rec_c"] if record_jumps else None,
        populations0=p0,
        method=method,
    )


def entropy_production(
    model: AbstractModel,
    result: TrajectoryResult,
    *,
    T_a=None,
    T_m=None,
    rtol: float = 1e-10,
    atol: float = 1e-13,
) -> Float[np.ndarray, "n_traj n_t"]:
    r"""Total stochastic entropy production $\Sigma$ along Gillespie trajectories.

    $$\Sigma(t) = \ln p_{t_0}(i_{t_0}) - \ln p_t(i_t) + \frac{Q_A(t)}{T_A} + \frac{Q_M(t)}{T_M},$$

    the change of the stochastic system entropy $-\ln p_t(i_t)$ along the trajectory's levels
    $i_t$ ($p_t$ the populations that `evolve` gives from the same start) plus the entropy
    the two sectors of the gas gain, each as a heat bath: $Q_A$ and $Q_M$ are the energies
    the ancilla and the motional sector gain (CONTRACT.md), so at temperatures $T_A$, $T_M$
    they gain $Q_A/T_A + Q_M/T_M$. Where micro-reversibility (eq. 9) gives every channel the
    two-temperature detailed balance $r_c|A_{c,ij}|^2 / (r_{\bar c}|A_{\bar c,ji}|^2) =
    e^{\Delta E_A/T_A + \Delta E_M/T_M}$ (real, time-reversal symmetric couplings), the
    integral fluctuation theorem $\langle e^{-\Sigma(t)}\rangle = 1$ holds at every $t$ for a
    start with every population $> 0$, and hence $\langle\Sigma\rangle \ge 0$.

    **Arguments:**
    - `model`: the model the trajectories were sampled from.
    - `result`: a `TrajectoryResult` of `method="gillespie"` (it carries the levels).
    - `T_a`, `T_m`: the sector temperatures; default the model's `T_a`, `T_m`.
    - `rtol`, `atol`: tolerances of the `evolve` call for $p_t$.

    **Returns:** $\Sigma$, shape `(n_traj, n_t)` (zero at `ts[0]`).
    """
    from ._evolve import evolve

    if not isinstance(result, TrajectoryResult):
        raise TypeError(f"result must be a TrajectoryResult, got {type(result).__name__}")
    if result.levels is None:
        raise ValueError(
            "result must come from method='gillespie': the stochastic system entropy needs "
            "the level of every trajectory (quantum-jump states are not levels)"
        )
    T_a = getattr(model, "T_a", None) if T_a is None else T_a
    T_m = getattr(model, "T_m", None) if T_m is None else T_m
    for name, T in (("T_a", T_a), ("T_m", T_m)):
        if T is None or not np.isfinite(float(T)) or float(T) <= 0:
            raise ValueError(f"{name} must be a finite temperature > 0, got {T!r}")
    p0 = result.populations0
    if len(result.ts) > 1:
        ev = evolve(model, p0, result.ts, rtol=rtol, atol=atol, observables=())
        p = np.asarray(ev.populations)
    else:
        p = p0[None]
    p = np.clip(p, np.finfo(float).tiny, None)
    lp = np.log(p)
    steps = np.arange(len(result.ts))[None, :]
    system = lp[0][result.levels[:, :1]] - lp[steps, result.levels]
    return system + result.Q[..., 0] / float(T_a) + result.Q[..., 1] / float(T_m)
