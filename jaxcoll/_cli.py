"""The `jaxcoll` command line: the paper's figures, rates, evolution, validity, scans, optimisation.

Every subcommand prints a table and can write JSON. Bad arguments give a one-line message on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


class CLIError(Exception):
    """A user error: reported as one line on stderr, exit status 2."""


class _Exit(Exception):
    """Finish with this exit status (after the output has been printed)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2, no usage dump
        raise CLIError(f"{self.prog}: {message}")


def _number(name, *, integer=False, low=None, strict=False):
    """An argparse type: a finite number (an integer with `integer=True`) that is `>= low`
    (`> low` with `strict=True`) when `low` is given; the message names the flag."""
    kind = "an integer" if integer else "a number"

    def parse(text):
        try:
            x = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {kind}, got {text!r}") from None
        if not math.isfinite(x):
            raise argparse.ArgumentTypeError(f"{name} must be finite, got {text!r}")
        if low is not None and (x < low or (strict and x == low)):
            bound = f"{'>' if strict else '>='} {low:g}"
            raise argparse.ArgumentTypeError(f"{name} must be {bound}, got {text!r}")
        return x

    return parse


def _finite(name):
    return _number(name)


def _positive(name):
    return _number(name, low=0, strict=True)


def _nonnegative(name):
    return _number(name, low=0)


def _positive_int(name):
    return _number(name, integer=True, low=0, strict=True)


def _nonnegative_int(name):
    return _number(name, integer=True, low=0)


def _profile(text):
    from ._profiles import _BY_NAME

    if text not in _BY_NAME:
        raise argparse.ArgumentTypeError(
            f"--profile must be one of {', '.join(sorted(_BY_NAME))}, got {text!r}"
        )
    return text


def _spin(text):
    try:
        J = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"J must be a number, got {text!r}") from None
    if not math.isfinite(J) or J <= 0 or 2 * J != round(2 * J):
        raise argparse.ArgumentTypeError(
            f"J must be a positive integer or half-integer, got {text!r}"
        )
    return J


def _print_table(rows, headers):
    from ._table import print_table

    print_table(rows, headers)


def _write_json(path, payload):
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")


def _flag(p, flag, kind, default, help):
    """One option whose value `kind(flag)` (`_finite`, `_positive`, ...) parses and checks."""
    p.add_argument(flag, type=kind(flag), default=default, help=help)


def _add_energy_args(p):
    _flag(p, "--omega-s", _finite, 1.0, "level spacing")
    _flag(p, "--E-R", _positive, 1.0, "interaction energy")


def _add_rate_scale_args(p):
    _flag(p, "--gamma-tilde", _positive, None, "rate prefactor Gamma~ of eq. (19)")
    _flag(p, "--density", _positive, None, "n R^3, with --coupling: Gamma~ from eq. (D4)")
    _flag(p, "--coupling", _finite, None, "V0 / E_R")


# The gas's point: flag, parameter, what it is.
_POINT = (
    ("--T-a", "T_a", "ancilla temperature"),
    ("--T-m", "T_m", "motional temperature"),
    ("--delta", "delta", "detuning Delta"),
)


def _one_value(flag, name, what):
    parse = _finite(flag) if name == "delta" else _positive(flag)
    return dict(type=parse, default=0.0 if name == "delta" else 1.0, help=what)


def _add_gas_args(p, point=_one_value):
    """The flags of one gas: energies, the point (--T-a, --T-m, --delta; `point(flag, name,
    what)` gives each one's `add_argument` keywords: one value by default, the axes of `scan`
    and the boxes of `optimize`), the rate scale and the interaction shape."""
    _add_energy_args(p)
    for flag, name, what in _POINT:
        p.add_argument(flag, dest=name, **point(flag, name, what))
    _add_rate_scale_args(p)
    p.add_argument(
        "--profile",
        type=_profile,
        default=None,
        help="interaction profile g(r/R): gaussian (default, eq. D1), exponential, yukawa, "
        "square_well",
    )
    _flag(p, "--drift", _nonnegative, None, "drift speed m|u|R/hbar of the gas (default: at rest)")


