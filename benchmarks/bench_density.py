"""Full density-matrix evolution of the spin model: jaxcoll vs QuTiP 5 and dynamiqs 0.3.

Problem (a spin coherent state on the equator charged by an inverting gas):
J = 100, theta = pi/2, omega_s = 1, delta = 4, T_a = 5, T_m = 1, E_R = 1, gamma_tilde = 1,
200 save points to t = 11.49, rtol = 1e-6, atol = 1e-8 for every solver.

- jaxcoll: `evolve` on the decoupled coherence bands (rotating frame, folded into (d+1)/2
  chains, Rosenbrock, tridiagonal solves), <J_z> and <J_+> as `e_ops` read off the bands at
  the save points (what the peers compute with `e_ops`/`exp_ops` and no stored states). Two
  error norms: RMS (the peers' norm: Diffrax's default in dynamiqs, the weighted RMS norm of
  QuTiP's integrators) and jaxcoll's default max norm (every matrix element within
  atol + rtol|y|, stricter). A third row stores all 200 density matrices and computes
  jaxcoll's full observable set (energy, general ergotropy, von Neumann entropy: two
  201x201 spectra per save point), for reference.
- QuTiP 5: `mesolve` with sparse `jmat` operators (its default adaptive Adams/BDF integrator).
- dynamiqs 0.3: `mesolve` with DIA-layout operators and `Tsit5`.

Times are warm: after one first (compile) call each, `--repeat` rounds run every method once
in turn and the best time of each is kept; the first call is reported separately.
Agreement: max |<J_z>| and ||<J_+>|| differences over the curve in units of J.
Also: J = 1000 full density matrix (time and peak memory) and a cost-vs-J table with the fitted
exponent. Prints tables; writes benchmarks/results/density.json.

    python benchmarks/bench_density.py            # everything (several minutes)
    python benchmarks/bench_density.py --quick    # J = 100 comparison only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxcoll

PARAMS = dict(omega_s=1.0, delta=4.0, T_a=5.0, T_m=1.0, E_R=1.0, gamma_tilde=1.0)
T_FINAL, N_SAVE, RTOL, ATOL = 11.49, 200, 1e-6, 1e-8


def _expectations(states, J):
    d = int(2 * J) + 1
    m = np.arange(d) - J
    c = np.sqrt((J - m[:-1]) * (J + m[:-1] + 1))
    states = np.asarray(states)
    jz = np.real(np.einsum("tii,i->t", states, m))
    jp = np.einsum("ti,i->t", np.diagonal(states, offset=1, axis1=1, axis2=2), c)
    return jz, np.abs(jp)


def _spin_ops(J):
    d = int(2 * J) + 1
    m = np.arange(d) - J
    c = np.sqrt((J - m[:-1]) * (J + m[:-1] + 1))
    return np.diag(m), np.diag(c, -1)  # J_z, J_+ in jaxcoll's ascending basis


def setup_jaxcoll(J, ts, mode="rms", dtype=None, rtol=RTOL, atol=ATOL):
    """`(once, extract)`: one jaxcoll run and its <J_z>, |<J_+>|."""
    gas = jaxcoll.SpinGas(J, **PARAMS)
    rho0 = jaxcoll.spin_coherent_state(J, np.pi / 2)
    if mode == "states":
        kw = dict(norm="rms")
    else:
        kw = dict(e_ops=list(_spin_ops(J)), observables=(), observables_only=True, norm=mode)

    def once():
        r = jaxcoll.evolve(gas, rho0, ts, rtol=rtol, atol=atol, dtype=dtype, **kw)
        return jax.block_until_ready(r)

    def extract(res):
        if mode == "states":
            jz, jp = _expectations(res.states, J)
        else:
            jz, jp = np.real(np.asarray(res.expect[0])), np.abs(np.asarray(res.expect[1]))
        return dict(jz=jz, jp=jp, steps=int(res.num_steps))

    return once, extract


def _rates():
    gas = jaxcoll.SpinGas(1, **PARAMS)
    return tuple(float(x) for x in gas.rates())


def setup_qutip(J, ts):
    import qutip as qt

    gp, gm = _rates()
    H = PARAMS["omega_s"] * qt.jmat(J, "z")
    c_ops = [np.sqrt(gp) * qt.jmat(J, "+"), np.sqrt(gm) * qt.jmat(J, "-")]
    psi = qt.spin_coherent(J, np.pi / 2, 0.0)
    rho0 = psi * psi.dag()
    e_ops = [qt.jmat(J, "z"), qt.jmat(J, "+")]
    opts = dict(rtol=RTOL, atol=ATOL, nsteps=10**6)

    def once():
        return qt.mesolve(H, rho0, ts, c_ops, e_ops=e_ops, options=opts)

    def extract(res):
        return dict(jz=np.real(res.expect[0]), jp=np.abs(res.expect[1]))

    return once, extract


def setup_dynamiqs(J, ts):
    import dynamiqs as dq

    dq.set_layout("dia")
    gp, gm = _rates()
    d = int(2 * J) + 1
    m = np.arange(d) - J  # ascending basis, like jaxcoll
    c = np.sqrt((J - m[:-1]) * (J + m[:-1] + 1))
    cdt = jnp.complex128
    H = dq.sparsedia_from_dict({0: PARAMS["omega_s"] * m}, dtype=cdt)
    Lp = dq.sparsedia_from_dict({-1: np.sqrt(gp) * c}, dtype=cdt)
    Lm = dq.sparsedia_from_dict({1: np.sqrt(gm) * c}, dtype=cdt)
    Jz = dq.sparsedia_from_dict({0: m}, dtype=cdt)
    Jp = dq.sparsedia_from_dict({-1: c}, dtype=cdt)
    rho0 = jnp.asarray(np.asarray(jaxcoll.spin_coherent_state(J, np.pi / 2)), dtype=cdt)
    method = dq.method.Tsit5(rtol=RTOL, atol=ATOL, max_steps=10**7)

    def once():
        r = dq.mesolve(
            H,
            [Lp, Lm],
            rho0,
            ts,
            exp_ops=[Jz, Jp],
            method=method,
            save_states=False,
            progress_meter=False,
        )
        return jax.block_until_ready(r.expects)

    def extract(ex):
        ex = np.asarray(ex)
        return dict(jz=np.real(ex[0]), jp=np.abs(ex[1]))

    return once, extract


def time_round_robin(setups: dict, repeat: int) -> dict:
    """First call of each method, then `repeat` rounds in which every method runs once in
    turn (so a change of the machine's load hits all of them alike); best warm time each."""
    out = {}
    for name, (once, extract, compiled) in setups.items():
        t0 = time.perf_counter()
        res = once()
        first = time.perf_counter() - t0
        out[name] = dict(first_call_s=first if compiled else None, warm_s=np.inf, **extract(res))
    for _ in range(repeat):
        for name, (once, _, _) in setups.items():
            t0 = time.perf_counter()
            once()
            out[name]["warm_s"] = min(out[name]["warm_s"], time.perf_counter() - t0)
    return out


def _peak_rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def compare(J, repeat, peers):
    ts = np.linspace(0.0, T_FINAL, N_SAVE)
    setups = {
        "jaxcoll evolve, e_ops, RMS norm": (*setup_jaxcoll(J, ts, "rms"), True),
        "jaxcoll evolve, e_ops, max norm": (*setup_jaxcoll(J, ts, "max"), True),
        "jaxcoll evolve, 200 states + all obs.": (*setup_jaxcoll(J, ts, "states"), True),
    }
    runners = dict(
        dynamiqs=("dynamiqs mesolve DIA Tsit5", setup_dynamiqs, True),
        qutip=("QuTiP 5 mesolve", setup_qutip, False),
    )
    for key in peers:
        name, fn, compiled = runners[key]
        try:
            setups[name] = (*fn(J, ts), compiled)
        except ImportError as e:  # peer not installed: say so
            print(f"skipping {name}: {e}")
    timed = time_round_robin(setups, repeat)
    rows = list(timed.items())
    ours = timed["jaxcoll evolve, e_ops, RMS norm"]
    table = []
    for name, r in rows:
        dz = np.max(np.abs(r["jz"] - ours["jz"])) / J
        dp = np.max(np.abs(r["jp"] - ours["jp"])) / J
        table.append(
            dict(
                method=name,
                first_call_s=r.get("first_call_s"),
                warm_s=r["warm_s"],
                speedup_of_jaxcoll=r["warm_s"] / ours["warm_s"],
                max_dJz_over_J=dz,
                max_dJp_over_J=dp,
                steps=r.get("steps"),
            )
        )
    print(f"\nJ = {J}, d = {2 * J + 1}: full density matrix, {N_SAVE} save points to t = {T_FINAL}")
    print(
        f"{'method':38s} {'first [s]':>10s} {'warm [s]':>10s} {'x RMS row':>10s} "
        f"{'|dJz|/J':>10s} {'|dJ+|/J':>10s} {'steps':>6s}"
    )
    for r in table:
        fc = "" if r["first_call_s"] is None else f"{r['first_call_s']:.2f}"
        st = "" if r["steps"] is None else str(r["steps"])
        print(
            f"{r['method']:38s} {fc:>10s} {r['warm_s']:10.3f} {r['speedup_of_jaxcoll']:10.1f} "
            f"{r['max_dJz_over_J']:10.2e} {r['max_dJp_over_J']:10.2e} {st:>6s}"
        )
    peers = [r for r in table if not r["method"].startswith("jaxcoll")]
    mx = next(r for r in table if "max norm" in r["method"])
    for r in peers:
        print(
            f"speed-up over {r['method']}: {r['speedup_of_jaxcoll']:.1f}x (RMS norm), "
            f"{r['warm_s'] / mx['warm_s']:.1f}x (max norm)"
        )
    return table


def scaling(Js, n_save=N_SAVE):
    """Cost of jaxcoll's full density-matrix evolution vs J: all coherence bands evolved,
    energy, <J_z> and <J_+> at `n_save` points (default norm, max), warm and first call, and
    the final density matrix formed from the bands (the whole state is there at the end)."""
    out = []
    for J in Js:
        gas = jaxcoll.SpinGas(J, **PARAMS)
        rho0 = jaxcoll.spin_coherent_state(J, np.pi / 2)
        ts = np.linspace(0.0, T_FINAL, n_save)
        kw = dict(rtol=RTOL, atol=ATOL, observables=("energy",), e_ops=list(_spin_ops(J)))

        def once(gas=gas, rho0=rho0, ts=ts, kw=kw):
            r = jaxcoll.evolve(gas, rho0, ts, observables_only=True, **kw)
            return jax.block_until_ready(r)

        t0 = time.perf_counter()
        r = once()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        r = once()
        warm = time.perf_counter() - t0
        # The final state, whole: trace and Hermiticity as a check that nothing was dropped.
        last = jaxcoll.evolve(gas, rho0, ts[[0, -1]], rtol=RTOL, atol=ATOL, observables=())
        rho = np.asarray(last.states[-1])
        out.append(
            dict(
                J=J,
                d=2 * J + 1,
                first_call_s=first,
                warm_s=warm,
                steps=int(r.num_steps),
                final_energy=float(r.energy[-1]),
                final_jz=float(np.real(r.expect[0, -1])),
                final_trace_error=float(abs(np.trace(rho) - 1)),
                final_min_eigenvalue=float(np.linalg.eigvalsh(rho)[0]) if J <= 400 else None,
                peak_rss_gib=_peak_rss_gib(),
            )
        )
        print(
            f"J = {J:5d}  d = {2 * J + 1:5d}  first {first:8.2f} s  warm {warm:8.2f} s  "
            f"steps {int(r.num_steps):4d}  |tr - 1| {out[-1]['final_trace_error']:.1e}  "
            f"peak RSS {_peak_rss_gib():.2f} GiB"
        )
    d = np.array([r["d"] for r in out], float)
    t = np.array([r["warm_s"] for r in out], float)
    big = d >= 200
    slope = float(np.polyfit(np.log(d[big]), np.log(t[big]), 1)[0]) if big.sum() >= 2 else None
    print(f"fitted cost exponent in d (d >= 200): {slope}  (O(d^2) entries per step: 2)")
    return dict(rows=out, exponent_in_d=slope)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="only the J = 100 comparison")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "density.json"))
    args = p.parse_args()
    peers = [] if args.no_peers else ["dynamiqs", "qutip"]
    result = dict(
        machine=dict(
            platform=platform.platform(),
            cpu_count=os.cpu_count(),
            backend=jax.default_backend(),
            device=str(jax.devices()[0]),
        ),
        versions=dict(jax=jax.__version__, jaxcoll=jaxcoll.__version__),
        settings=dict(J=100, **PARAMS, t_final=T_FINAL, n_save=N_SAVE, rtol=RTOL, atol=ATOL),
        comparison=compare(100, args.repeat, peers),
        comparison_measured_at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        load_average=os.getloadavg(),
    )
    out = Path(args.out)
    if not args.quick:
        result["scaling"] = scaling([25, 50, 100, 200, 400, 1000])
        result["scaling_measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    elif out.exists():  # --quick keeps the cost-vs-J table of the last full run
        old = json.loads(out.read_text())
        for key in ("scaling", "scaling_measured_at"):
            if key in old:
                result[key] = old[key]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
