r"""The numbers behind the paper's figures and their companions, computed without drawing.

Each `*_data` function returns a dictionary of NumPy arrays, floats and nested dicts: exactly
the numbers its figure shows (`jaxcoll.figures` draws them; `_jsonable` turns them into plain
lists for `json.dump`). Nothing here imports matplotlib, so the numbers can be recomputed where
it is not installed and restyled without recomputing.

Units: $\hbar = k_B = 1$; times are $\tilde\Gamma t$ (eq. 19) and ergotropies are in units of
$\omega_S$ unless stated otherwise.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from . import _config  # noqa: F401
from ._evolve import ergotropy_curve, evolve
from ._integral import log_scattering_integral
from ._observables import ergotropy_populations
from ._spin import SpinGas
from ._states import thermal_populations

__all__ = [
    "FIG2_PAIRS",
    "FLOW_PAIRS",
    "OPT_BOUNDS",
    "energy_flows_data",
    "fig2_ergotropy_data",
    "fig3_scattering_integral_data",
    "gibbs_ergotropy",
    "heat_statistics_data",
    "optimisation_data",
    "phase_diagram_data",
    "summary_rows",
    "thermalisation_data",
]

# (D, A) of Fig. 2: two detunings D = Delta/T_M and two ancilla factors A = omega_A/T_A. The
# steady state is Gibbs at omega_S/T = A - D (eq. 21 with T_M = E_R), so the orange and green
# pairs share the effective temperature and the red one, with D < A, builds no ergotropy.
FIG2_PAIRS = ((2.0, 0.5), (1.0, 0.5), (2.0, 1.5), (1.0, 1.5))


OPT_BOUNDS = dict(T_a=(0.2, 5.0), T_m=(0.05, 5.0), delta=(0.0, 10.0))

# Fig. 2 pairs that invert the spin (D > A); with T_M = E_R = omega_S they fix Delta and T_A.
FLOW_PAIRS = ((2.0, 0.5), (1.0, 0.5), (2.0, 1.5))


def _qubit_gas(omega, omega_a, T_a, T_m, gamma_tilde):
    """A qubit in a gas of two-level particles with v = sigma_x (x) sigma_x: excitation exchange
    plus counter-rotating terms, so the channels exchange energy in two different ratios."""
    from ._model import CollisionalModel

    sx = np.array([[0.0, 1.0], [1.0, 0.0]])
    return CollisionalModel(
        np.diag([-0.5 * omega, 0.5 * omega]),
        np.diag([0.0, omega_a]),
        np.kron(sx, sx),
        T_a=T_a,
        T_m=T_m,
        gamma_tilde=gamma_tilde,
    )


def _charging(J, D, A):
    r"""The spin-$J$ gas of the Fig. 2 setting $(D, A)$ with $k_BT_M = E_R = \hbar\omega_S = 1$:
    $\Delta = D T_M$, $\omega_A = \omega_S + \Delta$, $T_A = \omega_A/A$.

    **Returns:** the `SpinGas` and a dict of its parameters `D`, `A`, `omega_s`, `delta`,
    `omega_a`, `T_a`, `T_m`.
    """
    omega_s = T_m = 1.0
    delta = D * T_m
    omega_a = omega_s + delta
    T_a = omega_a / A
    gas = SpinGas(J, omega_s=omega_s, delta=delta, T_a=T_a, T_m=T_m, gamma_tilde=1.0)
    return gas, dict(
        D=float(D), A=float(A), omega_s=omega_s, delta=delta, omega_a=omega_a, T_a=T_a, T_m=T_m
    )


# --- helpers ---


def _jsonable(x):
    """Nested lists / floats from arrays, tuples and dicts (NaN and inf become strings)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, jax.Array | np.ndarray | np.generic):
        x = np.asarray(x)
        if x.ndim:
            return [_jsonable(v) for v in x]
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def _spin_levels(J):
    d = int(round(2 * J)) + 1
    return np.arange(d, dtype=float) - J