def _add_output_args(p, out="JSON file to write", progress=False):
    """`--no-progress` (where there is a progress bar) and `--out`."""
    if progress:
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", default=None, help=out)


def _shape_kwargs(args):
    """`profile=`, `drift=` from the flags."""
    return dict(profile=args.profile, drift=args.drift)


def _rate_scale_kwargs(args, default=1.0):
    """`gamma_tilde=` or `density=, coupling=` from the flags; `gamma_tilde=default` if none
    is given (`default=None`: one is required)."""
    if args.gamma_tilde is not None and (args.density is not None or args.coupling is not None):
        raise CLIError("jaxcoll: give either --gamma-tilde or --density and --coupling, not both")
    if args.gamma_tilde is not None:
        return dict(gamma_tilde=args.gamma_tilde)
    if (args.density is None) != (args.coupling is None):
        raise CLIError("jaxcoll: --density and --coupling go together")
    if args.density is not None:
        return dict(density=args.density, coupling=args.coupling)
    if default is None:
        raise CLIError(f"jaxcoll {args.command}: give --density and --coupling, or --gamma-tilde")
    return dict(gamma_tilde=default)


def _gas_from_args(args, J):
    from ._spin import SpinGas

    return SpinGas(
        J,
        omega_s=args.omega_s,
        delta=args.delta,
        T_a=args.T_a,
        T_m=args.T_m,
        E_R=args.E_R,
        **_rate_scale_kwargs(args),
        **_shape_kwargs(args),
    )


def _cmd_rates(args):
    gas = _gas_from_args(args, 0.5)
    gp, gm = (float(x) for x in gas.rates())
    T_eff = float(gas.effective_temperature())
    row = dict(
        gamma_tilde=float(gas.rate_scale()),
        gamma_plus=gp,
        gamma_minus=gm,
        T_eff=T_eff,
        D=float(gas.D),
        A=float(gas.A),
        alpha=float(gas.alpha),
    )
    _print_table([list(row.values())], list(row.keys()))
    _write_json(args.out, row)
    _warn_validity(gas, "rates")


def _time_grid(args):
    import numpy as np

    if args.n_points < 2:
        raise CLIError(f"jaxcoll: --n-points must be >= 2, got {args.n_points}")
    return np.linspace(0.0, args.t_final, args.n_points)


# --- reproduce ---------------------------------------------------------------------------------


def _cmd_reproduce(args):
    from ._figures import reproduce

    results = reproduce(args.out, fast=args.fast, progress=not args.no_progress)
    print(f"wrote the figures and results.json to {Path(args.out)}")
    return results


# --- evolve ------------------------------------------------------------------------------------


def _initial_state(args, gas):
    import jax.numpy as jnp

    from ._states import ground_populations, spin_coherent_state, thermal_populations

    d = gas.dim
    if args.initial == "ground":
        return ground_populations(d)
    if args.initial == "thermal":
        if args.T0 is None:
            raise CLIError("jaxcoll evolve: --initial thermal needs --T0 (a temperature > 0)")
        return thermal_populations(gas.energies(), jnp.asarray(1.0 / args.T0))
    return spin_coherent_state(gas.J, args.theta, args.phi)


def _cmd_evolve(args):
    import numpy as np

    from ._evolve import evolve

    gas = _gas_from_args(args, args.J)
    ts = _time_grid(args)
    rho0 = _initial_state(args, gas)
    res = evolve(gas, rho0, ts)
    t, E, W = (np.asarray(x, dtype=float) for x in (res.ts, res.energy, res.ergotropy))
    _print_table(
        [[float(a), float(b), float(c)] for a, b, c in zip(t, E, W, strict=True)],
        ["t", "energy", "ergotropy"],
    )
    payload = dict(
        J=gas.J,
        initial=args.initial,
        parameters=_gas_parameters(gas),
        t=t.tolist(),
        energy=E.tolist(),
        ergotropy=W.tolist(),
    )
    _write_json(args.out, payload)
    _warn_validity(gas, "evolve")


