"""CollisionalModel (eq. 6-7, Born approximation) against independent NumPy/SciPy/QuTiP references.

The references below rebuild the jump operators of eq. (7)/(D3) with explicit loops over the
matrix elements v_ij^kl, from the *known* eigen-decomposition used to generate h_s (not from
the model's own diagonalisation), and use the closed form of the scattering integral (20),
I(alpha, s) = |s| e^{-alpha s/2} K_1(|s| kappa/2)/kappa, kappa = sqrt(alpha(alpha+4)), which is
itself checked against the integral (20) by mpmath quadrature.
"""

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import qutip
import scipy.linalg as sla
from _references import I_ref, random_hermitian
from hypothesis import HealthCheck, example, given, settings, strategies as st

import jaxcoll
from jaxcoll._model import CollisionalModel

SETTINGS = settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
# random problems with two different gas temperatures (the tests away from equilibrium)
GIVEN_OUT_OF_EQUILIBRIUM = given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(2, 5),
    k=st.integers(2, 4),
    degenerate=st.booleans(),
    T_a=st.floats(0.2, 5.0),
    T_m=st.floats(0.2, 5.0),
)


# --- independent references -------------------------------------------------------------------
def I_quad(alpha, s):
    """Eq. (20) by mpmath quadrature."""
    a, s = mpmath.mpf(alpha), mpmath.mpf(s)
    z0 = max(mpmath.mpf(0), s)
    f = lambda z: mpmath.exp(-(2 + a) * z) * mpmath.sinh(2 * mpmath.sqrt(z) * mpmath.sqrt(z - s))
    return float(mpmath.e**s * mpmath.quad(f, [z0, z0 + 1, z0 + 10, mpmath.inf]))


def gamma_tilde_ref(density, coupling, T_m, E_R):
    """Eq. (D4) written out: n lambda_th^3 V0^2 / (2 E_R), lambda_th = sqrt(2 pi / (m T_m))."""
    # with m = 1/(2 E_R R^2) and R = 1: lambda_th^3 = (4 pi E_R / T_m)^{3/2}
    lam3 = (2 * np.pi * 2 * E_R / T_m) ** 1.5
    return density * lam3 * (coupling * E_R) ** 2 / (2 * E_R)


def rand_unitary(rng, n):
    z = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    q, r = np.linalg.qr(z)
    return q * (np.diag(r) / np.abs(np.diag(r)))


def rand_rho(rng, d, mix=0.05):
    z = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    rho = z @ z.conj().T
    rho = rho / np.trace(rho).real
    return (1 - mix) * rho + mix * np.eye(d) / d


