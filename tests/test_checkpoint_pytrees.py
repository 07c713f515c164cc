"""Checkpoints of any pytree: Flax NNX state, Optax states, registered dataclasses; targets."""

from __future__ import annotations

import dataclasses
import pathlib
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rngstate as rs
from rngstate.checkpoint import CheckpointError

DATA = pathlib.Path(__file__).parent / "data"


def same_leaves(a, b):
    """Same treedef, and every leaf of the same type, dtype, shape and bits."""
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b, (tree_a, tree_b)
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert type(x) is type(y), (type(x), type(y))
        if isinstance(x, (jax.Array, np.ndarray, np.generic)):
            if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
                x, y = jax.random.key_data(x), jax.random.key_data(y)
            assert x.dtype == y.dtype and np.shape(x) == np.shape(y)
            assert np.asarray(x).tobytes() == np.asarray(y).tobytes()
        else:
            assert x == y


class Moments(typing.NamedTuple):
    count: jax.Array
    mu: dict


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    step: jax.Array
    params: dict
    gen: rs.Generator
    name: str = dataclasses.field(metadata={"static": True}, default="run")


def a_state():
    return TrainState(
        step=jnp.array(3, jnp.int32),
        params={"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.zeros(3, jnp.bfloat16)},
        gen=rs.Generator(2**40 + 1, offset=9),
    )


# -- flax and optax ------------------------------------------------------------------------


def test_nnx_state_and_optax_state_round_trip_into_their_own_types(tmp_path):
    nnx = pytest.importorskip("flax.nnx")
    optax = pytest.importorskip("optax")
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    tx = optax.adam(1e-2)
    opt_state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    _, opt_state = tx.update(grads, opt_state, params)  # count and moments no longer initial
    gen = rs.Generator(7, offset=2)
    tree = {"params": params, "opt": opt_state, "gen": gen, "step": 1}
    rs.save(tmp_path / "train.ckpt", tree)

    abstract = jax.eval_shape(lambda: tree)
    restored = rs.load(tmp_path / "train.ckpt", target=abstract)
    assert type(restored["params"]) is type(params)
    assert type(restored["opt"][0]) is type(opt_state[0])  # optax's ScaleByAdamState
    assert isinstance(restored["gen"], rs.Generator) and restored["gen"] == gen
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(x, y), restored["params"], params)
    same_leaves(restored["opt"], opt_state)
    assert restored["step"].dtype == abstract["step"].dtype and int(restored["step"]) == 1

    # nnx.update puts the restored state into a fresh model: it computes what the saved one did
    fresh = nnx.Linear(3, 2, rngs=nnx.Rngs(1))
    nnx.update(fresh, rs.load(tmp_path / "train.ckpt", target={**tree})["params"])
    x = jnp.ones((1, 3))
    np.testing.assert_array_equal(fresh(x), model(x))


def test_nnx_state_without_a_target_comes_back_as_dicts_by_key(tmp_path):
    nnx = pytest.importorskip("flax.nnx")
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    state = nnx.state(model)
    rs.save(tmp_path / "m.ckpt", state)
    plain = rs.load(tmp_path / "m.ckpt")
    by_path = {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_leaves_with_path(state)}
    assert set(plain) == {"bias", "kernel"}
    # a Variable is a node with the child .value: without a target, a dict {"value": ...}
    np.testing.assert_array_equal(plain["kernel"]["value"], by_path["['kernel'].value"])


def test_nnx_state_loaded_without_a_target_saves_again_under_the_same_key_paths(tmp_path):
    nnx = pytest.importorskip("flax.nnx")
    model = nnx.Linear(2, 3, rngs=nnx.Rngs(1))
    state = nnx.state(model)
    rs.save(tmp_path / "a.ckpt", state)
    rs.save(tmp_path / "b.ckpt", rs.load(tmp_path / "a.ckpt"))  # no target, then saved again
    paths = [e["path"] for e in rs.checkpoint.summary(tmp_path / "b.ckpt")["entries"]]
    assert paths == [e["path"] for e in rs.checkpoint.summary(tmp_path / "a.ckpt")["entries"]]
    assert "['kernel'].value" in paths
    fresh = nnx.Linear(2, 3, rngs=nnx.Rngs(9))
    nnx.update(fresh, rs.load(tmp_path / "b.ckpt", target=nnx.state(fresh)))
    x = jnp.arange(2.0)[None]
    np.testing.assert_array_equal(fresh(x), model(x))


