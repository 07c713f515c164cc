"""The Generator value: construction, offset arithmetic, state bytes, immutability."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rngstate as rs
from rngstate import _u64

U64 = st.integers(min_value=0, max_value=2**64 - 1)


def as_int(words) -> int:
    return _u64.from_words(words)


@given(seed=st.integers(min_value=-(2**63), max_value=2**64 - 1), offset=U64)
def test_construction_round_trips_exact_64_bit_values(seed, offset):
    gen = rs.Generator(seed=seed, offset=offset)
    assert gen.seed.dtype == jnp.uint32 and gen.seed.shape == (2,)
    assert gen.initial_seed() == seed % 2**64
    assert as_int(gen.offset) == offset


@given(offset=U64, step=U64)
def test_construct_adds_mod_2_64(offset, step):
    gen = rs.Generator(seed=3, offset=offset).construct(step)
    assert as_int(gen.offset) == (offset + step) % 2**64
    assert gen.initial_seed() == 3


@pytest.mark.parametrize(
    "offset,step",
    [(2**32 - 1, 1), (2**32 - 1, 2**32 + 1), (2**64 - 1, 1), (2**64 - 1, 2**64 - 1), (0, 0)],
)
def test_construct_carry_and_wrap_edges(offset, step):
    gen = rs.Generator(seed=0, offset=offset).construct(step)
    assert as_int(gen.offset) == (offset + step) % 2**64


_advance = jax.jit(lambda g, s: g.construct(s))


@given(offset=U64, step=st.integers(min_value=0, max_value=2**32 - 1))
def test_construct_with_traced_step_under_jit(offset, step):
    got = _advance(rs.Generator(seed=1, offset=offset), jnp.uint32(step))
    assert as_int(got.offset) == (offset + step) % 2**64


def test_construct_leaves_the_original_untouched():
    gen = rs.Generator(seed=1, offset=5)
    later = gen.construct(100)
    assert as_int(gen.offset) == 5 and as_int(later.offset) == 105


def test_pytree_has_exactly_two_uint32_leaves():
    leaves, treedef = jax.tree.flatten(rs.Generator(seed=7, offset=9))
    assert len(leaves) == 2
    assert all(leaf.dtype == jnp.uint32 and leaf.shape == (2,) for leaf in leaves)
    assert jax.tree.unflatten(treedef, leaves) == rs.Generator(seed=7, offset=9)
    paths = [
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(rs.Generator())[0]
    ]
    assert paths == [".seed", ".offset"]


def test_get_state_layout_is_little_endian_seed_then_offset():
    seed, offset = 0x0102030405060708, 0x1112131415161718
    state = np.asarray(rs.Generator(seed=seed, offset=offset).get_state())
    assert state.dtype == np.uint8 and state.shape == (16,)
    assert state.tobytes() == seed.to_bytes(8, "little") + offset.to_bytes(8, "little")


@given(seed=U64, offset=U64)
def test_set_state_round_trip(seed, offset):
    gen = rs.Generator(seed=seed, offset=offset)
    assert rs.Generator().set_state(gen.get_state()) == gen
    assert rs.Generator().set_state(np.asarray(gen.get_state())) == gen


def test_set_state_accepts_mindspore_1x_pair():
    assert rs.Generator().set_state((2**40, 3)) == rs.Generator(seed=2**40, offset=3)


def test_set_state_accepts_a_torch_style_byte_state():
    # A PyTorch CUDA generator state / MindSpore 2.x state is seed u64 LE + offset u64 LE.
    raw = np.frombuffer((99).to_bytes(8, "little") + (4).to_bytes(8, "little"), np.uint8)
    assert rs.Generator().set_state(raw) == rs.Generator(seed=99, offset=4)


def test_manual_seed_and_reseed_reset_the_offset():
    gen = rs.Generator(seed=1, offset=9)
    assert gen.manual_seed(2**63) == rs.Generator(seed=2**63, offset=0)
    fresh = gen.reseed()
    assert as_int(fresh.offset) == 0
    assert fresh.initial_seed() != rs.Generator().reseed().initial_seed()  # 2**-64 chance


def test_repr_concrete_batched_and_traced():
    assert repr(rs.Generator(seed=12, offset=10)) == "Generator(seed=12, offset=10)"
    batched = rs.Generator(seed=jnp.arange(3))
    assert repr(batched) == "Generator(seed=uint32[3, 2], offset=uint32[3, 2])"
    seen = []
    jax.jit(lambda g: seen.append(repr(g)) or g.seed)(rs.Generator(1))
    assert seen == ["Generator(seed=traced uint32[2], offset=traced uint32[2])"]


def test_integer_arrays_as_seeds_traced_too():
    gen = jax.jit(lambda s: rs.Generator(seed=s))(jnp.int32(-1))
    assert gen.initial_seed() == 2**64 - 1  # negatives wrap mod 2**64, as for Python ints
    gen = rs.Generator(seed=np.uint32(7))
    assert gen.initial_seed() == 7
    gen = rs.Generator(seed=np.int64(-2))
    assert gen.initial_seed() == 2**64 - 2


def test_numpy_64_bit_arrays_keep_all_64_bits():
    seeds = np.array([2**40 + 5, 2**64 - 1, 7], dtype=np.uint64)
    gen = rs.Generator(seed=seeds, offset=np.array([2**63, 1, 2**32], dtype=np.uint64))
    assert gen.seed.tolist() == [[256, 5], [2**32 - 1, 2**32 - 1], [0, 7]]
    assert gen.offset.tolist() == [[2**31, 0], [0, 1], [1, 0]]
    negative = rs.Generator(seed=np.array([-2, 3], dtype=np.int64))
    assert negative.seed.tolist() == [[2**32 - 1, 2**32 - 2], [0, 3]]


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [1.0, "1", None, True, False, np.bool_(True), jnp.float32(1)])
def test_non_integer_seed_is_a_type_error_naming_seed(bad):
    with pytest.raises(TypeError, match="seed"):
        rs.Generator(seed=bad)


@pytest.mark.parametrize("bad", [-(2**63) - 1, 2**64, 2**80])
def test_seed_out_of_range_is_a_value_error(bad):
    with pytest.raises(ValueError, match=r"seed must be in \[-9223372036854775808, 2\*\*64\)"):
        rs.Generator(seed=bad)


@pytest.mark.parametrize("bad", [-1, 2**64])
def test_offset_out_of_range_is_a_value_error(bad):
    with pytest.raises(ValueError, match="offset"):
        rs.Generator(offset=bad)


def test_negative_python_step_is_a_value_error():
    with pytest.raises(ValueError, match="step"):
        rs.Generator().construct(-1)


@pytest.mark.parametrize("bad", [1.5, "2", None, True])
def test_non_integer_step_is_a_type_error(bad):
    with pytest.raises(TypeError, match="step"):
        rs.Generator().construct(bad)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(15, np.uint8),
        np.zeros(17, np.uint8),
        np.zeros(16, np.int8),
        np.zeros(16, np.uint32),
        np.zeros((), np.uint8),
        [0] * 15,
        (1, 2, 3),
    ],
    ids=["short", "long", "int8", "uint32", "rank0", "list", "triple"],
)
def test_set_state_rejects_wrong_length_dtype_or_rank(bad):
    with pytest.raises(ValueError, match="uint8"):
        rs.Generator().set_state(bad)


def test_assigning_a_field_raises():
    gen = rs.Generator()
    with pytest.raises(AttributeError, match="immutable"):
        gen.seed = jnp.zeros(2, jnp.uint32)
    with pytest.raises(AttributeError, match="immutable"):
        gen.offset = jnp.zeros(2, jnp.uint32)
    with pytest.raises((AttributeError, TypeError)):
        dataclasses.replace(gen, seed=1)  # not a dataclass: no back door either


def test_unknown_op_is_an_attribute_error_with_a_hint():
    with pytest.raises(AttributeError, match="did you mean normal"):
        rs.Generator().normall((3,))
    with pytest.raises(AttributeError, match="did you mean normal"):
        rs.random.normall  # noqa: B018


def test_spawn_children_come_from_split_of_the_current_key():
    gen = rs.Generator(seed=5, offset=2)
    kids, nxt = gen.spawn(3)
    assert kids.batch_shape == (3,)
    np.testing.assert_array_equal(kids.seed, jax.random.key_data(jax.random.split(gen.key(), 3)))
    np.testing.assert_array_equal(kids.offset, np.zeros((3, 2), np.uint32))
    assert nxt == gen.construct(1)


def test_spawn_rejects_bad_counts():
    with pytest.raises(ValueError, match=r"n must be in \[0, "):
        rs.Generator().spawn(-1)
    with pytest.raises(TypeError, match="n must be"):
        rs.Generator().spawn(2.0)
