"""Collision-resolved trajectories of the J = 20 spin against QuTiP `mcsolve`.

Fig. 2 setting: D = delta/T_m = 2, A = omega_a/T_a = 0.5, T_m = E_R (alpha = 1),
gamma_tilde = 1, with omega_s = 1, so delta = 2, omega_a = 3, T_a = 6 (CONTRACT.md). Ground-state
start, 21 saves to t = 20/Gamma~. jaxcoll: 10^5 trajectories (Gillespie on levels, each jump one
collision) with the heat (Q_A, Q_M), energy and collision counts at every save; QuTiP 5
`mcsolve` on the same Lindbladian (H = omega_s J_z, collapse operators sqrt(Gamma_pm) J_pm, in
QuTiP's reversed basis order via `jaxcoll.to_qutip`) at a few hundred trajectories. Both means of
the final energy and of Q_A are checked against `jaxcoll.evolve` / each other.

    python benchmarks/bench_trajectories.py            # 10^5 trajectories, QuTiP at 300
    python benchmarks/bench_trajectories.py --quick    # 10^4, QuTiP at 50
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import numpy as np

import jaxcoll

J, T_FINAL, N_SAVE = 20, 20.0, 21
D, A, ALPHA, OMEGA_S = 2.0, 0.5, 1.0, 1.0


def spin():
    T_m = 1.0 / ALPHA  # alpha = E_R / T_m with E_R = 1
    delta = D * T_m
    T_a = (OMEGA_S + delta) / A
    return jaxcoll.SpinGas(J, omega_s=OMEGA_S, delta=delta, T_a=T_a, T_m=T_m, gamma_tilde=1.0)


def timed(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def run_jaxcoll(model, ts, n_traj, seed):
    p0 = np.eye(model.dim)[0]
    return timed(
        lambda: jaxcoll.collision_trajectories(
            model, p0, ts, n_traj=n_traj, key=jax.random.key(seed)
        )
    )


def run_qutip(model, ts, n_traj):
    import qutip

    jz, jp, jm = (np.asarray(x) for x in model.operators())
    gp, gm = (float(x) for x in model.rates())
    H = jaxcoll.to_qutip(OMEGA_S * jz)
    c_ops = [jaxcoll.to_qutip(np.sqrt(gp) * jp), jaxcoll.to_qutip(np.sqrt(gm) * jm)]
    psi0 = jaxcoll.to_qutip(np.eye(model.dim)[0].astype(complex), kind="ket")
    opts = {"progress_bar": False, "store_states": False}
    res, sec = timed(
        lambda: qutip.mcsolve(H, psi0, ts, c_ops, e_ops=[H], ntraj=n_traj, options=opts, seeds=1)
    )
    # Q_A per trajectory from the collapse records: a J+ jump takes omega_a from the ancilla
    w_a = float(model.omega_a)
    qa = np.array(
        [w_a * (np.sum(np.asarray(w) == 1) - np.sum(np.asarray(w) == 0)) for w in res.col_which]
    )
    return res, qa, sec


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10^4 trajectories, QuTiP at 50")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    n_traj = 10_000 if args.quick else 100_000
    n_qutip = 50 if args.quick else 300

    model = spin()
    ts = np.linspace(0.0, T_FINAL, N_SAVE)
    exact = jaxcoll.evolve(model, np.eye(model.dim)[0], ts, rtol=1e-10, atol=1e-12)
    e_exact = float(exact.energy[-1])

    res, first = run_jaxcoll(model, ts, n_traj, 0)
    res, warm = run_jaxcoll(model, ts, n_traj, 1)
    warm = min(warm, run_jaxcoll(model, ts, n_traj, 2)[1])
    E = res.energy[:, -1]
    qa = res.Q[:, -1, 0]
    q_res, q_qa, q_sec = run_qutip(model, ts, n_qutip)
    q_E = float(np.real(q_res.expect[0][-1]))

    rate_j = n_traj / warm
    rate_q = n_qutip / q_sec
    rows = [
        (
            "jaxcoll collision_trajectories (first call, incl. compile)",
            n_traj,
            first,
            n_traj / first,
        ),
        ("jaxcoll collision_trajectories (compiled, best of 2)", n_traj, warm, rate_j),
        ("QuTiP 5 mcsolve", n_qutip, q_sec, rate_q),
    ]
    print(
        f"J = {J}, D = {D}, A = {A}, alpha = {ALPHA}, t = {T_FINAL}/Gamma~, {N_SAVE} saves; "
        f"load average {os.getloadavg()[0]:.2f} (2 cores)"
    )
    print(f"{'method':<62} {'n_traj':>8} {'time [s]':>9} {'traj/s':>10}")
    for name, n, sec, rate in rows:
        print(f"{name:<62} {n:>8} {sec:>9.3f} {rate:>10.0f}")
    print(f"speedup (trajectories per second, compiled vs mcsolve): {rate_j / rate_q:.0f}x")
    se_E = E.std() / np.sqrt(n_traj)
    print(
        f"mean energy at t = {T_FINAL:g}: exact {e_exact:.4f}, jaxcoll {E.mean():.4f} "
        f"+- {se_E:.4f}, QuTiP {q_E:.4f}"
    )
    print(
        f"mean Q_A at t = {T_FINAL:g}: jaxcoll {qa.mean():.3f} +- "
        f"{qa.std() / np.sqrt(n_traj):.3f}, QuTiP {q_qa.mean():.3f} +- "
        f"{q_qa.std() / np.sqrt(n_qutip):.3f}; mean collisions {res.n_jumps.mean():.1f}"
    )

    out = {
        "J": J,
        "D": D,
        "A": A,
        "alpha": ALPHA,
        "omega_s": OMEGA_S,
        "t_final": T_FINAL,
        "n_save": N_SAVE,
        "quick": args.quick,
        "loadavg": os.getloadavg()[0],
        "devices": [str(d) for d in jax.local_devices()],
        "jaxcoll": {
            "n_traj": n_traj,
            "first_s": first,
            "warm_s": warm,
            "traj_per_s": rate_j,
            "mean_energy": float(E.mean()),
            "se_energy": float(se_E),
            "mean_Q_A": float(qa.mean()),
            "mean_collisions": float(res.n_jumps.mean()),
        },
        "qutip_mcsolve": {
            "n_traj": n_qutip,
            "s": q_sec,
            "traj_per_s": rate_q,
            "mean_energy": q_E,
            "mean_Q_A": float(q_qa.mean()),
        },
        "exact_energy": e_exact,
        "speedup": rate_j / rate_q,
    }
    os.makedirs(args.out, exist_ok=True)
    name = "trajectories_quick.json" if args.quick else "trajectories.json"
    with open(os.path.join(args.out, name), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
