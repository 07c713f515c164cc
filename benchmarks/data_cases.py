"""Benchmark cases of ``rngstate.data``: the index permutation and one batch of ids.

Imported by benchmarks/cases.py, so these cases register with the others.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

import rngstate as rs
from benchmarks.harness import Case, Contender, Target, register

_BATCH = 1024
_LARGE_N = 10**9


def _permutation(n: int) -> Mapping[str, Contender]:
    """Every position of a permutation of [0, n): NumPy's, jax.random's, index_shuffle's."""
    gen, key = rs.Generator(seed=0), jax.random.key(0)
    numpy_rng = np.random.default_rng(0)
    indices = jnp.arange(n, dtype=jnp.int32)
    raw = jax.jit(lambda k: jax.random.permutation(k, n))
    ours = jax.jit(lambda g, i: rs.data.index_shuffle(g, i, n))
    return {
        "np.random.permutation": lambda: np.random.permutation(n),
        "Generator.permutation (NumPy)": lambda: numpy_rng.permutation(n),
        "jit(jax.random.permutation)": lambda: raw(key),
        "jit(rs.data.index_shuffle)": lambda: ours(gen, indices),
    }


register(
    Case(
        name="data permutation",
        description="all n positions of a random permutation (full: n = 2**24)",
        build=_permutation,
        sizes={"smoke": 2**10, "quick": 2**20, "full": 2**24},
        baseline="np.random.permutation",
        targets={"jit(rs.data.index_shuffle)": Target(max_ratio=0.2)},
        # jax.random.permutation of 2**24 takes tens of seconds on a 2-core machine.
        rounds={"smoke": 1, "quick": 5, "full": 7},
    )
)


def _one_batch(n: int) -> Mapping[str, Contender]:
    """One eager batch of 1,024 ids from n examples, against one eager uniform((1024,))."""
    gen, key = rs.Generator(seed=0), jax.random.key(0)
    step = [0]

    def batch() -> jax.Array:
        step[0] += 1  # a new step every call, as in a training loop
        return rs.data.batch_indices(gen, step[0], n, _BATCH)

    return {
        "jax.random.uniform((1024,))": lambda: jax.random.uniform(key, (_BATCH,)),
        "rs.data.batch_indices": batch,
    }


register(
    Case(
        name="data batch",
        description="one eager batch of 1,024 example ids from n = 10**9 examples",
        build=_one_batch,
        sizes={"smoke": _LARGE_N, "quick": _LARGE_N, "full": _LARGE_N},
        baseline="jax.random.uniform((1024,))",
        targets={"rs.data.batch_indices": Target(max_ratio=2.0)},
    )
)


def _temp_bytes(n: int) -> float:
    step = jax.ShapeDtypeStruct((), jnp.uint32)
    gen = rs.Generator(seed=0)
    lowered = jax.jit(lambda g, s: rs.data.batch_indices(g, s, n, _BATCH)).lower(gen, step)
    analysis = lowered.compile().memory_analysis()
    return float(analysis.temp_size_in_bytes + analysis.output_size_in_bytes)


def _memory(_: object) -> Mapping[str, Contender]:
    # n + 7: none of these is a product A * B, so each walks cycles (the larger program).
    return {f"n = 10**{e} + 7": (lambda e=e: _temp_bytes(10**e + 7)) for e in (4, 6, 9)}


register(
    Case(
        name="data memory",
        description="XLA's temporary + output bytes of one batch of 1,024 ids, by n",
        build=_memory,
        sizes={"smoke": None, "quick": None, "full": None},
        baseline="n = 10**4 + 7",
        kind="value",
        unit="bytes",
        rounds={"smoke": 1, "quick": 1, "full": 1},
    )
)
