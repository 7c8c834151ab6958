"""A user's own model (a truncated harmonic oscillator in a two-level gas, a subclass of
`jaxcoll.AbstractModel` defined in tests/_references.py) through every protocol-based public
function, against references built here: SciPy expm trajectories, QuTiP's Liouvillian against
the dense superoperator of the channel list, and the closed form of its jump rates."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sla
from _references import Oscillator

import jaxcoll
from jaxcoll._protocol import dense_superoperator

N = 5


def _osc():
    return Oscillator(jnp.array(1.0), jnp.array(0.7), jnp.array(1.0), jnp.array(1.0), N)


def test_user_model_energy_budget():
    osc = _osc()
    rng = np.random.default_rng(2)
    z = rng.normal(size=(N, N)) + 1j * rng.normal(size=(N, N))
    rho0 = z @ z.conj().T
    rho0 /= np.trace(rho0).real
    ts = np.linspace(0.0, 4.0, 6)
    S = dense_superoperator(osc)
    states = np.stack([(sla.expm(S * t) @ rho0.reshape(-1)).reshape(N, N) for t in ts])
    b = jaxcoll.energy_budget(osc, states, ts)
    # every channel hands its Bohr energy to the ancilla (E_c + Delta E_A = 0): Q_A = -Delta E_S
    # and the motion takes nothing
    h = np.diag(np.arange(N, dtype=float))
    e = np.einsum("ij,nji->n", h, states).real
    np.testing.assert_allclose(np.asarray(b.system), e - e[0], atol=1e-10)
    np.testing.assert_allclose(np.asarray(b.ancilla), -(e - e[0]), atol=1e-10)
    np.testing.assert_allclose(np.asarray(b.motion), 0.0, atol=1e-10)
    p = np.real(np.einsum("nii->ni", states))
    bp = jaxcoll.energy_budget(osc, p, ts)
    np.testing.assert_allclose(np.asarray(bp.ancilla), -(e - e[0]), atol=1e-10)


def test_user_model_check_validity():
    osc = _osc()
    rep = jaxcoll.check_validity(osc, warn=False)
    up, dn = 0.3 * np.exp(-1.0 / 0.7), 0.3
    n = np.arange(N)
    esc = up * np.where(n < N - 1, n + 1, 0) + dn * n  # total jump rate out of |n>
    assert rep.scales["gamma_max"] == pytest.approx(esc.max(), rel=1e-12)
    # tau_c = 1/min(E_R, T_m) = 1
    assert rep["markov"].value == pytest.approx(esc.max(), rel=1e-12)
    assert rep["low_density"].ok is None  # no density given: undecidable
    assert "Oscillator" in str(rep)


def test_user_model_qutip_lindblad():
    qutip = pytest.importorskip("qutip")
    osc = _osc()
    H, c_ops = jaxcoll.qutip_lindblad(osc)
    L = qutip.liouvillian(H, c_ops).full()  # column-stacking vec
    S = dense_superoperator(osc)  # row-major vec
    perm = np.arange(N * N).reshape(N, N).T.reshape(-1)
    np.testing.assert_allclose(L, S[np.ix_(perm, perm)], atol=1e-12)
    ss = qutip.steadystate(H, c_ops).full()
    np.testing.assert_allclose(np.asarray(jaxcoll.steady_state(osc)), ss, atol=1e-10)