def gibbs_ergotropy(J, beta_omega):
    r"""Ergotropy (units of $\omega_S$) of the spin-$J$ Gibbs state at $\omega_S/T$ = `beta_omega`.

    Zero for $\omega_S/T \ge 0$; for a negative temperature the populations are inverted and the
    ergotropy is $\langle h_S\rangle$ minus the energy of the reflected state.
    """
    m = jnp.asarray(_spin_levels(J))
    p = thermal_populations(m, jnp.asarray(beta_omega, dtype=float))
    return ergotropy_populations(p, m)


def _energy_temperature(energy, J):
    r"""Temperature (units of $\omega_S$) of the Gibbs state with mean $J_z$ equal to `energy`.

    Inverts the Brillouin-type function $\langle J_z\rangle_\beta$ by bisection in $\beta$;
    returns 0 for the ground state and $\pm\infty$ at $\langle J_z\rangle = 0$.
    """
    m = _spin_levels(J)
    e = np.asarray(energy, dtype=float)

    def mean(beta):
        w = -beta[..., None] * m
        w = np.exp(w - w.max(axis=-1, keepdims=True))
        return (w * m).sum(-1) / w.sum(-1)

    lo = np.full(e.shape, -1e3)
    hi = np.full(e.shape, 1e3)
    for _ in range(200):  # <J_z>_beta decreases monotonically in beta
        mid = 0.5 * (lo + hi)
        too_hot = mean(mid) > e
        lo = np.where(too_hot, mid, lo)
        hi = np.where(too_hot, hi, mid)
    beta = 0.5 * (lo + hi)
    # a pure ground (top) state has T = 0 (T -> 0-); rounding would otherwise leave a small T
    extreme = np.abs(np.abs(e) - J) <= 1e-13 * max(J, 1.0)
    with np.errstate(divide="ignore"):
        return np.where(extreme | (np.abs(beta) >= 999.0), 0.0, 1.0 / beta)


# --- the figures' numbers ---


def fig3_scattering_integral_data(
    *,
    alpha_range=(1e-2, 10.0),
    s_range=(-10.0, 10.0),
    n_alpha=121,
    n_s=201,
    cut_alphas=(0.1, 1.0, 10.0),
    fast=False,
) -> dict:
    r"""The numbers of `fig3_scattering_integral`: the scattering integral $I(\alpha, s)$ of eq.
    (20) on the grid of Fig. 3, computed without drawing (no matplotlib). See
    `fig3_scattering_integral` for the physics.

    **Arguments:**
    - `alpha_range`, `n_alpha`: log-spaced $\alpha$ grid; `s_range`, `n_s`: linear $s$ grid.
    - `cut_alphas`: the $\alpha$ of the cuts in the right panel.
    - `fast`: a coarse grid.

    **Returns:** a dict with `alpha`, `s`, `log10_I` (shape `(n_alpha, n_s)`) and `cuts`.
    """
    if fast:
        n_alpha, n_s = 21, 41
    alpha = np.geomspace(*alpha_range, n_alpha)
    s = np.linspace(*s_range, n_s)
    ln10 = math.log(10.0)
    log10_I = np.asarray(log_scattering_integral(alpha[:, None], s[None, :])) / ln10
    cuts = {
        f"{a:g}": np.asarray(log_scattering_integral(jnp.asarray(a), jnp.asarray(s))) / ln10
        for a in cut_alphas
    }
    data = dict(
        alpha=alpha,
        s=s,
        log10_I=log10_I,
        cut_alphas=list(cut_alphas),
        cuts=cuts,
        max_log10_I=float(log10_I.max()),
        min_log10_I=float(log10_I.min()),
    )
    return data


