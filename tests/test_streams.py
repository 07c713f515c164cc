"""Named streams: Generator.stream(name) against the documented derivation, built from
jax's own Threefry and hashlib, and the properties the docs promise."""

from __future__ import annotations

import hashlib

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rngstate as rs

U64 = st.integers(0, 2**64 - 1)


def _words(n: int) -> jax.Array:
    return jnp.array([n >> 32, n & 0xFFFFFFFF], dtype=jnp.uint32)


def _threefry(key: int, counter: int) -> int:
    out = jax.extend.random.threefry_2x32(_words(key), _words(counter))
    return (int(out[0]) << 32) | int(out[1])


def reference_stream_seed(seed: int, name: int | str) -> int:
    """The docstring's formula, with jax's Threefry and Python's blake2b."""
    if isinstance(name, str):
        digest = hashlib.blake2b(name.encode(), digest_size=8, person=b"rngstate.stream")
        tag, word = b"rs:strmS", int.from_bytes(digest.digest(), "big")
    else:
        tag, word = b"rs:strmI", name
    domain = _threefry(int.from_bytes(tag, "big"), seed)
    return _threefry(domain, word)


@pytest.mark.parametrize(
    "seed,name",
    [
        (0, 0),
        (7, "params"),
        (2**40 + 5, "encoder/layer3/dropout"),
        (2**64 - 1, 2**64 - 1),
        (12345, ""),
        (1, "ünïcødé"),
        (2**63, 2**32 + 1),
    ],
)
def test_stream_seed_follows_the_documented_formula(seed, name):
    child = rs.Generator(seed, offset=99).stream(name)
    assert child.initial_seed() == reference_stream_seed(seed, name)
    assert child.offset.tolist() == [0, 0]


@settings(max_examples=25, deadline=None)
@given(seed=U64, offset=U64, name=st.one_of(U64, st.text(max_size=12)))
def test_stream_ignores_the_parent_offset(seed, offset, name):
    assert rs.Generator(seed, offset).stream(name) == rs.Generator(seed).stream(name)


def test_stream_does_not_advance_or_change_the_parent():
    parent = rs.Generator(3, offset=5)
    parent.stream("x")
    assert parent == rs.Generator(3, offset=5)


def test_distinct_int_names_give_distinct_seeds():
    names = jnp.arange(4096, dtype=jnp.uint32)
    seeds = rs.Generator(11).stream(names).seed  # one batched call
    as_ints = {(int(h) << 32) | int(lo) for h, lo in np.asarray(seeds)}
    assert len(as_ints) == 4096


def test_array_names_match_python_int_names():
    batched = rs.Generator(5).stream(jnp.array([0, 1, 2**31 + 7], dtype=jnp.uint32))
    for i, name in enumerate([0, 1, 2**31 + 7]):
        assert batched.seed[i].tolist() == rs.Generator(5).stream(name).seed.tolist()


def test_int_and_str_names_are_separate_domains():
    gen = rs.Generator(2)
    for n in range(20):
        assert gen.stream(n) != gen.stream(str(n))


def test_stream_seeds_are_not_parent_keys():
    # Without the domain key, stream(n) would be exactly the parent's key at offset n.
    gen = rs.Generator(9)
    for n in range(8):
        key_data = jax.random.key_data(gen.construct(n).key())
        assert gen.stream(n).seed.tolist() != key_data.tolist()


def test_nested_streams_differ_from_flat_ones():
    gen = rs.Generator(4)
    assert gen.stream("a").stream("b") != gen.stream("b").stream("a")
    assert gen.stream("a").stream("b") != gen.stream("a/b")


def test_stream_under_jit_compiles_once_for_all_seeds():
    traces = []

    @jax.jit
    def params_stream(gen):
        traces.append(1)
        return gen.stream("params").stream(3)

    for seed in (1, 2**40, 2**64 - 1):
        got = params_stream(rs.Generator(seed))
        assert got.initial_seed() == reference_stream_seed(reference_stream_seed(seed, "params"), 3)
    assert len(traces) == 1


def test_traced_int_name_under_jit():
    gen = rs.Generator(8)
    got = jax.jit(lambda g, n: g.stream(n))(gen, jnp.uint32(77))
    assert got == gen.stream(77)


def test_stream_of_a_batch_of_generators_is_elementwise():
    batch = rs.Generator(seed=jnp.array([1, 2, 3], dtype=jnp.uint32))
    seeds = batch.stream("dropout").seed
    for i, seed in enumerate([1, 2, 3]):
        assert seeds[i].tolist() == rs.Generator(seed).stream("dropout").seed.tolist()


def test_streams_draw_independently_of_order():
    root = rs.Generator(0)
    a_first, _ = root.stream("a").normal((4,))
    root.stream("b").normal((4,))
    a_second, _ = root.stream("a").normal((4,))
    np.testing.assert_array_equal(a_first, a_second)


@pytest.mark.parametrize(
    "name,error,match",
    [
        (1.5, TypeError, "name must be a str or an integer"),
        (None, TypeError, "name must be a str or an integer"),
        (True, TypeError, "name must be a str or an integer"),
        (b"bytes", TypeError, "name must be a str or an integer"),
        (-1, ValueError, r"name must be in \[0, 2\*\*64\)"),
        (2**64, ValueError, r"name must be in \[0, 2\*\*64\)"),
    ],
)
def test_bad_names_are_rejected(name, error, match):
    with pytest.raises(error, match=match):
        rs.Generator(0).stream(name)
