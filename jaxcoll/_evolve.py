r"""Time evolution of the master equations: `evolve` and the Fig. 2 helper `ergotropy_curve`.

`evolve` works for any `AbstractModel` on the Bohr sectors of its generator (`_sectors.py`): in
the frame rotating with $h_S$ the generator maps the connected components of its action on the
matrix elements (`model.sectors()`) into themselves, and each block is integrated in the form
that suits it:

- 1 x 1 blocks (an element coupled only to itself: most coherences of a non-degenerate
  spectrum) in closed form, $x(t) = e^{\lambda (t - t_0)} x(t_0)$;
- chains (tridiagonal blocks, such as the spin's coherence bands $\rho_{i,i+q}$ of eq. (18))
  of a real generator packed into the rows of one batched real tridiagonal operator (real and
  imaginary parts as two right-hand sides). The spin supplies its own packing: band $q$ and
  band $d - q$ share a row of length $d$, so $\lceil (d+1)/2 \rceil$ rows hold the $d(d+1)/2$
  independent entries of $\rho$; a step costs $O(d^2)$ for the full state and $O(d)$ for the
  populations (a birth-death chain);
- every other block (the $\omega = 0$ block of populations and degenerate coherences, and the
  chains of a complex generator) as batched dense matrices in real form, grouped by size.

The start decides what is evolved: populations `(d,)` (an energy-diagonal state, eq. 10) evolve
the blocks holding the diagonal (the rate equation (11) for a non-degenerate spectrum); a density
matrix `(d, d)` evolves every block, one of each conjugate pair.

Only what is asked for is read off the solver state at the save points: the energy, populations
and heat current read the real parts of the diagonal, and the expectation values
$\mathrm{tr}(A_k\rho(t))$ of user operators (`e_ops`, as in QuTiP and dynamiqs) read the
elements the operators touch, so that with `observables_only=True` no density matrix is formed.

Everything runs with the L-stable Rosenbrock solver of `_solver.py` inside
`diffrax.diffeqsolve` (adaptive steps, dense output at `ts`, adjoints, progress meter) behind
one `jit` boundary: the model is a pytree argument, so new parameter values do not recompile,
and the plan's index arrays are arguments too (not constants of the compiled program); sizes
are static.
"""

from __future__ import annotations

import dataclasses
import numbers

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float, Int

from . import _config, _expm, _sectors
from ._observables import _ergotropy_ascending, _passive_energy, shannon_entropy
from ._options import SolverOptions, solver_options
from ._profiles import InteractionProfile
from ._protocol import AbstractModel, Channels, Sectors, check_bohr_homogeneous, complex_dtype
from ._rates import _checked, _rates_for
from ._solver import (
    AbstractStructuredOperator,
    DenseOperator,
    PartitionedTridiagonalOperator,
    TridiagonalOperator,
    integrate,
    rosenbrock,
)
from ._spin import birth_death_bands, ladder_channels
from ._states import validate_state
from ._validation import check_spin, is_concrete

__all__ = ["EvolveError", "EvolveResult", "evolve", "ergotropy_curve"]


class EvolveError(RuntimeError):
    """The ODE solve did not reach the last time point (see the message for what to change)."""


class EvolveResult(eqx.Module):
    r"""What `evolve` returns; every observable has shape `(n_t,)`.

    **Fields:**
    - `ts`: the save times.
    - `energy`: $E = \mathrm{tr}(\rho h_S)$.
    - `ergotropy`: $\mathcal W$; eq. (23) for population starts, the general definition
      $\mathrm{tr}(\rho h_S) - \sum_k r_k^\downarrow e_k^\uparrow$ for density-matrix starts.
    - `entropy`: von Neumann entropy $-\mathrm{tr}\,\rho\ln\rho$ (Shannon entropy of the
      populations for population starts), in nats.
    - `heat_current`: $\dot Q = \mathrm{tr}(h_S\,\mathcal C\rho)$, eq. (15).
    - `states`: `(n_t, d, d)` density matrices (density-matrix start), else `None`.
    - `populations`: `(n_t, d)` populations (population start), else `None`.
    - `expect`: `(n_ops, n_t)` complex expectation values $\mathrm{tr}(A_k\rho(t_i))$ of the
      operators passed as `e_ops` (QuTiP's and dynamiqs' convention), else `None`.
    - `num_steps`, `num_accepted_steps`, `num_rejected_steps`: solver statistics.

    With `observables_only=True` neither `states` nor `populations` is stored; observables
    not requested (`evolve(..., observables=...)`) are `None`.
    """

    ts: Float[Array, " n_t"]
    energy: Float[Array, " n_t"] | None
    ergotropy: Float[Array, " n_t"] | None
    entropy: Float[Array, " n_t"] | None
    heat_current: Float[Array, " n_t"] | None
    states: Complex[Array, "n_t d d"] | None
    populations: Float[Array, "n_t d"] | None
    expect: Complex[Array, "n_ops n_t"] | None
    num_steps: Int[Array, ""]
    num_accepted_steps: Int[Array, ""]
    num_rejected_steps: Int[Array, ""]


# --- the problems: operator, initial state, observables, states out ------------------------------


class _SpinLadder(AbstractModel):
    r"""The spin population sector in the units of Fig. 2: rates `spin_rates(D, A, alpha,
    profile=profile, drift=drift)` (time in $1/\tilde\Gamma$), energies $m$ in units of
    $\omega_S$.

    `m` is an array leaf rather than a constant so that XLA does not fold work on it (a sort
    of $2\times 10^6$ constants would take minutes to compile).
    """

    J: float = eqx.field(static=True)
    D: Float[Array, ""]
    A: Float[Array, ""]
    alpha: Float[Array, ""]
    m: Float[Array, " d"]
    profile: InteractionProfile
    drift: Float[Array, ""] | None

    def rates(self):
        return _rates_for(self.profile, self.drift, self.D, self.A, self.alpha, log=False)

    @property
    def dim(self) -> int:
        return int(round(2 * self.J)) + 1

    def energies(self):
        return self.m

    def channels(self) -> Channels:
        c = jnp.sqrt((self.J - self.m[:-1]) * (self.J + self.m[:-1] + 1.0))
        one = jnp.ones((), dtype=self.m.dtype)
        return ladder_channels(c, one, jnp.zeros(()), *self.rates())

    def is_real(self) -> bool:
        return True

    def population_sectors(self) -> Sectors:
        d = self.dim
        diag = np.arange(d) * (d + 1)
        return Sectors(d, np.zeros(0, dtype=np.int64), (diag,), layout=diag[None])

    def chain_generators(self, sectors):
        return tuple(x[None] for x in self.population_generator())

    def population_generator(self):
        gp, gm = self.rates()
        m = self.m[:-1]
        return birth_death_bands(gp, gm, (self.J - m) * (self.J + m + 1.0))


