"""Collision-resolved trajectories against a NumPy tilted superoperator and SciPy expm.

Reference: the master equation built here in NumPy from dense jump operators
($L_c\\rho L_c^\\dagger - \\frac12\\{L_c^\\dagger L_c, \\rho\\}$, row-major vec), each jump
term tilted by $e^{\\lambda w_c}$; the exact mean and second moment of $\\sum w_c$ over the
jumps in $[t_0, t]$ are the first two $\\lambda$-derivatives of
$\\mathrm{tr}\\, e^{(t - t_0)\\mathcal L(\\lambda)}\\rho_0$, read off one SciPy `expm` of the
block-Toeplitz matrix $[[\\mathcal L_0, \\mathcal L_1, \\mathcal L_2/2], [0, \\mathcal L_0,
\\mathcal L_1], [0, 0, \\mathcal L_0]]$ ($\\mathcal L_k = \\sum_c w_c^k \\mathcal J_c$), which is
$e^{t\\mathcal L(\\lambda)}$ as a power series in $\\lambda$ truncated at $\\lambda^2$.

Monte-Carlo comparisons use 10^4 trajectories with a fixed key and allow 4 standard errors:
$\\sqrt{\\mathrm{var}/n}$ for means, $\\sqrt{(m_4 - \\mathrm{var}^2)/n}$ for variances (the
sample fourth central moment; the distributions are lattices, not Gaussians).
"""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import jaxcoll

N = 10_000


# --- reference ---------------------------------------------------------------------------------


def _lindblad_parts(H, Ls):
    d = H.shape[0]
    eye = np.eye(d)
    K = sum(L.conj().T @ L for L in Ls)
    G = -1j * H - 0.5 * K
    L0 = np.kron(G, eye) + np.kron(eye, G.conj())
    jumps = [np.kron(L, L.conj()) for L in Ls]
    return L0 + sum(jumps), jumps


def _moments(H, Ls, weights, rho0, ts):
    """Exact mean and variance of sum_c w_c N_c(t) (N_c: jumps of channel c since ts[0])."""
    d = H.shape[0]
    Lfull, jumps = _lindblad_parts(H, Ls)
    L1 = sum(w * J for w, J in zip(weights, jumps, strict=True))
    L2 = sum(w**2 * J for w, J in zip(weights, jumps, strict=True))
    n = d * d
    Z = np.zeros((n, n))
    B = np.block([[Lfull, L1, 0.5 * L2], [Z, Lfull, L1], [Z, Z, Lfull]])
    vec_rho = rho0.reshape(-1)
    tr = np.eye(d).reshape(-1)
    mean, var = [], []
    for t in ts:
        E = scipy.linalg.expm((t - ts[0]) * B)
        m1 = np.real(tr @ E[:n, n : 2 * n] @ vec_rho)
        m2 = 2 * np.real(tr @ E[:n, 2 * n :] @ vec_rho)
        mean.append(m1)
        var.append(m2 - m1**2)
    return np.array(mean), np.array(var)


def _energy_moments(H, Ls, hs, rho0, ts):
    """Exact mean of tr(rho h_S) and the variance of h_S's eigenvalues in rho(t)."""
    Lfull, _ = _lindblad_parts(H, Ls)
    d = H.shape[0]
    mean, var = [], []
    for t in ts:
        rho = (scipy.linalg.expm((t - ts[0]) * Lfull) @ rho0.reshape(-1)).reshape(d, d)
        m1 = np.real(np.trace(rho @ hs))
        mean.append(m1)
        var.append(np.real(np.trace(rho @ hs @ hs)) - m1**2)
    return np.array(mean), np.array(var)


def _spin_reference(model):
    """(H, [L+, L-], dE_A, dE_M) of eq. (18) from the spin's operators and rates (eq. 14:
    a J+ jump takes omega_a from the ancilla; the motion gets -(E_c + dE_A))."""
    jz, jp, jm = (np.asarray(x, dtype=complex) for x in model.operators())
    gp, gm = (float(x) for x in model.rates())
    ws, wa = float(model.omega_s), float(model.omega_a)
    dA = np.array([-wa, wa])
    dM = -(np.array([ws, -ws]) + dA)
    return ws * jz, [np.sqrt(gp) * jp, np.sqrt(gm) * jm], dA, dM


