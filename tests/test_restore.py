"""rs.restore_generators: {'seed', 'offset'} pairs of Generator leaves back into Generators."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import rngstate as rs

GEN = rs.Generator(seed=2**40 + 5, offset=2**33 + 1)


def _pair(g, to=np.asarray):
    return {"seed": to(g.seed), "offset": to(g.offset)}


class _State(NamedTuple):
    step: jax.Array
    rng: object


def test_numpy_and_jax_pairs_become_generators_that_draw_the_same():
    for to in (np.asarray, jnp.asarray):
        restored = rs.restore_generators(_pair(GEN, to))
        assert isinstance(restored, rs.Generator) and restored == GEN
        assert isinstance(restored.seed, jax.Array)
        np.testing.assert_array_equal(restored.normal((3,))[0], GEN.normal((3,))[0])


def test_pairs_anywhere_in_a_pytree_and_batches():
    kids, _ = GEN.spawn(4)
    tree = {
        "train": _State(step=jnp.int32(3), rng=_pair(GEN)),
        "workers": [_pair(kids), {"seed": 1}],
        "params": {"w": jnp.ones(2)},
    }
    out = rs.restore_generators(tree)
    assert out["train"].rng == GEN and isinstance(out["train"], _State)
    assert out["workers"][0] == kids and out["workers"][0].batch_shape == (4,)
    assert out["workers"][1] == {"seed": 1}
    np.testing.assert_array_equal(out["params"]["w"], jnp.ones(2))


def test_lookalikes_are_left_as_they_are():
    lookalikes = [
        {"seed": 1, "offset": 2},  # Python ints
        {"seed": np.zeros(2, np.int32), "offset": np.zeros(2, np.uint32)},  # wrong dtype
        {"seed": np.zeros(3, np.uint32), "offset": np.zeros(3, np.uint32)},  # wrong shape
        {"seed": np.zeros((2, 2), np.uint32), "offset": np.zeros(2, np.uint32)},  # shapes differ
        {"seed": np.zeros(2, np.uint32), "offset": np.zeros(2, np.uint32), "step": 1},  # more
    ]
    for tree in lookalikes:
        out = rs.restore_generators(tree)
        assert not isinstance(out, rs.Generator)
        assert jax.tree.structure(out) == jax.tree.structure(tree)


def test_generators_already_in_the_tree_are_kept():
    assert rs.restore_generators({"g": GEN})["g"] == GEN
