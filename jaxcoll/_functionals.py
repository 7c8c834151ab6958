r"""Trajectory functionals of the spin model as differentiable functions of physical parameters.

Each functional takes `params`, a dict of physical parameters of the spin model of eq. (17)-(19)
(any of `T_a`, `T_m`, `delta`, `omega_s`, `E_R`, `density`, `coupling`, `gamma_tilde`), plus
keyword values for the ones held fixed: every parameter may go either way, e.g.
`ergotropy_at({"T_m": 0.05, "delta": 0.4}, 3.0, J=20, T_a=3.0, density=0.01, coupling=1.0)`
differentiates in $T_M$ and $\Delta$ only. The keywords are those of `spin_model`, including the
interaction shape (`profile=`, `drift=`, as for `SpinGas`); the solver settings come as
`options=` or as keywords named like the fields of `SolverOptions`. The spin starts in its
ground state at $t = 0$ and evolves under eq. (18); only the population sector is needed (the
state stays diagonal): it is propagated exactly for short ladders, integrated by `evolve`
otherwise (`SolverOptions.solver`).
Everything in `params` is a leaf that `jax.grad`, `jax.jacfwd` and `jax.vmap` see; with `density`
and `coupling` the rate prefactor follows the motional temperature, $\tilde\Gamma \propto
T_M^{-3/2}$ (eq. D4), so $\partial/\partial T_M$ includes it.

Time is in the model's unit $\hbar/E_R$ (not $1/\tilde\Gamma$ as in `ergotropy_curve`).

**Gradients.** Three modes, all through `evolve`:

- `mode="reverse"` (default) differentiates through the ODE solve with Diffrax's
  `RecursiveCheckpointAdjoint`: reverse mode whose memory is bounded by the checkpoint budget
  (`checkpoints`, default: Diffrax's scheme for `max_steps`). Cost independent of the number
  of parameters; a smaller checkpoint budget trades memory for recomputation.
- `mode="forward"` uses `diffrax.ForwardMode`: tangents ride along with the solution, no tape;
  cost grows with the number of parameters. Differentiate it with `jax.jvp`/`jax.jacfwd`
  (reverse mode through it raises).
- `mode="scaling"` uses the structure of the problem (see `_solve_scaling`): all parameters
  act through the two rates, the flow depends on them only through $\Gamma_\pm t$, so one
  forward tangent plus Euler's theorem gives the derivative with respect to every parameter.
  The cost does not grow with the number of parameters (one tangent), it works under `grad`,
  `jvp` and `vmap`, and it compiles faster than the other two (a smaller graph); it is the
  derivative of the exact flow to solver accuracy, where the other two are exact derivatives
  of the discrete solver.

What each mode costs, in solves per gradient, is measured by `benchmarks/bench_gradients.py`
(numbers in benchmarks/README.md, "Gradients").

On the exact path (`solver="exponential"`, the default for $d \le 64$; see `_expm.py`) the
populations are propagated without time steps, and all three modes give the derivative of the
exact flow (from forward-mode through the series, whatever the transform).

`value_and_grad` picks the right transform for each mode. Tolerances tighter than about
`rtol=1e-11` are not useful in reverse mode: the step-size control then runs on round-off and
the recomputation of checkpointed steps is not bitwise identical to the first pass.

**Finiteness.** Gradients are finite everywhere: where $\mathcal W = 0$ (state not yet
inverted, the passive branch of eq. (23) has zero gradient) and where rates underflow to zero
(the rates and their derivatives are then exactly zero, and so is the generator).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Literal

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from . import _config, _expm  # noqa: F401  (_config: float64 on import)
from ._evolve import _times_from_zero, evolve
from ._observables import _ergotropy_ascending, ergotropy_populations
from ._options import _FIELDS as _OPTION_FIELDS, SolverOptions, solver_options
from ._profiles import InteractionProfile, check_drift, check_profile
from ._spin import SpinGas, tridiagonal_apply
from ._validation import check_int, check_real, is_concrete

__all__ = [
    "PARAM_NAMES",
    "spin_model",
    "ergotropy_at",
    "ergotropy_trajectory",
    "energy_trajectory",
    "max_ergotropy",
    "charging_power",
    "max_charging_power",
    "final_energy",
    "value_and_grad",
]

PARAM_NAMES = ("T_a", "T_m", "delta", "omega_s", "E_R", "density", "coupling", "gamma_tilde")

Params = Mapping[str, ArrayLike]

Mode = Literal["reverse", "forward", "scaling"]
_MODES = ("reverse", "forward", "scaling")

# Solver settings of the functionals where the caller gives none: `SolverOptions`' defaults,
# with the step budget for which the reverse-mode checkpoints are laid out.
_MAX_STEPS = 16384


def spin_model(
    params: Mapping[str, ArrayLike],
    *,
    J: float,
    T_a: ArrayLike | None = None,
    T_m: ArrayLike | None = None,
    delta: ArrayLike | None = None,
    omega_s: ArrayLike = 1.0,
    E_R: ArrayLike = 1.0,
    density: ArrayLike | None = None,
    coupling: ArrayLike | None = None,
    gamma_tilde: ArrayLike | None = None,
    profile: InteractionProfile | str | None = None,
    drift: ArrayLike | None = None,
) -> SpinGas:
    r"""The `SpinGas` of eq. (17)-(19) with `params` overriding the keyword values.

    Its keywords are the fixed physical parameters that every trajectory functional
    (`ergotropy_at`, ...) and `optimize_ergotropy` take by keyword as well.

    **Arguments:**
    - `params`: dict with any of `T_a`, `T_m`, `delta`, `omega_s`, `E_R`, `density`,
      `coupling`, `gamma_tilde` (may be empty).
    - `J`: spin quantum number (static).
    - `T_a`, `T_m`, `delta`, `omega_s`, `E_R`, `density`, `coupling`, `gamma_tilde`: values
      for those not in `params`. `T_a`, `T_m` and `delta` must each be given one way or the
      other. Exactly one rate scale: `gamma_tilde`, or `density` and `coupling`
      ($\tilde\Gamma$ then follows $T_M$, eq. D4).
    - `profile`: the interaction profile (an `InteractionProfile` or its name; default the
      Gaussian of eq. (D1)), as for `SpinGas`.
    - `drift`: drift speed $m|\mathbf u|R/\hbar \ge 0$ of the gas, or its 3-vector (default:
      at rest), as for `SpinGas`.

    **Returns:** a `SpinGas`.
    """
    _check_params(params)
    fixed = dict(T_a=T_a, T_m=T_m, delta=delta, omega_s=omega_s, E_R=E_R, density=density)
    fixed |= dict(coupling=coupling, gamma_tilde=gamma_tilde, profile=profile, drift=drift)
    return SpinGas(J, **_resolve(params, fixed))


# The fixed physical keywords (`spin_model`'s, J aside) and their defaults.
_MODEL_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(spin_model).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "J"
}
# Keywords that are solver settings: the fields of `SolverOptions` and the deprecated `method`.
_SOLVER_KEYWORDS = (*_OPTION_FIELDS, "method")


def _check_params(params):
    if not isinstance(params, Mapping):
        raise TypeError(
            f"params must be a dict of physical parameters, got {type(params).__name__}"
        )
    unknown = sorted(set(params) - set(PARAM_NAMES))
    if unknown:
        raise ValueError(f"params has unknown keys {unknown}; allowed: {list(PARAM_NAMES)}")


def _resolve(params, fixed) -> dict:
    """The `SpinGas` keyword values: `params` entries over the `fixed` (keyword) ones, which
    default to `spin_model`'s defaults."""
    kw = _MODEL_DEFAULTS | dict(fixed)
    missing = [k for k in ("T_a", "T_m", "delta") if k not in params and kw[k] is None]
    if missing:
        raise ValueError(
            f"T_a, T_m and delta must each be given, in params or by keyword; missing {missing}"
        )
    values = {k: kw[k] for k in ("omega_s", "E_R", "T_a", "T_m", "delta")}
    given = {k for k in ("gamma_tilde", "density", "coupling") if k in params or kw[k] is not None}
    if "gamma_tilde" in given and given & {"density", "coupling"}:
        raise ValueError(
            "give exactly one rate scale: gamma_tilde, or density and coupling (in params or "
            f"by keyword); got {sorted(given)}"
        )
    if "gamma_tilde" in given:
        values["gamma_tilde"] = params.get("gamma_tilde", kw["gamma_tilde"])
    else:
        values["density"] = params.get("density", kw["density"])
        values["coupling"] = params.get("coupling", kw["coupling"])
    for k in ("omega_s", "E_R", "T_a", "T_m", "delta"):
        if k in params:
            values[k] = params[k]
    return values | {"profile": kw["profile"], "drift": kw["drift"]}


