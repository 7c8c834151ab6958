"""Observables against hand-computed cases, brute force, SciPy and QuTiP."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import qutip
import scipy.linalg
import scipy.stats
from hypothesis import given, settings, strategies as st

from jaxcoll._observables import (
    energy,
    energy_operator,
    energy_populations,
    ergotropy,
    ergotropy_populations,
    passive_energy,
    relative_entropy,
    relative_entropy_populations,
    shannon_entropy,
    spin_expectations,
    spin_expectations_from_bands,
    von_neumann_entropy,
)
from jaxcoll._spin import to_bands


def random_density(d, rng, rank=None):
    rank = d if rank is None else rank
    a = rng.normal(size=(d, rank)) + 1j * rng.normal(size=(d, rank))
    rho = a @ a.conj().T
    return rho / np.trace(rho).real


def random_hermitian(d, rng):
    a = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    return (a + a.conj().T) / 2


def brute_force_ergotropy_diag(p, e):
    """max over permutations of the populations (unitaries that permute levels)."""
    p, e = np.asarray(p), np.asarray(e)
    return np.dot(p, e) - min(np.dot(p[list(s)], e) for s in itertools.permutations(range(len(p))))


def central(f, x, direction, h=1e-6):
    return (f(x + h * direction) - f(x - h * direction)) / (2 * h)


# --- energy --------------------------------------------------------------------------------------


def test_energy_qubit_by_hand():
    rho = jnp.array([[0.7, 0.1 + 0.2j], [0.1 - 0.2j, 0.3]])
    e = jnp.array([-0.5, 0.5])
    np.testing.assert_allclose(energy(rho, e), -0.2, rtol=1e-15)
    np.testing.assert_allclose(energy(jnp.array([0.7, 0.3]), e), -0.2, rtol=1e-15)
    h = jnp.array([[0.0, 1.0], [1.0, 0.0]])  # sigma_x: tr(rho sx) = 2 Re rho_01
    np.testing.assert_allclose(energy_operator(rho, h), 0.2, rtol=1e-15)


def test_energy_batches_and_kind():
    rng = np.random.default_rng(1)
    e = np.array([0.0, 1.0, 3.0])
    rhos = np.stack([random_density(3, rng) for _ in range(4)])
    ref = [np.trace(r @ np.diag(e)).real for r in rhos]
    np.testing.assert_allclose(energy(rhos, e), ref, rtol=1e-13)
    np.testing.assert_allclose(energy_operator(rhos, np.diag(e)), ref, rtol=1e-13)
    # a stack of exactly d population vectors: say so
    ps = np.abs(rng.normal(size=(3, 3)))
    ps /= ps.sum(-1, keepdims=True)
    np.testing.assert_allclose(energy(ps, e, kind="populations"), ps @ e, rtol=1e-14)
    np.testing.assert_allclose(energy_populations(ps, e), ps @ e, rtol=1e-14)
    with pytest.raises(ValueError, match="kind"):
        energy(ps, e, kind="matrix")


# --- ergotropy -----------------------------------------------------------------------------------


def test_ergotropy_by_hand():
    # inverted qubit: W = 0.8 - 0.2 (gap 1)
    np.testing.assert_allclose(ergotropy_populations(jnp.array([0.2, 0.8]), [0.0, 1.0]), 0.6)
    # qutrit p = (0.2, 0.5, 0.3), e = (0, 1, 2): E = 1.1, passive 0.5*0 + 0.3*1 + 0.2*2 = 0.7
    p = jnp.array([0.2, 0.5, 0.3])
    e = jnp.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(ergotropy_populations(p, e), 0.4, rtol=1e-14)
    np.testing.assert_allclose(ergotropy(jnp.diag(p), jnp.diag(e)), 0.4, rtol=1e-13)
    # unsorted levels: the populations follow their levels
    perm = np.array([2, 0, 1])
    np.testing.assert_allclose(ergotropy_populations(p[perm], e[perm]), 0.4, rtol=1e-14)
    # |+> of a qubit with levels (-1, 1): E = 0, passive = -1, W = 1
    plus = jnp.full((2, 2), 0.5)
    np.testing.assert_allclose(ergotropy(plus, jnp.diag(jnp.array([-1.0, 1.0]))), 1.0)


@settings(max_examples=40, deadline=None)
@given(
    d=st.integers(2, 8),
    beta=st.floats(0, 20),
    seed=st.integers(0, 2**31 - 1),
)
def test_gibbs_states_are_passive(d, beta, seed):
    e = np.random.default_rng(seed).uniform(-3, 3, size=d)  # any order
    p = np.exp(-beta * (e - e.min()))
    p /= p.sum()
    assert ergotropy_populations(p, e) <= 1e-13
    assert ergotropy(np.diag(p), np.diag(e)) <= 1e-12
    assert ergotropy_populations(p, e) >= 0


@pytest.mark.parametrize("J", [0.5, 1, 2.5, 20])
def test_fully_inverted_spin(J):
    omega_s = 0.7
    d = int(2 * J) + 1
    m = np.arange(d) - J
    top = np.zeros(d)
    top[-1] = 1.0
    np.testing.assert_allclose(ergotropy_populations(top, omega_s * m), 2 * J * omega_s)
    np.testing.assert_allclose(
        ergotropy(np.diag(top), np.diag(omega_s * m)), 2 * J * omega_s, rtol=1e-13
    )
    ground = np.zeros(d)
    ground[0] = 1.0
    assert ergotropy_populations(ground, omega_s * m) == 0.0


@settings(max_examples=40, deadline=None)
@given(d=st.integers(2, 6), seed=st.integers(0, 2**31 - 1))
def test_eq23_matches_brute_force_and_general(d, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(d))
    e = rng.uniform(-2, 2, size=d)
    w = ergotropy_populations(p, e)
    np.testing.assert_allclose(w, brute_force_ergotropy_diag(p, e), atol=1e-14)
    np.testing.assert_allclose(ergotropy(np.diag(p), np.diag(e)), w, atol=1e-13)


def test_pure_state_ergotropy():
    rng = np.random.default_rng(2)
    for d in (2, 3, 5):
        h = random_hermitian(d, rng)
        psi = rng.normal(size=d) + 1j * rng.normal(size=d)
        psi /= np.linalg.norm(psi)
        rho = np.outer(psi, psi.conj())
        want = np.vdot(psi, h @ psi).real - scipy.linalg.eigh(h, eigvals_only=True).min()
        np.testing.assert_allclose(ergotropy(rho, h), want, rtol=1e-12, atol=1e-13)


def test_passive_energy_unitary_invariance():
    rng = np.random.default_rng(3)
    d = 4
    rho = random_density(d, rng)
    h = random_hermitian(d, rng)
    u = scipy.stats.unitary_group.rvs(d, random_state=4)
    rho_u = u @ rho @ u.conj().T
    np.testing.assert_allclose(passive_energy(rho_u, h), passive_energy(rho, h), rtol=1e-12)
    # ergotropy changes by exactly the energy change
    dw = ergotropy(rho_u, h) - ergotropy(rho, h)
    de = np.trace((rho_u - rho) @ h).real
    np.testing.assert_allclose(dw, de, atol=1e-12)
    assert ergotropy(rho, h) >= 0


def test_ergotropy_batched():
    rng = np.random.default_rng(5)
    ps = rng.dirichlet(np.ones(4), size=(3, 2))
    e = np.array([0.0, 1.0, 2.0, 3.0])
    w = ergotropy_populations(ps, e)
    assert w.shape == (3, 2)
    for idx in np.ndindex(3, 2):
        np.testing.assert_allclose(w[idx], brute_force_ergotropy_diag(ps[idx], e), atol=1e-14)
    rhos = np.stack([np.diag(p) for p in ps.reshape(-1, 4)])
    np.testing.assert_allclose(ergotropy(rhos, np.diag(e)), w.ravel(), atol=1e-13)


# --- gradients -----------------------------------------------------------------------------------


def test_ergotropy_gradient_finite_at_zero():
    e = jnp.array([0.0, 1.0, 2.5])
    gibbs = jnp.exp(-e) / jnp.sum(jnp.exp(-e))
    grad_both = jax.jit(jax.grad(ergotropy_populations, argnums=(0, 1)))
    grad_rho = jax.jit(jax.grad(lambda r: ergotropy(r, jnp.diag(e))))
    for p in (gibbs, jnp.array([0.5, 0.5, 0.0]), jnp.full(3, 1 / 3), jnp.array([1.0, 0, 0])):
        g, ge = grad_both(p, e)
        assert np.all(np.isfinite(g)) and np.all(np.isfinite(ge))
        assert np.all(np.isfinite(grad_rho(jnp.diag(p))))
    # strictly passive: W vanishes in a neighbourhood, so the gradient is zero
    np.testing.assert_allclose(grad_both(gibbs, e)[0], 0.0, atol=1e-15)
    # maximally mixed (degenerate spectrum) through eigvalsh
    h = jnp.asarray(random_hermitian(3, np.random.default_rng(6)))
    g = jax.grad(lambda r: ergotropy(r, h))(jnp.eye(3, dtype=jnp.complex128) / 3)
    assert np.all(np.isfinite(g))


def test_ergotropy_gradients_match_finite_differences():
    rng = np.random.default_rng(7)
    e = jnp.array([0.0, 0.4, 1.0, 1.7])
    p = jnp.array([0.1, 0.4, 0.2, 0.3])  # not passive, non-degenerate
    dp = jnp.asarray(rng.normal(size=4))
    dp = dp - jnp.mean(dp)
    g = jax.grad(ergotropy_populations)(p, e)
    np.testing.assert_allclose(
        jnp.dot(g, dp), central(lambda x: ergotropy_populations(x, e), p, dp), rtol=1e-7
    )
    de = jnp.asarray(rng.normal(size=4))
    ge = jax.grad(ergotropy_populations, argnums=1)(p, e)
    np.testing.assert_allclose(
        jnp.dot(ge, de), central(lambda x: ergotropy_populations(p, x), e, de), rtol=1e-7
    )
    # general definition, Hermitian direction in rho and in h (real parts: jax.grad convention)
    rho = jnp.asarray(random_density(4, rng))
    h = jnp.asarray(random_hermitian(4, rng))
    for argnum, x0 in ((0, rho), (1, h)):
        direction = jnp.asarray(random_hermitian(4, rng))

        def f(x, argnum=argnum):
            args = [rho, h]
            args[argnum] = x
            return ergotropy(*args)

        tangent = jax.jvp(f, (x0,), (direction,))[1]
        np.testing.assert_allclose(tangent, central(f, x0, direction), rtol=1e-6)
        assert np.all(np.isfinite(jax.grad(f)(x0)))


# --- entropies -----------------------------------------------------------------------------------


def test_entropies_vs_scipy():
    rng = np.random.default_rng(8)
    for d in (2, 3, 5):
        rho = random_density(d, rng)
        ref = -np.trace(rho @ scipy.linalg.logm(rho)).real
        np.testing.assert_allclose(von_neumann_entropy(rho), ref, rtol=1e-12)
        sigma = random_density(d, rng)
        ref_d = np.trace(rho @ (scipy.linalg.logm(rho) - scipy.linalg.logm(sigma))).real
        np.testing.assert_allclose(relative_entropy(rho, sigma), ref_d, rtol=1e-10)
        p = rng.dirichlet(np.ones(d))
        q = rng.dirichlet(np.ones(d))
        np.testing.assert_allclose(shannon_entropy(p), scipy.stats.entropy(p), rtol=1e-13)
        np.testing.assert_allclose(
            relative_entropy_populations(p, q), scipy.stats.entropy(p, q), rtol=1e-12
        )
    # pure states and zero populations
    np.testing.assert_allclose(von_neumann_entropy(np.diag([1.0, 0.0, 0.0])), 0.0, atol=1e-15)
    np.testing.assert_allclose(shannon_entropy(np.array([0.5, 0.5, 0.0])), np.log(2))
    np.testing.assert_allclose(von_neumann_entropy(np.eye(4) / 4), np.log(4), rtol=1e-14)


def test_relative_entropy_support_and_zero():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([1.0, 0.0, 0.0])
    assert relative_entropy_populations(p, q) == np.inf
    np.testing.assert_allclose(
        relative_entropy_populations(q, p), scipy.stats.entropy(q, p), rtol=1e-14
    )
    assert relative_entropy(np.diag(p), np.diag(q)) == np.inf
    np.testing.assert_allclose(relative_entropy(np.diag(q), np.diag(p)), np.log(2), rtol=1e-13)
    rho = random_density(3, np.random.default_rng(9))
    np.testing.assert_allclose(relative_entropy(rho, rho), 0.0, atol=1e-13)


def test_entropy_gradients():
    rng = np.random.default_rng(10)
    rho = jnp.asarray(random_density(3, rng))
    sigma = jnp.asarray(random_density(3, rng))
    direction = jnp.asarray(random_hermitian(3, rng))
    for f, x0 in (
        (von_neumann_entropy, rho),
        (lambda r: relative_entropy(r, sigma), rho),
        (lambda s: relative_entropy(rho, s), sigma),
    ):
        tangent = jax.jvp(f, (x0,), (direction,))[1]
        np.testing.assert_allclose(tangent, central(f, x0, direction), rtol=1e-6)
    # degenerate sigma (maximally mixed): d/dsigma D = -rho sigma^{-1} (Daleckii-Krein)
    mixed = jnp.eye(3, dtype=jnp.complex128) / 3
    tangent = jax.jvp(lambda s: relative_entropy(rho, s), (mixed,), (direction,))[1]
    np.testing.assert_allclose(tangent, -3 * np.trace(rho @ direction).real, rtol=1e-12)
    # pure and rank-deficient states: finite gradients
    pure = jnp.diag(jnp.array([1.0, 0.0, 0.0], dtype=jnp.complex128))
    assert np.all(np.isfinite(jax.grad(von_neumann_entropy)(pure)))
    assert np.all(np.isfinite(jax.grad(shannon_entropy)(jnp.array([1.0, 0.0, 0.0]))))
    g = jax.grad(relative_entropy_populations)(jnp.array([0.5, 0.5, 0.0]), jnp.full(3, 1 / 3))
    assert np.all(np.isfinite(g))


def test_relative_entropy_decreases_under_mixing_with_gibbs():
    """Joint convexity of D: rho -> (1-x) rho + x gamma lowers D(rho || gamma) to zero."""
    e = np.array([0.0, 1.0, 2.0])
    gamma = np.diag(np.exp(-e) / np.exp(-e).sum())
    rho = random_density(3, np.random.default_rng(11))
    xs = np.linspace(0, 1, 6)
    ds = [float(relative_entropy((1 - x) * rho + x * gamma, gamma)) for x in xs]
    assert np.all(np.diff(ds) < 0) and abs(ds[-1]) < 1e-12


def test_second_law_along_evolve_at_equal_temperatures():
    """The gas in equilibrium, T_a == T_m == T, drives a spin with coherences (evolve, density
    matrix) towards Gibbs at T: along the trajectory D(rho(t) || gamma_T) never grows (eq. 16),
    the Clausius inequality Delta S >= Q / T holds with Q = Delta <h_S> (no work is done), and
    the entropy production Delta S - Q/T equals D(rho_0 || gamma) - D(rho_t || gamma). All
    entropies from NumPy eigenvalues; jaxcoll's relative_entropy must agree with them."""
    import jaxcoll

    J, T = 2, 0.8
    # CONTRACT.md: "h_S = omega_s J_z, levels epsilon_m = omega_s m, m = -J, ..., +J" and
    # "Basis order is ascending energy: index 0 is the ground state m = -J."
    gas = jaxcoll.SpinGas(J, omega_s=1.0, delta=0.7, T_a=T, T_m=T, gamma_tilde=1.0)
    e = np.arange(2 * J + 1) - J
    log_gamma = -e / T - np.log(np.sum(np.exp(-e / T)))
    rho0 = random_density(2 * J + 1, np.random.default_rng(13))
    ts = np.concatenate([[0.0], np.geomspace(1e-3, 60.0, 40)])
    res = jaxcoll.evolve(gas, jnp.asarray(rho0), jnp.asarray(ts), rtol=1e-10, atol=1e-12)
    rhos = np.asarray(res.states)

    def entropy(rho):
        r = np.linalg.eigvalsh(rho)
        r = r[r > 1e-300]
        return -float(r @ np.log(r))

    def rel_to_gibbs(rho):
        return -entropy(rho) - float(np.real(np.diag(rho)) @ log_gamma)

    D = np.array([rel_to_gibbs(r) for r in rhos])
    S = np.array([entropy(r) for r in rhos])
    Q = np.real(np.einsum("nii,i->n", rhos, e)) - np.real(np.diag(rho0)) @ e
    production = (S - S[0]) - Q / T
    assert D[0] > 0.1  # far from equilibrium at the start
    assert np.all(np.diff(D) <= 1e-10), np.diff(D).max()
    assert np.all(production >= -1e-10) and np.all(np.diff(production) >= -1e-10)
    np.testing.assert_allclose(production, D[0] - D, atol=1e-9)
    assert D[-1] < 1e-6  # the stationary state is Gibbs at the gas temperature (eq. 21)
    gamma = np.diag(np.exp(log_gamma))
    np.testing.assert_allclose(
        relative_entropy(jnp.asarray(rhos), jnp.asarray(gamma)), D, rtol=1e-8, atol=1e-10
    )


