"""Energy flows of the structured reservoir (`energy_budget`) against independent references.

References: trajectories by SciPy's matrix exponential; cumulative flows Q_X(t) = int o_X . rho
by the exact block-exponential (Van Loan) integral, with the instantaneous flow functionals
o_X read off `CollisionalModel.energy_flows` (eq. 14-15) on a basis of Hermitian matrices;
spin rates of eq. (19) from the closed form of the scattering integral (SciPy k1e); closed
forms for the spin model's tight coupling and the steady heat current of a qubit gas with
counter-rotating coupling.
"""

import math

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sla
from _references import (
    I_ref,
    birth_death_generator,
    ergotropy_density_ref,
    ergotropy_ref,
    random_hermitian,
    spin_rates_ref,
)

import jaxcoll
from jaxcoll._flows import energy_budget
from jaxcoll._model import CollisionalModel

# --- independent references ----------------------------------------------------------------------


def van_loan_integral(G, o, x0, ts):
    """q(t) = int_0^t o . exp(G s) x0 ds, exactly, from one block exponential per time."""
    n = G.shape[0]
    B = np.zeros((n + 1, n + 1), dtype=complex)
    B[:n, :n] = G
    B[n, :n] = o
    return np.array([(sla.expm(B * t)[n, :n] @ x0) for t in ts])


def flow_functionals(model):
    """Complex vectors o_X with tr(O_X rho) = o_X . vec(rho), from model.energy_flows."""
    d = model.dim

    def totals(h):
        f = model.energy_flows(jnp.asarray(h))
        return np.array(
            [float(np.sum(f.system)), float(np.sum(f.ancilla)), float(np.sum(f.motion))]
        )

    O = np.zeros((3, d, d), dtype=complex)
    for i in range(d):
        E = np.zeros((d, d), dtype=complex)
        E[i, i] = 1.0
        O[:, i, i] = totals(E)
        for j in range(i + 1, d):
            sym = np.zeros((d, d), dtype=complex)
            sym[i, j] = sym[j, i] = 1.0
            asym = np.zeros((d, d), dtype=complex)
            asym[i, j], asym[j, i] = 1j, -1j
            re, im = totals(sym) / 2.0, -totals(asym) / 2.0  # Re O_ji, Im O_ji
            O[:, j, i] = re + 1j * im
            O[:, i, j] = re - 1j * im
    return np.stack([o.T.reshape(-1) for o in O])  # tr(O rho) = vec(O^T) . vec(rho)


def qutrit_model(T_a, T_m, seed=0):
    """Unequal qutrit levels (six Bohr frequencies), qubit ancilla, a random coupling: many
    channels, including ancilla flips that leave the system level unchanged."""
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3)))[0]
    h_s = U @ np.diag([0.0, 1.0, 2.7]) @ U.conj().T
    return CollisionalModel(
        h_s, np.diag([0.0, 1.3]), random_hermitian(rng, 6), T_a=T_a, T_m=T_m, gamma_tilde=0.3
    )


TS = np.linspace(0.0, 6.0, 13)


# --- first law and cumulative flows, general model ----------------------------------------------


