"""SpinGas (eq. 17-19, 21) against eq. (18) built with explicit dense matrices.

References: the spin matrices from the closed form <m+1|J_+|m> = sqrt((J-m)(J+m+1)) (NumPy) and
from QuTiP's `jmat` (reordered to ascending m: QuTiP puts m = +J first), the scattering integral
(20) in closed form via SciPy's K_1, and the dense Lindbladian/superoperator of eq. (18) in the
row-major convention vec(rho)[i*d + j] = rho[i, j], so vec(A rho B) = kron(A, B.T) vec(rho).
"""

import jax.numpy as jnp
import numpy as np
import pytest
import qutip
from _references import spin_rates_ref as rates_ref
from hypothesis import given, settings, strategies as st

SPINS = [n / 2 for n in range(1, 21)]  # J = 1/2, 1, ..., 10
SOME_SPINS = [0.5, 1, 1.5, 2, 3.5, 6, 10]  # for the costlier structural checks

# (omega_s, delta, T_a, T_m, E_R): equilibrium, hot motion, and an inverting gas with
# T_m < delta T_a / (omega_s + delta) (eq. 22), i.e. a negative effective temperature
PARAMS = [
    (1.0, 0.5, 1.2, 1.2, 1.0),
    (0.7, -0.3, 0.5, 2.0, 1.7),
    (1.0, 3.0, 20.0, 1.0, 1.0),
]


def spin_numpy(J):
    d = int(round(2 * J)) + 1
    m = np.arange(d) - J
    jp = np.diag(np.sqrt((J - m[:-1]) * (J + m[:-1] + 1)), -1).astype(complex)
    return np.diag(m).astype(complex), jp, jp.conj().T


def spin_qutip(J):
    jz = qutip.jmat(J, "z").full()[::-1, ::-1]
    jp = qutip.jmat(J, "+").full()[::-1, ::-1]
    return jz, jp, jp.conj().T


def D(L, rho):
    LdL = L.conj().T @ L
    return L @ rho @ L.conj().T - 0.5 * (LdL @ rho + rho @ LdL)


def eq18(J, omega_s, gp, gm, rho, mats=spin_numpy):
    jz, jp, jm = mats(J)
    return -1j * omega_s * (jz @ rho - rho @ jz) + gp * D(jp, rho) + gm * D(jm, rho)


def superop(A, B):
    """Row-major matrix of rho -> A rho B."""
    return np.kron(A, B.T)


def dissipator_superop(J, gp, gm):
    _, jp, jm = spin_numpy(J)
    d = jp.shape[0]
    eye = np.eye(d)
    out = np.zeros((d * d, d * d), complex)
    for g, L in [(gp, jp), (gm, jm)]:
        LdL = L.conj().T @ L
        out += g * (superop(L, L.conj().T) - 0.5 * superop(LdL, eye) - 0.5 * superop(eye, LdL))
    return out


def rand_rho(rng, d):
    z = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    rho = z @ z.conj().T
    return rho / np.trace(rho).real


def tridiag(lower, diag, upper, n):
    """Dense matrix from gtsv diagonals: M[i, i-1] = lower[i], M[i, i+1] = upper[i]."""
    M = np.diag(diag[:n]).astype(float)
    M += np.diag(lower[1:n], -1) + np.diag(upper[: n - 1], 1)
    return M


def make(J, p, **scale):
    from jaxcoll._spin import SpinGas

    omega_s, delta, T_a, T_m, E_R = p
    scale = scale or dict(gamma_tilde=0.8)
    return SpinGas(J, omega_s=omega_s, delta=delta, T_a=T_a, T_m=T_m, E_R=E_R, **scale)


# --- references agree with each other ---------------------------------------------------------
@pytest.mark.parametrize("J", SPINS)
def test_numpy_and_qutip_spin_matrices_agree(J):
    for a, b in zip(spin_numpy(J), spin_qutip(J), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-13)


# --- the Lindbladian of eq. (18) ----------------------------------------------------------------
@pytest.mark.parametrize("J", SPINS)
def test_lindbladian_matches_dense_eq18(J):
    rng = np.random.default_rng(int(4 * J))
    d = int(round(2 * J)) + 1
    for p in PARAMS:
        gas = make(J, p)
        omega_s = p[0]
        gp, gm = rates_ref(*p, 0.8)
        np.testing.assert_allclose(np.asarray(gas.rates()), [gp, gm], rtol=1e-12)
        rho = rand_rho(rng, d)
        got = np.asarray(gas.lindbladian(jnp.asarray(rho)))
        for mats in (spin_numpy, spin_qutip):
            ref = eq18(J, omega_s, gp, gm, rho, mats)
            assert np.max(np.abs(got - ref)) <= 1e-12 * np.max(np.abs(ref))


def test_density_and_coupling_give_eq_d4():
    p = (1.0, 0.5, 1.2, 0.7, 1.3)
    gas = make(2, p, density=0.02, coupling=1.5)
    T_m, E_R = p[3], p[4]
    gt = 0.02 * (4 * np.pi * E_R / T_m) ** 1.5 * (1.5 * E_R) ** 2 / (2 * E_R)  # n l^3 V0^2 / 2E_R
    np.testing.assert_allclose(np.asarray(gas.rates()), rates_ref(*p, gt), rtol=1e-12)