def _cast(x, dtype):
    return x.astype(dtype) if dtype is not None else x


def _real_superoperator(S, d: int):
    """The superoperator `S` (row-major vec, `(d*d, d*d)`, Hermiticity preserving) in the real
    coordinates of `_pack`: `X[i, j] = Re rho[i, j]` for `i <= j`, `Im rho[i, j]` for `i > j`.

    Coordinate (a, b) is the Hermitian matrix E_ab + E_ba (a < b), E_aa (a = b) or
    i E_ab - i E_ba (a > b); its image is read back with `_pack`. No d^4 basis is built.
    """
    a, b = np.divmod(np.arange(d * d), d)
    k_ab, k_ba = a * d + b, b * d + a
    upper = a <= b
    c1 = np.where(upper, 1.0, 1j)
    c2 = np.where(a < b, 1.0, np.where(a > b, -1j, 0.0))
    images = S[:, k_ab] * jnp.asarray(c1).astype(S.dtype) + S[:, k_ba] * jnp.asarray(c2).astype(
        S.dtype
    )
    return jnp.where(jnp.asarray(upper)[:, None], jnp.real(images), jnp.imag(images))


def _pack(rho):
    d = rho.shape[-1]
    upper = np.triu(np.ones((d, d), dtype=bool))
    return jnp.where(upper, jnp.real(rho), jnp.imag(rho))


def _unpack(X):
    d = X.shape[-1]
    upper = np.triu(np.ones((d, d), dtype=bool))
    strict_lower = np.tril(np.ones((d, d), dtype=bool), -1)
    re = jnp.where(upper, X, X.T)
    lo = jnp.where(strict_lower, X, jnp.zeros_like(X))
    return jax.lax.complex(re, lo - lo.T)


def _host_eigvalsh(a):
    a = np.asarray(a)
    return np.linalg.eigvalsh(a).astype(a.real.dtype)


def _host_eigh(a):
    a = np.asarray(a)
    w, v = np.linalg.eigh(a)
    return w.astype(a.real.dtype), v.astype(a.dtype)


@jax.custom_jvp
def _eigvalsh_cpu(a):
    real = jnp.real(a).dtype
    return jax.pure_callback(
        _host_eigvalsh, jax.ShapeDtypeStruct(a.shape[:-1], real), a, vmap_method="broadcast_all"
    )


@_eigvalsh_cpu.defjvp
def _eigvalsh_cpu_jvp(primals, tangents):
    (a,), (da,) = primals, tangents
    shapes = (
        jax.ShapeDtypeStruct(a.shape[:-1], jnp.real(a).dtype),
        jax.ShapeDtypeStruct(a.shape, a.dtype),
    )
    w, v = jax.pure_callback(_host_eigh, shapes, a, vmap_method="broadcast_all")
    dw = jnp.real(jnp.einsum("...ik,...ij,...jk->...k", jnp.conj(v), da, v))
    return w, dw


def _spectrum(rho):
    """Eigenvalues of a Hermitian matrix (ascending); differentiable.

    On CPU through NumPy (LAPACK without eigenvectors; the eigenvectors only when
    differentiating), since `jnp.linalg.eigvalsh` computes the eigenvectors as well (timings:
    benchmarks/README.md, "Host sort and spectra"). Small matrices stay in XLA.
    """
    if rho.shape[-1] < _HOST_EIGH_MIN:
        return jnp.linalg.eigvalsh(rho)
    return _config.platform_dependent(rho, cpu=_eigvalsh_cpu, default=jnp.linalg.eigvalsh)


_HOST_EIGH_MIN = 32


def _spin_operator(lower, diag, upper, method: str):
    """The tridiagonal operator for `method`; `"auto"` picks by size (see `evolve`)."""
    n = diag.shape[-1]
    batch = int(np.prod(diag.shape[:-1], dtype=int))
    if method == "auto" and _config.accelerator_paths():
        method = "cyclic"  # accelerators: vectorised levels, no sequential sweep
    if method == "auto":
        if batch > 1:
            method = "partition" if n * batch >= 4096 else "cyclic"
        else:
            method = "partition" if n >= _PARTITION_MIN else "cyclic"
    if method == "partition":
        return PartitionedTridiagonalOperator.from_natural(lower, diag, upper)
    if method in ("cyclic", "lapack"):
        return TridiagonalOperator(lower, diag, upper, method=method)
    raise ValueError(f"method must be 'auto', 'partition', 'cyclic' or 'lapack', got {method!r}")


# Chains at least this long use the partitioned Thomas sweep, shorter ones cyclic reduction
# (measured crossover on CPU, see benchmarks/bench_populations.py).
_PARTITION_MIN = 8192


OBSERVABLES = ("energy", "ergotropy", "entropy", "heat_current")


