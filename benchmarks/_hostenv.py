"""Process set-up shared by the benchmark scripts; call `configure` before JAX is imported.
`machine` describes the host for a results file and `write_json` writes one.

BLAS is limited to one thread (SciPy's and QuTiP's small dense operations are fastest that way,
and oversubscribed BLAS threads make them erratic), and the host gets one XLA CPU device per
core (`--xla_force_host_platform_device_count`), over which `jaxcoll.scan` shards its chunks.
On a GPU the extra CPU devices are unused: JAX's default devices are the GPUs.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform


def configure(devices: int | None = None) -> None:
    """Set the environment (idempotent; does nothing to a flag the user already set)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    devices = os.cpu_count() if devices is None else devices
    if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        # Single-threaded ops per device: the ops here are tiny, and XLA's multi-threaded Eigen
        # pool has been seen to wedge on vmapped graphs under CPU oversubscription.
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + f" --xla_force_host_platform_device_count={devices}"
            + " --xla_cpu_multi_thread_eigen=false"
        ).strip()


def machine(**extra) -> dict:
    """The host of a run (cores, platform, JAX backend, `extra` entries, load average)."""
    import jax

    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "backend": jax.default_backend(),
        **extra,
        "load_average": os.getloadavg(),
    }


def write_json(path, payload) -> pathlib.Path:
    """Write `payload` as indented JSON to `path` (folders created); returns the path."""
    out = pathlib.Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    return out