def test_first_law_and_flows_density_matrix_vs_expm():
    model = qutrit_model(T_a=2.0, T_m=0.6)
    assert model.n_channels >= 8
    d = model.dim
    S = np.asarray(model.superoperator())
    rng = np.random.default_rng(3)
    a = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    rho0 = a @ a.conj().T
    rho0 /= np.trace(rho0)
    x0 = rho0.reshape(-1)
    states = np.stack([(sla.expm(S * t) @ x0).reshape(d, d) for t in TS])
    b = energy_budget(model, states, TS)
    h = np.asarray(model.h_s)
    dE = np.real(np.einsum("ij,nji->n", h, states - states[0]))  # independent of energy_budget
    assert np.max(np.abs(dE + np.asarray(b.ancilla) + np.asarray(b.motion))) < 1e-10
    assert np.max(np.abs(np.asarray(b.first_law_residual()))) < 1e-12
    np.testing.assert_allclose(b.system, dE, atol=1e-12)
    o = flow_functionals(model)
    for k, (rate, cum) in enumerate(
        ((b.system_rate, b.system), (b.ancilla_rate, b.ancilla), (b.motion_rate, b.motion))
    ):
        np.testing.assert_allclose(rate, np.real(states.reshape(len(TS), -1) @ o[k]), atol=1e-12)
        ref = np.real(van_loan_integral(S, o[k], x0, TS))
        np.testing.assert_allclose(cum, ref, atol=1e-10)
    # the ancillas are hotter than the motion: they lose energy on the way to the steady state
    assert float(b.ancilla[-1]) < 0 < float(b.motion[-1])
    # the same from an evolve result (density-matrix start)
    res = jaxcoll.evolve(model, jnp.asarray(rho0), jnp.asarray(TS), rtol=1e-10, atol=1e-12)
    be = energy_budget(model, res)
    for f in ("system", "ancilla", "motion", "ancilla_rate"):
        np.testing.assert_allclose(getattr(be, f), getattr(b, f), atol=1e-8, err_msg=f)
    # CONTRACT.md: "W = tr(rho H) - sum_k r_k^desc e_k^asc for any state"
    W = [ergotropy_density_ref(rho, h) for rho in states]
    np.testing.assert_allclose(b.ergotropy, W, atol=1e-12)
    np.testing.assert_allclose(be.ergotropy, W, atol=1e-8)
    assert max(W) > 1e-3  # a state with ergotropy to speak of


def test_flows_from_evolve_populations_vs_expm():
    model = qutrit_model(T_a=0.5, T_m=2.0, seed=1)
    M = np.asarray(model.population_generator())
    p0 = np.array([0.1, 0.3, 0.6])
    res = jaxcoll.evolve(model, jnp.asarray(p0), jnp.asarray(TS), rtol=1e-10, atol=1e-12)
    b = energy_budget(model, res)
    np.testing.assert_allclose(b.ts, TS)
    assert np.max(np.abs(np.asarray(b.first_law_residual()))) < 1e-12
    e = np.asarray(model.energies())
    P = np.stack([sla.expm(M * t) @ p0 for t in TS])
    np.testing.assert_allclose(b.system, (P - p0) @ e, atol=1e-8)
    # jump-rate functionals on the population sector: eigenbasis projectors through energy_flows
    U = np.asarray(model.eigenbasis)
    o = np.zeros((3, 3))
    for j in range(3):
        f = model.energy_flows(jnp.asarray(np.outer(U[:, j], U[:, j].conj())))
        o[:, j] = [float(np.sum(f.system)), float(np.sum(f.ancilla)), float(np.sum(f.motion))]
    for k, cum in enumerate((b.system, b.ancilla, b.motion)):
        ref = np.real(van_loan_integral(M, o[k], p0, TS))
        np.testing.assert_allclose(cum, ref, atol=1e-8)
    # the motion is hotter now: the ancilla sector takes up energy
    assert float(b.ancilla[-1]) > 0
    # CONTRACT.md: "Ergotropy, eq. (23) for energy-diagonal states", from the expm populations
    W = [ergotropy_ref(p, e) for p in P]
    np.testing.assert_allclose(b.ergotropy, W, atol=1e-8)
    assert max(W) > 1e-3


# --- steady states: equilibrium vs one non-equilibrium reservoir ---------------------------------


def test_equilibrium_gas_has_no_steady_flows():
    model = qutrit_model(T_a=0.8, T_m=0.8, seed=2)
    p_ss = np.asarray(jaxcoll.thermal_populations(model.energies(), jnp.asarray(1.0 / 0.8)))
    b = energy_budget(model, np.stack([p_ss, p_ss]), np.array([0.0, 1.0]))
    np.testing.assert_allclose(b.steady_rates, 0.0, atol=1e-13)
    np.testing.assert_allclose(b.ancilla_rate, 0.0, atol=1e-13)
    np.testing.assert_allclose([b.ancilla[-1], b.motion[-1]], 0.0, atol=1e-13)


