"""process_generator: one stream per process, from the generator every process shares."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import rngstate as rs

GEN = rs.Generator(seed=2**40 + 5, offset=7)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_process_child_is_the_split_key_of_its_index(index):
    child, next_gen = rs.process_generator(GEN, process_index=index, process_count=3)
    expected = jax.random.key_data(jax.random.split(GEN.key(), 3))[index]
    np.testing.assert_array_equal(child.seed, expected)
    np.testing.assert_array_equal(child.offset, [0, 0])
    assert next_gen == GEN.construct(1)  # the same in every process


def test_processes_get_different_streams():
    draws = [
        rs.process_generator(GEN, process_index=i, process_count=4)[0].normal((8,))[0]
        for i in range(4)
    ]
    for i in range(4):
        for j in range(i):
            assert not np.array_equal(draws[i], draws[j])


def test_defaults_come_from_the_jax_runtime():
    child, _ = rs.process_generator(GEN)  # this test process: index 0 of 1
    assert (jax.process_index(), jax.process_count()) == (0, 1)
    assert child == rs.process_generator(GEN, process_index=0, process_count=1)[0]


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (
            {"process_index": 2, "process_count": 2},
            ValueError,
            r"process_index must be in \[0, 2\)",
        ),
        ({"process_index": -1, "process_count": 2}, ValueError, r"process_index must be in"),
        ({"process_index": 0, "process_count": 0}, ValueError, r"process_count must be >= 1"),
        (
            {"process_index": 1.0, "process_count": 2},
            TypeError,
            "process_index must be a Python int",
        ),
        (
            {"process_index": 0, "process_count": True},
            TypeError,
            "process_count must be a Python int",
        ),
    ],
)
def test_bad_ranks_name_the_argument_and_range(kwargs, error, message):
    with pytest.raises(error, match=message):
        rs.process_generator(GEN, **kwargs)


def test_refuses_a_batch_or_a_key():
    kids, _ = GEN.spawn(2)
    with pytest.raises(ValueError, match="one generator"):
        rs.process_generator(kids)
    with pytest.raises(TypeError, match="Generator"):
        rs.process_generator(GEN.key())
