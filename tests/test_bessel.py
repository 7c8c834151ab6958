"""K_0 and K_1 kernels against mpmath at 50 digits: values, derivatives, the x = 0 limits."""

import functools

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from jaxcoll._bessel import k0e, k1e, xk0, xk1, xk1e

FUNCTIONS = {"k0e": k0e, "k1e": k1e, "xk0": xk0, "xk1": xk1, "xk1e": xk1e}


def _grid():
    rng = np.random.default_rng(20250627)
    return np.concatenate(
        [
            10.0 ** rng.uniform(-12, 2.8, 120),  # up to x ~ 630, where x K_nu is still normal
            rng.uniform(1.5, 2.5, 40),  # around the switch between series and Chebyshev
            [1e-300, 1e-30, 2.0, np.nextafter(2.0, 3.0), 2.5, 700.0],
        ]
    )


X = _grid()


@functools.cache
def _reference():
    """Values and first derivatives of the five functions from mpmath's K_0, K_1 at 50 digits.

    K_0' = -K_1 and K_1' = -K_0 - K_1/x.
    """
    with mp.workdps(50):
        vals = {name: [] for name in FUNCTIONS}
        ders = {name: [] for name in FUNCTIONS}
        for xf in X:
            x = mp.mpf(float(xf))
            K0, K1, ex = mp.besselk(0, x), mp.besselk(1, x), mp.exp(x)
            vals["k0e"].append(ex * K0)
            ders["k0e"].append(ex * (K0 - K1))
            vals["k1e"].append(ex * K1)
            ders["k1e"].append(ex * (K1 - K0 - K1 / x))
            vals["xk0"].append(x * K0)
            ders["xk0"].append(K0 - x * K1)
            vals["xk1"].append(x * K1)
            ders["xk1"].append(-x * K0)
            vals["xk1e"].append(x * ex * K1)
            ders["xk1e"].append(x * ex * (K1 - K0))
    as_array = lambda d: {k: np.array([float(v) for v in vs]) for k, vs in d.items()}
    return as_array(vals), as_array(ders)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_values_against_mpmath(name):
    ref = _reference()[0][name]
    value = np.asarray(jax.jit(FUNCTIONS[name])(jnp.asarray(X)))
    assert np.all(np.isfinite(value))
    assert np.max(np.abs(value / ref - 1.0)) < 3e-15


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_derivatives_against_mpmath(name):
    vals, ders = _reference()
    ref = ders[name]
    finite = np.isfinite(ref)  # e^x K_1' ~ -1/x^2 overflows at x = 1e-300
    deriv = np.asarray(jax.jit(jax.vmap(jax.grad(FUNCTIONS[name])))(jnp.asarray(X)))
    # Relative to the function's own scale: the derivative of x K_0 has a zero near x = 0.6.
    scale = np.maximum(np.abs(ref), np.abs(vals[name]))
    assert np.all(np.abs(deriv[finite] - ref[finite]) <= 1e-14 * scale[finite])
    assert np.all(deriv[~finite] == ref[~finite])


def test_second_derivative_against_mpmath():
    xs = np.array([1e-3, 0.5, 1.9, 2.1, 10.0, 300.0])
    d2 = np.asarray(jax.jit(jax.vmap(jax.grad(jax.grad(k1e))))(jnp.asarray(xs)))
    ref = []
    with mp.workdps(50):
        for xf in xs:
            x = mp.mpf(float(xf))
            K0, K1 = mp.besselk(0, x), mp.besselk(1, x)
            # (e^x K_1)'' from K_0' = -K_1 and K_1' = -K_0 - K_1/x
            ref.append(float(mp.exp(x) * (2 * K1 - 2 * K0 - 2 * K1 / x + K0 / x + 2 * K1 / x**2)))
    assert np.max(np.abs(d2 / np.array(ref) - 1.0)) < 1e-13


def test_limits_at_zero():
    @jax.jit
    def at_zero(x):
        return (xk1(x), xk0(x), xk1e(x), jax.grad(xk1)(x), jax.grad(xk1e)(x), jax.grad(xk0)(x))

    v_xk1, v_xk0, v_xk1e, d_xk1, d_xk1e, d_xk0 = (float(v) for v in at_zero(0.0))
    assert (v_xk1, v_xk0, v_xk1e) == (1.0, 0.0, 1.0)
    # (x K_1)' = -x K_0 -> 0 and (x e^x K_1)' -> 1 at x = 0: finite, no NaN from the log branch.
    assert (d_xk1, d_xk1e) == (0.0, 1.0)
    # (x K_0)' = K_0 - x K_1 diverges like -ln x: +inf, not NaN.
    assert d_xk0 == np.inf


def test_large_argument_underflow_is_graceful():
    x = jnp.asarray([740.0, 800.0, 1e6, 1e300])
    v_xk1, v_k1e, v_k0e = (np.asarray(v) for v in jax.jit(lambda x: (xk1(x), k1e(x), k0e(x)))(x))
    assert np.all(v_xk1 >= 0) and v_xk1[-1] == 0.0
    assert np.all(np.isfinite(v_k1e))
    # e^x K_0(x) ~ sqrt(pi/(2x)) (1 - 1/(8x) + ...)
    np.testing.assert_allclose(v_k0e[2], np.sqrt(np.pi / 2e6) * (1 - 1 / 8e6), rtol=1e-12)


def test_broadcast_vmap_and_dtype():
    x = jnp.linspace(0.1, 5.0, 12).reshape(3, 4)
    all_five = lambda x: tuple(f(x) for f in FUNCTIONS.values())
    direct = jax.jit(all_five)(x)
    mapped = jax.jit(jax.vmap(all_five))(x)
    for a, b in zip(direct, mapped, strict=True):
        assert a.shape == (3, 4)
        np.testing.assert_allclose(a, b, rtol=1e-15)
    assert k1e(jnp.asarray(3)).dtype == jnp.float64  # integers are converted explicitly
