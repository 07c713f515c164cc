"""Each migration decision of docs/migration.md, pinned; test_readme_examples runs its examples."""

import jax
import numpy as np
import pytest

import rngstate as rs
from rngstate.facade import stream_seed


def test_initial_seed_is_unsigned_by_default_and_signed_on_request():
    gen = rs.Generator(seed=-7)
    assert gen.initial_seed() == 2**64 - 7  # torch.initial_seed()'s reading
    assert gen.initial_seed(signed=True) == -7  # MindSpore's int64 reading
    assert rs.Generator(seed=2**63 - 1).initial_seed(signed=True) == 2**63 - 1
    assert rs.Generator(seed=2**63).initial_seed(signed=True) == -(2**63)
    with rs.fork_rng():
        rs.manual_seed(-7)
        assert (rs.initial_seed(), rs.initial_seed(signed=True)) == (2**64 - 7, -7)


def test_offset_advances_by_one_per_op_so_a_carried_offset_counts_ops():
    # A MindSpore state at offset 12 (one op there) is twelve ops in here.
    loaded = rs.Generator().set_state((7).to_bytes(8, "little") + (12).to_bytes(8, "little"))
    gen = rs.Generator(7)
    for _ in range(12):
        _, gen = gen.uniform(())
    assert loaded == gen


def test_set_seed_resets_the_default_generator_and_manual_seed_then_moves_it():
    with rs.fork_rng():
        rs.set_seed(5)
        assert rs.default_generator() == rs.Generator(5, 0)
        rs.manual_seed(9)
        x = rs.ops.normal((2,))
        np.testing.assert_array_equal(x, jax.random.normal(rs.Generator(9).key(), (2,)))
        assert rs.get_seed() == 5


def test_global_seed_zero_is_zero_and_unset_global_seed_uses_zero_for_op_seeds():
    with rs.fork_rng():
        rs.set_seed(0)
        assert rs.default_generator() == rs.Generator(0, 0)  # no 87654321 remapping
        after_zero = rs.ops.uniform((3,), seed=4)
        rs.set_seed(None)
        unset = rs.ops.uniform((3,), seed=4)
    want = jax.random.uniform(rs.Generator(stream_seed(0, 4, "uniform")).key(), (3,))
    np.testing.assert_array_equal(after_zero, want)
    np.testing.assert_array_equal(unset, want)


def test_one_op_seed_at_two_call_sites_shares_one_stream():
    # MindSpore's ops.StandardNormal(seed=7) instances each repeat; here the second continues.
    with rs.fork_rng():
        rs.set_seed(1)
        first = rs.ops.normal((2,), seed=7)
        second = rs.ops.normal((2,), seed=7)
    stream = rs.Generator(stream_seed(1, 7, "normal"))
    np.testing.assert_array_equal(first, jax.random.normal(stream.key(), (2,)))
    np.testing.assert_array_equal(second, jax.random.normal(stream.construct(1).key(), (2,)))


def test_set_seed_none_unsets_the_global_seed_and_reseeds_from_entropy():
    with rs.fork_rng():
        rs.set_seed(3)
        rs.set_seed(None)
        assert rs.get_seed() is None
        seeds = {rs.initial_seed()}
        rs.set_seed(None)
        seeds.add(rs.initial_seed())
        assert len(seeds) == 2  # two 64-bit entropy draws collide with probability 2**-64
        assert rs.default_generator().offset.tolist() == [0, 0]
        rs.set_seed(3)  # and back: set_seed(g) still replays
        a = rs.ops.uniform((2,))
        rs.set_seed(3)
        np.testing.assert_array_equal(a, rs.ops.uniform((2,)))


def test_an_8_byte_seed_only_state_is_refused():
    with pytest.raises(ValueError, match="a seed alone"):
        rs.set_rng_state(np.zeros(8, np.uint8))