def _split(caller, options, rtol, atol, kwargs) -> tuple[dict, SolverOptions]:
    """A functional's keyword arguments split into the fixed physical parameters (those of
    `spin_model`) and the solver settings (`SolverOptions`); any other name is a `TypeError`."""
    unknown = sorted(set(kwargs) - set(_MODEL_DEFAULTS) - set(_SOLVER_KEYWORDS))
    if unknown:
        raise TypeError(
            f"{caller}() got unexpected keyword arguments {unknown}; it takes the physical "
            f"parameters of spin_model {list(_MODEL_DEFAULTS)} and the fields of SolverOptions"
        )
    fixed = {k: v for k, v in kwargs.items() if k in _MODEL_DEFAULTS}
    solver_kw = {k: v for k, v in kwargs.items() if k not in _MODEL_DEFAULTS}
    opts = solver_options(options, caller=caller, rtol=rtol, atol=atol, **solver_kw)
    if opts.max_steps is None:
        opts = dataclasses.replace(opts, max_steps=_MAX_STEPS)
    return fixed, opts


def _as_float(x):
    """A floating array; Python numbers become the default float dtype (not weakly typed)."""
    if isinstance(x, jax.Array | np.ndarray) and jnp.issubdtype(x.dtype, jnp.floating):
        return jnp.asarray(x)
    return jnp.asarray(x, dtype=jnp.result_type(float))