class _Problem(eqx.Module):
    r"""Everything the solve needs: the operator, the initial state and the save functions.

        The state is the model's kept sector blocks (see `_sectors.Plan`) in the frame rotating
        with $h_S$: the chain rows (real and imaginary parts, or the real part alone for a
        population start of a real generator) and the dense groups (real form) are integrated by
        `op`; the 1 x 1 blocks evolve in closed form (`lam`, `x1`). `kind` is `"populations"` or
        `"density"`. `ix` holds the plan's index arrays (`Plan.index()`, jit arguments).

        `e_ops` holds the expectation operators as weights on the kept elements they touch
        (`e_sel`, static in number) and on their conjugates, `(2, n, n_touched)`, so that
        $\mathrm{tr}(A
    ho) = \sum_f [A_{ji}
    ho_{ij} + A_{ij}\overline{
    ho_{ij}}\,\mathrm{mirror}_f]$.
    """

    op: AbstractStructuredOperator
    y0: Array
    model: eqx.Module
    energies: Array  # levels of the working basis
    order: Array  # argsort of the levels (ascending)
    freq: Array  # Bohr frequency e_i - e_j of every kept element
    lam: Array  # closed-form rates of the 1 x 1 blocks
    x1: Array  # their initial values
    e_ops: Array | None
    ix: dict  # Plan.index()
    e_sel: tuple | None  # kept elements the e_ops touch: (1 x 1 blocks, the others)
    plan: _sectors.Plan = eqx.field(static=True)
    kind: str = eqx.field(static=True)
    rhs: int = eqx.field(static=True)  # right-hand sides per chain entry (1 or 2)
    sizes: tuple = eqx.field(static=True)  # packed sizes of the operator's pieces
    shapes: tuple = eqx.field(static=True)  # natural shapes of the pieces
    which: tuple = eqx.field(static=True, default=OBSERVABLES)

    def _pieces(self, y):
        return _split_pieces(self.op, y, self.sizes, self.shapes)

    def _rest(self, y, dtype):
        """Kept elements of the integrated blocks (rotating frame), complex, from `y`."""
        plan = self.plan
        parts = []
        pieces = self._pieces(y)
        k = 0
        if plan.layout is not None:
            z = pieces[0]
            z = jax.lax.complex(z[..., 0], z[..., 1]) if self.rhs == 2 else z[..., 0]
            parts.append(z.reshape(-1)[self.ix["chain_valid"]].astype(dtype))
            k = 1
        for g, blocks in enumerate(plan.groups):
            s = blocks.shape[1]
            z = pieces[k + g]
            parts.append(jax.lax.complex(z[:, :s], z[:, s:]).reshape(-1))
        return jnp.concatenate(parts) if parts else jnp.zeros(0, dtype)

    def _selected(self, y, sel, dtype):
        """The kept elements `sel` (a `Plan.selection`) of the integrated blocks, gathered
        straight from the state's natural layout (one gather per piece, which XLA fuses with
        the dense output, so that only these elements are evaluated)."""
        plan = self.plan
        parts = []
        pieces = self._pieces(y)
        k = 0
        if plan.layout is not None:
            z = _take(pieces[0].reshape(-1, self.rhs), sel["chain"])
            z = jax.lax.complex(z[:, 0], z[:, 1]) if self.rhs == 2 else z[:, 0]
            parts.append(z.astype(dtype))
            k = 1
        for g, blocks in enumerate(plan.groups):
            s = blocks.shape[1]
            z = pieces[k + g].reshape(-1)
            pos = sel["groups"][g]
            parts.append(jax.lax.complex(z[pos], z[pos + s]))
        return jnp.concatenate(parts) if parts else jnp.zeros(0, dtype)

    def _diag_real(self, y, x1):
        """Populations `(d,)` from the solver state `y` (or its derivative) and the values
        `x1` of the diagonal 1 x 1 blocks: real parts alone, no rotation (the diagonal has
        Bohr frequency 0)."""
        plan = self.plan
        sel = self.ix["diag_sel"]
        parts = [jnp.real(x1)]
        pieces = self._pieces(y)
        k = 0
        if plan.layout is not None:
            parts.append(_take(pieces[0].reshape(-1, self.rhs)[:, 0], sel["chain"]))
            k = 1
        for g in range(len(plan.groups)):
            parts.append(pieces[k + g].reshape(-1)[sel["groups"][g]])
        p = jnp.concatenate([x.astype(parts[0].dtype) for x in parts])
        if plan.diag_in_order:
            return p
        return jnp.zeros(plan.d, dtype=p.dtype).at[self.ix["diag_level"]].set(p)

    def populations(self, t, t0, y):
        """Populations `(d,)` at time `t` (working basis)."""
        s1 = self.ix["diag_sel"]["single"]
        tau = (t - t0).astype(self.freq.dtype)
        x1 = self.x1[s1] * jnp.exp(self.lam[s1] * tau.astype(self.lam.dtype))
        return self._diag_real(y, x1)

    def kept_lab(self, t, t0, y, sel=None):
        """The kept elements (lab frame) from the solver state `y` at time `t`; with `sel`
        (a `Plan.selection`) only those, so that the dense output is evaluated on the
        elements read alone."""
        tau = (t - t0).astype(self.freq.dtype)
        if sel is None:
            x1 = self.x1 * jnp.exp(self.lam * tau.astype(self.lam.dtype))
            x = jnp.concatenate([x1, self._rest(y, x1.dtype)])
            freq = self.freq
        else:
            s1 = sel["single"]
            x1 = self.x1[s1] * jnp.exp(self.lam[s1] * tau.astype(self.lam.dtype))
            x = jnp.concatenate([x1, self._selected(y, sel, x1.dtype)])
            freq = self.freq[sel["kept"]]
        phase = -freq * tau
        return x * jax.lax.complex(jnp.cos(phase), jnp.sin(phase))

    def state(self, t, t0, y):
        """The state reported at time `t` (lab frame): populations `(d,)` or a density matrix
        `(d, d)` in the model's basis."""
        if self.kind == "populations":
            return self.populations(t, t0, y)
        x = self.kept_lab(t, t0, y)
        d = self.plan.d
        rho = jnp.zeros(d * d, dtype=x.dtype).at[self.ix["kept"]].set(x)
        mirror = jnp.conj(x[self.ix["mirror_pos"]])
        rho = rho.at[self.ix["mirror_flat"]].set(mirror).reshape(d, d)
        return self.model.from_working(rho)

    def heat(self, t, t0, y):
        r"""$\mathrm{tr}(h_S\,\mathcal C
        ho) = \sum_i e_i\,\dot
        ho_{ii}$ (the forward shift
                does not change the energy)."""
        tau = (t - t0).astype(self.freq.dtype)
        s1 = self.ix["diag_sel"]["single"]
        lam = self.lam[s1]
        dx1 = lam * self.x1[s1] * jnp.exp(lam * tau.astype(lam.dtype))
        dp = self._diag_real(self.op.mv(y), dx1)
        return jnp.sum(self.energies.astype(dp.dtype) * dp)

    def saved(self, t, t0, y, observables_only: bool):
        """What the solve keeps at a save point: the state (or, with `observables_only`,
        the observables in `which`) and the expectations of `e_ops`."""
        out = {}
        if not observables_only:
            out["state"] = self.state(t, t0, y)
        elif self.which:
            if self.kind == "density" and not {"ergotropy", "entropy"} & set(self.which):
                # energy needs the populations alone
                p = self.populations(t, t0, y)
                out.update(self.observables(p, populations=True))
            else:
                out.update(self.observables(self.state(t, t0, y)))
        if "heat_current" in self.which:
            out["heat_current"] = self.heat(t, t0, y)
        if self.e_ops is not None:
            x = self.kept_lab(t, t0, y, self.e_sel)
            wa, wb = self.e_ops[0], self.e_ops[1]
            out["expect"] = wa @ x + wb @ jnp.conj(x)
        return out

    def observables(self, state, populations: bool = False):
        """The observables in `which` except the heat current (energy, ergotropy, entropy)
        of one reported state (`populations=True`: of its populations, which then suffice)."""
        rdtype = jnp.real(state).dtype
        eps = self.energies.astype(rdtype)
        e_asc = eps[self.order]
        out = {}
        if self.kind == "populations" or populations:
            p = state
            energy = jnp.sum(eps * p)
            if "ergotropy" in self.which:
                out["ergotropy"] = _ergotropy_ascending(p[self.order], e_asc)
            if "entropy" in self.which:
                out["entropy"] = shannon_entropy(p)
        else:
            w = self.model.to_working(state)
            energy = jnp.sum(eps * jnp.real(jnp.diagonal(w)))
            # One eigendecomposition of rho gives both the passive energy
            # sum_k r_k^desc e_k^asc (general ergotropy) and the von Neumann entropy.
            if "ergotropy" in self.which or "entropy" in self.which:
                r = _spectrum(state)
                if "ergotropy" in self.which:
                    wg = energy - _passive_energy(r, e_asc)
                    out["ergotropy"] = jnp.where(wg > 0, wg, jnp.zeros_like(wg))
                if "entropy" in self.which:
                    out["entropy"] = shannon_entropy(r)  # -sum r ln r of the spectrum
        if "energy" in self.which:
            out["energy"] = energy
        return out


