"""Cost of one gradient of the ergotropy W(t) against one forward solve, and against finite
differences.

For J = 20 and J = 200 (populations of the spin of eq. (18), ground-state start, t = 3 in
hbar/E_R, omega_s = 1, density n R^3 = 0.01, coupling V0/E_R = 1, rtol = 1e-8, atol = 1e-10),
the gradient with respect to (T_a, T_m, delta) at a point where W is far from both 0 and its
maximum 2J omega_s: for J = 20 the optimum of `bench_optimize.py`, (5, 0.05, 0.406), W = 36.9;
for J = 200 (1, 0.4, 1), W = 80.6 (at the J = 20 point the J = 200 spin is fully inverted).

- forward: `jax.jit(ergotropy_at)`, one solve;
- reverse: `jax.jit(jax.grad(...))`, Diffrax `RecursiveCheckpointAdjoint` (default budget, and
  `checkpoints=16`);
- forward mode: `jax.jit(jax.jacfwd(...))` with `mode="forward"`, `diffrax.ForwardMode`;
- scaling: `mode="scaling"` (one forward tangent and the scaling law of the flow), under
  `jax.grad` and under `jax.jacfwd`;
- finite differences: central, step 1e-5 x scale, 6 forward solves (the same jitted solve).

Times are the best of `--repeat` rounds in which all variants run in turn (interleaved, so a
busy machine slows them alike); compilation times are reported separately. The
temporary memory of the compiled programs (XLA's `memory_analysis`) shows the checkpoint budget
bounding the reverse mode's tape. Accuracy: max |g - g_FD| / max |g_FD| against central
differences of a tight solve (rtol = 1e-11); W has kinks where sorted populations cross (dense
at J = 200), so the spread of that reference over step sizes is printed too. Prints a table
and writes `benchmarks/results/gradients.json`.

    python benchmarks/bench_gradients.py [--repeat 20] [--J 20 200]
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from _hostenv import machine, write_json
from _reference import population_generator

import jaxcoll
from jaxcoll._functionals import ergotropy_at

GAS = dict(omega_s=1.0, density=0.01, coupling=1.0)
POINTS = {
    20: {"T_a": 5.0, "T_m": 0.05, "delta": 0.406},
    200: {"T_a": 1.0, "T_m": 0.4, "delta": 1.0},
}
T = 3.0


def rel_err(g, ref):
    """max |g - ref| / max |ref| (components near zero do not blow it up)."""
    return float(np.max(np.abs(np.asarray(g) - ref)) / np.max(np.abs(ref)))


def central_differences(f, x0, rel_step=1e-5):
    h = rel_step * np.maximum(np.abs(np.asarray(x0)), 1e-2)
    g = np.zeros(x0.shape[0])
    for k in range(x0.shape[0]):
        e = jnp.asarray(np.eye(x0.shape[0])[k] * h[k])
        g[k] = (float(f(x0 + e)) - float(f(x0 - e))) / (2 * h[k])
    return g


def branch_reference(J, x0, rel_step=1e-5):
    """Central differences of W on its smooth branch at `x0`, outside jaxcoll's solver.

    W of eq. (23) sorts the populations, so it has a kink wherever two of them cross; the
    derivative at `x0` is that of the branch with the sort order of `x0`. Here the populations
    come from SciPy `expm` of the generator written out in NumPy (`_reference.py`; rates from
    `SpinGas.rates`, checked against SciPy integrals of eq. (12) in the tests) and the order is
    held fixed at that of `x0`, so the differences never straddle a kink.
    """

    def pops(x):
        gas = jaxcoll.SpinGas(J, T_a=x[0], T_m=x[1], delta=x[2], **GAS)
        gp, gm = (float(r) for r in gas.rates())
        L, m = population_generator(gp, gm, J)
        return scipy.linalg.expm(L * T)[:, 0], GAS["omega_s"] * m

    p0, e = pops(x0)
    order = np.argsort(p0)[::-1]

    def w_branch(x):
        p, e = pops(x)
        return e @ p - e @ p[order]

    x0 = np.asarray(x0, dtype=float)
    h = rel_step * np.maximum(np.abs(x0), 1e-2)
    g = np.zeros(3)
    for k in range(3):
        dx = np.eye(3)[k] * h[k]
        g[k] = (w_branch(x0 + dx) - w_branch(x0 - dx)) / (2 * h[k])
    gaps = -np.diff(p0[order]) / p0[order][1:]
    return g, float(np.min(gaps[: max(1, len(gaps) // 2)]))


def interleaved_best(fns: dict, repeat: int) -> dict:
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def compiled(fn, *args):
    t0 = time.perf_counter()
    c = jax.jit(fn).lower(*args).compile()
    t_compile = time.perf_counter() - t0
    mem = None
    try:
        m = c.memory_analysis()
        mem = int(m.temp_size_in_bytes) if m is not None else None
    except Exception:  # not every backend reports it
        mem = None
    return c, t_compile, mem


def measure(J, repeat):
    """Time and check every gradient variant at `J`: prints a table, returns its rows."""
    rows = []
    point = POINTS.get(int(J), POINTS[20])
    x0 = jnp.asarray([point["T_a"], point["T_m"], point["delta"]])
    kw = dict(J=J, **GAS)

    def w(x, mode="reverse", checkpoints=None, kw=kw):
        p = {"T_a": x[0], "T_m": x[1], "delta": x[2]}
        return ergotropy_at(p, T, mode=mode, checkpoints=checkpoints, **kw)

    variants = {
        "forward solve": lambda x: w(x),
        "reverse (checkpointed adjoint)": jax.grad(w),
        "reverse, checkpoints=16": jax.grad(lambda x: w(x, checkpoints=16)),
        "forward mode (jacfwd)": jax.jacfwd(lambda x: w(x, mode="forward")),
        "scaling, under grad": jax.grad(lambda x: w(x, mode="scaling")),
        "scaling, under jacfwd": jax.jacfwd(lambda x: w(x, mode="scaling")),
    }
    results = {}
    for name, fn in variants.items():
        c, t_comp, mem = compiled(fn, x0)
        results[name] = dict(compiled=c, compile=t_comp, temp_bytes=mem, value=c(x0))

    # central finite differences: timed with the same jitted solve; the accuracy reference
    # uses a tight solve (rtol 1e-11), so that FD noise does not mask the AD errors
    fwd = results["forward solve"]["compiled"]
    tight = jax.jit(
        lambda x, kw=kw: ergotropy_at(
            {"T_a": x[0], "T_m": x[1], "delta": x[2]}, T, rtol=1e-11, atol=1e-13, **kw
        )
    )
    g_fd = central_differences(tight, x0)
    # W sorts the populations (eq. 23): it is smooth only piecewise, with kinks wherever two
    # populations cross, dense at large J. The spread of the reference over step sizes shows
    # how far finite differences can be trusted there.
    fd_spread = max(rel_err(central_differences(tight, x0, rel_step=r), g_fd) for r in (1e-4, 1e-6))
    g_branch, min_gap = branch_reference(int(J), np.asarray(x0))
    fns = {name: functools.partial(r["compiled"], x0) for name, r in results.items()}
    fns["central differences (6 solves)"] = functools.partial(central_differences, fwd, x0)
    times = interleaved_best(fns, repeat)
    results["central differences (6 solves)"] = dict(compile=None, temp_bytes=None)
    t_f = times["forward solve"]
    w0 = float(results["forward solve"]["value"])
    print(f"\nJ = {J:g} (d = {int(2 * J + 1)}), point {point}, W(t={T}) = {w0:.10g}")
    print(f"finite-difference reference spread over steps 1e-4..1e-6: {fd_spread:.1e}")
    print(
        f"smallest relative gap between sorted populations (larger half): {min_gap:.1e}; "
        "branch reference: SciPy expm, sort order of the point held fixed"
    )
    header = (
        f"{'method':32s} {'time [ms]':>10s} {'x forward':>10s} {'compile [s]':>12s} "
        f"{'temp mem':>10s} {'rel. err vs FD':>15s} {'vs branch FD':>13s}"
    )
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        diff, grad, dbranch = None, None, None
        if name not in ("forward solve", "central differences (6 solves)"):
            grad = np.asarray(r["value"])
            diff = rel_err(grad, g_fd)
            dbranch = rel_err(grad, g_branch)
        if name == "central differences (6 solves)":
            grad = central_differences(fwd, x0)
            diff = rel_err(grad, g_fd)
            dbranch = rel_err(grad, g_branch)
        mem, comp = r.get("temp_bytes"), r.get("compile")
        print(
            f"{name:32s} {1e3 * times[name]:10.3f} {times[name] / t_f:10.2f} "
            f"{'-' if comp is None else f'{comp:.2f}':>12s} "
            f"{'-' if mem is None else f'{mem / 2**10:.0f} KiB':>10s} "
            f"{'-' if diff is None else f'{diff:.2e}':>15s} "
            f"{'-' if dbranch is None else f'{dbranch:.2e}':>13s}"
        )
        rows.append(
            {
                "J": J,
                "point": point,
                "W": w0,
                "method": name,
                "time_s": times[name],
                "ratio_to_forward": times[name] / t_f,
                "compile_s": comp,
                "temp_bytes": mem,
                "rel_err_vs_fd": diff,
                "fd_reference_spread": fd_spread,
                "rel_err_vs_branch_fd": dbranch,
                "branch_reference": g_branch.tolist(),
                "min_relative_population_gap": min_gap,
                "gradient": None if grad is None else grad.tolist(),
            }
        )
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--J", type=float, nargs="+", default=[20, 200])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument(
        "--out", default=str(pathlib.Path(__file__).parent / "results" / "gradients.json")
    )
    args = ap.parse_args()

    rows = [r for J in args.J for r in measure(J, args.repeat)]

    payload = {
        "benchmark": "gradients",
        "setup": {
            "functional": "ergotropy_at, ground-state start",
            "t": T,
            "points": {str(k): v for k, v in POINTS.items()},
            **GAS,
            "rtol": 1e-8,
            "atol": 1e-10,
            "fd_step": "1e-5 x max(|x|, 1e-2), central",
            "accuracy_reference": "central differences of a rtol=1e-11, atol=1e-13 solve",
            "branch_reference": "central differences (step 1e-5) of W with the sort order of the "
            "point held fixed, populations by SciPy expm",
        },
        "repeat": args.repeat,
        "machine": machine(),
        "versions": {"jax": jax.__version__, "numpy": np.__version__},
        "results": rows,
    }
    out = write_json(args.out, payload)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
