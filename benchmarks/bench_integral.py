"""Throughput and accuracy of the scattering integral I(alpha, s) of eq. (20).

Compares, on the same random points (alpha log-uniform in [1e-3, 1e3], s uniform in
[-500, 500], unrestricted: about half the points have s > 0 and a large part of those underflow
to I = 0):

- `jaxcoll.scattering_integral` under `jax.jit` (input checks compiled in), and called eagerly;
- the same overflow-free closed form in vectorised NumPy with `scipy.special.k1e`;
- `jaxcoll` direct quadrature of eq. (20) (`scattering_integral_quad`, on fewer points).

Times are the best of several warm runs (`block_until_ready`). Accuracy is the maximum relative
error of I (where I >= 1e-290) and of ln I (divided by max(1, |ln I|)) against mpmath at 50
digits on a random sample. Prints a table and writes `benchmarks/results/integral.json`.

    python benchmarks/bench_integral.py [--n 1000000] [--n-quad 20000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import scipy
import scipy.special

import jaxcoll
from jaxcoll._integral import scattering_integral_quad


def numpy_closed_form(alpha, s):
    """I(alpha, s) = 2/(alpha(alpha+4)) e^{e} x k1e(x), the same stable form, NumPy + SciPy."""
    k = np.sqrt(alpha * (alpha + 4.0))
    x = 0.5 * np.abs(s) * k
    e = np.where(s >= 0, -0.5 * s * (alpha + k), s * (2.0 * alpha / (k + alpha)))
    with np.errstate(invalid="ignore"):
        h = np.where(x > 0, x * scipy.special.k1e(x), 1.0)
    return (2.0 / (alpha * (alpha + 4.0))) * np.exp(e) * h


def best_time(fn, repeat):
    fn()  # warm (and compile)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def mpmath_log_reference(alpha, s):
    with mp.workdps(50):
        out = []
        for a, sv in zip(alpha, s, strict=True):
            a, sv = mp.mpf(float(a)), mp.mpf(float(sv))
            k = mp.sqrt(a * (a + 4))
            if sv == 0:
                out.append(mp.log(2 / (a * (a + 4))))
            else:
                out.append(
                    mp.log(abs(sv) / k) - a * sv / 2 + mp.log(mp.besselk(1, abs(sv) * k / 2))
                )
        return np.array([float(v) for v in out])


def errors(value, log_value, ref_log):
    """Max relative error of I where I >= 1e-290, and max |ln I - ref|/max(1, |ref|) over the
    points where `log_value` is finite (all of them for jaxcoll)."""
    ok = ref_log >= np.log(1e-290)
    rel = np.max(np.abs(np.asarray(value)[ok] / np.exp(ref_log[ok]) - 1.0))
    log_value = np.asarray(log_value)
    fin = np.isfinite(log_value)
    log_err = np.max(np.abs(log_value[fin] - ref_log[fin]) / np.maximum(1.0, np.abs(ref_log[fin])))
    return float(rel), float(log_err), int(fin.sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--n-quad", type=int, default=20_000)
    parser.add_argument("--n-accuracy", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", default=str(pathlib.Path(__file__).parent / "results" / "integral.json")
    )
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    alpha = 10.0 ** rng.uniform(-3, 3, args.n)
    s = rng.uniform(-500, 500, args.n)
    alpha_j, s_j = jnp.asarray(alpha), jnp.asarray(s)

    jitted = jax.jit(jaxcoll.scattering_integral)
    quad = jax.jit(lambda a, s: scattering_integral_quad(a, s))
    aq, sq = alpha_j[: args.n_quad], s_j[: args.n_quad]

    t_jit = best_time(lambda: jitted(alpha_j, s_j).block_until_ready(), args.repeat)
    t_eager = best_time(
        lambda: jaxcoll.scattering_integral(alpha_j, s_j).block_until_ready(), args.repeat
    )
    t_numpy = best_time(lambda: numpy_closed_form(alpha, s), args.repeat)
    t_quad = best_time(lambda: quad(aq, sq).block_until_ready(), max(2, args.repeat // 3))

    # Accuracy against mpmath on a random sample of the same points (plus s = 0).
    idx = rng.choice(args.n, args.n_accuracy, replace=False)
    a_acc, s_acc = alpha[idx], s[idx].copy()
    s_acc[:5] = 0.0
    ref = mpmath_log_reference(a_acc, s_acc)
    acc_jax = errors(
        jaxcoll.scattering_integral(a_acc, s_acc),
        jaxcoll.log_scattering_integral(a_acc, s_acc),
        ref,
    )
    np_val = numpy_closed_form(a_acc, s_acc)
    with np.errstate(divide="ignore"):
        acc_np = errors(np_val, np.log(np_val), ref)  # no log variant: ln of what is > 0
    q_log = scattering_integral_quad(a_acc, s_acc, log=True)
    acc_quad = errors(np.exp(q_log), q_log, ref)

    agree = np.asarray(jitted(alpha_j, s_j))
    ref_np = numpy_closed_form(alpha, s)
    both = ref_np > 1e-290
    jax_vs_scipy = float(np.max(np.abs(agree[both] / ref_np[both] - 1.0)))

    rows = [
        ("jaxcoll.scattering_integral, jax.jit", args.n, t_jit, *acc_jax),
        ("jaxcoll.scattering_integral, eager", args.n, t_eager, *acc_jax),
        ("NumPy + scipy.special.k1e, same form", args.n, t_numpy, *acc_np),
        ("jaxcoll quadrature of eq. (20), jit", args.n_quad, t_quad, *acc_quad),
    ]
    print(
        f"\nI(alpha, s), alpha ~ logU[1e-3, 1e3], s ~ U[-500, 500]; "
        f"{os.cpu_count()} CPU cores, jax {jax.__version__} ({jax.default_backend()}), "
        f"scipy {scipy.__version__}"
    )
    header = f"{'method':40s} {'points':>9s} {'time [ms]':>10s} {'Mpts/s':>8s}"
    header += f" {'max rel err':>12s} {'max log err':>12s}"
    print(header)
    print("-" * len(header))
    results = []
    for name, n, t, rel, log_err, n_log in rows:
        rate = n / t / 1e6
        mark = "" if n_log == args.n_accuracy else "*"
        print(f"{name:40s} {n:9d} {1e3 * t:10.2f} {rate:8.2f} {rel:12.2e} {log_err:11.2e}{mark}")
        results.append(
            {
                "method": name,
                "points": n,
                "seconds": t,
                "mpoints_per_s": rate,
                "max_rel_err": rel,
                "max_log_err": log_err,
                "log_err_points": n_log,
            }
        )
    speedup = t_numpy / t_jit
    print(f"\njaxcoll (jit) / SciPy throughput ratio: {speedup:.2f}x")
    print(f"max |jaxcoll/SciPy - 1| over the {int(both.sum())} points with I > 1e-290:", end=" ")
    print(f"{jax_vs_scipy:.2e}")
    print(f"(accuracy columns: {args.n_accuracy} random points vs mpmath at 50 digits;")
    print(" * log error only where I did not underflow: NumPy/SciPy has no log form)")

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "scattering_integral",
        "sampling": "alpha log-uniform [1e-3, 1e3], s uniform [-500, 500], unrestricted",
        "n": args.n,
        "n_quad": args.n_quad,
        "repeat": args.repeat,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "backend": jax.default_backend(),
        },
        "versions": {"jax": jax.__version__, "scipy": scipy.__version__, "numpy": np.__version__},
        "results": results,
        "throughput_ratio_jax_jit_over_scipy": speedup,
        "max_rel_diff_jax_vs_scipy": jax_vs_scipy,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
