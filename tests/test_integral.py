"""The scattering integral of eq. (20) against mpmath at 50 digits (closed form and direct
quadrature of eq. (20)), its gradients, its symmetry, and the quadrature engine."""

import functools

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jaxcoll import log_scattering_integral, scattering_integral
from jaxcoll._integral import scattering_integral_quad

LOG_TINY = np.log(1e-290)


def _ref_log_closed(alpha, s):
    """ln I from the Bessel form I = |s| e^{-alpha s/2} K_1(|s| k/2)/k, k = sqrt(alpha(alpha+4))."""
    a, s = mp.mpf(alpha), mp.mpf(s)
    if s == 0:
        return mp.log(2 / (a * (a + 4)))
    k = mp.sqrt(a * (a + 4))
    return mp.log(abs(s) / k) - a * s / 2 + mp.log(mp.besselk(1, abs(s) * k / 2))


def _ref_direct(alpha, s):
    """Eq. (20) itself by mpmath.quad, with break points around the saddle of the integrand."""
    a, s = mp.mpf(alpha), mp.mpf(s)
    z0 = max(s, 0)
    integrand = lambda z: mp.exp(s - (2 + a) * z) * mp.sinh(2 * mp.sqrt(z) * mp.sqrt(z - s))
    z_saddle = s / 2 + abs(s) / 2 * mp.cosh(mp.atanh(2 / (2 + a)))
    points = [z0 + (z_saddle - z0) * c for c in (0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3)]
    points += [z_saddle + 1 / a, z_saddle + 10 / a, mp.inf]
    return mp.quad(integrand, sorted(set(points)))


def _points():
    rng = np.random.default_rng(27062025)
    n = 300
    alpha = 10.0 ** rng.uniform(-3, 3, n)
    s = rng.uniform(-500, 500, n)
    s[:30] = rng.uniform(-5, 5, 30)
    s[30:50] = rng.uniform(-1e-8, 1e-8, 20)
    s[50:60] = 0.0
    s[60:64] = [1e-300, -1e-300, 5e-324, -5e-324]
    s[64:90] = rng.uniform(300, 500, 26)  # underflow region (with the large alphas)
    alpha[64:90] = 10.0 ** rng.uniform(1, 3, 26)
    return alpha, s


ALPHA, S = _points()


@functools.cache
def _reference():
    with mp.workdps(50):
        return np.array([float(_ref_log_closed(a, s)) for a, s in zip(ALPHA, S, strict=True)])


def _log_error(value, ref):
    return np.abs(np.asarray(value) - ref) / np.maximum(1.0, np.abs(ref))


def test_log_against_mpmath_everywhere():
    ref = _reference()
    assert np.any(ref < LOG_TINY)  # the box includes the underflow region
    value = log_scattering_integral(ALPHA, S)
    assert np.all(np.isfinite(value))
    assert _log_error(value, ref).max() <= 1e-12


def test_value_against_mpmath_where_representable():
    ref = _reference()
    value = np.asarray(scattering_integral(ALPHA, S))
    ok = ref >= LOG_TINY
    assert ok.sum() > 150
    assert np.max(np.abs(value[ok] / np.exp(ref[ok]) - 1.0)) <= 1e-12
    # Where I underflows the result is a graceful 0 (or a denormal), never NaN.
    assert np.all(np.isfinite(value)) and np.all(value >= 0)


def test_closed_form_matches_direct_quadrature_of_eq20():
    """The closed form (and so the reference above) against eq. (20) integrated as written."""
    cases = [(0.3, 2.5), (1.0, -3.0), (5.0, 0.7), (0.05, -20.0), (2.0, 1e-6), (0.01, 30.0)]
    cases += [(100.0, -50.0), (1e-3, -400.0), (7.0, 0.0)]
    with mp.workdps(30):
        direct = np.array([float(mp.log(_ref_direct(a, s))) for a, s in cases])
    alpha, s = np.array(cases).T
    np.testing.assert_allclose(log_scattering_integral(alpha, s), direct, rtol=0, atol=1e-13)
    np.testing.assert_allclose(scattering_integral(alpha, s), np.exp(direct), rtol=1e-13)


