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
import math
import numbers
import time
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _config  # noqa: F401
from ._functionals import _options, _trajectory
from ._scan import grid, scan
from ._validation import check_rate_scale, check_real, check_spin

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
        if len(b) != 2:
            raise ValueError(f"{name} must be a (lo, hi) pair or a number, got {b!r}")
        lo = float(check_real(name, b[0], positive=positive))
        hi = float(check_real(name, b[1], positive=positive))
        if not hi > lo:
            raise ValueError(f"{name} bounds must satisfy lo < hi, got ({lo}, {hi})")
        return lo, hi
    if isinstance(b, np.ndarray | jax.Array) and np.ndim(b) != 0:
        raise ValueError(f"{name} must be a (lo, hi) pair or a number, got shape {np.shape(b)}")
    return float(check_real(name, b, positive=positive))


class _Problem(eqx.Module):
    """Objective, energy and ergotropy at one point. Static only, hence hashable: scans and
    gradients of equal settings share their compilations across calls."""

    J: float = eqx.field(static=True)
    objective: str = eqx.field(static=True)
    n_times: int = eqx.field(static=True)
    opts: Any = eqx.field(static=True)
    t_final: float = eqx.field(static=True)
    free: tuple[str, ...] = eqx.field(static=True, default=_NAMES)

    def point(self, x, fixed):
        """A full parameter point from `x` (the free parameters, in order) and the fixed values."""
        return dict(zip(self.free, (x[..., i] for i in range(len(self.free))), strict=True)) | dict(
            fixed
        )

    def trajectory(self, p, ts):
        """`(W(ts), E(ts))` at the point `p` (dict of every physical parameter)."""
        kw = dict(
            J=self.J,
            T_a=None,
            T_m=None,
            delta=None,
            omega_s=1.0,
            E_R=1.0,
            density=None,
            coupling=None,
            gamma_tilde=None,
        )
        return _trajectory(dict(p), ts, kw, self.opts)

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