def _take(x, pos):
    """`x[pos]` along the first axis; `pos` is an index array or a static `(start, stop)`."""
    if isinstance(pos, tuple):
        return x[pos[0] : pos[1]]
    return x[pos]


def _split_pieces(op, y, sizes, shapes):
    """The natural-layout pieces of a flat solver state."""
    parts = op.parts if isinstance(op, _sectors.SumOperator) else (op,)
    out, k = [], 0
    for part, n, shape in zip(parts, sizes, shapes, strict=True):
        piece = y[k : k + n] if len(parts) > 1 else y
        out.append(part.unpack(piece).reshape(shape))
        k += n
    return out


def _build(model, rho0, kind: str, dtype, method: str, which: tuple, e_ops, plan, ix, e_sel):
    """Set up the problem for `model` (inside the jit), in float64, then cast to `dtype`."""
    problem = _build64(model, rho0, kind, method, e_ops, plan, ix, e_sel)
    problem = dataclasses.replace(problem, which=which)
    if dtype is None:
        return problem
    cdtype = complex_dtype(dtype)

    def cast(x):
        if not eqx.is_inexact_array(x):
            return x
        return x.astype(cdtype if jnp.iscomplexobj(x) else dtype)

    return eqx.tree_at(
        lambda p: (p.op, p.y0, p.energies, p.freq, p.lam, p.x1, p.e_ops),
        problem,
        tuple(
            jax.tree_util.tree_map(cast, x)
            for x in (
                problem.op,
                problem.y0,
                problem.energies,
                problem.freq,
                problem.lam,
                problem.x1,
                problem.e_ops,
            )
        ),
        is_leaf=lambda x: x is None,
    )


_PLANS: dict = {}


def _plan(model, kind: str) -> _sectors.Plan:
    """The static plan of `model`'s blocks for a start of `kind` (outside the jit: the same
    plan object keys the compilation, and its index arrays become jit arguments).

    Cached per static structure of the model (its tree structure, which holds the static
    fields, and the shapes of its leaves), on which the channel pattern depends alone.
    """
    leaves, treedef = jax.tree_util.tree_flatten(model)
    avals = tuple((np.shape(x), str(getattr(x, "dtype", type(x)))) for x in leaves)
    real = bool(model.is_real())
    key = (treedef, avals, kind, real)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _make_plan(model, kind, real)
        if len(_PLANS) >= 32:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = plan
    return plan


def _make_plan(model, kind: str, real: bool) -> _sectors.Plan:
    sectors = model.population_sectors() if kind == "populations" else model.sectors()
    ch, he = eqx.filter_eval_shape(lambda m: (m.channels(), m.h_eff_entries()), model)
    fast = (
        real
        and sectors.layout is not None
        and eqx.filter_eval_shape(lambda m: m.chain_generators(sectors), model) is not None
    )
    return _sectors.plan_for(sectors, real, ch.pattern, he.pattern, fast)


def _e_ops_support(model, e_ops, plan: _sectors.Plan, kind: str) -> dict:
    """The `Plan.selection` of the kept elements that concrete `e_ops` touch; every kept
    element when the operators (or the model's basis change) are traced. Only these are read
    at the save points."""
    if kind == "populations":
        return plan.index()["diag_sel"]
    f = np.arange(len(plan.kept))
    if is_concrete(e_ops):
        with jax.ensure_compile_time_eval():
            a = model.to_working(e_ops)
        if is_concrete(a):
            nz = np.any(np.asarray(a) != 0, axis=0)
            touched = (nz | nz.T).reshape(-1)
            f = np.flatnonzero(touched[plan.kept])
    return plan.selection(f)