def test_a_node_loaded_without_a_target_keeps_keys_added_to_it(tmp_path):
    nnx = pytest.importorskip("flax.nnx")
    rs.save(tmp_path / "a.ckpt", nnx.state(nnx.Linear(2, 3, rngs=nnx.Rngs(1))))
    plain = rs.load(tmp_path / "a.ckpt")
    plain["step"] = 7  # a key the saved node did not have: an ordinary dict key
    rs.save(tmp_path / "b.ckpt", plain)
    paths = {e["path"] for e in rs.checkpoint.summary(tmp_path / "b.ckpt")["entries"]}
    assert {"['step']", "['kernel'].value", "['bias'].value"} == paths


def test_an_abstract_nnx_model_is_a_target(tmp_path):
    nnx = pytest.importorskip("flax.nnx")
    model = nnx.Linear(3, 4, rngs=nnx.Rngs(5))
    rs.save(tmp_path / "m.ckpt", nnx.state(model))
    abstract = nnx.eval_shape(lambda: nnx.Linear(3, 4, rngs=nnx.Rngs(0)))
    graphdef, target = nnx.split(abstract)
    restored = nnx.merge(graphdef, rs.load(tmp_path / "m.ckpt", target=target))
    x = jnp.arange(3.0)[None]
    np.testing.assert_array_equal(restored(x), model(x))


# -- registered nodes of our own -------------------------------------------------------------


def test_named_tuples_and_dataclasses_load_into_their_types(tmp_path):
    tree = [Moments(jnp.array(2), {"w": jnp.ones(2)}), a_state()]
    rs.save(tmp_path / "s.ckpt", tree)
    restored = rs.load(tmp_path / "s.ckpt", target=tree)
    same_leaves(restored, tree)
    assert type(restored[0]) is Moments and type(restored[1]) is TrainState

    plain = rs.load(tmp_path / "s.ckpt")
    assert set(plain[0]) == {"count", "mu"} and set(plain[1]) == {"step", "params", "gen"}
    assert plain[1]["gen"] == a_state().gen


def test_target_of_shape_dtype_structs_gives_jax_arrays(tmp_path):
    state = a_state()
    saved = {"state": state, "np": np.arange(3, dtype=np.int32), "x": np.float32(2)}
    rs.save(tmp_path / "s.ckpt", saved)
    target = jax.eval_shape(lambda: {"state": state, "np": jnp.arange(3), "x": jnp.float32(0)})
    restored = rs.load(tmp_path / "s.ckpt", target=target)
    assert isinstance(restored["np"], jax.Array) and isinstance(restored["x"], jax.Array)
    np.testing.assert_array_equal(restored["np"], saved["np"])
    same_leaves(restored["state"], state)

    numpy_target = {"state": state, "np": np.zeros(3, np.int32), "x": np.float32(0)}
    restored = rs.load(tmp_path / "s.ckpt", target=numpy_target)
    assert type(restored["np"]) is np.ndarray and type(restored["x"]) is np.float32


def test_a_target_places_arrays_on_its_sharding(tmp_path):
    rs.save(tmp_path / "s.ckpt", {"w": jnp.arange(4.0)})
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[-1])
    target = {"w": jax.ShapeDtypeStruct((4,), jnp.float32, sharding=sharding)}
    assert rs.load(tmp_path / "s.ckpt", target=target)["w"].sharding == sharding


def test_typed_keys_and_generators_in_a_target(tmp_path):
    tree = {"key": jax.random.key(4), "gens": rs.Generator(1).spawn(3)[0]}
    rs.save(tmp_path / "k.ckpt", tree)
    restored = rs.load(tmp_path / "k.ckpt", target=jax.eval_shape(lambda: tree))
    same_leaves(restored, tree)
    draw = jax.vmap(lambda g: g.uniform(())[0])
    np.testing.assert_array_equal(draw(restored["gens"]), draw(tree["gens"]))


