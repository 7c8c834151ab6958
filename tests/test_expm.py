"""The exact (uniformisation) path for the spin's population sector against SciPy's `expm`.

References: the dense birth-death generator of eq. (11) for eq. (18) written in NumPy
(`tests/_references.py`), exponentiated by `scipy.linalg.expm`, rates of eq. (19) from the
closed form with SciPy's Bessel function, ergotropy of eq. (23) by sorting; gradients against
central differences of that reference, and the values against the adaptive Rosenbrock path.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from _references import birth_death_generator, ergotropy_ref, fig2_rates_ref

from jaxcoll import (
    SpinGas,
    ergotropy_at,
    ergotropy_curve,
    ergotropy_trajectory,
    final_energy,
    max_ergotropy,
    spin_model,
    value_and_grad,
)
from jaxcoll._expm import from_ground

TS = np.array([0.0, 0.05, 0.5, 3.0, 20.0])

# (J, D, A, alpha): CONTRACT.md: "`jaxcoll.ergotropy_curve(J, D, A, alpha, ts)` -> array
# W(t_i) (units of omega_s)"; rates Gamma_pm / Gamma~ of eq. (19) in Fig. 2's parameters.
CASES = [
    (3, 4.0, 1.0, 1.0),  # inverting (D > A), Fig. 2's regime
    (20, 30.0, 0.5, 2.0),  # strongly inverted: Gamma_+/Gamma_- ~ e^14, (G+/G-)^J ~ 10^120
    (20, 2.0, 2.0, 1.0),  # on the border D = A: detailed balance at T_eff = infinity
    (20, 0.0, 3.0, 1.0),  # cooling gas (T_eff > 0), never inverted: W = 0
    (7.5, 20.0, 1.0, 50.0),  # large alpha, half-integer J
    (32, 6.0, 0.2, 0.5),  # d = 65, up to Lambda t ~ 2e3 products per interval
]


def _reference(J, D, A, alpha, ts):
    """Populations and W(t) by SciPy's expm of the NumPy generator."""
    gp, gm = fig2_rates_ref(D, A, alpha)
    L = birth_death_generator(J, gp, gm)
    m = np.arange(L.shape[0]) - J
    pops = np.array([scipy.linalg.expm(L * t)[:, 0] for t in ts])
    return pops, np.array([ergotropy_ref(p, m) for p in pops]), (gp, gm)


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
def test_matches_scipy_expm(case):
    J, D, A, alpha = case
    pops_ref, w_ref, (gp, gm) = _reference(J, D, A, alpha, TS)
    d = pops_ref.shape[1]
    pops = np.asarray(from_ground(jnp.asarray(gp), jnp.asarray(gm), jnp.asarray(TS), d, 1e-14))
    np.testing.assert_allclose(pops, pops_ref, rtol=0, atol=1e-12)
    w = np.asarray(ergotropy_curve(J, D, A, alpha, TS, solver="exponential", atol=1e-13))
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-10 * 2 * J)
    assert w[0] == 0.0


def test_strong_pumping_where_the_symmetric_similarity_fails():
    """(Gamma_+/Gamma_-)^J ~ 10^1700: the populations stay exact (no cancellation)."""
    J, D, A, alpha = 20, 400.0, 2.0, 2.0
    pops_ref, w_ref, _ = _reference(J, D, A, alpha, TS[1:])
    w = np.asarray(ergotropy_curve(J, D, A, alpha, TS[1:], solver="exponential", atol=1e-13))
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-10 * 2 * J)


def test_gradients_match_central_differences():
    J, x0, ts = 20, np.array([6.0, 1.0, 1.0]), np.array([10.0, 12.0])  # inverting

    def f(x):
        return ergotropy_curve(J, x[0], x[1], x[2], ts, solver="exponential", atol=1e-14)

    jac = np.asarray(jax.jacrev(f)(jnp.asarray(x0)))
    fwd = np.asarray(jax.jacfwd(f)(jnp.asarray(x0)))
    fd = np.zeros_like(jac)
    for k in range(3):
        h = 1e-5 * abs(x0[k])
        up, dn = x0.copy(), x0.copy()
        up[k] += h
        dn[k] -= h
        fd[:, k] = (_reference(J, *up, ts)[1] - _reference(J, *dn, ts)[1]) / (2 * h)
    scale = np.abs(fd).max()
    assert _reference(J, *x0, ts)[1].min() > 0.5 and scale > 0.1  # on the smooth branch
    np.testing.assert_allclose(jac, fd, rtol=1e-6, atol=1e-7 * scale)
    np.testing.assert_allclose(fwd, jac, rtol=1e-10, atol=1e-12 * scale)


# A spread of physical points (time in hbar/E_R): inverted, passive, near the border.
POINTS = {
    "T_m": np.array([0.05, 0.1, 0.3, 0.6, 1.0, 0.2]),
    "delta": np.array([10.0, 0.5, 3.0, 8.0, 0.0, 1.0]),
}
GAS = dict(T_a=5.0, omega_s=1.0, density=0.01, coupling=1.0)