def _build64(model, rho0, kind: str, method: str, e_ops, plan, ix, e_sel) -> _Problem:
    ch = model.channels()
    eps = model.energies()
    d = model.dim
    cdtype = jnp.result_type(complex)
    if plan.fast:
        lam = jnp.zeros(plan.n_singles, dtype=cdtype)
        tri = model.chain_generators(plan.sectors)
        mats = []
    else:
        buf = _sectors.coefficients(plan, ch, model.h_eff_entries(), ix)
        lam, tri, mats = _sectors.split_buffer(plan, buf)
        if tri is not None:
            tri = tuple(jnp.real(x) for x in tri)
    # initial values of the kept elements
    if kind == "populations":
        x0 = jnp.zeros(len(plan.kept), dtype=cdtype)
        x0 = x0.at[ix["diag_pos"]].set(rho0[ix["diag_level"]].astype(cdtype))
        rhs = 1 if tri is not None else 2
    else:
        w = model.to_working(rho0.astype(cdtype))
        x0 = w.reshape(-1)[ix["kept"]]
        rhs = 2
    n1, nc = plan.n_singles, plan.n_chain
    parts, pieces = [], []
    if tri is not None:
        lo, di, up = tri
        if lo.shape[0] == 1:
            lo, di, up = lo[0], di[0], up[0]
        parts.append(_spin_operator(lo, di, up, method))
        z = jnp.zeros(plan.layout.size, dtype=cdtype)
        z = z.at[ix["chain_valid"]].set(x0[n1 : n1 + nc]).reshape(di.shape)
        piece = (
            jnp.stack([jnp.real(z), jnp.imag(z)], axis=-1) if rhs == 2 else jnp.real(z)[..., None]
        )
        pieces.append(piece)
    k = n1 + nc
    for M, blocks in zip(mats, plan.groups, strict=True):
        nb, s = blocks.shape
        parts.append(_sectors.BatchedDenseOperator(_sectors.realify(M)))
        z = x0[k : k + nb * s].reshape(nb, s)
        pieces.append(jnp.concatenate([jnp.real(z), jnp.imag(z)], axis=-1))
        k += nb * s
    if not parts:  # every block in closed form: a trivial operator keeps diffrax happy
        parts.append(DenseOperator(jnp.zeros((1, 1))))
        pieces.append(jnp.zeros(1))
    packed = [op.pack(x) for op, x in zip(parts, pieces, strict=True)]
    op = (
        parts[0]
        if len(parts) == 1
        else _sectors.SumOperator(tuple(parts), tuple(x.size for x in packed))
    )
    y0 = packed[0] if len(packed) == 1 else jnp.concatenate([x.reshape(-1) for x in packed])
    e_w = None
    if e_ops is not None:
        f = e_sel["kept"]
        kf = ix["kept"][f]
        Aw = model.to_working(e_ops.astype(cdtype)).reshape(e_ops.shape[0], d * d)
        kt = ix["kept_j"][f] * d + ix["kept_i"][f]  # the transposed element
        wa = Aw[:, kt]
        if kind == "populations":
            wb = jnp.zeros_like(wa)
        else:
            wb = jnp.where(ix["mirror"][f], Aw[:, kf], jnp.zeros((), cdtype))
        e_w = jnp.stack([wa, wb])
    return _Problem(
        op=op,
        y0=y0,
        model=model,
        energies=eps,
        order=jnp.argsort(eps),
        freq=(eps[ix["kept_i"]] - eps[ix["kept_j"]]),
        lam=lam,
        x1=x0[:n1],
        e_ops=e_w,
        ix=ix,
        e_sel=e_sel,
        plan=plan,
        kind=kind,
        rhs=rhs,
        sizes=tuple(x.size for x in packed),
        shapes=tuple(x.shape for x in pieces),
    )


def _max_norm(y):
    return jnp.max(jnp.abs(y))


def _rms_norm(y):
    return jnp.sqrt(jnp.mean(jnp.abs(y) ** 2))


_NORMS = {"max": _max_norm, "rms": _rms_norm}


@eqx.debug.assert_max_traces(max_traces=None)  # counts traces, see the tests
def _solve_traced(
    model,
    rho0,
    ts,
    rtol,
    atol,
    *,
    kind,
    observables_only,
    max_steps,
    progress,
    adjoint,
    dtype,
    solver,
    norm,
    method,
    observables,
    plan,
    ix,
    e_sel=None,
    e_ops=None,
):
    problem = _build(model, rho0, kind, dtype, method, observables, e_ops, plan, ix, e_sel)
    t0 = ts[0]

    def save(t, y, args):
        del args
        return problem.saved(t, t0, y, observables_only)

    sol = integrate(
        problem.op,
        problem.y0,
        ts,
        save=save,
        solver=solver,
        controller=diffrax.PIDController(rtol=rtol, atol=atol, norm=_NORMS[norm]),
        max_steps=max_steps,
        adjoint=adjoint,
        progress=progress,
    )
    ok = sol.result == diffrax.RESULTS.successful
    max_steps_hit = sol.result == diffrax.RESULTS.max_steps_reached
    finite = jnp.all(
        jnp.stack([jnp.all(jnp.isfinite(v)) for v in jax.tree_util.tree_leaves(sol.ys)])
    )
    # 0: fine, 1: max_steps, 2: other solver failure, 3: non-finite output
    code = jnp.where(
        ok,
        jnp.where(finite, 0, 3),
        jnp.where(max_steps_hit, 1, 2),
    )
    stats = (
        sol.stats["num_steps"],
        sol.stats["num_accepted_steps"],
        sol.stats["num_rejected_steps"],
    )
    if observables_only or not observables:
        return sol.ys, code, stats
    # All save points at once: one batched sort / eigendecomposition instead of n_t.
    out = jax.vmap(problem.observables)(sol.ys["state"])
    return {**sol.ys, **out}, code, stats


_solve = eqx.filter_jit(_solve_traced)