class Problem:
    """A random system + ancilla problem with a known eigen-decomposition of h_s.

    `degenerate=True` puts the levels on an integer grid with at least one repeated level, so
    both degenerate levels and equal Bohr frequencies (coherent sums) occur.
    """

    def __init__(self, seed, d, k, degenerate=False):
        rng = np.random.default_rng(seed)
        self.d, self.k = d, k
        if degenerate:
            self.lev_int = np.sort(rng.integers(0, max(d - 1, 1), size=d))
            self.lev = 0.7 * self.lev_int - 0.5
        else:
            self.lev_int = None
            self.lev = np.sort(rng.uniform(-1.5, 1.5, size=d))
        self.Q = rand_unitary(rng, d)
        self.h_s = self.Q @ np.diag(self.lev) @ self.Q.conj().T
        self.h_s = 0.5 * (self.h_s + self.h_s.conj().T)
        self.eps = np.sort(rng.uniform(0.0, 2.5, size=k))
        self.W = rand_unitary(rng, k)
        self.h_a = self.W @ np.diag(self.eps) @ self.W.conj().T
        self.h_a = 0.5 * (self.h_a + self.h_a.conj().T)
        self.v = random_hermitian(rng, d * k)
        self.rng = rng

    def key(self, i, j):
        if self.lev_int is not None:
            return int(self.lev_int[i] - self.lev_int[j])
        return 0 if i == j else (i, j)

    def model(self, **kw):
        return CollisionalModel(self.h_s, self.h_a, self.v, **kw)

    def reference(self, T_a, T_m, E_R=1.0, gamma_tilde=None, density=None, coupling=None):
        """Jump operators (user basis) and the Hamiltonian h_s + h_eff, by explicit loops."""
        d, k = self.d, self.k
        if gamma_tilde is None:
            gamma_tilde = gamma_tilde_ref(density, coupling, T_m, E_R)
        X = np.kron(self.Q, self.W)
        v4 = (X.conj().T @ self.v @ X).reshape(d, k, d, k)
        p = np.exp(-(self.eps - self.eps.min()) / T_a)
        p /= p.sum()
        alpha = E_R / T_m
        groups = {}
        for i in range(d):
            for j in range(d):
                groups.setdefault(self.key(i, j), []).append((i, j))
        Ls, bookkeeping = [], []
        for members in groups.values():
            i0, j0 = members[0]
            E = self.lev[i0] - self.lev[j0]
            for kk in range(k):
                for ll in range(k):
                    A = np.zeros((d, d), complex)
                    for i, j in members:
                        A[i, j] = v4[i, kk, j, ll]
                    rate = (
                        gamma_tilde * p[ll] * I_ref(alpha, (E + self.eps[kk] - self.eps[ll]) / E_R)
                    )
                    Ls.append(np.sqrt(rate) * self.Q @ A @ self.Q.conj().T)
                    bookkeeping.append((E, self.eps[kk] - self.eps[ll], rate))
        H = self.h_s.copy()
        if density is not None:
            same = np.equal.outer(self.lev, self.lev) if self.lev_int is None else None
            if same is None:
                same = np.equal.outer(self.lev_int, self.lev_int)
            fwd = sum(p[q] * v4[:, q, :, q] * same for q in range(k))
            H = H + (2 * np.pi) ** 1.5 * density * coupling * E_R * self.Q @ fwd @ self.Q.conj().T
        return Ls, H, bookkeeping


def ref_dissipator(Ls, rho):
    out = np.zeros_like(rho, dtype=complex)
    for L in Ls:
        LdL = L.conj().T @ L
        out += L @ rho @ L.conj().T - 0.5 * (LdL @ rho + rho @ LdL)
    return out


def ref_lindbladian(Ls, H, rho):
    return -1j * (H @ rho - rho @ H) + ref_dissipator(Ls, rho)


def gibbs(h, T):
    g = sla.expm(-(h - np.linalg.eigvalsh(h)[0] * np.eye(len(h))) / T)
    return g / np.trace(g).real


def rel_entropy(rho, sigma):
    w, V = np.linalg.eigh(rho)
    ws, Vs = np.linalg.eigh(sigma)
    log_rho = (V * np.log(w)) @ V.conj().T
    log_sig = (Vs * np.log(ws)) @ Vs.conj().T
    return float(np.trace(rho @ (log_rho - log_sig)).real)


def spin_matrices_qutip(J):
    """QuTiP's jmat reordered to ascending m (index 0 is m = -J)."""
    jz = qutip.jmat(J, "z").full()[::-1, ::-1]
    jp = qutip.jmat(J, "+").full()[::-1, ::-1]
    return jz, jp, jp.conj().T


# --- the test reference itself ----------------------------------------------------------------
@pytest.mark.parametrize("alpha, s", [(1.0, 0.0), (0.3, 2.0), (2.0, -3.0), (1.0, 0.5), (5.0, -0.7)])
def test_reference_integral_matches_eq20(alpha, s):
    assert I_ref(alpha, s) == pytest.approx(I_quad(alpha, s), rel=1e-12)