def test_agrees_with_the_adaptive_path_under_vmap():
    def w(p, **solver):
        return ergotropy_at(p, 3.0, J=20, rtol=1e-10, atol=1e-12, **solver, **GAS)

    exact = jax.vmap(lambda p: w(p, solver="exponential"))(POINTS)
    adaptive = jax.vmap(lambda p: w(p, solver="rodas5p", tridiagonal="cyclic"))(POINTS)
    np.testing.assert_allclose(exact, adaptive, rtol=0, atol=1e-8 * 40)
    assert np.asarray(exact).max() > 1.0  # the spread includes inverted points
    # the default (solver "auto" at d = 41) is this path
    auto = jax.vmap(lambda p: ergotropy_at(p, 3.0, J=20, rtol=1e-10, atol=1e-12, **GAS))(POINTS)
    np.testing.assert_array_equal(auto, exact)


@pytest.mark.parametrize("mode", ["reverse", "forward", "scaling"])
def test_every_mode_gives_the_exact_flow_derivative(mode):
    """Gradient in (T_a, T_m, delta) at a few points, batched, against central differences of
    the SciPy reference (rates of eq. 19 with Gamma~ of eq. D4, through `SpinGas`)."""
    J, t = 5, 3.0
    vg = value_and_grad(ergotropy_at, mode=mode, jit=True)
    kw = {k: v for k, v in GAS.items() if k != "T_a"}
    for i in (0, 2, 5):
        p = {"T_a": 5.0, "T_m": POINTS["T_m"][i], "delta": POINTS["delta"][i]}
        v, g = vg(p, t, J=J, solver="exponential", atol=1e-14, **kw)

        def ref(q):
            gp, gm = (float(r) for r in SpinGas(J, **kw, **q).rates())
            pop = scipy.linalg.expm(birth_death_generator(J, gp, gm) * t)[:, 0]
            return ergotropy_ref(pop, np.arange(2 * J + 1) - J)

        assert abs(float(v) - ref(p)) < 1e-11
        for k in p:
            h = 1e-6 * abs(p[k]) + 1e-7
            fd = (ref({**p, k: p[k] + h}) - ref({**p, k: p[k] - h})) / (2 * h)
            np.testing.assert_allclose(g[k], fd, rtol=1e-5, atol=1e-8)


def test_zero_rates_and_underflow():
    """No interaction (all rates exactly 0) and underflowing rates: the state stays put and
    gradients are finite."""
    p6 = {"T_a": 2.0, "T_m": 0.3, "delta": 1.0, "omega_s": 1.0, "density": 0.01, "coupling": 0.0}
    for fn in (ergotropy_at, final_energy):
        v, g = value_and_grad(fn, mode="reverse")(p6, 20.0, J=3, solver="exponential")
        assert all(np.isfinite(x) for x in g.values()), (fn.__name__, g)
    assert float(final_energy(p6, 20.0, J=3, solver="exponential")) == -3.0
    under = {"T_a": 1.0, "T_m": 0.05, "delta": 500.0}
    v, g = value_and_grad(ergotropy_at, mode="reverse")(
        under, 20.0, J=3, density=0.01, coupling=1.0, solver="exponential"
    )
    assert float(v) == 0.0 and all(np.isfinite(x) for x in g.values())


def test_errors():
    with pytest.raises(ValueError, match="solver"):
        ergotropy_at({"T_a": 2.0, "T_m": 0.3, "delta": 1.0}, 1.0, J=3, gamma_tilde=1.0, solver="x")
    with pytest.raises(ValueError, match="float64"):
        ergotropy_curve(3, 4.0, 1.0, 1.0, TS, solver="exponential", dtype=jnp.float32)
    # rates x time beyond the cap: an error before any product is taken, naming the way out
    with pytest.raises(Exception, match="solver='rodas5p'"):
        ergotropy_at({"T_a": 2.0, "T_m": 0.3, "delta": 1.0}, 1e5, J=20, gamma_tilde=1e3)


def test_windowed_functionals_agree_with_the_adaptive_path():
    """Several save times (trajectories, the smooth maximum over a window): values against
    SciPy, gradients against the adaptive path (itself checked against finite differences in
    test_functionals.py)."""
    p = {"T_a": 2.0, "T_m": 0.3, "delta": 1.0}
    gas = dict(density=0.01, coupling=1.0)
    kw = dict(J=3, rtol=1e-10, atol=1e-12, **gas)
    ts = np.array([0.0, 2.0, 5.0, 10.0, 20.0])
    w = ergotropy_trajectory(p, ts, solver="exponential", **kw)
    gp, gm = (float(r) for r in spin_model(p, J=3, **gas).rates())
    L, m = birth_death_generator(3, gp, gm), np.arange(7) - 3
    ref = [ergotropy_ref(scipy.linalg.expm(L * t)[:, 0], m) for t in ts]
    np.testing.assert_allclose(w, ref, rtol=0, atol=1e-11)
    assert max(ref) > 1.0

    def f(q, **solver):
        return max_ergotropy(q, (10.0, 20.0), n_times=5, temperature=0.3, **solver, **kw)

    g_exact = jax.grad(lambda q: f(q, solver="exponential"))(p)
    g_adaptive = jax.grad(lambda q: f(q, solver="rodas5p", tridiagonal="cyclic"))(p)
    for k in p:
        np.testing.assert_allclose(g_exact[k], g_adaptive[k], rtol=1e-7)