def _gas_parameters(gas):
    out = dict(
        omega_s=float(gas.omega_s),
        delta=float(gas.delta),
        T_a=float(gas.T_a),
        T_m=float(gas.T_m),
        E_R=float(gas.E_R),
        gamma_tilde=float(gas.rate_scale()),
    )
    if gas.density is not None:
        out.update(density=float(gas.density), coupling=float(gas.coupling))
    out.update(profile=gas.profile.name, drift=None if gas.drift is None else float(gas.drift))
    return out


# --- validity ----------------------------------------------------------------------------------


def _warn_validity(gas, cmd):
    """One stderr line per violated assumption of the master equation (see `jaxcoll validity`)."""
    from ._validity import check_validity

    report = check_validity(gas, warn=False)
    note = f" [J = {gas.J:g}]" if cmd == "rates" else ""
    for c in report.violated:
        print(f"jaxcoll {cmd}: warning: {c.message()}{note}", file=sys.stderr)


def _cmd_validity(args):
    from ._validity import check_validity

    gas = _gas_from_args(args, args.J)
    report = check_validity(gas, threshold=args.threshold, warn=False)
    print(report)
    _write_json(
        args.out,
        dict(
            J=gas.J,
            parameters=_gas_parameters(gas),
            model=report.model,
            ok=report.ok,
            scales=dict(report.scales),
            criteria=[dict(c._asdict(), status=c.status) for c in report.criteria],
        ),
    )
    if args.strict and not report.ok:
        raise _Exit(1)


# --- scan --------------------------------------------------------------------------------------

_SCAN_AXES = {"T_a": "--T-a", "T_m": "--T-m", "delta": "--delta"}


def _scan_axis(name, values):
    flag = _SCAN_AXES[name]
    if len(values) == 1:
        x = values[0]
        if name != "delta" and x <= 0:
            raise CLIError(f"jaxcoll scan: {flag} must be > 0, got {x:g}")
        return None, x
    if len(values) != 3:
        raise CLIError(
            f"jaxcoll scan: {flag} takes one value (fixed) or LO HI N (an axis), "
            f"got {len(values)} values"
        )
    lo, hi, n = values
    if n != int(n) or n < 1:
        raise CLIError(f"jaxcoll scan: {flag} LO HI N needs an integer N >= 1, got {n:g}")
    from ._validation import check_box

    lo, hi = check_box(flag, (lo, hi), positive=name != "delta", strict=False)
    import numpy as np

    return np.linspace(lo, hi, int(n)), None


