"""Population-sector dynamics of the spin (the setting of the paper's Fig. 2) at large J.

Problem: the spin starts in its ground state m = -J and is charged by an inverting gas,
D = 4, A = 1, alpha = 1 (so Gamma+ / Gamma- ~ 20), time in units of 1/Gamma~ (gamma_tilde = 1),
i.e. `SpinGas(J, omega_s=1, delta=4, T_a=5, T_m=1, E_R=1, gamma_tilde=1)`. Energies and
ergotropies in units of omega_s, deviations quoted in units of 2J (the ladder's width).

1. J = 1000, 1000 save points on [0, 1.3], rtol = 1e-8, against
   `scipy.integrate.solve_ivp(method="BDF")` with the tridiagonal generator as a sparse
   Jacobian (`jac=` a CSC matrix; BDF's norm is the RMS norm). atol = 1e-10 for both: the
   populations sum to one, so 1e-10 is far below any population that matters and keeps the
   energy error ~ d * atol < 1e-6 * 2J. jaxcoll runs with its default max norm and with the
   RMS norm (same norm as BDF), computing the energy and the ergotropy at the save points
   (`observables=("energy", "ergotropy")`). Both warm (best of `--repeat`); jaxcoll's first
   call (tracing + XLA compilation) is reported separately. SciPy's time is given for the
   solve alone and with the energy and ergotropy computed from its output (NumPy). A tight
   independent reference (`solve_ivp(method="Radau")`, rtol = 1e-12, atol = 1e-16) gives the
   error of each.
2. J = 1e4 and 1e5 with 1000 save points, J = 1e6 with 100 save points, observables computed
   during the solve (`observables_only=True`: the states are not stored).
3. Cost against d = 2J + 1 (100 save points each) and the fitted exponent of time ~ d^k.

Prints tables; writes benchmarks/results/populations.json. The machine may be shared: wall
and CPU (process) times are both recorded, with the load average.

    python benchmarks/bench_populations.py              # everything (~10 minutes)
    python benchmarks/bench_populations.py --quick      # J = 1000 comparison only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np

import jaxcoll
from jaxcoll._evolve import evolve

D_, A_, ALPHA = 4.0, 1.0, 1.0
PARAMS = dict(omega_s=1.0, delta=D_ / ALPHA, T_a=(1.0 + D_ / ALPHA) / A_, T_m=1.0 / ALPHA)
PARAMS |= dict(E_R=1.0, gamma_tilde=1.0)
T_FINAL, RTOL, ATOL = 1.3, 1e-8, 1e-10


def _timed(fn, repeat):
    """First call, then the best of `repeat` warm calls (wall and CPU seconds)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    first = time.perf_counter() - t0, time.process_time() - c0
    best_w, best_c = np.inf, np.inf
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best_w = min(best_w, time.perf_counter() - t0)
        best_c = min(best_c, time.process_time() - c0)
    return out, first, (best_w, best_c)


def _generator(J):
    """The tridiagonal rate matrix of eq. (11) for eq. (18), as a SciPy CSC matrix."""
    import scipy.sparse as sp

    gp, gm = (float(r) for r in jaxcoll.SpinGas(J, **PARAMS).rates())
    d = int(2 * J) + 1
    m = np.arange(d - 1) - J
    c2 = (J - m) * (J + m + 1.0)
    diag = -(gp * np.r_[c2, 0.0] + gm * np.r_[0.0, c2])
    return sp.diags([gp * c2, diag, gm * c2], [-1, 0, 1], format="csc")


def _observables(P, J):
    eps = np.arange(P.shape[1]) - J
    energy = P @ eps
    passive = np.sort(P, axis=1, kind="stable")[:, ::-1] @ eps
    return energy, np.maximum(energy - passive, 0.0)


def run_scipy(J, ts, repeat, method="BDF", rtol=RTOL, atol=ATOL):
    from scipy.integrate import solve_ivp

    G = _generator(J)
    p0 = np.zeros(G.shape[0])
    p0[0] = 1.0

    def solve():
        return solve_ivp(
            lambda t, y: G @ y,
            (ts[0], ts[-1]),
            p0,
            method=method,
            t_eval=ts,
            rtol=rtol,
            atol=atol,
            jac=G,
        )

    sol, _, (w, c) = _timed(solve, repeat)
    t0 = time.perf_counter()
    energy, ergo = _observables(sol.y.T, J)
    obs_s = time.perf_counter() - t0
    return dict(
        warm_wall_s=w,
        warm_cpu_s=c,
        observables_s=obs_s,
        nfev=int(sol.nfev),
        nlu=int(sol.nlu),
        status=int(sol.status),
        energy=energy,
        ergotropy=ergo,
    )


