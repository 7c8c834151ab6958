"""States and their validation, against closed forms, SciPy and QuTiP."""

import equinox as eqx
import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import qutip
import scipy.special
import scipy.stats
from hypothesis import given, settings, strategies as st

from jaxcoll._states import (
    ground_populations,
    ground_state,
    spin_coherent_populations,
    spin_coherent_state,
    thermal_populations,
    thermal_state,
    validate_density_matrix,
    validate_populations,
    validate_state,
)


def qutip_ascending(op):
    """QuTiP lists m = +J first; reverse both axes to get ascending m (ascending energy)."""
    return np.asarray(op.full())[::-1, ::-1]


# --- ground and thermal ----------------------------------------------------------------------


def test_ground():
    p = ground_populations(4)
    assert p.dtype == jnp.float64
    np.testing.assert_array_equal(p, [1.0, 0.0, 0.0, 0.0])
    rho = ground_state(3)
    assert rho.dtype == jnp.complex128
    np.testing.assert_array_equal(rho, np.diag([1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="d must be a positive integer"):
        ground_populations(0)
    with pytest.raises(TypeError, match="d must be a positive integer"):
        ground_state(2.5)


@pytest.mark.parametrize("beta", [0.0, 0.7, -0.7, 3.0, -3.0])
def test_thermal_qubit_closed_form(beta):
    w = 1.3
    p = thermal_populations(jnp.array([0.0, w]), beta)
    # closed form: P_1 / P_0 = exp(-beta w), P_0 = 1 / (1 + exp(-beta w))
    p0 = 1.0 / (1.0 + np.exp(-beta * w))
    np.testing.assert_allclose(p, [p0, 1.0 - p0], rtol=1e-14)
    if beta < 0:
        assert p[1] > p[0]  # negative temperature: inverted


def test_thermal_negative_beta_large_d_no_overflow():
    J = 1000
    e = np.arange(-J, J + 1, dtype=float)  # omega_s = 1
    beta = -50.0
    p = np.asarray(thermal_populations(e, beta))
    assert np.all(np.isfinite(p))
    # top level m = +J: 1 / sum_k exp(-50 k)
    top = 1 / mpmath.nsum(lambda k: mpmath.exp(-50 * k), [0, mpmath.inf])
    np.testing.assert_allclose(p[-1], float(top), rtol=1e-15)
    np.testing.assert_allclose(p[-2], float(top * mpmath.exp(-50)), rtol=1e-13)
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-14)


@settings(max_examples=30, deadline=None)
@given(
    d=st.integers(2, 7),
    beta=st.floats(-5, 5),
    seed=st.integers(0, 2**31 - 1),
)
def test_thermal_matches_closed_form(d, beta, seed):
    e = np.random.default_rng(seed).uniform(-2, 2, size=d)
    ref = np.exp(-beta * e) / np.sum(np.exp(-beta * e))
    np.testing.assert_allclose(thermal_populations(e, beta), ref, rtol=1e-12)
    rho = thermal_state(e, beta)
    np.testing.assert_allclose(rho, np.diag(ref), rtol=1e-12, atol=1e-15)


def test_thermal_batch_and_beta_zero():
    e = jnp.array([0.0, 1.0, 2.5])
    betas = jnp.array([0.0, 1.0, -1.0])
    p = thermal_populations(e, betas)
    assert p.shape == (3, 3)
    np.testing.assert_allclose(p[0], np.full(3, 1 / 3), rtol=1e-15)
    np.testing.assert_allclose(p[2], np.exp(e) / np.exp(e).sum(), rtol=1e-14)
    assert thermal_state(e, betas).shape == (3, 3, 3)
    g = jax.grad(lambda b: thermal_populations(e, b)[0])(-2.0)
    assert np.isfinite(g)


# --- spin coherent states --------------------------------------------------------------------


@pytest.mark.parametrize("J", [0.5, 1, 1.5, 2.5, 4])
@pytest.mark.parametrize("theta,phi", [(0.0, 0.0), (0.7, 0.3), (np.pi / 2, 1.9), (2.4, -2.0)])
def test_coherent_vs_qutip(J, theta, phi):
    rho = np.asarray(spin_coherent_state(J, theta, phi))
    # density matrices: equal up to the global phase of the kets
    ref = qutip_ascending(qutip.spin_coherent(J, theta, phi, type="dm"))
    np.testing.assert_allclose(rho, ref, atol=1e-12)
    # spin vector J (sin t cos p, sin t sin p, cos t) via QuTiP's jmat
    for comp, want in zip(
        "xyz",
        [np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)],
        strict=True,
    ):
        op = qutip_ascending(qutip.jmat(J, comp))
        np.testing.assert_allclose(np.trace(rho @ op).real, J * want, atol=1e-12)
    np.testing.assert_allclose(spin_coherent_populations(J, theta), np.diag(rho).real, atol=1e-14)


