"""`scan` on two real processes (jax.distributed on 127.0.0.1, gloo CPU collectives).

CONTRACT.md: "`jaxcoll.scan(fn, points, ...)` on several processes (`jax.distributed`): every
process gets the full, correct result; never a silent zero." The reference is a
single-process run of the same scan, and, independently of `scan`, `jit(fn)` point by point.
Each worker is a fresh Python process (tests/_scan_worker.py) with a timeout, so a hung
collective fails the test instead of hanging CI.
"""

import json
import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "_scan_worker.py")
sys.path.insert(0, HERE)
import _scan_worker  # noqa: E402

TIMEOUT = 120  # seconds per job; a healthy one takes a few


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ)
    root = os.path.dirname(HERE)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("XLA_FLAGS", None)  # the worker sets its device count itself
    return env


def _start(tmp, nproc, devices=1, out=None, chunk=4, exit_after=None, tag="run"):
    """Start the `nproc` workers of one job; returns `[(Popen, result_path), ...]`.

    `chunk` is one chunk size for all, or a list of one per process.
    """
    chunks = chunk if isinstance(chunk, list) else [chunk] * nproc
    port = _free_port()
    procs = []
    for rank in range(nproc):
        result = os.path.join(tmp, f"{tag}.{rank}.npz")
        cmd = [sys.executable, WORKER, "--port", str(port), "--nproc", str(nproc)]
        cmd += ["--rank", str(rank), "--devices", str(devices), "--chunk", str(chunks[rank])]
        cmd += ["--result", result]
        if out is not None:
            cmd += ["--out", str(out)]
        if exit_after is not None and rank == 0:
            cmd += ["--exit-after-writes", str(exit_after)]
        p = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env()
        )
        procs.append((p, result))
    return procs


def _finish(procs, expect_rc=0):
    """Wait for every worker (killing all on timeout); returns their stdouts."""
    logs = []
    deadline = time.monotonic() + TIMEOUT
    try:
        for p, _ in procs:
            stdout, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            logs.append(stdout)
            assert p.returncode == expect_rc, stdout[-3000:]
    finally:
        for p, _ in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return logs


def _run(tmp, nproc, **kw):
    procs = _start(tmp, nproc, **kw)
    logs = _finish(procs)
    return [dict(np.load(r)) for _, r in procs], logs


def _bits(tree):
    return {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in tree.items()}


def _files(d):
    return {f: open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A single-process run with `out` (one device, chunk 4), and `jit(fn)` point by point."""
    tmp = tmp_path_factory.mktemp("single")
    (res,), _ = _run(str(tmp), 1, out=tmp / "out")
    pts = _scan_worker.points()
    f = jax.jit(_scan_worker.fn)
    for i in range(pts["T_a"].size):
        ref = f({k: v[i] for k, v in pts.items()})
        for k in res:
            np.testing.assert_allclose(res[k][i], ref[k], rtol=1e-13, atol=1e-14)
    assert np.all(np.signbit(res["negzero"])) and 0 < np.isnan(res["nan"]).sum() < res["nan"].size
    return res, _files(tmp / "out")


def test_two_processes_bit_for_bit(tmp_path, reference):
    ref, ref_files = reference
    # Without out: each process gets the whole result, -0.0 and NaN included.
    results, _ = _run(str(tmp_path), 2, tag="mem")
    for res in results:
        assert _bits(res) == _bits(ref)
    # With out: the files are byte-identical to the single-process run's (manifest included).
    results, logs = _run(str(tmp_path), 2, out=tmp_path / "out", tag="out")
    for res in results:
        assert _bits(res) == _bits(ref)
    assert _files(tmp_path / "out") == ref_files
    assert sorted(int(w.split()[1]) for w in logs[0].split("\n") if w.startswith("WROTE")) == list(
        range(9)
    )  # process 0 wrote all 9 chunks, its own and the gathered ones
    assert "WROTE" not in logs[1]


def test_two_processes_two_devices_each(tmp_path, reference):
    ref, _ = reference
    # 4 devices in all: chunk_size rounds up to 4 per process either way, but each process
    # splits its chunk over 2 devices, so batch shapes differ from the reference.
    results, logs = _run(str(tmp_path), 2, devices=2, out=tmp_path / "out")
    assert all("DONE" in log and log.strip().endswith(" 2") for log in logs)
    for res in results + [{k: np.load(tmp_path / "out" / f"{k}.npy") for k in ref}]:
        for k in ref:
            np.testing.assert_allclose(res[k], ref[k], rtol=1e-13, atol=1e-300)
            np.testing.assert_array_equal(np.signbit(res[k]), np.signbit(ref[k]))


def test_killed_job_resumes_on_restart(tmp_path, reference):
    ref, ref_files = reference
    out = tmp_path / "out"
    # Process 0 dies as it is about to write its 5th chunk; process 1, left waiting in a
    # collective, is killed as a job scheduler would.
    procs = _start(str(tmp_path), 2, out=out, exit_after=4, tag="killed")
    try:
        procs[0][0].wait(timeout=TIMEOUT)
        assert procs[0][0].returncode == 17
    finally:
        for p, _ in procs:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=TIMEOUT)
    done = json.load(open(out / "manifest.json"))["done"]
    assert done == [0, 1, 2, 3]

    results, logs = _run(str(tmp_path), 2, out=out, tag="restart")
    rewritten = sorted(int(w.split()[1]) for w in logs[0].split("\n") if w.startswith("WROTE"))
    assert rewritten == [4, 5, 6, 7, 8]  # finished chunks are not computed again
    for res in results:
        assert _bits(res) == _bits(ref)
    assert _files(out) == ref_files

    # A different scan in `out` is refused on every process (none is left in a collective).
    logs = _finish(_start(str(tmp_path), 2, out=out, chunk=8, tag="other"), expect_rc=1)
    for log in logs:
        assert "ValueError" in log and "different scan" in log


def test_processes_running_different_scans_are_refused(tmp_path):
    # Chunks are dealt out by index, so all processes must chunk the same points alike.
    logs = _finish(_start(str(tmp_path), 2, chunk=[4, 8]), expect_rc=1)
    for log in logs:
        assert "ValueError" in log and "different points, chunk_size" in log