def test_special_values():
    alpha = np.array([1e-3, 0.5, 2.0, 1e3])
    np.testing.assert_allclose(
        scattering_integral(alpha, 0.0), 2 / (alpha * (alpha + 4)), rtol=1e-15
    )
    # tiny |s|: continuous through s = 0
    np.testing.assert_allclose(
        scattering_integral(alpha, 1e-300), 2 / (alpha * (alpha + 4)), rtol=1e-15
    )


def test_symmetry_detailed_balance():
    """I(alpha, -s) = e^{alpha s} I(alpha, s)."""
    lhs = np.asarray(log_scattering_integral(ALPHA, -S))
    rhs = np.asarray(log_scattering_integral(ALPHA, S)) + ALPHA * S
    assert np.all(np.abs(lhs - rhs) <= 1e-12 * np.maximum(1.0, np.abs(lhs)))
    # both sides and e^{alpha s} representable
    small = (np.abs(ALPHA * S) < 600) & (np.minimum(lhs, rhs - ALPHA * S) > LOG_TINY)
    np.testing.assert_allclose(
        scattering_integral(ALPHA[small], -S[small]),
        np.exp(ALPHA[small] * S[small]) * scattering_integral(ALPHA[small], S[small]),
        rtol=1e-13,
    )


_log_and_grad = jax.jit(jax.value_and_grad(log_scattering_integral, argnums=(0, 1)))


@settings(max_examples=60, deadline=None)
@given(
    log_alpha=st.floats(-3.0, 3.0),
    s=st.one_of(st.floats(-500.0, 500.0), st.floats(-1e-6, 1e-6)),
)
def test_properties(log_alpha, s):
    """Detailed balance, positivity, and I decreasing in alpha (the integrand is)."""
    alpha = 10.0**log_alpha
    value, (d_alpha, _) = _log_and_grad(alpha, s)
    mirrored, _ = _log_and_grad(alpha, -s)
    assert np.isfinite(value) and np.isfinite(d_alpha)
    assert abs(float(mirrored - value) - alpha * s) <= 1e-12 * max(1.0, abs(float(value)))
    assert d_alpha < 0


GRAD_CASES = [
    (0.3, 2.5),
    (1.0, -3.0),
    (2.0, 1e-9),
    (2.0, -1e-9),
    (1e-3, 400.0),
    (1e-3, -400.0),
    (800.0, -300.0),
    (300.0, 200.0),
    (0.02, 1.5),
    (40.0, -0.01),
]


def test_log_gradients_against_mpmath():
    with mp.workdps(50):
        ref = np.array(
            [
                [
                    float(mp.diff(lambda t, s=s: _ref_log_closed(t, mp.mpf(s)), mp.mpf(a))),
                    float(mp.diff(lambda t, a=a: _ref_log_closed(mp.mpf(a), t), mp.mpf(s))),
                ]
                for a, s in GRAD_CASES
            ]
        )
    alpha, s = (jnp.asarray(v) for v in np.array(GRAD_CASES).T)
    grad = jax.jit(jax.vmap(jax.grad(log_scattering_integral, argnums=(0, 1))))(alpha, s)
    grad = np.stack([np.asarray(g) for g in grad], axis=1)
    # natural scales: d/dalpha ~ |s| + 1/alpha, d/ds ~ alpha + k
    scale = np.stack([np.abs(s) + 1 / alpha, alpha + jnp.sqrt(alpha * (alpha + 4))], axis=1)
    assert np.all(np.abs(grad - ref) <= 1e-12 * (np.abs(ref) + scale))


def test_gradients_at_and_near_zero():
    for alpha in (1e-3, 0.7, 2.0, 50.0):
        value_at_0 = 2 / (alpha * (alpha + 4))
        for s in (0.0, 1e-300, -1e-300, 1e-15, -1e-15):
            ga, gs = jax.grad(scattering_integral, argnums=(0, 1))(alpha, s)
            # I(alpha, 0) = 2/(alpha(alpha+4)), dI/ds = -alpha I/2 (finite at s = 0)
            np.testing.assert_allclose(gs, -alpha * value_at_0 / 2, rtol=1e-12)
            np.testing.assert_allclose(
                ga, -2 * (2 * alpha + 4) / (alpha * (alpha + 4)) ** 2, rtol=1e-12
            )