def _cmd_scan(args):
    import jax
    import numpy as np

    from ._functionals import ergotropy_at
    from ._observables import ergotropy_populations
    from ._scan import grid, scan
    from ._spin import SpinGas

    axes, fixed = {}, {}
    for name in _SCAN_AXES:
        axis, value = _scan_axis(name, getattr(args, name))
        if axis is None:
            fixed[name] = value
        else:
            axes[name] = axis
    if len(axes) != 2:
        raise CLIError(
            "jaxcoll scan: give exactly two of --T-a/--T-m/--delta as an axis LO HI N and the "
            f"third as one value, got {len(axes)} axes"
        )
    if args.t_final is not None and args.t_final <= 0:
        raise CLIError(f"jaxcoll scan: --t-final must be > 0, got {args.t_final:g}")
    scale = _rate_scale_kwargs(args) | _shape_kwargs(args)
    # One concrete construction validates J and the fixed parameters before tracing.
    probe = SpinGas(
        args.J,
        omega_s=args.omega_s,
        E_R=args.E_R,
        **{k: (fixed[k] if k in fixed else float(axes[k][0])) for k in _SCAN_AXES},
        **scale,
    )

    def point(p):
        gas = SpinGas(args.J, omega_s=args.omega_s, E_R=args.E_R, **p, **fixed, **scale)
        gp, gm = gas.rates()
        out = dict(
            gamma_plus=gp,
            gamma_minus=gm,
            T_eff=gas.effective_temperature(),
            ergotropy_steady=ergotropy_populations(gas.steady_state_populations(), gas.energies()),
        )
        if args.t_final is not None:
            out["ergotropy"] = ergotropy_at(
                p | fixed, args.t_final, J=args.J, omega_s=args.omega_s, E_R=args.E_R, **scale
            )
        return out

    pts = grid(**axes)
    res = scan(jax.jit(point), pts, progress=not args.no_progress)
    names = list(axes)
    shape = tuple(len(a) for a in axes.values())
    payload = dict(
        J=probe.J,
        axes={k: v.tolist() for k, v in axes.items()},
        fixed=fixed,
        **_shape_kwargs(args),
        t_final=args.t_final,
        shape=list(shape),
        **{k: np.asarray(v).reshape(shape).tolist() for k, v in res.items()},
    )
    key = "ergotropy" if args.t_final is not None else "ergotropy_steady"
    order = np.argsort(-np.asarray(res[key]), kind="stable")
    n = len(order)
    show = order if n <= args.rows else order[: args.rows]
    cols = [*names, "gamma_plus", "gamma_minus", "T_eff", "ergotropy_steady"]
    if args.t_final is not None:
        cols.append("ergotropy")
    src = {**pts, **res}
    rows = [[float(np.asarray(src[c])[i]) for c in cols] for i in show]
    if n > len(show):
        print(f"{n} points; the {len(show)} with the largest {key}:")
    _print_table(rows, cols)
    if args.out is not None:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".npz":
            np.savez(
                path,
                **{k: np.asarray(v) for k, v in axes.items()},
                **{k: np.asarray(v).reshape(shape) for k, v in res.items()},
            )
            print(f"wrote {path}")
        else:
            _write_json(path, payload)


# --- optimize ----------------------------------------------------------------------------------

_BOXES = {"T_a": (0.2, 5.0), "T_m": (0.05, 5.0), "delta": (0.0, 10.0)}


def _box(flag, name, what):
    lo, hi = _BOXES[name]
    return dict(
        type=_finite(flag),
        nargs=2,
        metavar=("LO", "HI"),
        default=(lo, hi),
        help=f"{what}: bounds (default {lo:g} {hi:g})",
    )


def _cmd_optimize(args):
    from ._optimize import optimize_ergotropy
    from ._validation import check_box

    bounds = {
        name: check_box(flag, getattr(args, name), positive=name != "delta")
        for name, flag in _SCAN_AXES.items()
    }
    res = optimize_ergotropy(
        args.J,
        args.t_final,
        omega_s=args.omega_s,
        E_R=args.E_R,
        **_rate_scale_kwargs(args, default=None),
        **_shape_kwargs(args),
        objective=args.objective,
        steps=args.steps,
        seed=args.seed,
        scan_points=args.scan_points,
        n_starts=args.starts,
        polish_iterations=args.polish,
        progress=not args.no_progress,
        **bounds,
    )
    rows = [
        [name, getattr(res, name), f"{lo:g} .. {hi:g}", res.active[name] or "-"]
        for name, (lo, hi) in bounds.items()
    ]
    _print_table(rows, ["parameter", "best", "bounds", "on bound"])
    print(
        f"ergotropy W(t_f = {args.t_final:g}) = {res.ergotropy:.8g}"
        f"  (fully inverted: {2 * args.J * args.omega_s:g}); {res.n_evaluations} evaluations, "
        f"{res.wall_time:.1f} s"
    )
    payload = res.to_dict()
    payload.update(
        J=args.J,
        t_final=args.t_final,
        omega_s=args.omega_s,
        E_R=args.E_R,
        **_rate_scale_kwargs(args, default=None),
        **_shape_kwargs(args),
    )
    _write_json(args.out, payload)


# --- bench -------------------------------------------------------------------------------------


