"""examples/elastic_data.py: killed mid-epoch on 2 processes x 2 devices, resumed on 1 process
x 1 device, it sees exactly the global batches of the uninterrupted run."""

from __future__ import annotations

import pathlib
import subprocess
import sys

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "elastic_data.py"


def test_the_elastic_example_resumes_on_another_world_size_with_the_same_batches():
    proc = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "killed after 40 of 70 steps on 2 processes x 2 devices" in proc.stdout
    assert "every global batch identical to the uninterrupted run: True" in proc.stdout
