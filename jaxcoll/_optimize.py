r"""Maximise the ergotropy (or the charging power) of the spin battery over gas parameters.

The landscape is flat where it matters least: $\mathcal W \equiv 0$ wherever the state at
$t_f$ is passive (in particular wherever eq. (22), $T_M < \Delta T_A/(\omega_S + \Delta)$,
fails), so gradient ascent from a random start sees a zero gradient. `optimize_ergotropy`
therefore

1. scans a coarse grid over the box with `jax.vmap` (`scan`), the objective and the energy
   $E(t_f)$ at every point;
2. seeds multi-start Adam (`optax.adam`) from the best grid points, in unconstrained
   coordinates $u$ with $x = x_{lo} + (x_{hi} - x_{lo})\,\sigma(u)$ (bounds hold by
   construction). If no grid point is inverted, the smooth energy $E(t_f)$, which has a
   gradient wherever the rates do, is climbed first until some start becomes inverted;
3. polishes the best point with L-BFGS-B (SciPy, exact JAX gradients) in the box itself, which
   lands exactly on active bounds where the sigmoid only approaches them.

**What is active at the optimum** of the benchmark problem (`benchmarks/bench_optimize.py`:
$J = 20$, $t_f = 3$, fixed $nR^3$ and $V_0$, a box in all three parameters; its numbers are in
`benchmarks/README.md`): $T_A$ on its upper bound, $T_M$ on its lower bound and an interior
detuning, with $\mathcal W(t_f)$ close to the $2J\omega_S$ of a fully inverted spin. Why:

- The inversion drive is $\Gamma_+/\Gamma_- = e^{D - A}$, $D - A = \Delta/T_M
  - (\omega_S+\Delta)/T_A = -\omega_S/T$ (eq. 21). Raising $T_A$ lowers $A$ and also raises
  the excitation rate through the ancilla's excited fraction $1/(1+e^{A})$: $T_A$ sits on its
  upper bound.
- Cooling the motion raises $D = \Delta/T_M$ (eq. 22 is satisfied ever more strongly) and does
  not slow the charging: $\tilde\Gamma \propto T_M^{-3/2}$ (eq. D4) while the exothermic
  integral $I(\alpha, -\Delta/E_R) \propto \alpha^{-3/2} = (T_M/E_R)^{3/2}$ at large $\alpha$
  (threshold law: the gas particle leaves with the energy $\Delta$, whatever it came with), so
  $\Gamma_+$ tends to a constant while $\Gamma_- \propto e^{-\Delta/T_M}$ vanishes. $T_M$
  sits on its lower bound.
- $\Delta$ trades the two ends: small $\Delta$ leaves $\Gamma_-/\Gamma_+ = e^{A - D}$ sizable
  (the reverse jumps stop the climb early), large $\Delta$ suppresses the exothermic rate
  $\Gamma_+$ itself (the Gaussian interaction of range $R$ cannot absorb the momentum
  $\sqrt{2m\Delta}$). The optimum is where $\Gamma_-$ has become negligible while $\Gamma_+$
  is still near its peak. The charging is rate-limited, not drive-limited: at the same
  parameters $\mathcal W$ keeps approaching $2J\omega_S$ at later times.

The optimiser reports this in `OptimizeResult.active` and `.gradient` (at the optimum
$\partial\mathcal W/\partial T_A > 0$ and $\partial\mathcal W/\partial T_M < 0$ push against
the box, $\partial\mathcal W/\partial\Delta \approx 0$).
"""

from __future__ import annotations

import dataclasses
import numbers
import time
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _config  # noqa: F401
from ._functionals import _MAX_STEPS, _trajectory
from ._options import SolverOptions, solver_options
from ._profiles import InteractionProfile, check_drift, check_profile
from ._scan import grid, scan
from ._validation import check_box, check_int, check_rate_scale, check_real, check_spin

__all__ = ["OptimizeResult", "optimize_ergotropy"]

_NAMES = ("T_a", "T_m", "delta")


