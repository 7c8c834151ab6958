"""Parameter scans: pointwise agreement, padding, resume after an interruption, sharding."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcoll
from jaxcoll import _scan
from jaxcoll._observables import ergotropy_populations
from jaxcoll._scan import grid, scan


def _physics(p):
    """Steady-state ergotropy and the rates of a spin J = 3: a cheap, nontrivial jittable fn."""
    m = jaxcoll.SpinGas(
        3, omega_s=1.0, delta=p["delta"], T_a=p["T_a"], T_m=p["T_m"], density=0.01, coupling=1.0
    )
    pss = m.steady_state_populations()
    gp, gm = m.rates()
    return {"W": ergotropy_populations(pss, m.energies()), "rates": jnp.stack([gp, gm])}


def _points():
    return grid(T_a=[0.5, 2.0, 5.0], T_m=np.linspace(0.05, 2.0, 5), delta=np.linspace(0, 6, 3))


def test_grid_order_and_shape():
    g = grid(a=[1.0, 2.0], b=[10.0, 20.0, 30.0])
    np.testing.assert_array_equal(g["a"], [1, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(g["b"], [10, 20, 30, 10, 20, 30])
    with pytest.raises(ValueError, match="grid axis b"):
        grid(a=[1.0], b=[])


def test_scan_equals_pointwise():
    pts = _points()
    n = pts["T_a"].size
    res = scan(_physics, pts, chunk_size=7, progress=False)  # 45 points: padded last chunk
    assert res["W"].shape == (n,) and res["rates"].shape == (n, 2)
    f = jax.jit(_physics)
    for i in range(n):
        ref = f({k: v[i] for k, v in pts.items()})
        np.testing.assert_allclose(res["W"][i], ref["W"], rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(res["rates"][i], ref["rates"], rtol=1e-13, atol=0)
    assert np.any(res["W"] > 0) and np.any(res["W"] == 0)  # both inverted and passive points


def test_locality_order_is_a_permutation_returned_in_place():
    a, b = np.linspace(0.0, 1.0, 8), np.linspace(-3.0, 5.0, 8)
    pts = grid(a=a, b=b)
    perm = _scan._locality_order(pts, 64)
    assert sorted(perm) == list(range(64))
    # Z-order: the first four points are the 2 x 2 block at the corner, then the next block
    assert {(pts["a"][i], pts["b"][i]) for i in perm[:4]} == {(x, y) for x in a[:2] for y in b[:2]}
    f = lambda p: {"x": p["a"] * 10 + p["b"], "i": jnp.stack([p["a"], p["b"]])}
    loc = scan(f, pts, chunk_size=5, progress=False)
    given = scan(f, pts, chunk_size=5, progress=False, order="given")
    for k in loc:
        np.testing.assert_array_equal(loc[k], given[k])
    np.testing.assert_allclose(loc["x"], pts["a"] * 10 + pts["b"], rtol=1e-14, atol=1e-14)
    with pytest.raises(ValueError, match="order"):
        scan(f, pts, order="random")


def test_scan_list_of_points_and_errors():
    pts = [{"T_a": 2.0, "T_m": 0.1, "delta": 3.0}, {"T_a": 1.0, "T_m": 1.0, "delta": 0.0}]
    res = scan(_physics, pts, progress=False)
    assert res["W"][0] > 0 and res["W"][1] == 0
    with pytest.raises(ValueError, match="leading"):
        scan(_physics, {"T_a": np.ones(3), "T_m": np.ones(2), "delta": np.ones(3)})
    with pytest.raises(ValueError, match="empty"):
        scan(_physics, [])


def _read_dir(d):
    return {name: open(os.path.join(d, name), "rb").read() for name in sorted(os.listdir(d))}


def test_resume_after_interrupt_gives_identical_files(tmp_path, monkeypatch):
    pts = _points()
    full, part = tmp_path / "full", tmp_path / "part"
    ref = scan(_physics, pts, chunk_size=8, out=full, progress=False)

    calls = {"n": 0}
    original = _scan._Store.write

    def flaky_write(self, index, start, values):
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated interruption")
        calls["n"] += 1
        return original(self, index, start, values)

    monkeypatch.setattr(_scan._Store, "write", flaky_write)
    with pytest.raises(KeyboardInterrupt):
        scan(_physics, pts, chunk_size=8, out=part, progress=False)
    monkeypatch.setattr(_scan._Store, "write", original)
    assert json.load(open(part / "manifest.json"))["done"] == [0, 1, 2]

    written = []

    def counting_write(self, index, start, values):
        written.append(index)
        return original(self, index, start, values)

    monkeypatch.setattr(_scan._Store, "write", counting_write)
    res = scan(_physics, pts, chunk_size=8, out=part, progress=False)
    assert written == [3, 4, 5]  # only the missing chunks are computed
    for k in ref:
        np.testing.assert_array_equal(res[k], ref[k])
    assert _read_dir(part) == _read_dir(full)

    # A finished scan resumes to nothing; a different scan in the same place is refused.
    written.clear()
    scan(_physics, pts, chunk_size=8, out=part, progress=False)
    assert written == []
    with pytest.raises(ValueError, match="different scan"):
        scan(_physics, pts, chunk_size=16, out=part, progress=False)
    scan(_physics, pts, chunk_size=16, out=part, progress=False, resume=False)
    assert json.load(open(part / "manifest.json"))["chunk_size"] == 16


_SHARDED = textwrap.dedent(
    """
    import os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    sys.path.insert(0, {here!r})
    from test_scan import _physics, _points
    from jaxcoll._scan import scan
    assert len(jax.local_devices()) == 4, jax.local_devices()
    pts = _points()
    a = scan(_physics, pts, chunk_size=10, progress=False, shard=True, out={out!r})
    b = scan(_physics, pts, chunk_size=10, progress=False, shard=False)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-14, atol=1e-300)
    import json
    m = json.load(open(os.path.join({out!r}, "manifest.json")))
    assert m["chunk_size"] == 12, m  # rounded up to a multiple of the 4 devices
    print("OK", len(jax.local_devices()))
    """
)


def test_sharded_scan_on_four_cpu_devices(tmp_path):
    here = os.path.dirname(os.path.abspath(__file__))
    code = _SHARDED.format(here=here, out=str(tmp_path / "sharded"))
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK 4" in proc.stdout
