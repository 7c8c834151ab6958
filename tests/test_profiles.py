"""Interaction profiles: Born rates of eq. (12) for any isotropic g(r), and a drifting gas.

References: SciPy integrations of eq. (12) in physical units (hbar = 1, with freely chosen m,
R, V0, n) over the incoming momentum and the scattering angle, with the Born amplitude
f = -(m / 2 pi) int d^3x V(x) e^{-i(q - p).x}; SciPy radial quadrature of the Fourier
transforms; the closed form I(alpha, s) of eq. (20); null spaces of the generators.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from _references import (
    birth_death_generator,
    ergotropy_ref,
    profile_rates_ref,
    square_well_fourier,
)
from hypothesis import given, settings, strategies as st
from scipy import integrate, special

import jaxcoll

finite = dict(allow_nan=False, allow_infinity=False)
NAMES = ["gaussian", "exponential", "yukawa", "square_well"]


# --- independent references ----------------------------------------------------------------------


def _radial_g(name):
    """The radial shapes g(r), r in units of R."""
    return {
        "gaussian": lambda r: math.exp(-r * r / 2),
        "exponential": lambda r: math.exp(-r),
        "yukawa": lambda r: math.exp(-r) / r,
        "square_well": lambda r: 1.0,
    }[name]


def _fourier_closed(name, k):
    """3-D Fourier transforms of the shapes above, from the textbook formulas."""
    if name == "gaussian":
        return (2 * math.pi) ** 1.5 * math.exp(-k * k / 2)
    if name == "exponential":
        return 8 * math.pi / (1 + k * k) ** 2
    if name == "yukawa":
        return 4 * math.pi / (1 + k * k)
    if k == 0:
        return 4 * math.pi / 3
    return 4 * math.pi * special.spherical_jn(1, k) / k


def _fourier_quad(name, k):
    """4 pi int r^2 g(r) sin(kr)/(kr) dr by SciPy (sine-weighted QUADPACK for k > 0)."""
    g = _radial_g(name)
    top = 1.0 if name == "square_well" else 90.0  # g(90) < 1e-39
    kw = dict(epsabs=1e-15, epsrel=1e-13, limit=400)
    if k < 1:  # r^2 g(r) sin(kr)/(kr), with the Yukawa's 1/r cancelled
        f = lambda r: (r if name == "yukawa" else r * r * g(r)) * np.sinc(k * r / np.pi)  # noqa: E731
        if name == "yukawa":
            f = lambda r: r * math.exp(-r) * np.sinc(k * r / np.pi)  # noqa: E731
        return 4 * math.pi * integrate.quad(f, 0, top, **kw)[0]
    # sine-weighted QUADPACK: r^2 g(r)/(kr) times sin(kr)
    f = lambda r: (math.exp(-r) if name == "yukawa" else r * g(r)) / k  # noqa: E731
    return 4 * math.pi * integrate.quad(f, 0, top, weight="sin", wvar=k, **kw)[0]


def _born_rate(name, m, R, V0, n, T, dE, u=(0.0, 0.0, 0.0)):
    """Eq. (12) for one channel, |v| = 1, p(eps_l) = 1, hbar = 1, by SciPy.

    R = n int d^3p mu(p) |q|/m int dOmega_q |f(q, p)|^2, |q|^2 = p^2 - 2 m dE, with a
    Maxwellian at T drifting with velocity u. d^3p = p^2 dp dcos(theta_p) dphi_p with u along
    the polar axis, and dOmega_q about p, where |q - p| depends only on the angle between q and
    p: a 3-D integral over |p| (or |q| above threshold), cos(theta_p) and that angle.
    """
    U = float(np.linalg.norm(u))
    beta = 1.0 / T
    eps = 1e-11

    def mu(p, c):
        d2 = p * p - 2 * p * m * U * c + (m * U) ** 2
        return (beta / (2 * math.pi * m)) ** 1.5 * math.exp(-beta * d2 / (2 * m))

    def amp2(kappa):  # first Born amplitude -(m / 2 pi) V0 int d^3x g(|x|/R) e^{-i kappa.x}
        return (m * V0 * R**3 / (2 * math.pi) * _fourier_closed(name, kappa * R)) ** 2

    def solid(p, q):
        f = lambda c: amp2(math.sqrt(max(p * p + q * q - 2 * p * q * c, 0.0)))  # noqa: E731
        return 2 * math.pi * integrate.quad(f, -1, 1, epsabs=0, epsrel=eps, limit=200)[0]

    def directions(p):
        f = lambda c: mu(p, c)  # noqa: E731
        return 2 * math.pi * integrate.quad(f, -1, 1, epsabs=0, epsrel=eps, limit=200)[0]

    if dE > 0:  # over |q| (p dp = q dq): no threshold square root

        def outer(q):
            p = math.sqrt(q * q + 2 * m * dE)
            return p * q * directions(p) * (q / m) * solid(p, q)
    else:

        def outer(p):
            q = math.sqrt(p * p - 2 * m * dE)
            return p * p * directions(p) * (q / m) * solid(p, q)

    edges = np.linspace(0.0, m * U + 16 * math.sqrt(m * T), 9)
    parts = [
        integrate.quad(outer, a, b, epsabs=0, epsrel=eps, limit=200)[0]
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    return n * sum(parts)


# physical units of the references: m, R, V0 / E_R, n R^3 chosen freely
M_, R_, C_, NR3_ = 1.3, 0.7, 0.4, 0.01
E_R_ = 1.0 / (2 * M_ * R_**2)


def _ours(profile, T_over_ER, s, drift=0.0):
    T = T_over_ER * E_R_
    gt = float(jaxcoll.gamma_tilde_from(NR3_, C_, T, E_R_))
    return gt * float(jaxcoll.profile_integral(profile, E_R_ / T, s, drift=drift))


# --- the Fourier transforms ----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_fourier_transforms_against_radial_quadrature(name):
    prof = jaxcoll._profiles._BY_NAME[name]()
    assert prof.name == name
    for k in [0.0, 1e-7, 0.3, 0.999, 1.001, 2.0, 7.5, 20.0]:
        ref = _fourier_quad(name, k)
        got = float(prof.fourier(k))
        assert got == pytest.approx(ref, rel=1e-11, abs=1e-13 * abs(_fourier_quad(name, 0.0)))
    # ln G^2, also far in the tail where G^2 underflows for the Gaussian
    k = jnp.array([0.0, 0.5, 3.0, 40.0])
    np.testing.assert_allclose(
        np.asarray(prof.log_fourier_sq(k)),
        [2 * math.log(abs(_fourier_closed(name, float(x)))) for x in k]
        if name != "gaussian"
        else 3 * math.log(2 * math.pi) - np.asarray(k) ** 2,
        rtol=1e-13,
        atol=1e-12,
    )


def test_radial_and_fourier_profiles_reproduce_the_closed_forms():
    ks = jnp.linspace(0.0, 20.0, 41)
    cases = [
        (jaxcoll.RadialProfile(lambda r: jnp.ones_like(r), r_max=1.0, n=64), jaxcoll.SquareWell()),
        (jaxcoll.RadialProfile(lambda r: jnp.exp(-r * r / 2), r_max=12.0), jaxcoll.Gaussian()),
        (jaxcoll.RadialProfile(lambda r: jnp.exp(-r), r_max=45.0, n=1024), jaxcoll.Exponential()),
    ]
    for radial, closed in cases:
        np.testing.assert_allclose(
            np.asarray(radial.fourier(ks)), np.asarray(closed.fourier(ks)), rtol=1e-11, atol=1e-13
        )
    fp = jaxcoll.FourierProfile(lambda k: 8 * jnp.pi / (1 + k * k) ** 2, name="exp-by-hand")
    np.testing.assert_allclose(
        np.asarray(fp.fourier(ks)), np.asarray(jaxcoll.Exponential().fourier(ks)), rtol=1e-15
    )
    # their rates follow: user profiles through the whole quadrature
    a, s = jnp.array([0.4, 1.0, 3.0]), jnp.array([-2.0, 0.3, 1.5])
    for radial, closed in [cases[0], (fp, jaxcoll.Exponential())]:
        np.testing.assert_allclose(
            np.asarray(jaxcoll.profile_integral(radial, a, s, log=True)),
            np.asarray(jaxcoll.profile_integral(closed, a, s, log=True)),
            rtol=0,
            atol=1e-10,
        )


# --- rates against SciPy -------------------------------------------------------------------------

POINTS = [(1.0, 0.0), (0.5, 1.5), (2.0, -3.0), (0.3, -0.7), (4.0, 2.5)]  # (T_m / E_R, dE / E_R)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("T_over_ER, s", POINTS)
def test_rate_against_scipy_integration_of_eq12(name, T_over_ER, s):
    T = T_over_ER * E_R_
    ref = _born_rate(name, M_, R_, C_ * E_R_, NR3_ / R_**3, T, s * E_R_)
    assert _ours(name, T_over_ER, s) == pytest.approx(ref, rel=1e-8)


def test_gaussian_quadrature_equals_closed_form():
    """The Gaussian by the general quadrature = Gamma~ I(alpha, s) of eq. (20), deep tails too."""
    alpha = np.geomspace(0.02, 50.0, 15)
    s = np.concatenate([-np.geomspace(1e-9, 300, 14), [0.0], np.geomspace(1e-9, 300, 14)])
    A, S = np.meshgrid(alpha, s, indexing="ij")
    quad = np.asarray(jaxcoll.profile_integral(jaxcoll.Gaussian(), A, S, log=True))
    closed = np.asarray(jaxcoll.log_scattering_integral(A, S))
    assert np.all(np.isfinite(quad))
    assert np.max(np.abs(quad - closed)) < 1e-10  # relative error of I below 1e-10
    mid = np.abs(closed) < 600  # where I itself is representable
    I_q = np.asarray(jaxcoll.profile_integral("gaussian", A[mid], S[mid]))
    np.testing.assert_allclose(
        I_q, np.asarray(jaxcoll.scattering_integral(A[mid], S[mid])), rtol=1e-10
    )


# --- detailed balance and Gibbs stationarity -----------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None)
@given(alpha=st.floats(0.03, 30.0, **finite), s=st.floats(-40.0, 40.0, **finite))
def test_detailed_balance_every_profile(name, alpha, s):
    """T_a = T_m: R(s)/R(-s) = exp(-s E_R/T) (eq. 13), micro-reversibility of the Born amplitude."""
    ls = np.asarray(jaxcoll.profile_integral(name, alpha, jnp.array([s, -s]), log=True))
    assert np.all(np.isfinite(ls))
    assert ls[0] - ls[1] == pytest.approx(-alpha * s, rel=1e-10, abs=1e-10)
    if abs(ls).max() < 600:
        r = np.exp(ls)
        assert r[0] / r[1] == pytest.approx(math.exp(-alpha * s), rel=1e-10)


def _random_model(rng, profile, T, density=None):
    d, k = 3, 2
    h_s = np.diag(np.sort(rng.uniform(-1.5, 1.5, d)))
    h_a = np.diag([0.0, rng.uniform(0.2, 2.0)])
    v = rng.normal(size=(d * k, d * k)) + 1j * rng.normal(size=(d * k, d * k))
    v = (v + v.conj().T) / 2
    scale = dict(gamma_tilde=1.0) if density is None else dict(density=density, coupling=0.5)
    return jaxcoll.CollisionalModel(h_s, h_a, v, T_a=T, T_m=T, profile=profile, **scale), np.diag(
        h_s
    )


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), T=st.floats(0.2, 5.0, **finite))
def test_collisional_model_gibbs_stationary_every_profile(name, seed, T):
    rng = np.random.default_rng(seed)
    model, e = _random_model(rng, name, T)
    # local detailed balance of the full rate matrix (eq. 13)
    R = np.asarray(model.rate_matrix())
    i, j = np.triu_indices(3, 1)
    np.testing.assert_allclose(R[i, j] / R[j, i], np.exp(-(e[i] - e[j]) / T), rtol=1e-10)
    # steady state from the null space of the dense superoperator, against Gibbs at T
    S = np.asarray(model.superoperator())
    null = scipy.linalg.null_space(S, rcond=1e-10)
    assert null.shape[1] == 1
    rho = null[:, 0].reshape(3, 3)
    rho = rho / np.trace(rho)
    gibbs = np.diag(np.exp(-(e - e.min()) / T))
    gibbs = gibbs / np.trace(gibbs)
    np.testing.assert_allclose(rho, gibbs, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10, deadline=None)
@given(
    omega_s=st.floats(0.1, 3.0, **finite),
    delta=st.floats(-3.0, 6.0, **finite),
    T=st.floats(0.2, 5.0, **finite),
    E_R=st.floats(0.3, 3.0, **finite),
)
def test_spin_gas_gibbs_stationary_every_profile(name, omega_s, delta, T, E_R):
    gas = jaxcoll.SpinGas(
        2, omega_s=omega_s, delta=delta, T_a=T, T_m=T, E_R=E_R, gamma_tilde=1.0, profile=name
    )
    lgp, lgm = gas.log_rates()
    assert float(lgp - lgm) == pytest.approx(-omega_s / T, rel=1e-10, abs=1e-10)
    lower, diag, upper = (np.asarray(x) for x in gas.population_generator())
    Mgen = np.diag(diag) + np.diag(lower[1:], -1) + np.diag(upper[:-1], 1)
    Mgen = Mgen / np.abs(Mgen).max()
    null = scipy.linalg.null_space(Mgen, rcond=1e-12)
    assert null.shape[1] == 1
    P = null[:, 0] / null[:, 0].sum()
    m = np.arange(5) - 2.0
    gibbs = np.exp(-omega_s * (m - m.min()) / T)
    np.testing.assert_allclose(P, gibbs / gibbs.sum(), atol=1e-10)


def test_effective_temperature_of_a_drifting_gas_is_that_of_its_stationary_state():
    """A drift breaks eq. (9), so eq. (21) no longer applies; the ladder still relaxes to a
    Gibbs state, at T = omega_s / ln(Gamma_-/Gamma_+) with the rates by SciPy quadrature."""
    omega_s, delta, T_a, T_m, w = 1.0, 0.7, 2.0, 0.8, 0.4
    gas = jaxcoll.SpinGas(2, omega_s=omega_s, delta=delta, T_a=T_a, T_m=T_m, gamma_tilde=1.5,
                          profile="square_well", drift=w)  # fmt: skip
    gp, gm = profile_rates_ref(square_well_fourier, omega_s, delta, T_a, T_m, gamma_tilde=1.5,
                               drift=w)  # fmt: skip
    T = omega_s / math.log(gm / gp)
    assert float(gas.effective_temperature()) == pytest.approx(T, rel=1e-9)
    eq21 = omega_s * T_a * T_m / ((omega_s + delta) * T_m - delta * T_a)
    assert abs(T - eq21) > 0.05 * abs(eq21)  # the drift matters at these numbers
    null = scipy.linalg.null_space(birth_death_generator(2, gp, gm) / gm, rcond=1e-12)
    assert null.shape[1] == 1
    P = null[:, 0] / null[:, 0].sum()  # the stationary populations
    gibbs = np.exp(-omega_s * np.arange(5) / T)
    np.testing.assert_allclose(P, gibbs / gibbs.sum(), atol=1e-9)
    # at rest (any profile) it is eq. (21)
    rest = jaxcoll.SpinGas(2, omega_s=omega_s, delta=delta, T_a=T_a, T_m=T_m, gamma_tilde=1.5,
                           profile="square_well")  # fmt: skip
    assert float(rest.effective_temperature()) == pytest.approx(eq21, rel=1e-12)


# --- models use the profile ----------------------------------------------------------------------


def test_default_profile_keeps_the_closed_form():
    kw = dict(omega_s=1.0, delta=0.7, T_a=1.3, T_m=0.6, density=0.01, coupling=1.0)
    base = jaxcoll.SpinGas(3, **kw)
    for other in (
        jaxcoll.SpinGas(3, profile="gaussian", **kw),
        jaxcoll.SpinGas(3, profile=jaxcoll.Gaussian(), **kw),
    ):
        assert [float(x) for x in other.rates()] == [float(x) for x in base.rates()]
    # with a drift of 0 the Gaussian goes through the general quadrature: same numbers
    q = jaxcoll.SpinGas(3, drift=0.0, **kw)
    np.testing.assert_allclose(np.asarray(q.rates()), np.asarray(base.rates()), rtol=1e-12)


def test_spin_gas_rates_against_scipy():
    """Gamma_pm = (eq. 12 rate at dE = -+delta) x ancilla population, for the square well."""
    T = 0.8 * E_R_
    omega_s, delta = 0.5 * E_R_, 1.2 * E_R_
    gas = jaxcoll.SpinGas(
        1,
        omega_s=omega_s,
        delta=delta,
        T_a=T,
        T_m=T,
        E_R=E_R_,
        density=NR3_,
        coupling=C_,
        profile=jaxcoll.SquareWell(),
    )
    p_exc = 1.0 / (1.0 + math.exp((omega_s + delta) / T))
    up = p_exc * _born_rate("square_well", M_, R_, C_ * E_R_, NR3_ / R_**3, T, -delta)
    down = (1 - p_exc) * _born_rate("square_well", M_, R_, C_ * E_R_, NR3_ / R_**3, T, delta)
    gp, gm = gas.rates()
    assert float(gp) == pytest.approx(up, rel=1e-8)
    assert float(gm) == pytest.approx(down, rel=1e-8)


def test_collisional_model_spin_matches_spin_gas_with_profile():
    omega_s, delta, T_a, T_m = 1.0, 0.8, 2.0, 0.7
    gas = jaxcoll.SpinGas(
        1,
        omega_s=omega_s,
        delta=delta,
        T_a=T_a,
        T_m=T_m,
        gamma_tilde=1.0,
        profile="exponential",
        drift=0.6,
    )
    m = np.array([-1.0, 0.0, 1.0])
    c = np.sqrt(2.0) * np.ones(2)
    jp = np.diag(c, -1)
    sm = np.array([[0.0, 1.0], [0.0, 0.0]])
    v = np.kron(jp, sm) + np.kron(jp.T, sm.T)
    model = jaxcoll.CollisionalModel(
        omega_s * np.diag(m),
        np.diag([0.0, omega_s + delta]),
        v,
        T_a=T_a,
        T_m=T_m,
        gamma_tilde=1.0,
        profile="exponential",
        drift=0.6,
    )
    R = np.asarray(model.rate_matrix())
    gp, gm = (float(x) for x in gas.rates())
    assert R[1, 0] / 2 == pytest.approx(gp, rel=1e-12)
    assert R[0, 1] / 2 == pytest.approx(gm, rel=1e-12)


@pytest.mark.parametrize("name", ["exponential", "square_well", "yukawa"])
def test_forward_shift_uses_the_volume_integral(name):
    rng = np.random.default_rng(3)
    gauss, _ = _random_model(rng, None, 1.0, density=0.02)
    rng = np.random.default_rng(3)
    other, _ = _random_model(rng, name, 1.0, density=0.02)
    ratio = _fourier_quad(name, 0.0) / (2 * math.pi) ** 1.5
    np.testing.assert_allclose(
        np.asarray(other.h_eff()), ratio * np.asarray(gauss.h_eff()), rtol=1e-12, atol=1e-15
    )


# --- drifting Maxwellian -------------------------------------------------------------------------

DRIFTS = [
    (1.0, 0.0, 0.7),
    (0.5, 1.5, 2.0),
    (2.0, -3.0, 0.3),
    (0.3, 4.0, 3.0),
    (1.0, -2.0, 5.0),
    (0.2, -0.4, 8.0),
]


@pytest.mark.parametrize("name", ["gaussian", "exponential", "square_well"])
@pytest.mark.parametrize("T_over_ER, s, w", DRIFTS)
def test_drift_against_scipy_3d_integration(name, T_over_ER, s, w):
    rng = np.random.default_rng(int(100 * w))
    direction = rng.normal(size=3)
    u = w / (M_ * R_) * direction / np.linalg.norm(direction)  # w = m |u| R / hbar
    ref = _born_rate(name, M_, R_, C_ * E_R_, NR3_ / R_**3, T_over_ER * E_R_, s * E_R_, u=u)
    assert _ours(name, T_over_ER, s, drift=w) == pytest.approx(ref, rel=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_zero_drift_is_the_gas_at_rest_and_drift_breaks_detailed_balance(name):
    a = jnp.array([0.3, 0.3, 1.0, 1.0])
    s = jnp.array([-2.0, 2.0, 1.0, -1.0])
    rest = np.asarray(jaxcoll.profile_integral(name, a, s, log=True))
    tiny = np.asarray(jaxcoll.profile_integral(name, a, s, drift=jnp.full(4, 1e-9), log=True))
    np.testing.assert_allclose(tiny, rest, rtol=0, atol=1e-13)
    moving = np.asarray(jaxcoll.profile_integral(name, a, s, drift=jnp.full(4, 1.5), log=True))
    # a streaming gas is not an equilibrium reservoir: R(s)/R(-s) != exp(-alpha s)
    assert abs((moving[0] - moving[1]) - 0.3 * 4.0) > 0.05
    assert abs((moving[2] - moving[3]) + 1.0 * 2.0) > 0.05


def test_drift_vector_counts_through_its_length():
    kw = dict(omega_s=1.0, delta=0.5, T_a=1.0, T_m=1.0, gamma_tilde=1.0, profile="yukawa")
    gas_v = jaxcoll.SpinGas(1, drift=[0.6, 0.0, 0.8], **kw)
    gas_s = jaxcoll.SpinGas(1, drift=1.0, **kw)
    np.testing.assert_allclose(np.asarray(gas_v.rates()), np.asarray(gas_s.rates()), rtol=1e-14)


# --- transformations -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_gradients_against_finite_differences(name):
    f = lambda x: jaxcoll.profile_integral(name, x[0], x[1], drift=x[2], log=True)  # noqa: E731
    for x0 in ([0.7, -1.3, 0.4], [2.0, 0.8, 1.7], [1.0, 0.0, 0.0]):
        x = jnp.array(x0)
        g = np.asarray(jax.grad(f)(x))
        assert np.all(np.isfinite(g))
        h = 1e-5
        fd = [(float(f(x.at[i].add(h))) - float(f(x.at[i].add(-h)))) / (2 * h) for i in range(2)]
        if x0[2] > 0:
            fd.append((float(f(x.at[2].add(h))) - float(f(x.at[2].add(-h)))) / (2 * h))
        else:  # the rate is even in the drift speed: zero slope at rest
            fd.append(0.0)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7)


def test_spin_gas_with_profile_under_jit_vmap_grad():
    def gamma_down(T_m, drift):
        gas = jaxcoll.SpinGas(
            2,
            omega_s=1.0,
            delta=1.5,
            T_a=1.0,
            T_m=T_m,
            density=0.01,
            coupling=1.0,
            profile="square_well",
            drift=drift,
        )
        return gas.rates()[1]

    T = jnp.linspace(0.3, 3.0, 4)
    batched = jax.jit(jax.vmap(gamma_down, in_axes=(0, None)))(T, 0.5)
    np.testing.assert_allclose(
        np.asarray(batched), [float(gamma_down(float(t), 0.5)) for t in T], rtol=1e-12
    )
    g = jax.grad(gamma_down, argnums=(0, 1))(1.2, 0.5)
    h = 1e-5
    fd_T = (float(gamma_down(1.2 + h, 0.5)) - float(gamma_down(1.2 - h, 0.5))) / (2 * h)
    fd_w = (float(gamma_down(1.2, 0.5 + h)) - float(gamma_down(1.2, 0.5 - h))) / (2 * h)
    assert float(g[0]) == pytest.approx(fd_T, rel=1e-6)
    assert float(g[1]) == pytest.approx(fd_w, rel=1e-6)


def test_ergotropy_evolution_with_a_profile():
    """An inverting gas charges the spin with every profile; evolve against SciPy expm."""
    kw = dict(omega_s=1.0, delta=2.0, T_a=4.0, T_m=1.0, gamma_tilde=1.0)
    ts = jnp.array([0.0, 5.0, 400.0])
    for name in ("exponential", "square_well"):
        gas = jaxcoll.SpinGas(2, profile=name, **kw)
        assert float(gas.effective_temperature()) < 0
        res = jaxcoll.evolve(gas, jaxcoll.ground_populations(5), ts, rtol=1e-10, atol=1e-12)
        lower, diag, upper = (np.asarray(x) for x in gas.population_generator())
        Mgen = np.diag(diag) + np.diag(lower[1:], -1) + np.diag(upper[:-1], 1)
        P0 = np.eye(5)[0]
        ref = np.stack([scipy.linalg.expm(Mgen * float(t)) @ P0 for t in ts])
        np.testing.assert_allclose(np.asarray(res.populations), ref, atol=1e-8)
        assert float(res.ergotropy[-1]) > 0


# --- bad input -----------------------------------------------------------------------------------


def test_bad_inputs_name_the_argument():
    kw = dict(omega_s=1.0, delta=0.0, T_a=1.0, T_m=1.0, gamma_tilde=1.0)
    with pytest.raises(ValueError, match="profile"):
        jaxcoll.SpinGas(1, profile="lennard_jones", **kw)
    with pytest.raises(TypeError, match="profile"):
        jaxcoll.SpinGas(1, profile=3.0, **kw)
    with pytest.raises(TypeError, match="profile"):
        jaxcoll.profile_integral(lambda k: k, 1.0, 0.0)
    for bad in (-1.0, float("nan"), [1.0, 2.0], np.ones((2, 3))):
        with pytest.raises(ValueError, match="drift"):
            jaxcoll.SpinGas(1, drift=bad, **kw)
    with pytest.raises(ValueError, match="drift"):
        jaxcoll.CollisionalModel(
            np.diag([0.0, 1.0]),
            np.diag([0.0, 1.0]),
            np.eye(4),
            T_a=1.0,
            T_m=1.0,
            gamma_tilde=1.0,
            drift=-0.1,
        )
    with pytest.raises(ValueError, match="drift"):
        jaxcoll.profile_integral("gaussian", 1.0, 0.0, drift=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        jaxcoll.profile_integral("gaussian", 0.0, 0.0)
    with pytest.raises(ValueError, match="n"):
        jaxcoll.profile_integral("gaussian", 1.0, 0.0, n=3)
    with pytest.raises(ValueError, match="r_max"):
        jaxcoll.RadialProfile(jnp.exp, r_max=0.0)
    with pytest.raises(ValueError, match="n"):
        jaxcoll.RadialProfile(jnp.exp, r_max=1.0, n=100)
    with pytest.raises(TypeError, match="fourier_fn"):
        jaxcoll.FourierProfile(3.0)
    nan_profile = jaxcoll.FourierProfile(lambda k: jnp.sqrt(k - 1.0))  # NaN below k = 1
    with pytest.raises(ValueError, match="profile"):
        jaxcoll.profile_integral(nan_profile, 1.0, 0.0)


# --- the pipelines take the interaction shape ----------------------------------------------------
# References: I_g by SciPy quadrature of eq. (12) reduced to one momentum integral (the drift's
# angular average by a second quadrature), the rate matrix of eq. (11) and SciPy's expm.


def _square_well_rates(D, A, alpha, drift=0.0):
    """Gamma_pm / Gamma~ of eq. (19) with I_g of the square well, in Fig. 2's parameters
    (E_R = T_a = 1: T_m = 1/alpha, delta = D/alpha, omega_a = A)."""
    T_m, delta = 1 / alpha, D / alpha
    return profile_rates_ref(
        square_well_fourier, A - delta, delta, 1.0, T_m, gamma_tilde=1.0, drift=drift
    )


def _populations(J, gp, gm, ts):
    """P(t) from the ground state by expm of the dense rate matrix of eq. (11)."""
    L = birth_death_generator(J, gp, gm)
    return np.stack([scipy.linalg.expm(t * L)[:, 0] for t in ts])


@pytest.mark.parametrize(
    "drift, solver", [(None, None), (0.4, None), (None, "rodas5p")], ids=["rest", "drift", "rodas"]
)
def test_ergotropy_curve_with_profile_against_scipy_expm(drift, solver):
    J, D, A, alpha = 3, 1.0, -0.5, 0.7
    ts = np.array([0.0, 2.0, 5.0, 12.0])
    tol = dict(rtol=1e-10, atol=1e-12) if solver else {}
    got = jaxcoll.ergotropy_curve(
        J, D, A, alpha, ts, profile="square_well", drift=drift, solver=solver, **tol
    )
    m = np.arange(2 * J + 1) - J
    P = _populations(J, *_square_well_rates(D, A, alpha, drift or 0.0), ts)
    ref = ergotropy_ref(P, m)
    assert ref[-1] > 1.0  # charged: the comparison is not between zeros
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-8, atol=1e-10)
    # the Gaussian default is a different gas: the profile is really used
    assert abs(float(jaxcoll.ergotropy_curve(J, D, A, alpha, ts)[-1]) - ref[-1]) > 0.1


def _physical_ref(J, t, T_a, T_m, delta, drift, omega_s=1.0, density=0.01, coupling=2.0):
    """(W(t), E(t)) of the square-well spin gas: rates of eq. (19), Gamma~ of eq. (D4)."""
    gt = 0.5 * (4 * math.pi / T_m) ** 1.5 * density * coupling**2
    rates = profile_rates_ref(
        square_well_fourier, omega_s, delta, T_a, T_m, gamma_tilde=gt, drift=drift
    )
    m = np.arange(2 * J + 1) - J
    P = _populations(J, *rates, [t])[0]
    return ergotropy_ref(P, omega_s * m), P @ (omega_s * m)


def test_functionals_with_profile_and_drift_against_scipy_expm():
    J, t, T_a, drift = 2, 20.0, 5.0, 0.4
    p = {"T_m": 0.3, "delta": 1.0}
    kw = dict(J=J, T_a=T_a, density=0.01, coupling=2.0, profile="square_well", drift=drift)
    W, E = _physical_ref(J, t, T_a, p["T_m"], p["delta"], drift)
    assert W > 1.0
    assert float(jaxcoll.ergotropy_at(p, t, **kw)) == pytest.approx(W, rel=1e-8)
    assert float(jaxcoll.final_energy(p, t, **kw)) == pytest.approx(E, rel=1e-8)
    # the drift as a vector counts through its length; spin_model builds the same gas
    traj = jaxcoll.energy_trajectory(p, [t], **(kw | {"drift": [0.0, 0.24, 0.32]}))
    assert float(traj[0]) == pytest.approx(E, rel=1e-8)
    gas = jaxcoll.spin_model(p, **kw)
    assert gas.profile == jaxcoll.SquareWell() and float(gas.drift) == drift
    # gradients against central differences of the reference (the gas at rest: the drift's
    # derivatives are those of profile_integral, tested above)
    kw.pop("drift")
    h = 1e-5
    fd = {
        k: (
            _physical_ref(J, t, T_a, **(p | {k: p[k] + h}), drift=0.0)[0]
            - _physical_ref(J, t, T_a, **(p | {k: p[k] - h}), drift=0.0)[0]
        )
        / (2 * h)
        for k in p
    }
    for mode in ("scaling", "reverse"):
        value, grad = jaxcoll.value_and_grad(jaxcoll.ergotropy_at, mode=mode)(p, t, **kw)
        assert float(value) == pytest.approx(_physical_ref(J, t, T_a, **p, drift=0.0)[0], rel=1e-8)
        for k in p:
            assert float(grad[k]) == pytest.approx(fd[k], rel=1e-5), (mode, k)


def test_optimize_ergotropy_takes_the_interaction_shape():
    """The optimiser's W(t_f) is that of the drifting square-well gas at the reported point."""
    J, t, T_a, delta, drift = 2, 20.0, 5.0, 1.0, 0.4
    res = jaxcoll.optimize_ergotropy(
        J, t, T_a=T_a, T_m=(0.2, 0.5), delta=delta, density=0.01, coupling=2.0,
        profile="square_well", drift=drift, steps=0, scan_points=2, polish_iterations=0,
    )  # fmt: skip
    assert res.T_m == 0.2  # the colder grid point charges more
    W, _ = _physical_ref(J, t, T_a, res.T_m, delta, drift)
    assert res.ergotropy == pytest.approx(W, rel=1e-8)