def fig2_ergotropy_data(
    *,
    J=20,
    alpha=1.0,
    pairs=FIG2_PAIRS,
    t_final=20.0,
    n_t=401,
    fast=False,
) -> dict:
    r"""The numbers of `fig2_ergotropy`: the ergotropy curves of Fig. 2, computed without drawing
    (no matplotlib). See `fig2_ergotropy` for the physics.

    **Arguments:**
    - `J`: spin quantum number; `alpha`: $E_R/k_BT_M$.
    - `pairs`: sequence of `(D, A)`.
    - `t_final`, `n_t`: time grid $\tilde\Gamma t \in [0, t_{\rm final}]$.
    - `fast`: fewer time points.

    **Returns:** a dict with `t` (units $1/\tilde\Gamma$), and per pair `D`, `A`, `beta_omega`
    ($\omega_S/T$), `ergotropy` (units $\omega_S$), `ergotropy_steady`.
    """
    if fast:
        n_t = 41
    ts = np.linspace(0.0, t_final, n_t)
    curves = []
    for D, A in pairs:
        W = np.asarray(ergotropy_curve(J, D, A, alpha, jnp.asarray(ts)))
        curves.append(
            dict(
                D=float(D),
                A=float(A),
                beta_omega=float(A - D),
                ergotropy=W,
                ergotropy_steady=float(gibbs_ergotropy(J, A - D)),
            )
        )
    data = dict(J=J, alpha=alpha, t=ts, curves=curves)
    return data


def thermalisation_data(
    *,
    J=20,
    T=1.0,
    omega_s=1.0,
    E_R=1.0,
    detunings=(-0.5, 0.0, 1.0, 2.0),
    t_range=(1e-3, 1e2),
    n_t=161,
    n_delta=61,
    fast=False,
) -> dict:
    r"""The numbers of `thermalisation`: the spin temperature along the thermalisation by a gas in
    equilibrium, computed without drawing (no matplotlib). See `thermalisation` for the physics.

    **Arguments:**
    - `J`, `omega_s`, `E_R`: spin and energy scales; `T`: the gas temperature $T_A = T_M$.
    - `detunings`: $\Delta$ values (same unit as `omega_s`); $\omega_A = \omega_S + \Delta > 0$.
    - `t_range`, `n_t`: log-spaced $\tilde\Gamma t$ grid.
    - `n_delta`: points of the dense $\Delta$ axis in the right panel.
    - `fast`: fewer time points.

    **Returns:** a dict with `t`, and per detuning `delta`, `Jz` (mean $J_z$), `T_E`,
    `T_final`, `T_eq21` and `T_repeated` ($\omega_S T/\omega_A$).
    """
    if fast:
        n_t, n_delta = 25, 11
    ts = np.concatenate([[0.0], np.geomspace(*t_range, n_t - 1)])
    m = _spin_levels(J)
    p0 = jnp.zeros(len(m)).at[0].set(1.0)
    rows = []
    for delta in detunings:
        gas = SpinGas(J, omega_s=omega_s, delta=delta, T_a=T, T_m=T, E_R=E_R, gamma_tilde=1.0)
        p = np.asarray(evolve(gas, p0, jnp.asarray(ts)).populations)
        Jz = p @ m
        T_E = omega_s * _energy_temperature(Jz, J)
        rows.append(
            dict(
                delta=float(delta),
                Jz=Jz,
                T_E=T_E,
                T_final=float(T_E[-1]),
                T_eq21=float(gas.effective_temperature()),
                T_repeated=float(omega_s * T / (omega_s + delta)),
                rates=[float(g) for g in gas.rates()],
            )
        )
    delta_axis = np.linspace(
        min(detunings) - 0.25 * omega_s, max(detunings) + 0.5 * omega_s, n_delta
    )
    data = dict(
        J=J,
        T=T,
        omega_s=omega_s,
        E_R=E_R,
        t=ts,
        curves=rows,
        delta_axis=delta_axis,
        T_repeated_axis=omega_s * T / (omega_s + delta_axis),
    )
    return data


