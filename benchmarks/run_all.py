"""Every benchmark in one command, on whatever device JAX sees (CPU, GPU): one JSON, one table.

    PYTHONPATH=. python benchmarks/run_all.py --quick --out DIR      # the device measurement
    python benchmarks/run_all.py --quick --only populations           # rows whose key matches
    python benchmarks/run_all.py --list                               # the registered rows
    python benchmarks/run_all.py --quick --compare benchmarks/results/cpu-cpu.json

Prints the device, then each row as it finishes (a row that fails is reported with its error
and the run goes on), and after every row rewrites `DIR/<platform>-<device kind>.json` and
`DIR/<platform>-<device kind>.md` (default `DIR = benchmarks/results/`), so a run cut short
still leaves what it measured. The markdown table goes into `benchmarks/README.md` as it is.

The rows call the functions of the `bench_*.py` scripts (same problems, same settings; see
each script's docstring for the physics and the peers):

- `integral`: I(alpha, s) of eq. (20) on random points, jitted (`bench_integral.py`);
- `populations J=...`: population sector of eq. (18) from the ground state, 1000 save points
  (100 at J = 1e6), energy and ergotropy during the solve (`bench_populations.py`), and SciPy's
  BDF at J = 1e3;
- `density J=...`: full density matrix, <J_z> and <J_+> as `e_ops`, RMS norm
  (`bench_density.py`), and QuTiP / dynamiqs at J = 100 where installed;
- `scan`: W(t = 3) at J = 20 over a T_m x delta grid with `jaxcoll.scan`, scored against SciPy
  `expm` on a random subsample whose time per point is extrapolated (`bench_scan.py`);
- `gradients J=...`: every gradient mode against one forward solve (`bench_gradients.py`).

Timing: `first` is the first call (tracing, XLA compilation and one run), `run` the best of the
warm calls after it (`--repeat`), `compile` = first - run. Where a heavy row runs once only
(CPU in `--quick` mode: J = 1e6 populations, J = 1000 density matrix), `run` is empty.
float32 rows (`dtype=jnp.float32`, rtol 1e-5, atol 1e-7) report their largest deviation from
the float64 row (in units of the row's scale: 2J for energies and ergotropies, J for spin
expectations, relative for I(alpha, s) where I >= 1e-30, at the same float32-exact points).
Sizes grow on accelerators (`SIZES`).

New rows: one function decorated with `@row("key", ...)` returning a dict (or a list of dicts)
with `size`, `first_s`, `run_s` and optionally `values`/`scale` (for the float32 error),
`rate`, `err`, `note`; raise `Skip("why")` where a row does not apply.
"""

# ruff: noqa: E402  (process set-up before JAX is imported)
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import pathlib
import platform
import re
import sys
import time
import traceback
from collections.abc import Callable

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent.parent))

from _hostenv import configure

configure()

import jax
import jax.numpy as jnp
import numpy as np

import jaxcoll

RESULTS = pathlib.Path(__file__).parent / "results"
F32 = dict(rtol=1e-5, atol=1e-7)  # float32: tolerances no tighter than ~1e-6 (README)


class Skip(Exception):
    """A row that does not apply here (peer not installed, size left out on this platform)."""


@dataclasses.dataclass
class Ctx:
    quick: bool
    accel: bool  # GPU/TPU sizes
    repeat: int
    cache: dict = dataclasses.field(default_factory=dict)  # float64 values for float32 rows

    def size(self, name):
        return SIZES[name]["accel" if self.accel else "cpu"][0 if self.quick else 1]

    @property
    def heavy_repeat(self):
        """Warm runs of the heaviest rows: none on a CPU in quick mode."""
        return 0 if (self.quick and not self.accel) else self.repeat


# (quick, full) sizes per platform
SIZES = {
    "integral_points": {"cpu": (10**6, 10**6), "accel": (10**7, 10**7)},
    "scan_axis": {"cpu": (256, 512), "accel": (1000, 1000)},  # points = axis**2
    "scan_chunk": {"cpu": (128, 128), "accel": (16384, 16384)},
}


@dataclasses.dataclass
class Row:
    key: str
    fn: Callable
    dtype: str
    needs: tuple[str, ...]


ROWS: dict[str, Row] = {}


def row(key: str, *, dtypes=("float64",), needs=()):
    """Register `fn(ctx, dtype)` as one row per dtype (float32 rows after their float64 row)."""

    def deco(fn):
        for dt in dtypes:
            k = key if dt == "float64" else f"{key} [{dt}]"
            ROWS[k] = Row(k, fn, dt, tuple(needs))
        return fn

    return deco