# --- spin moments --------------------------------------------------------------------------------


@pytest.mark.parametrize("J", [0.5, 1, 2.5])
def test_spin_expectations_vs_qutip(J):
    d = int(2 * J) + 1
    m = np.arange(d) - J
    ladder = np.sqrt((J - m[:-1]) * (J + m[:-1] + 1))
    rho = random_density(d, np.random.default_rng(12))
    ops = {c: np.asarray(qutip.jmat(J, c).full())[::-1, ::-1] for c in "xyz"}
    want = {c: np.trace(rho @ ops[c]).real for c in "xyz"}
    jz, jp = spin_expectations(rho, ladder, m)
    np.testing.assert_allclose(jz, want["z"], atol=1e-13)
    np.testing.assert_allclose(jp.real, want["x"], atol=1e-13)
    np.testing.assert_allclose(jp.imag, want["y"], atol=1e-13)
    jz_b, jp_b = spin_expectations_from_bands(to_bands(jnp.asarray(rho)), ladder, m)
    np.testing.assert_allclose(jz_b, jz, atol=1e-14)
    np.testing.assert_allclose(jp_b, jp, atol=1e-14)


def test_spin_expectations_batched_bands():
    J = 1.5
    d = 4
    m = np.arange(d) - J
    ladder = np.sqrt((J - m[:-1]) * (J + m[:-1] + 1))
    rng = np.random.default_rng(13)
    rhos = jnp.asarray(np.stack([random_density(d, rng) for _ in range(5)]))
    jz, jp = spin_expectations(rhos, ladder, m)
    jz_b, jp_b = jax.jit(spin_expectations_from_bands)(to_bands(rhos), ladder, m)
    assert jz.shape == jp.shape == (5,)
    np.testing.assert_allclose(jz_b, jz, atol=1e-14)
    np.testing.assert_allclose(jp_b, jp, atol=1e-14)
