"""Key derivation (contract §2) against Random123's answers and raw jax.random."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import reference_key

import rngstate as rs
from rngstate.selfcheck import known_answers
from rngstate.threefry import threefry2x32


@pytest.mark.parametrize("row", known_answers(), ids=lambda r: "-".join(f"{w:08x}" for w in r[:4]))
def test_threefry_matches_random123(row):
    key0, key1, ctr0, ctr1, out0, out1 = row
    got = threefry2x32(*(jnp.uint32(v) for v in (key0, key1, ctr0, ctr1)))
    assert [int(w) for w in got] == [out0, out1]


@pytest.mark.parametrize("row", known_answers()[:4])
def test_derived_key_is_threefry_of_offset_under_seed(row):
    key0, key1, ctr0, ctr1, out0, out1 = row
    gen = rs.Generator(seed=(key0 << 32) | key1, offset=(ctr0 << 32) | ctr1)
    assert jax.random.key_data(gen.key()).tolist() == [out0, out1]
    assert jax.random.key_impl(gen.key()) == jax.random.key_impl(jax.random.key(0))


@pytest.mark.parametrize(
    "seed,offset", [(0, 0), (1, 0), (0, 1), (42, 7), (2**31 - 1, 2**32 - 1), (123456, 99)]
)
def test_derived_key_equals_fold_in(seed, offset):
    got = rs.Generator(seed=seed, offset=offset).key()
    np.testing.assert_array_equal(
        jax.random.key_data(got), jax.random.key_data(reference_key(seed, offset))
    )


def test_stateful_rng_equivalence_after_draws():
    # contract: equals jax.experimental stateful_rng(s) after o draws, i.e. fold_in(key(s), o)
    gen = rs.Generator(seed=17)
    for o in range(5):
        np.testing.assert_array_equal(
            jax.random.key_data(gen.key()), jax.random.key_data(reference_key(17, o))
        )
        _, gen = gen.bits((1,))


def test_no_aliasing_between_seed_and_offset_neighbours():
    a = jax.random.key_data(rs.Generator(seed=5, offset=8).key())
    b = jax.random.key_data(rs.Generator(seed=6, offset=7).key())
    assert not np.array_equal(a, b)


def test_64_bit_seed_differs_from_its_low_32_bits():
    high = rs.Generator(seed=2**40 + 5)
    low = rs.Generator(seed=5)
    assert not np.array_equal(jax.random.key_data(high.key()), jax.random.key_data(low.key()))
    assert high.initial_seed() == 2**40 + 5


def test_64_bit_offset_differs_from_its_low_32_bits():
    a = rs.Generator(seed=1, offset=2**32 + 3).key()
    b = rs.Generator(seed=1, offset=3).key()
    assert not np.array_equal(jax.random.key_data(a), jax.random.key_data(b))


def test_batched_key_derivation_matches_elementwise():
    gen = rs.Generator(seed=jnp.arange(4, dtype=jnp.uint32), offset=3)
    keys = jax.random.key_data(gen.key())
    for i in range(4):
        np.testing.assert_array_equal(keys[i], jax.random.key_data(reference_key(i, 3)))


def test_representation_same_with_x64(tmp_path):
    # Runs in a subprocess so the x64 flag does not leak into the other tests.
    import subprocess
    import sys

    code = (
        "import jax; jax.config.update('jax_enable_x64', True)\n"
        "import jax.numpy as jnp, rngstate as rs\n"
        "g = rs.Generator(seed=2**40 + 5, offset=2**33 + 1)\n"
        "assert g.seed.dtype == jnp.uint32 and g.seed.shape == (2,)\n"
        "h = rs.Generator(seed=jnp.asarray(2**40 + 5, jnp.uint64), offset=jnp.int64(2**33 + 1))\n"
        "assert h == g, (h, g)\n"
        "print(jax.random.key_data(g.key()).tolist(), g.uniform((3,))[0].dtype)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    words = jax.random.key_data(rs.Generator(seed=2**40 + 5, offset=2**33 + 1).key()).tolist()
    assert out.stdout.startswith(str(words))
