"""Evolution on Bohr sectors against SciPy expm of the dense superoperator built in NumPy from
the channel list (`jaxcoll._protocol.dense_superoperator`, not from the sectors), the model
protocol for a user's own model, and the spin written as a CollisionalModel against SpinGas."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp
from _references import (
    RANDOM_MODEL_CASES,
    ListedModel,
    Oscillator,
    random_collisional_model,
    random_rho,
)

import jaxcoll
from jaxcoll._protocol import dense_superoperator

CASES = RANDOM_MODEL_CASES + [
    (5, 4, 4, "equidistant", True),
    (6, 3, 2, "repeated", False),
    (7, 5, 2, "folded", True),
]


@pytest.mark.parametrize("seed, d, k, spectrum, shift", CASES)
def test_sector_evolution_equals_expm(seed, d, k, spectrum, shift):
    kw = dict(density=0.05, coupling=0.9) if shift else dict(gamma_tilde=0.7)
    model, rng = random_collisional_model(seed, d, k, spectrum, **kw)
    rho = random_rho(rng, d)
    ts = np.array([0.0, 0.3, 1.1, 2.0])
    res = jaxcoll.evolve(model, rho, ts, rtol=1e-12, atol=1e-14)
    # reference in the working basis, from the channel list
    U = np.asarray(model.eigenbasis)
    S = dense_superoperator(model)
    w0 = (U.conj().T @ rho @ U).reshape(-1)
    ref = np.stack([U @ (sla.expm(S * t) @ w0).reshape(d, d) @ U.conj().T for t in ts])
    assert np.max(np.abs(np.asarray(res.states) - ref)) < 1e-10
    # and the model's own dense superoperator (basis of h_s) agrees with the channel list
    S2 = np.asarray(model.superoperator())
    ref2 = np.stack([(sla.expm(S2 * t) @ rho.reshape(-1)).reshape(d, d) for t in ts])
    assert np.max(np.abs(ref2 - ref)) < 1e-10
    e_ref = np.einsum("ij,nji->n", np.asarray(model.h_s), ref).real
    np.testing.assert_allclose(np.asarray(res.energy), e_ref, atol=1e-10)
    # population start in the working basis (for degenerate spectra: the coherences there
    # start at zero)
    p0 = rng.uniform(size=d)
    p0 /= p0.sum()
    rp = jaxcoll.evolve(model, p0, ts, rtol=1e-12, atol=1e-14)
    refp = np.stack(
        [np.real(np.diag((sla.expm(S * t) @ np.diag(p0).reshape(-1)).reshape(d, d))) for t in ts]
    )
    assert np.max(np.abs(np.asarray(rp.populations) - refp)) < 1e-10


def test_non_bohr_homogeneous_channel_is_rejected():
    # |1><0| (E = 1) and |2><1| (E = 2) in one channel
    bad = ListedModel(
        [0.0, 1.0, 3.0], bohr=[1.0], ancilla=[0.0], rates=[1.0], channel=[0, 0], row=[1, 2],
        col=[0, 1],
    )  # fmt: skip
    with pytest.raises(ValueError, match="Bohr-homogeneous"):
        jaxcoll.evolve(bad, np.array([1.0, 0, 0]), np.array([0.0, 1.0]))


def test_user_model_in_evolve():
    osc = Oscillator(jnp.array(1.0), jnp.array(0.7), jnp.array(1.0), jnp.array(1.0), 6)
    s = osc.sectors()
    assert s.counts()["dense"] == 0  # coherence bands: chains
    rho = random_rho(np.random.default_rng(3), 6)
    ts = np.linspace(0, 3, 4)
    res = jaxcoll.evolve(osc, rho, ts, rtol=1e-12, atol=1e-14, e_ops=[np.diag(np.arange(6.0))])
    S = dense_superoperator(osc)
    ref = np.stack([(sla.expm(S * t) @ rho.reshape(-1)).reshape(6, 6) for t in ts])
    assert np.max(np.abs(np.asarray(res.states) - ref)) < 1e-10
    n_ref = np.einsum("ii->", np.diag(np.arange(6.0)) @ ref[-1]).real
    assert abs(complex(res.expect[0, -1]) - n_ref) < 1e-10
    # stationary: Gibbs at T_a (detailed balance of the rates), reached at long times
    late = jaxcoll.evolve(osc, rho, np.array([0.0, 200.0]), rtol=1e-10, atol=1e-12)
    gibbs = np.exp(-np.arange(6) / 0.7)
    np.testing.assert_allclose(
        np.diag(np.asarray(late.states[-1])).real, gibbs / gibbs.sum(), atol=1e-8
    )


def _spin_as_model(J, **kw):
    gas = jaxcoll.SpinGas(J, omega_s=1.0, delta=0.9, **kw)
    _, jp, jm = (np.asarray(x) for x in gas.operators())
    sm = np.array([[0, 1], [0, 0]], dtype=float)  # |0><1|
    terms = [(sp.csr_matrix(jp), sm), (sp.csr_matrix(jm), sm.T)]
    m = np.arange(gas.dim) - J
    model = jaxcoll.CollisionalModel(m, np.diag([0.0, 1.9]), terms, **kw)
    return gas, model


@pytest.mark.parametrize("J", [2, 6])
def test_spin_as_collisional_model_equals_spingas(J):
    kw = dict(T_a=1.1, T_m=0.6, gamma_tilde=0.8)
    gas, model = _spin_as_model(J, **kw)
    # the corner band q = 2J (one element, rho_{0,2J}) is a 1 x 1 block, the other bands chains
    assert model.sectors().counts() == gas.sectors().counts() | {"single": 1, "chain": 2 * J}
    d = gas.dim
    rho = random_rho(np.random.default_rng(J), d)
    ts = np.linspace(0, 2, 5)
    a = jaxcoll.evolve(model, rho, ts, rtol=1e-11, atol=1e-13)
    b = jaxcoll.evolve(gas, rho, ts, rtol=1e-11, atol=1e-13)
    assert np.max(np.abs(np.asarray(a.states) - np.asarray(b.states))) < 1e-9
    np.testing.assert_allclose(np.asarray(a.energy), np.asarray(b.energy), atol=1e-9)
    np.testing.assert_allclose(np.asarray(a.heat_current), np.asarray(b.heat_current), atol=1e-9)


def test_large_ladder_builds_from_terms():
    d = 10_000
    m = np.arange(d) - (d - 1) / 2
    c = np.sqrt((d - 1) / 2 * ((d - 1) / 2 + 1) - m[:-1] * (m[:-1] + 1))
    jp = sp.diags(c, -1, format="csr")
    sm = np.array([[0, 1], [0, 0]], dtype=float)
    model = jaxcoll.CollisionalModel(
        m + 0.05 * m**2,
        np.diag([0.0, 3.0]),
        [(jp, sm), (jp.T.tocsr(), sm.T)],
        T_a=5,
        T_m=1,
        gamma_tilde=1,
    )
    ch = model.channels()
    assert len(ch.row) == 2 * (d - 1)
    assert model.degenerate


def test_spin_parameters_are_array_leaves():
    # new T_a values do not recompile
    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def rates(gas):
        return gas.rates()

    for T_a in [1, 2.0, 3.5, 7.0]:
        rates(jaxcoll.SpinGas(3, omega_s=1, delta=0.5, T_a=T_a, T_m=1, gamma_tilde=1))
    gas = jaxcoll.SpinGas(3, omega_s=1, delta=0.5, T_a=2, T_m=1, gamma_tilde=1)
    assert all(isinstance(x, jax.Array) for x in (gas.T_a, gas.T_m, gas.E_R, gas.omega_s))


def _expm_energy(model, start, t):
    """Energy tr(h_s rho(t)) from SciPy expm of the channel-list superoperator (working basis);
    `start` is a density matrix in the basis of h_s or populations in the working basis."""
    d = model.dim
    U = np.asarray(model.eigenbasis)
    w0 = np.diag(start) if start.ndim == 1 else U.conj().T @ start @ U
    w = (sla.expm(dense_superoperator(model) * t) @ w0.reshape(-1)).reshape(d, d)
    return float(np.sum(np.asarray(model.energies()) * np.real(np.diag(w))))


@pytest.mark.parametrize("seed, d, k, spectrum", [(11, 5, 3, "folded"), (12, 4, 3, "repeated")])
def test_sector_path_float32(seed, d, k, spectrum):
    model, rng = random_collisional_model(seed, d, k, spectrum, gamma_tilde=0.7)
    assert model.sectors().counts()["largest"] > 1  # blocks beyond the closed form
    rho = random_rho(rng, d)
    p0 = rng.uniform(size=d)
    p0 /= p0.sum()
    ts = np.array([0.0, 0.4, 1.5])
    H = np.asarray(model.h_s)
    for start in (rho, p0):
        r32 = jaxcoll.evolve(model, start, ts, rtol=1e-5, atol=1e-7, dtype=jnp.float32, e_ops=[H])
        assert r32.energy.dtype == jnp.float32 and r32.expect.dtype == jnp.complex64
        ref = np.array([_expm_energy(model, start, t) for t in ts])
        scale = np.max(np.abs(ref))
        np.testing.assert_allclose(np.asarray(r32.energy), ref, atol=2e-5 * scale)
        if start.ndim == 2:  # e_ops read the same state as the energy
            np.testing.assert_allclose(np.asarray(r32.expect[0]).real, ref, atol=2e-5 * scale)


@pytest.mark.parametrize("seed, d, k, spectrum", [(13, 5, 2, "folded"), (14, 4, 3, "repeated")])
def test_sector_path_gradient_against_central_differences(seed, d, k, spectrum):
    # reverse mode (the default RecursiveCheckpointAdjoint) through the sector blocks against
    # central differences of SciPy expm of the dense superoperator from the channel list
    model, rng = random_collisional_model(seed, d, k, spectrum, gamma_tilde=0.7)
    rho = random_rho(rng, d)
    p0 = rng.uniform(size=d)
    p0 /= p0.sum()
    t = 1.3
    H = np.asarray(model.h_s)

    def at(T_a):
        return eqx.tree_at(lambda m: m.T_a, model, T_a)

    for start in (rho, p0):

        def energy_and_expect(T_a, start=start):
            # the energy from the solver state, and <H> read by e_ops: two reads, one solve
            r = jaxcoll.evolve(
                at(T_a), start, np.array([0.0, t]), rtol=1e-11, atol=1e-13, e_ops=[H]
            )
            return r.energy[-1], jnp.real(r.expect[0, -1])

        T0 = jnp.asarray(float(model.T_a))
        h = 1e-4
        fd = (_expm_energy(at(T0 + h), start, t) - _expm_energy(at(T0 - h), start, t)) / (2 * h)
        assert abs(fd) > 1e-4  # the derivative is not trivially zero
        grads = jax.jacrev(energy_and_expect)(T0)
        for name, g in zip(("energy", "expect"), grads, strict=True):
            assert abs(float(g) - fd) < 1e-6 * max(1.0, abs(fd)), (name, float(g), fd)
