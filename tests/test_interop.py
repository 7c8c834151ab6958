"""QuTiP interoperability: basis reversal for spins, round trips, and mesolve as a reference."""

import numpy as np
import pytest

qutip = pytest.importorskip("qutip")

from jaxcoll import SpinGas  # noqa: E402
from jaxcoll._interop import from_qutip, qutip_lindblad, to_qutip  # noqa: E402
from jaxcoll._model import CollisionalModel  # noqa: E402
from jaxcoll._states import spin_coherent_state  # noqa: E402


@pytest.mark.parametrize("J", [0.5, 1.0, 2.5, 4.0])
def test_spin_operators_match_jmat(J):
    d = int(2 * J) + 1
    m = np.arange(d) - J  # jaxcoll: ascending m, index 0 is m = -J
    jz = from_qutip(qutip.jmat(J, "z"))
    np.testing.assert_allclose(jz, np.diag(m), atol=1e-14)
    # <m+1|J+|m> = sqrt((J-m)(J+m+1)) sits one below the diagonal in ascending order
    jp = from_qutip(qutip.jmat(J, "+"))
    expected = np.diag(np.sqrt((J - m[:-1]) * (J + m[:-1] + 1)), k=-1)
    np.testing.assert_allclose(jp, expected, atol=1e-14)
    # and back
    assert (to_qutip(expected) - qutip.jmat(J, "+")).norm() < 1e-13


@pytest.mark.parametrize("J", [1.0, 3.5])
@pytest.mark.parametrize("theta,phi", [(0.3, 0.0), (1.9, 2.2), (np.pi, 0.0)])
def test_spin_coherent_agrees_with_qutip(J, theta, phi):
    ours = np.asarray(spin_coherent_state(J, theta, phi))
    theirs = qutip.spin_coherent(J, theta, phi, type="dm")
    np.testing.assert_allclose(from_qutip(theirs), ours, atol=1e-13)
    np.testing.assert_allclose(from_qutip(qutip.spin_coherent(J, theta, phi), density=True), ours,
                               atol=1e-13)  # fmt: skip
    assert (to_qutip(ours) - theirs).norm() < 1e-12
    # expectation values are basis independent, so they must agree after conversion
    for ax in "xyz":
        a = qutip.expect(qutip.jmat(J, ax), to_qutip(ours))
        b = np.trace(ours @ from_qutip(qutip.jmat(J, ax))).real
        assert abs(a - b) < 1e-12


def test_round_trips_and_kinds():
    rng = np.random.default_rng(0)
    d = 5
    x = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    np.testing.assert_array_equal(from_qutip(to_qutip(x)), x)
    np.testing.assert_array_equal(from_qutip(to_qutip(x, spin=False), spin=False), x)
    np.testing.assert_array_equal(to_qutip(x, spin=False).full(), x)
    # ground state m = -J is index 0 here and the last basis state in QuTiP
    p = np.eye(d)[0]
    assert (to_qutip(p) - qutip.spin_state(2, -2, type="dm")).norm() < 1e-14
    assert (to_qutip(p, kind="ket") - qutip.spin_state(2, -2)).norm() < 1e-14
    np.testing.assert_array_equal(from_qutip(qutip.spin_state(2, -2)), p)
    np.testing.assert_array_equal(from_qutip(qutip.spin_state(2, -2).dag()), p)
    # batches
    batch = np.stack([x, x.conj().T])
    qs = to_qutip(batch)
    assert isinstance(qs, list) and len(qs) == 2
    np.testing.assert_array_equal(from_qutip(qs), batch)
    pops = rng.random((3, d))
    np.testing.assert_array_equal(
        np.stack([np.diag(q.full()).real for q in to_qutip(pops, kind="populations")]),
        pops[:, ::-1],
    )


def test_errors():
    with pytest.raises(ValueError, match="kind"):
        to_qutip(np.eye(2), kind="vector")
    with pytest.raises(ValueError, match="square"):
        to_qutip(np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        to_qutip(np.ones((2, 2, 2, 2)))
    with pytest.raises(TypeError, match="qobj"):
        from_qutip(np.eye(2))
    with pytest.raises(TypeError, match="model"):
        qutip_lindblad(object())


def test_spin_gas_mesolve_matches_lindbladian():
    """The Lindbladian of eq. (18) against QuTiP's own construction from jmat."""
    gas = SpinGas(2.0, omega_s=1.0, delta=0.4, T_a=0.8, T_m=1.3, gamma_tilde=0.7)
    H, c_ops = qutip_lindblad(gas)
    L = qutip.liouvillian(H, c_ops)
    rho = np.asarray(spin_coherent_state(2.0, 1.1, 0.5))
    ours = np.asarray(gas.lindbladian(rho))
    theirs = qutip.vector_to_operator(L * qutip.operator_to_vector(to_qutip(rho)))
    np.testing.assert_allclose(ours, from_qutip(theirs), atol=1e-12)


def test_collisional_model_mesolve():
    """A qutrit in a qubit gas: mesolve of the exported (H, c_ops) equals the Lindbladian."""
    h_s = np.diag([0.0, 1.0, 2.3])
    h_a = np.diag([0.0, 1.2])
    rng = np.random.default_rng(1)
    v = rng.normal(size=(6, 6)) + 1j * rng.normal(size=(6, 6))
    v = v + v.conj().T
    model = CollisionalModel(h_s, h_a, v, T_a=0.9, T_m=1.4, density=0.01, coupling=1.0)
    H, c_ops = qutip_lindblad(model)
    rho = np.diag([0.2, 0.5, 0.3]).astype(complex)
    rho[0, 1] = rho[1, 0] = 0.1
    L = qutip.liouvillian(H, c_ops)
    theirs = qutip.vector_to_operator(L * qutip.operator_to_vector(to_qutip(rho, spin=False)))
    ours = np.asarray(model.lindbladian(rho))
    np.testing.assert_allclose(ours, from_qutip(theirs, spin=False), atol=1e-12)