def phase_diagram_data(
    *,
    J=20,
    alpha=1.0,
    D_range=(-1.0, 4.0),
    A_range=(0.0, 4.0),
    n=81,
    t_final=5.0,
    fast=False,
    progress=False,
) -> dict:
    r"""The numbers of `phase_diagram`: the steady-state and finite-time ergotropy over the $(D, A)$
    plane, computed without drawing (no matplotlib). See `phase_diagram` for the physics.

    **Arguments:**
    - `J`, `alpha`: spin and $E_R/k_BT_M$.
    - `D_range`, `A_range`, `n`: the `n` x `n` grid.
    - `t_final`: time $\tilde\Gamma t$ of the right panel.
    - `fast`: a coarse grid; `progress`: the scan's progress bar.

    **Returns:** a dict with `D`, `A` (axes), `ergotropy_steady` and `ergotropy_final`, each of
    shape `(n_D, n_A)`, in units of $\omega_S$.
    """
    from ._scan import grid, scan

    if fast:
        n = 9
    D = np.linspace(*D_range, n)
    A = np.linspace(*A_range, n)
    pts = grid(D=D, A=A)
    ts = jnp.asarray([0.0, t_final])

    def point(p):
        W_t = ergotropy_curve(J, p["D"], p["A"], alpha, ts)[-1]
        return dict(final=W_t, steady=gibbs_ergotropy(J, p["A"] - p["D"]))

    res = scan(point, pts, progress=progress, chunk_size=1024)
    W_ss = res["steady"].reshape(n, n)
    W_t = res["final"].reshape(n, n)
    data = dict(
        J=J, alpha=alpha, t_final=t_final, D=D, A=A, ergotropy_steady=W_ss, ergotropy_final=W_t
    )
    return data


def optimisation_data(
    *,
    J=20,
    t_final=3.0,
    omega_s=1.0,
    density=0.01,
    coupling=1.0,
    bounds=None,
    steps=40,
    n_background=32,
    result=None,
    fast=False,
    progress=False,
) -> dict:
    r"""The numbers of `optimisation`: the gradient search (`optimize_ergotropy`) and its landscape,
    computed without drawing (no matplotlib). See `optimisation` for the physics.

    **Arguments:**
    - `J`, `t_final` ($\hbar/E_R$), `omega_s`, `density`, `coupling`: the problem; `bounds`:
      `{"T_a": (lo, hi), "T_m": ..., "delta": ...}` (default `OPT_BOUNDS`).
    - `steps`: Adam steps; `n_background`: landscape grid per axis.
    - `result`: an `OptimizeResult` of `optimize_ergotropy` for these settings, to draw
      instead of running the search again (its bounds are used).
    - `fast`: a small box around the optimum, few steps, coarse grids; `progress`: progress
      bars.

    **Returns:** a dict with the optimum (`T_a`, `T_m`, `delta`, `ergotropy`, `active`), the
    search `history` and the `landscape` (`delta`, `T_m` axes and `ergotropy` at the optimal
    $T_A$, shape `(n_delta, n_T_m)`).
    """
    from ._functionals import ergotropy_at
    from ._optimize import optimize_ergotropy
    from ._scan import grid, scan

    bounds = dict(OPT_BOUNDS if bounds is None else bounds)
    opt_kw = {}
    if fast:  # a small box around the optimum of the default problem, so the grid is inverted
        steps, n_background = 4, 6
        bounds = dict(T_a=(1.0, 5.0), T_m=(0.05, 0.3), delta=(0.2, 1.0))
        opt_kw = dict(scan_points=3, n_starts=2, polish_iterations=3)
    if result is None:
        res = optimize_ergotropy(
            J,
            t_final,
            omega_s=omega_s,
            density=density,
            coupling=coupling,
            steps=steps,
            progress=progress,
            **bounds,
            **opt_kw,
        )
    else:
        res = result
        bounds = {k: tuple(v) for k, v in res.bounds.items()}
    # Landscape at the optimal T_a, for the picture only, in a window around the search path.
    hist = {k: np.asarray(v) for k, v in res.history.items()}
    d_lo, d_hi = bounds["delta"]
    tm_lo, tm_hi = bounds["T_m"]
    d_hi = min(d_hi, max(3.0 * omega_s, 1.5 * float(np.max(hist["delta"], initial=res.delta))))
    tm_hi = min(tm_hi, max(1.0 * omega_s, 3.0 * float(np.max(hist["T_m"], initial=res.T_m))))
    d_axis = np.linspace(d_lo, d_hi, n_background)
    tm_axis = np.geomspace(tm_lo, tm_hi, n_background)
    kw = dict(J=J, omega_s=omega_s, density=density, coupling=coupling)
    T_a_best = res.T_a

    def point(p):
        return ergotropy_at({"T_a": T_a_best, **p}, t_final, **kw)

    land = scan(point, grid(delta=d_axis, T_m=tm_axis), progress=progress).reshape(
        n_background, n_background
    )
    data = dict(
        J=J,
        t_final=t_final,
        omega_s=omega_s,
        density=density,
        coupling=coupling,
        bounds={k: list(v) for k, v in bounds.items()},
        T_a=res.T_a,
        T_m=res.T_m,
        delta=res.delta,
        ergotropy=res.ergotropy,
        active=res.active,
        gradient=res.gradient,
        scan_best=res.scan["best"],
        n_evaluations=res.n_evaluations,
        history=hist,
        landscape=dict(delta=d_axis, T_m=tm_axis, T_a=T_a_best, ergotropy=land),
    )
    return data


