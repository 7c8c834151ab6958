"""`optimize_ergotropy` against a 22 x 22 x 22 brute-force grid scored by an independent solver.

J = 20, t = 3, omega_s = 1, density 0.01, coupling 1, T_a in [0.2, 5], T_m in [0.05, 5],
delta in [0, 10]. Every grid point is scored with `scipy.linalg.expm` of the tridiagonal
population generator (rates from jaxcoll's SpinGas, dynamics from SciPy); the optimiser's answer
is re-scored the same way. Prints a table; writes benchmarks/results/optimize.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import scipy.linalg

import jaxcoll
from jaxcoll._optimize import optimize_ergotropy

J, T_FINAL = 20, 3.0
GAS = dict(omega_s=1.0, density=0.01, coupling=1.0)
BOX = dict(T_a=(0.2, 5.0), T_m=(0.05, 5.0), delta=(0.0, 10.0))


def reference_w(T_a, T_m, delta):
    gp, gm = (float(r) for r in jaxcoll.SpinGas(J, T_a=T_a, T_m=T_m, delta=delta, **GAS).rates())
    d = 2 * J + 1
    m = np.arange(d) - J
    c2 = (J - m[:-1]) * (J + m[:-1] + 1.0)
    i = np.arange(d - 1)
    L = np.zeros((d, d))
    L[i + 1, i] += gp * c2
    L[i, i] -= gp * c2
    L[i, i + 1] += gm * c2
    L[i + 1, i + 1] -= gm * c2
    p = scipy.linalg.expm(L * T_FINAL)[:, 0]
    e = GAS["omega_s"] * m
    return float(e @ p - e @ np.sort(p)[::-1])


def main():
    t0 = time.perf_counter()
    res = optimize_ergotropy(J, T_FINAL, **GAS, **BOX)
    t_opt = time.perf_counter() - t0
    ours = reference_w(res.T_a, res.T_m, res.delta)
    axes = [np.linspace(*BOX[k], 22) for k in ("T_a", "T_m", "delta")]
    t0 = time.perf_counter()
    best, best_x = -np.inf, None
    for a in axes[0]:
        for m_ in axes[1]:
            for dl in axes[2]:
                w = reference_w(a, m_, dl)
                if w > best:
                    best, best_x = w, (a, m_, dl)
    t_grid = time.perf_counter() - t0
    rel = ours / best - 1.0
    print(f"{'method':32s} {'W(t=3)':>10s} {'T_a':>7s} {'T_m':>7s} {'delta':>7s} {'time [s]':>9s}")
    print(
        f"{'optimize_ergotropy':32s} {ours:10.5f} {res.T_a:7.3f} {res.T_m:7.3f} "
        f"{res.delta:7.3f} {t_opt:9.1f}"
    )
    print(
        f"{'22^3 grid, SciPy expm':32s} {best:10.5f} {best_x[0]:7.3f} {best_x[1]:7.3f} "
        f"{best_x[2]:7.3f} {t_grid:9.1f}"
    )
    print(f"optimiser / grid best - 1 = {rel:+.2e} (target >= -5e-3)")
    out = Path(__file__).parent / "results" / "optimize.json"
    out.write_text(
        json.dumps(
            dict(
                optimizer=dict(
                    T_a=res.T_a,
                    T_m=res.T_m,
                    delta=res.delta,
                    ergotropy_rescored=ours,
                    ergotropy_reported=float(res.ergotropy),
                    seconds=t_opt,
                ),
                grid=dict(points=22**3, best=best, at=best_x, seconds=t_grid),
                relative_difference=rel,
            ),
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