def _model_reference(model):
    """(H, Ls, dE_A, dE_M) of a CollisionalModel in the basis of h_s, from its dense jump
    operators (eq. 7) and h_s + h_eff."""
    Ls = list(np.asarray(model.channel_operators()))
    H = np.asarray(model.h_s) + np.asarray(model.h_eff())
    dA = np.asarray(model.channel_ancilla)
    dM = -(np.asarray(model.channel_bohr) + dA)
    return H, Ls, dA, dM


def _se_mean(x):
    return x.std(0) / np.sqrt(len(x)) + 1e-300


def _se_var(x):
    c = x - x.mean(0)
    m2 = (c**2).mean(0)
    m4 = (c**4).mean(0)
    return np.sqrt(np.maximum(m4 - m2**2, 0) / len(x)) + 1e-300


def _check_against(res, H, Ls, dA, dM, rho0, hs, *, energy_variance=True):
    ts = res.ts
    for q, w in ((res.Q[..., 0], dA), (res.Q[..., 1], dM)):
        mean, var = _moments(H, Ls, w, rho0, ts)
        assert np.all(np.abs(q.mean(0) - mean) <= 4 * _se_mean(q) + 1e-12), (q.mean(0), mean)
        assert np.all(np.abs(q.var(0) - var) <= 4 * _se_var(q) + 1e-12), (q.var(0), var)
    e_mean, e_var = _energy_moments(H, Ls, hs, rho0, ts)
    E = res.energy
    assert np.all(np.abs(E.mean(0) - e_mean) <= 4 * _se_mean(E) + 1e-12), (E.mean(0), e_mean)
    if energy_variance:
        assert np.all(np.abs(E.var(0) - e_var) <= 4 * _se_var(E) + 1e-12), (E.var(0), e_var)


def _random_model(seed, hs_levels, k=2, *, complex_v=False, **kw):
    rng = np.random.default_rng(seed)
    d = len(hs_levels)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    hs = q @ np.diag(hs_levels) @ q.T
    ha = np.diag(np.sort(rng.uniform(0.2, 1.5, size=k)))
    v = rng.normal(size=(d * k, d * k))
    if complex_v:
        v = v + 1j * rng.normal(size=(d * k, d * k))
    kw = kw or dict(gamma_tilde=0.8)
    return jaxcoll.CollisionalModel(hs, ha, v + v.conj().T, T_a=2.5, T_m=0.7, **kw), rng


def _rand_rho(rng, d):
    z = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    rho = z @ z.conj().T
    return rho / np.trace(rho).real


# --- Gillespie ------------------------------------------------------------------------------------


def test_spin_against_tilted_expm():
    model = jaxcoll.SpinGas(2, omega_s=1.0, delta=2.0, T_a=6.0, T_m=1.0, gamma_tilde=1.0)
    p0 = np.array([0.5, 0.2, 0.1, 0.1, 0.1])
    ts = np.array([0.0, 0.4, 1.5, 4.0])
    res = jaxcoll.collision_trajectories(model, p0, ts, n_traj=N, key=jax.random.key(0))
    assert res.method == "gillespie"
    H, Ls, dA, dM = _spin_reference(model)
    _check_against(res, H, Ls, dA, dM, np.diag(p0).astype(complex), H)
    # counts per channel: the J+ jumps, their exact mean from the same reference
    mean, _ = _moments(H, Ls, [1.0, 0.0], np.diag(p0).astype(complex), ts)
    n_plus = res.counts[..., 0]
    assert np.all(np.abs(n_plus.mean(0) - mean) <= 4 * _se_mean(n_plus) + 1e-12)