def energy_flows_data(
    *,
    J=20,
    pairs=FLOW_PAIRS,
    t_final=20.0,
    n_t=201,
    qubit_omega_a=1.6,
    T_a_range=(0.2, 5.0),
    n_T=41,
    T_a_trajectory=3.0,
    fast=False,
) -> dict:
    r"""The numbers of `energy_flows`: the energy flows of the gas's two sectors and the system,
    computed without drawing (no matplotlib). See `energy_flows` for the physics.

    **Arguments:**
    - `J`: spin quantum number; `pairs`: the $(D, A)$ of panel (b) (the first is panel a).
    - `t_final`, `n_t`: time grid $\tilde\Gamma t \in [0, t_{\rm final}]$.
    - `qubit_omega_a`: ancilla gap of the qubit model (units of $\omega_S$); `T_a_range`,
      `n_T`: its $T_A$ axis; `T_a_trajectory`: $T_A$ of panel (d).
    - `fast`: fewer points.

    **Returns:** a dict with `t`, per pair (`curves`) `D`, `A`, `delta`, `omega_a`, `T_a`,
    `system`, `ancilla`, `motion`, `ergotropy`, `efficiency`, `bound` ($\omega_S/\omega_A$),
    `carnot`, `first_law_max`; and `qubit` with `T_a`, `steady_system`, `steady_ancilla`,
    `steady_motion`, and the trajectory `t`, `system_rate`, `ancilla_rate`, `motion_rate`.
    Energies in units of $\omega_S = E_R$, times $\tilde\Gamma t$.
    """
    from ._flows import energy_budget
    from ._states import ground_populations

    if fast:
        n_t, n_T = 41, 9
    ts = np.linspace(0.0, t_final, n_t)
    omega_s = T_m = 1.0
    curves = []
    for D, A in pairs:
        gas, setting = _charging(J, D, A)
        res = evolve(gas, ground_populations(gas.dim), jnp.asarray(ts))
        b = energy_budget(gas, res)
        parts = [np.asarray(x) for x in (b.system, b.ancilla, b.motion)]
        omega_a, T_a = setting["omega_a"], setting["T_a"]
        curves.append(
            dict(
                **{k: setting[k] for k in ("D", "A", "delta", "omega_a", "T_a")},
                system=parts[0],
                ancilla=parts[1],
                motion=parts[2],
                ergotropy=np.asarray(b.ergotropy),
                efficiency=np.asarray(b.charging_efficiency),
                bound=omega_s / omega_a,
                carnot=1.0 - T_m / T_a,
                first_law_max=float(np.max(np.abs(sum(parts)))),
            )
        )

    # the contrast: two energy ratios, a steady current through the system
    T_axis = np.geomspace(*T_a_range, n_T)
    p_probe = np.array([[1.0, 0.0], [0.0, 1.0]])
    steady = np.array(
        [
            np.asarray(
                energy_budget(
                    _qubit_gas(omega_s, qubit_omega_a, T_a, T_m, 1.0), p_probe, np.array([0, 1.0])
                ).steady_rates
            )
            for T_a in T_axis
        ]
    )
    qubit = _qubit_gas(omega_s, qubit_omega_a, T_a_trajectory, T_m, 1.0)
    tq = np.linspace(0.0, 0.5 * t_final, n_t)
    bq = energy_budget(qubit, evolve(qubit, jnp.asarray([1.0, 0.0]), jnp.asarray(tq)))
    data = dict(
        J=J,
        omega_s=omega_s,
        T_m=T_m,
        E_R=1.0,
        t=ts,
        curves=curves,
        qubit=dict(
            omega_a=qubit_omega_a,
            T_a=T_axis,
            steady_system=steady[:, 0],
            steady_ancilla=steady[:, 1],
            steady_motion=steady[:, 2],
            T_a_trajectory=T_a_trajectory,
            t=tq,
            system_rate=np.asarray(bq.system_rate),
            ancilla_rate=np.asarray(bq.ancilla_rate),
            motion_rate=np.asarray(bq.motion_rate),
            first_law_max=float(np.max(np.abs(np.asarray(bq.first_law_residual())))),
        ),
    )
    return data


