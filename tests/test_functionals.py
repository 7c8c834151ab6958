"""Trajectory functionals: values against SciPy's expm, gradients against finite differences.

The reference dynamics is written here from scratch: the tridiagonal birth-death generator of
eq. (11) for the spin of eq. (18), exponentiated densely (SciPy for values, `jax.scipy` for an
independent autodiff path), with the ergotropy of eq. (23) by sorting.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from _references import birth_death_generator

import jaxcoll
from jaxcoll import (
    charging_power,
    energy_trajectory,
    ergotropy_at,
    ergotropy_trajectory,
    final_energy,
    max_charging_power,
    max_ergotropy,
    spin_model,
    value_and_grad,
)

J = 3
# tighter hits round-off in the step control. The adaptive Rosenbrock path throughout (at J = 3
# the default solver propagates exactly instead; that path is tested in test_expm.py).
TIGHT = dict(rtol=1e-10, atol=1e-12, solver="rodas5p", tridiagonal="cyclic")
NAMES = ("T_a", "T_m", "delta", "omega_s", "density", "coupling", "t")
# Inverted and still charging at t = 20 (W ~ 2.8 of at most 6): every functional is smooth here.
THETA = np.array([2.0, 0.3, 1.0, 1.0, 0.01, 1.0, 20.0])


def _split(theta):
    params = dict(zip(NAMES[:-1], (theta[i] for i in range(6)), strict=True))
    return params, theta[6]


# --- independent reference -------------------------------------------------------------------


def reference(theta, j=J):
    """W(t), E(t) by scipy.linalg.expm of the population generator (rates from eq. 19)."""
    params, t = _split(theta)
    gp, gm = (float(r) for r in spin_model(params, J=j).rates())
    L = birth_death_generator(j, gp, gm)
    m = np.arange(L.shape[0]) - j
    p = scipy.linalg.expm(L * t)[:, 0]
    e = params["omega_s"] * m
    return e @ p - e @ np.sort(p)[::-1], e @ p


def reference_jax(theta, j=J):
    """The same in JAX (dense expm): an autodiff path independent of `evolve`."""
    params, t = _split(theta)
    gp, gm = spin_model(params, J=j).rates()
    d = int(2 * j) + 1
    m = jnp.arange(d, dtype=float) - j
    c2 = (j - m[:-1]) * (j + m[:-1] + 1.0)
    L = (
        jnp.diag(gp * c2, -1)
        + jnp.diag(gm * c2, 1)
        - jnp.diag(gp * jnp.concatenate([c2, jnp.zeros(1)]))
        - jnp.diag(gm * jnp.concatenate([jnp.zeros(1), c2]))
    )
    p = jax.scipy.linalg.expm(L * t)[:, 0]
    e = params["omega_s"] * m
    return e @ p - e @ jnp.sort(p)[::-1]


# --- every functional, one gradient path each ------------------------------------------------
# Eager transforms (no outer jit): the solve inside is jitted on its own, and functionals with
# the same number of save times share its compilations (`_trajectory` canonicalises inputs).


def _functional(i, theta, mode="reverse"):
    params, t = _split(theta)
    kw = dict(J=J, mode=mode, **TIGHT)
    if i == 0:
        return ergotropy_at(params, t, **kw)
    if i == 1:
        return charging_power(params, t, **kw)
    if i == 2:
        return final_energy(params, t, **kw)
    if i == 3:
        return max_ergotropy(params, (0.5 * t, t), n_times=5, temperature=0.3, **kw)
    if i == 4:
        return max_ergotropy(params, (0.5 * t, t), n_times=5, **kw)
    return max_charging_power(params, t, n_times=5, **kw)


N_FUNCTIONALS = 6


def _central_differences(f, theta, rel_step=1e-5):
    h = rel_step * np.maximum(np.abs(theta), 1e-2)
    grad = np.zeros(theta.size)
    for k in range(theta.size):
        up, dn = theta.copy(), theta.copy()
        up[k] += h[k]
        dn[k] -= h[k]
        grad[k] = (float(f(jnp.asarray(up))) - float(f(jnp.asarray(dn)))) / (2 * h[k])
    return grad


@pytest.fixture(scope="module")
def fd_jacobian():
    return np.stack(
        [
            _central_differences(lambda th, i=i: _functional(i, th), THETA)
            for i in range(N_FUNCTIONALS)
        ]
    )


def test_values_match_scipy_expm():
    w, e = reference(THETA)
    vals = np.array([float(_functional(i, jnp.asarray(THETA))) for i in range(N_FUNCTIONALS)])
    np.testing.assert_allclose(vals[0], w, rtol=1e-9)
    np.testing.assert_allclose(vals[1], w / THETA[6], rtol=1e-9)
    np.testing.assert_allclose(vals[2], e, rtol=1e-9)
    ts = np.linspace(0.5 * THETA[6], THETA[6], 5)
    ws = np.array([reference(np.r_[THETA[:6], t])[0] for t in ts])
    tau = 0.3
    np.testing.assert_allclose(vals[3], tau * np.log(np.sum(np.exp(ws / tau))), rtol=1e-9)
    np.testing.assert_allclose(vals[4], ws.max(), rtol=1e-9)
    assert ws.max() <= vals[3] <= ws.max() + tau * np.log(ws.size)
    tp = THETA[6] * np.arange(1, 6) / 5
    pw = np.array([reference(np.r_[THETA[:6], t])[0] / t for t in tp])
    np.testing.assert_allclose(vals[5], pw.max(), rtol=1e-9)
    assert vals[0] > 1.0  # the test point is inverted


def _params6(theta=THETA):
    return dict(zip(NAMES[:-1], (float(x) for x in theta[:6]), strict=True))


# Which functionals each mode is checked on: the scaling derivative on all six, all 7 inputs (t
# included), through reverse mode; Diffrax's reverse and forward modes on the single-time
# functionals (the windowed ones run the same code with more save times, and every further
# solve graph costs a compilation).
@pytest.mark.parametrize("mode,which", [("reverse", range(3)), ("scaling", range(N_FUNCTIONALS))])
def test_gradients_match_finite_differences_reverse(fd_jacobian, mode, which):
    for i in which:
        jac = np.asarray(jax.grad(lambda th, i=i: _functional(i, th, mode))(jnp.asarray(THETA)))
        # 1e-5 relative; entries tiny against the row's largest only to 1e-6 of it
        scale = np.abs(fd_jacobian[i]).max()
        np.testing.assert_allclose(jac, fd_jacobian[i], rtol=1e-5, atol=1e-6 * scale)
        if i == 0:  # and against autodiff through the dense matrix exponential
            ref = np.asarray(jax.grad(reference_jax)(jnp.asarray(THETA)))
            np.testing.assert_allclose(jac, ref, rtol=1e-7, atol=1e-9 * np.abs(ref).max())


def test_gradients_match_finite_differences_forward(fd_jacobian):
    t = THETA[6]
    kw = dict(J=J, mode="forward", **TIGHT)
    for i, fn in enumerate((ergotropy_at, charging_power, final_energy)):
        g = jax.jacfwd(lambda p, fn=fn: fn(p, t, **kw))(_params6())
        jac = np.array([g[k] for k in NAMES[:-1]])
        scale = np.abs(fd_jacobian[i]).max()
        np.testing.assert_allclose(jac, fd_jacobian[i, :6], rtol=1e-5, atol=1e-6 * scale)


def test_value_and_grad_modes_agree():
    t = THETA[6]
    params3 = {k: float(THETA[i]) for i, k in enumerate(("T_a", "T_m", "delta"))}
    kw = dict(J=J, density=0.01, coupling=1.0, **TIGHT)
    v_r, g_r = value_and_grad(ergotropy_at, mode="reverse")(params3, t, **kw)  # jitted
    v_f, g_f = value_and_grad(ergotropy_at, mode="forward", jit=False)(_params6(), t, J=J, **TIGHT)
    np.testing.assert_allclose(v_r, v_f, rtol=1e-12)
    ref = jax.grad(reference_jax)(jnp.asarray(THETA))
    for i, k in enumerate(NAMES[:-1]):
        np.testing.assert_allclose(g_f[k], ref[i], rtol=1e-7)
        if k in g_r:
            np.testing.assert_allclose(g_r[k], g_f[k], rtol=1e-8)


# Each composition compiles its own batched graph; one mode each keeps the suite fast (the
# optimiser's tests run vmap-of-jacfwd through the scaling mode as well).
@pytest.mark.parametrize(
    "composition,mode", [("vmap_of_grad", "scaling"), ("grad_of_vmap", "reverse")]
)
def test_vmap_of_grad_and_grad_of_vmap(composition, mode):
    kw = dict(J=J, density=0.01, coupling=1.0, mode=mode, **TIGHT)
    T_m = np.array([0.2, 0.3, 0.5, 2.0])  # the last one does not invert: W = 0

    def w(T_a, T_m, delta):
        return ergotropy_at({"T_a": T_a, "T_m": T_m, "delta": delta}, 20.0, **kw)

    refs, fds = [], []
    for tm in T_m:
        th = np.r_[2.0, tm, 1.0, 1.0, 0.01, 1.0, 20.0]
        refs.append(np.asarray(jax.grad(reference_jax)(jnp.asarray(th)))[:3])
        fd = np.zeros(3)
        for k in range(3):  # central differences of the SciPy reference
            h = 1e-5 * abs(th[k])
            up, dn = th.copy(), th.copy()
            up[k] += h
            dn[k] -= h
            fd[k] = (reference(up)[0] - reference(dn)[0]) / (2 * h)
        fds.append(fd)
    refs, fds = np.array(refs), np.array(fds)
    np.testing.assert_allclose(refs, fds, rtol=1e-5, atol=1e-8)

    if composition == "vmap_of_grad":
        g = jax.vmap(jax.grad(w, argnums=(0, 1, 2)), in_axes=(None, 0, None))(2.0, T_m, 1.0)
        got = np.stack([np.asarray(x) for x in g], axis=-1)  # (points, 3)
        np.testing.assert_allclose(got, refs, rtol=1e-6, atol=1e-10)
        assert np.all(got[-1] == 0.0)
    else:  # d/d(T_a, T_m[i], delta) of the sum over the batch
        total = lambda a, tm, d: jnp.sum(jax.vmap(w, in_axes=(None, 0, None))(a, tm, d))
        g_a, g_tm, g_d = jax.grad(total, argnums=(0, 1, 2))(2.0, jnp.asarray(T_m), 1.0)
        np.testing.assert_allclose(g_tm, refs[:, 1], rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose([g_a, g_d], refs[:, [0, 2]].sum(0), rtol=1e-6, atol=1e-10)


def test_finite_gradients_where_w_is_zero_and_rates_underflow():
    kw = dict(J=J, density=0.01, coupling=1.0, **TIGHT)
    cases = [
        ({"T_a": 1.0, "T_m": 1.0, "delta": 1.0}, 20.0),  # gas in equilibrium: never inverted
        ({"T_a": 2.0, "T_m": 0.3, "delta": 1.0}, 2.0),  # inverting gas, but too early
        ({"T_a": 1.0, "T_m": 0.05, "delta": 500.0}, 20.0),  # both rates underflow to 0
        ({"T_a": 1e3, "T_m": 1e-3, "delta": 1e3}, 20.0),  # extreme corner
    ]
    for params, t in cases:
        v, g = value_and_grad(ergotropy_at, mode="reverse")(params, t, **kw)
        assert np.isfinite(v) and all(np.isfinite(x) for x in g.values()), (params, g)
        p6 = {**params, "omega_s": 1.0, "density": 0.01, "coupling": 1.0}
        for fn in (ergotropy_at, final_energy):
            v, g = value_and_grad(fn, mode="forward", jit=False)(p6, t, J=J, **TIGHT)
            assert np.isfinite(v) and all(np.isfinite(x) for x in g.values()), (p6, g)
        g = jax.grad(lambda p, t=t: final_energy(p, t, **kw))(params)
        assert all(np.isfinite(x) for x in g.values()), (params, g)
        g = jax.grad(lambda p, t=t: ergotropy_at(p, t, mode="scaling", **kw))(params)
        assert all(np.isfinite(x) for x in g.values()), (params, g)
        assert float(ergotropy_at(params, t, **kw)) <= 1e-12
    # no interaction at all (coupling = 0): every rate is exactly zero, ln(coupling^2) is not
    p6 = {"T_a": 2.0, "T_m": 0.3, "delta": 1.0, "omega_s": 1.0, "density": 0.01, "coupling": 0.0}
    for mode in ("scaling", "forward"):
        for fn in (ergotropy_at, final_energy):
            v, g = value_and_grad(fn, mode=mode, jit=False)(p6, 20.0, J=J, **TIGHT)
            assert all(np.isfinite(x) for x in g.values()), (mode, fn.__name__, g)
    m = spin_model(cases[2][0], J=J, density=0.01, coupling=1.0)
    assert all(float(r) == 0.0 for r in m.rates())  # the underflow case really underflows


def test_trajectory_matches_pointwise():
    params, _ = _split(THETA)
    ts = np.array([2.0, 5.0, 10.0, 15.0, 20.0])
    w = ergotropy_trajectory(params, ts, J=J, **TIGHT)
    ref = [reference(np.r_[THETA[:6], t])[0] for t in ts]
    np.testing.assert_allclose(w, ref, rtol=1e-9, atol=1e-12)
    e = energy_trajectory(params, ts, J=J, **TIGHT)
    np.testing.assert_allclose(e, [reference(np.r_[THETA[:6], t])[1] for t in ts], rtol=1e-9)
    # a grid starting at t = 0: W(0) = 0, E(0) = -J omega_s
    ts0 = np.r_[0.0, ts[1:]]
    w0 = ergotropy_trajectory(params, ts0, J=J, **TIGHT)
    np.testing.assert_allclose(w0, np.r_[0.0, w[1:]], rtol=1e-12, atol=1e-14)
    e0 = energy_trajectory(params, ts0, J=J, **TIGHT)
    np.testing.assert_allclose(e0, np.r_[-J, e[1:]], rtol=1e-12)


def test_any_parameter_by_keyword():
    """Each physical parameter goes in `params` (differentiated) or by keyword (held fixed)."""
    theta = THETA.copy()
    w_ref, e_ref = reference(theta)
    params, t = _split(theta)
    kw = dict(J=J, **TIGHT)
    for held in ("T_a", "T_m", "delta", "omega_s", "density"):
        p = {k: v for k, v in params.items() if k != held}
        w = ergotropy_at(p, t, **kw, **{held: params[held]})
        np.testing.assert_allclose(w, w_ref, rtol=1e-9)
    # everything by keyword, with Python ints where they fit
    fixed = dict(T_a=2, T_m=0.3, delta=1, omega_s=1, density=0.01, coupling=1)
    np.testing.assert_allclose(final_energy({}, 20, **kw, **fixed), e_ref, rtol=1e-9)
    # only what is in params is differentiated: d/dT_m against the all-params gradient
    f = lambda p: ergotropy_at(p, t, **kw, T_a=2.0, delta=1.0, density=0.01, coupling=1.0)
    g = jax.grad(f)({"T_m": jnp.asarray(0.3)})
    full = jax.grad(lambda p: ergotropy_at(p, t, **kw))(
        {k: jnp.asarray(v) for k, v in params.items()}
    )
    assert set(g) == {"T_m"}
    np.testing.assert_allclose(g["T_m"], full["T_m"], rtol=1e-9)
    # params win over a keyword value for the same parameter (as in spin_model)
    np.testing.assert_allclose(ergotropy_at(params, t, **kw, T_a=9.0), w_ref, rtol=1e-9)
    with pytest.raises(ValueError, match="T_a"):
        ergotropy_at({"T_m": 0.3}, t, J=J, delta=1.0, density=0.01, coupling=1.0)


def test_input_errors():
    p = {"T_a": 2.0, "T_m": 0.3, "delta": 1.0}
    kw = dict(J=J, density=0.01, coupling=1.0)
    with pytest.raises(ValueError, match="unknown keys"):
        ergotropy_at({**p, "temp": 1.0}, 1.0, **kw)
    with pytest.raises(ValueError, match="missing \\['delta'\\]"):
        ergotropy_at({"T_a": 2.0, "T_m": 0.3}, 1.0, **kw)
    with pytest.raises(ValueError, match="mode"):
        ergotropy_at(p, 1.0, mode="sideways", **kw)
    with pytest.raises(ValueError, match="t must"):
        ergotropy_at(p, -1.0, **kw)
    with pytest.raises(ValueError, match="T_m"):
        ergotropy_at({**p, "T_m": -0.3}, 1.0, **kw)
    with pytest.raises(ValueError, match="ts must"):
        ergotropy_trajectory(p, [2.0, 1.0], **kw)
    with pytest.raises(ValueError, match="ts must be >= 0"):
        ergotropy_trajectory(p, [-1.0, 1.0], **kw)
    with pytest.raises(ValueError, match="rate scale"):
        ergotropy_at(p, 1.0, J=J)
    # two rate scales are ambiguous, as for SpinGas (CONTRACT: "Exactly one of `gamma_tilde`
    # or (`density` and `coupling`) is given"), whether by keyword or in params
    with pytest.raises(ValueError, match="exactly one rate scale"):
        ergotropy_at(p, 1.0, gamma_tilde=1.0, **kw)
    with pytest.raises(ValueError, match="exactly one rate scale"):
        spin_model({**p, "gamma_tilde": 1.0}, **kw)
    with pytest.raises(ValueError, match="exactly one rate scale"):
        ergotropy_at({**p, "density": 0.01}, 1.0, J=J, gamma_tilde=1.0)
    with pytest.raises(ValueError, match="t_window"):
        jaxcoll.max_ergotropy(p, (3.0, 1.0), **kw)
    for bad in (1.5, "9", 1):
        with pytest.raises((TypeError, ValueError), match="n_times"):
            jaxcoll.max_ergotropy(p, (1.0, 3.0), n_times=bad, **kw)
    assert isinstance(spin_model(p, **kw), jaxcoll.SpinGas)
