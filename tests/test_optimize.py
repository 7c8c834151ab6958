"""The ergotropy optimiser against a brute-force search scored by an independent solver."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
from _references import birth_death_generator, ergotropy_ref, spin_rates_ref

import jaxcoll
from jaxcoll import optimize_ergotropy

J = 2
T_FINAL = 20.0
GAS = dict(omega_s=1.0, density=0.01, coupling=1.0)
BOX = dict(T_a=(0.5, 3.0), T_m=(0.1, 1.0), delta=(0.0, 3.0))


@jax.jit
def _rates(T_a, T_m, delta):
    return jaxcoll.SpinGas(J, T_a=T_a, T_m=T_m, delta=delta, **GAS).rates()


def reference_w(x, t=T_FINAL):
    """W(t) by scipy.linalg.expm of the tridiagonal population generator (eq. 11, 18, 23)."""
    gp, gm = (float(r) for r in _rates(*(jnp.asarray(v) for v in x)))
    p = scipy.linalg.expm(birth_death_generator(J, gp, gm) * t)[:, 0]
    return ergotropy_ref(p, GAS["omega_s"] * (np.arange(2 * J + 1) - J))


@pytest.fixture(scope="module")
def brute_force():
    """Best point of a 10^3 grid, refined by L-BFGS-B (finite differences) on the reference."""
    axes = [np.linspace(*BOX[k], 10) for k in ("T_a", "T_m", "delta")]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    w = np.array([reference_w(x) for x in pts])
    lo = np.array([b[0] for b in BOX.values()])
    hi = np.array([b[1] for b in BOX.values()])
    res = scipy.optimize.minimize(
        lambda z: -reference_w(lo + (hi - lo) * z),
        (pts[np.argmax(w)] - lo) / (hi - lo),
        method="L-BFGS-B",
        bounds=[(0.0, 1.0)] * 3,
        options={"ftol": 1e-14, "gtol": 1e-9, "eps": 1e-7},
    )
    return {"grid_best": w.max(), "x": lo + (hi - lo) * res.x, "w": -res.fun}


def test_finds_the_brute_force_optimum(brute_force):
    res = optimize_ergotropy(J, T_FINAL, **GAS, **BOX, steps=15, seed=1)
    # never worse than the refined brute-force optimum (nor, a fortiori, its grid)
    assert res.ergotropy >= brute_force["w"] * (1 - 1e-7)
    assert res.ergotropy >= brute_force["grid_best"]
    # the reported value is what an independent solver says at the reported point
    x = np.array([res.T_a, res.T_m, res.delta])
    np.testing.assert_allclose(reference_w(x), res.ergotropy, rtol=1e-7)
    # same point: hot ancillas, cold motion, an interior detuning
    np.testing.assert_allclose(x, brute_force["x"], rtol=1e-3, atol=1e-4)
    assert res.active == {"T_a": "upper", "T_m": "lower", "delta": None}
    assert res.gradient["T_a"] > 0 and res.gradient["T_m"] < 0  # pushing against the box
    assert abs(res.gradient["delta"]) < 1e-4 * res.ergotropy
    # bookkeeping
    assert res.scan["value"].shape == (10**3,) and res.seed == 1
    assert res.scan["best"]["value"] <= res.ergotropy
    n = res.history["value"].shape[0]
    assert n >= 15 and all(res.history[k].shape == (n,) for k in ("T_a", "T_m", "delta"))
    assert res.history["starts"].shape[0] == 15
    assert np.all(res.history["T_m"] >= BOX["T_m"][0]) and np.all(res.history["T_m"] <= 1.0)
    d = res.to_dict()
    assert {"T_a", "T_m", "delta", "ergotropy"} <= set(d)


def test_surrogate_when_no_grid_point_is_inverted(brute_force):
    # The 8 corners of this box are all passive at t_f: the scan sees W = 0 everywhere, and
    # the search climbs the energy until it reaches the inverted interior.
    box = dict(T_a=(0.5, 3.0), T_m=(0.1, 1.0), delta=(0.02, 6.0))
    res = optimize_ergotropy(J, T_FINAL, **GAS, **box, scan_points=2, steps=25, seed=0)
    assert res.scan["value"].max() < 1e-10
    assert 0 in res.history["phase"] and 1 in res.history["phase"]
    assert res.ergotropy >= brute_force["w"] * (1 - 1e-6)


def test_held_parameters_gamma_tilde_and_negative_detuning():
    """T_a and T_m held fixed (Python ints and floats), a fixed Gamma~, a detuning box reaching
    below zero; a 1-D brute force on eq. (19) and SciPy's expm finds the same optimum."""
    gt, T_a, T_m = 3.0, 3, 0.3

    def w(delta):
        gp, gm = spin_rates_ref(1.0, delta, T_a, T_m, 1.0, gt)
        p = scipy.linalg.expm(birth_death_generator(J, gp, gm) * T_FINAL)[:, 0]
        return ergotropy_ref(p, np.arange(2 * J + 1) - J)

    ds = np.linspace(-1.0, 3.0, 81)
    i = int(np.argmax([w(d) for d in ds]))
    ref = scipy.optimize.minimize_scalar(
        lambda d: -w(d), bounds=(ds[i - 1], ds[i + 1]), method="bounded", options={"xatol": 1e-9}
    )
    res = optimize_ergotropy(
        J, 20, T_a=T_a, T_m=T_m, delta=(-1, 3), gamma_tilde=gt, scan_points=9, steps=5, seed=0
    )
    assert (res.T_a, res.T_m) == (3.0, 0.3)
    assert res.active == {"T_a": "fixed", "T_m": "fixed", "delta": None}
    assert set(res.bounds) == {"delta"} and set(res.gradient) == {"delta"}
    assert res.scan["delta"].min() == -1.0  # the negative part of the box was searched
    assert res.ergotropy >= -ref.fun * (1 - 1e-8)
    np.testing.assert_allclose(res.delta, ref.x, atol=1e-4)
    np.testing.assert_allclose(w(res.delta), res.ergotropy, rtol=1e-7)


def test_bad_arguments():
    with pytest.raises(ValueError, match="T_m"):
        optimize_ergotropy(J, T_FINAL, **GAS, T_a=(0.5, 3.0), T_m=(1.0, 0.1), delta=(0, 3))
    with pytest.raises(ValueError, match="objective"):
        optimize_ergotropy(J, T_FINAL, **GAS, **BOX, objective="fun")
    with pytest.raises(ValueError, match="T_a"):
        optimize_ergotropy(J, T_FINAL, **GAS, T_a=(-1.0, 3.0), T_m=(0.1, 1), delta=(0, 3))
    with pytest.raises(ValueError, match="at least one"):
        optimize_ergotropy(J, T_FINAL, **GAS, T_a=1.0, T_m=0.5, delta=1.0)
    with pytest.raises(ValueError, match="rate scale"):
        optimize_ergotropy(J, T_FINAL, **GAS, gamma_tilde=1.0, **BOX)
    with pytest.raises(ValueError, match="delta"):
        optimize_ergotropy(J, T_FINAL, **GAS, T_a=(0.5, 3.0), T_m=(0.1, 1), delta=(0, 1, 2))
    # counts are integers: a fraction is refused, not truncated
    for name, bad in (("steps", 2.7), ("n_starts", 0), ("polish_iterations", "3")):
        with pytest.raises((TypeError, ValueError), match=name):
            optimize_ergotropy(J, T_FINAL, **GAS, **BOX, **{name: bad})