# --- heat statistics ---------------------------------------------------------------------------


def _lattice_histogram(x, spacing, per_sigma=4.0):
    """Density histogram of samples on the lattice `spacing * Z`, in contiguous bins of `k`
    lattice points (`k` chosen for about `per_sigma` bins per standard deviation), so that every
    bin holds the same number of lattice points and the density compares with a Gaussian."""
    n = np.rint(np.asarray(x, dtype=float) / spacing).astype(np.int64)
    k = max(1, int(round(float(np.std(n)) / per_sigma)))
    j = np.floor_divide(n, k)
    counts = np.bincount(j - j.min())
    edges = (j.min() * k + k * np.arange(len(counts) + 1) - 0.5) * spacing
    return dict(edges=edges, density=counts / (len(n) * k * spacing))


def _sample_statistics(Q):
    """Sample mean and variance over the first axis, with their standard errors (that of the
    variance from the sample fourth central moment; the distributions are lattices, not
    Gaussians)."""
    n = Q.shape[0]
    mean = Q.mean(axis=0)
    c = Q - mean
    var = (c**2).sum(axis=0) / (n - 1)
    m4 = (c**4).mean(axis=0)
    return dict(
        sample_mean=mean,
        sample_var=var,
        se_mean=np.sqrt(var / n),
        se_var=np.sqrt(np.maximum(m4 - var**2, 0.0) / n),
    )


