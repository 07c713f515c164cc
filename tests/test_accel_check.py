"""The accelerator check (benchmarks/accel_check.py), at tiny sizes on whatever backend runs.

`make accel-check` itself is not part of `make test`; this runs its report and benchmark
parts on two ops, and checks its ulp arithmetic and its fast-path rule on their own.
"""

from __future__ import annotations

import doctest
import json

import jax
import numpy as np
import pytest
from conftest import cpu_only_skip

import rngstate as rs
from benchmarks import accel_bench, accel_check, accel_doc, accel_values


def test_ulp_distance_counts_the_floats_between_two_values():
    # The independent reference: stepping with np.nextafter, across zero and from 1e-3 up.
    for start, steps in ((np.float32(-3e-45), 7), (np.float32(1e-3), 5), (np.float32(-2), 3)):
        stepped = start
        for _ in range(steps):
            stepped = np.nextafter(stepped, np.float32(np.inf))
        assert accel_values.ulp_distance(np.array([start]), np.array([stepped])).tolist() == [steps]
    nan = np.array([np.nan], np.float32)
    assert accel_values.ulp_distance(nan, nan).tolist() == [0]
    assert accel_values.scaled_ulps(nan, np.array([1.0], np.float32)).tolist() == [np.inf]


def test_scaled_ulps_count_small_values_in_ulps_of_one():
    eps = np.finfo(np.float32).eps
    a = np.array([1e-6, 0.5, 3.0], np.float32)
    b = a + np.array([eps, eps, 4 * eps], np.float32)
    assert accel_values.scaled_ulps(a, b) == pytest.approx([1.0, 1.0, 2.0], abs=0.01)


def test_every_op_has_a_stated_bound_and_cases():
    assert set(accel_values.BOUNDS) == set(rs.random.OP_NAMES)
    cases = accel_values.op_cases()
    assert {name for name, *_ in cases} == set(rs.random.OP_NAMES)
    assert {name for name, label, *_ in cases if label == "16x8"} == set(rs.random.OP_NAMES)


def _fake(name: str, size: int, figures: dict[str, float]) -> dict:
    """A harness result with the given medians and ratios to the first contender."""
    base = next(iter(figures.values()))
    contenders = []
    for contender, median in figures.items():
        entry = {"name": contender, "status": "ok", "reason": None, "median": median}
        if contender != next(iter(figures)):
            entry["ratio"] = {"median": median / base, "ci95": (median / base, median / base)}
        contenders.append(entry)
    return {"name": name, "size": size, "contenders": contenders}


def _in_jit(op: str, size: int, fast: float, slow: float) -> dict:
    figures = {accel_bench.RAW: 1.0, accel_bench.FAST: fast, accel_bench.SLOW: slow}
    return _fake(f"in-jit {op} 2**{size.bit_length() - 1}", size, figures)


@pytest.mark.parametrize(
    ("fast", "slow", "expected"),
    [(0.5, 1.0, True), (1.0, 0.5, False), (1.0, 1.02, None), (0.5, 1.0, None)],
)
def test_fast_path_rule_follows_the_largest_size(fast, slow, expected):
    results = [_in_jit("uniform", 2**20, fast, slow), _in_jit("normal", 2**20, fast, slow)]
    if expected is None and slow / fast > 1.05:
        # one op losing more than 5% keeps the default, however much the others gain
        results.append(_in_jit("bits u32", 2**20, 1.0, 0.9))
    results.append(_in_jit("uniform", 2**16, 1.0, 10.0))  # smaller sizes do not count
    decision = accel_bench.decide_fast_path(results, "gpu")
    assert decision["size"] == 2**20 and set(decision["speedups"]) >= {"uniform", "normal"}
    assert decision["default"] is expected, decision


def test_the_check_runs_and_writes_its_page(tmp_path, capsys):
    json_path, doc_path = tmp_path / "accel.json", tmp_path / "accelerators.md"
    code = accel_check.main(
        [
            "--tests=none",
            "--values=quick",
            "--ops=bits,uniform",
            "--mode=smoke",
            "--bench-ops=bits u32",
            f"--json={json_path}",
            f"--doc={doc_path}",
        ]
    )
    assert code == 0, capsys.readouterr().out[-3000:]
    result = json.loads(json_path.read_text())
    on_cpu = jax.default_backend() == "cpu"
    assert result["platform"] == ("cpu" if on_cpu else result["platform"])
    assert result["values"]["cpu_vs_cpu"] is on_cpu
    ops = {op["name"]: op for op in result["values"]["ops"]}
    assert set(ops) == {"bits", "uniform"} and all(op["passed"] for op in ops.values())
    assert ops["bits"]["elements"] == 3 * 128  # three (seed, offset) pairs of a (16, 8) draw
    assert all(c["passed"] for c in result["values"]["checkpoints"])
    assert [r["op"] for r in result["bench"]["rows"]] == ["bits u32"]
    page = doc_path.read_text()
    assert "| bits |" in page and "## TPU" in page
    if on_cpu:
        assert "**This is a CPU run.**" in page
    if "gpu" not in accel_doc.load_results([result]):
        assert "## GPU: pending" in page and accel_doc.GPU_COMMAND in page


@pytest.mark.parametrize("module", [accel_values, accel_doc])
def test_docstring_examples(module):
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)[:2]
    assert attempted > 0 and failed == 0


def test_cpu_only_tests_are_skipped_off_cpu_with_their_reason(request):
    assert cpu_only_skip(request.node, "gpu") is None  # not marked: runs everywhere
    request.node.add_marker(pytest.mark.cpu_only(reason="reads host memory"))
    assert cpu_only_skip(request.node, "cpu") is None
    assert cpu_only_skip(request.node, "gpu") == "cpu_only on a gpu backend: reads host memory"