def _cmd_bench(args):
    import time

    import jax
    import jax.numpy as jnp
    import numpy as np

    from ._evolve import evolve
    from ._integral import scattering_integral
    from ._spin import SpinGas
    from ._states import ground_populations, spin_coherent_state

    def timed(fn, repeat=3):
        """(first call including compilation, best of `repeat` later calls), in seconds."""
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        first = time.perf_counter() - t0
        best = math.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            best = min(best, time.perf_counter() - t0)
        return first, best

    rows = []
    a = jnp.asarray(np.geomspace(1e-2, 10.0, 256))[:, None]
    s = jnp.asarray(np.linspace(-10.0, 10.0, 256))[None, :]
    f = jax.jit(scattering_integral)
    rows.append(["scattering_integral", "256 x 256 grid", *timed(lambda: f(a, s))])
    ts = jnp.linspace(0.0, 5.0, 51)
    Js = (10,) if args.quick else (10, 100, 1000)
    for J in Js:
        gas = SpinGas(J, omega_s=1.0, delta=2.0, T_a=1.0, T_m=1.0, gamma_tilde=1.0)
        p0 = ground_populations(gas.dim)
        rows.append(
            [
                "evolve, populations",
                f"J = {J}",
                *timed(lambda g=gas, p=p0: evolve(g, p, ts).ergotropy),
            ]
        )
    for J in Js[:2]:  # dense states: d^2 entries per state
        gas = SpinGas(J, omega_s=1.0, delta=2.0, T_a=1.0, T_m=1.0, gamma_tilde=1.0)
        rho0 = spin_coherent_state(J, 1.0)
        rows.append(
            [
                "evolve, density matrix",
                f"J = {J}",
                *timed(lambda g=gas, r=rho0: evolve(g, r, ts).energy),
            ]
        )
    _print_table(rows, ["task", "size", "first call s", "run s"])
    print("full benchmarks, with QuTiP and dynamiqs for comparison: the scripts in benchmarks/")
    _write_json(
        args.out,
        dict(
            backend=jax.default_backend(),
            results=[dict(task=r[0], size=r[1], first_call=r[2], seconds=r[3]) for r in rows],
        ),
    )


# --- parser ------------------------------------------------------------------------------------


def _version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jaxcoll")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _command(sub, name, func, help, description=None, spin=False):
    """The parser of subcommand `name`, which runs `func(args)`; `spin=True` adds `--J`."""
    p = sub.add_parser(name, help=help, description=description, allow_abbrev=False)
    p.set_defaults(func=func)
    if spin:
        p.add_argument("--J", type=_spin, required=True, help="spin quantum number")
    return p