def heat_statistics_data(
    *,
    J=20,
    pair=FLOW_PAIRS[0],
    t_final=20.0,
    hist_times=(0.5, 1.0, 2.0, 20.0),
    qubit_omega_a=1.6,
    qubit_T_a=3.0,
    qubit_t_final=50.0,
    qubit_hist_times=(4.0, 20.0, 50.0),
    n_traj=100_000,
    seed=0,
    fast=False,
) -> dict:
    r"""The numbers of `heat_statistics` (the figure): distributions of the heat $(Q_A, Q_M)$
    from `collision_trajectories` against the cumulants of `jaxcoll.heat_statistics`, computed
    without drawing (no matplotlib). See `jaxcoll.figures.heat_statistics` for the physics.

    **Arguments:**
    - `J`: spin quantum number; `pair`: the Fig. 2 $(D, A)$ of the charging ($k_BT_M = E_R =
      \hbar\omega_S$).
    - `t_final`: the charging's last time; `hist_times`: times of its histograms (multiples of
      0.5 up to `t_final`).
    - `qubit_omega_a`, `qubit_T_a`: ancilla gap and temperature of the qubit gas
      ($v = \sigma_x\otimes\sigma_x$, $T_M = E_R$); `qubit_t_final`, `qubit_hist_times`: its
      times (multiples of 2).
    - `n_traj`: trajectories per model; `seed`: of the PRNG keys.
    - `fast`: 20 000 trajectories and the cumulant lines only at the save times.

    **Returns:** a dict with `spin` and `qubit`, each with the model's parameters, the
    trajectories' save times `t` with their `sample_mean`, `sample_var`, `se_mean`, `se_var`
    (`(n_t, 2)`, order $(Q_A, Q_M)$), the exact `mean` `(n_t, 2)` and `covariance`
    `(n_t, 2, 2)` at the same times, the same on a finer grid (`t_fine`, `mean_fine`,
    `covariance_fine`), and `histograms` (per histogram time: `t` and, per sector, `edges` and
    `density`); the qubit also its `populations0` (the stationary state), `currents` and
    `diffusion` (`steady_heat_statistics`); the spin its `tight_coupling_max`
    ($\max|Q_A + (\omega_A/\omega_S)\Delta E_S|$ over trajectories) and both their
    `first_law_max` ($\max|\Delta E_S + Q_A + Q_M|$).
    """
    from ._counting import heat_statistics, steady_heat_statistics
    from ._relaxation import steady_state
    from ._states import ground_populations
    from ._trajectories import collision_trajectories

    refine = 5
    if fast:
        n_traj, refine = 20_000, 1
    key = jax.random.key(seed)

    def run(model, p0, ts, hist, spacings, k):
        tr = collision_trajectories(model, p0, ts, n_traj=n_traj, key=jax.random.fold_in(key, k))
        # one solve on a grid `refine` times finer than the trajectories' save times; the step
        # size controlled on the moments too: from a stationary state, control on the state
        # alone would let the steps grow without bound while the moments still change
        t_fine = np.linspace(ts[0], ts[-1], (len(ts) - 1) * refine + 1)
        fine = heat_statistics(model, p0, t_fine, error_control="all")
        mean, cov = np.asarray(fine.mean), np.asarray(fine.covariance)
        Q = np.asarray(tr.Q)
        dE = np.asarray(tr.energy) - np.asarray(tr.energy)[:, :1]
        out = dict(
            n_traj=int(n_traj),
            method=tr.method,
            t=ts,
            mean=mean[::refine],
            covariance=cov[::refine],
            t_fine=t_fine,
            mean_fine=mean,
            covariance_fine=cov,
            first_law_max=float(np.max(np.abs(dE + Q.sum(-1)))),
            histograms=[],
            **_sample_statistics(Q),
        )
        for t in hist:
            i = int(np.argmin(np.abs(ts - t)))
            h = dict(t=float(ts[i]))
            for s, name in enumerate(("ancilla", "motion")[: len(spacings)]):
                h[name] = _lattice_histogram(Q[:, i, s], spacings[s])
            out["histograms"].append(h)
        return out, dE, Q

    # (a, b) the charging of Fig. 2: every collision exchanges omega_S : -omega_A : Delta
    gas, setting = _charging(J, *pair)
    omega_s, omega_a, delta, T_m = (setting[k] for k in ("omega_s", "omega_a", "delta", "T_m"))
    ts = np.arange(0.0, t_final + 0.25, 0.5)
    spin, dE, Q = run(
        gas,
        ground_populations(gas.dim),
        ts,
        hist_times,
        (omega_a, delta),
        0,
    )
    spin.update(
        J=J,
        **setting,
        tight_coupling_max=float(np.max(np.abs(Q[..., 0] + (omega_a / omega_s) * dE))),
    )

    # (c, d) the qubit gas from its stationary state: a steady heat current between the sectors
    qubit = _qubit_gas(omega_s, qubit_omega_a, qubit_T_a, T_m, 1.0)
    p_ss = np.asarray(steady_state(qubit, populations=True))
    steady = steady_heat_statistics(qubit)
    tq = np.arange(0.0, qubit_t_final + 1.0, 2.0)
    q, _, _ = run(
        qubit,
        p_ss,
        tq,
        qubit_hist_times,
        (qubit_omega_a,),
        1,
    )
    q.update(
        omega_s=omega_s,
        omega_a=qubit_omega_a,
        T_a=qubit_T_a,
        T_m=T_m,
        populations0=p_ss,
        currents=np.asarray(steady.currents),
        diffusion=np.asarray(steady.diffusion),
    )
    return dict(spin=spin, qubit=q)