@eqx.filter_jit
def _evaluate(problem: _Problem, mode: str, x, fixed):
    """`(value, energy, W, d value/dx, d energy/dx)` at a batch of points `x` `(k, n_free)`."""

    def f(x):
        v, e, w = problem(problem.point(x, fixed))
        ve = jnp.stack([v, e])
        return ve, (ve, w)

    transform = jax.jacrev if mode == "reverse" else jax.jacfwd

    def one(x):
        j, (ve, w) = transform(f, has_aux=True)(x)
        return ve[0], ve[1], w, j[0], j[1]

    return jax.vmap(one)(x)


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
    objective: Literal["ergotropy", "power"] = "ergotropy",
    steps: int = 40,
    seed: int = 0,
    progress: bool = False,
    scan_points: int | tuple[int, ...] = 10,
    n_starts: int = 3,
    learning_rate: float = 0.15,
    polish_iterations: int = 60,
    n_times: int = 32,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    mode: Literal["reverse", "forward", "scaling"] = "scaling",
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
      (`"scaling"`, default: one tangent and the scaling law, cheapest to run and to compile;
      `"forward"`: `diffrax.ForwardMode`, 3 tangents; `"reverse"`: checkpointed adjoint).

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
    steps, n_starts, polish_iterations = int(steps), int(n_starts), int(polish_iterations)
    if steps < 0 or n_starts < 1 or polish_iterations < 0:
        raise ValueError("steps and polish_iterations must be >= 0 and n_starts >= 1")
    if isinstance(scan_points, numbers.Integral):
        sp = (int(scan_points),) * len(free)
    else:
        sp = tuple(int(n) for n in scan_points)
        if len(sp) == 3 and len(free) < 3:
            sp = tuple(n for n, k in zip(sp, _NAMES, strict=True) if k in bounds)
    if len(sp) != len(free) or min(sp) < 2:
        raise ValueError(
            f"scan_points must be an int >= 2 or one per searched axis {list(free)}, "
            f"got {scan_points}"
        )

    scale_kw = (
        {"gamma_tilde": gamma_tilde}
        if gamma_tilde is not None
        else {"density": density, "coupling": coupling}
    )
    fixed = {
        k: jnp.asarray(float(v))
        for k, v in (held | {"omega_s": omega_s, "E_R": E_R} | scale_kw).items()
    }
    problem = _Problem(
        J, objective, int(n_times), _options(rtol, atol, 16384, mode, None), t_final, free
    )
    n_free = len(free)
    lo = jnp.asarray([bounds[k][0] for k in free])
    hi = jnp.asarray([bounds[k][1] for k in free])
    n_eval = 0

    # 1. Coarse scan.
    axes = {k: np.linspace(*bounds[k], n) for k, n in zip(free, sp, strict=True)}
    pts = grid(**axes)
    n_pts = pts[free[0]].size
    pts = pts | {k: np.full(n_pts, float(v)) for k, v in fixed.items()}
    values, energies, _ = scan(problem, pts, chunk_size=512, progress=progress, shard=True)
    n_eval += values.size
    # W below w_floor is round-off (a passive state can come out at +1e-16), i.e. zero.
    w_floor = 1e-10 * J * float(omega_s)
    if objective == "power":
        w_floor /= t_final / int(n_times)  # the floor on W / t_i, t_i >= t_f / n
    ranked = np.where(values > w_floor, values, 0.0)
    order = np.lexsort((-energies, -ranked))  # by value, ties (e.g. all zero) by energy
    scan_best = {k: float(pts[k][order[0]]) for k in _NAMES} | {"value": float(values[order[0]])}

    def _all_three(x):
        """`{T_a, T_m, delta}` as floats from the searched values `x` and the held ones."""
        return {k: float(held[k]) if k in held else float(x[free.index(k)]) for k in _NAMES}

    scan_info = {k: pts[k] for k in _NAMES} | {"value": values, "energy": energies}
    scan_info["best"] = scan_best

    # One compiled function serves Adam, the polish and the final report: values, energies and
    # their gradients in the physical coordinates x (the searched parameters, in the order of
    # `free`) for a batch of points.
    lo_np, hi_np = np.asarray(lo), np.asarray(hi)
    span = hi_np - lo_np
    scale = J * float(omega_s)  # objectives are optimised in units of J omega_s

    def run_batch(x):
        out = _evaluate(problem, mode, jnp.asarray(x), fixed)
        return jax.tree.map(np.asarray, out)

    # 2. Multi-start Adam in u-space, x = lo + (hi - lo) sigmoid(u): bounds hold by construction.
    x0 = np.stack([pts[k][order[:n_starts]] for k in free], axis=-1)
    n_starts = x0.shape[0]
    z0 = np.clip((x0 - lo_np) / span, 1e-3, 1 - 1e-3)  # Adam is scale-free: fine near bounds
    rng = np.random.default_rng(seed)
    u = np.log(z0 / (1 - z0)) + 0.05 * rng.standard_normal(z0.shape)

    opt = optax.adam(learning_rate)
    state = opt.init(jnp.asarray(u))
    hist = {k: [] for k in ("phase", "value", *_NAMES)}
    starts_hist = []
    use_energy = bool(values.max() <= w_floor)
    best_x, best_v = None, -math.inf
    bar = None
    if progress and steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="adam", unit="step", dynamic_ncols=True)
    for _ in range(steps):
        sig = 1.0 / (1.0 + np.exp(-u))
        x = lo_np + span * sig
        val, energy, _, g_val, g_energy = run_batch(x)
        n_eval += n_starts
        if use_energy and val.max() > w_floor:
            # Surrogate phase over: some start is inverted, climb the ergotropy from now on.
            use_energy = False
            state = opt.init(jnp.asarray(u))
        target, g_target = (energy, g_energy) if use_energy else (val, g_val)
        i = int(np.argmax(target))
        hist["phase"].append(0 if use_energy else 1)
        hist["value"].append(float(val[i]))
        for name, v in _all_three(x[i]).items():
            hist[name].append(v)
        starts_hist.append(val)
        j = int(np.argmax(val))
        if val[j] > best_v:
            best_v, best_x = float(val[j]), x[j]
        # Chain rule to u; Adam minimises, so descend on -target / scale.
        g_u = -g_target * (span * sig * (1.0 - sig)) / scale
        with jax.numpy_dtype_promotion("standard"):  # optax mixes int step counts and floats
            upd, state = opt.update(jnp.asarray(g_u), state)
            u = np.asarray(optax.apply_updates(jnp.asarray(u), upd))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(value=f"{val[i]:.6g}")
    if bar is not None:
        bar.close()

    # Candidates so far: the best grid point and the best Adam iterate.
    x_best = np.asarray([scan_best[k] for k in free])
    v_best = scan_best["value"]
    if best_v > v_best:
        x_best, v_best = best_x, best_v

    # 3. L-BFGS-B polish in normalised box coordinates z in [0, 1]^n (lands on active bounds).
    if polish_iterations and v_best > w_floor:
        from scipy.optimize import minimize

        cache = {}

        def fun(z):
            x = lo_np + span * np.clip(z, 0.0, 1.0)
            val, _, _, g_val, _ = run_batch(np.broadcast_to(x, (n_starts, n_free)))
            cache[tuple(z)] = val[0]
            return -float(val[0]) / scale, -np.asarray(g_val[0], dtype=float) * span / scale

        def callback(intermediate_result):
            z = intermediate_result.x
            hist["phase"].append(2)
            hist["value"].append(-float(intermediate_result.fun) * scale)
            for name, v in _all_three(lo_np + span * z).items():
                hist[name].append(v)

        res = minimize(
            fun,
            (x_best - lo_np) / span,
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * n_free,
            callback=callback,
            options={"maxiter": polish_iterations, "ftol": 1e-14, "gtol": 1e-10},
        )
        n_eval += int(res.nfev) * n_starts
        v_pol = -float(res.fun) * scale
        if v_pol > v_best:
            x_best, v_best = lo_np + span * np.clip(res.x, 0.0, 1.0), v_pol

    # Final report at x_best.
    z_best = (x_best - lo_np) / span
    val, _, w, g_val, _ = run_batch(np.broadcast_to(x_best, (n_starts, n_free)))
    n_eval += n_starts
    v_final, w_final, grad_x = float(val[0]), float(w[0]), g_val[0]
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

    history = {k: np.asarray(v) for k, v in hist.items()}
    history["starts"] = np.asarray(starts_hist).reshape(-1, n_starts)
    best = _all_three(x_best)
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
