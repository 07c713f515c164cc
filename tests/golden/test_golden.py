"""Golden values: the pinned numbers of rngstate/golden.json are drawn, bit for bit.

The table itself is checked against independent references: JAX's own threefry2x32 for every
key (64-bit seeds and offsets included), and raw ``jax.random`` under ``fold_in`` for the
pairs where the contract says the two agree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import reference_key
from jax.extend.random import threefry_2x32

from rngstate import golden, selfcheck

CASES = golden.pinned_table()["cases"]
FLAGS = [True, False]
MASK = 0xFFFFFFFF


@pytest.mark.parametrize("partitionable", FLAGS)
def test_the_engine_draws_every_pinned_value(partitionable: bool):
    assert golden.mismatches(partitionable) == []


def test_the_table_pins_64_bit_seeds_and_offsets():
    pairs = [(c["seed"], c["offset"]) for c in CASES]
    assert any(s >= 2**32 for s, _ in pairs) and any(o >= 2**32 for _, o in pairs)
    assert (2**64 - 1, 2**64 - 1) in pairs and (0, 0) in pairs


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['seed']}-{c['offset']}")
def test_pinned_key_is_jax_threefry_of_the_offset_under_the_seed(case):
    s, o = case["seed"], case["offset"]
    words = threefry_2x32(
        (jnp.uint32(s >> 32), jnp.uint32(s & MASK)), jnp.array([o >> 32, o & MASK], jnp.uint32)
    )
    assert case["key"] == [f"0x{int(w):08x}" for w in words]


@pytest.mark.parametrize("partitionable", FLAGS)
def test_pinned_values_equal_raw_jax_random_where_fold_in_applies(partitionable: bool):
    small = [c for c in CASES if c["seed"] < 2**31 and c["offset"] < 2**32]
    assert small
    for case in small:
        key = reference_key(case["seed"], case["offset"])
        pinned = case["values"][f"threefry_partitionable={partitionable}"]
        with jax.threefry_partitionable(partitionable):
            bits = jax.random.bits(key, (4,), jnp.uint32)
            uniform = jax.random.uniform(key, (4,), jnp.float32)
            normal = jax.random.normal(key, (4,), jnp.float32)
            randint = jax.random.randint(key, (4,), 0, 100)
        assert pinned["bits_u32"] == [f"0x{int(w):08x}" for w in np.asarray(bits)]
        assert [int(h, 16) for h in pinned["uniform_f32"]] == np.asarray(uniform).view(
            np.uint32
        ).tolist()
        assert [int(h, 16) for h in pinned["normal_f32"]] == np.asarray(normal).view(
            np.uint32
        ).tolist()
        assert pinned["randint_0_100"] == np.asarray(randint).tolist()


def test_a_changed_value_is_reported(monkeypatch):
    table = golden.pinned_table()
    altered = {**table, "cases": [dict(c) for c in table["cases"]]}
    altered["cases"][2]["key"] = ["0x00000000", altered["cases"][2]["key"][1]]
    monkeypatch.setattr(golden, "pinned_table", lambda: altered)
    found = golden.mismatches(fields=("key",))
    assert len(found) == 1 and f"seed={altered['cases'][2]['seed']}" in found[0]


def test_doctor_checks_the_golden_values():
    [result] = selfcheck.run_checks(["golden values"])
    assert result.passed, result.detail


def test_a_moved_sampler_value_fails_the_doctor_check_and_says_why(monkeypatch):
    table = golden.pinned_table()
    altered = {**table, "cases": [dict(c) for c in table["cases"]]}
    case = altered["cases"][0] = {**altered["cases"][0]}
    flag = f"threefry_partitionable={jax.config.jax_threefry_partitionable}"
    case["values"] = {**case["values"], flag: {**case["values"][flag], "normal_f32": ["0x0"] * 4}}
    monkeypatch.setattr(golden, "pinned_table", lambda: altered)
    [result] = selfcheck.run_checks(["golden values"])
    assert not result.passed and "keys and bits match" in result.detail
