"""Generators under jit, scan and vmap: one compile, exact values, no retrace."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from conftest import reference_key

import rngstate as rs


def test_jitted_step_traces_once_over_100_steps_and_a_seed_change():
    traces = []

    @jax.jit
    def step(gen, x):
        traces.append(1)
        noise, gen = gen.normal(x.shape)
        return gen, x + noise

    gen, x = rs.Generator(seed=1), jnp.zeros(3)
    for _ in range(100):
        gen, x = step(gen, x)
    gen, x = step(rs.Generator(seed=2**40 + 9, offset=5), x)
    gen, x = step(gen.manual_seed(77), x)
    assert len(traces) == 1


def test_eager_op_compiles_once_per_static_arguments():
    before = rs.random._sample_and_advance._cache_size()
    gen = rs.Generator(seed=2**50 + 3)
    for _ in range(20):
        _, gen = gen.uniform((7, 3))
    gen = gen.manual_seed(4)
    _, gen = gen.uniform((7, 3))
    assert rs.random._sample_and_advance._cache_size() - before <= 1


def test_scan_draws_what_a_python_loop_draws():
    def body(gen, _):
        x, gen = gen.uniform((2,))
        return gen, x

    final, xs = jax.lax.scan(body, rs.Generator(seed=9), length=5)
    assert final == rs.Generator(seed=9, offset=5)
    for o in range(5):
        np.testing.assert_array_equal(xs[o], jax.random.uniform(reference_key(9, o), (2,)))


def test_vmap_over_spawned_generators():
    kids, _ = rs.Generator(seed=3).spawn(4)
    values, nxt = jax.vmap(lambda g: g.normal((2,)))(kids)
    assert values.shape == (4, 2)
    for i in range(4):
        child = rs.Generator.from_words(kids.seed[i], kids.offset[i])
        np.testing.assert_array_equal(values[i], jax.random.normal(child.key(), (2,)))
    np.testing.assert_array_equal(nxt.offset, np.tile([0, 1], (4, 1)))
    assert len({tuple(v) for v in np.asarray(values).tolist()}) == 4


def test_vmap_over_a_batch_of_seeds():
    gens = rs.Generator(seed=jnp.arange(3, dtype=jnp.uint32), offset=2)
    values, _ = jax.vmap(lambda g: g.bits((2,)))(gens)
    for s in range(3):
        np.testing.assert_array_equal(values[s], jax.random.bits(reference_key(s, 2), (2,)))


def test_grad_through_a_sample_with_a_generator_argument():
    def loss(w, gen):
        noise, _ = gen.normal(w.shape)
        return jnp.sum(w * noise)

    gen = rs.Generator(seed=4)
    grad = jax.grad(loss)(jnp.ones(3), gen)
    np.testing.assert_array_equal(grad, jax.random.normal(reference_key(4, 0), (3,)))


def test_python_scalars_given_under_one_jit_do_not_leak_into_the_next():
    # A Python scalar argument (p = 0.5, rate = 0.5) met first while tracing must not be
    # remembered as that trace's value: the next program, jitted or eager, gets its own.
    n, x = 256, jnp.arange(256, dtype=jnp.float32)
    key = reference_key(3, 0)
    mask = jax.random.bernoulli(key, 0.5, (n,))
    bernoulli = jax.jit(lambda g: rs.random.bernoulli(g, 0.5, (n,)))
    dropout = jax.jit(lambda g, x: rs.random.dropout(g, x, 0.5))
    np.testing.assert_array_equal(bernoulli(rs.Generator(3))[0], mask)
    for _ in range(2):
        np.testing.assert_array_equal(dropout(rs.Generator(3), x)[0], jnp.where(mask, 2 * x, 0))
    np.testing.assert_array_equal(rs.random.bernoulli(rs.Generator(3), 0.5, (n,))[0], mask)


def test_scalar_first_seen_under_jit_does_not_leak_into_later_programs():
    # A scalar no other test uses, so its first use is inside this trace.
    gen = rs.Generator(seed=5)

    def draw(g):
        return rs.random.uniform(g, (3,), minval=-0.3711)[0]

    first = jax.jit(draw)(gen)
    ahead_of_time = jax.jit(lambda g: draw(g)).lower(gen).compile()
    np.testing.assert_array_equal(ahead_of_time(gen), first)
    np.testing.assert_array_equal(draw(gen), first)


def test_construct_with_a_batch_of_steps_makes_a_batch_that_vmaps():
    gens = rs.Generator(seed=7, offset=2).construct(jnp.arange(4, dtype=jnp.uint32))
    assert gens.seed.shape == gens.offset.shape == (4, 2)
    values, _ = jax.vmap(lambda g: g.uniform((2,)))(gens)
    for i in range(4):
        np.testing.assert_array_equal(values[i], jax.random.uniform(reference_key(7, 2 + i), (2,)))
