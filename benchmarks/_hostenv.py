"""Process set-up shared by the benchmark scripts; call `configure` before JAX is imported.

BLAS is limited to one thread (SciPy's and QuTiP's small dense operations are fastest that way,
and oversubscribed BLAS threads make them erratic), and the host gets one XLA CPU device per
core (`--xla_force_host_platform_device_count`), over which `jaxcoll.scan` shards its chunks.
On a GPU the extra CPU devices are unused: JAX's default devices are the GPUs.
"""

from __future__ import annotations

import os


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
