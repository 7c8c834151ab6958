"""`scan` on 2 processes against 1 process on this machine (jax.distributed, gloo collectives).

Workload: W(t = 3) at J = `--J` (200; `ergotropy_at`, Rosenbrock solver, rtol `--rtol`
(1e-8), atol rtol/100) on an `--n` x `--n` (32 x 32) grid of T_m in [0.05, 1] x delta in
[0, 10], T_a = 5, as in `bench_scan.py` but at a larger J, so that computing rather than
start-up dominates, in chunks of `--chunk` (128) points (Z-order). Each configuration is a
fresh job of worker processes (this script started again with `--worker`), all on 127.0.0.1:

- 1 process x 1 device: the baseline;
- 1 process x 2 devices: one process, each chunk sharded over two XLA CPU devices;
- 2 processes x 1 device, without `out` (results exchanged once, at the end);
- 2 processes x 1 device, with `out` (results exchanged after every round, written by process 0).

Times: `job` is the wall time of the whole job (Python and JAX start-up, `jax.distributed`
initialisation, compilation, the scans); `cold` the first `scan` call (with compilation),
`warm` the best of `--repeat` (3) further calls (compiled), both measured on process 0. XLA
runs one thread per device (`--xla_cpu_multi_thread_eigen=false`) and BLAS one thread, so that
devices map to cores. Every configuration's result is compared with the baseline's (bit for bit, and
max |dW|). Prints a table and writes `benchmarks/results/multiprocess.json`.

    python benchmarks/bench_multiprocess.py [--J 200] [--n 32] [--chunk 128] [--rtol 1e-8] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
T, T_A = 3.0, 5.0
GAS = dict(omega_s=1.0, density=0.01, coupling=1.0)


def _worker(args) -> None:
    import jax

    jax.config.update("jax_num_cpu_devices", args.devices)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_enable_x64", True)
    if args.nproc > 1:
        jax.distributed.initialize(
            f"127.0.0.1:{args.port}", num_processes=args.nproc, process_id=args.rank
        )
    sys.path.insert(0, str(ROOT))
    from jaxcoll._functionals import ergotropy_at
    from jaxcoll._scan import grid, scan

    pts = grid(T_m=np.linspace(0.05, 1.0, args.n), delta=np.linspace(0.0, 10.0, args.n))

    def w_point(p):
        params = {"T_a": T_A, "T_m": p["T_m"], "delta": p["delta"]}
        return ergotropy_at(params, T, J=args.J, rtol=args.rtol, atol=1e-2 * args.rtol, **GAS)

    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(1 + args.repeat):  # cold, then warm
            out = os.path.join(tmp, str(k)) if args.use_out else None
            t0 = time.perf_counter()
            w = scan(w_point, pts, chunk_size=args.chunk, out=out, progress=False, resume=False)
            times.append(time.perf_counter() - t0)
    if jax.process_index() == 0:
        np.save(args.result, w)
        pathlib.Path(args.result + ".json").write_text(
            json.dumps({"cold": times[0], "warm": min(times[1:])})
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _job(args, nproc, devices, use_out, tmp, tag):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    port, result = _free_port(), os.path.join(tmp, tag + ".npy")
    common = [sys.executable, __file__, "--worker", "--port", str(port), "--nproc", str(nproc)]
    common += ["--devices", str(devices), "--n", str(args.n), "--chunk", str(args.chunk)]
    common += ["--J", str(args.J), "--repeat", str(args.repeat)]
    common += ["--rtol", str(args.rtol), "--result", result] + (["--use-out"] if use_out else [])
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(common + ["--rank", str(r)], env=env, stderr=subprocess.PIPE, text=True)
        for r in range(nproc)
    ]
    try:
        for p in procs:
            _, err = p.communicate(timeout=args.timeout)
            if p.returncode:
                raise RuntimeError(f"{tag}: worker failed\n{err[-3000:]}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    job = time.perf_counter() - t0
    times = json.loads(pathlib.Path(result + ".json").read_text())
    return {"job": job, **times}, np.load(result)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--J", type=int, default=200)
    ap.add_argument("--rtol", type=float, default=1e-8)
    ap.add_argument("--quick", action="store_true", help="J = 20, a 12 x 12 grid, chunks of 16")
    ap.add_argument("--repeat", type=int, default=3, help="warm calls; the best counts")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument(
        "--out", default=str(pathlib.Path(__file__).parent / "results" / "multiprocess.json")
    )
    # worker-only arguments
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--nproc", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--use-out", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return _worker(args)
    if args.quick:
        args.J, args.n, args.chunk = 20, 12, 16

    configs = [  # (label, processes, devices per process, out)
        ("1 process x 1 device", 1, 1, False),
        ("1 process x 2 devices", 1, 2, False),
        ("2 processes x 1 device", 2, 1, False),
        ("2 processes x 1 device, out=", 2, 1, True),
    ]
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (label, nproc, devices, use_out) in enumerate(configs):
            times, w = _job(args, nproc, devices, use_out, tmp, f"c{k}")
            if k == 0:
                w_ref = w
            rows.append(
                {
                    "config": label,
                    "processes": nproc,
                    "devices_per_process": devices,
                    "out": use_out,
                    **{f"{key}_s": v for key, v in times.items()},
                    "bit_identical_to_baseline": w.tobytes() == w_ref.tobytes(),
                    "max_abs_diff_vs_baseline": float(np.max(np.abs(w - w_ref))),
                }
            )
    load_after = os.getloadavg()
    base = rows[0]["warm_s"]
    for r in rows:
        r["speedup_warm"] = base / r["warm_s"]

    n_pts = args.n * args.n
    print(f"W(t={T}) at J={args.J}, {n_pts} points, chunk {args.chunk}, rtol {args.rtol:g}")
    before, after = load_before[0], load_after[0]
    print(f"load average before {before:.2f}, after {after:.2f} ({os.cpu_count()} cores)")
    head = f"{'configuration':<32} {'job':>7} {'cold':>7} {'warm':>7} {'speedup':>8}  same bits"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['config']:<32} {r['job_s']:6.2f}s {r['cold_s']:6.2f}s {r['warm_s']:6.2f}s"
            f" {r['speedup_warm']:7.2f}x  {r['bit_identical_to_baseline']}"
            f" (max |dW| {r['max_abs_diff_vs_baseline']:.1e})"
        )

    import jax

    payload = {
        "benchmark": "multiprocess",
        "setup": {
            "J": args.J,
            "t": T,
            "T_a": T_A,
            **GAS,
            "T_m": [0.05, 1.0, args.n],
            "delta": [0.0, 10.0, args.n],
            "rtol": args.rtol,
            "atol": 1e-2 * args.rtol,
            "chunk_size": args.chunk,
            "repeat": args.repeat,
            "quick": args.quick,
            "collectives": "gloo, 127.0.0.1",
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "versions": {"jax": jax.__version__, "numpy": np.__version__},
        "results": rows,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
