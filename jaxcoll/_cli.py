"""The `jaxcoll` command line: reproduce the paper's figures, rates, evolution, scans, optimisation.

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


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2, no usage dump
        raise CLIError(f"{self.prog}: {message}")


def _finite(name):
    def parse(text):
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(x):
            raise argparse.ArgumentTypeError(f"{name} must be finite, got {text!r}")
        return x

    return parse


def _positive(name):
    base = _finite(name)

    def parse(text):
        x = base(text)
        if x <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {text!r}")
        return x

    return parse


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


def _positive_int(name):
    def parse(text):
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if n <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {text!r}")
        return n

    return parse


def _print_table(rows, headers, file=sys.stdout):
    cells = [[f"{v:.6g}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)), file=file)


def _write_json(path, payload):
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")


def _add_gas_args(p, *, rate_scale=True):
    p.add_argument("--omega-s", type=_finite("--omega-s"), default=1.0, help="level spacing")
    p.add_argument("--delta", type=_finite("--delta"), default=0.0, help="detuning Delta")
    p.add_argument("--T-a", type=_positive("--T-a"), default=1.0, help="ancilla temperature")
    p.add_argument("--T-m", type=_positive("--T-m"), default=1.0, help="motional temperature")
    p.add_argument("--E-R", type=_positive("--E-R"), default=1.0, help="interaction energy")
    if rate_scale:
        p.add_argument("--gamma-tilde", type=_positive("--gamma-tilde"), default=None)
        p.add_argument("--density", type=_positive("--density"), default=None, help="n R^3")
        p.add_argument("--coupling", type=_finite("--coupling"), default=None, help="V0/E_R")


def _gas_from_args(args, J):
    from ._spin import SpinGas

    scale = {}
    if args.gamma_tilde is not None:
        scale["gamma_tilde"] = args.gamma_tilde
    if args.density is not None or args.coupling is not None:
        scale.update(density=args.density, coupling=args.coupling)
    if not scale:
        scale["gamma_tilde"] = 1.0
    return SpinGas(
        J,
        omega_s=args.omega_s,
        delta=args.delta,
        T_a=args.T_a,
        T_m=args.T_m,
        E_R=args.E_R,
        **scale,
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


def _build_parser():
    parser = _Parser(
        prog="jaxcoll",
        description="Collisional master equation of a system in a dilute gas with internal "
        "structure (Gaida, Gasbarri, Nimmrichter 2025).",
    )
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("reproduce", help="write the paper's figures and results.json")
    p.add_argument("--out", default="jaxcoll-results", help="output folder")
    p.add_argument("--fast", action="store_true", help="small sizes (for smoke tests)")

    p = sub.add_parser("rates", help="rates Gamma_+-, Gamma~ and the effective temperature")
    _add_gas_args(p)
    p.add_argument("--out", default=None, help="JSON file to write")

    return parser, sub


def main(argv=None):
    parser, _ = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise CLIError("jaxcoll: give a subcommand; see `jaxcoll --help`")
        handler = globals()[f"_cmd_{args.command}"]
        handler(args)
    except CLIError as e:
        print(str(e), file=sys.stderr)
        return 2
    except (ValueError, TypeError) as e:
        print(f"jaxcoll {getattr(args, 'command', '')}: {e}".splitlines()[0], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