def qubit_gas_steady_ref(omega, omega_a, T_a, T_m, gamma_tilde, E_R=1.0):
    """Qubit in a qubit gas with v = sx (x) sx: four channels, steady (J_A, J_M) in closed form."""
    alpha = E_R / T_m
    p0, p1 = 1.0 / (1.0 + math.exp(-omega_a / T_a)), 1.0 / (1.0 + math.exp(omega_a / T_a))
    r = lambda p, s: gamma_tilde * p * I_ref(alpha, s / E_R)
    up1, up2 = r(p1, omega - omega_a), r(p0, omega + omega_a)  # g -> e with ancilla 1->0, 0->1
    dn1, dn2 = r(p0, -omega + omega_a), r(p1, -omega - omega_a)  # e -> g with ancilla 0->1, 1->0
    Pg = (dn1 + dn2) / (up1 + up2 + dn1 + dn2)
    Pe = 1.0 - Pg
    J_A = omega_a * (-up1 * Pg + up2 * Pg + dn1 * Pe - dn2 * Pe)
    return J_A, -J_A


@pytest.mark.parametrize("T_a, T_m", [(3.0, 0.7), (0.6, 2.5), (1.2, 1.2)])
def test_steady_heat_current_through_the_system(T_a, T_m):
    omega, omega_a = 1.0, 1.6
    sx = np.array([[0.0, 1.0], [1.0, 0.0]])
    model = CollisionalModel(
        np.diag([-omega / 2, omega / 2]),
        np.diag([0.0, omega_a]),
        np.kron(sx, sx),
        T_a=T_a,
        T_m=T_m,
        gamma_tilde=0.4,
    )
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    b = energy_budget(model, p, np.array([0.0, 1.0]))
    J_A, J_M = qubit_gas_steady_ref(omega, omega_a, T_a, T_m, 0.4)
    S_dot, A_dot, M_dot = (float(x) for x in b.steady_rates)
    assert abs(S_dot) < 1e-14
    assert A_dot == pytest.approx(J_A, rel=1e-9, abs=1e-15)
    assert M_dot == pytest.approx(J_M, rel=1e-9, abs=1e-15)
    # second law for the two sectors at steady state, and heat runs from hot to cold
    assert A_dot / T_a + M_dot / T_m >= -1e-15
    if T_a != T_m:
        assert abs(A_dot) > 1e-4
        assert np.sign(M_dot) == np.sign(T_a - T_m)
    else:
        assert abs(A_dot) < 1e-14


# --- the spin model: tight coupling and the charging efficiency -----------------------------------

SPIN = dict(omega_s=1.0, delta=2.0, T_a=6.0, T_m=1.0, gamma_tilde=0.5)


@pytest.mark.parametrize("start", ["ground", "coherent"])
def test_spin_flows_are_tightly_coupled(start):
    J = 3
    gas = jaxcoll.SpinGas(J, **SPIN)
    gp, gm = spin_rates_ref(**SPIN)
    M, m = birth_death_generator(J, gp, gm), np.arange(2 * J + 1) - J
    if start == "ground":
        rho0 = jaxcoll.ground_populations(gas.dim)
        p0 = np.asarray(rho0)
    else:
        rho0 = jaxcoll.spin_coherent_state(J, 2.0, 0.3)
        p0 = np.real(np.diag(np.asarray(rho0)))
    res = jaxcoll.evolve(gas, rho0, jnp.asarray(TS), rtol=1e-10, atol=1e-12)
    b = energy_budget(gas, res)
    P = np.stack([sla.expm(M * t) @ p0 for t in TS])
    djz = (P - p0) @ m
    w_a = SPIN["omega_s"] + SPIN["delta"]
    np.testing.assert_allclose(b.system, SPIN["omega_s"] * djz, atol=1e-8)
    np.testing.assert_allclose(b.ancilla, -w_a * djz, atol=1e-8)
    np.testing.assert_allclose(b.motion, SPIN["delta"] * djz, atol=1e-8)
    jz_rate = P @ (M.T @ m)
    np.testing.assert_allclose(b.ancilla_rate, -w_a * jz_rate, atol=1e-8)
    assert np.max(np.abs(np.asarray(b.first_law_residual()))) < 1e-12
    # T_A != T_M, yet no steady current: Gibbs at T_eff with detailed balance on every link
    np.testing.assert_allclose(b.steady_rates, 0.0, atol=1e-14)