# --- the generator against the explicit construction ------------------------------------------
@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(2, 5),
    k=st.integers(2, 3),
    degenerate=st.booleans(),
    with_density=st.booleans(),
    T_a=st.floats(0.3, 3.0),
    T_m=st.floats(0.3, 3.0),
    E_R=st.floats(0.5, 2.0),
)
@example(seed=1, d=4, k=2, degenerate=True, with_density=True, T_a=0.5, T_m=2.0, E_R=1.0)
def test_lindbladian_matches_reference(seed, d, k, degenerate, with_density, T_a, T_m, E_R):
    P = Problem(seed, d, k, degenerate)
    scale = dict(density=0.02, coupling=0.8) if with_density else dict(gamma_tilde=0.7)
    model = P.model(T_a=T_a, T_m=T_m, E_R=E_R, **scale)
    Ls, H, _ = P.reference(T_a, T_m, E_R, **scale)
    rho = rand_rho(P.rng, d)
    ref = ref_lindbladian(Ls, H, rho)
    got = np.asarray(model.lindbladian(jnp.asarray(rho)))
    assert np.max(np.abs(got - ref)) <= 1e-12 * np.max(np.abs(ref))
    # dense superoperator, row-major vec: vec(rho)[i*d + j] = rho[i, j]
    S = np.asarray(model.superoperator())
    assert np.max(np.abs(S @ rho.reshape(-1) - ref.reshape(-1))) <= 1e-12 * np.max(np.abs(ref))
    # h_eff commutes with h_s (secular) and vanishes without density/coupling
    heff = np.asarray(model.h_eff())
    assert np.max(np.abs(heff @ P.h_s - P.h_s @ heff)) <= 1e-12 * max(1.0, np.max(np.abs(heff)))
    if not with_density:
        assert np.all(heff == 0)


def test_h_eff_is_the_mean_field():
    """Born forward scattering is the mean field n * int V = (2 pi)^{3/2} n R^3 V0 <v>_A."""
    h_s = np.diag([0.0, 1.0])
    h_a = np.diag([0.0, 2.0])
    v = np.diag([0.3, -0.2, 0.5, 0.1])  # kron(S, A) ordering: |0,0>, |0,1>, |1,0>, |1,1>
    m = CollisionalModel(h_s, h_a, v, T_a=1.5, T_m=1.0, density=0.01, coupling=2.0, E_R=1.3)
    p1 = 1.0 / (1.0 + np.exp(2.0 / 1.5))
    expect = np.diag([0.3 * (1 - p1) - 0.2 * p1, 0.5 * (1 - p1) + 0.1 * p1])
    expect = expect * (2 * np.pi) ** 1.5 * 0.01 * 2.0 * 1.3
    np.testing.assert_allclose(np.asarray(m.h_eff()), expect, rtol=1e-13, atol=0)


# --- zeroth law (eq. 13, C11) -----------------------------------------------------------------
@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(2, 6),
    k=st.integers(2, 4),
    degenerate=st.booleans(),
    with_density=st.booleans(),
    T=st.floats(0.3, 3.0),
    E_R=st.floats(0.3, 3.0),
)
@example(seed=2, d=5, k=3, degenerate=True, with_density=True, T=0.7, E_R=1.0)
def test_zeroth_law_gibbs_is_stationary(seed, d, k, degenerate, with_density, T, E_R):
    P = Problem(seed, d, k, degenerate)
    scale = dict(density=0.05, coupling=1.3) if with_density else dict(gamma_tilde=1.0)
    model = P.model(T_a=T, T_m=T, E_R=E_R, **scale)
    g = gibbs(P.h_s, T)
    S = np.asarray(model.superoperator())
    norm = np.linalg.norm(S, 2)
    res = np.linalg.norm(np.asarray(model.lindbladian(jnp.asarray(g))))
    assert res <= 1e-12 * norm
    # and it is the steady state found by the model, where that is unique (gap not tiny)
    ev = np.sort(np.abs(np.linalg.eigvals(S)))
    if ev[1] > 1e-6 * norm:
        ss = np.asarray(model.steady_state())
        assert np.max(np.abs(ss - g)) <= 1e-11 * norm / ev[1]


