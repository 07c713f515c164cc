"""Every op equals raw jax.random under the contract key, and advances the offset by one."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import reference_key

import rngstate as rs

# Valid arguments for every sampler; a new jax.random sampler without an entry fails
# test_every_sampler_has_arguments, so the table keeps up with the installed JAX.
OP_ARGS: dict[str, tuple[tuple, dict]] = {
    "ball": ((3,), {"p": 1.5, "shape": (4,)}),
    "bernoulli": ((0.3, (5,)), {}),
    "beta": ((2.0, 3.0, (5,)), {}),
    "binomial": ((10.0, 0.4, (5,)), {}),
    "bits": (((5,),), {"dtype": jnp.uint32}),
    "categorical": ((jnp.log(jnp.array([0.1, 0.2, 0.7])),), {"shape": (6,)}),
    "cauchy": (((5,),), {}),
    "chisquare": ((3.0, (5,)), {}),
    "choice": ((10, (4,)), {"replace": False}),
    "dirichlet": ((jnp.array([1.0, 2.0, 3.0]), (4,)), {}),
    "double_sided_maxwell": ((0.5, 2.0, (5,)), {}),
    "exponential": (((5,),), {}),
    "f": ((3.0, 4.0, (5,)), {}),
    "gamma": ((0.7, (5,)), {}),
    "generalized_normal": ((1.5, (5,)), {}),
    "geometric": ((0.3, (5,)), {}),
    "gumbel": (((5,),), {}),
    "laplace": (((5,),), {}),
    "loggamma": ((2.0, (5,)), {}),
    "logistic": (((5,),), {}),
    "lognormal": ((0.5, (5,)), {}),
    "maxwell": (((5,),), {}),
    "multinomial": ((10.0, jnp.array([0.2, 0.3, 0.5])), {}),
    "multivariate_normal": ((jnp.zeros(2), jnp.array([[2.0, 0.5], [0.5, 1.0]]), (3,)), {}),
    "normal": (((3, 4),), {}),
    "orthogonal": ((3,), {"m": 2}),
    "pareto": ((2.0, (5,)), {}),
    "permutation": ((8,), {}),
    "poisson": ((3.5, (5,)), {}),
    "rademacher": (((5,),), {}),
    "randint": (((5,), 0, 10), {}),
    "rayleigh": ((2.0, (5,)), {}),
    "t": ((4.0, (5,)), {}),
    "triangular": ((0.0, 0.3, 1.0, (5,)), {}),
    "truncated_normal": ((-1.0, 2.0, (5,)), {}),
    "uniform": (((8,),), {"minval": -1.0, "maxval": 3.0}),
    "wald": ((1.5, (5,)), {}),
    "weibull_min": ((1.0, 2.0, (5,)), {}),
}

# The same ops with array arguments or all defaults, where the first table used scalars.
MORE_ARGS: list[tuple[str, tuple, dict]] = [
    ("gamma", (jnp.array([0.5, 1.0, 5.0]),), {}),
    ("permutation", (jnp.arange(8.0).reshape(4, 2),), {"axis": 1, "independent": True}),
    ("choice", (jnp.arange(5), (3,)), {"p": jnp.array([0.1, 0.2, 0.3, 0.2, 0.2])}),
    ("bernoulli", (), {}),
    ("uniform", ((3,), jnp.float16), {"minval": 2, "maxval": 5}),
    ("randint", ((4,), jnp.array([0, 5, 10, 15]), 20), {"dtype": jnp.uint8}),
    ("lognormal", (), {"shape": (3,)}),
    ("normal", ((2,), jnp.bfloat16), {}),
    ("poisson", (jnp.array([0.5, 30.0]),), {}),
    ("ball", (2,), {}),
    ("truncated_normal", (jnp.array(-0.5), 0.5), {"shape": (3,)}),
    ("binomial", (jnp.array([5.0, 50.0]), jnp.array([0.1, 0.9])), {}),
    ("categorical", (jnp.zeros((2, 4)),), {"axis": 0}),
    ("bits", ((3,), jnp.uint8), {}),
]

SEED, OFFSET = 1234, 56


def test_every_sampler_has_arguments():
    assert set(rs.random.JAX_SAMPLERS) == set(OP_ARGS)


def test_the_family_covers_the_contract_list():
    named = (
        "bits uniform normal truncated_normal randint permutation choice bernoulli categorical "
        "binomial multinomial gamma loggamma beta dirichlet poisson exponential geometric "
        "laplace logistic gumbel cauchy lognormal chisquare f t pareto rayleigh wald "
        "weibull_min triangular maxwell double_sided_maxwell generalized_normal "
        "multivariate_normal orthogonal rademacher ball dropout"
    ).split()
    assert set(named) <= set(rs.random.OP_NAMES)


def _assert_same(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize("name", sorted(OP_ARGS))
def test_op_equals_raw_jax_random_and_advances_by_one(name):
    args, kwargs = OP_ARGS[name]
    gen = rs.Generator(seed=SEED, offset=OFFSET)
    values, nxt = getattr(rs.random, name)(gen, *args, **kwargs)
    expected = getattr(jax.random, name)(reference_key(SEED, OFFSET), *args, **kwargs)
    _assert_same(values, expected)
    assert nxt == gen.construct(1)
    assert gen == rs.Generator(seed=SEED, offset=OFFSET)  # the input is untouched
    method_values, method_next = getattr(gen, name)(*args, **kwargs)
    _assert_same(method_values, expected)
    assert method_next == nxt


@pytest.mark.parametrize("name,args,kwargs", MORE_ARGS, ids=[m[0] for m in MORE_ARGS])
def test_op_with_array_or_default_arguments_equals_raw(name, args, kwargs):
    gen = rs.Generator(seed=SEED, offset=OFFSET)
    values, _ = getattr(rs.random, name)(gen, *args, **kwargs)
    _assert_same(values, getattr(jax.random, name)(reference_key(SEED, OFFSET), *args, **kwargs))


def _jax_version() -> tuple[int, ...]:
    return tuple(int(part) for part in jax.__version__.split(".")[:3])


def test_multinomial_shape_means_what_the_installed_jax_says():
    # jax 0.12 made shape= the batch shape without the category axis (what its docstring
    # always said); before, shape= included it. rngstate passes shape= through, so the same
    # call gives another shape on 0.12 (docs/compatibility.md); its values are jax.random's.
    p = jnp.array([0.2, 0.3, 0.5])
    gen = rs.Generator(seed=SEED, offset=OFFSET)
    values, _ = rs.random.multinomial(gen, 10.0, p, shape=(4, 3))
    expected = jax.random.multinomial(reference_key(SEED, OFFSET), 10.0, p, shape=(4, 3))
    _assert_same(values, expected)
    assert values.shape == ((4, 3, 3) if _jax_version() >= (0, 12) else (4, 3))
    assert np.all(values.sum(axis=-1) == 10)
    # p broadcast to the batch and no shape= means the same on every JAX.
    broadcast, _ = rs.random.multinomial(gen, 10.0, jnp.broadcast_to(p, (4, 3)))
    assert broadcast.shape == (4, 3)
    _assert_same(
        broadcast,
        jax.random.multinomial(reference_key(SEED, OFFSET), 10.0, jnp.broadcast_to(p, (4, 3))),
    )


def test_bad_arguments_are_reported_like_a_python_call():
    with pytest.raises(TypeError, match="unexpected keyword argument 'shap'"):
        rs.random.normal(rs.Generator(), shap=(2,))
    with pytest.raises(TypeError, match="missing required argument"):
        rs.random.randint(rs.Generator(), (2,))
    with pytest.raises(TypeError, match="multiple values for argument 'shape'"):
        rs.random.normal(rs.Generator(), (2,), shape=(3,))


@pytest.mark.parametrize("name", ["normal", "uniform", "randint", "permutation", "gamma"])
def test_op_equals_raw_jax_random_under_jit(name):
    args, kwargs = OP_ARGS[name]
    gen = rs.Generator(seed=SEED, offset=OFFSET)
    values, nxt = jax.jit(lambda g: getattr(rs.random, name)(g, *args, **kwargs))(gen)
    # Under a user's jit the scalars are constants of the program, for raw jax.random too.
    raw = jax.jit(lambda k: getattr(jax.random, name)(k, *args, **kwargs))
    _assert_same(values, raw(reference_key(SEED, OFFSET)))
    assert nxt == gen.construct(1)


def test_64_bit_seed_op_uses_the_64_bit_key():
    gen = rs.Generator(seed=2**40 + 5)
    values, _ = gen.normal((4,))
    _assert_same(values, jax.random.normal(gen.key(), (4,)))
    low, _ = rs.Generator(seed=5).normal((4,))
    assert not np.array_equal(values, low)


def test_signatures_and_docstrings_are_the_samplers_own():
    for name, sampler in rs.random.JAX_SAMPLERS.items():
        op = getattr(rs.random, name)
        params = list(inspect.signature(op).parameters)
        assert params[0] == "gen"
        assert params[1:] == list(inspect.signature(sampler).parameters)[1:]
        assert f"jax.random.{name}" in op.__doc__
        method_params = list(inspect.signature(getattr(rs.Generator, name)).parameters)
        assert method_params == ["self", *params[1:]]


def test_ops_refuse_a_batch_of_generators_with_a_vmap_hint():
    kids, _ = rs.Generator(1).spawn(3)
    with pytest.raises(ValueError, match="jax.vmap"):
        kids.normal((2,))


def test_ops_refuse_a_raw_key():
    with pytest.raises(TypeError, match="Generator"):
        rs.random.normal(jax.random.key(0), (2,))


# -- dropout --------------------------------------------------------------------------


def test_dropout_is_inverted_bernoulli_masking():
    x = jnp.arange(1.0, 101.0)
    gen = rs.Generator(seed=SEED, offset=OFFSET)
    y, nxt = rs.random.dropout(gen, x, 0.25)
    keep = jax.random.bernoulli(reference_key(SEED, OFFSET), 0.75, x.shape)
    np.testing.assert_array_equal(y, jnp.where(keep, x / 0.75, 0.0))
    assert nxt == gen.construct(1)


def test_dropout_deterministic_returns_input_and_same_generator():
    x = jnp.ones(4)
    gen = rs.Generator(3)
    y, same = gen.dropout(x, 0.5, deterministic=True)
    np.testing.assert_array_equal(y, x)
    assert same == gen


def test_dropout_edges_and_traced_rate():
    x = jnp.ones(10)
    gen = rs.Generator(3)
    np.testing.assert_array_equal(gen.dropout(x, 0.0)[0], x)
    np.testing.assert_array_equal(gen.dropout(x, 1.0)[0], jnp.zeros(10))
    y, _ = jax.jit(lambda g, r: g.dropout(x, r))(gen, 0.5)
    np.testing.assert_array_equal(y, gen.dropout(x, 0.5)[0])


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_dropout_rate_out_of_range(bad):
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\]"):
        rs.random.dropout(rs.Generator(), jnp.ones(2), bad)