def test_coherent_ket_phase_convention():
    """Amplitudes are c_m = sqrt(C(2J, J+m)) cos^{J+m} sin^{J-m} e^{-i m phi}: QuTiP's ket times
    exp(-iJ phi) (checked on the rank-one matrix's first column)."""
    J, theta, phi = 2, 1.1, 0.8
    ket = np.asarray(qutip.spin_coherent(J, theta, phi).full()).ravel()[::-1]
    ket = ket * np.exp(-1j * J * phi)
    m = np.arange(-J, J + 1)
    binom = np.array([scipy.special.comb(2 * J, J + k) for k in m])
    mine = np.sqrt(binom) * np.cos(theta / 2) ** (J + m) * np.sin(theta / 2) ** (J - m)
    mine = mine * np.exp(-1j * m * phi)
    np.testing.assert_allclose(ket, mine, atol=1e-12)
    rho = np.asarray(spin_coherent_state(J, theta, phi))
    np.testing.assert_allclose(rho, np.outer(mine, mine.conj()), atol=1e-12)


def test_coherent_poles():
    J = 3
    np.testing.assert_allclose(spin_coherent_state(J, np.pi), ground_state(7), atol=1e-15)
    top = np.zeros((7, 7))
    top[-1, -1] = 1
    np.testing.assert_allclose(spin_coherent_state(J, 0.0), top, atol=1e-15)


def test_coherent_large_J_binomial():
    J, theta = 1000, 1.2
    p = np.asarray(spin_coherent_populations(J, theta))
    k = np.arange(2 * J + 1)
    ref = scipy.stats.binom.pmf(k, 2 * J, np.cos(theta / 2) ** 2)
    np.testing.assert_allclose(p, ref, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.sum((k - J) * p), J * np.cos(theta), rtol=1e-11)
    rho = spin_coherent_state(J, theta, 0.4)
    assert np.all(np.isfinite(rho))
    np.testing.assert_allclose(jnp.trace(rho).real, 1.0, rtol=1e-12)
    # equator: the largest single term sqrt(C(2000, 1000)) 2^-1000 would overflow naively
    p_eq = np.asarray(spin_coherent_populations(J, np.pi / 2))
    np.testing.assert_allclose(p_eq, scipy.stats.binom.pmf(k, 2 * J, 0.5), rtol=1e-9, atol=1e-300)