# --- population sector and coherence bands --------------------------------------------------------
@pytest.mark.parametrize("J", SOME_SPINS)
def test_population_generator_is_diagonal_block(J):
    d = int(round(2 * J)) + 1
    for p in PARAMS:
        gas = make(J, p)
        gp, gm = rates_ref(*p, 0.8)
        S = dissipator_superop(J, gp, gm)
        pop = np.arange(d) * (d + 1)
        lower, diag, upper = (np.asarray(x) for x in gas.population_generator())
        assert lower.shape == diag.shape == upper.shape == (d,)
        assert lower[0] == 0 and upper[-1] == 0
        block = S[np.ix_(pop, pop)]
        assert np.max(np.abs(block.imag)) == 0
        scale = np.max(np.abs(block))
        assert np.max(np.abs(tridiag(lower, diag, upper, d) - block.real)) <= 1e-12 * scale
        # populations do not feed coherences and vice versa
        coh = np.setdiff1d(np.arange(d * d), pop)
        assert np.max(np.abs(S[np.ix_(pop, coh)]), initial=0) <= 1e-14 * scale


@pytest.mark.parametrize("J", SOME_SPINS)
def test_band_generators_match_dense_dissipator(J):
    d = int(round(2 * J)) + 1
    for p in PARAMS:
        gas = make(J, p)
        omega_s = p[0]
        gp, gm = rates_ref(*p, 0.8)
        S = dissipator_superop(J, gp, gm)
        scale = np.max(np.abs(S))
        lower, diag, upper = (np.asarray(x) for x in gas.band_generators())
        assert lower.shape == diag.shape == upper.shape == (d, d)
        freqs = np.asarray(gas.band_frequencies())
        for q in range(d):
            n = d - q
            idx = np.arange(n) * d + np.arange(n) + q  # rho[i, i + q]
            rest = np.setdiff1d(np.arange(d * d), idx)
            block = S[np.ix_(idx, idx)]
            assert np.max(np.abs(block.imag)) == 0
            assert lower[q, 0] == 0 and upper[q, n - 1] == 0
            assert np.all(lower[q, n:] == 0) and np.all(diag[q, n:] == 0)
            assert np.all(upper[q, n:] == 0)
            err = np.max(np.abs(tridiag(lower[q], diag[q], upper[q], n) - block.real))
            assert err <= 1e-12 * scale
            assert np.max(np.abs(S[np.ix_(idx, rest)]), initial=0) <= 1e-14 * scale
            # lab frame: -i omega_s [J_z, rho] adds +i omega_s q on band q
            assert freqs[q] == pytest.approx(omega_s * q, rel=1e-14, abs=0)
        # the bands reproduce the full lab-frame Lindbladian on a random state
        rng = np.random.default_rng(d)
        rho = rand_rho(rng, d)
        ref = eq18(J, omega_s, gp, gm, rho)
        for q in range(d):
            n = d - q
            band = np.array([rho[i, i + q] for i in range(n)])
            pred = tridiag(lower[q], diag[q], upper[q], n) @ band + 1j * freqs[q] * band
            expect = np.array([ref[i, i + q] for i in range(n)])
            assert np.max(np.abs(pred - expect)) <= 1e-12 * np.max(np.abs(ref))


# --- effective temperature, Gibbs stationarity, CPTP structure ---------------------------------
@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    omega_s=st.floats(0.2, 3.0),
    delta=st.floats(-0.15, 4.0),
    T_a=st.floats(0.2, 20.0),
    T_m=st.floats(0.2, 5.0),
    E_R=st.floats(0.3, 3.0),
)
def test_effective_temperature_eq21(omega_s, delta, T_a, T_m, E_R):
    p = (omega_s, delta, T_a, T_m, E_R)
    gas = make(2, p)
    omega_a = omega_s + delta
    den = omega_a * T_m - delta * T_a
    T = float(gas.effective_temperature())
    if abs(den) < 1e-9:
        return
    assert T == pytest.approx(omega_s * T_a * T_m / den, rel=1e-12)
    # the meaning of eq. (21): Gamma_+ = exp(-omega_s / T) Gamma_-
    gp, gm = rates_ref(*p, 1.0)
    assert np.log(gp / gm) == pytest.approx(-omega_s / T, rel=1e-10, abs=1e-12)
    # eq. (22): negative temperature exactly when T_m < delta T_a / (omega_s + delta)
    assert (T < 0) == (T_m < delta * T_a / omega_a)


@pytest.mark.parametrize("J", [0.5, 1, 2.5, 4, 7.5, 10])
@pytest.mark.parametrize("p", PARAMS)
def test_gibbs_at_effective_temperature_is_stationary(J, p):
    gas = make(J, p)
    omega_s, delta, T_a, T_m, _ = p
    T = omega_s * T_a * T_m / ((omega_s + delta) * T_m - delta * T_a)
    jz = spin_numpy(J)[0].real
    logw = -omega_s * np.diag(jz) / T
    w = np.exp(logw - logw.max())
    gibbs = np.diag(w / w.sum()).astype(complex)
    if T < 0:
        assert w[-1] > w[0]  # population inversion
    out = np.asarray(gas.lindbladian(jnp.asarray(gibbs)))
    gp, gm = rates_ref(*p, 0.8)
    assert np.max(np.abs(out)) <= 1e-13 * (gp + gm) * (J + 1) ** 2
    np.testing.assert_allclose(
        np.asarray(gas.steady_state_populations()), np.diag(gibbs).real, rtol=1e-12, atol=1e-300
    )


@pytest.mark.parametrize("J", [0.5, 1.5, 3, 10])
def test_trace_and_hermiticity_preservation(J):
    d = int(round(2 * J)) + 1
    rng = np.random.default_rng(3)
    for p in PARAMS:
        gas = make(J, p)
        X = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
        LX = np.asarray(gas.lindbladian(jnp.asarray(X)))
        LXd = np.asarray(gas.lindbladian(jnp.asarray(X.conj().T)))
        scale = np.max(np.abs(LX))
        assert abs(np.trace(LX)) <= 1e-12 * scale * d
        assert np.max(np.abs(LXd - LX.conj().T)) <= 1e-13 * scale
