"""One process of a multi-process `jaxcoll.scan`, started by tests/test_scan_multiprocess.py.

    python tests/_scan_worker.py --port P --nproc K --rank k --devices D --result res.npz
        [--out DIR] [--chunk C] [--exit-after-writes M]

Starts JAX with `D` CPU devices and gloo collectives, joins the job at 127.0.0.1:P (skipped
when K = 1), scans `fn` over `points()` and saves what `scan` returned to `res.npz`. Process 0
prints one line `WROTE i` per chunk it writes to `out`; `--exit-after-writes M` makes it die
(`os._exit`, no clean-up) when it is about to write its (M+1)-th chunk, as a killed job would.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def points():
    """36 points on a 3 x 4 x 3 grid of gas conditions."""
    from jaxcoll import grid

    return grid(T_a=[0.5, 2.0, 5.0], T_m=np.linspace(0.05, 2.0, 4), delta=np.linspace(0, 6, 3))


def fn(p):
    """Steady-state ergotropy and rates of a spin J = 3, plus a -0.0 and a NaN leaf.

    The last two are there because summing the processes' partial results would turn -0.0 into
    +0.0 and a NaN anywhere into NaN everywhere; gathering by selection keeps both.
    """
    import jax.numpy as jnp

    import jaxcoll
    from jaxcoll._observables import ergotropy_populations

    m = jaxcoll.SpinGas(
        3, omega_s=1.0, delta=p["delta"], T_a=p["T_a"], T_m=p["T_m"], density=0.01, coupling=1.0
    )
    gp, gm = m.rates()
    return {
        "W": ergotropy_populations(m.steady_state_populations(), m.energies()),
        "rates": jnp.stack([gp, gm]),
        "negzero": -0.0 * p["T_a"],
        "nan": jnp.where(p["delta"] > 3.0, jnp.nan, p["T_m"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--nproc", type=int, default=1)
    ap.add_argument("--rank", type=int, default=0)
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=4)
    ap.add_argument("--out", default=None)
    ap.add_argument("--result", required=True)
    ap.add_argument("--exit-after-writes", type=int, default=None)
    args = ap.parse_args()

    import jax

    jax.config.update("jax_num_cpu_devices", args.devices)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_enable_x64", True)
    if args.nproc > 1:
        jax.distributed.initialize(
            f"127.0.0.1:{args.port}", num_processes=args.nproc, process_id=args.rank
        )
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from jaxcoll import _scan, scan

    original = _scan._Store.write
    writes = {"n": 0}

    def write(self, index, rows, values):
        if args.exit_after_writes is not None and writes["n"] == args.exit_after_writes:
            os._exit(17)
        writes["n"] += 1
        print(f"WROTE {index}", flush=True)
        return original(self, index, rows, values)

    _scan._Store.write = write
    res = scan(fn, points(), chunk_size=args.chunk, out=args.out, progress=False)
    np.savez(args.result, **res)
    print("DONE", jax.process_index(), jax.process_count(), len(jax.local_devices()), flush=True)


if __name__ == "__main__":
    main()
