"""Initializers against their documented formulas, scipy, and jax.nn.initializers."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import rngstate as rs
from rngstate import init

SHAPE = (256, 512)  # 131072 draws: fan_in 256, fan_out 512 in JAX's (in, out) layout
N = math.prod(SHAPE)
SMALL = (8, 4)  # few shapes, few compiles: the suite stays fast


def assert_variance(values, variance, kurtosis):
    """Sample variance within 6 standard errors; SE of s^2 is var * sqrt((kurtosis - 1) / n)."""
    values = np.asarray(values, dtype=np.float64)
    tolerance = 6 * variance * math.sqrt((kurtosis - 1) / values.size)
    assert abs(values.var() - variance) < tolerance, (values.var(), variance, tolerance)
    assert abs(values.mean()) < 6 * math.sqrt(variance / values.size)


def assert_uniform_bound(values, bound):
    values = np.asarray(values)
    assert np.abs(values).max() <= bound * (1 + 1e-6)
    # P(max |x| < b (1 - 1e-3)) = (1 - 1e-3)**n, negligible for n = 131072
    assert np.abs(values).max() > bound * (1 - 1e-3)
    assert_variance(values, bound**2 / 3, kurtosis=1.8)


def test_fans_follow_pytorch_receptive_field_rule():
    # JAX layout (*spatial, in, out) and PyTorch layout (out, in, *spatial) of one 5x3 kernel
    assert init.compute_fans((5, 3, 16, 32)) == (16 * 15, 32 * 15)
    assert init.compute_fans((32, 16, 5, 3), in_axis=1, out_axis=0) == (16 * 15, 32 * 15)
    assert init.compute_fans((10, 20)) == (10, 20)
    assert init.compute_fans((20, 10), in_axis=1, out_axis=0) == (10, 20)
    assert init.compute_fans((7, 2, 3, 4, 5), in_axis=1, out_axis=0) == (2 * 60, 7 * 60)


@pytest.mark.parametrize(
    "nonlinearity,param,gain",
    [
        ("linear", None, 1.0),
        ("conv2d", None, 1.0),
        ("sigmoid", None, 1.0),
        ("tanh", None, 5 / 3),
        ("relu", None, math.sqrt(2)),
        ("leaky_relu", None, math.sqrt(2 / (1 + 0.01**2))),
        ("leaky_relu", 0.2, math.sqrt(2 / 1.04)),
        ("selu", None, 0.75),
    ],
)
def test_gains_are_pytorchs_table(nonlinearity, param, gain):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(gain, rel=1e-15)


def test_uniform_and_normal_follow_their_parameters():
    u, _ = init.uniform(rs.Generator(1), SHAPE, minval=-3.0, maxval=5.0)
    assert float(u.min()) >= -3.0 and float(u.max()) < 5.0
    assert_variance(np.asarray(u) - 1.0, 64 / 12, kurtosis=1.8)
    n, _ = init.normal(rs.Generator(2), SHAPE, mean=0.5, std=0.02)
    assert_variance(np.asarray(n) - 0.5, 0.02**2, kurtosis=3.0)


def test_truncated_normal_matches_scipy():
    mean, std, lower, upper = 0.1, 0.5, -0.4, 1.0
    values, _ = init.truncated_normal(
        rs.Generator(3), SHAPE, mean=mean, std=std, lower=lower, upper=upper
    )
    values = np.asarray(values, dtype=np.float64)
    assert values.min() >= lower and values.max() <= upper
    ref = stats.truncnorm((lower - mean) / std, (upper - mean) / std, loc=mean, scale=std)
    se = math.sqrt(ref.var() / N)
    assert abs(values.mean() - ref.mean()) < 6 * se
    assert abs(values.var() - ref.var()) < 6 * ref.var() * math.sqrt(2 / N)
    assert stats.kstest(values.ravel(), ref.cdf).pvalue > 1e-4


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_xavier(gain):
    fan_in, fan_out = SHAPE
    w, _ = init.xavier_uniform(rs.Generator(4), SHAPE, gain=gain)
    assert_uniform_bound(w, gain * math.sqrt(6 / (fan_in + fan_out)))
    w, _ = init.xavier_normal(rs.Generator(5), SHAPE, gain=gain)
    assert_variance(w, gain**2 * 2 / (fan_in + fan_out), kurtosis=3.0)


@pytest.mark.parametrize(
    "mode,nonlinearity,slope,gain",
    [
        ("fan_in", "leaky_relu", 0.0, math.sqrt(2)),  # PyTorch's defaults: He for ReLU
        ("fan_out", "relu", 0.0, math.sqrt(2)),
        ("fan_in", "leaky_relu", 0.2, math.sqrt(2 / 1.04)),
        ("fan_in", "tanh", 0.0, 5 / 3),
        ("fan_out", "linear", 0.0, 1.0),
    ],
)
def test_kaiming(mode, nonlinearity, slope, gain):
    fan = dict(zip(("fan_in", "fan_out"), SHAPE, strict=True))[mode]
    kwargs = dict(mode=mode, nonlinearity=nonlinearity, negative_slope=slope)
    w, _ = init.kaiming_uniform(rs.Generator(6), SHAPE, **kwargs)
    assert_uniform_bound(w, gain * math.sqrt(3 / fan))
    w, _ = init.kaiming_normal(rs.Generator(7), SHAPE, **kwargs)
    assert_variance(w, gain**2 / fan, kurtosis=3.0)


def test_kaiming_on_a_pytorch_conv_weight_uses_the_receptive_field():
    shape = (64, 32, 4, 4)  # (out, in, kh, kw): fan_in 512, fan_out 1024
    w, _ = init.kaiming_normal(rs.Generator(8), shape, mode="fan_out", in_axis=1, out_axis=0)
    assert_variance(w, 2 / 1024, kurtosis=3.0)
    w, _ = init.kaiming_uniform(rs.Generator(9), shape, in_axis=1, out_axis=0)
    assert_uniform_bound(w, math.sqrt(2) * math.sqrt(3 / 512))


def test_lecun():
    w, _ = init.lecun_uniform(rs.Generator(10), SHAPE)
    assert_uniform_bound(w, math.sqrt(3 / SHAPE[0]))
    w, _ = init.lecun_normal(rs.Generator(11), SHAPE)
    assert_variance(w, 1 / SHAPE[0], kurtosis=3.0)


def test_aliases():
    assert init.glorot_uniform is init.xavier_uniform and init.glorot_normal is init.xavier_normal
    assert init.he_uniform is init.kaiming_uniform and init.he_normal is init.kaiming_normal


@pytest.mark.parametrize(
    "ours,scale,mode,distribution,kwargs",
    [
        (init.xavier_uniform, 1.0, "fan_avg", "uniform", {}),
        (init.xavier_normal, 4.0, "fan_avg", "normal", {"gain": 2.0}),
        (init.kaiming_uniform, 2.0, "fan_in", "uniform", {}),
        (init.kaiming_normal, 2.0, "fan_out", "normal", {"mode": "fan_out"}),
        (init.lecun_uniform, 1.0, "fan_in", "uniform", {}),
        (init.lecun_normal, 1.0, "fan_in", "normal", {}),
    ],
)
def test_agrees_with_jax_variance_scaling(ours, scale, mode, distribution, kwargs):
    gen = rs.Generator(12, offset=3)
    shape = (24, 16)
    mine, next_gen = ours(gen, shape, **kwargs)
    reference = jax.nn.initializers.variance_scaling(scale, mode, distribution)(
        gen.key(), shape, jnp.float32
    )
    np.testing.assert_allclose(mine, reference, rtol=2e-6, atol=1e-7)
    assert next_gen == gen.construct(1)


def test_agrees_with_jax_on_a_conv_kernel():
    # A rank-4 shape: the values must not depend on drawing flat and reshaping.
    gen = rs.Generator(12, offset=3)
    shape = (3, 3, 8, 16)
    mine, _ = init.kaiming_normal(gen, shape)
    reference = jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal")(
        gen.key(), shape, jnp.float32
    )
    np.testing.assert_allclose(mine, reference, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("shape,column_axis", [(SMALL, -1), ((4, 8), -1), ((8, 4, 3), 0)])
def test_orthogonal(shape, column_axis):
    gain = 1.5
    gen = rs.Generator(13)
    w, _ = init.orthogonal(gen, shape, gain=gain, column_axis=column_axis)
    matrix = np.moveaxis(np.asarray(w, np.float64), column_axis, -1).reshape(-1, shape[column_axis])
    rows, cols = matrix.shape
    gram = matrix.T @ matrix if rows >= cols else matrix @ matrix.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=1e-5)
    if shape == SMALL:
        reference = jax.nn.initializers.orthogonal(gain, column_axis)(gen.key(), shape, jnp.float32)
        np.testing.assert_allclose(w, reference, atol=1e-6)


@pytest.mark.parametrize("name", ["xavier_uniform", "kaiming_normal", "orthogonal", "uniform"])
def test_each_initializer_uses_one_key(name):
    gen = rs.Generator(14, offset=2**64 - 1)
    w, next_gen = getattr(init, name)(gen, SMALL)
    assert next_gen == gen.construct(1)
    again, _ = getattr(init, name)(gen, SMALL)
    np.testing.assert_array_equal(w, again)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_dtypes(dtype):
    w, _ = init.kaiming_uniform(rs.Generator(15), SMALL, dtype)
    assert w.dtype == dtype


def test_initializers_under_jit():
    @jax.jit
    def make(gen):
        w1, gen = init.kaiming_normal(gen, SMALL)
        w2, gen = init.orthogonal(gen, SMALL)
        return w1, w2, gen

    gen = rs.Generator(16)
    w1, w2, end = make(gen)  # bit-identical to eager calls: each initializer is one dispatch
    np.testing.assert_array_equal(w1, init.kaiming_normal(gen, SMALL)[0])
    np.testing.assert_array_equal(w2, init.orthogonal(gen.construct(1), SMALL)[0])
    assert end == gen.construct(2)


def test_as_jax_initializer_seeds_a_generator_from_the_key_words():
    key = jax.random.key(2024)
    jax_style = init.as_jax_initializer(init.kaiming_normal, mode="fan_out")
    high, low = (int(w) for w in jax.random.key_data(key))
    expected, _ = init.kaiming_normal(rs.Generator((high << 32) | low), SMALL, mode="fan_out")
    np.testing.assert_array_equal(jax_style(key, SMALL), expected)
    np.testing.assert_array_equal(jax_style(jax.random.key_data(key), SMALL), expected)
    traced = jax.jit(jax_style, static_argnums=(1, 2))(key, SMALL, jnp.float32)
    np.testing.assert_array_equal(traced, expected)
    batched = jax.vmap(lambda k: jax_style(k, SMALL))(jax.random.split(key, 3))
    assert batched.shape == (3, *SMALL)


def test_from_jax_initializer_uses_the_generators_key():
    gen = rs.Generator(2**40 + 1, offset=9)
    jax_init = jax.nn.initializers.he_normal()
    w, next_gen = init.from_jax_initializer(jax_init)(gen, SMALL, jnp.float32)
    np.testing.assert_array_equal(w, jax_init(gen.key(), SMALL, jnp.float32))
    assert next_gen == gen.construct(1)


def test_bridge_round_trip():
    # rngstate -> jax -> rngstate: the generator's key seeds the generator the init sees.
    gen = rs.Generator(3, offset=4)
    back = init.from_jax_initializer(init.as_jax_initializer(init.xavier_uniform))
    w, next_gen = back(gen, SMALL)
    key_gen = rs.Generator.from_words(jax.random.key_data(gen.key()), jnp.zeros(2, jnp.uint32))
    np.testing.assert_array_equal(w, init.xavier_uniform(key_gen, SMALL)[0])
    assert next_gen == gen.construct(1)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda g: init.kaiming_uniform(g, (5,)), ValueError, "at least 2 dimensions"),
        (lambda g: init.kaiming_uniform(g, (5, 5), mode="fan_avg"), ValueError, "mode must be"),
        (
            lambda g: init.kaiming_uniform(g, (5, 5), nonlinearity="swish"),
            ValueError,
            "nonlinearity",
        ),
        (lambda g: init.xavier_uniform(g, (5, 5), jnp.int32), TypeError, "floating dtype"),
        (lambda g: init.compute_fans((5, 5), in_axis=3), ValueError, "in_axis must be in"),
        (lambda g: init.compute_fans((5, 5), in_axis=0, out_axis=-2), ValueError, "must differ"),
        (lambda g: init.normal(g, (5,), std=-1.0), ValueError, "std must be >= 0"),
        (lambda g: init.truncated_normal(g, (5,), std=0.0), ValueError, "std must be > 0"),
        (lambda g: init.truncated_normal(g, (5,), lower=1.0, upper=0.0), ValueError, "lower"),
        (lambda g: init.orthogonal(g, (5,)), ValueError, "at least 2 dimensions"),
        (lambda g: init.kaiming_uniform(g, (0, 5)), ValueError, "fan_in of shape"),
        (
            lambda g: init.as_jax_initializer(init.uniform)(jnp.zeros(3, jnp.uint32), (2,)),
            ValueError,
            "uint32",
        ),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call(rs.Generator(0))


def test_retracing_with_new_static_shapes_under_jit():
    # Initializers pass Python scalars (scales) to ops; a jitted caller retraced for a new
    # shape must keep working on its second call (no value cached from an earlier trace).
    make = jax.jit(lambda gen, n: init.kaiming_uniform(gen, (n, 4))[0], static_argnums=1)
    gen = rs.Generator(17)
    for n in (3, 3, 5, 5):
        np.testing.assert_array_equal(make(gen, n), init.kaiming_uniform(gen, (n, 4))[0])