def run_jaxcoll(
    J, ts, repeat, *, norm="max", observables_only=False, dtype=None, rtol=RTOL, atol=ATOL
):
    gas = jaxcoll.SpinGas(J, **PARAMS)
    p0 = np.zeros(int(2 * J) + 1)
    p0[0] = 1.0

    def once():
        r = evolve(
            gas,
            p0,
            ts,
            rtol=rtol,
            atol=atol,
            norm=norm,
            observables_only=observables_only,
            dtype=dtype,
            observables=("energy", "ergotropy"),
        )
        return jax.block_until_ready(r)

    res, (fw, fc), (w, c) = _timed(once, repeat)
    return dict(
        first_call_wall_s=fw,
        first_call_cpu_s=fc,
        warm_wall_s=w,
        warm_cpu_s=c,
        steps=int(res.num_steps),
        rejected=int(res.num_rejected_steps),
        energy=np.asarray(res.energy),
        ergotropy=np.asarray(res.ergotropy),
    )


def _dev(a, b, J):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / (2 * J))


def compare_scipy(repeat):
    J = 1000
    ts = np.linspace(0.0, T_FINAL, 1000)
    ref = run_scipy(J, ts, 0, method="Radau", rtol=1e-12, atol=1e-16)
    bdf = run_scipy(J, ts, repeat)
    out = dict(J=J, n_save=len(ts), t_final=T_FINAL, rtol=RTOL, atol=ATOL)
    out["scipy_bdf"] = {k: v for k, v in bdf.items() if k not in ("energy", "ergotropy")}
    out["scipy_bdf"]["error_vs_reference_2J"] = dict(
        energy=_dev(bdf["energy"], ref["energy"], J),
        ergotropy=_dev(bdf["ergotropy"], ref["ergotropy"], J),
    )
    for norm in ("max", "rms"):
        jx = run_jaxcoll(J, ts, repeat, norm=norm)
        row = {k: v for k, v in jx.items() if k not in ("energy", "ergotropy")}
        row["deviation_from_bdf_2J"] = dict(
            energy=_dev(jx["energy"], bdf["energy"], J),
            ergotropy=_dev(jx["ergotropy"], bdf["ergotropy"], J),
        )
        row["error_vs_reference_2J"] = dict(
            energy=_dev(jx["energy"], ref["energy"], J),
            ergotropy=_dev(jx["ergotropy"], ref["ergotropy"], J),
        )
        row["speedup_vs_bdf_wall"] = bdf["warm_wall_s"] / jx["warm_wall_s"]
        row["speedup_vs_bdf_with_observables_wall"] = (
            bdf["warm_wall_s"] + bdf["observables_s"]
        ) / jx["warm_wall_s"]
        row["speedup_vs_bdf_cpu"] = bdf["warm_cpu_s"] / jx["warm_cpu_s"]
        out[f"jaxcoll_{norm}_norm"] = row
    return out


def large_J(repeat, Js):
    rows = []
    for J in Js:
        n_save = 100 if J >= 10**6 else 1000
        ts = np.linspace(0.0, T_FINAL, n_save)
        r = run_jaxcoll(J, ts, repeat if J < 10**6 else 1, observables_only=True)
        rows.append(
            dict(
                J=J,
                d=2 * J + 1,
                n_save=n_save,
                first_call_wall_s=r["first_call_wall_s"],
                warm_wall_s=r["warm_wall_s"],
                warm_cpu_s=r["warm_cpu_s"],
                steps=r["steps"],
                final_ergotropy_2J=float(r["ergotropy"][-1] / (2 * J)),
            )
        )
        print(_fmt_row(rows[-1]), flush=True)
    return rows


def scaling(repeat, Js, known):
    """Warm time with 100 save points against d; reuses J = 1e6 from `large_J`."""
    rows = []
    for J in Js:
        prev = [r for r in known if r["J"] == J and r["n_save"] == 100]
        if prev:
            rows.append(prev[0])
            continue
        ts = np.linspace(0.0, T_FINAL, 100)
        r = run_jaxcoll(J, ts, repeat, observables_only=True)
        rows.append(
            dict(
                J=J,
                d=2 * J + 1,
                n_save=100,
                warm_wall_s=r["warm_wall_s"],
                warm_cpu_s=r["warm_cpu_s"],
                steps=r["steps"],
            )
        )
    d = np.array([r["d"] for r in rows], dtype=float)
    t = np.array([r["warm_cpu_s"] for r in rows])
    big = d >= 1e4  # below that, fixed per-step costs dominate
    k = float(np.polyfit(np.log(d[big]), np.log(t[big]), 1)[0]) if big.sum() >= 2 else None
    k_all = float(np.polyfit(np.log(d), np.log(t), 1)[0])
    return dict(rows=rows, exponent_d_ge_1e4=k, exponent_all=k_all)


