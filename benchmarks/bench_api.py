"""Warm time of the public calls a user makes most, for comparing two versions of the code.

`python benchmarks/bench_api.py` times, in this process (best of 5 after a warm-up):
`jax.jit(jax.value_and_grad(ergotropy_at))` at J = 20 (t = 3, where W = 0, and t = 30),
`ergotropy_curve(20, 2, 0.5, 1, 200 times)`, `evolve` of the J = 100 spin from its ground
state as a density matrix (50 saves) and `heat_statistics` of the J = 100 populations
(100 saves, `error_control="state"`), and prints one value of each.

`--against DIR` runs the same calls on the jaxcoll in DIR (e.g. a `git worktree` of an older
commit) in separate processes, the two versions taking turns for `--rounds` rounds, and prints
the best time of each with the ratio and the largest relative difference of the values.
Writes `results/api.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _measure() -> dict:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    import jaxcoll

    def best_of(f, n=5):
        jax.block_until_ready(f())
        best = float("inf")
        for _ in range(n):
            t0 = time.perf_counter()
            out = jax.block_until_ready(f())
            best = min(best, time.perf_counter() - t0)
        return best, out

    gas_kw = dict(J=20, T_a=5.0, density=0.01, coupling=1.0)
    p = {"T_m": jnp.asarray(1.0), "delta": jnp.asarray(2.0)}
    rows = {}
    for t in (3.0, 30.0):
        vg = jax.jit(jax.value_and_grad(lambda q, t=t: jaxcoll.ergotropy_at(q, t, **gas_kw)))
        sec, (w, g) = best_of(lambda vg=vg: vg(p))
        rows[f"value_and_grad(ergotropy_at), t = {t:g}"] = (sec, [float(w), float(g["T_m"])])
    ts = jnp.linspace(0.0, 20.0, 200)
    sec, w = best_of(lambda: jaxcoll.ergotropy_curve(20, 2.0, 0.5, 1.0, ts))
    rows["ergotropy_curve, J = 20, 200 times"] = (sec, [float(w[-1]), float(w[100])])
    gas = jaxcoll.SpinGas(100, omega_s=1.0, delta=2.0, T_a=5.0, T_m=1.0, gamma_tilde=1.0)
    p0 = jnp.zeros(gas.dim).at[0].set(1.0)
    rho0 = jnp.diag(p0).astype(complex)
    sec, r = best_of(lambda: jaxcoll.evolve(gas, rho0, jnp.linspace(0.0, 3.0, 50)))
    rows["evolve, J = 100, density matrix"] = (sec, [float(r.ergotropy[-1]), float(r.energy[-1])])
    sec, h = best_of(
        lambda: jaxcoll.heat_statistics(gas, p0, jnp.linspace(0.0, 2.0, 100), error_control="state")
    )
    rows["heat_statistics, J = 100, order 2"] = (sec, [float(h.covariance[-1, 0, 0])])
    return rows


def _run(tree: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run(
        [sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", type=Path, help="another checkout of jaxcoll to compare with")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_measure()))
        return
    sys.path.insert(0, str(HERE))
    import _hostenv

    _hostenv.configure(devices=1)
    this = HERE.parent
    trees = {"this": this} | ({"other": args.against.resolve()} if args.against else {})
    runs = {name: [] for name in trees}
    for _ in range(args.rounds):  # the versions take turns
        for name, tree in trees.items():
            runs[name].append(_run(tree))
    table = []
    for call in runs["this"][0]:
        row = {"call": call, "this_ms": 1e3 * min(r[call][0] for r in runs["this"])}
        if "other" in runs:
            row["other_ms"] = 1e3 * min(r[call][0] for r in runs["other"])
            row["this/other"] = row["this_ms"] / row["other_ms"]
            a, b = runs["this"][0][call][1], runs["other"][0][call][1]
            row["max_rel_diff"] = max(
                abs(x - y) / max(abs(y), 1e-300) for x, y in zip(a, b, strict=True)
            )
        row["values"] = runs["this"][0][call][1]
        table.append(row)
    for row in table:
        print(
            "  ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            )
        )
    machine = _hostenv.machine(against=str(args.against) if args.against else None)
    path = _hostenv.write_json(HERE / "results" / "api.json", {"machine": machine, "rows": table})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