def _dtype(name):
    return None if name == "float64" else jnp.float32


def _first_and_best(fn, repeat):
    """`(result, first call s, best warm s or None)`."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return out, first, best


# --- rows -------------------------------------------------------------------------------------


@row("integral", dtypes=("float64", "float32"))
def _integral(ctx, dtype):
    from bench_integral import numpy_closed_form

    n = ctx.size("integral_points")
    rng = np.random.default_rng(0)
    # float32-exact points, so that the float32 row's error is that of the arithmetic alone
    alpha = (10.0 ** rng.uniform(-3, 3, n)).astype(np.float32).astype(np.float64)
    s = rng.uniform(-500, 500, n).astype(np.float32).astype(np.float64)
    dt = jnp.float64 if dtype == "float64" else jnp.float32
    a, sj = jnp.asarray(alpha, dt), jnp.asarray(s, dt)
    jitted = jax.jit(jaxcoll.scattering_integral)
    out, first, run = _first_and_best(lambda: jitted(a, sj).block_until_ready(), max(3, ctx.repeat))
    res = dict(size=f"{n:.0e} points", first_s=first, run_s=run, rate=f"{n / run / 1e6:.1f} Mpts/s")
    values = np.asarray(out, np.float64)
    if dtype == "float64":
        t0 = time.perf_counter()
        ref = numpy_closed_form(alpha, s)
        t_np = time.perf_counter() - t0
        ok = ref > 1e-290
        res["note"] = (
            f"NumPy + scipy k1e {t_np:.3f} s ({t_np / run:.1f}x); "
            f"max rel diff {np.max(np.abs(values[ok] / ref[ok] - 1)):.1e}"
        )
    return res | dict(values=values, scale="relative")


def _solve_row(J, n_save, first, run, steps, curves, scale):
    """A solve's row: `curves` are compared with the float64 row's in units of `scale`."""
    return dict(
        size=f"d = {2 * J + 1}, {n_save} saves",
        first_s=first,
        run_s=run,
        rate=f"{steps} steps",
        values=np.stack(curves),
        scale=scale,
    )


def _populations(J, n_save):
    def fn(ctx, dtype):
        from bench_populations import ATOL, RTOL, T_FINAL, run_jaxcoll

        heavy = J >= 10**6
        if dtype != "float64" and heavy and not ctx.accel and ctx.quick:
            raise Skip("float32 at J = 1e6 on accelerators only in --quick")
        tol = dict(rtol=RTOL, atol=ATOL) if dtype == "float64" else F32
        ts = np.linspace(0.0, T_FINAL, n_save)
        repeat = ctx.heavy_repeat if heavy else ctx.repeat
        # as in bench_populations.py: states kept at J = 1e3, observables only beyond
        obs_only = J > 10**3
        r = run_jaxcoll(J, ts, repeat, observables_only=obs_only, dtype=_dtype(dtype), **tol)
        first, run = r["first_call_wall_s"], r["warm_wall_s"]
        run = None if not np.isfinite(run) else run
        return _solve_row(J, n_save, first, run, r["steps"], (r["energy"], r["ergotropy"]), 2 * J)

    return fn


row("populations J=1e3", dtypes=("float64", "float32"))(_populations(10**3, 1000))
row("populations J=1e5", dtypes=("float64", "float32"))(_populations(10**5, 1000))
row("populations J=1e6", dtypes=("float64", "float32"))(_populations(10**6, 100))


@row("populations J=1e3 SciPy BDF")
def _populations_bdf(ctx, dtype):
    from bench_populations import T_FINAL, run_scipy

    r = run_scipy(1000, np.linspace(0.0, T_FINAL, 1000), max(1, ctx.repeat))
    return dict(
        size="d = 2001, 1000 saves",
        first_s=None,
        run_s=r["warm_wall_s"],
        rate=f"{r['nfev']} f-evals",
        note="sparse Jacobian, rtol 1e-8, atol 1e-10, host CPU",
    )


def _density(J):
    def fn(ctx, dtype):
        from bench_density import N_SAVE, T_FINAL, setup_jaxcoll

        heavy = J >= 1000
        if dtype != "float64" and heavy and not ctx.accel and ctx.quick:
            raise Skip("float32 at J = 1000 on accelerators only in --quick")
        ts = np.linspace(0.0, T_FINAL, N_SAVE)
        kw = {} if dtype == "float64" else F32
        once, extract = setup_jaxcoll(J, ts, "rms", dtype=_dtype(dtype), **kw)
        out, first, run = _first_and_best(once, ctx.heavy_repeat if heavy else ctx.repeat)
        ex = extract(out)
        res = _solve_row(J, N_SAVE, first, run, ex["steps"], (ex["jz"], ex["jp"]), J)
        return res | dict(note="e_ops <J_z>, <J_+>; RMS norm")

    return fn


row("density J=100", dtypes=("float64", "float32"))(_density(100))
row("density J=1000", dtypes=("float64", "float32"))(_density(1000))


def _density_peer(name):
    def fn(ctx, dtype):
        import bench_density

        ts = np.linspace(0.0, bench_density.T_FINAL, bench_density.N_SAVE)
        once, extract = getattr(bench_density, f"setup_{name}")(100, ts)
        out, first, run = _first_and_best(once, 1)
        ex = extract(out)
        ours = ctx.cache.get("density J=100")
        compiled = name == "dynamiqs"  # QuTiP compiles nothing: no first-call column
        res = dict(size="d = 201, 200 saves", first_s=first if compiled else None, run_s=run)
        if ours is not None:
            dz = np.max(np.abs(ex["jz"] - ours["values"][0])) / 100
            res["note"] = f"{run / ours['run_s']:.1f}x the jaxcoll row; max |dJz|/J {dz:.1e}"
        return res

    return fn


row("density J=100 dynamiqs", needs=("dynamiqs",))(_density_peer("dynamiqs"))
row("density J=100 QuTiP", needs=("qutip",))(_density_peer("qutip"))


@row("scan W(t=3) J=20")
def _scan(ctx, dtype):
    from bench_scan import make_w_point, reference_rates, scipy_w

    n_axis, chunk = ctx.size("scan_axis"), ctx.size("scan_chunk")
    pts = jaxcoll.grid(T_m=np.linspace(0.05, 1.0, n_axis), delta=np.linspace(0.0, 10.0, n_axis))
    n = pts["T_m"].size
    w_point = make_w_point(1e-6)
    out, first, run = _first_and_best(
        lambda: np.asarray(jaxcoll.scan(w_point, pts, chunk_size=chunk, progress=False)),
        ctx.repeat,
    )
    sub = np.random.default_rng(0).choice(n, size=256, replace=False)
    gp, gm = reference_rates(pts["T_m"][sub], pts["delta"][sub])
    t0 = time.perf_counter()
    ref = np.array([scipy_w(a, b) for a, b in zip(gp, gm, strict=True)])
    t_ref = (time.perf_counter() - t0) / sub.size * n
    err = float(np.max(np.abs(out[sub] - ref)))
    return dict(
        size=f"{n} points, chunk {chunk}, {len(jax.devices())} device(s)",
        first_s=first,
        run_s=run,
        rate=f"{n / run:.0f} pts/s" if run else None,
        err_ref=err,
        note=f"rtol 1e-6; SciPy expm loop {t_ref:.1f} s extrapolated ({t_ref / run:.1f}x); "
        f"max |W - W_expm| {err:.1e} on 256 points",
    )


def _gradients(J):
    def fn(ctx, dtype):
        from bench_gradients import measure

        keep = (
            "forward solve",
            "reverse (checkpointed adjoint)",
            "forward mode (jacfwd)",
            "scaling, under grad",
        )
        out = []
        for r in measure(J, max(3, ctx.repeat)):
            if r["method"] not in keep:
                continue
            comp = r["compile_s"]
            out.append(
                dict(
                    name=f"gradient J={J}: {r['method']}",
                    size=f"d = {2 * J + 1}",
                    first_s=None if comp is None else comp + r["time_s"],
                    run_s=r["time_s"],
                    rate=f"{r['ratio_to_forward']:.1f}x forward",
                    err_ref=r["rel_err_vs_branch_fd"],
                    note="err: vs central differences on W's branch (SciPy expm)",
                )
            )
        return out

    return fn


row("gradients J=20")(_gradients(20))
row("gradients J=200")(_gradients(200))


# --- running, output, comparison --------------------------------------------------------------


def device_info():
    d = jax.devices()[0]
    return dict(
        platform=d.platform,
        device_kind=d.device_kind,
        devices=[str(x) for x in jax.devices()],
        jax=jax.__version__,
        jaxcoll=jaxcoll.__version__,
        python=platform.python_version(),
        host=platform.platform(),
        cpu_count=os.cpu_count(),
        xla_flags=os.environ.get("XLA_FLAGS", ""),
        load_average=os.getloadavg(),
        backend_paths="accelerator" if jaxcoll._config.accelerator_paths() else "cpu",
    )


def out_stem(info):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{info['platform']}-{info['device_kind']}")


def _fmt(x, spec=".3g"):
    return "" if x is None else format(x, spec)


def _err(r):
    if r.get("err_f64_parts") is not None:
        return " / ".join(f"{e:.1e}" for e in r["err_f64_parts"]) + " (vs f64)"
    if r.get("err_f64") is not None:
        return f"{r['err_f64']:.1e} (vs f64)"
    if r.get("err_ref") is not None:
        return f"{r['err_ref']:.1e}"
    return ""


def _cell(x):
    return str(x).replace("|", "\\|")


def markdown(info, rows):
    head = (
        f"Device: {info['device_kind']} ({info['platform']}, {len(info['devices'])} device(s)), "
        f"JAX {info['jax']}, {info['cpu_count']} host cores, load average at start "
        f"{info['load_average'][0]:.1f}; `{info['command']}` ({info['started']})\n\n"
    )
    lines = [
        "| row | size | dtype | first call [s] | compile [s] | run [s] | rate / steps | error "
        "| notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["status"] != "ok":
            lines.append(
                f"| {r['name']} | | {r['dtype']} | | | | | | {r['status']}: {_cell(r['why'])} |"
            )
            continue
        lines.append(
            f"| {r['name']} | {r.get('size', '')} | {r['dtype']} | {_fmt(r.get('first_s'))} | "
            f"{_fmt(r.get('compile_s'))} | {_fmt(r.get('run_s'))} | {r.get('rate') or ''} | "
            f"{_err(r)} | {_cell(r.get('note', ''))} |"
        )
    return head + "\n".join(lines) + "\n"


def _jsonable(r):
    return {k: v for k, v in r.items() if k not in ("values",)}


def run_rows(ctx, selected, info, out_dir):
    done = []
    stem = out_stem(info)
    out_dir.mkdir(parents=True, exist_ok=True)
    for spec in selected:
        t0 = time.perf_counter()
        try:
            missing = [m for m in spec.needs if importlib.util.find_spec(m) is None]
            if missing:
                raise Skip(f"{', '.join(missing)} not installed")
            result = spec.fn(ctx, spec.dtype)
            results = result if isinstance(result, list) else [result]
            for res in results:
                res = dict(res)
                res.setdefault("name", spec.key)
                res.update(key=spec.key, dtype=spec.dtype, status="ok")
                f, w = res.get("first_s"), res.get("run_s")
                res["compile_s"] = None if f is None or w is None else max(f - w, 0.0)
                if spec.dtype == "float64" and "values" in res:
                    ctx.cache[spec.key] = res
                if spec.dtype != "float64" and "values" in res:
                    ref = ctx.cache.get(spec.key.rsplit(" [", 1)[0])
                    if ref is not None:
                        v, v64, sc = res["values"], ref["values"], res["scale"]
                        res["err_f64"] = _deviation(v, v64, sc)
                        if np.ndim(v) == 2:  # one error per curve (energy, ergotropy; J_z, J_+)
                            res["err_f64_parts"] = [
                                _deviation(a, b, sc) for a, b in zip(v, v64, strict=True)
                            ]
                done.append(res)
        except Skip as e:
            done.append(dict(key=spec.key, name=spec.key, dtype=spec.dtype, status="skipped"))
            done[-1]["why"] = str(e)
        except Exception as e:  # report and go on
            traceback.print_exc()
            done.append(dict(key=spec.key, name=spec.key, dtype=spec.dtype, status="failed"))
            done[-1]["why"] = (
                f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            )
        wall = time.perf_counter() - t0
        for r in done:
            r.setdefault("row_wall_s", wall)
            if r.get("_printed"):
                continue
            r["_printed"] = True
            print(_line(r), flush=True)
        rows = [{k: v for k, v in _jsonable(r).items() if k != "_printed"} for r in done]
        info["finished_rows"] = len(rows)
        (out_dir / f"{stem}.json").write_text(
            json.dumps(dict(device=info, rows=rows), indent=2, default=float) + "\n"
        )
        (out_dir / f"{stem}.md").write_text(markdown(info, rows))
    return done


def _deviation(v32, v64, scale):
    v32, v64 = np.asarray(v32, np.float64), np.asarray(v64, np.float64)
    if scale == "relative":
        ok = v64 >= 1e-30
        return float(np.max(np.abs(v32[ok] / v64[ok] - 1.0)))
    return float(np.max(np.abs(v32 - v64)) / scale)


def _line(r):
    if r["status"] != "ok":
        return f"  {r['name']:44s} {r['dtype']:8s} {r['status'].upper()}: {r['why']}"
    return (
        f"  {r['name']:44s} {r['dtype']:8s} first {_fmt(r.get('first_s'), '8.3f'):>8s} s"
        f"  compile {_fmt(r.get('compile_s'), '8.3f'):>8s} s"
        f"  run {_fmt(r.get('run_s'), '9.4f'):>9s} s  {r.get('rate') or '':22s} {_err(r)}"
    )


def compare(this_rows, other_file):
    other = json.loads(pathlib.Path(other_file).read_text())
    theirs = {(r["name"], r["dtype"]): r for r in other["rows"] if r["status"] == "ok"}
    dev = other["device"]
    print(
        f"\nratios against {other_file} ({dev['device_kind']}, {dev['platform']}): >1 = faster here"
    )
    print(f"  {'row':44s} {'dtype':8s} {'run there/here':>15s} {'compile there/here':>19s}")
    for r in this_rows:
        o = theirs.get((r["name"], r["dtype"]))
        if r["status"] != "ok" or o is None:
            continue

        def ratio(key, r=r, o=o):
            a, b = o.get(key), r.get(key)
            return f"{a / b:.2f}" if a and b else "-"

        print(f"  {r['name']:44s} {r['dtype']:8s} {ratio('run_s'):>15s} {ratio('compile_s'):>19s}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="quick sizes and one warm run per row")
    ap.add_argument("--out", default=str(RESULTS), help="folder for the JSON and the table")
    ap.add_argument("--only", action="append", default=[], help="rows whose key contains this")
    ap.add_argument("--skip", action="append", default=[], help="rows whose key contains this")
    ap.add_argument("--repeat", type=int, default=None, help="warm runs per row")
    ap.add_argument("--compare", default=None, help="another device's JSON: print ratios")
    ap.add_argument("--list", action="store_true", help="list the rows and exit")
    ap.add_argument("--render", default=None, help="print the table of a JSON file and exit")
    args = ap.parse_args()

    if args.render:
        saved = json.loads(pathlib.Path(args.render).read_text())
        print(markdown(saved["device"], saved["rows"]), end="")
        return
    if args.list:
        for k, r in ROWS.items():
            print(f"{k}" + (f"  (needs {', '.join(r.needs)})" if r.needs else ""))
        return
    selected = [
        r
        for k, r in ROWS.items()
        if (not args.only or any(s in k for s in args.only)) and not any(s in k for s in args.skip)
    ]
    info = device_info()
    info["command"] = "python benchmarks/run_all.py " + " ".join(sys.argv[1:])
    info["started"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    accel = info["platform"] != "cpu"
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    ctx = Ctx(quick=args.quick, accel=accel, repeat=repeat)
    print(
        f"device: {info['device_kind']} ({info['platform']}), devices {info['devices']}, "
        f"JAX {info['jax']}, jaxcoll {info['jaxcoll']}, {info['cpu_count']} host cores, "
        f"load {info['load_average'][0]:.1f}; {len(selected)} rows",
        flush=True,
    )
    t0 = time.perf_counter()
    rows = run_rows(ctx, selected, info, pathlib.Path(args.out))
    total = time.perf_counter() - t0
    info["total_wall_s"] = total
    stem = out_stem(info)
    clean = [{k: v for k, v in _jsonable(r).items() if k != "_printed"} for r in rows]
    out = pathlib.Path(args.out)
    (out / f"{stem}.json").write_text(
        json.dumps(dict(device=info, rows=clean), indent=2, default=float) + "\n"
    )
    (out / f"{stem}.md").write_text(markdown(info, clean))
    bad = [r for r in rows if r["status"] == "failed"]
    print(f"\n{len(rows)} rows in {total:.0f} s ({len(bad)} failed); wrote {out / stem}.json, .md")
    print(markdown(info, clean))
    if args.compare:
        compare(clean, args.compare)


if __name__ == "__main__":
    main()