def _fmt_row(r):
    first = f"{r['first_call_wall_s']:7.2f}" if "first_call_wall_s" in r else "      -"
    return (
        f"{r['J']:>8d} {r['d']:>8d} {r['n_save']:>5d} {r['steps']:>6d} "
        f"{r['warm_wall_s']:9.3f} {r['warm_cpu_s']:9.3f} {first}"
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="J = 1000 comparison only")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--max-J", type=int, default=10**6)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "populations.json"))
    args = p.parse_args()

    result = dict(
        benchmark="populations",
        setup=dict(
            D=D_,
            A=A_,
            alpha=ALPHA,
            spin_gas=PARAMS,
            start="ground state m = -J",
            rtol=RTOL,
            atol=ATOL,
            t_final=T_FINAL,
            solver="Rosenbrock RODAS5P",
        ),
        machine=dict(
            cpu_count=os.cpu_count(),
            platform=platform.platform(),
            backend=jax.default_backend(),
            load_average_start=os.getloadavg(),
        ),
        versions=dict(jax=jax.__version__, jaxcoll=jaxcoll.__version__),
    )

    print("== J = 1000, 1000 save points, rtol 1e-8, atol 1e-10 ==")
    cmp = compare_scipy(args.repeat)
    result["compare_scipy"] = cmp
    b = cmp["scipy_bdf"]
    print(
        f"{'':24s} {'warm wall s':>11s} {'warm cpu s':>10s} {'first s':>8s} "
        f"{'steps':>6s} {'speedup':>8s} {'dev E/2J':>9s} {'dev W/2J':>9s} {'err E/2J':>9s}"
    )
    print(
        f"{'scipy BDF (solve)':24s} {b['warm_wall_s']:11.3f} {b['warm_cpu_s']:10.3f} "
        f"{'-':>8s} {b['nfev']:>6d} {'1.00':>8s} {'-':>9s} {'-':>9s} "
        f"{b['error_vs_reference_2J']['energy']:9.1e}"
    )
    print(f"{'scipy BDF + observables':24s} {b['warm_wall_s'] + b['observables_s']:11.3f}")
    for norm in ("max", "rms"):
        r = cmp[f"jaxcoll_{norm}_norm"]
        print(
            f"{'jaxcoll (' + norm + ' norm)':24s} {r['warm_wall_s']:11.3f} "
            f"{r['warm_cpu_s']:10.3f} {r['first_call_wall_s']:8.2f} {r['steps']:>6d} "
            f"{r['speedup_vs_bdf_wall']:8.2f} {r['deviation_from_bdf_2J']['energy']:9.1e} "
            f"{r['deviation_from_bdf_2J']['ergotropy']:9.1e} "
            f"{r['error_vs_reference_2J']['energy']:9.1e}"
        )
    print("(BDF 'steps' column: number of right-hand-side evaluations)")

    if not args.quick:
        Js = [J for J in (10**4, 10**5, 10**6) if J <= args.max_J]
        print("\n== large J: observables during the solve ==")
        print(
            f"{'J':>8s} {'d':>8s} {'saves':>5s} {'steps':>6s} {'wall s':>9s} {'cpu s':>9s} "
            f"{'first s':>7s}"
        )
        big = large_J(args.repeat, Js)
        result["large_J"] = big
        sc = scaling(args.repeat, [J for J in (10**3, 10**4, 10**5, 10**6) if J <= args.max_J], big)
        result["scaling"] = sc
        print("\n== cost against d (100 save points) ==")
        print(
            f"{'J':>8s} {'d':>8s} {'steps':>6s} {'wall s':>9s} {'cpu s':>9s} {'cpu ms/step':>11s}"
        )
        for r in sc["rows"]:
            print(
                f"{r['J']:>8d} {r['d']:>8d} {r['steps']:>6d} {r['warm_wall_s']:9.3f} "
                f"{r['warm_cpu_s']:9.3f} {1e3 * r['warm_cpu_s'] / r['steps']:11.2f}"
            )
        print(
            f"fitted exponent (cpu time ~ d^k), d >= 1e4: k = {sc['exponent_d_ge_1e4']}; "
            f"all: k = {sc['exponent_all']:.2f}"
        )

    result["machine"]["load_average_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
