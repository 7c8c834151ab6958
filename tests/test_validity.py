"""`check_validity` against the paper's assumptions written out independently, and the
`jaxcoll validity` command line (table on stdout, warnings on stderr, bad arguments exit 2).

References: lambda_th from its definition with m = hbar^2/(2 E_R R^2); the Born scattering
length a_B = (m / 2 pi hbar^2) V0 int d^3x g(|x|) by SciPy quadrature of the Gaussian (D1);
||v|| and the largest jump rate from dense spin matrices (eigvalsh); the spin rates from the
closed form of eq. (20).
"""

import math
import types
import warnings

import jax
import numpy as np
import pytest
from _references import I_ref
from scipy.integrate import quad

import jaxcoll
from jaxcoll._cli import main
from jaxcoll._model import CollisionalModel
from jaxcoll._validity import ValidityWarning, _profile_volume, check_validity


def spin_dense(J):
    d = int(round(2 * J)) + 1
    m = np.arange(d) - J
    jp = np.diag(np.sqrt((J - m[:-1]) * (J + m[:-1] + 1)), -1)
    sm = np.array([[0.0, 1.0], [0.0, 0.0]])  # |0><1|: ancilla de-excitation
    v = np.kron(jp, sm) + np.kron(jp.T, sm.T)
    return m, jp, v


def references(J, omega_s, delta, T_a, T_m, density, coupling, E_R=1.0):
    R = 1.0
    mass = 1.0 / (2.0 * E_R * R**2)  # hbar = 1
    lam = math.sqrt(2.0 * math.pi / (mass * T_m))
    gt = density / R**3 * lam**3 * (coupling * E_R) ** 2 / (2.0 * E_R)  # eq. (D4)
    m, jp, v = spin_dense(J)
    v_norm = np.max(np.abs(np.linalg.eigvalsh(v)))
    vol = quad(lambda r: 4 * math.pi * r**2 * math.exp(-(r**2) / (2 * R**2)), 0, np.inf)[0]
    a_B = mass / (2 * math.pi) * abs(coupling) * E_R * v_norm * vol
    A = (omega_s + delta) / T_a
    gp = gt * I_ref(E_R / T_m, -delta / E_R) / (1 + math.exp(A))
    gm = gt * I_ref(E_R / T_m, delta / E_R) / (1 + math.exp(-A))
    K = gp * jp.T @ jp + gm * jp @ jp.T
    gmax = np.max(np.linalg.eigvalsh(K))
    return dict(
        low_density=density,
        degeneracy=density / R**3 * lam**3,
        born_strength=abs(coupling) * v_norm,
        born_length=a_B / R,
        markov=gmax / min(E_R, T_m),
        gamma_tilde=gt,
        v_norm=v_norm,
    )


README_OPTIMUM = dict(omega_s=1.0, delta=0.41, T_a=5.0, T_m=0.05, density=0.01, coupling=1.0)
DILUTE = dict(omega_s=1.0, delta=2.0, T_a=6.0, T_m=1.0, density=1e-3, coupling=0.05)


@pytest.mark.parametrize(
    "J, params",
    [(20, README_OPTIMUM), (0.5, DILUTE), (3, dict(DILUTE, T_m=0.3, coupling=-0.02))],
)
def test_spin_numbers_vs_references(J, params):
    gas = jaxcoll.SpinGas(J, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValidityWarning)
        rep = check_validity(gas)
    ref = references(J, **params)
    for name in ("low_density", "degeneracy", "born_strength", "born_length", "markov"):
        c = rep[name]
        assert c.value == pytest.approx(ref[name], rel=1e-10), name
        assert c.ok == (ref[name] <= 0.1), name
    assert rep.scales["gamma_tilde"] == pytest.approx(ref["gamma_tilde"], rel=1e-12)
    assert rep.scales["v_norm"] == pytest.approx(ref["v_norm"], rel=1e-12)
    assert rep["secular"].ok is True and rep["secular"].value is None  # the ancilla tells apart


