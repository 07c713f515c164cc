"""Golden values: the numbers this release promises to draw, pinned bit for bit.

``golden.json`` (package data, the one copy) holds, for a handful of ``(seed, offset)`` pairs
including 64-bit ones, the derived key words and the first four values of ``bits`` (uint32),
``uniform`` (float32), ``normal`` (float32) and ``randint(0, 100)``, under both settings of
``jax_threefry_partitionable`` (every sampler's values depend on it). Floats are stored as the
hex of their bit pattern, so the comparison is exact. The test suite (``tests/golden/``) and
``rngstate doctor`` both compare the installed engine against this table; docs/stability.md
says which of these values may change, and when.

>>> mismatches() == []
True
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rngstate import _partitionable

__all__ = [
    "pinned_table", "current_values", "mismatches", "STABLE_FIELDS", "SAMPLER_FIELDS",
    "DATA_FIELDS",
]

STABLE_FIELDS = ("key", "bits_u32")
"""Fields that never change: the key derivation and ``bits`` (see docs/stability.md)."""

SAMPLER_FIELDS = ("uniform_f32", "normal_f32", "randint_0_100")
"""Fields built on ``jax.random`` samplers: a JAX upgrade may change them."""

DATA_FIELDS = ("index_shuffle_1000", "batch_indices_1e9", "example_seed_5")
"""Fields of ``rngstate.data``: Threefry and integer arithmetic only, so they never change
(and do not depend on ``jax_threefry_partitionable``)."""

COUNT = 4  # values pinned per sampler


@cache
def pinned_table() -> dict[str, Any]:
    """The pinned table as stored in ``rngstate/golden.json``.

    >>> table = pinned_table()
    >>> [(c["seed"], c["offset"]) for c in table["cases"]][:2]
    [(0, 0), (42, 7)]
    """
    text = resources.files("rngstate").joinpath("golden.json").read_text()
    return json.loads(text)


def _hex_words(x: Any) -> list[str]:
    words = np.asarray(x)
    if words.dtype.kind == "f":
        words = words.view(np.uint32)
    return [f"0x{int(w):08x}" for w in words.ravel()]


def current_values(seed: int, offset: int, partitionable: bool | None = None) -> dict[str, Any]:
    """What the installed engine draws at ``(seed, offset)``, in the table's format.

    ``partitionable`` sets ``jax_threefry_partitionable`` for the draws (default: as
    configured). The key does not depend on it.

    >>> current_values(0, 0)["key"]
    ['0x6b200159', '0x99ba4efe']
    """
    import rngstate as rs

    gen = rs.Generator(seed, offset)
    flag = jax.config.jax_threefry_partitionable if partitionable is None else partitionable
    with jax.threefry_partitionable(flag), _partitionable.internal_draws():
        values = {
            "key": _hex_words(jax.random.key_data(gen.key())),
            "bits_u32": _hex_words(rs.random.bits(gen, (COUNT,), jnp.uint32)[0]),
            "uniform_f32": _hex_words(rs.random.uniform(gen, (COUNT,), jnp.float32)[0]),
            "normal_f32": _hex_words(rs.random.normal(gen, (COUNT,), jnp.float32)[0]),
            # int32 explicitly: under x64 the default int64 draws differently.
            "randint_0_100": [
                int(v) for v in rs.random.randint(gen, (COUNT,), 0, 100, jnp.int32)[0]
            ],
            "index_shuffle_1000": [
                int(v) for v in rs.data.index_shuffle(gen, jnp.arange(COUNT), 1000)
            ],
            "batch_indices_1e9": [int(v) for v in rs.data.batch_indices(gen, 3, 10**9, COUNT)],
            "example_seed_5": _hex_words(rs.data.example_generator(gen, 5).seed),
        }
    return values


def _flag_name(partitionable: bool) -> str:
    return f"threefry_partitionable={partitionable}"


def mismatches(
    partitionable: bool | None = None, fields: tuple[str, ...] | None = None
) -> list[str]:
    """Every pinned value the installed engine no longer draws, as readable lines.

    Empty when all match. ``partitionable``: the ``jax_threefry_partitionable`` setting to
    check (default: as configured); ``fields``: a subset of ``STABLE_FIELDS +
    SAMPLER_FIELDS`` (default: all).

    >>> mismatches(partitionable=False, fields=STABLE_FIELDS)
    []
    """
    flag = jax.config.jax_threefry_partitionable if partitionable is None else partitionable
    wanted = fields or STABLE_FIELDS + SAMPLER_FIELDS + DATA_FIELDS
    found = []
    for case in pinned_table()["cases"]:
        pinned = {"key": case["key"], **case["values"][_flag_name(flag)]}
        now = current_values(case["seed"], case["offset"], flag)
        found += [
            f"seed={case['seed']} offset={case['offset']} {field} ({_flag_name(flag)}): "
            f"pinned {pinned[field]}, drawn {now[field]}"
            for field in wanted
            if now[field] != pinned[field]
        ]
    return found


def table_for(cases: list[tuple[int, int]]) -> dict[str, Any]:
    """Build the table for ``cases`` from the installed engine (used to write golden.json).

    >>> table_for([(0, 0)])["cases"][0]["key"]
    ['0x6b200159', '0x99ba4efe']
    """
    rows = []
    for seed, offset in cases:
        per_flag = {_flag_name(flag): current_values(seed, offset, flag) for flag in (True, False)}
        key = per_flag[_flag_name(True)]["key"]
        for values in per_flag.values():
            del values["key"]
        rows.append({"seed": seed, "offset": offset, "key": key, "values": per_flag})
    return {
        "format": 1,
        "prng": "threefry2x32",
        "pinned_with": {"jax": jax.__version__, "numpy": np.__version__},
        "fields": {
            "key": "jax.random.key_data(Generator(seed, offset).key()), hex words",
            "bits_u32": "rngstate.random.bits(gen, (4,), jnp.uint32), hex",
            "uniform_f32": "rngstate.random.uniform(gen, (4,), jnp.float32), hex bit patterns",
            "normal_f32": "rngstate.random.normal(gen, (4,), jnp.float32), hex bit patterns",
            "randint_0_100": "rngstate.random.randint(gen, (4,), 0, 100, jnp.int32)",
            "index_shuffle_1000": "rngstate.data.index_shuffle(gen, jnp.arange(4), 1000)",
            "batch_indices_1e9": "rngstate.data.batch_indices(gen, 3, 10**9, 4)",
            "example_seed_5": "rngstate.data.example_generator(gen, 5).seed, hex words",
        },
        "cases": rows,
    }