def _for_evolve(opts: SolverOptions) -> SolverOptions:
    """`opts` as `evolve` takes them: the adaptive solver; the scaling mode's primal solve
    differentiates as the reverse mode would (its derivative comes from `_solve_scaling_jvp`)."""
    solver = None if opts.exponential is None else opts.solver
    mode = "reverse" if opts.mode == "scaling" else opts.mode
    return dataclasses.replace(opts, solver=solver, mode=mode)


@eqx.filter_jit
def _solve(model: SpinGas, ts: Float[Array, " n"], opts: SolverOptions) -> Float[Array, "2 n"]:
    """`[W(ts), E(ts)]` for the spin starting in its ground state at `ts[0]`."""
    p0 = jnp.zeros(model.dim, dtype=ts.dtype).at[0].set(1.0)
    res = evolve(model, p0, ts, options=_for_evolve(opts), observables_only=True)
    # One output array: every functional then pulls back a dense cotangent through the same
    # compiled reverse pass, whichever of W and E it uses.
    return jnp.stack([res.ergotropy, res.energy])


@eqx.filter_jit
def _solve_exponential(model: SpinGas, ts: Float[Array, " n"], opts: SolverOptions):
    """`_solve` by exact propagation (uniformisation, `_expm.py`): no time steps; every mode's
    derivative is the derivative of the exact flow (`propagate`'s `custom_jvp`)."""
    pops = _expm.from_ground(*model.rates(), ts, model.dim, opts.atol)
    eps = model.energies()
    return jnp.stack([_ergotropy_ascending(pops, eps), pops @ eps])


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _solve_scaling(model: SpinGas, ts: Float[Array, " n"], opts: SolverOptions):
    r"""`_solve` with the derivative of the exact flow, from one tangent and a scaling law.

    The populations obey $\dot P = (\Gamma_+ L_+ + \Gamma_- L_-)P$, so any observable
    $O(t) \in \{\mathcal W, E\}$ of the ground-state start depends on the rates only through
    $\Gamma_\pm\tau$, $\tau = t - t_0$. With $\ell_\pm = \ln\Gamma_\pm$ and
    $\beta_\pm = \partial O/\partial\ell_\pm$ (finite also where a rate underflows, where
    it is 0), Euler's theorem for this homogeneity gives
    $$\beta_+ + \beta_- = \tau\,\dot O(t),$$
    with $\dot O$ from the generator at the computed state. One forward-mode tangent along
    $T_A$, scaled so that $dA = 1$, moves only the ancilla factors,
    $d\ell_+ = -\sigma(A)$ and $d\ell_- = \sigma(-A)$, and yields
    $s = -\sigma(A)\beta_+ + \sigma(-A)\beta_-$; hence $\beta_- = s + \sigma(A)\tau\dot O$
    and $\beta_+ = \tau\dot O - \beta_-$. The derivative along any tangent of the model is then
    $$dO = \beta_+ d\ell_+ + \beta_- d\ell_- + \partial_{\omega_S}O|_P\,d\omega_S
      + \dot O\,(dt - dt_0),$$
    with $d\ell_\pm$ from `log_rates` (cheap). Cost: one solve with one tangent, whatever the
    number of parameters; reverse mode transposes only the last formula (no adjoint solve, no
    tape). This is the derivative of the exact flow, accurate to the solver tolerance (the
    `"reverse"`/`"forward"` modes differentiate the discrete solver instead).
    """
    return _solve(model, ts, opts)


