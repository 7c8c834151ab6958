"""What users see: no private imports in the docs, a README tour that runs, integers as floats.

References: the closed form of eq. (20) and the rates of eq. (19) (`_references.py`, SciPy
only), SciPy's `expm` of the birth-death generator of eq. (11), and Gamma~ of eq. (D4) written
out from CONTRACT.md.
"""

import ast
import importlib
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from _references import (
    birth_death_generator,
    ergotropy_ref,
    fig2_rates_ref,
    spin_rates_ref,
)

import jaxcoll

ROOT = Path(__file__).resolve().parents[1]
# `jaxcoll._x` but not `jaxcoll.__version__`
PRIVATE = re.compile(r"\bjaxcoll\._(?!_)\w*")
PRIVATE_IMPORT = re.compile(r"(?:from\s+jaxcoll\._(?!_)\w*\s+import|import\s+jaxcoll\._(?!_))")
PUBLIC_IMPORT = re.compile(
    r"from[ \t]+(jaxcoll(?:\.[a-z]\w*)?)[ \t]+import[ \t]+(\([^)]*\)|[\w ,]+)"
)


def _docstrings():
    """Every module, class and function docstring of the package, with where it is."""
    for path in sorted((ROOT / "jaxcoll").glob("*.py")):
        tree = ast.parse(path.read_text())
        nodes = [tree, *ast.walk(tree)]
        for node in nodes:
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    yield f"{path.name}:{getattr(node, 'name', '<module>')}", doc


def _user_docs():
    yield "README.md", (ROOT / "README.md").read_text()
    yield "scripts/make_notebooks.py", (ROOT / "scripts" / "make_notebooks.py").read_text()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        yield nb.name, nb.read_text()


def test_docs_and_notebooks_use_no_private_names():
    # README, notebooks and their generator: not even a mention of a private module
    bad = {name: PRIVATE.findall(text) for name, text in _user_docs()}
    assert not {k: v for k, v in bad.items() if v}, bad
    # docstrings may name a private module in prose, but their examples import none
    bad = {name: PRIVATE_IMPORT.findall(doc) for name, doc in _docstrings()}
    assert not {k: v for k, v in bad.items() if v}, bad


def test_the_checks_can_fail():
    assert PRIVATE.search("from jaxcoll._figures import fig2_ergotropy")
    assert PRIVATE.search("jaxcoll._interop.qutip_lindblad(model)")
    assert not PRIVATE.search("jaxcoll.__version__, jaxcoll.figures, jaxcoll.scan")
    assert PRIVATE_IMPORT.search("    from jaxcoll._optimize import optimize_ergotropy")
    assert PRIVATE_IMPORT.search("import jaxcoll._scan as s")


def test_documented_imports_exist():
    """Every `from jaxcoll[.module] import names` in the docs and docstrings resolves."""
    texts = [*_user_docs(), *_docstrings()]
    found = 0
    for where, text in texts:
        for module, names in PUBLIC_IMPORT.findall(text.replace("\\n", "\n")):
            mod = importlib.import_module(module)
            for name in re.split(r"[\s,()]+", names.strip()):
                if name and name != "as":
                    assert hasattr(mod, name), f"{where}: {module} has no {name}"
                    found += 1
    assert found >= 10  # the notebooks alone import a dozen public names


PUBLIC = (
    "optimize_ergotropy",
    "OptimizeResult",
    "ergotropy_at",
    "ergotropy_trajectory",
    "energy_trajectory",
    "max_ergotropy",
    "charging_power",
    "max_charging_power",
    "final_energy",
    "value_and_grad",
    "spin_model",
    "qutip_lindblad",
    "EnergyFlows",
)


@pytest.mark.parametrize("name", PUBLIC)
def test_exported_at_top_level(name):
    obj = getattr(jaxcoll, name)
    assert obj.__doc__  # documented


def _readme_tour():
    text = (ROOT / "README.md").read_text()
    start = text.index("## A tour of the API")
    begin = text.index("```python\n", start) + len("```python\n")
    return text[begin : text.index("```\n", begin)]


def _gamma_tilde(density, coupling, T_m, E_R=1.0):
    # CONTRACT.md: "Gamma~ = 0.5 * (4 pi E_R / T_m)^(3/2) * density * coupling^2 * E_R / hbar"
    return 0.5 * (4 * np.pi * E_R / T_m) ** 1.5 * density * coupling**2 * E_R


def _w_ref(J, t, T_a, T_m, delta, density, coupling, omega_s=1.0):
    gp, gm = spin_rates_ref(omega_s, delta, T_a, T_m, 1.0, _gamma_tilde(density, coupling, T_m))
    p = scipy.linalg.expm(birth_death_generator(J, gp, gm) * t)[:, 0]
    return ergotropy_ref(p, omega_s * (np.arange(2 * J + 1) - J))


def test_readme_tour_runs_and_its_numbers_are_right(capsys):
    tour = _readme_tour()
    assert "jaxcoll._" not in tour
    ns = {}
    exec(compile(tour, "README.md (A tour of the API)", "exec"), ns)  # noqa: S102
    assert "criterion" in capsys.readouterr().out  # the validity report was printed
    # W(t = 3) of the functional line, against SciPy from the ground state at t = 0
    ref = _w_ref(20, 3.0, 5.0, 0.05, 0.4, 0.01, 1.0)
    np.testing.assert_allclose(float(ns["W"]), ref, rtol=1e-6)
    assert set(ns["dW"]) == {"T_m", "delta"}  # only what is in the dict is differentiated
    best = ns["best"]
    assert best.T_a == 5.0 and best.active["T_a"] == "fixed"
    assert 0.05 <= best.T_m <= 5.0 and 0.0 <= best.delta <= 10.0
    # the reported ergotropy is what SciPy says at the reported point
    ref_best = _w_ref(20, 3.0, best.T_a, best.T_m, best.delta, 0.01, 1.0)
    np.testing.assert_allclose(best.ergotropy, ref_best, rtol=1e-6)


def test_python_ints_work_like_floats():
    # CONTRACT.md: "`jaxcoll.spin_rates(D, A, alpha)` -> `(gamma_plus, gamma_minus)` of eq. (19)
    # divided by Gamma~"
    np.testing.assert_allclose(jaxcoll.spin_rates(4, 1, 1), fig2_rates_ref(4, 1, 1), rtol=1e-12)
    np.testing.assert_allclose(
        jaxcoll.log_spin_rates(4, 1, 1), np.log(fig2_rates_ref(4, 1, 1)), rtol=1e-12
    )
    np.testing.assert_allclose(
        jaxcoll.spin_rates(np.array([4, 2]), 1, 1)[0],
        [fig2_rates_ref(4, 1, 1)[0], fig2_rates_ref(2, 1, 1)[0]],
        rtol=1e-12,
    )
    gas = jaxcoll.SpinGas(2, omega_s=1, delta=2, T_a=1, T_m=1, density=1, coupling=1)
    np.testing.assert_allclose(
        gas.rates(), spin_rates_ref(1.0, 2.0, 1.0, 1.0, 1.0, _gamma_tilde(1, 1, 1)), rtol=1e-12
    )
    w = jaxcoll.ergotropy_at({"T_m": 1}, 20, J=2, T_a=3, delta=2, density=1, coupling=1)
    np.testing.assert_allclose(w, _w_ref(2, 20.0, 3.0, 1.0, 2.0, 1.0, 1.0), rtol=1e-6)