def _central(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("theta", [0.0, 0.9, np.pi / 2, np.pi, 2 * np.pi])
def test_coherent_gradients_finite_and_match_fd(theta):
    J, phi = 2, 0.35

    def f(t):
        rho = spin_coherent_state(J, t, phi)
        w = jnp.arange(25.0).reshape(5, 5) / 25
        return jnp.sum(jnp.real(rho) * w + jnp.imag(rho) * w.T)

    g = jax.grad(f)(theta)
    assert np.isfinite(g)
    np.testing.assert_allclose(g, _central(f, theta), rtol=1e-6, atol=1e-8)

    def fp(t):
        return jnp.sum(spin_coherent_populations(J, t) * jnp.arange(5.0) ** 2)

    gp = jax.grad(fp)(theta)
    assert np.isfinite(gp)
    np.testing.assert_allclose(gp, _central(fp, theta), rtol=1e-6, atol=1e-8)

    gphi = jax.grad(lambda ph: jnp.real(spin_coherent_state(J, theta, ph)[1, 2]))(phi)
    assert np.isfinite(gphi)


def test_coherent_vmap_jit_batch():
    thetas = jnp.linspace(0, np.pi, 5)
    batched = spin_coherent_state(1.5, thetas, 0.2)
    assert batched.shape == (5, 4, 4)
    mapped = jax.jit(jax.vmap(lambda t: spin_coherent_state(1.5, t, 0.2)))(thetas)
    np.testing.assert_allclose(batched, mapped, atol=1e-15)
    assert spin_coherent_populations(1.5, thetas).shape == (5, 4)
    with pytest.raises(ValueError, match="J must be"):
        spin_coherent_state(0.3, 0.1)


# --- validation -------------------------------------------------------------------------------


def test_validate_accepts_and_casts():
    p = validate_populations([0.25, 0.75], 2)
    assert p.dtype == jnp.float64
    rho = validate_density_matrix(np.eye(3) / 3, 3)
    assert rho.dtype == jnp.complex128
    assert validate_state(np.array([1.0, 0, 0]), 3).shape == (3,)
    assert validate_state(np.eye(3) / 3, 3).shape == (3, 3)
    # tiny rounding is fine
    validate_populations([0.5 + 1e-12, 0.5], 2)
    out = validate_populations(np.full((4, 3), 1 / 3), 3, batch=True)
    assert out.shape == (4, 3)


@pytest.mark.parametrize(
    "func,x,msg",
    [
        (validate_state, np.eye(4) / 4, r"rho0 must have shape \(5,\) or \(5, 5\), got \(4, 4\)"),
        (validate_state, np.ones(3) / 3, r"rho0 must have shape \(5,\) or \(5, 5\), got \(3,\)"),
        (validate_populations, np.eye(5) / 5, r"must have shape \(5,\), got \(5, 5\)"),
        (validate_density_matrix, np.ones(5) / 5, r"must have shape \(5, 5\), got \(5,\)"),
        (validate_populations, [0.5, 0.6, -0.1, 0, 0], "non-negative"),
        (validate_populations, [0.5, 0.6, 0, 0, 0], "sum to 1"),
        (validate_populations, [0.5, np.nan, 0, 0, 0.5], "finite"),
        (validate_populations, np.array([0.5, 0.5j, 0, 0, 0.5]), "real"),
        (validate_density_matrix, np.triu(np.ones((5, 5))) / 5, "Hermitian"),
        (validate_density_matrix, np.eye(5) / 4, "trace 1"),
        (validate_density_matrix, np.diag([1.2, -0.2, 0, 0, 0]), "positive semidefinite"),
        (validate_density_matrix, np.full((5, 5), np.inf), "finite"),
    ],
)
def test_validate_errors(func, x, msg):
    with pytest.raises(ValueError, match=msg):
        func(x, 5)


def test_validate_names_argument_and_types():
    with pytest.raises(ValueError, match="^rho_init must have trace 1"):
        validate_density_matrix(np.eye(2), 2, name="rho_init")
    with pytest.raises(TypeError, match="rho0 must be an array"):
        validate_state("ground", 3)
    with pytest.raises(TypeError, match="rho0 must be a real or complex numeric array"):
        validate_state(np.array([True, False]), 2)


def test_validate_traced():
    f = jax.jit(lambda r: validate_density_matrix(r, 3))
    np.testing.assert_allclose(f(jnp.eye(3) / 3), np.eye(3) / 3)
    with pytest.raises(Exception, match="rho0 must have trace 1"):
        jax.block_until_ready(f(jnp.eye(3) / 2))
    with pytest.raises(Exception, match="rho0 must be positive semidefinite"):
        jax.block_until_ready(f(jnp.diag(jnp.array([1.5, -0.5, 0.0]))))
    g = jax.jit(lambda p: validate_populations(p, 2))
    with pytest.raises(Exception, match="rho0 populations must be non-negative"):
        jax.block_until_ready(g(jnp.array([1.5, -0.5])))
    # gradients pass through the checks
    grad = jax.grad(lambda p: jnp.sum(validate_populations(p, 2) * jnp.array([1.0, 2.0])))
    np.testing.assert_allclose(grad(jnp.array([0.3, 0.7])), [1.0, 2.0])
    # vmap over a batch of valid states
    out = jax.vmap(lambda p: validate_populations(p, 2))(jnp.array([[0.3, 0.7], [1.0, 0.0]]))
    assert out.shape == (2, 2)
    assert isinstance(eqx.filter_jit(validate_state)(jnp.eye(2) / 2, 2), jax.Array)