def test_spin_tight_coupling_and_first_law_per_trajectory():
    model = jaxcoll.SpinGas(3, omega_s=1.3, delta=0.6, T_a=2.0, T_m=0.9, gamma_tilde=1.0)
    p0 = np.full(model.dim, 1.0 / model.dim)
    res = jaxcoll.collision_trajectories(
        model, p0, np.linspace(0.0, 3.0, 5), n_traj=2000, key=jax.random.key(3)
    )
    dE = res.energy - res.energy[:, :1]
    w_s, w_a = 1.3, 1.3 + 0.6
    # the spin's tight coupling: every collision moves omega_a in the ancilla per omega_s
    np.testing.assert_allclose(res.Q[..., 0], -(w_a / w_s) * dE, rtol=0, atol=1e-12)
    # first law per trajectory, eq. (14): Delta E_S + Q_A + Q_M = 0
    np.testing.assert_allclose(dE + res.Q.sum(-1), 0.0, rtol=0, atol=1e-12)
    assert res.n_jumps.max() > 5  # the check saw collisions


def test_random_model_against_tilted_expm_and_first_law():
    model, rng = _random_model(11, [0.0, 0.45, 1.3])
    p0 = np.array([0.5, 0.3, 0.2])
    ts = np.array([0.0, 0.7, 2.5])
    res = jaxcoll.collision_trajectories(model, p0, ts, n_traj=N, key=jax.random.key(1))
    assert res.method == "gillespie"
    H, Ls, dA, dM = _model_reference(model)
    U = np.asarray(model.eigenbasis)  # populations are in the energy eigenbasis
    rho0 = U @ np.diag(p0) @ U.conj().T
    _check_against(res, H, Ls, dA, dM, rho0, np.asarray(model.h_s))
    np.testing.assert_allclose(
        res.energy - res.energy[:, :1] + res.Q.sum(-1), 0.0, rtol=0, atol=1e-12
    )
    # an E = 0 channel (ancilla flip at fixed system level) moves heat between the sectors
    # without changing E_S: such channels exist and fire
    zero = np.flatnonzero(np.abs(np.asarray(model.channel_bohr)) < 1e-12)
    zero = zero[np.abs(np.asarray(model.channel_ancilla)[zero]) > 0]
    assert zero.size and res.counts[:, -1, zero].sum() > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_integral_fluctuation_theorem(seed):
    # real symmetric coupling, non-degenerate spectrum: eq. (9) holds; T_A != T_M
    model, _ = _random_model(20 + seed, [0.0, 0.5, 1.1])
    p0 = np.array([0.2, 0.5, 0.3])
    ts = np.array([0.0, 0.5, 2.0])
    res = jaxcoll.collision_trajectories(model, p0, ts, n_traj=N, key=jax.random.key(seed))
    S = jaxcoll.entropy_production(model, res)
    x = np.exp(-S)
    assert np.all(np.abs(x.mean(0) - 1.0) <= 4 * _se_mean(x))
    assert np.all(S.mean(0)[1:] > 0)  # second law on average
    # the sectors gain entropy +Q/T: with the opposite sign the theorem fails clearly
    wrong = S - 2 * (res.Q[..., 0] / 2.5 + res.Q[..., 1] / 0.7)
    assert np.abs(np.exp(-wrong).mean(0)[-1] - 1.0) > 10 * _se_mean(np.exp(-wrong))[-1]


def test_integral_fluctuation_theorem_spin():
    model = jaxcoll.SpinGas(2, omega_s=1.0, delta=1.0, T_a=3.0, T_m=1.0, gamma_tilde=1.0)
    p0 = np.array([0.3, 0.25, 0.2, 0.15, 0.1])
    res = jaxcoll.collision_trajectories(
        model, p0, np.array([0.0, 0.3, 1.0]), n_traj=N, key=jax.random.key(5)
    )
    x = np.exp(-jaxcoll.entropy_production(model, res))
    assert np.all(np.abs(x.mean(0) - 1.0) <= 4 * _se_mean(x))


# --- quantum jumps --------------------------------------------------------------------------------