def _flow_with_populations(model, ts, opts):
    p0 = jnp.zeros(model.dim, dtype=ts.dtype).at[0].set(1.0)
    res = evolve(model, p0, ts, options=_for_evolve(opts), adjoint=diffrax.ForwardMode())
    return jnp.stack([res.ergotropy, res.energy]), res.populations


@_solve_scaling.defjvp
def _solve_scaling_jvp(opts, primals, tangents):
    model, ts = primals
    dmodel, dts = tangents
    A = model.A
    # Tangent along T_a with dA = 1: dT_a = 1 / (dA/dT_a) = -T_a^2 / omega_a.
    omega_a = model.omega_a
    safe = jnp.where(omega_a == 0, jnp.ones_like(omega_a), omega_a)
    v = jax.tree.map(jnp.zeros_like, model)
    v = eqx.tree_at(lambda m: m.T_a, v, -(model.T_a**2) / safe)
    (we, pops), (s, _) = jax.jvp(lambda m: _flow_with_populations(m, ts, opts), (model,), (v,))

    # Time derivatives of W and E at the computed states: dP/dt = L P.
    dp = tridiagonal_apply(*model.population_generator(), pops)
    eps = model.energies()
    w_dot = jax.vmap(lambda p, q: jax.jvp(lambda p: ergotropy_populations(p, eps), (p,), (q,))[1])(
        pops, dp
    )
    o_dot = jnp.stack([w_dot, dp @ eps])
    tau = ts - ts[0]
    beta_m = s + jax.nn.sigmoid(A) * tau * o_dot
    beta_m = jnp.where(omega_a == 0, jnp.zeros_like(beta_m), beta_m)  # degenerate: no ratio info
    beta_p = tau * o_dot - beta_m

    # Linear in the incoming tangents from here on.
    # With coupling = 0 the rates vanish (beta = 0) and ln(coupling^2) has an infinite
    # derivative: take the log-derivatives at coupling = 1 there (double where), 0 * finite.
    safe_model = model
    if model.coupling is not None:
        c = model.coupling
        safe_model = eqx.tree_at(
            lambda m: m.coupling, model, jnp.where(c == 0, jnp.ones_like(c), c)
        )
    _, (dl_p, dl_m) = jax.jvp(lambda m: m.log_rates(), (safe_model,), (dmodel,))
    m_levels = model.m
    w_omega = jax.vmap(
        lambda p: jax.jvp(lambda e: ergotropy_populations(p, e), (eps,), (m_levels,))[1]
    )(pops)
    o_omega = jnp.stack([w_omega, pops @ m_levels])
    d_out = beta_p * dl_p + beta_m * dl_m + o_omega * dmodel.omega_s + o_dot * (dts - dts[0])
    return we, d_out


