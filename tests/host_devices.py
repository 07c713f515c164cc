"""Run a worker script in a subprocess that sees ``devices`` host CPU devices.

The test process keeps its own devices; XLA fixes the host device count when JAX starts, so
a test that needs a mesh of several devices runs its worker in a new process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_on_host_devices(
    devices: int, worker: str | os.PathLike[str], *args: object, timeout: float
) -> dict:
    """Run ``python worker *args`` on ``devices`` host CPU devices; its last line, as JSON.

    Any XLA_FLAGS of this process are kept, and JAX_PLATFORMS=cpu makes the host devices the
    default ones on a machine with an accelerator too.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    env = {
        **os.environ,
        "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={devices}".strip(),
        "JAX_PLATFORMS": "cpu",
    }
    proc = subprocess.run(
        [sys.executable, str(worker), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    return json.loads(proc.stdout.splitlines()[-1])
