"""A 64 x 64 parameter scan of the ergotropy W(t = 3) at J = 20: jaxcoll vs SciPy vs QuTiP.

Grid: T_m in [0.05, 1] (64 values) x delta in [0, 10] (64 values), T_a = 5 fixed; J = 20,
omega_s = 1, density n R^3 = 0.01, coupling V0/E_R = 1, ground-state start, t = 3 hbar/E_R.
About a third of the grid inverts the spin (eq. 22: T_m < delta T_a / (omega_s + delta)).

- jaxcoll: `scan(fn, grid(...))` with `fn` = `ergotropy_at` as a user calls it (default
  the default solver, which at d = 41 is the exact path of `jaxcoll/_expm.py`: uniformisation of
  the population generator, no time steps, atol = rtol/100 = 1e-8 bounds the populations'
  1-norm error), `jax.vmap` over chunks taken in Z-order (`order="locality"`), for the chunk
  sizes `--chunk` (main row) and `--chunks`; the exact path with atol 1e-13 (round-off); and
  the adaptive Rosenbrock path (`solver="rodas5p", tridiagonal="cyclic"`) at rtol 1e-6 and
  1e-8. Warm time (compiled,
  best of `--repeat`) and cold time (with compilation) of the main row.
- SciPy: a Python loop of `scipy.linalg.expm(L t)` on the (2J+1)-dimensional tridiagonal
  population generator L built in NumPy, then eq. (23): the exact reference. The rates for
  all points are computed beforehand in one vectorised call (`SpinGas.rates`, reported).
- QuTiP: `qutip.mesolve` of the full master equation (18) (H = omega_s J_z, collapse operators
  sqrt(Gamma_+) J_+ and sqrt(Gamma_-) J_-, 41 x 41 density matrix, ground-state start,
  rtol 1e-8, atol 1e-10, which is less accurate than jaxcoll's main row), on a random
  subsample of `--qutip-points` grid points; the time per point is extrapolated to the grid.

BLAS is limited to one thread (set before NumPy loads; SciPy's and QuTiP's small dense
operations are fastest that way, and oversubscribed BLAS threads make them erratic). JAX runs as
a plain `python script.py` starts it, on one CPU device (`--devices=N`: N devices set up before
JAX starts, `--xla_force_host_platform_device_count`, over which `scan` shards every chunk; the
JSON records which).
Accuracy: max |W - W_expm| of each method (QuTiP on its subsample). Prints a table and writes
`benchmarks/results/scan.json`.

    python benchmarks/bench_scan.py [--devices=2] [--chunk 128] [--chunks 64,256] [--quick]
"""

# ruff: noqa: E402  (BLAS thread limits must be set before NumPy is imported)
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

from _hostenv import configure, machine, write_json

# One XLA host device by default, as a plain `python script.py` sees; `--devices=2` gives one
# per core, over which `scan` shards its chunks (set before JAX loads).
_DEVICES = next((a.split("=")[1] for a in sys.argv if a.startswith("--devices=")), None)
_DEVICES = int(_DEVICES) if _DEVICES else 1
if _DEVICES > 1:
    configure(_DEVICES)
else:  # XLA exactly as a plain process starts it; BLAS one thread for SciPy and QuTiP
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import jax
import jax.numpy as jnp
import numpy as np
import scipy
import scipy.linalg
from _reference import ergotropy, ergotropy_from_ground

import jaxcoll
from jaxcoll._functionals import ergotropy_at
from jaxcoll._scan import grid, scan

J = 20
T = 3.0
T_A = 5.0
GAS = dict(omega_s=1.0, density=0.01, coupling=1.0)


def make_w_point(rtol, method="auto", atol=None):
    atol = 1e-2 * rtol if atol is None else atol

    def w_point(p):
        params = {"T_a": T_A, "T_m": p["T_m"], "delta": p["delta"]}
        solver = {"auto": {}, "exponential": {"solver": "exponential"}}.get(
            method, {"solver": "rodas5p", "tridiagonal": method}
        )
        return ergotropy_at(params, T, J=J, rtol=rtol, atol=atol, **solver, **GAS)

    return w_point


