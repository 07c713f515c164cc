"""The Flax NNX and Equinox examples at CI size: killed halfway, resumed, bit-identical.

Each example trains in subprocesses (uninterrupted; SIGKILLed after half the epochs; resumed
from its Orbax checkpoint in a new process), on 1 and then on 4 host CPU devices with the
batch sharded over ``data``, and asserts that final params and every loss are identical.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    ("script", "library"), [("flax_nnx.py", "flax.nnx"), ("equinox.py", "equinox")]
)
def test_example_resumes_bit_identically_on_1_and_4_devices(script, library):
    pytest.importorskip(library)
    pytest.importorskip("orbax.checkpoint")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--tiny"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for devices in (1, 4):
        assert f"{devices} device(s): final params and all losses bit-identical: True" in (
            proc.stdout
        ), proc.stdout


def test_flax_vae_port_resumes_bit_identically_with_rs_save_and_with_orbax():
    pytest.importorskip("flax.nnx")
    pytest.importorskip("orbax.checkpoint")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "flax_vae.py"), "--tiny"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("rs.save", "Orbax"):
        assert (
            f"{name}: killed after step 7 and resumed: 10 losses, params and generators "
            "bit-identical: True"
        ) in proc.stdout, proc.stdout
