"""repr/str of a Generator never raise, whatever its leaves hold, and say what they hold."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rngstate as rs

GEN = rs.Generator(seed=2**40 + 5, offset=3)


def _both(g) -> str:
    assert str(g) == repr(g)
    return repr(g)


def test_a_concrete_generator_shows_its_numbers():
    assert _both(GEN) == "Generator(seed=1099511627781, offset=3)"
    numpy_leaves = rs.Generator.from_words(np.asarray(GEN.seed), np.asarray(GEN.offset))
    assert _both(numpy_leaves) == "Generator(seed=1099511627781, offset=3)"


def test_eval_shape_and_orbax_style_targets_show_abstract_leaves():
    abstract = jax.eval_shape(lambda: GEN)
    assert _both(abstract) == "Generator(seed=abstract uint32[2], offset=abstract uint32[2])"
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), GEN.spawn(4)[0])
    assert _both(target) == "Generator(seed=abstract uint32[4, 2], offset=abstract uint32[4, 2])"


def test_tracers_show_as_traced():
    seen = []
    jax.jit(lambda g: seen.append(repr(g)) or g.seed)(GEN)
    jax.vmap(lambda g: seen.append(str(g)) or g.seed)(GEN.spawn(3)[0])
    assert seen == ["Generator(seed=traced uint32[2], offset=traced uint32[2])"] * 2


def test_none_and_other_objects_in_the_leaves():
    assert _both(jax.tree.map(lambda x: None, GEN)) == "Generator(seed=None, offset=None)"
    odd = rs.Generator.from_words(object(), "text")
    assert _both(odd) == "Generator(seed=object, offset=str)"
    wrong = rs.Generator.from_words(jnp.zeros(2, jnp.float32), 7)
    assert _both(wrong) == "Generator(seed=float32[2], offset=int)"


def test_a_batch_shows_its_shape():
    assert _both(GEN.spawn(3)[0]) == "Generator(seed=uint32[3, 2], offset=uint32[3, 2])"


def test_a_deleted_array_does_not_raise():
    seed = jnp.array([0, 1], jnp.uint32)
    seed.delete()
    assert _both(rs.Generator.from_words(seed, GEN.offset)).startswith("Generator(seed=uint32[2]")


def test_equinox_partition_halves():
    eqx = pytest.importorskip("equinox")
    arrays, rest = eqx.partition({"gen": GEN, "n": 3}, eqx.is_array)
    assert _both(arrays["gen"]) == repr(GEN)
    assert _both(rest["gen"]) == "Generator(seed=None, offset=None)"