@pytest.mark.parametrize(
    "change,where,fragment",
    [
        (lambda t: {**t, "w": jnp.zeros((2, 4))}, "['w']", "float32[2, 4]"),
        (lambda t: {**t, "w": jnp.zeros((2, 3), jnp.float16)}, "['w']", "float16[2, 3]"),
        (lambda t: {**t, "extra": jnp.zeros(1)}, "['extra']", "no leaf there"),
        (lambda t: {k: v for k, v in t.items() if k != "b"}, "['b']", "target has no leaf"),
        (lambda t: {**t, "gen": {"seed": t["gen"].seed}}, "['gen']['seed']", "no leaf"),
        (lambda t: {**t, "n": 2.0}, "['n']", "type float"),
    ],
)
def test_a_target_that_differs_names_the_first_path(tmp_path, change, where, fragment):
    tree = {"w": jnp.ones((2, 3)), "b": jnp.zeros(2), "gen": rs.Generator(3), "n": 5}
    rs.save(tmp_path / "t.ckpt", tree)
    with pytest.raises(CheckpointError, match="does not match the target") as info:
        rs.load(tmp_path / "t.ckpt", target=change(tree))
    message = str(info.value)
    assert str(tmp_path / "t.ckpt") in message and f"at {where}" in message, message
    assert fragment in message, message


def test_a_python_int_fills_a_scalar_array_target_only_if_it_fits(tmp_path):
    rs.save(tmp_path / "i.ckpt", {"step": 2**40})
    restored = rs.load(tmp_path / "i.ckpt", target={"step": np.int64(0)})["step"]
    assert type(restored) is np.int64 and restored == 2**40
    with pytest.raises(CheckpointError, match=r"\['step'\]"):
        rs.load(tmp_path / "i.ckpt", target={"step": jax.ShapeDtypeStruct((), jnp.int32)})


def test_unsupported_target_leaves_are_a_type_error(tmp_path):
    rs.save(tmp_path / "o.ckpt", {"x": 1})
    with pytest.raises(TypeError, match=r"target.*\['x'\].*object"):
        rs.load(tmp_path / "o.ckpt", target={"x": object()})


def test_unkeyed_nodes_and_key_types_save_and_load(tmp_path):
    ordered = __import__("collections").OrderedDict(b=jnp.ones(1), a=2)
    tree = {"od": ordered, "t": {("t", 1): None, ("t", 2): jnp.zeros(2)}}
    rs.save(tmp_path / "o.ckpt", tree)
    restored = rs.load(tmp_path / "o.ckpt", target=tree)
    same_leaves(restored, tree)
    assert type(restored["od"]) is type(tree["od"])


# -- format version 1 ------------------------------------------------------------------------


def test_version_1_files_still_load():
    """tests/data/checkpoint_v1.ckpt was written by rngstate 0.1.0 (checkpoint format 1)."""
    loaded = rs.load(DATA / "checkpoint_v1.ckpt")
    expected = {
        "gen": rs.Generator(2**64 - 1, offset=2**63 + 5),
        "batch": rs.Generator(seed=jnp.arange(4, dtype=jnp.uint32).reshape(2, 2), offset=7),
        "w": jnp.linspace(-1, 1, 6, dtype=jnp.bfloat16).reshape(2, 3),
        "numpy": np.arange(3, dtype=np.int16),
        "scalar": np.float64(0.25),
        "plain": [None, True, 2**70, 0.1, "text", (1, 2)],
    }
    same_leaves(loaded, expected)
    assert rs.checkpoint.summary(DATA / "checkpoint_v1.ckpt")["format_version"] == 1


# -- exact scalars, container kinds, path types ----------------------------------------------


S = jax.ShapeDtypeStruct


