"""Any system on Bohr sectors: the anharmonic ladder, a random model and the spin as a
CollisionalModel (issue "Any system as fast as the spin").

Ladder: h_s = diag(m + 0.05 m^2), m = -J..J (d = 2J + 1; the spectrum folds at m = -10), two-level
ancillas of gap 3, v = J_+ (x) sigma_- + h.c., T_a = 5, T_m = 1, gamma_tilde = 1, uniform
superposition start, 50 saves to t = 5, rtol 1e-6 / atol 1e-8, energy as e_ops; against QuTiP 5
`mesolve(method="bdf")` with the same jump operators as CSR `Qobj`s (d <= 41, or 101 with --full);
agreement against QuTiP at 100x tighter tolerances, and both against SciPy expm of the dense
superoperator.
Random: d = 64, k = 3, random Hermitian h_s and v: build plus a 50-save evolve (time, peak RSS).
Spin: eq. (17) written as a CollisionalModel at J = 100 (full density matrix) against SpinGas.

    python benchmarks/bench_sectors.py            # d = 21, 41, 101, 1001; random; spin J = 100
    python benchmarks/bench_sectors.py --quick    # d = 21, 41 and the random model only
    python benchmarks/bench_sectors.py --full     # also QuTiP at d = 101 (about a minute)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

import jaxcoll

T_FINAL, N_SAVE, RTOL, ATOL = 5.0, 50, 1e-6, 1e-8
KW = dict(T_a=5.0, T_m=1.0, gamma_tilde=1.0)


def ladder(d: int):
    J = (d - 1) / 2
    m = np.arange(d) - J
    c = np.sqrt(J * (J + 1) - m[:-1] * (m[:-1] + 1))
    jp = sp.diags(c, -1, format="csr")
    sm = np.array([[0.0, 1.0], [0.0, 0.0]])
    h = m + 0.05 * m**2
    terms = [(jp, sm), (jp.T.tocsr(), sm.T)]
    return h, np.diag([0.0, 3.0]), terms


def uniform_state(d: int):
    psi = np.ones(d) / np.sqrt(d)
    return np.outer(psi, psi).astype(complex)


def timed(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def energy_trace(model, rho0, ts, H):
    """The energy <H>(t) of `model` from `rho0` at `ts`, the observable alone (what is timed)."""
    r = jaxcoll.evolve(
        model, rho0, ts, rtol=RTOL, atol=ATOL, e_ops=[H], observables=(), observables_only=True
    )
    return np.asarray(r.expect[0]).real


def run_ladder(d: int, with_qutip: bool):
    h, ha, terms = ladder(d)
    ts = np.linspace(0, T_FINAL, N_SAVE)
    rho0 = uniform_state(d)
    H = np.diag(h).astype(complex) if d <= 2001 else None

    def build():
        return jaxcoll.CollisionalModel(h, ha, terms, **KW)

    model, t_build = timed(build)
    _, t_sectors = timed(model.sectors)

    def go():
        return energy_trace(model, rho0, ts, H)

    e1, cold = timed(go)
    e2, warm = timed(go)
    row = dict(
        d=d,
        build_s=t_build,
        sectors_s=t_sectors,
        cold_s=cold,
        warm_s=warm,
        sectors=model.sectors().counts(),
    )
    if with_qutip:
        import qutip

        ch = model.channels()
        r = np.asarray(ch.rates)
        ops = []
        for c in range(ch.n_channels):
            sel = ch.channel == c
            A = sp.csr_matrix(
                (np.sqrt(r[c]) * np.asarray(ch.value)[sel], (ch.row[sel], ch.col[sel])),
                shape=(d, d),
            )
            ops.append(qutip.Qobj(A))
        Hq = qutip.Qobj(sp.diags(h).tocsr())

        def qutip_energy(rtol, atol):
            opts = dict(method="bdf", rtol=rtol, atol=atol, store_states=False, nsteps=10**6)
            res = qutip.mesolve(Hq, qutip.Qobj(rho0), ts, c_ops=ops, e_ops=[Hq], options=opts)
            return np.asarray(res.expect[0]).real

        eq, tq = timed(lambda: qutip_energy(RTOL, ATOL))
        # Agreement: QuTiP-BDF at the timed tolerances is itself off by ~5e-6 relative (its
        # error, not jaxcoll's: see the exact reference), so the agreement is taken against
        # QuTiP at 100x tighter tolerances, and both are checked against SciPy expm.
        eq_tight = qutip_energy(RTOL / 100, ATOL / 100)
        ref = exact_energy(model, rho0, ts, h) if d <= 41 else None

        def rel(x, y):
            if y is None:
                return float("nan")
            return float(np.max(np.abs(x - y) / np.abs(y).clip(1e-300)))

        row.update(
            qutip_s=tq,
            speedup=tq / warm,
            max_rel_diff=rel(e2, eq_tight),
            max_rel_diff_same_tol=rel(e2, eq),
            jaxcoll_rel_err=rel(e2, ref),
            qutip_rel_err=rel(eq, ref),
        )
    return row


def exact_energy(model, rho0, ts, h):
    """tr(h_s rho(t)) from SciPy expm of the dense superoperator built from the channel list
    (equally spaced ts: one propagator, applied repeatedly)."""
    import scipy.linalg as sla

    from jaxcoll._protocol import dense_superoperator

    d = model.dim
    step = sla.expm(dense_superoperator(model) * (ts[1] - ts[0]))
    v = rho0.reshape(-1)
    out = []
    for i in range(len(ts)):
        if i:
            v = step @ v
        out.append(np.sum(h * np.real(np.diag(v.reshape(d, d)))))
    return np.array(out)


def run_random(d=64, k=3, seed=0):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    v = rng.normal(size=(d * k, d * k)) + 1j * rng.normal(size=(d * k, d * k))
    ha = np.diag(np.sort(rng.uniform(0, 3, size=k)))
    rho0 = uniform_state(d)
    ts = np.linspace(0, T_FINAL, N_SAVE)

    def go():
        model = jaxcoll.CollisionalModel(h + h.conj().T, ha, v + v.conj().T, **KW)
        r = jaxcoll.evolve(
            model, rho0, ts, rtol=RTOL, atol=ATOL, observables=("energy",), observables_only=True
        )
        return model, np.asarray(r.energy)

    (model, _), cold = timed(go)
    _, warm = timed(go)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return dict(
        d=d,
        k=k,
        n_channels=int(model.n_channels),
        cold_s=cold,
        warm_s=warm,
        peak_rss_gib_process=rss,
        sectors=model.sectors().counts(),
    )


def run_spin(J=100):
    gas = jaxcoll.SpinGas(J, omega_s=1.0, delta=4.0, **KW)
    _, jp, jm = (np.asarray(x) for x in gas.operators())
    sm = np.array([[0.0, 1.0], [0.0, 0.0]])
    m = np.arange(gas.dim) - J
    model = jaxcoll.CollisionalModel(
        m, np.diag([0.0, 5.0]), [(sp.csr_matrix(jp), sm), (sp.csr_matrix(jm), sm.T)], **KW
    )
    d = gas.dim
    rho0 = uniform_state(d)
    ts = np.linspace(0, T_FINAL, N_SAVE)
    H = np.diag(m).astype(complex)
    out = {}
    for name, mod in [("SpinGas", gas), ("CollisionalModel", model)]:

        def go(mod=mod):
            return energy_trace(mod, rho0, ts, H)

        e, cold = timed(go)
        e, warm = timed(go)
        out[name] = dict(cold_s=cold, warm_s=warm, energy=e)
    diff = float(np.max(np.abs(out["SpinGas"]["energy"] - out["CollisionalModel"]["energy"])))
    for v in out.values():
        v.pop("energy")
    return dict(
        J=J,
        **out,
        ratio=out["CollisionalModel"]["warm_s"] / out["SpinGas"]["warm_s"],
        max_energy_diff=diff,
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--full", action="store_true")
    a = p.parse_args()
    load = os.getloadavg()
    dims = [21, 41] if a.quick else [21, 41, 101, 1001]
    rows = []
    print(f"load average {load[0]:.1f}; ladder, {N_SAVE} saves to t = {T_FINAL}, rtol {RTOL}")
    for d in dims:
        row = run_ladder(d, with_qutip=d <= 41 or (a.full and d <= 101))
        rows.append(row)
        q = (
            f"  QuTiP-BDF {row['qutip_s']:7.2f} s ({row['speedup']:.0f}x), rel diff "
            f"{row['max_rel_diff']:.1e} (same tol {row['max_rel_diff_same_tol']:.1e}); vs expm: "
            f"jaxcoll {row['jaxcoll_rel_err']:.1e}, QuTiP {row['qutip_rel_err']:.1e}"
            if "qutip_s" in row
            else ""
        )
        print(
            f"d = {d:5d}: build {row['build_s']:.2f} s, sectors {row['sectors_s']:.2f} s, "
            f"cold {row['cold_s']:.2f} s, warm {row['warm_s']:.3f} s{q}  {row['sectors']}"
        )
    if len(rows) >= 3:
        ds = np.array([r["d"] for r in rows[-3:]], dtype=float)
        ws = np.array([r["warm_s"] for r in rows[-3:]])
        expo = float(np.polyfit(np.log(ds), np.log(ws), 1)[0])
        print(f"cost exponent (warm, last three d): {expo:.2f}")
    else:
        expo = None
    rnd = run_random()
    print(
        f"random d = 64, k = 3 ({rnd['n_channels']} channels): build + evolve cold "
        f"{rnd['cold_s']:.2f} s, warm {rnd['warm_s']:.2f} s, process peak RSS "
        f"{rnd['peak_rss_gib_process']:.2f} GiB"
    )
    spin = None
    if not a.quick:
        spin = run_spin()
        print(
            f"spin J = 100 full density matrix: SpinGas {spin['SpinGas']['warm_s']:.3f} s, "
            f"CollisionalModel {spin['CollisionalModel']['warm_s']:.3f} s "
            f"(ratio {spin['ratio']:.1f}), energies differ by {spin['max_energy_diff']:.1e}"
        )
    out = Path(__file__).parent / "results" / ("sectors_quick.json" if a.quick else "sectors.json")
    out.write_text(
        json.dumps(dict(load=load, ladder=rows, exponent=expo, random=rnd, spin=spin), indent=1)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