# --- rate equation and local detailed balance (eq. 11-13) --------------------------------------
@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(2, 6),
    k=st.integers(2, 4),
    T=st.floats(0.3, 3.0),
    T_a=st.floats(0.3, 3.0),
    E_R=st.floats(0.3, 3.0),
)
def test_local_detailed_balance_and_rate_matrix(seed, d, k, T, T_a, E_R):
    P = Problem(seed, d, k, degenerate=False)
    eq = P.model(T_a=T, T_m=T, E_R=E_R, gamma_tilde=0.9)
    R = np.asarray(eq.rate_matrix())
    e = P.lev
    for i in range(d):
        for j in range(d):
            if i != j:
                assert R[i, j] > 0
                lhs, rhs = R[i, j], R[j, i] * np.exp(-(e[i] - e[j]) / T)
                assert abs(lhs - rhs) <= 1e-12 * max(lhs, rhs)
    # out of equilibrium: eq. (12) with explicit sums, and the population block of the
    # superoperator in the energy eigenbasis
    neq = P.model(T_a=T_a, T_m=T, E_R=E_R, gamma_tilde=0.9)
    X = np.kron(P.Q, P.W)
    v4 = (X.conj().T @ P.v @ X).reshape(d, k, d, k)
    p = np.exp(-(P.eps - P.eps.min()) / T_a)
    p /= p.sum()
    R_ref = np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            if i != j:
                for kk in range(k):
                    for ll in range(k):
                        s = (e[i] - e[j] + P.eps[kk] - P.eps[ll]) / E_R
                        R_ref[i, j] += 0.9 * p[ll] * I_ref(E_R / T, s) * abs(v4[i, kk, j, ll]) ** 2
    np.testing.assert_allclose(np.asarray(neq.rate_matrix()), R_ref, rtol=1e-12, atol=0)
    M = np.asarray(neq.population_generator())
    np.testing.assert_allclose(M.sum(axis=0), 0, atol=1e-13 * np.max(R_ref))
    S = np.asarray(neq.superoperator())
    Uq = np.kron(P.Q, P.Q.conj())  # row-major vec of Q X Q^H is kron(Q, conj Q) vec(X)
    S_eig = Uq.conj().T @ S @ Uq
    diag = np.arange(d) * (d + 1)
    np.testing.assert_allclose(S_eig[np.ix_(diag, diag)].real, M, atol=1e-12 * np.max(np.abs(M)))
    np.testing.assert_allclose(np.asarray(neq.energies()), e, atol=1e-13)


def test_degenerate_rate_matrix_raises():
    P = Problem(3, 3, 2, degenerate=True)
    m = P.model(T_a=1.0, T_m=1.0, gamma_tilde=1.0)
    assert m.degenerate
    with pytest.raises(ValueError, match="non-degenerate h_s"):
        m.rate_matrix()
    with pytest.raises(ValueError, match="non-degenerate h_s"):
        m.population_generator()


# --- CPTP structure away from equilibrium -----------------------------------------------------
@SETTINGS
@GIVEN_OUT_OF_EQUILIBRIUM
@example(seed=4, d=4, k=3, degenerate=True, T_a=3.0, T_m=0.4)
def test_trace_hermiticity_complete_positivity(seed, d, k, degenerate, T_a, T_m):
    P = Problem(seed, d, k, degenerate)
    model = P.model(T_a=T_a, T_m=T_m, density=0.03, coupling=0.7)
    assert np.all(np.asarray(model.channel_rates()) >= 0)
    rng = P.rng
    Xm = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    LX = np.asarray(model.lindbladian(jnp.asarray(Xm)))
    LXd = np.asarray(model.lindbladian(jnp.asarray(Xm.conj().T)))
    scale = np.max(np.abs(LX))
    assert abs(np.trace(LX)) <= 1e-12 * scale * d
    assert np.max(np.abs(LXd - LX.conj().T)) <= 1e-12 * scale
    # Choi matrix of the generator: conditionally positive on the complement of the maximally
    # entangled vector (Lindblad form), built from the generator's action on |a><b| only.
    C = np.zeros((d * d, d * d), complex)
    for a in range(d):
        for b in range(d):
            Eab = np.zeros((d, d), complex)
            Eab[a, b] = 1.0
            C += np.kron(Eab, np.asarray(model.lindbladian(jnp.asarray(Eab))))
    omega = np.eye(d).reshape(-1) / np.sqrt(d)
    Pp = np.eye(d * d) - np.outer(omega, omega)
    ev = np.linalg.eigvalsh(Pp @ C @ Pp)
    assert ev.min() >= -1e-12 * np.max(np.abs(ev))
    # Choi matrix of the jump part alone is PSD, and the jump operators rebuild the dissipator
    Ls = np.asarray(model.channel_operators())
    J = sum(np.outer(L.reshape(-1), L.reshape(-1).conj()) for L in Ls)
    assert np.linalg.eigvalsh(J).min() >= -1e-12 * np.max(np.abs(J))
    np.testing.assert_allclose(
        np.asarray(model.dissipator(jnp.asarray(Xm))), ref_dissipator(Ls, Xm), atol=1e-12 * scale
    )


