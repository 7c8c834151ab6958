"""`jaxcoll reproduce --fast` end to end, its numbers against independent references.

The references share no code with the library: the scattering integral by SciPy quadrature of
eq. (20), the rates of eq. (19) and Gamma~ of eq. (D4) written out, the rate equation (11) by
SciPy's dense matrix exponential, ergotropy (23) and Gibbs states in NumPy.
"""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _references import I_quad, birth_death_generator, ergotropy_ref
from PIL import Image  # matplotlib writes PNGs through Pillow
from scipy.linalg import expm

from jaxcoll._figure_data import _energy_temperature, _jsonable, gibbs_ergotropy
from jaxcoll._table import print_table

FILES = (
    "fig2_ergotropy.png",
    "fig3_scattering_integral.png",
    "thermalisation.png",
    "phase_diagram.png",
    "optimisation.png",
    "energy_flows.png",
    "heat_statistics.png",
    "results.json",
)


# --- independent references ----------------------------------------------------------------------


def rates_ref(D, A, alpha):
    """Eq. (19) over Gamma~, in the Fig. 2 parameters (delta / E_R = D / alpha)."""
    s = D / alpha
    return I_quad(alpha, -s) / (1 + math.exp(A)), I_quad(alpha, s) / (1 + math.exp(-A))


def populations_ref(J, gp, gm, ts, p0=None):
    """Rate equation (11) for the spin ladder of eq. (18) by dense matrix exponential."""
    M = birth_death_generator(J, gp, gm)
    p0 = np.eye(M.shape[0])[0] if p0 is None else p0
    return np.stack([expm(M * (t - ts[0])) @ p0 for t in ts])


def gibbs_ref(J, beta_omega):
    m = np.arange(int(round(2 * J)) + 1) - J
    w = np.exp(-beta_omega * (m - (m.max() if beta_omega < 0 else m.min())))
    return w / w.sum(), m


# --- the run -------------------------------------------------------------------------------------