def _trajectory(params, ts, J, fixed, opts):
    """`(W(ts), E(ts))` from the ground state at t = 0, all inputs canonicalised.

    The model parameters are packed into one vector and sliced back. Under `jvp` or `vmap` all
    of them then carry a tangent or a batch axis as soon as one does, so the solve's
    transformed graph does not depend on which parameters are differentiated or batched, and
    every functional with the same number of times reuses one compilation. (The time grid is
    left out: tying it to the parameters would batch the solver's clock under `vmap`.)
    """
    _check_params(params)
    grid = _times_from_zero(ts)
    values = _resolve(params, fixed)
    profile = check_profile(values.pop("profile"))
    values["drift"] = check_drift(values["drift"])  # a 3-vector becomes its length
    names = [k for k, v in values.items() if v is not None]
    scalars = []
    for k in names:
        v = values[k]
        if not isinstance(v, jax.Array | np.ndarray | float | int | np.floating | np.integer):
            raise TypeError(f"{k} must be a real number, got {type(v).__name__}")
        v = _as_float(v)
        if v.ndim != 0:
            raise ValueError(
                f"{k} must be a scalar (vmap the functional for many values), got shape {v.shape}"
            )
        scalars.append(v)
    packed = jnp.stack(scalars)
    model = SpinGas(J, profile=profile, **{k: packed[i] for i, k in enumerate(names)})
    if _expm.chosen(opts.exponential, model.dim, opts.dtype):
        we = _solve_exponential(model, grid, opts)
    elif opts.mode == "scaling":
        we = _solve_scaling(model, grid, opts)
    else:
        we = _solve(model, grid, opts)
    return we[0, 1:], we[1, 1:]


def _smooth_max(x, temperature):
    if temperature is None:
        return jnp.max(x)
    tau = check_real("temperature", temperature, positive=True)
    return tau * jax.nn.logsumexp(x / tau)


def ergotropy_trajectory(
    params: Params, ts: ArrayLike, *, J: float, rtol=None, atol=None, options=None, **kwargs
) -> Float[Array, " n"]:
    r"""Ergotropy $\mathcal W(t_i)$ of eq. (23), ground-state start at $t = 0$.

    **Arguments:**
    - `params`: physical parameters (dict, see `spin_model`); differentiable.
    - `ts`: times $t_i \ge 0$, strictly increasing, in $\hbar/E_R$.
    - `J`: spin quantum number (static; dimension $2J+1$).
    - `rtol`, `atol`, `options`: the solver settings (`SolverOptions`).
    - `**kwargs`: the parameters not in `params`, held fixed, by the keywords of `spin_model`
      (`T_a=`, ..., `profile=`, `drift=`), and any field of `SolverOptions` (`mode=`,
      `max_steps=`, `solver=`, ...; here `max_steps` defaults to 16384).

    **Returns:** $\mathcal W(t_i)$, shape `(n,)`.
    """
    return _trajectory(params, ts, J, *_split("ergotropy_trajectory", options, rtol, atol, kwargs))[
        0
    ]


def energy_trajectory(
    params: Params, ts: ArrayLike, *, J: float, rtol=None, atol=None, options=None, **kwargs
) -> Float[Array, " n"]:
    r"""Mean energy $E(t_i) = \sum_m \omega_S m\,P_m(t_i)$, ground-state start at $t = 0$.

    **Arguments:** as for `ergotropy_trajectory`.

    **Returns:** $E(t_i)$, shape `(n,)`.
    """
    return _trajectory(params, ts, J, *_split("energy_trajectory", options, rtol, atol, kwargs))[1]


def _at(params, t, J, fixed, opts):
    t = _as_float(check_real("t", t, positive=True))
    if t.ndim != 0:
        raise ValueError(f"t must be a scalar time, got shape {t.shape}; use *_trajectory")
    w, e = _trajectory(params, t[None], J, fixed, opts)
    return w[0], e[0], t


def ergotropy_at(
    params: Params, t: ArrayLike, *, J: float, rtol=None, atol=None, options=None, **kwargs
) -> Float[Array, ""]:
    r"""Ergotropy $\mathcal W(t)$ (eq. 23) at one time $t > 0$, ground-state start at $t = 0$.

    $$\mathcal W(t) = \sum_i \varepsilon_i^\uparrow\big[P_i(t) - P_i^\downarrow(t)\big],
      \qquad \dot P = \mathcal L(T_A, T_M, \Delta)\,P,\quad P(0) = e_0 .$$

    Zero (with zero gradient) while the state is passive, in particular wherever eq. (22)
    fails.

    **Arguments:**
    - `params`: physical parameters (dict, see `spin_model`); differentiable.
    - `t`: the time, in $\hbar/E_R$; differentiable.
    - `J`: spin quantum number (static; dimension $2J+1$).
    - `rtol`, `atol`, `options`: the solver settings (`SolverOptions`).
    - `**kwargs`: the parameters not in `params`, held fixed, by the keywords of `spin_model`
      (`T_a=`, ..., `profile=`, `drift=`), and any field of `SolverOptions` (`mode=`,
      `max_steps=`, `solver=`, ...; here `max_steps` defaults to 16384).

    **Returns:** $\mathcal W(t)$, a scalar.
    """
    return _at(params, t, J, *_split("ergotropy_at", options, rtol, atol, kwargs))[0]


