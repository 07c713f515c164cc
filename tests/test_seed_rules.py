"""Global seed + op seed: MindSpore's documented set_seed cases, one test per case.

The references are raw jax.random with keys built by JAX's own threefry_2x32 from the
documented stream rule, and fresh NumPy / Python generators seeded by the documented rule.
"Different / the same on every run" is checked on two separate Python processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import reference_key, reference_key_u64, threefry_u64

import rngstate as rs

pytestmark = pytest.mark.usefixtures("isolated_rng")

RUN_SCRIPT = r"""
import json, sys
import rngstate as rs
from jax._src import xla_bridge

out = {
    "torch_imported": "torch" in sys.modules,
    "backend_started_by_import": xla_bridge.backends_are_initialized(),
    "global_seed": rs.get_seed(),
    "entropy_seed": rs.initial_seed(),
}
bits = lambda **kw: rs.ops.bits((4,), **kw).tolist()
out["case1"] = [bits(), bits()]
out["case3"] = [bits(seed=7), bits(seed=7)]
rs.set_seed(123)
out["case2"] = [bits(), bits()]
out["case4"] = [bits(seed=7), bits(seed=7)]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def two_runs():
    """The same script in two fresh processes, run side by side."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RUN_SCRIPT],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    runs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        runs.append(json.loads(out))
    return runs


def _forget_global_seed():
    snapshot = rs.capture()
    snapshot["global_seed"]["is_set"] = False
    rs.restore(snapshot)
    assert rs.get_seed() is None


def _stream_key(global_seed, op_seed, name, offset):
    """The documented rule: H(H(global, op seed), blake2b-64(name)), then the contract key."""
    name_hash = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")
    seed = threefry_u64(threefry_u64(global_seed, op_seed), name_hash)
    return reference_key_u64(seed, offset)


def _bits(key):
    return np.asarray(jax.random.bits(key, (4,))).tolist()


def test_case_1_no_global_seed_no_op_seed_draws_from_the_default_generator(two_runs):
    _forget_global_seed()
    gen = rs.default_generator()
    seed, offset = rs.initial_seed(), int(np.asarray(gen.offset)[1])
    first, second = rs.ops.bits((4,)).tolist(), rs.ops.bits((4,)).tolist()
    assert first == _bits(reference_key_u64(seed, offset))
    assert second == _bits(reference_key_u64(seed, offset + 1)) != first
    assert rs.default_generator() == gen.construct(2)
    # different on each run: the default generator is seeded from OS entropy at import
    a, b = two_runs
    assert a["global_seed"] is None and b["global_seed"] is None
    assert a["entropy_seed"] != b["entropy_seed"]
    assert a["case1"] != b["case1"] and a["case1"][0] != a["case1"][1]


def test_case_2_global_seed_only_gives_the_same_sequence_on_every_run(two_runs):
    rs.set_seed(123)
    drawn = [rs.ops.bits((4,)).tolist() for _ in range(2)]
    assert drawn == [_bits(reference_key(123, 0)), _bits(reference_key(123, 1))]
    assert drawn[0] != drawn[1]
    a, b = two_runs
    assert a["case2"] == b["case2"] == drawn


def test_case_3_op_seed_only_uses_global_seed_0(two_runs):
    _forget_global_seed()
    before = rs.default_generator()
    drawn = [rs.ops.bits((4,), seed=7).tolist() for _ in range(2)]
    assert drawn == [_bits(_stream_key(0, 7, "bits", 0)), _bits(_stream_key(0, 7, "bits", 1))]
    assert drawn[0] != drawn[1]
    assert rs.default_generator() == before  # op-seed draws leave the default generator alone
    a, b = two_runs
    assert a["case3"] == b["case3"] == drawn
    rs.set_seed(0)  # "global seed 0 is used": the same as setting it to 0
    assert rs.ops.bits((4,), seed=7).tolist() == drawn[0]


def test_case_4_global_and_op_seed_give_a_counted_stream_per_op_name(two_runs):
    rs.set_seed(123)
    drawn = [rs.ops.bits((4,), seed=7).tolist() for _ in range(2)]
    rs.ops.bits((4,))  # a default draw in between moves no stream
    drawn.append(rs.ops.bits((4,), seed=7).tolist())
    assert drawn == [_bits(_stream_key(123, 7, "bits", o)) for o in range(3)]
    a, b = two_runs
    assert a["case4"] == b["case4"] == drawn[:2]
    assert a["case4"] != a["case3"]  # the global seed is part of the key
    uniform = rs.ops.uniform((2,), seed=7)  # another op name: its own stream, from offset 0
    np.testing.assert_array_equal(
        uniform, jax.random.uniform(_stream_key(123, 7, "uniform", 0), (2,))
    )
    wide = rs.ops.bits((4,), seed=2**40 + 7).tolist()
    assert (
        wide
        == _bits(_stream_key(123, 2**40 + 7, "bits", 0))
        != _bits(_stream_key(123, 7, "bits", 0))
    )


def _every_sequence():
    return [
        [rs.ops.normal((2,)).tolist() for _ in range(3)],
        [rs.ops.normal((2,), seed=1).tolist() for _ in range(3)],
        [rs.ops.uniform((2,), seed=2**64 - 1).tolist() for _ in range(2)],
        np.random.rand(4).tolist(),
        [random.random() for _ in range(4)],
    ]


def test_case_5_set_seed_again_replays_every_sequence_from_its_start():
    rs.set_seed(9)
    first = _every_sequence()
    rs.set_seed(10)
    other = _every_sequence()
    rs.set_seed(9)
    assert _every_sequence() == first
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_set_seed_accepts_u64_and_rejects_everything_else():
    for good in (0, 2**64 - 1, np.uint64(2**63), np.int32(4)):
        rs.set_seed(good)
        assert rs.get_seed() == int(good)
    for bad in (-1, 2**64):
        with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*64\)"):
            rs.set_seed(bad)
    for bad in (1.0, "1", True, np.array([1, 2])):
        with pytest.raises(TypeError, match="seed must be"):
            rs.set_seed(bad)
    assert rs.get_seed() == 4


def test_numpy_and_python_are_seeded_by_the_documented_rule():
    def numpy_and_python(seed):
        rs.set_seed(seed)
        return np.random.rand(3).tolist(), random.random()

    # below 2**32: exactly np.random.seed(seed) and random.seed(seed)
    assert numpy_and_python(5) == (
        np.random.RandomState(5).rand(3).tolist(),
        random.Random(5).random(),
    )
    # wider: the two 32-bit words, low first, so 64-bit seeds stay distinct
    wide = numpy_and_python(2**40 + 5)
    words = np.array([5, 2**8], dtype=np.uint32)
    assert wide == (
        np.random.RandomState(words).rand(3).tolist(),
        random.Random(2**40 + 5).random(),
    )
    draws = {tuple(numpy_and_python(s)[0]) for s in (5, 2**40 + 5, 2**32 + 5, 2**33 + 5, 2**64 - 1)}
    assert len(draws) == 5


def test_stream_seed_rule_is_documented_and_collision_free_for_op_seeds():
    name_hash = int.from_bytes(hashlib.blake2b(b"gamma", digest_size=8).digest(), "big")
    expected = threefry_u64(threefry_u64(2**63 + 1, 2**50 + 3), name_hash)
    assert rs.facade.stream_seed(2**63 + 1, 2**50 + 3, "gamma") == expected
    seeds = {rs.facade.stream_seed(17, s, n) for s in range(64) for n in ("normal", "uniform")}
    assert len(seeds) == 128


def test_importing_rngstate_starts_no_backend_and_imports_no_torch(two_runs):
    for run in two_runs:
        assert run["backend_started_by_import"] is False
        assert run["torch_imported"] is False