def summary_rows(results):
    """Rows `(figure, result, value, seconds)` summarising a `reproduce` results dictionary."""
    sec = results["meta"]["seconds"]
    rows = []
    r = results["fig3_scattering_integral"]
    rows.append(
        [
            "fig3",
            "log10 I(alpha, s): min, max",
            f"{r['min_log10_I']:.3g}, {r['max_log10_I']:.3g}",
            sec["fig3_scattering_integral"],
        ]
    )
    r = results["fig2_ergotropy"]
    t_end = r["t"][-1]
    for c in r["curves"]:
        rows.append(
            [
                "fig2",
                f"W({t_end:g}/Gamma~)/omega_s at D={c['D']:g}, A={c['A']:g}",
                f"{c['ergotropy'][-1]:.4g} (steady {c['ergotropy_steady']:.4g})",
                sec["fig2_ergotropy"],
            ]
        )
    r = results["thermalisation"]
    dev = max(abs(c["T_final"] / r["T"] - 1.0) for c in r["curves"])
    rep = [c["T_repeated"] / r["T"] for c in r["curves"]]
    rows.append(
        [
            "thermalisation",
            "max |T_final/T - 1| over detunings",
            f"{dev:.2g}",
            sec["thermalisation"],
        ]
    )
    rows.append(
        [
            "thermalisation",
            "repeated-interaction T/T (same detunings)",
            ", ".join(f"{x:.3g}" for x in rep),
            sec["thermalisation"],
        ]
    )
    r = results["phase_diagram"]
    W = np.asarray(r["ergotropy_final"])
    i, j = np.unravel_index(np.argmax(W), W.shape)
    rows.append(
        [
            "phase_diagram",
            f"max W(t={r['t_final']:g}/Gamma~)/omega_s at (D, A)",
            f"{W[i, j]:.4g} at ({r['D'][i]:.3g}, {r['A'][j]:.3g})",
            sec["phase_diagram"],
        ]
    )
    r = results["optimisation"]
    rows.append(
        [
            "optimisation",
            f"best W(t_f={r['t_final']:g})/E_R, J={r['J']:g}",
            f"{r['ergotropy']:.5g}",
            sec["optimisation"],
        ]
    )
    rows.append(
        [
            "optimisation",
            "at T_a, T_m, delta",
            f"{r['T_a']:.4g}, {r['T_m']:.4g}, {r['delta']:.4g}",
            sec["optimisation"],
        ]
    )
    r = results.get("energy_flows")
    if r is not None:
        for c in r["curves"][:1]:
            rows.append(
                [
                    "energy_flows",
                    f"-Q_A, Q_M, dE_S at t={r['t'][-1]:g}/Gamma~ (D={c['D']:g}, A={c['A']:g})",
                    f"{-c['ancilla'][-1]:.4g}, {c['motion'][-1]:.4g}, {c['system'][-1]:.4g}",
                    sec["energy_flows"],
                ]
            )
        rows.append(
            [
                "energy_flows",
                "max |dE_S + Q_A + Q_M| (first law)",
                f"{max(c['first_law_max'] for c in r['curves']):.2g}",
                sec["energy_flows"],
            ]
        )
        rows.append(
            [
                "energy_flows",
                "final W/(-Q_A) vs omega_S/omega_A",
                ", ".join(f"{c['efficiency'][-1]:.3g}/{c['bound']:.3g}" for c in r["curves"]),
                sec["energy_flows"],
            ]
        )
    r = results.get("heat_statistics")
    if r is not None:
        sec_h = sec["heat_statistics"]
        s = r["spin"]
        z = max(
            abs(a - b) / e
            for case in (s, r["qubit"])
            for ra, rb, rs in zip(case["sample_mean"], case["mean"], case["se_mean"], strict=True)
            for a, b, e in zip(ra, rb, rs, strict=True)
            if e > 0
        )
        rows.append(
            [
                "heat_statistics",
                f"max |sample - exact| mean / SE ({s['n_traj']} trajectories)",
                f"{z:.2f}",
                sec_h,
            ]
        )
        rows.append(
            [
                "heat_statistics",
                "spin: max |Q_A + (omega_A/omega_S) dE_S| per trajectory",
                f"{s['tight_coupling_max']:.2g}",
                sec_h,
            ]
        )
        q = r["qubit"]
        rows.append(
            [
                "heat_statistics",
                "qubit gas: steady J_A, D_AA",
                f"{q['currents'][0]:.5g}, {q['diffusion'][0][0]:.5g}",
                sec_h,
            ]
        )
    return rows