def test_degenerate_levels_with_forward_shift_quantum_jumps():
    # two degenerate levels coupled coherently, a complex coupling and h_eff != 0: levels do
    # not stay levels, so the quantum-jump unravelling is used
    model, rng = _random_model(5, [0.0, 0.8, 0.8], complex_v=True, density=0.05, coupling=1.0)
    assert np.abs(np.asarray(model.h_eff())).max() > 1e-3
    rho0 = _rand_rho(rng, 3)
    ts = np.array([0.0, 0.5, 1.8])
    res = jaxcoll.collision_trajectories(model, rho0, ts, n_traj=N, key=jax.random.key(2))
    assert res.method == "quantum" and res.levels is None
    H, Ls, dA, dM = _model_reference(model)
    _check_against(res, H, Ls, dA, dM, rho0, np.asarray(model.h_s), energy_variance=False)
    with pytest.raises(ValueError, match="method='gillespie'"):
        jaxcoll.collision_trajectories(
            model, rho0, ts, n_traj=4, key=jax.random.key(0), method="gillespie"
        )


def test_coherent_start_quantum_jumps_and_gillespie_agree_on_heat():
    model, rng = _random_model(7, [0.0, 0.6, 1.5])
    rho0 = _rand_rho(rng, 3)
    ts = np.array([0.0, 1.0, 2.0])
    H, Ls, dA, dM = _model_reference(model)
    res = jaxcoll.collision_trajectories(model, rho0, ts, n_traj=N, key=jax.random.key(4))
    assert res.method == "quantum"
    _check_against(res, H, Ls, dA, dM, rho0, np.asarray(model.h_s), energy_variance=False)
    # non-degenerate spectrum: coherences never reach Q, so the dephased start gives the
    # same heat statistics (and the energy statistics of the dephased state)
    g = jaxcoll.collision_trajectories(
        model, rho0, ts, n_traj=N, key=jax.random.key(4), method="gillespie"
    )
    U = np.asarray(model.eigenbasis)
    dephased = U @ np.diag(np.real(np.diag(U.conj().T @ rho0 @ U))) @ U.conj().T
    _check_against(g, H, Ls, dA, dM, dephased, np.asarray(model.h_s))


# --- chunks, devices, records, errors ---------------------------------------------------------


@pytest.mark.parametrize("method", ["gillespie", "quantum"])
def test_result_does_not_depend_on_chunk_size(method):
    model = jaxcoll.SpinGas(1.5, omega_s=1.0, delta=0.5, T_a=2.0, T_m=1.0, gamma_tilde=1.0)
    p0 = np.full(4, 0.25)
    ts = np.array([0.0, 0.5, 2.0])
    kw = dict(n_traj=37, key=jax.random.key(9), method=method, record_jumps=4)
    a = jaxcoll.collision_trajectories(model, p0, ts, chunk_size=5, **kw)
    b = jaxcoll.collision_trajectories(model, p0, ts, chunk_size=64, **kw)
    for name in ("Q", "energy", "counts", "n_jumps", "jump_times", "jump_channels"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    # trajectory i is the same whatever n_traj is
    c = jaxcoll.collision_trajectories(model, p0, ts, chunk_size=5, **{**kw, "n_traj": 12})
    np.testing.assert_array_equal(c.Q, a.Q[:12])


_DEVICE_SCRIPT = textwrap.dedent(
    """
    import sys, jax, numpy as np, jaxcoll
    jax.config.update("jax_enable_x64", True)
    assert len(jax.local_devices()) == int(sys.argv[2])
    model = jaxcoll.SpinGas(1.5, omega_s=1.0, delta=0.5, T_a=2.0, T_m=1.0, gamma_tilde=1.0)
    res = jaxcoll.collision_trajectories(
        model, np.full(4, 0.25), np.array([0.0, 0.5, 2.0]), n_traj=21,
        key=jax.random.key(9), chunk_size=8,
    )
    np.savez(sys.argv[1], Q=res.Q, counts=res.counts, energy=res.energy)
    """
)


def test_result_does_not_depend_on_device_count(tmp_path):
    out = {}
    for n_dev in (1, 2):
        env = dict(os.environ)
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n_dev}"
        env["JAX_PLATFORMS"] = "cpu"
        path = tmp_path / f"dev{n_dev}.npz"
        subprocess.run(
            [sys.executable, "-c", _DEVICE_SCRIPT, str(path), str(n_dev)],
            env=env,
            check=True,
            timeout=300,
        )
        out[n_dev] = np.load(path)
    for name in ("Q", "counts", "energy"):
        np.testing.assert_array_equal(out[1][name], out[2][name], err_msg=name)


