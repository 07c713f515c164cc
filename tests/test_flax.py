"""rngstate.flax against the real Flax NNX: the RngStream <-> Generator correspondence."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rngstate as rs

nnx = pytest.importorskip("flax.nnx")
from rngstate import flax as rsf  # noqa: E402

SEEDS = [0, 5, 2**31 + 3, 2**40 + 5, 2**64 - 1]


def _data(key):
    return np.asarray(jax.random.key_data(key))


def _hi_lo(key) -> int:
    hi, lo = (int(w) for w in _data(key))
    return hi << 32 | lo


@pytest.mark.parametrize("raw_seed", [0, 7, 123456789])
def test_an_nnx_stream_key_is_the_generator_key_of_its_key_data_and_count(raw_seed):
    # Any threefry key: here the ones jax.random.split makes, with all 64 bits in use.
    for key in jax.random.split(jax.random.key(raw_seed), 3):
        stream = nnx.Rngs(params=key).params
        for count in range(4):
            expected = rs.Generator(seed=_hi_lo(key), offset=count).key()
            np.testing.assert_array_equal(_data(stream()), _data(expected))


@pytest.mark.parametrize("seed", SEEDS)
def test_rngs_streams_draw_the_keys_of_gen_stream(seed):
    gen = rs.Generator(seed=seed)
    r = rsf.rngs(gen, "params", "dropout")
    for name in ("params", "dropout"):
        mine = gen.stream(name)
        for _ in range(3):
            np.testing.assert_array_equal(_data(r[name]()), _data(mine.key()))
            mine = mine.construct(1)


def test_rngs_keeps_64_bit_seeds_apart():
    a = rsf.rngs(rs.Generator(seed=5), "params")
    b = rsf.rngs(rs.Generator(seed=2**40 + 5), "params")
    assert not np.array_equal(_data(a.params()), _data(b.params()))


def test_nnx_layers_initialised_from_rngs_match_the_generator_draws():
    gen = rs.Generator(seed=2**40 + 5)
    layer = nnx.Linear(3, 4, rngs=rsf.rngs(gen, "params"))
    # nnx.Linear draws its kernel with the first key of the params stream.
    init = nnx.initializers.lecun_normal()
    expected = init(gen.stream("params").key(), (3, 4), jnp.float32)
    np.testing.assert_array_equal(layer.kernel[...], expected)


def test_nnx_dropout_with_rngs_equals_rngstate_dropout_on_the_stream():
    gen = rs.Generator(seed=2**40 + 11)
    x = jnp.arange(1.0, 129.0).reshape(2, 64)
    got = nnx.Dropout(0.25, deterministic=False)(x, rngs=rsf.rngs(gen, "dropout"))
    mine, _ = rs.random.dropout(gen.stream("dropout"), x, 0.25)
    np.testing.assert_array_equal(got, mine)


@pytest.mark.parametrize("seed", SEEDS)
def test_generator_reads_where_a_stream_is(seed):
    key = rs.Generator(seed=seed).key()  # a threefry key using all 64 bits
    stream = nnx.Rngs(default=key).default
    for _ in range(3):
        gen = rsf.generator(stream)
        assert gen.initial_seed() == _hi_lo(key)
        np.testing.assert_array_equal(_data(gen.key()), _data(stream()))
    assert rsf.generator(stream) == rs.Generator(seed=_hi_lo(key), offset=3)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("offset", [0, 1, 2**32 - 1])
def test_rng_stream_round_trips_and_draws_the_generator_keys(seed, offset):
    gen = rs.Generator(seed=seed, offset=offset)
    stream = rsf.rng_stream(gen, tag="noise")
    assert rsf.generator(stream) == gen
    np.testing.assert_array_equal(_data(stream()), _data(gen.key()))


def test_rng_stream_count_wraps_where_the_generator_does_not():
    gen = rs.Generator(seed=1, offset=2**32 - 1)
    stream = rsf.rng_stream(gen)
    stream()
    assert rsf.generator(stream) == rs.Generator(seed=1, offset=0)  # nnx's uint32 wrapped
    assert gen.construct(1) == rs.Generator(seed=1, offset=2**32)


@pytest.mark.parametrize("offset", [2**32, 2**63 + 1])
def test_rng_stream_refuses_offsets_nnx_cannot_count(offset):
    with pytest.raises(ValueError, match="uint32"):
        rsf.rng_stream(rs.Generator(seed=1, offset=offset))


def test_nnx_rngs_with_an_int_seed_agrees_for_32_bit_seeds_only():
    for seed in (0, 2**31 - 1, 2**32 - 1):
        stream = nnx.Rngs(seed).default
        assert rsf.generator(stream) == rs.Generator(seed=seed)
    # Without x64, jax.random.key keeps the low 32 bits of a larger int.
    if not jax.config.jax_enable_x64:
        assert rsf.generator(nnx.Rngs(2**40 + 5).default) == rs.Generator(seed=5)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="gen must be an rngstate.Generator"):
        rsf.rngs(0, "params")
    with pytest.raises(ValueError, match="at least one stream name"):
        rsf.rngs(rs.Generator())
    with pytest.raises(ValueError, match="identifiers"):
        rsf.rngs(rs.Generator(), "not a name")
    with pytest.raises(TypeError, match="nnx.RngStream"):
        rsf.generator(rs.Generator())
    with pytest.raises(ValueError, match="threefry2x32"):
        rsf.generator(nnx.Rngs(default=jax.random.key(0, impl="rbg")).default)


def test_generator_and_rng_stream_work_inside_nnx_jit():
    gen = rs.Generator(seed=2**40 + 5, offset=9)

    @jax.jit
    def roundtrip(g):
        return rsf.generator(rsf.rng_stream(g))

    assert roundtrip(gen) == gen


class _Noisy(nnx.Module):
    """A module holding a Generator: nnx needs it marked as data (nnx.data)."""

    def __init__(self, gen: rs.Generator):
        self.scale = nnx.Param(jnp.ones(4))
        self.gen = nnx.data(gen)

    def __call__(self, x):
        noise, self.gen = self.gen.normal(x.shape)
        return x * self.scale[...] + noise


def test_a_generator_as_a_plain_module_attribute_is_refused_by_nnx():
    class Plain(nnx.Module):
        def __init__(self):
            self.gen = rs.Generator(0)

    with pytest.raises(ValueError, match="nnx.data|static attribute"):
        Plain()


def test_a_module_holding_a_generator_with_nnx_data_advances_it_through_nnx_jit():
    gen = rs.Generator(seed=3)
    model = _Noisy(gen)
    step = nnx.jit(lambda m, x: m(x))
    x = jnp.zeros(4)
    first, second = step(model, x), step(model, x)
    np.testing.assert_array_equal(first, gen.normal((4,))[0])
    np.testing.assert_array_equal(second, gen.construct(1).normal((4,))[0])
    assert model.gen == gen.construct(2)
    # nnx.split / merge carry it as state.
    graphdef, state = nnx.split(model)
    assert nnx.merge(graphdef, state).gen == gen.construct(2)


class _Held(nnx.Module):
    """Generators held with nnx.data: on the module, in a dict and in a list."""

    def __init__(self, gen: rs.Generator):
        self.scale = nnx.Param(jnp.ones(3))
        self.gen = nnx.data(gen)
        self.more = nnx.data({"eval": gen.stream("eval"), "workers": [gen.stream(1)]})

    def __call__(self, x):
        noise, self.gen = self.gen.normal(x.shape)
        return x * self.scale[...] + noise


def _trained() -> _Held:
    model = _Held(rs.Generator(seed=2**40 + 11))
    step = nnx.jit(lambda m, x: m(x))
    for _ in range(3):
        step(model, jnp.zeros(3))
    model.scale[...] = jnp.arange(3.0)
    return model


def _assert_restored(model: _Held, reference: _Held) -> None:
    assert model.gen == reference.gen and model.more == reference.more
    np.testing.assert_array_equal(model.scale[...], reference.scale[...])
    step = nnx.jit(lambda m, x: m(x))
    x = jnp.ones(3)
    # the restored model draws, from here on, what the live one draws
    np.testing.assert_array_equal(step(model, x), step(reference, x))
    assert model.gen == reference.gen


def test_nnx_update_cannot_restore_a_generator_held_with_nnx_data():
    # nnx sets restored leaves one by one, and a Generator is immutable: the failure rsf.update
    # exists for (if Flax ever replaces immutable pytrees whole, this test says so).
    with pytest.raises(ValueError, match="immutable node of type Generator"):
        nnx.update(_Held(rs.Generator(0)), nnx.state(_trained()))


def test_rsf_update_restores_generators_held_with_nnx_data_from_nnx_state():
    reference = _trained()
    model = _Held(rs.Generator(0))
    rsf.update(model, nnx.state(reference))
    _assert_restored(model, reference)


@pytest.mark.parametrize("with_target", [False, True])
def test_rsf_update_restores_from_an_rs_save_checkpoint(tmp_path, with_target):
    reference = _trained()
    rs.save(tmp_path / "m.ckpt", nnx.state(reference))
    target = nnx.state(_Held(rs.Generator(0))) if with_target else None
    model = _Held(rs.Generator(0))
    rsf.update(model, rs.load(tmp_path / "m.ckpt", target=target))
    _assert_restored(model, reference)


@pytest.mark.parametrize("with_target", [False, True])
def test_rsf_update_restores_from_an_orbax_checkpoint(tmp_path, with_target):
    ocp = pytest.importorskip("orbax.checkpoint")
    reference = _trained()
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(tmp_path / "state", nnx.state(reference))
        abstract = jax.eval_shape(lambda: nnx.state(_Held(rs.Generator(0))))
        restored = checkpointer.restore(tmp_path / "state", abstract if with_target else None)
    model = _Held(rs.Generator(0))
    rsf.update(model, restored)
    _assert_restored(model, reference)


def test_rsf_update_names_the_place_of_a_state_that_is_no_generator():
    state = nnx.state(_Held(rs.Generator(1)))
    state["gen"] = {"seed": np.zeros(2, np.int32), "offset": np.zeros(2, np.int32)}
    with pytest.raises(ValueError, match="state at gen must restore a Generator"):
        rsf.update(_Held(rs.Generator(0)), state)
    with pytest.raises(TypeError, match="state must be an nnx.State or a mapping"):
        rsf.update(_Held(rs.Generator(0)), [1])


class _InVariable(nnx.Module):
    def __init__(self, gen: rs.Generator):
        self.scale = nnx.Param(jnp.ones(3))
        self.gen = rsf.GeneratorVariable(gen)

    def __call__(self, x):
        noise, gen = self.gen.get_value().normal(x.shape)
        self.gen.set_value(gen)
        return x * self.scale[...] + noise


def test_a_generator_variable_is_restored_by_nnx_update_itself(tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint")
    gen = rs.Generator(seed=9)
    reference = _InVariable(gen)
    step = nnx.jit(lambda m, x: m(x))
    first = step(reference, jnp.zeros(3))
    np.testing.assert_array_equal(first, gen.normal((3,))[0])
    assert reference.gen.get_value() == gen.construct(1)
    # a filter picks the generators out of the state
    only = nnx.state(reference, rsf.GeneratorVariable)
    assert list(only) == ["gen"] and only["gen"].get_value() == gen.construct(1)
    rs.save(tmp_path / "m.ckpt", nnx.state(reference))
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(tmp_path / "state", nnx.state(reference))
        abstract = jax.eval_shape(lambda: nnx.state(_InVariable(rs.Generator(0))))
        from_orbax = checkpointer.restore(tmp_path / "state", abstract)
    target = nnx.state(_InVariable(rs.Generator(0)))
    for restored in (nnx.state(reference), rs.load(tmp_path / "m.ckpt", target), from_orbax):
        model = _InVariable(rs.Generator(0))
        nnx.update(model, restored)
        assert model.gen.get_value() == gen.construct(1)
        x = jnp.ones(3)
        np.testing.assert_array_equal(step(model, x), gen.construct(1).normal((3,))[0] + 1)


def test_rsf_update_restores_a_generator_variable_from_a_checkpoint_read_without_target(tmp_path):
    gen = rs.Generator(seed=2**50 + 1, offset=6)
    rs.save(tmp_path / "m.ckpt", nnx.state(_InVariable(gen)))
    plain = rs.load(tmp_path / "m.ckpt")  # {'gen': {'value': {'seed', 'offset'}}, ...}
    model = _InVariable(rs.Generator(0))
    rsf.update(model, plain)
    assert model.gen.get_value() == gen
    np.testing.assert_array_equal(model.scale[...], jnp.ones(3))