def charging_power(
    params: Params, t: ArrayLike, *, J: float, rtol=None, atol=None, options=None, **kwargs
) -> Float[Array, ""]:
    r"""Mean charging power $\mathcal W(t)/t$ from the ground state, at one time $t > 0$.

    **Arguments:** as for `ergotropy_at`.

    **Returns:** $\mathcal W(t)/t$, a scalar.
    """
    w, _, t = _at(params, t, J, *_split("charging_power", options, rtol, atol, kwargs))
    return w / t


def final_energy(
    params: Params, t: ArrayLike, *, J: float, rtol=None, atol=None, options=None, **kwargs
) -> Float[Array, ""]:
    r"""Mean energy $E(t) = \mathrm{tr}\,\rho(t) h_S$ at one time, ground-state start.

    Starts at $-J\omega_S$; smooth in all parameters and never flat where rates are nonzero,
    which makes it a useful surrogate where the ergotropy is identically zero.

    **Arguments:** as for `ergotropy_at`.

    **Returns:** $E(t)$, a scalar (energy units).
    """
    return _at(params, t, J, *_split("final_energy", options, rtol, atol, kwargs))[1]


def _window(t_window, n_times):
    if isinstance(t_window, tuple | list) and len(t_window) == 2:
        t0, t1 = t_window
        t0 = check_real("t_window", t0, nonnegative=True)
        t1 = check_real("t_window", t1, positive=True)
        if is_concrete(t0) and is_concrete(t1) and not bool(jnp.all(t1 > t0)):
            raise ValueError(
                f"t_window must be (t_start, t_end) with t_end > t_start, got {t_window}"
            )
        n_times = check_int("n_times", n_times, minimum=2)
        frac = jnp.linspace(0.0, 1.0, n_times)
        return _as_float(t0) + (_as_float(t1) - _as_float(t0)) * frac
    return _as_float(t_window)


def max_ergotropy(
    params: Params,
    t_window: tuple[ArrayLike, ArrayLike] | ArrayLike,
    *,
    J: float,
    n_times: int = 65,
    temperature: float | None = None,
    rtol=None,
    atol=None,
    options=None,
    **kwargs,
) -> Float[Array, ""]:
    r"""Largest ergotropy over a time window, $\max_{t \in \text{window}} \mathcal W(t)$.

    The window is sampled at `n_times` equally spaced times (or at the times given). With
    `temperature=None` the exact maximum over the samples is returned; its gradient is the
    gradient at the maximising sample (a valid subgradient; where samples tie, JAX shares it
    equally). With `temperature` $\tau > 0$ the smooth maximum

    $$\tau\ln\sum_i e^{\mathcal W(t_i)/\tau} \in \big[\max_i \mathcal W(t_i),\;
      \max_i \mathcal W(t_i) + \tau\ln n\big]$$

    is returned: differentiable everywhere, its gradient a softmax-weighted average over times.

    **Arguments:**
    - `params`: physical parameters (dict, see `spin_model`); differentiable.
    - `t_window`: `(t_start, t_end)` in $\hbar/E_R$, or a strictly increasing array of times.
    - `J`: spin quantum number (static; dimension $2J+1$).
    - `n_times`: samples in a `(t_start, t_end)` window.
    - `temperature`: `None` (exact max) or the smoothing scale $\tau$ (energy units).
    - `rtol`, `atol`, `options`, `**kwargs`: as for `ergotropy_at`.

    **Returns:** the (smooth) maximum, a scalar.
    """
    fixed, opts = _split("max_ergotropy", options, rtol, atol, kwargs)
    w, _ = _trajectory(params, _window(t_window, n_times), J, fixed, opts)
    return _smooth_max(w, temperature)


