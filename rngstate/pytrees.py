"""Generators back from checkpoint libraries that restore them as ``{'seed', 'offset'}`` dicts.

A library that restores without a target (Orbax without an abstract tree, a plain msgpack or
safetensors reader) knows nothing of :class:`~rngstate.Generator` and gives back each one as
the mapping of its two leaves by name. :func:`restore_generators` turns those back.

>>> import numpy as np, rngstate as rs
>>> g = rs.Generator(seed=2**40 + 5, offset=3)
>>> restore_generators({"rng": {"seed": np.asarray(g.seed), "offset": np.asarray(g.offset)}})
{'rng': Generator(seed=1099511627781, offset=3)}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rngstate.generator import Generator

__all__ = ["restore_generators"]

_FIELDS = frozenset({"seed", "offset"})


def _is_words(leaf: Any) -> bool:
    return (
        isinstance(leaf, (jax.Array, np.ndarray))
        and leaf.dtype == np.uint32
        and leaf.ndim >= 1
        and leaf.shape[-1] == 2
    )


def _is_generator_pair(node: Any) -> bool:
    if not isinstance(node, Mapping) or set(node.keys()) != _FIELDS:
        return False
    seed, offset = node["seed"], node["offset"]
    return _is_words(seed) and _is_words(offset) and seed.shape == offset.shape


def restore_generators(tree: Any) -> Any:
    """``tree`` with every ``{'seed', 'offset'}`` mapping of generator leaves as a Generator.

    A mapping is turned back when its keys are exactly ``seed`` and ``offset`` and both are
    ``uint32[..., 2]`` arrays (NumPy or JAX) of one shape, as :class:`~rngstate.Generator`
    stores them. JAX arrays are kept as they are (with their sharding); NumPy arrays become
    JAX arrays. Anything else, other dicts included, is left as it is. Works through any JAX
    pytree (dicts, lists, tuples, NamedTuples, ``nnx.State``).

    >>> import jax.numpy as jnp, rngstate as rs
    >>> g = rs.Generator(7).construct(2)
    >>> restore_generators([{"seed": g.seed, "offset": g.offset}, {"offset": 2, "seed": 1}])
    [Generator(seed=7, offset=2), {'offset': 2, 'seed': 1}]
    """

    def convert(node: Any) -> Any:
        if not _is_generator_pair(node):
            return node
        seed, offset = node["seed"], node["offset"]
        if isinstance(seed, np.ndarray):
            seed = jnp.asarray(seed)
        if isinstance(offset, np.ndarray):
            offset = jnp.asarray(offset)
        return Generator.from_words(seed, offset)

    return jax.tree.map(convert, tree, is_leaf=_is_generator_pair)