def _messages(max_steps: int, rtol, atol) -> list[str]:
    return [
        "",
        f"evolve did not reach ts[-1] within max_steps={max_steps} steps (rtol={rtol}, "
        f"atol={atol}): raise max_steps, loosen rtol/atol, or shorten ts",
        "evolve failed: the step size control broke down; loosen rtol/atol, check that the "
        "model's rates are finite, or use float64 (dtype=None)",
        "evolve produced non-finite values: check that the model's parameters and rates are "
        "finite, tighten rtol/atol, or use float64 (dtype=None)",
    ]


# --- input checks ---------------------------------------------------------------------------


def _check_ts(ts):
    if is_concrete(ts):  # strings and None too: refused there
        return jnp.asarray(_checked_ts_numpy(ts), dtype=jnp.result_type(float))
    ts = jnp.asarray(ts)
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ValueError(f"ts must be a non-empty 1-D array, got shape {ts.shape}")
    ts = ts.astype(jnp.result_type(float))
    bad = jnp.any(~jnp.isfinite(ts)) | jnp.any(jnp.diff(ts) <= 0)
    return eqx.error_if(ts, bad, "ts must be finite and strictly increasing")


def _checked_ts_numpy(ts) -> np.ndarray:
    """Concrete `ts` checked on the host (no device dispatch): a 1-D float NumPy array."""
    if isinstance(ts, str | bytes) or ts is None:
        raise TypeError(f"ts must be a 1-D array of times, got {type(ts).__name__}")
    arr = np.asarray(ts)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"ts must be a 1-D array of real times, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError("ts must be real, got a complex array")
    if arr.ndim != 1 or arr.shape[0] < 1:
        raise ValueError(f"ts must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"ts must be finite, got {arr[~np.isfinite(arr)][:3]}")
    if np.any(np.diff(arr) <= 0):
        i = int(np.argmax(np.diff(arr) <= 0))
        raise ValueError(
            f"ts must be strictly increasing, got ts[{i}] = {arr[i]} >= ts[{i + 1}] = {arr[i + 1]}"
        )
    return arr.astype(np.float64)


def _times_from_zero(ts) -> Float[Array, " n_plus_1"]:
    r"""`[t_start, *ts]`: the save grid of a solve that starts in a given state at $t = 0$.

    `ts` are times since that start, so they must be $\ge 0$ (a `ValueError` naming `ts`
    for concrete input, `eqx.error_if` under tracing). `t_start = 0` when `ts[0] > 0`. When
    `ts[0] == 0` (which may only be known at run time) the solve starts a vanishing moment
    earlier, at `-1e-30`, so the grid stays strictly increasing and the state at `ts[0] = 0`
    is the initial state to all digits. One grid shape for both cases: no recompilation, and
    the same graph traced or concrete. Drop the first save point of the result.
    """
    if is_concrete(ts):
        # on the host: one transfer instead of a handful of small device operations
        arr = _checked_ts_numpy(ts)
        if arr[0] < 0:
            raise ValueError(
                f"ts must be >= 0 (times since the start at t = 0), got ts[0] = {arr[0]}"
            )
        grid = np.concatenate([[0.0 if arr[0] > 0 else -1e-30], arr])
        return jnp.asarray(grid, dtype=jnp.result_type(float))
    ts = _check_ts(ts)
    ts = eqx.error_if(ts, ts[0] < 0, "ts must be >= 0 (times since the start at t = 0)")
    start = jnp.where(ts[0] > 0, jnp.zeros((), ts.dtype), jnp.full((), -1e-30, ts.dtype))
    return jnp.concatenate([start[None], ts])


def _check_positive(name, x):
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not (x > 0 and np.isfinite(x)):
        raise ValueError(f"{name} must be a finite number > 0, got {x!r}")
    return float(x)


def _as_arrays(model):
    """Python numbers among the model's leaves become arrays, so that jit traces them."""

    def conv(x):
        if isinstance(x, bool | np.bool_):
            return x
        if isinstance(x, numbers.Number | np.generic):
            return jnp.asarray(x, dtype=jnp.result_type(float))
        return x

    return jax.tree_util.tree_map(conv, model)


def _check_observables(observables, observables_only, has_e_ops=False):
    if isinstance(observables, str):
        observables = (observables,)
    observables = tuple(observables)
    bad = [o for o in observables if o not in OBSERVABLES]
    if bad:
        raise ValueError(f"observables must be among {OBSERVABLES}, got {bad[0]!r}")
    if observables_only and not observables and not has_e_ops:
        raise ValueError(
            "observables is empty, e_ops is None and observables_only=True: nothing to compute"
        )
    return tuple(o for o in OBSERVABLES if o in observables)


def _check_e_ops(e_ops, d: int):
    """`e_ops` as a complex `(n, d, d)` array: one `(d, d)` operator, a sequence of them, or
    an `(n, d, d)` array."""
    if e_ops is None:
        return None
    if isinstance(e_ops, str | bytes | dict):
        raise TypeError(f"e_ops must be a (d, d) operator or a sequence of them, got {e_ops!r}")
    ops = list(e_ops) if isinstance(e_ops, list | tuple) else [e_ops]
    if not ops:
        raise ValueError("e_ops must hold at least one operator, got an empty sequence")
    arrs = []
    cdtype = jnp.result_type(complex)
    for k, a in enumerate(ops):
        a = jnp.asarray(a)
        if not jnp.issubdtype(a.dtype, jnp.number) or a.dtype == jnp.bool_:
            raise TypeError(f"e_ops[{k}] must be a numeric array, got dtype {a.dtype}")
        if a.ndim == 3 and len(ops) == 1:
            arrs.extend(list(a.astype(cdtype)))
            continue
        if a.shape != (d, d):
            raise ValueError(f"e_ops[{k}] must have shape ({d}, {d}), got {a.shape}")
        arrs.append(a.astype(cdtype))
    out = jnp.stack(arrs)
    if out.shape[1:] != (d, d):
        raise ValueError(f"e_ops must have shape (n, {d}, {d}), got {out.shape}")
    if is_concrete(out) and not bool(jnp.all(jnp.isfinite(out))):
        raise ValueError("e_ops must be finite, got non-finite entries")
    return out


def _float_dtype(dtype):
    if dtype is None:
        return None
    dtype = jnp.dtype(dtype)
    if dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"dtype must be None, jnp.float32 or jnp.float64, got {dtype}")
    return dtype