def test_paper_optimum_warns_and_dilute_gas_passes():
    gas = jaxcoll.SpinGas(20, **README_OPTIMUM)
    with pytest.warns(ValidityWarning) as record:
        rep = check_validity(gas)
    names = {c.name for c in rep.violated}
    # n R^3 = 0.01 is dilute, but at T_M = 0.05 E_R the gas is degenerate (n lambda^3 ~ 40),
    # the J = 20 ladder makes the coupling strong, and the jumps outpace hbar/k_B T_M
    assert names == {"degeneracy", "born_strength", "born_length", "markov"}
    assert len(record) == 4 and all("should be <=" in str(w.message) for w in record)
    assert not rep.ok and "VIOLATED" in str(rep)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = check_validity(jaxcoll.SpinGas(0.5, **DILUTE))
    assert rep.ok and not rep.unknown
    text = str(rep)
    assert "all decidable criteria hold" in text
    for c in rep.criteria:
        assert c.name in text


def test_gamma_tilde_only():
    # Fig. 2 works in units of 1/Gamma~: valid in the low-density limit, Gamma~ -> 0
    small = jaxcoll.SpinGas(20, omega_s=1.0, delta=2.0, T_a=6.0, T_m=1.0, gamma_tilde=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = check_validity(small)
    for name in ("low_density", "degeneracy", "born_strength", "born_length"):
        assert rep[name].ok is None and rep[name].value is None
    _, _, v = spin_dense(20)
    v_norm = np.max(np.abs(np.linalg.eigvalsh(v)))
    assert rep["dilute_weak"].value == pytest.approx(2e-7 * v_norm**2, rel=1e-12)
    assert rep["dilute_weak"].ok is None and rep["dilute_weak"].status == "compatible"
    assert rep["dilute_weak"].threshold == pytest.approx(1e-3)
    assert rep.ok and rep["markov"].ok
    big = jaxcoll.SpinGas(20, omega_s=1.0, delta=2.0, T_a=6.0, T_m=1.0, gamma_tilde=1.0)
    with pytest.warns(ValidityWarning):
        rep = check_validity(big)
    assert {c.name for c in rep.violated} == {"dilute_weak", "markov"}


def test_general_model_matches_spin_and_secular_pairs():
    J, p = 2, dict(DILUTE, T_m=0.4)
    m, jp, v = spin_dense(J)
    w_a = p["omega_s"] + p["delta"]
    model = CollisionalModel(
        p["omega_s"] * np.diag(m), np.diag([0.0, w_a]), v,
        T_a=p["T_a"], T_m=p["T_m"], density=p["density"], coupling=p["coupling"],
    )  # fmt: skip
    a = check_validity(model, warn=False)
    b = check_validity(jaxcoll.SpinGas(J, **p), warn=False)
    for c, d in zip(a.criteria, b.criteria, strict=True):
        assert c.name == d.name
        if c.value is not None:
            assert c.value == pytest.approx(d.value, rel=1e-9), c.name
    # counter-rotating coupling sx (x) sx: the ancilla transition 1 -> 0 comes with both E = +w
    # and E = -w, which the dissipator must resolve: Gamma_max / (2 w)
    sx = np.array([[0.0, 1.0], [1.0, 0.0]])
    w = 0.7
    qubit = CollisionalModel(
        np.diag([-w / 2, w / 2]), np.diag([0.0, 1.5]), np.kron(sx, sx), T_a=1.0, T_m=2.0,
        gamma_tilde=0.05,
    )  # fmt: skip
    rep = check_validity(qubit, warn=False)
    alpha = 1.0 / 2.0
    p0, p1 = 1 / (1 + math.exp(-1.5)), 1 / (1 + math.exp(1.5))
    up = 0.05 * (p1 * I_ref(alpha, w - 1.5) + p0 * I_ref(alpha, w + 1.5))
    dn = 0.05 * (p0 * I_ref(alpha, -w + 1.5) + p1 * I_ref(alpha, -w - 1.5))
    assert rep.scales["gamma_max"] == pytest.approx(max(up, dn), rel=1e-10)
    assert rep["secular"].value == pytest.approx(max(up, dn) / (2 * w), rel=1e-10)


def test_thresholds_and_profile():
    gas = jaxcoll.SpinGas(0.5, **DILUTE)
    rep = check_validity(gas, threshold={"born_length": 0.01}, warn=False)
    assert rep["born_length"].threshold == 0.01 and rep["born_length"].ok is False
    assert rep["low_density"].threshold == 0.1
    rep = check_validity(gas, threshold=1e-4, warn=False)
    assert not rep["low_density"].ok
    for bad in (0.0, -1.0, math.inf, {"bogus": 1.0}, {"markov": -1.0}):
        with pytest.raises(ValueError, match="threshold"):
            check_validity(gas, threshold=bad)
    with pytest.raises(TypeError, match="threshold"):
        check_validity(gas, threshold="big")
    with pytest.raises(TypeError, match="model"):
        check_validity(object())
    # the interaction profile's volume integral enters the Born length; Gaussian by default
    assert _profile_volume(types.SimpleNamespace()) == pytest.approx((2 * math.pi) ** 1.5)
    box = types.SimpleNamespace(profile=types.SimpleNamespace(fourier=lambda k: 4 * math.pi / 3))
    assert _profile_volume(box) == pytest.approx(4 * math.pi / 3)


def test_traced_model_is_refused():
    def f(T_m):
        gas = jaxcoll.SpinGas(0.5, **dict(DILUTE, T_m=T_m))
        check_validity(gas)
        return T_m

    with pytest.raises(TypeError, match="concrete"):
        jax.jit(f)(1.0)


# --- command line -------------------------------------------------------------------------------


def run_main(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


GAS = ["--omega-s", "1", "--delta", "0.41", "--T-a", "5", "--T-m", "0.05"]


def test_cli_validity_table(capsys):
    argv = ["validity", "--J", "20", *GAS, "--density", "0.01", "--coupling", "1"]
    code, out, err = run_main(capsys, argv)
    assert code == 0, err
    ref = references(20, **README_OPTIMUM)
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    for name in ("low_density", "degeneracy", "born_strength", "born_length", "markov"):
        assert float(rows[name][-3]) == pytest.approx(ref[name], rel=1e-2), name
    assert rows["degeneracy"][-1] == "VIOLATED" and rows["low_density"][-1] == "ok"
    assert "4 criterion(s) violated" in out
    code, out, err = run_main(capsys, [*argv, "--strict"])
    assert code == 1
    code, out, err = run_main(capsys, ["validity", "--J", "0.5", "--omega-s", "1", "--delta", "2",
                                       "--T-a", "6", "--density", "1e-3", "--coupling", "0.05",
                                       "--strict"])  # fmt: skip
    assert code == 0 and "all decidable criteria hold" in out


def test_cli_validity_json(capsys, tmp_path):
    import json

    path = tmp_path / "v.json"
    argv = ["validity", "--J", "1", "--gamma-tilde", "0.5", "--out", str(path)]
    code, _, err = run_main(capsys, argv)
    assert code == 0, err
    data = json.loads(path.read_text())
    assert data["ok"] is False
    crit = {c["name"]: c for c in data["criteria"]}
    assert crit["low_density"]["value"] is None and crit["low_density"]["ok"] is None
    assert crit["dilute_weak"]["ok"] is False


def test_cli_evolve_and_rates_warn_on_stderr(capsys):
    argv = ["evolve", "--J", "2", "--t-final", "1", "--n-points", "3", "--gamma-tilde", "1"]
    code, out, err = run_main(capsys, argv)
    assert code == 0
    lines = err.strip().splitlines()
    assert lines and all(x.startswith("jaxcoll evolve: warning: ") for x in lines)
    assert any("markov" in x for x in lines)
    assert "energy" in out  # the table is still printed
    code, out, err = run_main(capsys, ["rates", *GAS, "--density", "1e-4", "--coupling", "0.01"])
    assert code == 0
    assert "degeneracy" in err and err.strip().splitlines()[0].startswith("jaxcoll rates: warning")
    code, out, err = run_main(capsys, ["rates", "--omega-s", "1", "--delta", "2", "--T-a", "6",
                                       "--density", "1e-3", "--coupling", "0.05"])  # fmt: skip
    assert code == 0 and err == ""


BAD = [
    ["validity"],
    ["validity", "--J", "0"],
    ["validity", "--J", "1.2"],
    ["validity", "--J", "1", "--threshold", "0"],
    ["validity", "--J", "1", "--threshold", "abc"],
    ["validity", "--J", "1", "--T-m", "-1"],
    ["validity", "--J", "1", "--density", "0.1"],
    ["validity", "--J", "1", "--gamma-tilde", "1", "--density", "0.1", "--coupling", "1"],
    ["validity", "--J", "1", "--bogus"],
    ["validity", "--J", "1", "--out", "/proc/no/such/dir/v.json"],
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a) for a in BAD])
def test_cli_bad_arguments(capsys, argv):
    code, out, err = run_main(capsys, argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("jaxcoll")


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["validity", "--help"])
    assert e.value.code == 0
    assert "usage: jaxcoll validity" in capsys.readouterr().out
