"""The tutorial notebooks execute top to bottom in fast mode (`JAXCOLL_NB_FAST=1`).

They run in a Jupyter kernel started from this very interpreter (whatever kernel specs the
machine has installed), two at a time. The stored notebooks carry no outputs and are exactly
what `scripts/make_notebooks.py` writes.
"""

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = [
    "01_scattering_integral_and_rates.ipynb",
    "02_thermalisation.ipynb",
    "03_ergotropy_fig2.ipynb",
    "04_gradients_and_optimisation.ipynb",
    "05_large_J_and_gpu_scans.ipynb",
    "06_your_own_system.ipynb",
    "07_interaction_shapes.ipynb",
    "08_heat_statistics.ipynb",
]

SLOW = ("04_gradients_and_optimisation.ipynb",)


class _ThisInterpreter(KernelSpecManager):
    """Every kernel name resolves to an IPython kernel of `sys.executable`."""

    def get_kernel_spec(self, kernel_name):
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name="jaxcoll tests",
            language="python",
            env={"JAXCOLL_NB_FAST": "1", "MPLBACKEND": "Agg"},
        )


def _execute(path):
    from jupyter_client.manager import KernelManager

    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_spec_manager=_ThisInterpreter(), kernel_name="python3")
    client = nbclient.NotebookClient(
        nb, km=km, timeout=600, kernel_name="python3", resources={"metadata": {"path": ROOT}}
    )
    t0 = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        return path.name, str(e), time.perf_counter() - t0
    return path.name, None, time.perf_counter() - t0


@pytest.fixture(scope="module")
def executed():
    old = os.environ.get("JAXCOLL_NB_FAST")
    os.environ["JAXCOLL_NB_FAST"] = "1"
    try:
        # longest first, so that the two workers finish together
        order = sorted(NOTEBOOKS, key=lambda p: p.name not in SLOW)
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(_execute, order))
    finally:
        if old is None:
            os.environ.pop("JAXCOLL_NB_FAST", None)
        else:
            os.environ["JAXCOLL_NB_FAST"] = old
    return {name: (err, sec) for name, err, sec in results}


def test_notebooks_present_and_stored_without_outputs():
    assert [p.name for p in NOTEBOOKS] == EXPECTED
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name
        assert "JAXCOLL_NB_FAST" in nb.cells[1].source  # the setup cell reads fast mode


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_executes(executed, name):
    err, seconds = executed[name]
    assert err is None, f"{name} failed after {seconds:.0f} s:\n{err[-4000:]}"