# --- second law along trajectories (eq. 16) ---------------------------------------------------
@settings(max_examples=4, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(2, 4),
    k=st.integers(2, 3),
    degenerate=st.booleans(),
    T=st.floats(0.4, 3.0),
)
@example(seed=5, d=4, k=2, degenerate=True, T=0.8)
def test_second_law_along_trajectory(seed, d, k, degenerate, T):
    P = Problem(seed, d, k, degenerate)
    model = P.model(T_a=T, T_m=T, density=0.05, coupling=1.0)
    g = gibbs(P.h_s, T)
    S = np.asarray(model.superoperator())
    rate = np.linalg.norm(S, 2)
    rho0 = rand_rho(P.rng, d, mix=0.02)
    ts = np.linspace(0.0, 3.0 / rate, 13)
    h = 1e-4 / rate
    ep = model.entropy_production_rate

    def state(t):
        r = (sla.expm(S * t) @ rho0.reshape(-1)).reshape(d, d)
        return 0.5 * (r + r.conj().T)

    D_prev = np.inf
    for t in ts:
        rho = state(t)
        sigma = float(ep(jnp.asarray(rho)))
        assert sigma >= -1e-10
        D = rel_entropy(rho, g)
        assert D <= D_prev + 1e-12
        D_prev = D
        # Spohn: entropy production = -d/dt S(rho || gamma)
        dDdt = (rel_entropy(state(t + h), g) - rel_entropy(state(t - h), g)) / (2 * h)
        assert sigma == pytest.approx(-dDdt, rel=1e-5, abs=1e-8 * rate)


# --- first law per channel (eq. 14-15) --------------------------------------------------------
@SETTINGS
@GIVEN_OUT_OF_EQUILIBRIUM
@example(seed=6, d=4, k=3, degenerate=True, T_a=0.3, T_m=4.0)
def test_first_law_per_channel(seed, d, k, degenerate, T_a, T_m):
    P = Problem(seed, d, k, degenerate)
    model = P.model(T_a=T_a, T_m=T_m, gamma_tilde=1.1)
    rho = rand_rho(P.rng, d)
    f = model.energy_flows(jnp.asarray(rho))
    sys_, anc, mot = (np.asarray(x) for x in f)
    scale = np.max(np.abs(sys_)) + np.max(np.abs(anc)) + np.max(np.abs(mot))
    assert np.max(np.abs(sys_ + anc + mot)) <= 1e-12 * scale
    # totals against the reference channels: system heat (eq. 15), ancilla and motion
    Ls, _, book = P.reference(T_a, T_m, gamma_tilde=1.1)
    q_ref = np.trace(P.h_s @ ref_dissipator(Ls, rho)).real
    a_ref = m_ref = 0.0
    for L, (E, de, _) in zip(Ls, book, strict=True):
        nu = np.trace(L.conj().T @ L @ rho).real
        a_ref += de * nu
        m_ref -= (E + de) * nu
    tot = [float(x) for x in f.totals()]
    assert tot[0] == pytest.approx(q_ref, rel=1e-11, abs=1e-13 * scale)
    assert tot[1] == pytest.approx(a_ref, rel=1e-11, abs=1e-13 * scale)
    assert tot[2] == pytest.approx(m_ref, rel=1e-11, abs=1e-13 * scale)
    assert float(model.heat_current(jnp.asarray(rho))) == pytest.approx(q_ref, rel=1e-11, abs=1e-13)


