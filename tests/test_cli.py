"""The `jaxcoll` command line: every subcommand's output against independent references, and
bad arguments -> one line on stderr, exit status 2, no traceback.

`jaxcoll reproduce --fast` itself runs (as a subprocess of the console script) in
test_figures.py, which checks its numbers.
"""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from _references import (
    I_quad,
    birth_death_generator,
    ergotropy_density_ref,
    profile_rates_ref,
    square_well_fourier,
)
from scipy.linalg import expm

from jaxcoll._cli import main

# --- independent references (no jaxcoll code) ----------------------------------------------------


def rates_ref(omega_s, delta, T_a, T_m, gamma_tilde=None, density=None, coupling=None, E_R=1.0):
    """Gamma_+- of eq. (19); Gamma~ given or from eq. (D4)."""
    if gamma_tilde is None:
        gamma_tilde = 0.5 * (4 * math.pi * E_R / T_m) ** 1.5 * density * coupling**2 * E_R
    alpha, s, A = E_R / T_m, delta / E_R, (omega_s + delta) / T_a
    gp = gamma_tilde * I_quad(alpha, -s) / (1 + math.exp(A))
    gm = gamma_tilde * I_quad(alpha, s) / (1 + math.exp(-A))
    return gp, gm


def spin_ops(J):
    """Ascending-m J_z, J_+ (index 0 is m = -J)."""
    d = int(round(2 * J)) + 1
    m = np.arange(d) - J
    jp = np.diag(np.sqrt((J - m[:-1]) * (J + m[:-1] + 1)), -1)
    return np.diag(m), jp


def lindblad_ref(J, omega_s, gp, gm):
    """Dense superoperator of eq. (18), row-major vec: vec(A X B) = kron(A, B.T) vec(X)."""
    jz, jp = spin_ops(J)
    jm = jp.T
    d = jz.shape[0]
    eye = np.eye(d)
    H = omega_s * jz
    L = -1j * (np.kron(H, eye) - np.kron(eye, H.T))
    for g, a in ((gp, jp), (gm, jm)):
        ada = a.T @ a
        L += g * (np.kron(a, a.conj()) - 0.5 * np.kron(ada, eye) - 0.5 * np.kron(eye, ada.T))
    return L