def reference_rates(T_m, delta):
    """(Gamma_+, Gamma_-) at every point, in one vectorised call, as NumPy arrays."""
    rates = jax.jit(
        jax.vmap(lambda tm, dl: jaxcoll.SpinGas(J, T_a=T_A, T_m=tm, delta=dl, **GAS).rates())
    )
    return tuple(np.asarray(r) for r in rates(jnp.asarray(T_m), jnp.asarray(delta)))


def scipy_w(gp, gm):
    return ergotropy_from_ground(gp, gm, J, T, GAS["omega_s"])


def qutip_w(gp, gm):
    import qutip

    d = 2 * J + 1
    jz, jp, jm = qutip.jmat(J, "z"), qutip.jmat(J, "+"), qutip.jmat(J, "-")
    H = GAS["omega_s"] * jz
    rho0 = qutip.ket2dm(qutip.basis(d, d - 1))  # QuTiP orders m = +J first: m = -J is last
    c_ops = [np.sqrt(gp) * jp, np.sqrt(gm) * jm]
    res = qutip.mesolve(
        H, rho0, [0.0, T], c_ops, options={"atol": 1e-10, "rtol": 1e-8, "nsteps": 10**6}
    )
    pops = np.real(np.diag(res.states[-1].full()))[::-1]  # back to ascending energy
    return ergotropy(pops, GAS["omega_s"] * (np.arange(d) - J))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="points per axis")
    ap.add_argument("--chunk", type=int, default=128, help="chunk size of the main row")
    ap.add_argument("--chunks", default="64,256,1024,4096", help="further chunk sizes")
    ap.add_argument("--quick", action="store_true", help="32 x 32 grid, fewer rows")
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument(
        "--devices", type=int, default=_DEVICES, help="XLA CPU devices (write --devices=N)"
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--qutip-points", type=int, default=24)
    ap.add_argument("--out", default=str(pathlib.Path(__file__).parent / "results" / "scan.json"))
    args = ap.parse_args()
    if args.quick:
        args.n, args.chunks, args.repeat, args.qutip_points = 32, "1024", 2, 6

    pts = grid(T_m=np.linspace(0.05, 1.0, args.n), delta=np.linspace(0.0, 10.0, args.n))
    n = pts["T_m"].size

    # jaxcoll: cold (compile + run), then warm (cached compiled runner), for the main setting
    # (Z-order chunks, cyclic-reduction solves) and for plain settings
    # (label, method, atol, chunk, order): the default (exact path at d = 41) over chunk sizes,
    # the exact path to round-off, and the adaptive Rosenbrock path as before
    chunks = [int(c) for c in args.chunks.split(",")]
    configs = [("exact (default)", "auto", 1e-2 * args.rtol, args.chunk, "locality")]
    configs += [("exact (default)", "auto", 1e-2 * args.rtol, c, "locality") for c in chunks]
    configs += [
        ("exact, atol 1e-13", "auto", 1e-13, args.chunk, "locality"),
        (f"adaptive rtol {args.rtol:g}", "cyclic", 1e-2 * args.rtol, args.chunk, "locality"),
        ("adaptive rtol 1e-8", "cyclic", 1e-10, args.chunk, "locality"),
    ]
    seen, jax_rows = set(), []
    for label, method, atol, chunk, order in configs:
        if (label, chunk) in seen:
            continue
        seen.add((label, chunk))
        rtol = 1e-8 if label == "adaptive rtol 1e-8" else args.rtol
        w_point = make_w_point(rtol, method, atol)
        t0 = time.perf_counter()
        w = scan(w_point, pts, chunk_size=chunk, progress=False, order=order)
        t_cold = time.perf_counter() - t0
        t_warm = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            w = scan(w_point, pts, chunk_size=chunk, progress=False, order=order)
            t_warm = min(t_warm, time.perf_counter() - t0)
        jax_rows.append((label, chunk, order, t_warm, t_cold, w))
    _, _, _, t_warm, t_cold, w_jax = jax_rows[0]

    # rates for the references (one vectorised call)
    t0 = time.perf_counter()
    gp, gm = reference_rates(pts["T_m"], pts["delta"])
    t_rates = time.perf_counter() - t0

    t0 = time.perf_counter()
    w_scipy = np.array([scipy_w(a, b) for a, b in zip(gp, gm, strict=True)])
    t_scipy = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    sub = rng.choice(n, size=min(args.qutip_points, n), replace=False)
    qutip_w(gp[sub[0]], gm[sub[0]])  # warm-up (imports, first-call overheads)
    t0 = time.perf_counter()
    w_qutip = np.array([qutip_w(gp[i], gm[i]) for i in sub])
    t_qutip_sub = time.perf_counter() - t0
    t_qutip = t_qutip_sub / sub.size * n

    err_scipy = float(np.max(np.abs(w_jax - w_scipy)))
    err_qutip = float(np.max(np.abs(w_qutip - w_scipy[sub])))
    inverted = float(np.mean(w_scipy > 1e-9))

    print(f"W(t={T}) at J={J}, T_a={T_A}: {args.n} T_m x {args.n} delta = {n} points")
    print(f"jaxcoll on {len(jax.devices())} XLA CPU device(s); BLAS threads: 1")
    print(f"(inverted at t: {100 * inverted:.0f}% of the grid; max W = {w_scipy.max():.4f})")
    header = (
        f"{'method':52s} {'time [s]':>9s} {'points/s':>10s} {'max |W - W_expm|':>17s} "
        f"{'jaxcoll speedup':>16s}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for k, (label, c, _, tw, tc, w) in enumerate(jax_rows):
        e = float(np.max(np.abs(w - w_scipy)))
        rows.append((f"jaxcoll scan, {label}, chunk {c}", tw, e))
        if k == 0:
            rows.append(("  same, cold (incl. compilation)", tc, e))
    rows.append(("SciPy expm loop (reference; rates precomputed)", t_scipy, 0.0))
    rows.append((f"QuTiP mesolve rtol 1e-8, extrapolated from {sub.size} pts", t_qutip, err_qutip))
    results = []
    for name, t, e in rows:
        speed = t / t_warm
        print(f"{name:52s} {t:9.3f} {n / t:10.0f} {e:17.1e} {speed:15.1f}x")
        results.append(
            {
                "method": name,
                "time_s": t,
                "per_point_s": t / n,
                "max_abs_err_vs_expm": e,
                "ratio": speed,
            }
        )
    print(f"\nrates for the references (vectorised, incl. compile): {t_rates:.2f} s")
    print(f"speedup vs SciPy: {t_scipy / t_warm:.1f}x (target >= 5x); ", end="")
    print(f"vs QuTiP: {t_qutip / t_warm:.0f}x (target >= 200x), jaxcoll at least as accurate")

    import qutip

    payload = {
        "benchmark": "scan",
        "setup": {
            "J": J,
            "t": T,
            "T_a": T_A,
            **GAS,
            "T_m": [0.05, 1.0, args.n],
            "delta": [0.0, 10.0, args.n],
            "jaxcoll": {
                "method": "auto (exact path at d = 41)",
                "rtol": args.rtol,
                "atol": 1e-2 * args.rtol,
                "chunk_size": args.chunk,
                "order": "locality",
            },
            "qutip": {"rtol": 1e-8, "atol": 1e-10, "points": int(sub.size)},
        },
        "inverted_fraction": inverted,
        "max_abs_err_vs_expm": {"jaxcoll": err_scipy, "qutip": err_qutip},
        "rates_time_s": t_rates,
        "speedup_vs_scipy": t_scipy / t_warm,
        "speedup_vs_qutip": t_qutip / t_warm,
        "machine": machine(
            xla_devices=len(jax.devices()), blas_threads=os.environ.get("OPENBLAS_NUM_THREADS")
        ),
        "versions": {
            "jax": jax.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "qutip": qutip.__version__,
        },
        "results": results,
    }
    out = write_json(args.out, payload)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