def _build_parser():
    parser = _Parser(
        prog="jaxcoll",
        description="Collisional master equation of a system in a dilute gas with internal "
        "structure (Gaida, Gasbarri, Nimmrichter 2025). Units: hbar = k_B = 1, energies in "
        "E_R, times in hbar/E_R.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"jaxcoll {_version()}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    p = _command(
        sub, "reproduce", _cmd_reproduce, help="write the paper's figures and results.json"
    )
    p.add_argument("--out", default="jaxcoll-results", help="output folder")
    p.add_argument("--fast", action="store_true", help="small sizes (for smoke tests)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = _command(
        sub, "rates", _cmd_rates, help="rates Gamma_+-, Gamma~ and the effective temperature"
    )
    _add_gas_args(p)
    _add_output_args(p)

    p = _command(
        sub,
        "evolve",
        _cmd_evolve,
        help="evolve a spin in the gas; table of t, energy, ergotropy",
        description="Evolve a spin J under eq. (18) and print t, energy <h_S> and ergotropy.",
        spin=True,
    )
    _add_gas_args(p)
    p.add_argument(
        "--initial",
        choices=("ground", "thermal", "coherent"),
        default="ground",
        help="initial state (default ground)",
    )
    _flag(p, "--T0", _positive, None, "temperature of the thermal initial state")
    _flag(
        p, "--theta", _finite, math.pi / 2, "polar angle of the coherent initial state (0: m = +J)"
    )
    _flag(p, "--phi", _finite, 0.0, "azimuth (coherent)")
    p.add_argument("--t-final", type=_positive("--t-final"), required=True, help="final time")
    _flag(p, "--n-points", _positive_int, 11, "number of output times in [0, t-final] (>= 2)")
    _add_output_args(p)

    p = _command(
        sub,
        "validity",
        _cmd_validity,
        help="check the low-density, Born and Markov assumptions for a spin gas",
        description="Print the dimensionless numbers behind the master equation's assumptions "
        "(n R^3, n lambda_th^3, V0 ||v||/E_R, a_B/R, Gamma_max tau_c, secular ratio) with their "
        "thresholds and what each means. --strict: exit status 1 if any is violated.",
        spin=True,
    )
    _add_gas_args(p)
    _flag(p, "--threshold", _positive, 0.1, "a number counts as << 1 when <= this (default 0.1)")
    p.add_argument("--strict", action="store_true", help="exit status 1 if a criterion fails")
    _add_output_args(p)

    p = _command(
        sub,
        "scan",
        _cmd_scan,
        help="grid over two of T_a, T_m, delta (rates, T_eff, ergotropy); JSON or npz",
        description="Scan a grid over two of --T-a/--T-m/--delta: give each axis as LO HI N "
        "and the third parameter as one value. Prints the best points; --out writes JSON, or "
        "npz if the name ends in .npz.",
        spin=True,
    )
    _add_gas_args(
        p,
        lambda flag, name, what: dict(
            type=_finite(flag),
            nargs="+",
            required=True,
            metavar="X",
            help=f"{what}: one value, or an axis LO HI N",
        ),
    )
    _flag(p, "--t-final", _finite, None, "also the ergotropy at this time from the ground state")
    _flag(p, "--rows", _positive_int, 20, "table rows to print (best points first)")
    _add_output_args(p, "JSON file, or .npz", progress=True)

    p = _command(
        sub,
        "optimize",
        _cmd_optimize,
        help="maximise the ergotropy at t-final over T_a, T_m, delta (optax + L-BFGS-B)",
        description="Maximise the ergotropy W(t_f) of a spin J charged from its ground state "
        "by a gas of fixed density and coupling (or a fixed --gamma-tilde), over the box given "
        "by --T-a/--T-m/--delta LO HI. Writes JSON with T_a, T_m, delta, ergotropy and the "
        "search history.",
        spin=True,
    )
    p.add_argument(
        "--t-final", type=_positive("--t-final"), required=True, help="charging time t_f (hbar/E_R)"
    )
    _add_gas_args(p, _box)
    p.add_argument(
        "--objective",
        choices=("ergotropy", "power"),
        default="ergotropy",
        help="W(t_f), or the best mean charging power max_t W(t)/t",
    )
    _flag(p, "--steps", _nonnegative_int, 40, "Adam steps")
    _flag(p, "--starts", _positive_int, 3, "Adam starts from the best grid points")
    _flag(p, "--scan-points", _positive_int, 10, "coarse grid points per axis (>= 2)")
    _flag(p, "--polish", _nonnegative_int, 60, "L-BFGS-B iterations (0: none)")
    _flag(p, "--seed", _nonnegative_int, 0, "random seed")
    _add_output_args(p, progress=True)

    p = _command(
        sub,
        "bench",
        _cmd_bench,
        help="a quick timing of the main kernels (full suite: benchmarks/)",
    )
    p.add_argument("--quick", action="store_true", help="smaller sizes")
    _add_output_args(p)

    return parser, sub


def main(argv=None):
    """Entry point of the `jaxcoll` console script; returns the exit status."""
    parser, _ = _build_parser()
    args = None
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise CLIError("jaxcoll: give a subcommand; see `jaxcoll --help`")
        import jax

        # The command line is an application: run with JAX's standard dtype promotion whatever
        # the environment configures (third-party optimisers are not all strict-promotion clean).
        with jax.numpy_dtype_promotion("standard"):
            args.func(args)
    except _Exit as e:
        return e.code
    except CLIError as e:
        print(str(e), file=sys.stderr)
        return 2
    except (ValueError, TypeError) as e:  # invalid input caught by the library's validation
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"jaxcoll {getattr(args, 'command', '')}: {msg}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. an --out path that cannot be written
        print(f"jaxcoll {getattr(args, 'command', '')}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jaxcoll: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