# --- the spin model of eq. (17)-(19) ------------------------------------------------------------
def spin_collisional(J, omega_s, delta, **kw):
    jz, jp, jm = spin_matrices_qutip(J)
    sm = np.array([[0.0, 1.0], [0.0, 0.0]])  # sigma_-: excited (index 1) -> ground (index 0)
    h_a = np.diag([0.0, omega_s + delta])
    v = np.kron(jp, sm) + np.kron(jm, sm.T)
    return CollisionalModel(omega_s * jz, h_a, v, **kw)


def spin_eq18(J, omega_s, delta, T_a, T_m, gamma_tilde, E_R=1.0):
    """Eq. (18)-(19) with dense QuTiP matrices: jump operators sqrt(Gamma_pm) J_pm, and h_s."""
    jz, jp, jm = spin_matrices_qutip(J)
    omega_a = omega_s + delta
    gp = gamma_tilde * I_ref(E_R / T_m, -delta / E_R) / (1 + np.exp(omega_a / T_a))
    gm = gamma_tilde * I_ref(E_R / T_m, delta / E_R) / (1 + np.exp(-omega_a / T_a))
    return [np.sqrt(gp) * jp, np.sqrt(gm) * jm], omega_s * jz, (gp, gm)


@pytest.mark.parametrize("J", [0.5, 1, 1.5, 2, 2.5, 3, 4, 5])
def test_spin_model_reproduces_eq18(J):
    rng = np.random.default_rng(int(2 * J))
    d = int(round(2 * J)) + 1
    for omega_s, delta, T_a, T_m, E_R in [(1.0, 0.4, 0.8, 1.3, 1.0), (0.7, -0.3, 2.0, 0.5, 1.7)]:
        model = spin_collisional(
            J, omega_s, delta, T_a=T_a, T_m=T_m, E_R=E_R, density=0.01, coupling=1.5
        )
        gt = gamma_tilde_ref(0.01, 1.5, T_m, E_R)
        Ls, H, (gp, gm) = spin_eq18(J, omega_s, delta, T_a, T_m, gt, E_R)
        assert np.all(np.asarray(model.h_eff()) == 0)  # no ancilla-diagonal part in v
        # the channel l=1 -> k=0 with E = +omega_s has s = -delta/E_R and weight Gamma_+
        r = np.asarray(model.channel_rates())
        up = (np.asarray(model.channel_source) == 1) & (np.asarray(model.channel_target) == 0)
        assert np.count_nonzero(up) == 1
        np.testing.assert_allclose(np.asarray(model.channel_bohr)[up], omega_s, rtol=1e-13)
        np.testing.assert_allclose(np.asarray(model.channel_motional())[up], delta, rtol=1e-12)
        np.testing.assert_allclose(r[up], gp, rtol=1e-12)
        np.testing.assert_allclose(np.sort(r), np.sort([gp, gm]), rtol=1e-12)
        for _ in range(3):
            rho = rand_rho(rng, d)
            ref = ref_lindbladian(Ls, H, rho)
            got = np.asarray(model.lindbladian(jnp.asarray(rho)))
            assert np.max(np.abs(got - ref)) <= 1e-12 * np.max(np.abs(ref))


@pytest.mark.parametrize("J", [0.5, 3])
def test_spin_model_equals_spingas(J):
    rng = np.random.default_rng(7)
    d = int(round(2 * J)) + 1
    kw = dict(T_a=1.1, T_m=0.6, gamma_tilde=0.8, E_R=1.2)
    model = spin_collisional(J, 1.0, 0.9, **kw)
    gas = jaxcoll.SpinGas(J, omega_s=1.0, delta=0.9, **kw)
    for _ in range(3):
        rho = jnp.asarray(rand_rho(rng, d))
        a = np.asarray(model.lindbladian(rho))
        b = np.asarray(gas.lindbladian(rho))
        assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(b))


