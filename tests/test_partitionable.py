"""jax_threefry_partitionable: read, never changed; off means one warning per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import jax
import pytest

import rngstate as rs

# Runs with the flag off (JAX reads JAX_THREEFRY_PARTITIONABLE at start-up). The first call
# is the one named on the command line; every later draw must stay silent.
SCRIPT = """
import json, sys, warnings
import jax
import rngstate as rs

first = sys.argv[1]
gen = rs.Generator(seed=3)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    if first == "method":
        x, gen = gen.normal((4,))  # FIRST-CALL method
    else:
        kids, gen = gen.spawn(2)  # FIRST-CALL spawn
    after_first = len(caught)
    y, gen = rs.random.uniform(gen, (4,))
    z, gen = jax.jit(lambda g: g.bernoulli(0.5, (3,)))(gen)
    kids, gen = gen.spawn(3)
    d, gen = gen.dropout(jax.numpy.ones(4), 0.5)
print(json.dumps({
    "after_first": after_first,
    "warnings": [[w.category.__name__, str(w.message), w.filename, w.lineno] for w in caught],
    "flag_after": bool(jax.config.jax_threefry_partitionable),
    "values_follow_raw_jax": bool((y == jax.random.uniform(rs.Generator(3, 1).key(), (4,))).all()),
}))
"""


def _run_with_flag_off(first: str) -> dict:
    env = {**os.environ, "JAX_THREEFRY_PARTITIONABLE": "0", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, first],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


# A method goes through the op and the dispatch (the op form is the same path, one frame
# shorter); spawn has its own check, as jax.random.split's keys depend on the flag too.
@pytest.mark.parametrize("first", ["method", "spawn"])
def test_flag_off_warns_once_at_the_first_draw_and_is_left_off(first):
    report = _run_with_flag_off(first)
    assert report["after_first"] == 1, report["warnings"]
    assert len(report["warnings"]) == 1, "later draws must not warn again"
    category, message, filename, lineno = report["warnings"][0]
    assert category == "UserWarning"
    assert "jax_threefry_partitionable is off" in message
    assert "depend on how outputs are sharded" in message
    assert "Checkpoints record this setting" in message
    # The warning points at the user's call, not into rngstate.
    assert filename == "<string>"
    lines = SCRIPT.splitlines()
    assert lineno == next(i for i, line in enumerate(lines, 1) if f"FIRST-CALL {first}" in line)
    assert report["flag_after"] is False, "rngstate must never flip the flag"
    assert report["values_follow_raw_jax"]


def test_flag_on_is_jax_default_and_draws_are_silent():
    assert jax.config.jax_threefry_partitionable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gen = rs.Generator(seed=3)
        _, gen = rs.random.normal(gen, (4,))
        _, gen = gen.spawn(2)


def test_rngstates_own_golden_check_draws_with_the_flag_off_without_warning(monkeypatch):
    from rngstate import _partitionable, golden

    # Other tests draw with the flag off on purpose and spend the process's one warning;
    # start this one as a fresh process would.
    monkeypatch.setattr(_partitionable, "_warned", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert golden.mismatches(partitionable=False, fields=("uniform_f32",)) == []
