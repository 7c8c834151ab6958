"""`SolverOptions`: one options object for `evolve`, `ergotropy_curve`, the functionals and
`optimize_ergotropy`; keywords override it; the old `method=` still works, with a warning.
References: SciPy's `expm` of the birth-death generator of eq. (11)."""

import warnings

import diffrax
import jax
import numpy as np
import pytest
import scipy.linalg as sla
from _references import birth_death_generator, ergotropy_ref

import jaxcoll
from jaxcoll import SolverOptions, SpinGas, ergotropy_at, ergotropy_curve, evolve, spin_rates

MODEL = dict(omega_s=1.0, delta=2.0, T_a=1.0, T_m=0.5, gamma_tilde=1.0)
PARAMS = {"T_a": 2.0, "T_m": 0.3, "delta": 1.0}
GAS = dict(density=0.01, coupling=1.0)


def _reference_populations(model, p0, t):
    gp, gm = (float(r) for r in model.rates())
    return sla.expm(birth_death_generator(model.J, gp, gm) * t) @ p0


def test_options_object_and_keywords_give_the_same_settings():
    model = SpinGas(3, **MODEL)
    p0 = np.eye(7)[0]
    ts = np.linspace(0.0, 2.0, 5)
    opts = SolverOptions(rtol=1e-10, atol=1e-12, norm="rms", tridiagonal="lapack")
    a = evolve(model, p0, ts, options=opts).populations
    np.testing.assert_allclose(a[-1], _reference_populations(model, p0, 2.0), atol=1e-9)
    b = evolve(model, p0, ts, rtol=1e-10, atol=1e-12, norm="rms", tridiagonal="lapack")
    np.testing.assert_array_equal(a, b.populations)
    # a keyword overrides the field of `options`: two steps cannot reach t = 2, enough can
    with pytest.raises(jaxcoll.EvolveError, match="max_steps=2"):
        evolve(model, p0, ts, options=SolverOptions(max_steps=2))
    ok = evolve(model, p0, ts, options=SolverOptions(max_steps=2), max_steps=10_000)
    np.testing.assert_allclose(
        ok.populations[-1], _reference_populations(model, p0, 2.0), atol=1e-7
    )


def test_options_are_hashable_and_static_under_jit():
    opts = SolverOptions(rtol=1e-9, mode="forward")
    assert hash(opts) == hash(SolverOptions(rtol=1e-9, mode="forward"))
    assert jax.tree_util.tree_leaves(opts) == []  # every field static: nothing for jit to trace

    @jax.jit
    def w(T_m):
        return ergotropy_at({**PARAMS, "T_m": T_m}, 20.0, J=3, options=opts, **GAS)

    gp, gm = (float(r) for r in SpinGas(3, omega_s=1.0, **PARAMS, **GAS).rates())
    pop = sla.expm(birth_death_generator(3, gp, gm) * 20.0)[:, 0]
    np.testing.assert_allclose(float(w(0.3)), ergotropy_ref(pop, np.arange(7) - 3), atol=1e-9)


def test_method_is_deprecated_and_means_the_tridiagonal_algorithm():
    model = SpinGas(3, **MODEL)
    p0 = np.eye(7)[0]
    ts = np.linspace(0.0, 2.0, 5)
    with pytest.warns(DeprecationWarning, match="tridiagonal='cyclic'"):
        old = evolve(model, p0, ts, method="cyclic").populations
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = evolve(model, p0, ts, tridiagonal="cyclic").populations
    np.testing.assert_array_equal(old, new)
    np.testing.assert_allclose(new[-1], _reference_populations(model, p0, 2.0), atol=1e-7)
    # the functionals' method="exponential" was the integrator: now solver="exponential"
    with pytest.warns(DeprecationWarning, match="solver='exponential'"):
        w_old = ergotropy_at(PARAMS, 20.0, J=3, method="exponential", **GAS)
    w_new = ergotropy_at(PARAMS, 20.0, J=3, solver="exponential", **GAS)
    assert float(w_old) == float(w_new)
    with pytest.warns(DeprecationWarning):
        c_old = ergotropy_curve(3, 4.0, 1.0, 1.0, [1.0, 2.0], method="cyclic", rtol=1e-10)
    gp, gm = (float(r) for r in spin_rates(4.0, 1.0, 1.0))
    ref = [
        ergotropy_ref(sla.expm(birth_death_generator(3, gp, gm) * t)[:, 0], np.arange(7) - 3)
        for t in (1.0, 2.0)
    ]
    np.testing.assert_allclose(c_old, ref, atol=1e-8)


def test_bad_options_name_the_setting():
    with pytest.raises(ValueError, match="tridiagonal"):
        SolverOptions(tridiagonal="thomas")
    with pytest.raises(ValueError, match="mode"):
        SolverOptions(mode="adjoint")
    with pytest.raises(ValueError, match="rtol"):
        SolverOptions(rtol=-1.0)
    with pytest.raises(ValueError, match="max_steps"):
        SolverOptions(max_steps=0)
    with pytest.raises(ValueError, match="dtype"):
        SolverOptions(dtype="foo")
    with pytest.raises(ValueError, match="dtype"):
        SolverOptions(dtype=np.int32)
    with pytest.raises(TypeError, match="progress"):
        SolverOptions(progress="yes")
    with pytest.raises(TypeError, match="solver"):
        SolverOptions(solver=diffrax.Tsit5())  # an explicit integrator, but not a Rosenbrock
    with pytest.raises(TypeError, match="options"):
        evolve(SpinGas(1, **MODEL), np.eye(3)[0], [1.0], options={"rtol": 1e-6})
    with pytest.raises(TypeError, match="tolerance"):
        ergotropy_at(PARAMS, 1.0, J=3, tolerance=1e-6, **GAS)
    with pytest.raises(ValueError, match="solver='exponential'"):
        evolve(SpinGas(1, **MODEL), np.eye(3)[0], [1.0], solver="exponential")
    with pytest.raises(ValueError, match="method"):
        ergotropy_at(PARAMS, 1.0, J=3, method="x", **GAS)