@pytest.mark.parametrize("delta", [-0.5, 0.4, 1.5])
def test_spin_steady_state_is_gibbs_not_repeated_interaction(delta):
    """At T_a = T_m = T the spin relaxes to Gibbs at T for any detuning; a repeated-interaction
    model with detuned ancillas would instead predict Gibbs at omega_s T / omega_a (paper,
    discussion after eq. 21) -- which the scattering model must NOT give."""
    J, omega_s, T = 2, 1.0, 0.9
    model = spin_collisional(J, omega_s, delta, T_a=T, T_m=T, gamma_tilde=1.0)
    jz = spin_matrices_qutip(J)[0]
    ss = np.asarray(model.steady_state())
    np.testing.assert_allclose(ss, gibbs(omega_s * jz, T), atol=1e-12)
    T_ri = omega_s * T / (omega_s + delta)
    assert np.max(np.abs(ss - gibbs(omega_s * jz, T_ri))) > 0.05


# --- worked example: a qutrit in a gas of three-level particles --------------------------------
def test_qutrit_in_three_level_gas():
    """Qutrit levels (0, 1, 2.3), gas-particle levels (0, 0.8, 1.9), excitation-exchange coupling
    v = sum_{i<j, k<l} g (|j><i| x |k><l| + h.c.), in a rotated system basis."""
    lev = np.array([0.0, 1.0, 2.3])
    eps = np.array([0.0, 0.8, 1.9])
    rng = np.random.default_rng(11)
    Q = rand_unitary(rng, 3)
    h_s = Q @ np.diag(lev) @ Q.conj().T
    g = {(0, 1): 0.5, (0, 2): 0.3, (1, 2): 0.7}  # system pair (i<j) -> strength
    v_eig = np.zeros((9, 9))
    for (i, j), gs in g.items():
        for kk, ll in [(0, 1), (0, 2), (1, 2)]:
            up = np.zeros((3, 3))
            up[j, i] = 1.0
            dn = np.zeros((3, 3))
            dn[kk, ll] = 1.0
            v_eig += gs * (np.kron(up, dn) + np.kron(up, dn).T)
    X = np.kron(Q, np.eye(3))
    v = X @ v_eig @ X.conj().T
    T_a, T_m, E_R, gt = 1.4, 0.6, 1.0, 2.0
    model = CollisionalModel(h_s, np.diag(eps), v, T_a=T_a, T_m=T_m, E_R=E_R, gamma_tilde=gt)
    p = np.exp(-eps / T_a) / np.exp(-eps / T_a).sum()
    # rates written out: R_{ji} (i -> j, j > i, system up / ancilla down) and the reverse
    R_ref = np.zeros((3, 3))
    for (i, j), gs in g.items():
        for kk, ll in [(0, 1), (0, 2), (1, 2)]:
            # system i -> j while ancilla l -> k (down), internal energy change E + eps_k - eps_l
            s = (lev[j] - lev[i] + eps[kk] - eps[ll]) / E_R
            R_ref[j, i] += gt * p[ll] * I_ref(E_R / T_m, s) * gs**2
            R_ref[i, j] += gt * p[kk] * I_ref(E_R / T_m, -s) * gs**2
    np.testing.assert_allclose(np.asarray(model.rate_matrix()), R_ref, rtol=1e-12)
    M_ref = R_ref - np.diag(R_ref.sum(axis=0))
    P_ref = sla.null_space(M_ref)[:, 0]
    P_ref = P_ref / P_ref.sum()
    ss_eig = Q.conj().T @ np.asarray(model.steady_state()) @ Q
    np.testing.assert_allclose(np.diag(ss_eig).real, P_ref, atol=1e-12)
    np.testing.assert_allclose(ss_eig - np.diag(np.diag(ss_eig)), 0, atol=1e-12)
    # hot ancillas / cold motion here: the qutrit is hotter than the motion, not Gibbs at T_m
    assert P_ref[2] / P_ref[0] > np.exp(-lev[2] / T_m) * 1.5
    # equilibrium gas: Gibbs
    eqm = CollisionalModel(h_s, np.diag(eps), v, T_a=0.9, T_m=0.9, gamma_tilde=gt)
    np.testing.assert_allclose(np.asarray(eqm.steady_state()), gibbs(h_s, 0.9), atol=1e-12)