def max_charging_power(
    params: Params,
    t_final: ArrayLike,
    *,
    J: float,
    n_times: int = 64,
    temperature: float | None = None,
    rtol=None,
    atol=None,
    options=None,
    **kwargs,
) -> Float[Array, ""]:
    r"""Best mean charging power within $(0, t_f]$: $\max_i \mathcal W(t_i)/t_i$.

    Sampled at $t_i = t_f\,i/n$, $i = 1, \dots, n$ (`n_times`); `temperature` as in
    `max_ergotropy` (applied to the power). Unlike `charging_power` at fixed $t$, whose
    maximiser over parameters is that of the ergotropy, this also chooses when to stop.

    **Arguments:**
    - `params`: physical parameters (dict, see `spin_model`); differentiable.
    - `t_final`: the latest stopping time, in $\hbar/E_R$.
    - `J`: spin quantum number (static; dimension $2J+1$).
    - `n_times`: number of stopping times.
    - `temperature`: as for `max_ergotropy`.
    - `rtol`, `atol`, `options`, `**kwargs`: as for `ergotropy_at`.

    **Returns:** the (smooth) maximum power.
    """
    fixed, opts = _split("max_charging_power", options, rtol, atol, kwargs)
    t_final = _as_float(check_real("t_final", t_final, positive=True))
    n_times = check_int("n_times", n_times, minimum=1)
    ts = t_final * jnp.arange(1, n_times + 1, dtype=t_final.dtype) / n_times
    w, _ = _trajectory(params, ts, J, fixed, opts)
    return _smooth_max(w / ts, temperature)


def value_and_grad(
    fn: Callable[..., Any], *, mode: Mode = "reverse", jit: bool = True
) -> Callable[..., Any]:
    r"""`(params, *args, **kwargs) -> (fn(params, ...), d fn / d params)` in the chosen mode.

    For a scalar functional of this module. `mode="reverse"`: `jax.value_and_grad` through
    the checkpointed reverse-mode adjoint (cost independent of the number of parameters,
    memory bounded by `checkpoints`). `mode="forward"`: `jax.jacfwd` with
    `diffrax.ForwardMode` (one tangent per parameter, no tape). `mode="scaling"`:
    `jax.value_and_grad` through the one-tangent scaling derivative (cheapest here). The
    gradient has the structure of `params`. `jit=True` (default) compiles
    the whole transformed call once per argument structure; `jit=False` transforms eagerly
    (the solve inside stays compiled, and is shared with other functionals: fewer
    compilations, more Python overhead per call).

    ```python
    vg = value_and_grad(ergotropy_at, mode="forward")
    W, dW = vg({"T_a": 5.0, "T_m": 0.05, "delta": 0.4}, 3.0, J=20, density=0.01, coupling=1.0)
    ```
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be 'reverse', 'forward' or 'scaling', got {mode!r}")
    return _value_and_grad(fn, mode, bool(jit))


@functools.lru_cache(maxsize=64)
def _value_and_grad(fn, mode, jit):
    # Cached: the same (fn, mode) returns the same jitted wrapper, so it compiles once.
    def transformed(params, args, kwargs):
        f = lambda p: fn(p, *args, **kwargs, mode=mode)
        if mode in ("reverse", "scaling"):
            return jax.value_and_grad(f)(params)
        grad, value = jax.jacfwd(lambda p: (f(p),) * 2, has_aux=True)(params)
        return value, grad

    if jit:
        transformed = eqx.filter_jit(transformed)

    def wrapped(params, *args, **kwargs):
        if "mode" in kwargs:
            raise TypeError("value_and_grad fixes mode; pass it to value_and_grad, not here")
        params = {k: _as_float(v) for k, v in params.items()}
        # Numbers become arrays so that new values do not recompile; J and solver settings
        # stay Python values (static).
        args = tuple(_as_float(a) if _is_number(a) else a for a in args)
        kwargs = {
            k: _as_float(v) if k in _ARRAY_KWARGS and v is not None else v
            for k, v in kwargs.items()
        }
        return transformed(params, args, kwargs)

    return wrapped


# Keywords whose numbers become arrays in `value_and_grad` (new values do not recompile).
_ARRAY_KWARGS = (*PARAM_NAMES, "drift")


def _is_number(x):
    return isinstance(x, float | int | np.floating | np.integer) and not isinstance(x, bool)
