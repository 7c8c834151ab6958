"""Spin-gas rates (eq. 19), the rate prefactor (D4), effective temperature (21), validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import integrate

import jaxcoll

finite = dict(allow_nan=False, allow_infinity=False)


def _born_rate_3d(m, R, V0, n, T_m, dE):
    """Eq. (12) for one channel with the Born amplitude (D2), |v| = 1, p(e_l) = 1, hbar = 1.

    R = n int d^3p mu(p) |q|/m int dOmega |f(q, p)|^2 with |q|^2 = p^2 - 2 m dE, done as a 2-D
    SciPy integral over |p| and the cosine of the scattering angle (the azimuth gives 2 pi).
    """
    E_R = 1.0 / (2 * m * R**2)
    p_R = 1.0 / R
    beta = 1.0 / T_m
    amp2 = (math.pi / 2) * R**2 * (V0 / E_R) ** 2
    p_min = math.sqrt(max(0.0, 2 * m * dE))
    p_th = math.sqrt(m * T_m)

    def mu(p):
        return (beta / (2 * math.pi * m)) ** 1.5 * math.exp(-beta * p * p / (2 * m))

    def integrand(u, p):
        q = math.sqrt(max(p * p - 2 * m * dE, 0.0))
        dq2 = q * q + p * p - 2 * q * p * u
        return 4 * math.pi * p * p * mu(p) * (q / m) * 2 * math.pi * amp2 * math.exp(-dq2 / p_R**2)

    p_max = p_min + 40 * p_th + 40 * p_R
    val, err = integrate.dblquad(integrand, p_min, p_max, -1.0, 1.0, epsabs=0.0, epsrel=1e-12)
    return n * val


@pytest.mark.parametrize(
    "T_m, dE_over_ER",
    [(1.0, 0.0), (0.5, 1.5), (2.0, -3.0), (0.3, -0.7), (4.0, 2.5)],
)
def test_gamma_tilde_times_I_equals_3d_born_rate(T_m, dE_over_ER):
    # physical units: m, R, V0, n chosen freely; E_R = 1/(2 m R^2)
    m, R, V0_over_ER, nR3 = 1.3, 0.7, 0.4, 0.01
    E_R = 1.0 / (2 * m * R**2)
    T = T_m * E_R
    dE = dE_over_ER * E_R
    ref = _born_rate_3d(m, R, V0_over_ER * E_R, nR3 / R**3, T, dE)
    gt = jaxcoll.gamma_tilde_from(nR3, V0_over_ER, T, E_R)
    ours = gt * jaxcoll.scattering_integral(E_R / T, dE_over_ER)
    assert float(ours) == pytest.approx(ref, rel=1e-8)


def test_gamma_tilde_thermal_wavelength_form():
    # Gamma~ = n lambda_th^3 V0^2 / (2 E_R) with lambda_th = sqrt(2 pi / (m T_m)), hbar = 1
    m, R, V0, n, T_m = 2.1, 0.4, 0.37, 0.9, 0.8
    E_R = 1.0 / (2 * m * R**2)
    lam = math.sqrt(2 * math.pi / (m * T_m))
    ref = n * lam**3 * V0**2 / (2 * E_R)
    got = jaxcoll.gamma_tilde_from(n * R**3, V0 / E_R, T_m, E_R)
    assert float(got) == pytest.approx(ref, rel=1e-14)


@settings(max_examples=60, deadline=None)
@given(
    omega_s=st.floats(0.05, 5.0, **finite),
    delta=st.floats(-5.0, 10.0, **finite),
    T=st.floats(0.05, 10.0, **finite),
    E_R=st.floats(0.1, 10.0, **finite),
)
def test_local_detailed_balance_equal_temperatures(omega_s, delta, T, E_R):
    """T_a = T_m = T: Gamma_+/Gamma_- = exp(-omega_s/T) for any detuning (eq. 13)."""
    gas = jaxcoll.SpinGas(2, omega_s=omega_s, delta=delta, T_a=T, T_m=T, E_R=E_R, gamma_tilde=1.0)
    lgp, lgm = gas.log_rates()
    expected = -omega_s / T
    assert float(lgp - lgm) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    gp, gm = gas.rates()
    if float(gm) > 1e-280 and float(gp) > 1e-280:
        assert float(gp / gm) == pytest.approx(math.exp(expected), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    omega_s=st.floats(0.05, 5.0, **finite),
    delta=st.floats(-5.0, 10.0, **finite),
    T_a=st.floats(0.05, 10.0, **finite),
    T_m=st.floats(0.05, 10.0, **finite),
)
def test_detailed_balance_at_effective_temperature(omega_s, delta, T_a, T_m):
    """Eq. (21): Gamma_+/Gamma_- = exp(-omega_s / T_eff), with T_eff of either sign."""
    gas = jaxcoll.SpinGas(1, omega_s=omega_s, delta=delta, T_a=T_a, T_m=T_m, gamma_tilde=1.0)
    omega_a = omega_s + delta
    den = omega_a * T_m - delta * T_a
    lgp, lgm = gas.log_rates()
    # closed form of omega_s / T_eff from eq. (21)
    inv = den / (T_a * T_m)
    assert float(lgp - lgm) == pytest.approx(-inv, rel=1e-12, abs=1e-12)
    T_eff = float(gas.effective_temperature())
    if abs(den) > 1e-12:
        assert T_eff == pytest.approx(omega_s * T_a * T_m / den, rel=1e-13)
        # negative temperature exactly when condition (22) holds (for delta > -omega_s)
        if omega_a > 0:
            assert (T_eff < 0) == (T_m * omega_a < delta * T_a)


def test_effective_temperature_infinite_at_border():
    # omega_a T_m = delta T_a  ->  equal rates, infinite temperature
    gas = jaxcoll.SpinGas(1, omega_s=1.0, delta=1.0, T_a=2.0, T_m=1.0, gamma_tilde=1.0)
    assert np.isinf(float(gas.effective_temperature()))
    gp, gm = gas.rates()
    assert float(gp) == pytest.approx(float(gm), rel=1e-12)


def test_spin_rates_match_spin_gas_and_fermi_factors():
    D, A, alpha = 4.0, 1.0, 1.0
    gp, gm = jaxcoll.spin_rates(D, A, alpha)
    # Fermi factors 1/(1 + e^{+-A}) and I(alpha, -+ D/alpha), the latter from its closed form
    from scipy.special import k1e

    k = math.sqrt(alpha * (alpha + 4))

    def closed_form(s):
        x = abs(s) * k / 2
        return abs(s) * math.exp(-alpha * s / 2 - x) * k1e(x) / k

    assert float(gp) == pytest.approx(closed_form(-D / alpha) / (1 + math.exp(A)), rel=1e-13)
    assert float(gm) == pytest.approx(closed_form(D / alpha) / (1 + math.exp(-A)), rel=1e-13)
    # SpinGas with T_m = E_R / alpha, delta = D T_m, T_a = omega_a / A
    T_m = 1.0 / alpha
    delta = D * T_m
    omega_s = 0.7
    gas = jaxcoll.SpinGas(
        3, omega_s=omega_s, delta=delta, T_a=(omega_s + delta) / A, T_m=T_m, gamma_tilde=2.5
    )
    Gp, Gm = gas.rates()
    assert float(Gp) == pytest.approx(2.5 * float(gp), rel=1e-14)
    assert float(Gm) == pytest.approx(2.5 * float(gm), rel=1e-14)


def test_rates_from_density_and_coupling_follow_T_m():
    kw = dict(omega_s=1.0, delta=0.5, T_a=1.0)
    g1 = jaxcoll.SpinGas(1, T_m=1.0, density=0.01, coupling=2.0, **kw)
    g2 = jaxcoll.SpinGas(1, T_m=4.0, density=0.01, coupling=2.0, **kw)
    # Gamma~ ~ T_m^{-3/2}
    assert float(g1.rate_scale() / g2.rate_scale()) == pytest.approx(8.0, rel=1e-14)
    assert float(g1.rate_scale()) == pytest.approx(0.5 * (4 * math.pi) ** 1.5 * 0.01 * 4.0)


def test_rates_grad_matches_finite_differences():
    def f(x):
        T_a, T_m, delta = x
        gas = jaxcoll.SpinGas(
            2, omega_s=1.0, delta=delta, T_a=T_a, T_m=T_m, density=0.01, coupling=1.0
        )
        gp, gm = gas.rates()
        return gp / (gp + gm) + gp

    x = jnp.array([1.3, 0.7, 2.2])
    g = jax.grad(f)(x)
    h = 1e-6
    fd = [(f(x.at[i].add(h)) - f(x.at[i].add(-h))) / (2 * h) for i in range(3)]
    np.testing.assert_allclose(np.asarray(g), np.asarray(fd), rtol=1e-7)
    assert np.all(np.isfinite(np.asarray(jax.grad(f)(jnp.array([1.0, 1.0, 0.0])))))


def test_constructor_under_jit_and_vmap():
    def rate_plus(T_m):
        gas = jaxcoll.SpinGas(1, omega_s=1.0, delta=2.0, T_a=1.0, T_m=T_m, gamma_tilde=1.0)
        return gas.rates()[0]

    T = jnp.linspace(0.2, 3.0, 5)
    v = jax.jit(jax.vmap(rate_plus))(T)
    ref = np.array([float(rate_plus(float(t))) for t in T])
    np.testing.assert_allclose(np.asarray(v), ref, rtol=1e-14)
    # a traced bad value is caught at run time, not silently turned into NaN
    with pytest.raises(Exception, match="T_m"):
        jax.jit(rate_plus)(-1.0).block_until_ready()


@pytest.mark.parametrize("J", [0, -1, 0.3, 1.25, float("nan"), float("inf")])
def test_bad_J(J):
    with pytest.raises(ValueError, match="J"):
        jaxcoll.SpinGas(J, omega_s=1.0, delta=0.0, T_a=1.0, T_m=1.0, gamma_tilde=1.0)


@pytest.mark.parametrize("J", ["2", None, True])
def test_J_wrong_type(J):
    with pytest.raises(TypeError, match="J"):
        jaxcoll.SpinGas(J, omega_s=1.0, delta=0.0, T_a=1.0, T_m=1.0, gamma_tilde=1.0)


@pytest.mark.parametrize("name", ["T_m", "T_a", "E_R", "gamma_tilde"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_positive_parameters(name, value):
    kw = dict(omega_s=1.0, delta=0.0, T_a=1.0, T_m=1.0, E_R=1.0, gamma_tilde=1.0)
    kw[name] = value
    with pytest.raises(ValueError, match=name):
        jaxcoll.SpinGas(1, **kw)


@pytest.mark.parametrize("name", ["omega_s", "delta", "density", "coupling"])
def test_non_finite_parameters(name):
    kw = dict(omega_s=1.0, delta=0.0, T_a=1.0, T_m=1.0, density=0.01, coupling=1.0)
    kw[name] = float("nan")
    with pytest.raises(ValueError, match=name):
        jaxcoll.SpinGas(1, **kw)


def test_rate_scale_exactly_one():
    kw = dict(omega_s=1.0, delta=0.0, T_a=1.0, T_m=1.0)
    with pytest.raises(ValueError, match="gamma_tilde"):
        jaxcoll.SpinGas(1, **kw)
    with pytest.raises(ValueError, match="gamma_tilde"):
        jaxcoll.SpinGas(1, gamma_tilde=1.0, density=0.1, coupling=1.0, **kw)
    with pytest.raises(ValueError, match="coupling"):
        jaxcoll.SpinGas(1, density=0.1, **kw)
    with pytest.raises(ValueError, match="density"):
        jaxcoll.SpinGas(1, coupling=0.1, **kw)


def test_spin_rates_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        jaxcoll.spin_rates(1.0, 1.0, 0.0)
    with pytest.raises(TypeError, match="D"):
        jaxcoll.spin_rates(1.0 + 2.0j, 1.0, 1.0)
