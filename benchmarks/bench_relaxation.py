"""Spectral gap of the whole Liouvillian (issue "Any system as fast as the spin", target: the
spin's gap at J = 10^4 in < 10 s) and the stationary populations at large J.

Spin of eq. (17)-(19) at the Fig. 2 parameters (D = 2, A = 0.5, alpha = 1: omega_s = 1,
delta = 2, T_a = 6, T_m = E_R = 1, gamma_tilde = 1). `jaxcoll.relaxation_rates(gas, k=3)` over
all d^2 eigenvalues (the d coherence bands), cold (first call, includes building the sectors)
and warm; `jaxcoll.steady_state(gas, populations=True)` against eq. (21). At J <= 20 the gap is
also checked against NumPy `eigvals` of the dense superoperator.

    python benchmarks/bench_relaxation.py           # J = 20, 100, 1000, 10^4 (+ steady state 10^5)
    python benchmarks/bench_relaxation.py --quick   # J = 20, 100, 1000
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import jaxcoll
from jaxcoll._protocol import dense_superoperator

KW = dict(omega_s=1.0, delta=2.0, T_a=6.0, T_m=1.0, gamma_tilde=1.0)


def timed(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def eq21(J):
    d = int(2 * J) + 1
    beta = (3.0 * 1.0 - 2.0 * 6.0) / (
        1.0 * 6.0 * 1.0
    )  # (omega_a T_m - delta T_a)/(omega_s T_a T_m)
    logp = -beta * (np.arange(d) - J)
    logp -= logp.max()
    return logp - np.log(np.exp(logp).sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    Js = [20, 100, 1000] if args.quick else [20, 100, 1000, 10_000]
    rows = []
    for J in Js:
        gas = jaxcoll.SpinGas(J, **KW)
        r_cold, t_cold = timed(lambda gas=gas: jaxcoll.relaxation_rates(gas, k=3))
        r, t_warm = timed(lambda gas=gas: jaxcoll.relaxation_rates(gas, k=3))
        check = None
        if J <= 20:
            lam = np.linalg.eigvals(dense_superoperator(gas))
            ref = np.sort(-lam.real)
            ref = ref[ref > 1e-9]
            check = float(abs(r[0] - ref[0]) / ref[0])
        rows.append(
            dict(
                J=J,
                d=2 * J + 1,
                gap=float(r[0]),
                next=float(r[2]),
                cold_s=t_cold,
                warm_s=t_warm,
                rel_err_vs_eigvals=check,
            )
        )
    ss = []
    for J in [1000, 10_000] + ([] if args.quick else [100_000]):
        gas = jaxcoll.SpinGas(J, **KW)
        p, t = timed(lambda gas=gas: np.asarray(jaxcoll.steady_state(gas, populations=True)))
        ref = eq21(J)
        big = ref > -600
        err = float(np.max(np.abs(np.log(p[big]) - ref[big])))
        ss.append(dict(J=J, time_s=t, max_log_err_vs_eq21=err))
    print("spectral gap of the whole Liouvillian (Fig. 2 spin), relaxation_rates(k=3)")
    print(
        f"{'J':>7} {'d^2':>12} {'gap':>12} {'3rd rate':>12} {'cold s':>8} {'warm s':>8} "
        f"{'vs eigvals':>10}"
    )
    for r in rows:
        chk = "-" if r["rel_err_vs_eigvals"] is None else f"{r['rel_err_vs_eigvals']:.1e}"
        print(
            f"{r['J']:>7} {r['d'] ** 2:>12} {r['gap']:>12.6g} {r['next']:>12.6g} "
            f"{r['cold_s']:>8.2f} {r['warm_s']:>8.2f} {chk:>10}"
        )
    print("\nsteady_state(populations=True) against eq. (21)")
    for s in ss:
        print(
            f"{s['J']:>7}  {s['time_s']:.3f} s  "
            f"max |ln p - ln p_21| = {s['max_log_err_vs_eq21']:.1e}"
        )
    out = (
        Path(__file__).parent
        / "results"
        / ("relaxation_quick.json" if args.quick else "relaxation.json")
    )
    out.write_text(
        json.dumps(
            dict(gap=rows, steady_state=ss, load_average=os.getloadavg(), quick=args.quick),
            indent=2,
        )
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