def _command():
    exe = Path(sys.executable).with_name("jaxcoll")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("jaxcoll")
    return [found] if found else [sys.executable, "-m", "jaxcoll._cli"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "out"
    proc = subprocess.run(
        [*_command(), "reproduce", "--out", str(out), "--fast", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc, json.loads((out / "results.json").read_text())


def test_writes_every_file(run):
    out, proc, results = run
    for name in FILES:
        f = out / name
        assert f.is_file() and f.stat().st_size > 1000, name
        if name.endswith(".png"):
            assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            # print resolution (the PNG's pHYs chunk): 200 dpi, the publication style's
            dpi = Image.open(f).info.get("dpi")
            assert dpi is not None and np.allclose(dpi, 200, atol=0.5), (name, dpi)
    for key in ("fig2_ergotropy", "fig3_scattering_integral", "thermalisation", "phase_diagram",
                "optimisation", "energy_flows", "heat_statistics", "meta"):  # fmt: skip
        assert key in results
    assert results["meta"]["fast"] is True
    # the summary table and the final line
    assert "figure" in proc.stdout and "optimisation" in proc.stdout
    assert "results.json" in proc.stdout.splitlines()[-1]


def test_fig3_numbers_vs_quadrature(run):
    r = run[2]["fig3_scattering_integral"]
    alpha, s, L = np.asarray(r["alpha"]), np.asarray(r["s"]), np.asarray(r["log10_I"])
    assert L.shape == (len(alpha), len(s))
    rng = np.random.default_rng(0)
    for i, j in zip(rng.integers(0, len(alpha), 12), rng.integers(0, len(s), 12), strict=True):
        ref = I_quad(alpha[i], s[j])
        if ref > 1e-250:
            assert L[i, j] == pytest.approx(math.log10(ref), abs=1e-8), (alpha[i], s[j])
    # the paper's statements about Fig. 3: decreasing in alpha, faster decay for s > 0
    assert np.all(np.diff(L, axis=0) < 0)
    k = len(s) // 2
    assert s[k] == 0.0
    assert np.all(L[:, -1] < L[:, 0])


def test_fig2_numbers_vs_expm(run):
    r = run[2]["fig2_ergotropy"]
    J, alpha, ts = r["J"], r["alpha"], np.asarray(r["t"])
    assert J == 20 and alpha == 1.0
    pairs = [(c["D"], c["A"]) for c in r["curves"]]
    # two detunings, two ancilla factors, one pair with D < A, two pairs with equal A - D
    assert len({D for D, _ in pairs}) == 2 and len({A for _, A in pairs}) == 2
    assert sum(D < A for D, A in pairs) == 1
    diffs = [A - D for D, A in pairs]
    assert len(set(diffs)) == 3
    for c in r["curves"]:
        gp, gm = rates_ref(c["D"], c["A"], alpha)
        P = populations_ref(J, gp, gm, ts)
        m = np.arange(2 * J + 1) - J
        np.testing.assert_allclose(c["ergotropy"], ergotropy_ref(P, m), atol=2e-6 * 2 * J)
        p_ss, m = gibbs_ref(J, c["A"] - c["D"])
        assert c["ergotropy_steady"] == pytest.approx(ergotropy_ref(p_ss, m), abs=1e-9)
        if c["D"] <= c["A"]:
            assert max(c["ergotropy"]) == 0.0 and c["ergotropy_steady"] == 0.0


def test_thermalisation_numbers(run):
    r = run[2]["thermalisation"]
    T, J, w = r["T"], r["J"], r["omega_s"]
    ts = np.asarray(r["t"])
    for c in r["curves"]:
        delta = c["delta"]
        assert c["T_repeated"] == pytest.approx(w * T / (w + delta))
        assert c["T_eq21"] == pytest.approx(T, rel=1e-12)
        assert c["T_final"] == pytest.approx(T, rel=1e-6)
        # <J_z>(t) against the rate equation with rates from quadrature (alpha = E_R / T)
        alpha = r["E_R"] / T
        gp, gm = rates_ref(delta / T, (w + delta) / T, alpha)
        P = populations_ref(J, gp, gm, ts)
        m = np.arange(2 * J + 1) - J
        np.testing.assert_allclose(c["Jz"], P @ m, atol=1e-6 * J)


def test_phase_diagram_numbers(run):
    r = run[2]["phase_diagram"]
    J, alpha, tf = r["J"], r["alpha"], r["t_final"]
    D, A = np.asarray(r["D"]), np.asarray(r["A"])
    Wss, Wt = np.asarray(r["ergotropy_steady"]), np.asarray(r["ergotropy_final"])
    assert Wss.shape == Wt.shape == (len(D), len(A))
    for i, d in enumerate(D):
        for j, a in enumerate(A):
            p, m = gibbs_ref(J, a - d)
            assert Wss[i, j] == pytest.approx(ergotropy_ref(p, m), abs=1e-8)
            if d <= a:  # eq. (22) fails: no ergotropy, not even transiently from the ground state
                assert Wss[i, j] == 0.0 and Wt[i, j] == 0.0
    rng = np.random.default_rng(1)
    for i, j in zip(rng.integers(0, len(D), 4), rng.integers(0, len(A), 4), strict=True):
        gp, gm = rates_ref(D[i], A[j], alpha)
        P = populations_ref(J, gp, gm, np.array([0.0, tf]))
        m = np.arange(2 * J + 1) - J
        assert Wt[i, j] == pytest.approx(ergotropy_ref(P[-1], m), abs=1e-5)


def test_optimisation_numbers(run):
    r = run[2]["optimisation"]
    J, tf, w = r["J"], r["t_final"], r["omega_s"]
    x = {k: r[k] for k in ("T_a", "T_m", "delta")}
    for k, (lo, hi) in r["bounds"].items():
        assert lo <= x[k] <= hi
    # recompute W(t_f) at the reported optimum: Gamma~ of eq. (D4) written out, E_R = 1
    E_R = 1.0
    gt = 0.5 * (4 * math.pi * E_R / x["T_m"]) ** 1.5 * r["density"] * r["coupling"] ** 2 * E_R
    D, A, alpha = x["delta"] / x["T_m"], (w + x["delta"]) / x["T_a"], E_R / x["T_m"]
    gp, gm = rates_ref(D, A, alpha)
    P = populations_ref(J, gt * gp, gt * gm, np.array([0.0, tf]))
    W = ergotropy_ref(P[-1], w * (np.arange(2 * J + 1) - J))
    assert r["ergotropy"] == pytest.approx(W, rel=1e-6)
    assert r["ergotropy"] >= r["scan_best"]["value"] - 1e-9
    assert r["ergotropy"] > 0.5 * 2 * J * w  # a clearly charged battery
    hist = r["history"]
    assert len(hist["value"]) == len(hist["T_a"]) > 0
    land = np.asarray(r["landscape"]["ergotropy"])
    assert land.shape == (len(r["landscape"]["delta"]), len(r["landscape"]["T_m"]))
    assert land.max() <= r["ergotropy"] + 1e-6  # the optimum beats the picture's grid


def test_energy_flows_numbers(run):
    r = run[2]["energy_flows"]
    J, w_s, T_m, ts = r["J"], r["omega_s"], r["T_m"], np.asarray(r["t"])
    m = np.arange(2 * J + 1) - J
    for c in r["curves"]:
        S, A, M = (np.asarray(c[k]) for k in ("system", "ancilla", "motion"))
        assert np.max(np.abs(S + A + M)) < 1e-10  # first law at every time
        # Delta E_S from the rate equation by expm; tight coupling fixes the other two sectors
        gp, gm = rates_ref(c["D"], c["A"], 1.0)
        dE = (populations_ref(J, gp, gm, ts) - np.eye(2 * J + 1)[0]) @ (w_s * m)
        np.testing.assert_allclose(S, dE, atol=1e-6 * 2 * J)
        np.testing.assert_allclose(A, -(c["omega_a"] / w_s) * dE, atol=1e-5 * 2 * J)
        np.testing.assert_allclose(M, (c["delta"] / w_s) * dE, atol=1e-5 * 2 * J)
        eta = np.asarray(c["efficiency"])
        assert np.all(eta <= w_s / c["omega_a"] + 1e-9) and eta[-1] > 0.5 * c["bound"]
        assert c["bound"] < c["carnot"]  # eq. (22): the spin is inverted
    q = r["qubit"]
    w_a = q["omega_a"]
    for T_a, jS, jA, jM in zip(
        q["T_a"], q["steady_system"], q["steady_ancilla"], q["steady_motion"], strict=True
    ):
        # qubit with v = sx (x) sx: four channels, populations and currents in closed form
        p0, p1 = 1 / (1 + math.exp(-w_a / T_a)), 1 / (1 + math.exp(w_a / T_a))
        alpha = 1.0 / T_m
        up1, up2 = p1 * I_quad(alpha, w_s - w_a), p0 * I_quad(alpha, w_s + w_a)
        dn1, dn2 = p0 * I_quad(alpha, w_a - w_s), p1 * I_quad(alpha, -w_s - w_a)
        Pg = (dn1 + dn2) / (up1 + up2 + dn1 + dn2)
        J_A = w_a * ((up2 - up1) * Pg + (dn1 - dn2) * (1 - Pg))
        assert jA == pytest.approx(J_A, rel=1e-8, abs=1e-14)
        assert jM == pytest.approx(-J_A, rel=1e-8, abs=1e-14) and abs(jS) < 1e-14
        assert jA * (T_a - T_m) <= 1e-15  # heat leaves the hotter sector
    assert q["first_law_max"] < 1e-10


def _within_se(sample, exact, se, n_se=4.0):
    """|sample - exact| <= n_se standard errors wherever the spread is not zero (t > t0)."""
    sample, exact, se = (np.asarray(x, dtype=float) for x in (sample, exact, se))
    live = se > 0
    assert live.sum() > 0.8 * live.size
    z = np.abs(sample - exact)[live] / se[live]
    assert z.max() < n_se, z.max()
    # where the spread is zero (the start) sample and exact agree exactly
    np.testing.assert_allclose(sample[~live], exact[~live], atol=1e-12)


def test_heat_statistics_numbers(run):
    r = run[2]["heat_statistics"]
    # (a, b) the spin, tight coupling: from the ground state Q_A = -omega_A dE_S and
    # Q_M = Delta dE_S on every trajectory, so the exact cumulants are those of the spin's
    # energy from the rate equation (expm of the NumPy birth-death generator, quadrature rates)
    s = r["spin"]
    J, w_s, w_a, delta = s["J"], s["omega_s"], s["omega_a"], s["delta"]
    assert (s["D"], s["A"], w_a, s["T_a"]) == (2.0, 0.5, 3.0, 6.0) and s["method"] == "gillespie"
    ts = np.asarray(s["t"])
    gp, gm = rates_ref(s["D"], s["A"], 1.0)
    P = populations_ref(J, gp, gm, ts)
    m = w_s * (np.arange(2 * J + 1) - J)
    dE = P @ m - m[0]
    var = P @ m**2 - (P @ m) ** 2
    mean, cov = np.asarray(s["mean"]), np.asarray(s["covariance"])
    scale = np.array([-w_a, delta]) / w_s
    np.testing.assert_allclose(mean, dE[:, None] * scale, atol=1e-5 * 2 * J * w_a)
    np.testing.assert_allclose(
        cov, var[:, None, None] * np.outer(scale, scale), atol=1e-5 * (2 * J * w_a) ** 2 / 10
    )
    assert s["tight_coupling_max"] < 1e-9 and s["first_law_max"] < 1e-9
    # the trajectories' sample mean and variance: within 4 standard errors of the exact values
    for case in (s, r["qubit"]):
        exact_var = np.diagonal(np.asarray(case["covariance"]), axis1=1, axis2=2)
        _within_se(case["sample_mean"], case["mean"], case["se_mean"])
        _within_se(case["sample_var"], exact_var, case["se_var"])
        assert case["n_traj"] >= 10_000
        for h in case["histograms"]:
            for name in ("ancilla", "motion"):
                if name in h:  # a probability density over its bins
                    edges, dens = np.asarray(h[name]["edges"]), np.asarray(h[name]["density"])
                    assert np.sum(dens * np.diff(edges)) == pytest.approx(1.0, abs=1e-12)

    # (c, d) the qubit gas from its stationary state
    q = r["qubit"]
    w_a, T_a, T_m = q["omega_a"], q["T_a"], q["T_m"]
    assert (w_a, T_a, T_m) == (1.6, 3.0, 1.0)
    # the numbers (theta by a NumPy tilted superoperator, checked against QuTiP)
    J_A, D = q["currents"][0], np.asarray(q["diffusion"])
    assert J_A == pytest.approx(-0.08093, abs=1e-5) and q["currents"][1] == pytest.approx(-J_A)
    np.testing.assert_allclose(D, 0.29308 * np.array([[1, -1], [-1, 1]]), atol=1e-5)
    # finite times: the 2-state tilted rate matrix with quadrature rates, its cumulants from
    # SciPy expm by central differences of ln Z in lambda_A (four channels, |v|^2 = 1)
    p0, p1 = 1 / (1 + math.exp(-w_a / T_a)), 1 / (1 + math.exp(w_a / T_a))
    up1, up2 = p1 * I_quad(1 / T_m, 1 - w_a), p0 * I_quad(1 / T_m, 1 + w_a)
    dn1, dn2 = p0 * I_quad(1 / T_m, w_a - 1), p1 * I_quad(1 / T_m, -1 - w_a)

    def L(lam):  # columns: from (g, e); a jump adds -w_a (ancilla down) or +w_a to Q_A
        a, b = math.exp(-lam * w_a), math.exp(lam * w_a)
        return np.array([[-(up1 + up2), dn1 * b + dn2 * a], [up1 * a + up2 * b, -(dn1 + dn2)]])

    p_ss = np.array([dn1 + dn2, up1 + up2]) / (up1 + up2 + dn1 + dn2)
    np.testing.assert_allclose(q["populations0"], p_ss, rtol=1e-9)
    tq, h = np.asarray(q["t"]), 1e-3

    def lnZ(lam):
        return np.array([math.log(expm(L(lam) * t).sum(axis=0) @ p_ss) for t in tq])

    f = {k: lnZ(k * h) for k in (-2, -1, 0, 1, 2)}
    k1 = (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * h)
    k2 = (-f[-2] + 16 * f[-1] - 30 * f[0] + 16 * f[1] - f[2]) / (12 * h**2)
    mean, cov = np.asarray(q["mean"]), np.asarray(q["covariance"])
    np.testing.assert_allclose(mean[:, 0], k1, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(mean[:, 0], J_A * tq, rtol=1e-7, atol=1e-9)  # stationary start
    np.testing.assert_allclose(cov[:, 0, 0], k2, rtol=1e-6, atol=1e-8)
    # Q_A + Q_M = -dE_S is bounded: the variance grows like D_AA t plus a constant
    assert (cov[-1, 0, 0] - cov[-2, 0, 0]) / (tq[-1] - tq[-2]) == pytest.approx(D[0, 0], rel=1e-4)


# --- numbers apart from drawing ------------------------------------------------------------------

DRAWN = ("fig2_ergotropy", "fig3_scattering_integral", "thermalisation", "phase_diagram",
         "optimisation", "energy_flows", "heat_statistics")  # fmt: skip


def test_redraw_from_results_json(run):
    """Every figure redraws from its results.json entry alone (plain lists, "inf" strings), and
    draws exactly those numbers."""
    import jaxcoll.figures as figures

    results = run[2]
    n_axes = dict(
        fig3_scattering_integral=3,
        phase_diagram=3,
        optimisation=3,
        energy_flows=4,
        heat_statistics=4,
    )
    for name in DRAWN:
        fig = getattr(figures, f"draw_{name}")(results[name])
        assert len(fig.axes) == n_axes.get(name, 2 if name == "thermalisation" else 1), name
    r = results["fig2_ergotropy"]
    lines = [ln for ln in figures.draw_fig2_ergotropy(r).axes[0].lines if len(ln.get_xdata()) > 2]
    assert len(lines) == len(r["curves"])
    for ln, c in zip(lines, r["curves"], strict=True):
        np.testing.assert_array_equal(ln.get_xdata(), r["t"])
        np.testing.assert_array_equal(ln.get_ydata(), c["ergotropy"])


def test_numbers_and_rates_command_without_matplotlib():
    """With matplotlib unimportable, the figures' numbers and `jaxcoll rates` still work."""
    code = """
import sys
sys.modules["matplotlib"] = None  # any import of matplotlib now raises ImportError
import jaxcoll.figures as figures
from jaxcoll._cli import main

assert main(["rates", "--T-a", "2", "--delta", "1"]) == 0
d = figures.fig3_scattering_integral_data(fast=True)
assert d["log10_I"].shape == (21, 41)
d = figures.fig2_ergotropy_data(J=2, n_t=5)
assert len(d["curves"]) == 4 and d["t"].shape == (5,)
figures.print_table([[1.0]], ["x"])
try:
    figures.draw_fig2_ergotropy(d)
except ImportError:
    print("drawing needs matplotlib")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "gamma_plus" in proc.stdout and "drawing needs matplotlib" in proc.stdout


# --- helpers (in process, cheap) -----------------------------------------------------------------


def test_energy_temperature_inverts_gibbs():
    J = 3
    m = np.arange(2 * J + 1) - J
    for T in (0.1, 0.7, 3.0, -2.0):
        p = np.exp(-m / T)
        p /= p.sum()
        assert float(_energy_temperature(p @ m, J)) == pytest.approx(T, rel=1e-8)
    assert float(_energy_temperature(-J, J)) == 0.0


def test_gibbs_ergotropy_spin_half():
    # spin 1/2 at omega_S/T = b < 0: W = omega_S (p_up - p_down) = tanh(-b/2)
    for b in (-0.3, -2.0):
        assert float(gibbs_ergotropy(0.5, b)) == pytest.approx(math.tanh(-b / 2), rel=1e-12)
    assert float(gibbs_ergotropy(0.5, 0.4)) == 0.0


def test_jsonable_and_table(capsys):
    out = _jsonable({"a": np.arange(3.0), "b": (np.float64(np.inf), 1), "c": {"d": np.nan}})
    assert out == {"a": [0.0, 1.0, 2.0], "b": ["inf", 1], "c": {"d": "nan"}}
    json.dumps(out)
    print_table([[1.0, "x"], [2.5e-9, "yy"]], ["num", "s"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and len({len(x) for x in lines}) == 1