@pytest.mark.parametrize(
    "value,target",
    [
        (16777217, S((), jnp.float32)),
        (1e10, S((), jnp.float16)),
        (0.1, S((), jnp.float16)),
        (0.1, S((), jnp.bfloat16)),
        (0.1, np.asarray(0, jnp.bfloat16)),
        (0.1, np.float32(0)),
        (257, S((), jnp.bfloat16)),
        (2**1100, S((), jnp.float32)),
        (1e300, S((), jnp.complex64)),
        (-(2**64), S((), jnp.float16)),
    ],
)
def test_a_saved_scalar_that_would_round_is_refused(tmp_path, value, target):
    rs.save(tmp_path / "s.ckpt", {"y": value})
    with pytest.raises(CheckpointError, match=r"does not match the target at \['y'\]"):
        rs.load(tmp_path / "s.ckpt", target={"y": target})


@pytest.mark.parametrize(
    "value,target",
    [
        (16777216, S((), jnp.float32)),
        (0.5, S((), jnp.float16)),
        (0.5, np.asarray(0, jnp.bfloat16)),
        (-3.25, S((), jnp.bfloat16)),
        (float("inf"), S((), jnp.float16)),
        (float("nan"), S((), jnp.bfloat16)),
        (-0.0, np.float16(1)),
        (2**40, S((), jnp.float32)),
        (0.1, S((), jnp.complex64)) if jax.config.jax_enable_x64 else (0.5, S((), jnp.complex64)),
    ],
)
def test_a_saved_scalar_that_round_trips_fills_the_target(tmp_path, value, target):
    rs.save(tmp_path / "s.ckpt", {"y": value})
    restored = rs.load(tmp_path / "s.ckpt", target={"y": target})["y"]
    assert restored.dtype == target.dtype and np.shape(restored) == ()
    back = complex(restored) if jnp.issubdtype(target.dtype, jnp.complexfloating) else float(
        np.asarray(restored, np.float64))
    assert back == value or (back != back and value != value)
    assert np.signbit(np.real(back)) == np.signbit(np.real(value))


@pytest.mark.parametrize(
    "saved,target",
    [
        ([jnp.ones(1)], {0: jnp.ones(1)}),
        ({0: jnp.ones(1)}, [jnp.ones(1)]),
        ((jnp.ones(1),), {0: jnp.ones(1)}),
        ({1: jnp.ones(1)}, {True: jnp.ones(1)}),
        ({"a": jnp.ones(1)}, Moments(jnp.ones(1), {})._replace(count=None, mu={"a": 1})),
    ],
)
def test_paths_compare_the_kind_of_container_not_only_the_text(tmp_path, saved, target):
    rs.save(tmp_path / "c.ckpt", saved)
    with pytest.raises(CheckpointError, match="does not match the target"):
        rs.load(tmp_path / "c.ckpt", target=target)


def test_a_list_in_a_dict_position_says_the_containers_differ(tmp_path):
    rs.save(tmp_path / "c.ckpt", {"a": [jnp.ones(1)]})
    with pytest.raises(CheckpointError, match="another kind of container"):
        rs.load(tmp_path / "c.ckpt", target={"a": {0: jnp.ones(1)}})


@pytest.mark.parametrize("kind", [str, bytes, pathlib.Path, pathlib.PurePosixPath])
def test_paths_are_str_bytes_or_path_like_as_open_takes_them(tmp_path, kind):
    # Before, a bytes path saved fine but loading it said the good file was damaged.
    name = kind(str(tmp_path / "p.ckpt").encode() if kind is bytes else str(tmp_path / "p.ckpt"))
    rs.save(name, {"gen": rs.Generator(4, offset=1)})
    assert rs.load(name)["gen"] == rs.Generator(4, offset=1)
    assert rs.checkpoint.summary(name)["path"] == str(tmp_path / "p.ckpt")


@pytest.mark.parametrize("call", [lambda p: rs.save(p, {}), rs.load, rs.checkpoint.summary])
def test_a_path_of_another_type_is_a_type_error_naming_it(call):
    with pytest.raises(TypeError, match="path must be a str, bytes or os.PathLike"):
        call(3)