def _run(
    model,
    rho0,
    ts,
    *,
    kind,
    opts: SolverOptions,
    max_steps: int,
    observables_only,
    adjoint=None,
    observables=OBSERVABLES,
    e_ops=None,
):
    """Check the settings, solve with `opts`, and raise (or, traced, flag) solver failures."""
    observables = _check_observables(observables, observables_only, e_ops is not None)
    if opts.exponential:
        raise ValueError(
            "solver='exponential' propagates the spin's population ladder (ergotropy_curve, "
            "the functionals); evolve integrates with a Rosenbrock solver: use solver=None"
        )
    if opts.mode == "scaling":
        raise ValueError(
            "mode='scaling' is for the functionals; evolve takes 'reverse' or 'forward'"
        )
    rtol, atol = float(opts.rtol), float(opts.atol)
    solver = rosenbrock(opts.solver)
    if adjoint is None:
        adjoint = opts.adjoint()
    dtype = _float_dtype(opts.dtype)
    norm, method, progress = opts.norm, opts.tridiagonal, opts.progress
    real = dtype if dtype is not None else jnp.result_type(float)
    plan = _plan(model, kind)
    e_sel = None if e_ops is None else _e_ops_support(model, e_ops, plan, kind)
    ys, code, stats = _solve(
        _as_arrays(model),
        rho0,
        _cast(ts, dtype),
        jnp.asarray(rtol, dtype=real),
        jnp.asarray(atol, dtype=real),
        kind=kind,
        observables_only=bool(observables_only),
        max_steps=int(max_steps),
        progress=bool(progress),
        adjoint=adjoint,
        dtype=dtype,
        solver=solver,
        norm=norm,
        method=method,
        observables=observables,
        plan=plan,
        ix=plan.index(),
        e_sel=e_sel,
        e_ops=e_ops,
    )
    messages = _messages(max_steps, rtol, atol)
    if is_concrete(code):
        c = int(code)
        if c != 0:
            raise EvolveError(messages[c])
    else:
        ys = eqx.branched_error_if(ys, code != 0, code, messages)
    return ys, stats


# --- public -----------------------------------------------------------------------------------


def evolve(
    model: AbstractModel,
    rho0,
    ts,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    options: SolverOptions | None = None,
    observables_only: bool = False,
    observables: tuple[str, ...] = OBSERVABLES,
    e_ops=None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    **solver_options_kw,
) -> EvolveResult:
    r"""Evolve a state under the master equation of `model` and record observables at `ts`.

    $$\dot\rho = -i[h_S, \rho] + \mathcal C\rho \quad\text{(eq. 6, 18)}, \qquad
      \dot P_i = \sum_j [R_{ij}P_j - R_{ji}P_i] \quad\text{(eq. 11)}.$$

    Any `AbstractModel` (`SpinGas`, `CollisionalModel` or a model of your own) is evolved on
    the Bohr sectors of its generator: closed form for 1 x 1 blocks, batched tridiagonal solves
    for chains, batched dense blocks for the rest (see the module docstring).

    **Arguments:**
    - `model`: any `AbstractModel`.
    - `rho0`: the state at `ts[0]`: populations `(d,)` in the model's working basis, the
      eigenbasis of $h_S$ in the order of `model.energies()` (an energy-diagonal state, eq. 10;
      only the blocks holding the diagonal are evolved; for a degenerate spectrum the
      coherences inside a degenerate level start at zero), or a `(d, d)` density matrix in the
      model's basis (full dynamics; for `CollisionalModel` the basis of `h_s`).
    - `ts`: strictly increasing save times (at least one).
    - `rtol`, `atol`: local error tolerances of the adaptive step (default `1e-8`, `1e-10`),
      in the max norm over the entries of the state (see `SolverOptions`).
    - `options`: a `SolverOptions` with the other solver settings (`max_steps`, `norm`,
      `solver`, `tridiagonal`, `mode`, `checkpoints`, `dtype`, `progress`); each may also be
      given as a keyword here (`max_steps=...`), which overrides `options`. `solver` is the
      integrator (a `Rosenbrock` tableau), `tridiagonal` the algorithm of the linear solves
      on tridiagonal blocks; the deprecated `method=` meant the latter.
    - `observables_only`: compute the observables at `ts` during the solve and store no
      states (memory $O(n_t)$ instead of $O(n_t d)$ or $O(n_t d^2)$).
    - `observables`: which of `"energy"`, `"ergotropy"`, `"entropy"`, `"heat_current"` to
      compute (default all; the others are `None`). For density matrices the ergotropy and
      the entropy take one eigendecomposition per save point, which dominates the cost of
      long full-state runs when the states are all one needs.
    - `e_ops`: operators $A_k$ (one `(d, d)` array, a sequence of them or an `(n, d, d)`
      array, in the model's basis, that of `rho0`'s density matrices: basis order for
      `SpinGas`, the basis of `h_s` for `CollisionalModel`) whose expectations
      $\mathrm{tr}(A_k\rho(t))$ are recorded at `ts` in `result.expect`. They are read off
      the solver's state at each save point, only on the matrix elements they touch (for
      concrete operators), so with `observables_only=True` and `observables=()` a full
      density-matrix run stores nothing but these numbers. For a population start only the
      diagonals (in the working basis) matter.
    - `adjoint`: a `diffrax` adjoint, overriding the one of `options.mode` (default
      `RecursiveCheckpointAdjoint()`: reverse-mode gradients with respect to the model's
      float parameters).

    **Returns:** an `EvolveResult` with `ts`, `energy`, `ergotropy`, `entropy`,
    `heat_current`, and `states` (density-matrix start) or `populations` (population start).

    **Raises:** `ValueError` for a bad `rho0` or `ts`; `EvolveError` when the solver fails
    (the message says what to change). Under `jit` the same failures are run-time errors.

    Works under `jit`, `vmap` and `grad` with respect to the model's float parameters.
    """
    if not isinstance(model, AbstractModel):
        raise TypeError(
            f"model must be a jaxcoll model (an AbstractModel such as SpinGas or "
            f"CollisionalModel), got {type(model).__name__}"
        )
    d = model.dim
    if is_concrete(model):
        check_bohr_homogeneous(model.channels(), model.energies())
    rho0 = validate_state(rho0, d, "rho0")
    kind = "populations" if rho0.ndim == 1 else "density"
    ts = _check_ts(ts)
    e_ops = _check_e_ops(e_ops, d)
    opts = solver_options(options, caller="evolve", rtol=rtol, atol=atol, **solver_options_kw)
    dtype = opts.dtype
    ys, (n, n_acc, n_rej) = _run(
        model,
        rho0,
        ts,
        kind=kind,
        opts=opts,
        max_steps=opts.steps(100_000),
        observables_only=observables_only,
        adjoint=adjoint,
        observables=observables,
        e_ops=e_ops,
    )
    ys = dict(ys)
    states = ys.pop("state", None)
    expect = ys.pop("expect", None)
    return EvolveResult(
        ts=_cast(ts, _float_dtype(dtype)),
        energy=ys.get("energy"),
        ergotropy=ys.get("ergotropy"),
        entropy=ys.get("entropy"),
        heat_current=ys.get("heat_current"),
        states=states if kind == "density" else None,
        populations=states if kind == "populations" else None,
        expect=None if expect is None else expect.T,
        num_steps=n,
        num_accepted_steps=n_acc,
        num_rejected_steps=n_rej,
    )