def test_gradient_central_differences():
    alpha, s = 0.8, -1.7
    ga, gs = jax.grad(scattering_integral, argnums=(0, 1))(alpha, s)
    h = 1.5e-8
    fd_a = (scattering_integral(alpha + h, s) - scattering_integral(alpha - h, s)) / (2 * h)
    fd_s = (scattering_integral(alpha, s + h) - scattering_integral(alpha, s - h)) / (2 * h)
    np.testing.assert_allclose(ga, fd_a, rtol=1e-7)
    np.testing.assert_allclose(gs, fd_s, rtol=1e-7)


def test_second_derivative_near_zero():
    """d^2 I/ds^2 is finite for s != 0 and diverges like (k^2/4) I(alpha, 0) ln|s| as s -> 0."""
    alpha, ss = 1.0, (1e-2, 1e-4, 1e-6)
    d2 = jax.jit(jax.grad(jax.grad(scattering_integral, argnums=1), argnums=1))
    values = np.array([float(d2(alpha, s)) for s in ss])
    with mp.workdps(50):
        closed = lambda s: mp.exp(_ref_log_closed(alpha, s))
        ref = np.array([float(mp.diff(closed, mp.mpf(s), 2)) for s in ss])
    np.testing.assert_allclose(values, ref, rtol=1e-10)
    assert values[0] > values[1] > values[2]  # -> -inf logarithmically


QUAD_IDX = np.r_[0:12, 30:36, 50:52, 60:62, 90:150]


def test_quadrature_against_closed_form():
    alpha, s = ALPHA[QUAD_IDX], S[QUAD_IDX]
    ref = _reference()[QUAD_IDX]
    value = scattering_integral_quad(alpha, s, log=True)
    assert _log_error(value, ref).max() <= 1e-12
    ok = ref >= LOG_TINY
    direct = np.asarray(scattering_integral_quad(alpha[ok], s[ok]))
    assert np.max(np.abs(direct / np.exp(ref[ok]) - 1.0)) <= 1e-12


def test_quadrature_gradients():
    alpha, s = (jnp.asarray(v) for v in np.array(GRAD_CASES).T)
    g_quad = jax.jit(
        jax.vmap(jax.grad(lambda a, s: scattering_integral_quad(a, s, log=True), (0, 1)))
    )
    g_closed = jax.vmap(jax.grad(log_scattering_integral, argnums=(0, 1)))
    for q, c in zip(g_quad(alpha, s), g_closed(alpha, s), strict=True):
        np.testing.assert_allclose(q, c, rtol=1e-9)


def test_broadcast_jit_vmap():
    alpha = jnp.asarray([[0.5], [1.0], [3.0]])
    s = jnp.asarray([-2.0, 0.0, 0.5, 4.0])
    out = scattering_integral(alpha, s)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(jax.jit(scattering_integral)(alpha, s), out, rtol=1e-15)
    mapped = jax.vmap(scattering_integral, in_axes=(None, 0))(alpha[:, 0], s[:3])
    np.testing.assert_allclose(mapped, out[:, :3].T, rtol=1e-15)
    assert scattering_integral(2, 1).dtype == jnp.float64
    assert log_scattering_integral(1.0, [0.0, 1.0]).shape == (2,)


@pytest.mark.parametrize(
    "fn", [scattering_integral, log_scattering_integral, scattering_integral_quad]
)
@pytest.mark.parametrize("alpha", [0.0, -1.0, np.nan, np.inf, np.array([1.0, -2.0])])
def test_bad_alpha(fn, alpha):
    with pytest.raises(ValueError, match="alpha"):
        fn(alpha, 1.0)


@pytest.mark.parametrize(
    "fn", [scattering_integral, log_scattering_integral, scattering_integral_quad]
)
@pytest.mark.parametrize("s", [np.nan, np.inf, -np.inf])
def test_bad_s(fn, s):
    with pytest.raises(ValueError, match="s must"):
        fn(1.0, s)


def test_bad_input_under_jit_and_types():
    with pytest.raises(Exception, match="alpha"):
        jax.block_until_ready(jax.jit(scattering_integral)(-1.0, 1.0))
    with pytest.raises(TypeError, match="alpha"):
        scattering_integral(1.0 + 2.0j, 1.0)
    with pytest.raises(ValueError, match="n must"):
        scattering_integral_quad(1.0, 1.0, n=2)