def test_jump_records_and_waiting_times():
    model = jaxcoll.SpinGas(2, omega_s=1.0, delta=2.0, T_a=6.0, T_m=1.0, gamma_tilde=1.0)
    ts = np.array([0.0, 3.0])
    res = jaxcoll.collision_trajectories(
        model, np.eye(5)[0], ts, n_traj=N, key=jax.random.key(6), record_jumps=400
    )
    assert res.n_jumps.max() <= 400
    ch = res.jump_channels
    for c in (0, 1):  # the records agree with the counts
        np.testing.assert_array_equal((ch == c).sum(1), res.counts[:, -1, c])
    t = res.jump_times
    assert np.all(np.diff(np.where(np.isnan(t), 1e300, t), axis=1) >= 0)
    assert np.nanmax(t) <= 3.0 and np.nanmin(t) >= 0.0
    # from the ground state the first collision is a J+ jump after an exponential time with
    # rate Gamma_+ <1|J+|0>^2 = 4 Gamma_+ (J = 2)
    gp = float(model.rates()[0])
    first = t[:, 0][~np.isnan(t[:, 0])]
    assert np.all(ch[:, 0][res.n_jumps > 0] == 0)
    p_none = np.mean(res.n_jumps == 0)
    assert abs(p_none - np.exp(-4 * gp * 3.0)) <= 4 * np.sqrt(p_none * (1 - p_none) / N) + 1e-4
    # mean of the exponential truncated at t = 3
    lam = 4 * gp
    mean = 1 / lam - 3.0 * np.exp(-lam * 3.0) / (1 - np.exp(-lam * 3.0))
    assert abs(first.mean() - mean) <= 4 * _se_mean(first)


def test_cap_and_bad_arguments():
    model = jaxcoll.SpinGas(2, omega_s=1.0, delta=2.0, T_a=6.0, T_m=1.0, gamma_tilde=1.0)
    p0, ts, key = np.eye(5)[0], np.array([0.0, 5.0]), jax.random.key(0)
    with pytest.raises(RuntimeError, match="max_jumps=2"):
        jaxcoll.collision_trajectories(model, p0, ts, n_traj=50, key=key, max_jumps=2)
    with pytest.raises(ValueError, match="n_traj"):
        jaxcoll.collision_trajectories(model, p0, ts, n_traj=0, key=key)
    with pytest.raises(ValueError, match="method"):
        jaxcoll.collision_trajectories(model, p0, ts, n_traj=2, key=key, method="mc")
    with pytest.raises(ValueError, match="rho0"):
        jaxcoll.collision_trajectories(model, np.ones(4) / 4, ts, n_traj=2, key=key)
    with pytest.raises(ValueError, match="ts"):
        jaxcoll.collision_trajectories(model, p0, np.array([1.0, 0.5]), n_traj=2, key=key)
    with pytest.raises(TypeError, match="key"):
        jaxcoll.collision_trajectories(model, p0, ts, n_traj=2, key=None)
    with pytest.raises(TypeError, match="concrete model"):
        jax.jit(lambda m: jaxcoll.collision_trajectories(m, p0, ts, n_traj=2, key=key).Q)(model)
    quantum = jaxcoll.collision_trajectories(model, p0, ts, n_traj=2, key=key, method="quantum")
    with pytest.raises(ValueError, match="gillespie"):
        jaxcoll.entropy_production(model, quantum)
    with pytest.raises(TypeError, match="model"):
        jaxcoll.collision_trajectories(jnp.eye(2), p0, ts, n_traj=2, key=key)