_STORE_MAX = 2**24


def ergotropy_curve(
    J,
    D,
    A,
    alpha,
    ts,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    options: SolverOptions | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    profile: InteractionProfile | str | None = None,
    drift: ArrayLike | None = None,
    **solver_options_kw,
) -> Float[Array, " n_t"]:
    r"""Ergotropy $\mathcal W(t_i)/\omega_S$ of the spin started in its ground state (Fig. 2).

    The spin of eq. (18) evolves in its population sector (eq. 11) with the rates
    $\Gamma_\pm/\tilde\Gamma$ = `spin_rates(D, A, alpha)` (with `profile`, `drift`), so time is in
    units of $1/\tilde\Gamma$; the ergotropy is eq. (23) with levels $m = -J, \dots, J$ (units
    of $\omega_S$). The spin is in its ground state at $t = 0$, whatever `ts[0]` is: `ts` are
    times since that start (unlike `evolve`, whose `rho0` is the state at `ts[0]`), so the
    curve at `ts = [0.5, 3, 10]` is the tail of the one at `[0, 0.5, 3, 10]`.

    **Arguments:**
    - `J`: spin quantum number (concrete; dimension $2J+1$).
    - `D`, `A`, `alpha`: the parameters of Fig. 2, $\hbar\Delta/k_BT_M$, $\hbar\omega_A/k_BT_A$
      and $E_R/k_BT_M$.
    - `ts`: strictly increasing times $t_i \ge 0$ in units of $1/\tilde\Gamma$ (one or more;
      need not start at 0 nor be evenly spaced).
    - `rtol`, `atol`, `options` and the keywords of `SolverOptions`: as for `evolve`; the
      default `solver` propagates exactly (uniformisation, no time steps: `atol` bounds the
      1-norm error of the populations) for $d \le 64$ in float64, and integrates with the
      adaptive solver otherwise.
    - `adjoint`: as for `evolve`.
    - `profile`, `drift`: the interaction profile and the drift speed of the gas, as for
      `spin_rates` (default: the Gaussian of eq. (D1), the gas at rest).

    **Returns:** shape `(n_t,)`. Jit-able, differentiable in `D`, `A`, `alpha` (and `drift`),
    and `vmap`s over them.
    """
    opts = solver_options(
        options, caller="ergotropy_curve", rtol=rtol, atol=atol, **solver_options_kw
    )
    J = check_spin(J)
    grid = _times_from_zero(ts)
    d = int(round(2 * J)) + 1
    # Array leaves (weakly typed for Python numbers): new values do not recompile.
    D, A, alpha, profile, drift = _checked(D, A, alpha, profile, drift)
    D, A, alpha = (jnp.asarray(x) for x in (D, A, alpha))
    m = np.arange(d, dtype=float) - J
    model = _SpinLadder(J=J, D=D, A=A, alpha=alpha, m=m, profile=profile, drift=drift)
    if _expm.chosen(opts.exponential, d, opts.dtype):
        if opts.dtype is not None and jnp.dtype(opts.dtype) != jnp.float64:
            raise ValueError("solver='exponential' computes in float64: use dtype=None")
        return _curve_exponential(model, grid, tol=float(opts.atol))
    p0 = np.zeros(d)
    p0[0] = 1.0
    ys, _ = _run(
        model,
        p0,
        grid,
        kind="populations",
        opts=dataclasses.replace(opts, solver=None if opts.exponential is None else opts.solver),
        max_steps=opts.steps(100_000),
        # Storing the populations and sorting them all at once is faster; above ~128 MB of
        # populations the observables are computed during the solve instead.
        observables_only=grid.shape[0] * d > _STORE_MAX,
        observables=("ergotropy",),
        adjoint=adjoint,
    )
    # At t = 0 exactly the ground state is passive: W = 0, not the round-off of a 1e-30 step.
    w = ys["ergotropy"][1:]
    return jnp.where(grid[1:] > 0, w, jnp.zeros_like(w))


@eqx.filter_jit
def _curve_exponential(model, grid, *, tol):
    """`ergotropy_curve` by exact propagation (`_expm.py`), without its first save point;
    exactly 0 at t = 0."""
    d = model.dim
    pops = _expm.from_ground(*model.rates(), grid, d, tol)
    w = _ergotropy_ascending(pops[1:], jnp.arange(d, dtype=grid.dtype) - (d - 1) / 2)
    return jnp.where(grid[1:] > 0, w, jnp.zeros_like(w))