def run_main(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


# --- bad arguments -------------------------------------------------------------------------------

OPT = ["optimize", "--J", "20", "--t-final", "3", "--density", "0.01", "--coupling", "1"]
SCAN = ["scan", "--J", "2", "--T-a", "1", "--T-m", "1", "2", "3", "--delta", "0", "1", "3"]
BAD = [
    [],
    ["nonsense"],
    ["--bogus"],
    ["rates", "--T-a", "-1"],
    ["rates", "--T-a", "0"],
    ["rates", "--T-m", "abc"],
    ["rates", "--T-m"],
    ["rates", "--delta", "nan"],
    ["rates", "--delta", "inf"],
    ["rates", "--bogus", "1"],
    ["rates", "--density", "0.1"],
    ["rates", "--gamma-tilde", "1", "--density", "1", "--coupling", "1"],
    ["rates", "--gamma-tilde", "-1"],
    ["rates", "--out", "/proc/no/such/dir/x.json"],
    ["evolve", "--t-final", "1"],
    ["evolve", "--J", "0", "--t-final", "1"],
    ["evolve", "--J", "1.3", "--t-final", "1"],
    ["evolve", "--J", "-1", "--t-final", "1"],
    ["evolve", "--J", "abc", "--t-final", "1"],
    ["evolve", "--J", "inf", "--t-final", "1"],
    ["evolve", "--J", "2"],
    ["evolve", "--J", "2", "--t-final", "-1"],
    ["evolve", "--J", "2", "--t-final", "1", "--n-points", "1"],
    ["evolve", "--J", "2", "--t-final", "1", "--n-points", "0"],
    ["evolve", "--J", "2", "--t-final", "1", "--n-points", "2.5"],
    ["evolve", "--J", "2", "--t-final", "1", "--initial", "excited"],
    ["evolve", "--J", "2", "--t-final", "1", "--initial", "thermal"],
    ["evolve", "--J", "2", "--t-final", "1", "--initial", "thermal", "--T0", "-1"],
    ["evolve", "--J", "2", "--t-final", "1", "--T-m", "-0.5"],
    ["scan", "--J", "2", "--T-a", "1", "2", "--T-m", "1", "--delta", "0"],
    ["scan", "--J", "2", "--T-a", "2", "1", "3", "--T-m", "1", "--delta", "0", "1", "3"],
    ["scan", "--J", "2", "--T-a", "1", "2", "0", "--T-m", "1", "--delta", "0", "1", "3"],
    ["scan", "--J", "2", "--T-a", "1", "2", "2.5", "--T-m", "1", "--delta", "0", "1", "3"],
    ["scan", "--J", "2", "--T-a", "1", "--T-m", "1", "--delta", "0"],
    ["scan", "--J", "2", "--T-a", "1", "2", "3", "--T-m", "1", "2", "3", "--delta", "0", "1", "3"],
    ["scan", "--J", "2", "--T-a", "-1", "--T-m", "1", "2", "3", "--delta", "0", "1", "3"],
    ["scan", "--J", "2", "--T-a", "1", "--T-m", "-1", "2", "3", "--delta", "0", "1", "3"],
    ["scan", "--J", "2", "--T-a", "1", "--T-m", "1", "2", "3", "--delta", "0", "1", "x"],
    [*SCAN, "--t-final", "-1"],
    ["scan", "--J", "2", "--T-m", "1", "2", "3", "--delta", "0", "1", "3"],
    [*OPT, "--T-a", "5", "0.2"],
    [*OPT, "--T-a", "-1", "2"],
    [*OPT, "--T-m", "0", "2"],
    [*OPT, "--T-m", "1", "1"],
    [*OPT, "--T-m", "1"],
    [*OPT, "--delta", "2", "-1"],  # lo > hi (a box reaching below zero is allowed)
    [*OPT, "--delta", "a", "b"],
    [*OPT, "--steps", "-1"],
    [*OPT, "--starts", "0"],
    [*OPT, "--scan-points", "1"],
    [*OPT, "--objective", "fun"],
    ["optimize", "--J", "20", "--t-final", "3", "--coupling", "1"],
    ["optimize", "--J", "20", "--t-final", "3"],  # no rate scale
    [*OPT, "--gamma-tilde", "1"],  # two rate scales
    ["optimize", "--J", "7.2", "--t-final", "3", "--density", "0.01", "--coupling", "1"],
    ["optimize", "--J", "20", "--t-final", "0", "--density", "0.01", "--coupling", "1"],
    ["optimize", "--J", "20", "--t-final", "3", "--density", "-0.01", "--coupling", "1"],
    [*OPT, "--profile", "lorentzian"],
    [*OPT, "--drift", "-0.5"],
    [*OPT, "--drift", "inf"],
    ["rates", "--profile", "Square_Well"],
    [*SCAN, "--drift", "x"],
    ["reproduce", "--out"],
    ["reproduce", "--fats"],
    ["bench", "--J", "3"],
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a) or "(none)" for a in BAD])
def test_bad_arguments_one_line_exit_2(capsys, argv):
    code, out, err = run_main(capsys, argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("jaxcoll")


@pytest.mark.parametrize(
    "argv",
    [
        ["rates", "--T-a", "-1"],
        ["evolve", "--J", "0.3", "--t-final", "1"],
        [*OPT, "--T-a", "5", "0.2"],
        ["frobnicate"],
    ],
)
def test_bad_arguments_in_a_real_process(argv):
    proc = subprocess.run(
        [sys.executable, "-m", "jaxcoll._cli", *argv], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("cmd", ["reproduce", "rates", "evolve", "scan", "optimize", "bench"])
def test_help(capsys, cmd):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert "usage: jaxcoll " + cmd in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("jaxcoll ")


# --- subcommands against references --------------------------------------------------------------


def test_rates(capsys, tmp_path):
    f = tmp_path / "r.json"
    argv = ["rates", "--delta", "0.7", "--T-a", "1.3", "--T-m", "0.4", "--density", "0.02",
            "--coupling", "0.8", "--out", str(f)]  # fmt: skip
    code, out, err = run_main(capsys, argv)
    assert code == 0, err
    d = json.loads(f.read_text())
    gp, gm = rates_ref(1.0, 0.7, 1.3, 0.4, density=0.02, coupling=0.8)
    assert d["gamma_plus"] == pytest.approx(gp, rel=1e-9)
    assert d["gamma_minus"] == pytest.approx(gm, rel=1e-9)
    assert d["T_eff"] == pytest.approx(1.0 * 1.3 * 0.4 / (1.7 * 0.4 - 0.7 * 1.3), rel=1e-12)
    assert "gamma_plus" in out


def test_evolve_ground_state(capsys, tmp_path):
    f = tmp_path / "e.json"
    argv = ["evolve", "--J", "2", "--delta", "1", "--T-a", "2", "--T-m", "0.3",
            "--gamma-tilde", "5", "--t-final", "4", "--n-points", "5", "--out", str(f)]  # fmt: skip
    code, out, err = run_main(capsys, argv)
    assert code == 0, err
    d = json.loads(f.read_text())
    assert d["t"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    gp, gm = rates_ref(1.0, 1.0, 2.0, 0.3, gamma_tilde=5.0)
    L = lindblad_ref(2, 1.0, gp, gm)
    jz, _ = spin_ops(2)
    rho0 = np.diag(np.eye(5)[0]).astype(complex)
    for t, E, W in zip(d["t"], d["energy"], d["ergotropy"], strict=True):
        rho = (expm(L * t) @ rho0.reshape(-1)).reshape(5, 5)
        assert E == pytest.approx(np.real(np.trace(rho @ jz)), abs=1e-7)
        assert W == pytest.approx(ergotropy_density_ref(rho, jz), abs=1e-7)
    assert d["ergotropy"][-1] > 0.05  # inverted by t = 4 (D > A here)
    assert len(out.splitlines()) == 2 + 5 + 1  # header, rule, rows, "wrote"


def test_evolve_coherent_and_thermal(capsys, tmp_path):
    f = tmp_path / "c.json"
    argv = ["evolve", "--J", "1", "--initial", "coherent", "--theta", "2.0", "--phi", "0.5",
            "--T-a", "0.8", "--T-m", "1.5", "--delta", "-0.3", "--t-final", "2", "--n-points", "3",
            "--out", str(f)]  # fmt: skip
    code, _, err = run_main(capsys, argv)
    assert code == 0, err
    d = json.loads(f.read_text())
    gp, gm = rates_ref(1.0, -0.3, 0.8, 1.5, gamma_tilde=1.0)
    L = lindblad_ref(1, 1.0, gp, gm)
    # |theta, phi> with <J> along (sin th cos ph, sin th sin ph, cos th), ascending m
    th, ph = 2.0, 0.5
    m = np.arange(3) - 1
    amp = np.sqrt([math.comb(2, k) for k in range(3)]) * np.cos(th / 2) ** (1 + m)
    amp = amp * np.sin(th / 2) ** (1 - m) * np.exp(-1j * m * ph)
    rho0 = np.outer(amp, amp.conj())
    jz, _ = spin_ops(1)
    for t, E, W in zip(d["t"], d["energy"], d["ergotropy"], strict=True):
        rho = (expm(L * t) @ rho0.reshape(-1)).reshape(3, 3)
        assert E == pytest.approx(np.real(np.trace(rho @ jz)), abs=1e-7)
        assert W == pytest.approx(ergotropy_density_ref(rho, jz), abs=1e-7)

    argv = ["evolve", "--J", "1.5", "--initial", "thermal", "--T0", "0.7", "--t-final", "1",
            "--n-points", "2", "--out", str(f)]  # fmt: skip
    code, _, err = run_main(capsys, argv)
    assert code == 0, err
    d = json.loads(f.read_text())
    m = np.arange(4) - 1.5
    p = np.exp(-m / 0.7)
    assert d["energy"][0] == pytest.approx(p @ m / p.sum(), abs=1e-10)
    assert d["ergotropy"] == [0.0, 0.0]  # T_a = T_m: thermal states stay passive


def test_scan_rates_json_and_npz(capsys, tmp_path):
    base = ["scan", "--J", "3", "--T-a", "0.5", "2", "3", "--T-m", "0.4", "--delta", "0", "2",
            "4", "--no-progress"]  # fmt: skip
    code, out, err = run_main(capsys, [*base, "--out", str(tmp_path / "s.json")])
    assert code == 0, err
    d = json.loads((tmp_path / "s.json").read_text())
    assert d["shape"] == [3, 4] and d["fixed"] == {"T_m": 0.4}
    T_a, delta = np.meshgrid(d["axes"]["T_a"], d["axes"]["delta"], indexing="ij")
    T_eff = np.asarray(d["T_eff"], dtype=float)
    den = (1 + delta) * 0.4 - delta * T_a
    np.testing.assert_allclose(T_eff, T_a * 0.4 / den, rtol=1e-12)
    # steady state: Gibbs at T_eff, ergotropy > 0 exactly when T_eff < 0 (eq. 22)
    m = np.arange(7) - 3.0
    for i, j in np.ndindex(3, 4):
        b = 1 / T_eff[i, j]
        p = np.exp(-b * (m - (m.max() if b < 0 else m.min())))
        p /= p.sum()
        W = p @ m - (-np.sort(-p)) @ m
        assert d["ergotropy_steady"][i][j] == pytest.approx(W, abs=1e-9)
        assert (W > 0) == (T_eff[i, j] < 0)
    gp, gm = rates_ref(1.0, delta[1, 2], T_a[1, 2], 0.4, gamma_tilde=1.0)
    assert d["gamma_plus"][1][2] == pytest.approx(gp, rel=1e-9)
    assert d["gamma_minus"][1][2] == pytest.approx(gm, rel=1e-9)
    assert "T_eff" in out
    code, _, err = run_main(capsys, [*base, "--out", str(tmp_path / "s.npz")])
    assert code == 0, err
    z = np.load(tmp_path / "s.npz")
    np.testing.assert_allclose(z["T_eff"], T_eff)
    np.testing.assert_array_equal(z["delta"], d["axes"]["delta"])


def test_scan_ergotropy_at_t_final(capsys, tmp_path):
    argv = ["scan", "--J", "4", "--T-a", "5", "--T-m", "0.05", "0.2", "2", "--delta", "0.4",
            "1.0", "2", "--density", "0.01", "--coupling", "1", "--t-final", "10", "--no-progress",
            "--out", str(tmp_path / "s.json")]  # fmt: skip
    code, out, err = run_main(capsys, argv)
    assert code == 0, err
    d = json.loads((tmp_path / "s.json").read_text())
    L_jz = spin_ops(4)[0]
    for i, T_m in enumerate(d["axes"]["T_m"]):
        for j, delta in enumerate(d["axes"]["delta"]):
            gp, gm = rates_ref(1.0, delta, 5.0, T_m, density=0.01, coupling=1.0)
            L = lindblad_ref(4, 1.0, gp, gm)
            rho = (expm(L * 10.0) @ np.diag(np.eye(9)[0]).astype(complex).reshape(-1)).reshape(9, 9)
            assert d["ergotropy"][i][j] == pytest.approx(ergotropy_density_ref(rho, L_jz), abs=1e-6)
    assert min(min(r) for r in d["ergotropy"]) > 1.0


def test_optimize_contract_flags(capsys, tmp_path):
    f = tmp_path / "best.json"
    argv = ["optimize", "--J", "20", "--t-final", "3", "--omega-s", "1", "--density", "0.01",
            "--coupling", "1", "--T-a", "1", "5", "--T-m", "0.05", "0.3", "--delta", "0.2", "1",
            "--steps", "3", "--scan-points", "3", "--starts", "2", "--polish", "3",
            "--no-progress", "--out", str(f)]  # fmt: skip
    code, out, err = run_main(capsys, argv)
    assert code == 0, err
    d = json.loads(f.read_text())
    assert {"T_a", "T_m", "delta", "ergotropy"} <= set(d)
    assert 1 <= d["T_a"] <= 5 and 0.05 <= d["T_m"] <= 0.3 and 0.2 <= d["delta"] <= 1
    gp, gm = rates_ref(1.0, d["delta"], d["T_a"], d["T_m"], density=0.01, coupling=1.0)
    # populations only (ground-state start): the rate equation (11)
    J = 20
    m = np.arange(2 * J + 1) - J
    P = expm(3.0 * birth_death_generator(J, gp, gm))[:, 0]
    W = P @ m - (-np.sort(-P)) @ m
    assert d["ergotropy"] == pytest.approx(W, rel=1e-6)
    assert d["ergotropy"] > 30.0
    assert "ergotropy" in out and "T_a" in out


def test_optimize_with_a_square_well_gas(capsys, tmp_path):
    """--profile and --drift reach the optimiser: W(t_f) at the reported optimum is that of the
    drifting square-well gas (SciPy quadrature of I_g, rate equation (11) by expm)."""
    f = tmp_path / "sw.json"
    argv = ["optimize", "--J", "2", "--t-final", "20", "--density", "0.01", "--coupling", "2",
            "--T-a", "4", "5", "--T-m", "0.2", "0.5", "--delta", "0.8", "1",
            "--profile", "square_well", "--steps", "1", "--starts", "1",
            "--scan-points", "2", "--polish", "1", "--no-progress", "--out", str(f)]  # fmt: skip
    code, out, err = run_main(capsys, argv)
    assert code == 0, err
    d = json.loads(f.read_text())
    assert d["profile"] == "square_well" and d["drift"] is None
    gt = 0.5 * (4 * math.pi / d["T_m"]) ** 1.5 * 0.01 * 2.0**2  # eq. (D4), E_R = 1
    gp, gm = profile_rates_ref(
        square_well_fourier, 1.0, d["delta"], d["T_a"], d["T_m"], gamma_tilde=gt
    )
    m = np.arange(5) - 2
    P = expm(20.0 * birth_death_generator(2, gp, gm))[:, 0]
    W = P @ m - (-np.sort(-P)) @ m
    assert W > 1.0
    assert d["ergotropy"] == pytest.approx(W, rel=1e-7)


def test_rates_of_a_drifting_square_well_gas(capsys, tmp_path):
    f = tmp_path / "r.json"
    argv = ["rates", "--delta", "0.7", "--T-a", "2", "--T-m", "0.8", "--gamma-tilde", "1.5",
            "--profile", "square_well", "--drift", "0.4", "--out", str(f)]  # fmt: skip
    code, _, err = run_main(capsys, argv)
    assert code == 0, err
    d = json.loads(f.read_text())
    gp, gm = profile_rates_ref(square_well_fourier, 1.0, 0.7, 2.0, 0.8, gamma_tilde=1.5, drift=0.4)
    assert d["gamma_plus"] == pytest.approx(gp, rel=1e-10)
    assert d["gamma_minus"] == pytest.approx(gm, rel=1e-10)
    # the drift breaks eq. (21): the stationary temperature comes from the rates
    assert d["T_eff"] == pytest.approx(1.0 / math.log(gm / gp), rel=1e-9)


def test_bench_quick(capsys, tmp_path):
    code, out, err = run_main(capsys, ["bench", "--quick", "--out", str(tmp_path / "b.json")])
    assert code == 0, err
    d = json.loads((tmp_path / "b.json").read_text())
    assert {r["task"] for r in d["results"]} >= {"scattering_integral", "evolve, populations"}
    assert all(r["seconds"] > 0 for r in d["results"])
    assert "benchmarks/" in out


def test_reproduce_wiring(capsys, tmp_path, monkeypatch):
    """The subcommand passes its flags through (the real run is in test_figures.py)."""
    import jaxcoll._figures as figures

    seen = {}
    monkeypatch.setattr(figures, "reproduce", lambda out, fast, progress: seen.update(
        out=out, fast=fast, progress=progress))  # fmt: skip
    code, out, _ = run_main(
        capsys, ["reproduce", "--out", str(tmp_path), "--fast", "--no-progress"]
    )
    assert code == 0
    assert seen == {"out": str(tmp_path), "fast": True, "progress": False}
