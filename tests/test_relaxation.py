"""Stationary states and relaxation rates against independent references: the Gibbs state
(zeroth law), QuTiP `steadystate` from the dense channel operators, the closed form of eq. (21)
for the spin, NumPy `eigvals` of the dense superoperator built from the channel list (or, for
the spin, from eq. (18) in NumPy), and SciPy `eigh_tridiagonal` of each coherence band."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sla
from _references import (
    RANDOM_MODEL_CASES,
    ListedModel,
    Oscillator,
    random_collisional_model,
)
from scipy.linalg import eigh_tridiagonal

import jaxcoll
from jaxcoll._protocol import dense_superoperator


def _rates_from_eigvals(lam, tol=1e-8):
    r = np.sort(-np.real(lam))
    return r[r > tol * max(1.0, np.max(np.abs(lam)))]


@pytest.mark.parametrize("seed, d, k, shift", [(0, 3, 2, False), (1, 5, 3, True), (2, 7, 2, False)])
def test_zeroth_law_random_models(seed, d, k, shift):
    # T_a == T_m: the gas is one reservoir at T, the stationary state is Gibbs exp(-h_s/T)/Z
    kw = dict(density=0.05, coupling=0.9) if shift else dict(gamma_tilde=0.7)
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    hs = h + h.conj().T
    ha = np.diag(np.sort(rng.uniform(0, 2, size=k)))
    v = rng.normal(size=(d * k, d * k)) + 1j * rng.normal(size=(d * k, d * k))
    model = jaxcoll.CollisionalModel(hs, ha, v + v.conj().T, T_a=0.9, T_m=0.9, **kw)
    gibbs = sla.expm(-hs / 0.9)
    gibbs /= np.trace(gibbs).real
    rho = np.asarray(jaxcoll.steady_state(model))
    np.testing.assert_allclose(rho, gibbs, atol=1e-10)
    e, U = np.linalg.eigh(hs)
    p = np.asarray(jaxcoll.steady_state(model, populations=True))
    np.testing.assert_allclose(p, np.exp(-e / 0.9) / np.exp(-e / 0.9).sum(), atol=1e-10)
    # the model's own dense solve agrees
    np.testing.assert_allclose(np.asarray(model.steady_state()), gibbs, atol=1e-10)


@pytest.mark.parametrize(
    "seed, d, k, spectrum, shift",
    [(3, 4, 2, "random", False), (4, 6, 3, "random", True), (5, 5, 2, "folded", False)],
)
def test_steady_state_against_qutip(seed, d, k, spectrum, shift):
    qutip = pytest.importorskip("qutip")
    kw = dict(density=0.05, coupling=0.9) if shift else dict(gamma_tilde=0.7)
    model, _ = random_collisional_model(seed, d, k, spectrum, **kw)  # T_a = 1.3 != T_m = 0.8
    # QuTiP Liouvillian from the dense channel operators, built here
    H = qutip.Qobj(np.asarray(model.h_s) + np.asarray(model.h_eff()))
    c_ops = [qutip.Qobj(np.asarray(L)) for L in model.channel_operators()]
    ref = qutip.steadystate(H, c_ops).full()
    rho = np.asarray(jaxcoll.steady_state(model))
    np.testing.assert_allclose(rho, ref, atol=1e-9)
    assert abs(np.trace(rho) - 1) < 1e-12


def _eq21_populations(J, omega_s, delta, T_a, T_m):
    # eq. (21): T = omega_s T_a T_m / (omega_a T_m - delta T_a); P_m ~ exp(-omega_s m / T)
    omega_a = omega_s + delta
    beta = (omega_a * T_m - delta * T_a) / (omega_s * T_a * T_m)
    m = np.arange(int(2 * J) + 1) - J
    logp = -beta * omega_s * m
    logp -= logp.max()
    return logp - np.log(np.sum(np.exp(logp)))


@pytest.mark.parametrize(
    "J, delta, T_a", [(20, 2.0, 6.0), (10_000, 2.0, 6.0), (100_000, 0.5, 0.7), (7.5, 1.0, 30.0)]
)
def test_spin_steady_state_eq21(J, delta, T_a):
    gas = jaxcoll.SpinGas(J, omega_s=1.0, delta=delta, T_a=T_a, T_m=1.0, gamma_tilde=1.0)
    p = np.asarray(jaxcoll.steady_state(gas, populations=True))
    logref = _eq21_populations(J, 1.0, delta, T_a, 1.0)
    big = logref > -600
    np.testing.assert_allclose(np.log(p[big]), logref[big], atol=1e-9 * max(1, J / 100))
    assert np.all(p >= 0) and abs(p.sum() - 1) < 1e-12
    if J <= 20:
        rho = np.asarray(jaxcoll.steady_state(gas))
        np.testing.assert_allclose(rho, np.diag(np.exp(logref)), atol=1e-12)


@pytest.mark.parametrize(
    "seed, d, k, spectrum, shift",
    RANDOM_MODEL_CASES + [(5, 10, 2, "random", False), (6, 9, 2, "equidistant", True)],
)
def test_relaxation_rates_random_models(seed, d, k, spectrum, shift):
    kw = dict(density=0.05, coupling=0.9) if shift else dict(gamma_tilde=0.7)
    model, _ = random_collisional_model(seed, d, k, spectrum, **kw)
    ref = _rates_from_eigvals(np.linalg.eigvals(dense_superoperator(model)))
    n = min(12, len(ref))
    got = jaxcoll.relaxation_rates(model, k=n)
    np.testing.assert_allclose(got, ref[:n], rtol=1e-8, atol=1e-10)


def _spin_superoperator(J, gp, gm, omega_s):
    """Eq. (18) as a dense NumPy matrix, row-major vec, basis m = -J..J."""
    d = int(2 * J) + 1
    m = np.arange(d) - J
    c = np.sqrt((J - m[:-1]) * (J + m[:-1] + 1.0))
    Jp = np.diag(c, -1)
    Jm = Jp.T
    eye = np.eye(d)

    def D(L, g):
        LdL = L.T @ L
        return g * (np.kron(L, L) - 0.5 * np.kron(LdL, eye) - 0.5 * np.kron(eye, LdL))

    H = omega_s * np.diag(m)
    return -1j * (np.kron(H, eye) - np.kron(eye, H)) + D(Jp, gp) + D(Jm, gm)


def _band_rates(J, gp, gm):
    """All decay rates of the spin from SciPy eigh_tridiagonal of each coherence band's
    symmetrised tridiagonal (eq. 18 in the frame rotating with h_S), with multiplicities."""
    d = int(2 * J) + 1
    m = np.arange(d) - J
    cx = np.concatenate([[0.0], np.sqrt((J - m[:-1]) * (J + m[:-1] + 1.0)), [0.0]])
    out = {}
    for q in range(d):
        i = np.arange(d - q)
        j = i + q
        diag = -0.5 * (gp * (cx[i + 1] ** 2 + cx[j + 1] ** 2) + gm * (cx[i] ** 2 + cx[j] ** 2))
        off = np.sqrt(gp * gm) * cx[i[1:]] * cx[j[1:]]  # sqrt(lower * upper)
        ev = eigh_tridiagonal(diag, off, eigvals_only=True) if len(diag) > 1 else diag
        out[q] = -ev
    return out


@pytest.mark.parametrize("J", [0.5, 3, 20])
def test_relaxation_rates_spin_dense(J):
    # Fig. 2 parameters: D = 2, A = 0.5, T_m = E_R (CONTRACT.md: D = delta/T_m, A = omega_a/T_a)
    gas = jaxcoll.SpinGas(J, omega_s=1.0, delta=2.0, T_a=6.0, T_m=1.0, gamma_tilde=1.0)
    gp, gm = (float(x) for x in gas.rates())
    # J = 20 in the frame rotating with h_S (a real matrix, -i omega q per band drops out of
    # the real parts): four times cheaper for the dense eigensolver
    S = _spin_superoperator(J, gp, gm, 1.0 if J < 20 else 0.0)
    ref = _rates_from_eigvals(np.linalg.eigvals(S.real if J >= 20 else S))
    n = min(10, len(ref))
    # the population band of J = 20 holds a pair 2.8936617 split by 1e-8: the non-normal dense
    # eigensolver resolves it only to ~1e-7 (the bands' symmetric form is well conditioned)
    rtol = 1e-8 if J < 20 else 1e-6
    np.testing.assert_allclose(jaxcoll.relaxation_rates(gas, k=n), ref[:n], rtol=rtol)


def test_fig2_gap_lies_in_first_coherence_band():
    gas = jaxcoll.SpinGas(20, omega_s=1.0, delta=2.0, T_a=6.0, T_m=1.0, gamma_tilde=1.0)
    gp, gm = (float(x) for x in gas.rates())
    bands = _band_rates(20, gp, gm)
    slowest = {q: np.min(r[r > 1e-9]) for q, r in bands.items() if np.any(r > 1e-9)}
    rates = jaxcoll.relaxation_rates(gas, k=4)
    # the gap is band 1 (a conjugate pair: twice), then the corner band q = 2J
    assert min(slowest, key=slowest.get) == 1
    assert round(float(rates[0]), 3) == 1.448 and rates[1] == pytest.approx(rates[0])
    assert rates[2] == pytest.approx(slowest[40], rel=1e-12)
    assert sorted(slowest, key=slowest.get)[1] == 40
    assert round(slowest[0], 3) == 2.894  # the population sector's slowest rate
    assert rates[0] < 0.51 * slowest[0]


@pytest.mark.parametrize("J", [60, 250.5])
def test_relaxation_rates_larger_spin_bands(J):
    gas = jaxcoll.SpinGas(J, omega_s=1.0, delta=0.7, T_a=2.0, T_m=1.3, gamma_tilde=0.4)
    gp, gm = (float(x) for x in gas.rates())
    bands = _band_rates(J, gp, gm)
    allr = np.concatenate([np.repeat(r, 1 if q == 0 else 2) for q, r in bands.items()])
    allr = np.sort(allr)
    allr = allr[allr > 1e-9 * np.max(allr)]
    got = jaxcoll.relaxation_rates(gas, k=7)
    np.testing.assert_allclose(got, allr[:7], rtol=1e-9)


def test_spin_as_collisional_model_same_rates():
    gas = jaxcoll.SpinGas(4, omega_s=1.0, delta=0.9, T_a=1.1, T_m=0.6, gamma_tilde=0.8)
    _, jp, jm = (np.asarray(x) for x in gas.operators())
    sm = np.array([[0, 1], [0, 0]], dtype=float)
    v = np.kron(jp, sm) + np.kron(jm, sm.T)
    model = jaxcoll.CollisionalModel(
        np.arange(9.0) - 4, np.diag([0.0, 1.9]), v, T_a=1.1, T_m=0.6, gamma_tilde=0.8
    )
    np.testing.assert_allclose(
        jaxcoll.relaxation_rates(model, k=9), jaxcoll.relaxation_rates(gas, k=9), rtol=1e-10
    )
    np.testing.assert_allclose(
        np.asarray(jaxcoll.steady_state(model)), np.asarray(jaxcoll.steady_state(gas)), atol=1e-13
    )


def test_user_model_steady_state_and_rates():
    osc = Oscillator(jnp.array(1.0), jnp.array(0.7), jnp.array(1.0), jnp.array(1.0), 6)
    gibbs = np.exp(-np.arange(6) / 0.7)  # detailed balance of its rates at T_a
    np.testing.assert_allclose(
        np.asarray(jaxcoll.steady_state(osc, populations=True)), gibbs / gibbs.sum(), atol=1e-12
    )
    ref = _rates_from_eigvals(np.linalg.eigvals(dense_superoperator(osc)))
    np.testing.assert_allclose(jaxcoll.relaxation_rates(osc, k=8), ref[:8], rtol=1e-9)


def test_non_unique_steady_state_is_reported():
    # a level the coupling never touches: two blocks of populations
    hs = np.diag([0.0, 1.0, 2.5])
    v = np.zeros((6, 6))
    v[0 * 2 + 1, 1 * 2 + 0] = v[1 * 2 + 0, 0 * 2 + 1] = 1.0  # |0,1><1,0| + h.c.
    model = jaxcoll.CollisionalModel(hs, np.diag([0.0, 1.0]), v, T_a=1.0, T_m=1.0, gamma_tilde=1)
    with pytest.raises(ValueError, match="not unique"):
        jaxcoll.steady_state(model)

    # one connected block with two absorbing levels: 1 -> 0 and 1 -> 2 only
    sinks = ListedModel(
        [0.0, 1.0, 0.5], bohr=[-1.0, -0.5], ancilla=[0.0, 0.0], rates=[1.0, 2.0], channel=[0, 1],
        row=[0, 2], col=[1, 1],
    )  # fmt: skip
    with pytest.raises(ValueError, match="closed classes"):
        jaxcoll.steady_state(sinks, populations=True)
    # its decay rates are still defined: the dense superoperator's
    ref = _rates_from_eigvals(np.linalg.eigvals(dense_superoperator(sinks)))
    np.testing.assert_allclose(jaxcoll.relaxation_rates(sinks, k=len(ref)), ref, rtol=1e-10)


def test_bad_arguments():
    gas = jaxcoll.SpinGas(2, omega_s=1.0, delta=0.5, T_a=1.0, T_m=1.0, gamma_tilde=1.0)
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k"):
            jaxcoll.relaxation_rates(gas, k=k)
    with pytest.raises(TypeError, match="model"):
        jaxcoll.steady_state(np.eye(3))
    with pytest.raises(TypeError, match="populations"):
        jaxcoll.steady_state(gas, populations=1)
    assert math.isclose(float(np.sum(jaxcoll.steady_state(gas, populations=True))), 1.0)
