"""rngstate.data: index_shuffle, batch_indices, example_generator, BatchIndexIterator.

The reference is an independent transcription of docs/data.md's construction in Python
integers, hashed by JAX's own threefry_2x32 (conftest.threefry_u64), and the stream rules
of Generator.stream as test_derivation.py checks them.
"""

from __future__ import annotations

import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import threefry_u64

import rngstate as rs
from rngstate.data import batch_indices, example_generator, index_shuffle

MASK = 0xFFFFFFFF
TAG = int.from_bytes(b"rsIS", "big")


def reference_shuffle(seed: int, offset: int, n: int, index: int) -> int:
    """docs/data.md's construction, in Python ints, on JAX's threefry."""
    key = threefry_u64(seed, offset)
    per_n = threefry_u64(key, n)
    keys = [threefry_u64(per_n, (TAG << 32) | i) for i in range(8)]
    radix_a = math.isqrt(n - 1) + 1 if n > 1 else 1
    radix_b = -(-n // radix_a)
    radix_b += radix_a % 2 and radix_b % 2  # one radix even: odd permutations too

    def mix(x):
        x ^= x >> 16
        x = (x * 0x7FEB352D) & MASK
        x ^= x >> 15
        x = (x * 0x846CA68B) & MASK
        return x ^ (x >> 16)

    def network(x):
        u, v = divmod(x, radix_b)
        for i, k in enumerate(keys):
            f = mix(v ^ (k >> 32)) ^ (k & MASK)
            u, v = v, (u + f) % (radix_a, radix_b)[i % 2]
        return u * radix_b + v

    x = network(index)
    while x >= n:
        x = network(x)
    return x


@pytest.mark.parametrize(
    ("seed", "offset", "n"),
    [(0, 0, 1), (0, 0, 2), (1, 5, 10), (2**40 + 5, 3, 1000), (2**64 - 1, 2**64 - 1, 2**24),
     (7, 0, 10**9), (3, 2**32, 2**32 - 1)],
)
def test_index_shuffle_equals_the_documented_construction(seed, offset, n):
    gen = rs.Generator(seed, offset)
    picks = sorted({0, n - 1, n // 2, n // 3, *range(min(n, 6))})
    dtype = jnp.uint32 if n > 2**31 else jnp.int32
    got = index_shuffle(gen, jnp.array(picks, dtype), n).tolist()
    assert got == [reference_shuffle(seed, offset, n, i) for i in picks]


@pytest.mark.parametrize("n", [*range(1, 11), 16, 17, 33, 97, 256, 257, 1000, 4097, 65536 + 3])
def test_index_shuffle_is_a_bijection(n):
    out = np.asarray(index_shuffle(rs.Generator(n, 1), jnp.arange(n), n))
    assert sorted(out.tolist()) == list(range(n))


def test_index_shuffle_is_the_same_eager_under_jit_vmap_and_per_index():
    gen, n = rs.Generator(11, 4), 1001
    eager = index_shuffle(gen, jnp.arange(n), n)
    jitted = jax.jit(lambda g, i: index_shuffle(g, i, n))(gen, jnp.arange(n))
    mapped = jax.vmap(lambda i: index_shuffle(gen, i, n))(jnp.arange(n))
    one = [int(index_shuffle(gen, i, n)) for i in (0, 500, 1000)]
    assert (eager == jitted).all() and (eager == mapped).all()
    assert one == [int(eager[0]), int(eager[500]), int(eager[1000])]
    shaped = index_shuffle(gen, jnp.arange(n - 1).reshape(20, 50), n)
    assert shaped.shape == (20, 50) and (shaped.ravel() == eager[:-1]).all()


def test_index_shuffle_depends_on_seed_offset_and_n():
    base = index_shuffle(rs.Generator(1), jnp.arange(100), 100)
    for other in (rs.Generator(2), rs.Generator(1, 1)):
        assert not (index_shuffle(other, jnp.arange(100), 100) == base).all()
    # n = 101's permutation is not n = 100's with one more element.
    assert not (index_shuffle(rs.Generator(1), jnp.arange(100), 101) == base).all()


def test_a_traced_out_of_range_index_gives_no_position():
    f = jax.jit(lambda i: index_shuffle(rs.Generator(0), i, 10))
    assert f(jnp.array([-1, 10, 3])).tolist()[:2] == [-1, -1]
    assert f(jnp.array([10], jnp.uint32)).tolist() == [2**32 - 1]


def test_x64_reaches_n_of_2_to_the_62():
    code = (
        "import jax; jax.config.update('jax_enable_x64', True)\n"
        "import jax.numpy as jnp, rngstate as rs\n"
        "from rngstate.data import index_shuffle\n"
        "n = 2**62 + 12345\n"
        "i = jnp.array([0, 1, n - 1, 2**40], jnp.int64)\n"
        "p = index_shuffle(rs.Generator(9), i, n)\n"
        "print(p.dtype, *p.tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dtype, *values = out.stdout.split()
    assert dtype == "int64"
    n = 2**62 + 12345
    expected = [reference_shuffle(9, 0, n, i) for i in (0, 1, n - 1, 2**40)]
    assert [int(v) for v in values] == expected and len(set(expected)) == 4


# -- batch_indices -----------------------------------------------------------------------


def epoch_permutation(gen: rs.Generator, epoch: int, n: int) -> np.ndarray:
    """docs/data.md: epoch e is index_shuffle under Generator(seed=K).stream(...).construct(e)."""
    key = jax.random.key_data(gen.key()).tolist()
    root = rs.Generator(seed=(key[0] << 32) | key[1])
    return np.asarray(index_shuffle(root.stream("rngstate.data.order").construct(epoch),
                                    jnp.arange(n), n))


def test_batches_are_the_documented_epochs_cut_in_order():
    gen, n, size = rs.Generator(5, 2), 23, 5
    per_epoch = n // size
    for step in range(3 * per_epoch):
        epoch, k = divmod(step, per_epoch)
        expected = epoch_permutation(gen, epoch, n)[k * size:(k + 1) * size]
        assert np.asarray(batch_indices(gen, step, n, size)).tolist() == expected.tolist()


def test_each_epoch_is_a_fresh_permutation_without_repeats():
    gen, n, size = rs.Generator(3), 50, 10
    epochs = [np.concatenate([batch_indices(gen, e * 5 + k, n, size) for k in range(5)])
              for e in range(3)]
    assert all(sorted(e.tolist()) == list(range(n)) for e in epochs)
    assert not (epochs[0] == epochs[1]).all()


def test_the_global_batch_does_not_depend_on_the_process_count():
    gen, n, size = rs.Generator(21), 10**6, 64
    whole = batch_indices(gen, 12345, n, size)
    for count in (2, 8):
        parts = [batch_indices(gen, 12345, n, size, process_index=p, process_count=count)
                 for p in range(count)]
        assert all(part.shape == (size // count,) for part in parts)
        assert (np.concatenate(parts) == np.asarray(whole)).all()


def test_a_traced_step_in_scan_and_jit_gives_the_eager_batches():
    gen, n, size = rs.Generator(4), 40, 8

    def body(carry, step):
        return carry, batch_indices(gen, step, n, size)

    _, scanned = jax.lax.scan(body, None, jnp.arange(12, dtype=jnp.uint32))
    eager = np.stack([batch_indices(gen, s, n, size) for s in range(12)])
    assert (np.asarray(scanned) == eager).all()
    jitted = jax.jit(lambda g, s: batch_indices(g, s, n, size))(gen, jnp.uint32(7))
    assert (jitted == eager[7]).all()


def test_resuming_from_a_step_sees_the_uninterrupted_batches():
    gen = rs.Generator(8)
    whole = list(rs.data.BatchIndexIterator(gen, 30, 4, num_steps=20))
    first = rs.data.BatchIndexIterator(gen, 30, 4, num_steps=9)
    head = list(first)
    resumed = rs.data.BatchIndexIterator(gen, 30, 4, step=first.state(), num_steps=11)
    assert all((a == b).all() for a, b in zip(whole, head + list(resumed), strict=True))
    assert len(head) == 9 and first.state() == 9


def test_large_steps_and_n_near_2_to_the_32():
    n = 2**32 - 5
    got = batch_indices(rs.Generator(1), 2**32 - 1, n, 2**20)
    assert got.dtype == jnp.uint32
    epoch, k = divmod(2**32 - 1, n // 2**20)
    gen = rs.Generator(1)
    key = jax.random.key_data(gen.key()).tolist()
    epoch_gen = rs.Generator((key[0] << 32) | key[1]).stream("rngstate.data.order").construct(
        epoch)
    positions = jnp.arange(k * 2**20, k * 2**20 + 4, dtype=jnp.uint32)
    assert (got[:4] == index_shuffle(epoch_gen, positions, n)).all()


# -- example_generator -------------------------------------------------------------------


def test_example_generator_follows_the_stream_rules():
    gen = rs.Generator(2**40 + 1, 6)
    key = jax.random.key_data(gen.key()).tolist()
    root = rs.Generator((key[0] << 32) | key[1])
    assert example_generator(gen, 17) == root.stream("rngstate.data.example").stream(17)
    assert example_generator(gen, 17) != example_generator(gen.construct(1), 17)


def test_example_generators_are_distinct_and_the_same_under_vmap():
    gen = rs.Generator(3)
    ids = jnp.arange(1000, dtype=jnp.uint32)
    batch = example_generator(gen, ids)
    seeds = {tuple(s) for s in np.asarray(batch.seed).tolist()}
    assert len(seeds) == 1000
    draws = jax.vmap(lambda i: example_generator(gen, i).uniform(())[0])(ids[:5])
    assert draws.tolist() == [float(example_generator(gen, i).uniform(())[0]) for i in range(5)]


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: index_shuffle(rs.Generator(0), 0, 0), ValueError, "n must be in [1, 2**64 - 1]"),
        (lambda: index_shuffle(rs.Generator(0), 0, 2.0), TypeError, "n must be an integer"),
        (lambda: index_shuffle(rs.Generator(0), 10, 10), ValueError, "index must be in [0, n)"),
        (lambda: index_shuffle(rs.Generator(0), [-1], 10), ValueError, "got -1"),
        (lambda: index_shuffle(rs.Generator(0), jnp.array([0.5]), 10), TypeError, "index must"),
        (lambda: index_shuffle(rs.Generator(0), True, 10), TypeError, "index must"),
        (lambda: index_shuffle(rs.Generator(0), jnp.arange(3), 2**31 + 1), ValueError,
         "index has dtype int32"),
        (lambda: index_shuffle(rs.Generator(0), 0, 2**33), ValueError, "jax_enable_x64"),
        (lambda: index_shuffle(rs.Generator(jnp.arange(2)), 0, 3), ValueError, "single"),
        (lambda: batch_indices(rs.Generator(0), 0, 10, 11), ValueError, "batch_size must be in"),
        (lambda: batch_indices(rs.Generator(0), 0, 10, 0), ValueError, "batch_size must be in"),
        (lambda: batch_indices(rs.Generator(0), -1, 10, 2), ValueError, "step must be in"),
        (lambda: batch_indices(rs.Generator(0), 0, 10, 4, process_index=2, process_count=2),
         ValueError, "process_index must be in [0, process_count - 1 = 1]"),
        (lambda: batch_indices(rs.Generator(0), 0, 10, 4, process_index=-1, process_count=2),
         ValueError, "process_index"),
        (lambda: batch_indices(rs.Generator(0), 0, 10, 4, process_count=3), ValueError,
         "divisible by process_count"),
        (lambda: batch_indices(rs.Generator(0), 2**33, 10, 4), ValueError, "below 2**32"),
        (lambda: jax.jit(lambda s: batch_indices(rs.Generator(0), s, 10, 4))(jnp.int32(1)),
         TypeError, "astype(jnp.uint32)"),
        (lambda: example_generator(rs.Generator(0), -3), ValueError, "name must be in"),
        (lambda: example_generator("seed", 3), TypeError, "gen must be a rngstate.Generator"),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(call, error, words):
    with pytest.raises(error) as caught:
        call()
    assert words in str(caught.value)


def test_the_pinned_golden_shuffles_are_the_documented_construction():
    from rngstate import golden

    for case in golden.pinned_table()["cases"]:
        seed, offset = case["seed"], case["offset"]
        for values in case["values"].values():
            expected = [reference_shuffle(seed, offset, 1000, i) for i in range(4)]
            assert values["index_shuffle_1000"] == expected


def test_x64_batches_of_a_huge_dataset_with_a_small_step():
    code = (
        "import jax; jax.config.update('jax_enable_x64', True)\n"
        "import rngstate as rs\n"
        "b = rs.data.batch_indices(rs.Generator(2), 3, 2**40, 1)\n"
        "print(b.dtype, *b.tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dtype, value = out.stdout.split()
    gen = rs.Generator(2)
    key = jax.random.key_data(gen.key()).tolist()
    root = rs.Generator((key[0] << 32) | key[1]).stream("rngstate.data.order")
    # Step 3 of epoch 0 (2**40 batches of one): position 3 under root.construct(0) = root.
    assert dtype == "int64"
    assert int(value) == reference_shuffle(root.initial_seed(), 0, 2**40, 3)
