"""Counting statistics of the collisions against independent references: a NumPy tilted
superoperator built here from the channel list with SciPy `expm` (derivatives by central
differences), QuTiP `countstat_current` / `countstat_current_noise`, and closed forms (tight
coupling of the spin, the Gallavotti-Cohen symmetry, the first law)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import qutip
import scipy.linalg as sla
from _references import birth_death_generator, spin_rates_ref

import jaxcoll

SX = np.array([[0.0, 1.0], [1.0, 0.0]])


def qubit_gas():
    # The qubit gas of the README's energy-flow section.
    return jaxcoll.CollisionalModel(
        np.diag([0.0, 1.0]), np.diag([0.0, 1.6]), np.kron(SX, SX), T_a=3.0, T_m=1.0, gamma_tilde=1.0
    )


def random_model(seed, d, k, *, spectrum="random", coupling="complex", shift=False):
    rng = np.random.default_rng(seed)
    if spectrum == "random":
        hs = np.diag(np.sort(rng.uniform(0, 2, size=d)))
    elif spectrum == "degenerate":  # repeated levels, rotated basis
        lev = np.sort(rng.integers(0, 3, size=d)) * 0.7
        q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        hs = q @ np.diag(lev) @ q.T
    else:  # equidistant
        hs = np.diag(0.8 * np.arange(d))
    ha = np.diag(np.sort(rng.uniform(0, 2, size=k)))
    v = rng.normal(size=(d * k, d * k))
    if coupling == "complex":
        v = v + 1j * rng.normal(size=(d * k, d * k))
    v = v + v.conj().T
    kw = dict(density=0.05, coupling=0.9) if shift else dict(gamma_tilde=0.7)
    return jaxcoll.CollisionalModel(hs, ha, v, T_a=1.7, T_m=0.6, **kw), rng


def channel_operators(model):
    """Dense L_c = sqrt(r_c) A_c (n, d, d) from the channel list, and h_S + h_eff."""
    ch = model.channels()
    d = model.dim
    A = np.zeros((ch.n_channels, d, d), dtype=complex)
    np.add.at(A, (ch.channel, ch.row, ch.col), np.asarray(ch.value))
    L = np.sqrt(np.asarray(ch.rates))[:, None, None] * A
    H = np.diag(np.asarray(model.energies(), dtype=float)).astype(complex)
    he = model.h_eff_entries()
    np.add.at(H, (he.row, he.col), np.asarray(he.value))
    return L, H


def tilted_superoperator(model, lam, weights):
    """Row-major vec: L_lambda = -i[H, .] - {K, .}/2 + sum_c exp(lam . w_c) L_c . L_c^dag."""
    L, H = channel_operators(model)
    d = model.dim
    f = np.exp(np.asarray(lam) @ np.asarray(weights))
    K = np.einsum("cji,cjk->ik", L.conj(), L)
    G = -1j * H - 0.5 * K
    eye = np.eye(d)
    jump = np.einsum("c,cij,ckl->ikjl", f, L, L.conj()).reshape(d * d, d * d)
    return jump + np.kron(G, eye) + np.kron(eye, G.conj())


def log_z(model, rho0, t, lam, weights):
    d = model.dim
    S = tilted_superoperator(model, lam, weights)
    out = sla.expm(S * t) @ rho0.reshape(-1)
    return np.log(np.real(np.trace(out.reshape(d, d))))


def fd_cumulants(model, rho0, t, weights, h=2e-3):
    """Mean and covariance of the counters by central differences of ln Z (one Richardson step)."""
    m = weights.shape[0]
    f = lambda lam: log_z(model, rho0, t, lam, weights)  # noqa: E731
    E = np.eye(m)

    def grad(h):
        return np.array([(f(h * E[i]) - f(-h * E[i])) / (2 * h) for i in range(m)])

    def hess(h):
        H = np.zeros((m, m))
        for i in range(m):
            for j in range(m):
                H[i, j] = (
                    f(h * (E[i] + E[j]))
                    - f(h * (E[i] - E[j]))
                    - f(h * (E[j] - E[i]))
                    + f(-h * (E[i] + E[j]))
                ) / (4 * h * h)
        return H

    g = (4 * grad(h / 2) - grad(h)) / 3
    H = (4 * hess(5 * h) - hess(10 * h)) / 3
    return g, H


def heat_weights_ref(model):
    # CONTRACT.md: "A jump of channel c changes the ancilla sector's energy by
    # Delta E_A = eps_k - eps_l and the motional sector's by Delta E_M = -(E_c + Delta E_A)";
    # "Order of the pair everywhere: (ancilla, motion)".
    ch = model.channels()
    a = np.asarray(ch.ancilla)
    return np.stack([a, -(np.asarray(ch.bohr) + a)])


def random_rho(rng, d):
    z = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    rho = z @ z.conj().T
    return rho / np.trace(rho).real


CASES = [
    # seed, d, k, spectrum, coupling, shift, start
    (0, 2, 2, "random", "complex", False, "density"),
    (1, 4, 2, "random", "complex", True, "populations"),
    (2, 5, 3, "equidistant", "real", True, "density"),
    (3, 6, 2, "degenerate", "complex", True, "density"),
    (4, 3, 3, "degenerate", "real", False, "populations"),
]


@pytest.mark.parametrize("seed, d, k, spectrum, coupling, shift, start", CASES)
def test_heat_cumulants_against_expm(seed, d, k, spectrum, coupling, shift, start):
    model, rng = random_model(seed, d, k, spectrum=spectrum, coupling=coupling, shift=shift)
    rho = random_rho(rng, d)
    if start == "populations":
        # populations are in the working (energy) basis; compare with the diagonal state there
        p = rng.dirichlet(np.ones(d))
        U = np.asarray(model.eigenbasis)
        rho0, rho_ref = p, U @ np.diag(p) @ U.conj().T
    else:
        rho0, rho_ref = rho, rho
    # the reference evolves in the working basis
    rho_w = np.asarray(model.to_working(jnp.asarray(rho_ref)))
    ts = np.array([0.4, 1.0, 2.3])
    res = jaxcoll.heat_statistics(model, rho0, ts, rtol=1e-11, atol=1e-13)
    W = heat_weights_ref(model)
    assert res.mean.shape == (3, 2) and res.covariance.shape == (3, 2, 2)
    np.testing.assert_allclose(res.mean[0], 0.0, atol=1e-14)
    np.testing.assert_allclose(res.covariance[0], 0.0, atol=1e-14)
    for i in (1, 2):
        g, H = fd_cumulants(model, rho_w, ts[i] - ts[0], W)
        scale = max(1.0, np.max(np.abs(H)))
        np.testing.assert_allclose(res.mean[i], g, rtol=0, atol=1e-7 * max(1.0, np.max(np.abs(g))))
        np.testing.assert_allclose(res.covariance[i], H, rtol=0, atol=1e-7 * scale)


def test_general_weights_count_collisions_and_one_channel():
    model, rng = random_model(7, 3, 2, shift=True)
    n = model.channels().n_channels
    W = np.stack([np.ones(n), np.eye(n)[1], rng.normal(size=n)])
    rho = random_rho(rng, 3)
    ts = np.array([0.0, 1.5])
    res = jaxcoll.counting_statistics(model, rho, ts, W, rtol=1e-11, atol=1e-13)
    g, H = fd_cumulants(model, np.asarray(model.to_working(jnp.asarray(rho))), 1.5, W)
    np.testing.assert_allclose(res.mean[1], g, atol=1e-7 * np.max(np.abs(g)))
    np.testing.assert_allclose(res.covariance[1], H, atol=1e-7 * np.max(np.abs(H)))
    # a count of jumps is non-negative, and its variance too
    assert res.mean[1, 0] > 0 and res.covariance[1, 0, 0] > 0


def test_spin_tight_coupling_all_orders():
    """For the spin every jump moves (E_S, Q_A, Q_M) in the ratio omega_s : -omega_a : delta,
    so from a sharp m the cumulants of Q_A are (-omega_a/omega_s)^k times those of the energy,
    whose distribution is the populations of `evolve` (order 4 checked)."""
    omega_s, delta = 1.0, 0.6
    model = jaxcoll.SpinGas(3, omega_s=omega_s, delta=delta, T_a=0.8, T_m=1.3, gamma_tilde=1.0)
    d = model.dim
    p0 = np.zeros(d)
    p0[0] = 1.0
    ts = np.array([0.0, 0.2, 0.7, 2.0])
    res = jaxcoll.heat_statistics(model, p0, ts, order=4, rtol=1e-11, atol=1e-13)
    pops = np.asarray(jaxcoll.evolve(model, p0, ts, rtol=1e-12, atol=1e-14).populations)
    e = omega_s * (np.arange(d) - 3.0)
    x = e - e[0]  # Delta E_S
    mu = pops @ x
    c = x[None, :] - mu[:, None]
    m2, m3, m4 = (np.sum(pops * c**k, axis=1) for k in (2, 3, 4))
    kappa = [mu, m2, m3, m4 - 3 * m2**2]
    ra, rm = -(omega_s + delta) / omega_s, delta / omega_s
    for k in range(4):
        tA = res.cumulants[k][(slice(None),) + (0,) * (k + 1)]
        tM = res.cumulants[k][(slice(None),) + (1,) * (k + 1)]
        mixed = res.cumulants[k][(slice(None),) + (0,) * k + (1,)]
        scale = max(1.0, np.max(np.abs(kappa[k])))
        np.testing.assert_allclose(tA, ra ** (k + 1) * kappa[k], atol=1e-8 * scale)
        np.testing.assert_allclose(tM, rm ** (k + 1) * kappa[k], atol=1e-8 * scale)
        np.testing.assert_allclose(mixed, ra**k * rm * kappa[k], atol=1e-8 * scale)
    # the cumulant tensors are symmetric and the first two are mean and covariance
    np.testing.assert_array_equal(res.cumulants[0], res.mean)
    np.testing.assert_allclose(res.cumulants[2][:, 0, 1, 0], res.cumulants[2][:, 1, 0, 0])


def _qutip_reference(model):
    """Steady currents and zero-frequency noise of (Q_A, Q_M) from QuTiP with one jump
    superoperator per channel, the noise matrix weighted with the energies."""
    L, H = channel_operators(model)
    c_ops = [qutip.Qobj(Lc) for Lc in L]
    Lq = qutip.liouvillian(qutip.Qobj(H), c_ops)
    # rhoss given: without it QuTiP 5 computes steadystate(L, c_ops), which adds the
    # dissipators a second time (wrong where h_eff and coherences matter).
    rhoss = qutip.steadystate(Lq)
    cur = np.real(np.asarray(qutip.countstat_current(Lq, c_ops, rhoss=rhoss))).ravel()
    S = qutip.countstat_current_noise(Lq, c_ops, wlist=[0.0], rhoss=rhoss, sparse=False)[1]
    S = np.real(np.asarray(S))[:, :, 0]
    W = heat_weights_ref(model)
    return W @ cur, W @ S @ W.T


def test_qubit_gas_steady_statistics_against_qutip_and_the_issue_numbers():
    model = qubit_gas()
    s = jaxcoll.steady_heat_statistics(model)
    J, D = _qutip_reference(model)
    np.testing.assert_allclose(s.currents, J, atol=1e-10)
    np.testing.assert_allclose(s.diffusion, D, atol=1e-10)
    np.testing.assert_allclose(s.currents, [-0.08093, 0.08093], atol=1e-5)
    np.testing.assert_allclose(s.diffusion, 0.29308 * np.array([[1, -1], [-1, 1]]), atol=1e-5)


@pytest.mark.parametrize(
    "seed, d, k, spectrum, coupling, shift",
    [
        (10, 4, 3, "random", "complex", True),
        (11, 5, 2, "degenerate", "complex", True),
        (12, 3, 2, "equidistant", "real", False),
    ],
)
def test_steady_statistics_random_models(seed, d, k, spectrum, coupling, shift):
    model, _ = random_model(seed, d, k, spectrum=spectrum, coupling=coupling, shift=shift)
    s = jaxcoll.steady_heat_statistics(model)
    J, D = _qutip_reference(model)
    np.testing.assert_allclose(s.currents, J, atol=1e-10 * max(1, np.max(np.abs(J))))
    np.testing.assert_allclose(s.diffusion, D, atol=1e-10 * max(1, np.max(np.abs(D))))
    # Q_A + Q_M = -Delta E_S is bounded: J_A = -J_M and a rank-1 diffusion matrix
    np.testing.assert_allclose(s.currents[0], -s.currents[1], atol=1e-12)
    np.testing.assert_allclose(s.diffusion @ np.ones(2), 0.0, atol=1e-11)
    # gradient and Hessian of the SCGF (autodiff through its eigenvalue) agree
    th = lambda x: jaxcoll.scgf(model, x[0], x[1])  # noqa: E731
    np.testing.assert_allclose(jax.grad(th)(jnp.zeros(2)), s.currents, atol=1e-10)
    np.testing.assert_allclose(jax.hessian(th)(jnp.zeros(2)), s.diffusion, atol=1e-9)


def test_scgf_is_the_dominant_eigenvalue_of_the_full_tilted_superoperator():
    model, _ = random_model(20, 4, 2, spectrum="degenerate", shift=True)
    W = heat_weights_ref(model)
    la = np.array([0.3, -0.5, 0.1])
    lm = np.array([-0.2, 0.4, 1.0])
    theta = jaxcoll.scgf(model, la, lm)
    assert theta.shape == (3,)
    for i in range(3):
        ev = np.linalg.eigvals(tilted_superoperator(model, [la[i], lm[i]], W))
        np.testing.assert_allclose(theta[i], np.max(ev.real), atol=1e-11)
    assert abs(float(jaxcoll.scgf(model, 0.0, 0.0))) < 1e-12
    # broadcasting
    assert jaxcoll.scgf(model, la[:, None], lm[None, :]).shape == (3, 3)


@pytest.mark.parametrize(
    "seed, d, k, spectrum, coupling, shift",
    [
        (30, 4, 2, "degenerate", "real", True),  # real (time-reversal symmetric) coupling
        (33, 5, 2, "degenerate", "complex", False),  # gamma_tilde only: h_eff = 0
        (32, 4, 3, "random", "complex", True),  # non-degenerate spectrum
    ],
)
def test_gallavotti_cohen_symmetry_holds(seed, d, k, spectrum, coupling, shift):
    model, rng = random_model(seed, d, k, spectrum=spectrum, coupling=coupling, shift=shift)
    la, lm = rng.normal(size=5) * 0.4, rng.normal(size=5) * 0.8
    res = jaxcoll.gallavotti_cohen_residual(model, la, lm)
    assert np.max(np.abs(res)) < 1e-10
    # the symmetry is not trivial: theta itself varies by O(0.1) over these fields
    assert np.ptp(np.asarray(jaxcoll.scgf(model, la, lm))) > 5e-2


def test_gallavotti_cohen_violation_complex_coupling_shift_degenerate():
    # eq. (9) fails for a complex coupling with h_eff != 0 on a degenerate spectrum
    model, _ = random_model(42, 4, 2, spectrum="degenerate", coupling="complex", shift=True)
    res = np.asarray(jaxcoll.gallavotti_cohen_residual(model, [0.3, -0.6], [-0.4, 0.5]))
    assert 1e-3 < np.max(np.abs(res)) < 1e-1
    # the same model without the forward shift obeys it
    model0, _ = random_model(42, 4, 2, spectrum="degenerate", coupling="complex", shift=False)
    res0 = np.asarray(jaxcoll.gallavotti_cohen_residual(model0, [0.3, -0.6], [-0.4, 0.5]))
    assert np.max(np.abs(res0)) < 1e-10


def test_long_time_slopes_equal_steady_statistics():
    model = qubit_gas()
    ts = np.array([0.0, 60.0, 80.0])
    res = jaxcoll.heat_statistics(model, np.array([1.0, 0.0]), ts, rtol=1e-10, atol=1e-12)
    s = jaxcoll.steady_heat_statistics(model)
    np.testing.assert_allclose((res.mean[2] - res.mean[1]) / 20, s.currents, atol=1e-8)
    np.testing.assert_allclose((res.covariance[2] - res.covariance[1]) / 20, s.diffusion, atol=1e-7)


def test_heat_statistics_gradient_against_central_differences():
    def f(T_a):
        m = jaxcoll.SpinGas(2, omega_s=1.0, delta=0.4, T_a=T_a, T_m=1.0, gamma_tilde=1.0)
        p0 = jnp.zeros(5).at[0].set(1.0)
        r = jaxcoll.heat_statistics(m, p0, jnp.array([0.0, 1.3]), rtol=1e-11, atol=1e-13)
        return r.covariance[-1, 0, 1]

    g = jax.grad(f)(0.9)
    h = 1e-4
    fd = (f(0.9 + h) - f(0.9 - h)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_bad_input():
    model = qubit_gas()
    with pytest.raises(ValueError, match="weights"):
        jaxcoll.counting_statistics(model, np.array([1.0, 0.0]), [0.0, 1.0], np.ones((2, 3)))
    with pytest.raises(ValueError, match="order"):
        jaxcoll.heat_statistics(model, np.array([1.0, 0.0]), [0.0, 1.0], order=0)
    with pytest.raises(ValueError, match="rho0"):
        jaxcoll.heat_statistics(model, np.array([1.0, 0.0, 0.0]), [0.0, 1.0])
    with pytest.raises(ValueError, match="ts"):
        jaxcoll.heat_statistics(model, np.array([1.0, 0.0]), [1.0, 0.5])
    with pytest.raises(TypeError, match="model"):
        jaxcoll.steady_heat_statistics("qubit")
    with pytest.raises(ValueError, match="lambdas"):
        jaxcoll.counting_scgf(model, np.zeros(3), np.ones((2, 4)))
    # the solver settings are those of `SolverOptions`; the ones the moments cannot honour
    # are refused by name, unknown keywords are a TypeError
    p0, ts = np.array([1.0, 0.0]), [0.0, 1.0]
    for bad in ({"norm": "rms"}, {"dtype": jnp.float32}, {"progress": True},
                {"mode": "scaling"}, {"solver": "exponential"}):  # fmt: skip
        (name,) = bad
        with pytest.raises(ValueError, match=f"counting_statistics does not take {name}="):
            jaxcoll.heat_statistics(model, p0, ts, **bad)
    with pytest.raises(TypeError, match="tolerance"):
        jaxcoll.heat_statistics(model, p0, ts, tolerance=1e-6)
    with pytest.raises(ValueError, match="rtol"):
        jaxcoll.heat_statistics(model, p0, ts, rtol=-1.0)
    with pytest.warns(DeprecationWarning, match="tridiagonal="):
        jaxcoll.heat_statistics(model, p0, ts, method="lapack")


def test_stationary_start_against_expm():
    """From the stationary state the state does not move while the moments still relax: the
    step size must follow the moments too (the default). Against the NumPy tilted
    superoperator with SciPy expm, and the closed-form steady growth of the mean."""
    model = qubit_gas()
    rho = np.asarray(jaxcoll.steady_state(model))
    rho_w = np.asarray(model.to_working(jnp.asarray(rho)))
    W = heat_weights_ref(model)
    ts = np.array([0.0, 0.3, 2.0, 10.0])
    res = jaxcoll.heat_statistics(model, rho, ts)
    s = jaxcoll.steady_heat_statistics(model)
    for i in (1, 2, 3):
        t = ts[i] - ts[0]
        g, H = fd_cumulants(model, rho_w, t, W)
        np.testing.assert_allclose(res.mean[i], g, atol=1e-7 * max(1.0, np.max(np.abs(g))))
        np.testing.assert_allclose(res.covariance[i], H, atol=1e-7 * max(1.0, np.max(np.abs(H))))
        # stationary start: the mean grows exactly linearly
        np.testing.assert_allclose(res.mean[i], s.currents * t, atol=1e-9)


@pytest.mark.parametrize(
    "settings",
    [{}, {"options": jaxcoll.SolverOptions(tridiagonal="lapack")}, {"solver": "rodas4"}],
    ids=["default", "lapack", "rodas4"],
)
def test_stationary_start_spin_closed_form(settings):
    """Tight coupling: Q_A = -(omega_a / omega_s) (E_S(t) - E_S(0)) on every trajectory, so
    from the stationary populations p, Var Q_A = ratio^2 (2 Var_p E - 2 Cov(E(0), E(t))) with
    Cov from SciPy expm of the NumPy birth-death generator with the rates of eq. (19) (both
    from `_references`)."""
    J, omega_s, delta = 20, 1.0, 4.0
    model = jaxcoll.SpinGas(J, omega_s=omega_s, delta=delta, T_a=5.0, T_m=1.0, gamma_tilde=1.0)
    gp, gm = spin_rates_ref(omega_s, delta, 5.0, 1.0)
    d = 2 * J + 1
    m = np.arange(d) - J
    L = birth_death_generator(J, gp, gm)
    p = (gp / gm) ** np.arange(d)  # detailed balance along the chain
    p /= p.sum()
    e = omega_s * m - (omega_s * m) @ p
    ts = np.array([0.0, 0.02, 0.3, 5.0])
    res = jaxcoll.heat_statistics(model, p, ts, **settings)
    ratio = -(omega_s + delta) / omega_s
    for k in (1, 2, 3):
        cov = e @ sla.expm(L * ts[k]) @ (p * e)
        var = ratio**2 * (2 * (p @ e**2) - 2 * cov)
        np.testing.assert_allclose(res.covariance[k, 0, 0], var, rtol=1e-7)
        np.testing.assert_allclose(res.mean[k], 0.0, atol=1e-9)


def test_counter_that_never_counts():
    """A zero row of weights: its cumulants are exactly 0, and the step size control (in the
    units of each counter) still works for the other counter (against expm)."""
    model = qubit_gas()
    n = model.channels().n_channels
    W = np.stack([np.zeros(n), np.ones(n)])
    p0 = np.array([1.0, 0.0])
    res = jaxcoll.counting_statistics(model, p0, [0.0, 1.5], W, order=3)
    np.testing.assert_array_equal(res.mean[:, 0], 0.0)
    np.testing.assert_array_equal(res.covariance[:, 0, :], 0.0)
    g, H = fd_cumulants(model, np.diag(p0).astype(complex), 1.5, W[1:])
    np.testing.assert_allclose(res.mean[1, 1], g[0], atol=1e-7 * abs(g[0]))
    np.testing.assert_allclose(res.covariance[1, 1, 1], H[0, 0], atol=1e-7 * abs(H[0, 0]))