def test_spin_charging_efficiency_bounded_by_omega_ratio():
    J = 5
    gas = jaxcoll.SpinGas(J, **SPIN)
    assert float(gas.effective_temperature()) < 0  # eq. (22) holds: the gas inverts the spin
    ts = np.concatenate([[0.0], np.geomspace(0.01, 400.0, 80)])
    res = jaxcoll.evolve(gas, jaxcoll.ground_populations(gas.dim), jnp.asarray(ts))
    b = energy_budget(gas, res)
    eta = np.asarray(b.charging_efficiency)
    assert np.all(np.isfinite(eta)) and eta[0] == 0.0
    w_s, w_a = SPIN["omega_s"], SPIN["omega_s"] + SPIN["delta"]
    assert np.all(eta <= w_s / w_a + 1e-9) and np.max(eta) > 0.5 * w_s / w_a
    # long-time limit: Gibbs at T_eff (eq. 21) with the ergotropy of eq. (23), in NumPy
    T_eff = w_s * SPIN["T_a"] * SPIN["T_m"] / (w_a * SPIN["T_m"] - SPIN["delta"] * SPIN["T_a"])
    m = np.arange(2 * J + 1) - J
    p = np.exp(-w_s * (m - m.max()) / T_eff)
    p /= p.sum()
    e = w_s * m
    W_inf = p @ e - np.sort(p)[::-1] @ np.sort(e)
    eta_inf = W_inf / (w_a / w_s * (p @ e - e.min()))
    assert eta[-1] == pytest.approx(eta_inf, rel=1e-5)
    # Carnot bound of the two sectors: eq. (22) is omega_S/omega_A < 1 - T_M/T_A
    assert w_s / w_a < 1.0 - SPIN["T_m"] / SPIN["T_a"]


def test_no_flow_no_nan():
    gas = jaxcoll.SpinGas(2, **SPIN)
    p = np.asarray(gas.steady_state_populations())
    b = energy_budget(gas, np.stack([p, p, p]), np.array([0.0, 1.0, 2.0]))
    for field in (b.charging_efficiency, b.ancilla, b.motion, b.system_rate):
        assert np.all(np.isfinite(np.asarray(field)))
    np.testing.assert_array_equal(b.charging_efficiency, 0.0)


# --- errors --------------------------------------------------------------------------------------


def test_bad_input():
    gas = jaxcoll.SpinGas(1, **SPIN)
    with pytest.raises(ValueError, match="states must have shape"):
        energy_budget(gas, np.ones((3, 4)) / 4, np.arange(3.0))
    with pytest.raises(ValueError, match="states must have shape"):
        energy_budget(gas, np.ones((2, 3)) / 3, np.arange(3.0))
    with pytest.raises(ValueError, match="ts must be given"):
        energy_budget(gas, np.ones((2, 3)) / 3)
    res = jaxcoll.evolve(
        gas, jaxcoll.ground_populations(3), jnp.linspace(0.0, 1.0, 3), observables_only=True
    )
    with pytest.raises(ValueError, match="holds no states"):
        energy_budget(gas, res)
    with pytest.raises(ValueError, match="ergotropy_values"):
        energy_budget(gas, np.ones((2, 3)) / 3, np.arange(2.0), ergotropy_values=np.zeros(3))
    with pytest.raises(TypeError, match="model"):
        energy_budget("gas", np.ones((2, 3)) / 3, np.arange(2.0))


def test_non_unique_steady_state_raises():
    # level 2 is untouched by v: two stationary states, no unique Poisson solution
    P01 = np.zeros((3, 3))
    P01[0, 1] = P01[1, 0] = 1.0
    sx = np.array([[0.0, 1.0], [1.0, 0.0]])
    model = CollisionalModel(
        np.diag([0.0, 1.0, 2.5]), np.diag([0.0, 1.0]), np.kron(P01, sx), T_a=1.0, T_m=0.5,
        gamma_tilde=1.0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="unique stationary state"):
        energy_budget(model, np.full((2, 3), 1.0 / 3), np.array([0.0, 1.0]))