# --- errors, jit, grad --------------------------------------------------------------------------
def _good():
    h_s = np.diag([0.0, 1.0])
    h_a = np.diag([0.0, 1.2])
    sm = np.array([[0.0, 1.0], [0.0, 0.0]])
    v = np.kron(sm.T, sm) + np.kron(sm, sm.T)
    return dict(h_s=h_s, h_a=h_a, v=v, T_a=1.0, T_m=1.0, gamma_tilde=1.0)


def _build(**over):
    kw = _good() | over
    return CollisionalModel(kw.pop("h_s"), kw.pop("h_a"), kw.pop("v"), **kw)


@pytest.mark.parametrize(
    "over, name",
    [
        (dict(h_s=np.array([[0.0, 1.0], [0.0, 1.0]])), "h_s"),
        (dict(h_s=np.zeros((2, 3))), "h_s"),
        (dict(h_s=np.array([[np.nan, 0], [0, 1.0]])), "h_s"),
        (dict(h_a=np.array([[0.0, 1j], [1j, 1.0]])), "h_a"),
        (dict(h_a=np.zeros(3)), "h_a"),
        (dict(v=np.zeros((3, 3))), "v"),
        (dict(v=np.triu(np.ones((4, 4)))), "v"),
        (dict(T_a=-1.0), "T_a"),
        (dict(T_a=0.0), "T_a"),
        (dict(T_m=float("nan")), "T_m"),
        (dict(E_R=0.0), "E_R"),
        (dict(gamma_tilde=-1.0), "gamma_tilde"),
        (dict(density=0.1, coupling=1.0), "gamma_tilde"),
        (dict(gamma_tilde=None), "gamma_tilde"),
    ],
)
def test_bad_inputs_name_the_argument(over, name):
    with pytest.raises(ValueError, match=name):
        _build(**over)


def test_bad_rho_names_rho():
    with pytest.raises(ValueError, match="rho"):
        _build().lindbladian(jnp.zeros((3, 3)))


def test_jit_vmap_and_grad_through_temperatures():
    P = Problem(5, 3, 2)
    rho = jnp.asarray(rand_rho(P.rng, 3))

    def heat(T_a, T_m):
        m = P.model(T_a=T_a, T_m=T_m, density=0.05, coupling=0.9)
        return m.heat_current(rho)

    def energy(T_a):
        m = P.model(T_a=T_a, T_m=0.8, density=0.05, coupling=0.9)
        return jnp.real(jnp.trace(m.h_s @ m.steady_state()))

    T0 = 1.3
    assert float(jax.jit(heat)(T0, 0.8)) == pytest.approx(float(heat(T0, 0.8)), rel=1e-14)
    Ts = jnp.array([0.7, 1.3, 2.0])
    np.testing.assert_allclose(
        np.asarray(jax.vmap(heat, in_axes=(0, None))(Ts, 0.8)),
        [float(heat(t, 0.8)) for t in Ts],
        rtol=1e-13,
    )
    hstep = 1e-5
    for f, x in [
        (lambda t: heat(t, 0.8), T0),
        (lambda t: heat(1.3, t), 0.8),
        (energy, T0),
    ]:
        g = float(jax.jit(jax.grad(f))(x))
        fd = (float(f(x + hstep)) - float(f(x - hstep))) / (2 * hstep)
        assert g == pytest.approx(fd, rel=1e-6, abs=1e-10)
