"""Contract §8: ops on sharded inputs under ``jax.set_mesh`` give the unsharded bits.

mesh_worker.py runs once, in a subprocess with 4 host CPU devices, and draws each case under
a ``jax.make_mesh`` mesh with explicit axes (JAX's default) and with auto axes: eagerly and
inside ``jax.jit``, next to raw ``jax.random`` with the same key. The tests read its report.
"""

from __future__ import annotations

import pathlib
import sys

import pytest
from host_devices import run_on_host_devices

WORKER = pathlib.Path(__file__).with_name("mesh_worker.py")
DEVICES = 4
sys.path.insert(0, str(WORKER.parent))
from mesh_worker import cases  # noqa: E402

CASES = [f"explicit/{c}" for c in cases(True)] + [f"auto/{c}" for c in cases(False)]


@pytest.fixture(scope="module")
def report() -> dict:
    return run_on_host_devices(DEVICES, WORKER, timeout=1200)


def test_the_worker_had_4_devices_and_ran_every_case(report):
    assert report["device_count"] == DEVICES
    assert sorted(report["cases"]) == sorted(CASES)


@pytest.mark.parametrize("case", CASES)
def test_sharded_draw_has_the_unsharded_bits_and_raw_jax_random_sharding(report, case):
    row = report["cases"][case]
    if "raw_error" in row:
        # jax.random itself refuses this input: rngstate raises the same error, no other.
        assert row.get("error", "").split(":")[0] == row["raw_error"].split(":")[0], row
        return
    assert "error" not in row, row["error"]
    assert row["eager_same_bits"], f"{case}: eager values differ from the unsharded draw"
    assert row["jit_same_bits"], f"{case}: jitted values differ from the unsharded jitted draw"
    assert row["sharding"] == row["raw_sharding"], row


def test_dropout_follows_the_sharding_of_x_under_an_explicit_mesh(report):
    for case in ("explicit/dropout", "explicit/dropout_small"):
        row = report["cases"][case]
        assert row["sharding"] == "P('data', None)" and row["blocks"] == DEVICES, row


def test_out_sharding_passes_through_to_jax_random(report):
    rows = {c: r for c, r in report["cases"].items() if c.endswith("_out_sharding")}
    assert len(rows) == 6
    for case, row in rows.items():
        assert row["sharding"] == "P('data', None)" and row["blocks"] == DEVICES, (case, row)
