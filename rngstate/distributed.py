"""Multi-process runs: one stream per JAX process, carved from a generator they all share.

rngstate has no runtime of its own. Processes are JAX's (``jax.distributed.initialize``);
an array that spans them is an ordinary global ``jax.Array`` whose values, like every
rngstate output, do not depend on how it is sharded. What a multi-process run adds is the
need for per-process randomness (data order, augmentation): :func:`process_generator`.
"""

from __future__ import annotations

import jax
import numpy as np

from rngstate.generator import Generator

__all__ = ["process_generator"]


def _rank(value: int, name: str, low: int, high: int | None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a Python int, got {type(value).__name__}")
    if value < low or (high is not None and value >= high):
        accepted = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {accepted}, got {value}")
    return int(value)


def process_generator(
    gen: Generator, process_index: int | None = None, process_count: int | None = None
) -> tuple[Generator, Generator]:
    """This process's own generator, and ``gen`` advanced by one.

    Every process calls it with the same ``gen`` (for instance
    ``Generator(rngstate.set_random_seed())``) and gets a different child:
    ``gen.spawn(process_count)`` children, of which it keeps number ``process_index``.
    The second result, ``gen.construct(1)``, is the same in every process, so the shared
    stream stays in step. By default the index and count are ``jax.process_index()`` and
    ``jax.process_count()``; pass them to use another launcher's ranks.

    Args:
      gen: one generator, the same in every process.
      process_index: this process's rank, in ``[0, process_count)``.
      process_count: the number of processes, ``>= 1``.

    >>> import rngstate as rs
    >>> mine, shared = process_generator(rs.Generator(seed=7))  # one process: rank 0 of 1
    >>> shared
    Generator(seed=7, offset=1)
    >>> kids, _ = rs.Generator(seed=7).spawn(2)
    >>> second, _ = process_generator(rs.Generator(seed=7), process_index=1, process_count=2)
    >>> second == rs.Generator.from_words(kids.seed[1], kids.offset[1])
    True
    """
    if not isinstance(gen, Generator):
        raise TypeError(f"gen must be a Generator, got {type(gen).__name__}")
    if gen.batch_shape:
        raise ValueError(f"gen must be one generator, got a batch of shape {gen.batch_shape}")
    if process_count is None:
        process_count = jax.process_count()
    if process_index is None:
        process_index = jax.process_index()
    count = _rank(process_count, "process_count", 1, None)
    index = _rank(process_index, "process_index", 0, count)
    children, next_gen = gen.spawn(count)
    return Generator.from_words(children.seed[index], children.offset[index]), next_gen