@dataclasses.dataclass(frozen=True)
class OptimizeResult:
    """Outcome of `optimize_ergotropy`.

    **Fields:**
    - `T_a`, `T_m`, `delta`: the best parameters found (the given value for one held fixed).
    - `ergotropy`: $\\mathcal W(t_f)$ there (energy units).
    - `power`: for `objective="power"`, the best $\\mathcal W(t)/t$ and `t_best` its time;
      for `"ergotropy"`, $\\mathcal W(t_f)/t_f$ and `t_best = t_f`.
    - `objective`, `value`: the objective's name and its value at the optimum.
    - `active`: `{name: "lower" | "upper" | None | "fixed"}`, the bounds the optimum sits on
      (`"fixed"` for a parameter held fixed).
    - `gradient`: d value / d parameter at the optimum (physical units) for the searched
      parameters; at an active bound it points out of the box (the KKT multiplier), elsewhere
      it is ~0.
    - `history`: dict of 1-D arrays, one entry per optimisation step (Adam steps, then
      L-BFGS-B iterations): `phase` (0 surrogate, 1 Adam, 2 polish), `value` (best start),
      `T_a`, `T_m`, `delta`; and `starts` `(n_adam_steps, n_starts)` values of every start.
    - `scan`: the coarse scan, dict with the flat grid `T_a`, `T_m`, `delta`, `value`,
      `energy`, and `best` (the best grid point, dict) which seeds the search.
    - `seed`: the random seed (jitter of the starts).
    - `bounds`: `{name: (lo, hi)}` of the searched parameters.
    - `n_evaluations`: objective evaluations (a gradient counts as one).
    - `wall_time`: seconds.
    """

    T_a: float
    T_m: float
    delta: float
    ergotropy: float
    power: float
    t_best: float
    objective: str
    value: float
    active: dict[str, str | None]
    gradient: dict[str, float]
    history: dict[str, np.ndarray]
    scan: dict[str, Any]
    seed: int
    bounds: dict[str, tuple[float, float]]
    n_evaluations: int
    wall_time: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (keys `T_a`, `T_m`, `delta`, `ergotropy`, ... ; no big arrays)."""
        return {
            "T_a": self.T_a,
            "T_m": self.T_m,
            "delta": self.delta,
            "ergotropy": self.ergotropy,
            "power": self.power,
            "t_best": self.t_best,
            "objective": self.objective,
            "value": self.value,
            "active": dict(self.active),
            "gradient": dict(self.gradient),
            "bounds": {k: list(v) for k, v in self.bounds.items()},
            "scan_best": {k: float(v) for k, v in self.scan["best"].items()},
            "seed": self.seed,
            "n_evaluations": self.n_evaluations,
            "wall_time": self.wall_time,
            "history": {k: np.asarray(v).tolist() for k, v in self.history.items()},
        }


def _box_or_value(name, b, *, positive):
    """`(lo, hi)` -> a search box `(lo, hi)` of floats; a number -> the value held fixed."""
    if isinstance(b, tuple | list):
        return check_box(name, b, positive=positive)
    if isinstance(b, np.ndarray | jax.Array) and np.ndim(b) != 0:
        raise ValueError(f"{name} must be a (lo, hi) pair or a number, got shape {np.shape(b)}")
    return float(check_real(name, b, positive=positive))


def _scan_points(scan_points, free):
    """Grid points per searched axis: an int for all, or one per axis (of the three, or of the
    searched ones only)."""
    if isinstance(scan_points, numbers.Integral):
        sp = (int(scan_points),) * len(free)
    else:
        sp = tuple(int(n) for n in scan_points)
        if len(sp) == 3 and len(free) < 3:
            sp = tuple(n for n, k in zip(sp, _NAMES, strict=True) if k in free)
    if len(sp) != len(free) or min(sp) < 2:
        raise ValueError(
            f"scan_points must be an int >= 2 or one per searched axis {list(free)}, "
            f"got {scan_points}"
        )
    return sp


class _Problem(eqx.Module):
    """Objective, energy and ergotropy at one point. Static only, hence hashable: scans and
    gradients of equal settings share their compilations across calls."""

    J: float = eqx.field(static=True)
    objective: str = eqx.field(static=True)
    n_times: int = eqx.field(static=True)
    opts: Any = eqx.field(static=True)
    t_final: float = eqx.field(static=True)
    free: tuple[str, ...] = eqx.field(static=True, default=_NAMES)
    interaction: tuple = eqx.field(static=True, default=(None, None))  # (profile, drift)

    def point(self, x, fixed):
        """A full parameter point from `x` (the free parameters, in order) and the fixed values."""
        return dict(zip(self.free, (x[..., i] for i in range(len(self.free))), strict=True)) | dict(
            fixed
        )

    def trajectory(self, p, ts):
        """`(W(ts), E(ts))` at the point `p` (dict of every physical parameter)."""
        profile, drift = self.interaction
        return _trajectory(dict(p), ts, self.J, dict(profile=profile, drift=drift), self.opts)

    def __call__(self, p):
        """`(objective, E(t_f), W(t_f))` at `p` (dict of every physical parameter)."""
        if self.objective == "ergotropy":
            w, e = self.trajectory(p, jnp.full((1,), self.t_final))
            return w[0], e[0], w[0]
        ts = self.t_final * jnp.arange(1, self.n_times + 1, dtype=float) / self.n_times
        w, e = self.trajectory(p, ts)
        return jnp.max(w / ts), e[-1], w[-1]

    def times(self):
        return self.t_final * np.arange(1, self.n_times + 1) / self.n_times


def _value_and_grads(problem: _Problem, mode: str, x, fixed):
    """`(value, energy, W, d value/dx, d energy/dx)` at one point `x` `(n_free,)`."""

    def f(x):
        v, e, w = problem(problem.point(x, fixed))
        ve = jnp.stack([v, e])
        return ve, (ve, w)

    transform = jax.jacrev if mode == "reverse" else jax.jacfwd
    j, (ve, w) = transform(f, has_aux=True)(x)
    return ve[0], ve[1], w, j[0], j[1]


class _Search(eqx.Module):
    r"""What every phase of the search needs: the problem, the gradient mode, the values held
    fixed and the box $x = x_{lo} + (x_{hi} - x_{lo})\,z$, $z \in [0, 1]^n$."""

    problem: _Problem
    mode: str = eqx.field(static=True)
    fixed: dict
    lo: Any
    span: Any

    def evaluate(self, x):
        """`(value, energy, W, d value/dx, d energy/dx)` at one point `x` `(n_free,)`."""
        return _value_and_grads(self.problem, self.mode, x, self.fixed)


_evaluate_one = eqx.filter_jit(_Search.evaluate)


def _sigmoid(u):
    return 1.0 / (1.0 + jnp.exp(-u))


def _seed_scan(problem, bounds, scan_points, fixed, w_floor, progress):
    """Phase 1: the objective and E(t_f) on a coarse grid over the box.

    **Returns:** `(pts, values, energies, order)`: the flat grid (every parameter, held ones
    included), the objective and the energy there, and the grid indices ranked best first (by
    value, ties such as all-passive points by energy).
    """
    free = problem.free
    axes = {k: np.linspace(*bounds[k], n) for k, n in zip(free, scan_points, strict=True)}
    pts = grid(**axes)
    n_pts = pts[free[0]].size
    pts = pts | {k: np.full(n_pts, float(v)) for k, v in fixed.items()}
    values, energies, _ = scan(problem, pts, chunk_size=512, progress=progress, shard=True)
    ranked = np.where(values > w_floor, values, 0.0)  # below w_floor: round-off, i.e. zero
    order = np.lexsort((-energies, -ranked))
    return pts, values, energies, order


_ADAM_CHUNK = 8  # Adam steps per compiled `lax.scan`; any number of steps reuses it


class _AdamState(eqx.Module):
    """What Adam carries from step to step (all arrays: one compilation for every call)."""

    u: Any  # (n_starts, n_free) unconstrained coordinates
    opt_state: Any
    use_energy: Any  # climbing E(t_f) while no start is inverted
    best_value: Any
    best_x: Any
    steps_left: Any


@eqx.filter_jit
def _adam_chunk(search, w_floor, scale, learning_rate, carry):
    """`_ADAM_CHUNK` Adam steps as one `lax.scan`; steps past `steps_left` change nothing.

    **Returns:** the new carry and, per step, `phase` (0 energy, 1 objective), `value` and `x`
    of the best start and `starts` (the value of every start).
    """
    opt = optax.adam(learning_rate)
    evaluate = jax.vmap(search.evaluate)
    lo, span = search.lo, search.span

    def step(c, _):
        live = c.steps_left > 0
        sig = _sigmoid(c.u)
        x = lo + span * sig
        val, energy, _, g_val, g_energy = evaluate(x)
        # Surrogate phase over once some start is inverted: climb the objective, fresh moments.
        switch = c.use_energy & (jnp.max(val) > w_floor)
        use_energy = c.use_energy & ~switch
        state = jax.tree.map(lambda a, b: jnp.where(switch, a, b), opt.init(c.u), c.opt_state)
        target = jnp.where(use_energy, energy, val)
        g_target = jnp.where(use_energy, g_energy, g_val)
        i = jnp.argmax(target)
        j = jnp.argmax(val)
        better = live & (val[j] > c.best_value)
        # Chain rule to u; Adam minimises, so descend on -target / scale.
        g_u = -g_target * (span * sig * (1.0 - sig)) / scale
        upd, state = opt.update(g_u, state)
        new = _AdamState(
            optax.apply_updates(c.u, upd),
            state,
            use_energy,
            jnp.where(better, val[j], c.best_value),
            jnp.where(better, x[j], c.best_x),
            c.steps_left - 1,
        )
        new = jax.tree.map(lambda a, b: jnp.where(live, a, b), new, c)
        record = dict(phase=jnp.where(use_energy, 0, 1), value=val[i], x=x[i], starts=val)
        return new, record

    with jax.numpy_dtype_promotion("standard"):  # optax mixes int step counts and floats
        return jax.lax.scan(step, carry, length=_ADAM_CHUNK)


def _adam(search, u0, *, use_energy, w_floor, scale, learning_rate, steps, progress):
    r"""Phase 2: multi-start Adam in $u$, $x = x_{lo} + (x_{hi} - x_{lo})\,\sigma(u)$ (bounds
    hold by construction), all starts in one `vmap`, the steps in compiled chunks.

    While `use_energy` is set (no start inverted yet) the starts climb the energy $E(t_f)$;
    the first step at which some start is inverted switches to the objective and restarts
    Adam's moments.

    **Returns:** `(history, best_value, best_x)`: per step `phase`, `value`, `x` and `starts`
    (NumPy arrays, see `_adam_chunk`), and the best point any start reached.
    """
    u0 = jnp.asarray(u0)
    scalars = [jnp.asarray(float(a)) for a in (w_floor, scale, learning_rate)]
    with jax.numpy_dtype_promotion("standard"):
        opt_state = optax.adam(scalars[2]).init(u0)
    carry = _AdamState(
        u0,
        opt_state,
        jnp.asarray(bool(use_energy)),
        jnp.asarray(np.float64(-np.inf)),  # not weakly typed: the carry keeps its types
        jnp.zeros(u0.shape[-1]),
        jnp.asarray(np.int64(steps)),
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="adam", unit="step", dynamic_ncols=True)
    chunks = []
    try:
        for done in range(0, steps, _ADAM_CHUNK):
            carry, record = _adam_chunk(search, *scalars, carry)
            chunks.append(record)
            if bar is not None:
                n = min(_ADAM_CHUNK, steps - done)
                bar.update(n)
                bar.set_postfix(value=f"{float(record['value'][n - 1]):.6g}")
    finally:
        if bar is not None:
            bar.close()
    history = {k: np.concatenate([np.asarray(c[k]) for c in chunks])[:steps] for k in chunks[0]}
    return history, float(carry.best_value), np.asarray(carry.best_x)


def _polish(search, scale, z0, maxiter):
    r"""Phase 3: L-BFGS-B in normalised box coordinates $z \in [0, 1]^n$ (lands on active
    bounds). Each point is evaluated once, value and gradient together.

    **Returns:** `(z, value, evaluations, history)`: the final point, its objective, the
    `{z-bytes: (value, W, d value/dx)}` of every point evaluated, and per iteration the
    objective and the point `x`.
    """
    from scipy.optimize import minimize

    evaluated = {}
    history = {"value": [], "x": []}
    lo, span = search.lo, search.span

    def at(z):
        key = np.asarray(z, dtype=float).tobytes()
        if key not in evaluated:
            x = lo + span * np.clip(z, 0.0, 1.0)
            val, _, w, g_val, _ = _evaluate_one(search, jnp.asarray(x))
            evaluated[key] = (float(val), float(w), np.asarray(g_val, dtype=float))
        return evaluated[key]

    def fun(z):
        val, _, g_val = at(z)
        return -val / scale, -g_val * span / scale

    def callback(intermediate_result):
        history["value"].append(-float(intermediate_result.fun) * scale)
        history["x"].append(lo + span * intermediate_result.x)

    res = minimize(
        fun,
        z0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, 1.0)] * len(z0),
        callback=callback,
        options={"maxiter": maxiter, "ftol": 1e-14, "gtol": 1e-10},
    )
    return np.clip(res.x, 0.0, 1.0), -float(res.fun) * scale, evaluated, history


def optimize_ergotropy(
    J: float,
    t_final: float,
    *,
    T_a: tuple[float, float] | float,
    T_m: tuple[float, float] | float,
    delta: tuple[float, float] | float,
    omega_s: float = 1.0,
    E_R: float = 1.0,
    density: float | None = None,
    coupling: float | None = None,
    gamma_tilde: float | None = None,
    profile: InteractionProfile | str | None = None,
    drift: float | tuple[float, float, float] | None = None,
    objective: Literal["ergotropy", "power"] = "ergotropy",
    steps: int = 40,
    seed: int = 0,
    progress: bool = False,
    scan_points: int | tuple[int, ...] = 10,
    n_starts: int = 3,
    learning_rate: float = 0.15,
    polish_iterations: int = 60,
    n_times: int = 32,
    rtol: float | None = None,
    atol: float | None = None,
    mode: Literal["reverse", "forward", "scaling"] | None = None,
    options: SolverOptions | None = None,
    **solver_kw,
) -> OptimizeResult:
    r"""Maximise $\mathcal W(t_f)$ (or the best mean power) over $T_A$, $T_M$, $\Delta$ in a box.

    The spin starts in its ground state at $t = 0$. Each of $T_A$, $T_M$, $\Delta$ is either
    searched in a box or held fixed. With fixed `density` $nR^3$ and `coupling` $V_0/E_R$ the
    rate scale $\tilde\Gamma \propto T_M^{-3/2}$ follows the motional temperature (eq. D4);
    with `gamma_tilde` it is held fixed instead.
    Method (see the module docstring for why): coarse `vmap` scan, multi-start Adam in
    sigmoid-to-box coordinates (on the energy first if nothing on the grid is inverted), then
    L-BFGS-B polish in the box. The returned point is never worse than the best grid point.

    **Arguments:**
    - `J`: spin quantum number.
    - `t_final`: the charging time $t_f$, in $\hbar/E_R$.
    - `T_a`, `T_m`, `delta`: each a `(lo, hi)` box to search (temperatures $> 0$; the
      detuning may be negative, though eq. (22) needs $\Delta > 0$ for an inverted steady
      state) or a number held fixed. At least one is a box.
    - `omega_s`, `E_R`: fixed parameters of the spin and the gas.
    - `density`, `coupling`, `gamma_tilde`: the rate scale, exactly one of `gamma_tilde` or
      (`density` and `coupling`), as for `SpinGas`.
    - `profile`, `drift`: the interaction profile and the drift of the gas, as for `SpinGas`
      (default: the Gaussian of eq. (D1), the gas at rest).
    - `objective`: `"ergotropy"`: $\mathcal W(t_f)$; `"power"`: $\max_{t \le t_f}
      \mathcal W(t)/t$ over $t_i = t_f i/n$, $i = 1..n$ (`n_times`), i.e. the best mean
      charging power when one may also stop early.
    - `steps`: Adam steps (per start, all starts in one `vmap`).
    - `seed`: seed of the small random jitter of the starts (reproducible).
    - `progress`: tqdm bars for the scan and the steps.
    - `scan_points`: grid points per searched axis (an int, or one per searched axis in the
      order `T_a`, `T_m`, `delta`).
    - `n_starts`: number of best grid points Adam starts from.
    - `learning_rate`: Adam's step in the unconstrained coordinates.
    - `polish_iterations`: L-BFGS-B iteration cap (0 disables the polish).
    - `rtol`, `atol`: ODE tolerances; `mode`: gradient mode of the functionals
      (`"scaling"`: one tangent and the scaling law, cheapest to run and to compile;
      `"forward"`: `diffrax.ForwardMode`, 3 tangents; `"reverse"`: checkpointed adjoint).
      Without `options` the default is `"scaling"`; with `options` its `mode` applies, whose
      own default is `"reverse"`, so pass `mode="scaling"` alongside `options` to keep it.
    - `options` and any other field of `SolverOptions` as a keyword: the solver settings of
      the functionals (see `SolverOptions`; `progress` above is the optimiser's own).

    **Returns:** an `OptimizeResult`.
    """
    start_time = time.perf_counter()
    J = check_spin(J)
    t_final = float(check_real("t_final", t_final, positive=True))
    if objective not in ("ergotropy", "power"):
        raise ValueError(f"objective must be 'ergotropy' or 'power', got {objective!r}")
    given = {
        "T_a": _box_or_value("T_a", T_a, positive=True),
        "T_m": _box_or_value("T_m", T_m, positive=True),
        "delta": _box_or_value("delta", delta, positive=False),
    }
    bounds = {k: v for k, v in given.items() if isinstance(v, tuple)}
    held = {k: v for k, v in given.items() if not isinstance(v, tuple)}
    free = tuple(bounds)
    if not free:
        raise ValueError("at least one of T_a, T_m, delta must be a (lo, hi) box to search")
    omega_s = float(check_real("omega_s", omega_s, positive=True))
    E_R = float(check_real("E_R", E_R, positive=True))
    gamma_tilde, density, coupling = check_rate_scale(gamma_tilde, density, coupling)
    drift = check_drift(drift)
    interaction = (check_profile(profile), None if drift is None else float(drift))
    steps = check_int("steps", steps, minimum=0)
    n_starts = check_int("n_starts", n_starts, minimum=1)
    polish_iterations = check_int("polish_iterations", polish_iterations, minimum=0)
    sp = _scan_points(scan_points, free)

    scale_kw = (
        {"gamma_tilde": gamma_tilde}
        if gamma_tilde is not None
        else {"density": density, "coupling": coupling}
    )
    fixed = {
        k: jnp.asarray(float(v))
        for k, v in (held | {"omega_s": omega_s, "E_R": E_R} | scale_kw).items()
    }
    base = None if options is not None else {"mode": "scaling"}
    opts = solver_options(
        options,
        caller="optimize_ergotropy",
        base=base,
        rtol=rtol,
        atol=atol,
        mode=mode,
        **solver_kw,
    )
    if opts.max_steps is None:
        opts = dataclasses.replace(opts, max_steps=_MAX_STEPS)
    mode = opts.mode
    problem = _Problem(J, objective, int(n_times), opts, t_final, free, interaction)
    lo = np.asarray([bounds[k][0] for k in free])
    span = np.asarray([bounds[k][1] for k in free]) - lo
    search = _Search(problem, mode, fixed, lo, span)
    scale = J * omega_s  # objectives are optimised in units of J omega_s
    # W below w_floor is round-off (a passive state can come out at +1e-16), i.e. zero.
    w_floor = 1e-10 * J * omega_s
    if objective == "power":
        w_floor /= t_final / int(n_times)  # the floor on W / t_i, t_i >= t_f / n

    def all_three(x):
        """`{T_a, T_m, delta}` as floats from the searched values `x` and the held ones."""
        return {k: float(held[k]) if k in held else float(x[free.index(k)]) for k in _NAMES}

    # 1. Coarse scan.
    pts, values, energies, order = _seed_scan(problem, bounds, sp, fixed, w_floor, progress)
    n_eval = values.size
    scan_best = {k: float(pts[k][order[0]]) for k in _NAMES} | {"value": float(values[order[0]])}
    scan_info = {k: pts[k] for k in _NAMES} | {"value": values, "energy": energies}
    scan_info["best"] = scan_best
    x_best = np.asarray([scan_best[k] for k in free])
    v_best = scan_best["value"]

    # 2. Multi-start Adam from the best grid points, jittered (reproducibly) in u.
    x0 = np.stack([pts[k][order[:n_starts]] for k in free], axis=-1)
    n_starts = x0.shape[0]
    z0 = np.clip((x0 - lo) / span, 1e-3, 1 - 1e-3)  # Adam is scale-free: fine near bounds
    rng = np.random.default_rng(seed)
    u0 = np.log(z0 / (1 - z0)) + 0.05 * rng.standard_normal(z0.shape)
    hist = {"phase": [], "value": [], "x": []}
    starts = np.zeros((0, n_starts))
    if steps:
        adam_hist, adam_v, adam_x = _adam(
            search,
            u0,
            use_energy=bool(values.max() <= w_floor),
            w_floor=w_floor,
            scale=scale,
            learning_rate=learning_rate,
            steps=steps,
            progress=progress,
        )
        n_eval += steps * n_starts
        for k in hist:
            hist[k].extend(adam_hist[k])
        starts = adam_hist["starts"]
        if adam_v > v_best:
            x_best, v_best = adam_x, adam_v

    # 3. L-BFGS-B polish of the best candidate so far.
    final = None
    if polish_iterations and v_best > w_floor:
        z0 = (x_best - lo) / span
        z_pol, v_pol, evaluated, pol_hist = _polish(search, scale, z0, polish_iterations)
        final = evaluated.get(z0.tobytes())  # the polish evaluates its start first
        n_eval += len(evaluated)
        hist["phase"].extend([2] * len(pol_hist["value"]))
        hist["value"].extend(pol_hist["value"])
        hist["x"].extend(pol_hist["x"])
        if v_pol > v_best:
            x_best, v_best = lo + span * z_pol, v_pol
            final = evaluated.get(z_pol.tobytes())

    # Final report at x_best.
    if final is None:
        val, _, w, g_val, _ = _evaluate_one(search, jnp.asarray(x_best))
        final = (float(val), float(w), np.asarray(g_val, dtype=float))
        n_eval += 1
    v_final, w_final, grad_x = final
    z_best = (x_best - lo) / span
    active = {name: "fixed" for name in held}
    for k, name in enumerate(free):
        if z_best[k] <= 1e-9:
            active[name] = "lower"
        elif z_best[k] >= 1 - 1e-9:
            active[name] = "upper"
        else:
            active[name] = None
    if objective == "power":
        ts = problem.times()
        w_ts, _ = problem.trajectory(problem.point(jnp.asarray(x_best), fixed), ts)
        t_best = float(ts[int(np.argmax(np.asarray(w_ts) / ts))])
        power = v_final
    else:
        t_best, power = t_final, w_final / t_final

    path = [all_three(x) for x in hist["x"]]
    history = {
        "phase": np.asarray(hist["phase"], dtype=int),
        "value": np.asarray(hist["value"], dtype=float),
    } | {k: np.asarray([p[k] for p in path], dtype=float) for k in _NAMES}
    history["starts"] = np.asarray(starts).reshape(-1, n_starts)
    best = all_three(x_best)
    return OptimizeResult(
        T_a=best["T_a"],
        T_m=best["T_m"],
        delta=best["delta"],
        ergotropy=float(w_final),
        power=power,
        t_best=t_best,
        objective=objective,
        value=float(v_final),
        active=active,
        gradient={name: float(grad_x[k]) for k, name in enumerate(free)},
        history=history,
        scan=scan_info,
        seed=int(seed),
        bounds=bounds,
        n_evaluations=int(n_eval),
        wall_time=time.perf_counter() - start_time,
    )
