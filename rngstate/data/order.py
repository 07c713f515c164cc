"""Batch order and per-example generators: what a resumed run needs is ``gen`` and ``step``.

Derivations (docs/data.md), all from ``K``, the contract key of ``gen`` at its
``(seed, offset)``, read as a seed (``hi << 32 | lo`` of its key data, as nnx streams are):

* epoch ``e``'s permutation: :func:`~rngstate.data.index_shuffle` under
  ``Generator(seed=K).stream("rngstate.data.order").construct(e)``;
* example ``i``'s generator: ``Generator(seed=K).stream("rngstate.data.example").stream(i)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rngstate import _u64
from rngstate.data import shuffle
from rngstate.generator import Generator, derive_key

__all__ = ["batch_indices", "example_generator", "steps_per_epoch", "BatchIndexIterator"]

_ORDER_STREAM = "rngstate.data.order"
_EXAMPLE_STREAM = "rngstate.data.example"


def _root(gen: Generator) -> Generator:
    # K, the key gen's (seed, offset) derives, as the seed of the data's own streams.
    key = jax.random.key_data(derive_key(gen.seed, gen.offset))
    return Generator.from_words(key, jnp.zeros_like(key))


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Global batches in one epoch: ``n // batch_size`` (the last partial batch is dropped).

    >>> steps_per_epoch(10, 3)
    3
    """
    n = shuffle.check_n(n)
    batch_size = shuffle.bounded_int(batch_size, "batch_size", 1, n, f"n = {n}")
    return n // batch_size


def _check_process(batch_size: int, process_index: Any, process_count: Any) -> tuple[int, int]:
    count = shuffle.bounded_int(
        process_count, "process_count", 1, batch_size, f"batch_size = {batch_size}"
    )
    index = shuffle.bounded_int(
        process_index, "process_index", 0, count - 1, f"process_count - 1 = {count - 1}"
    )
    if batch_size % count:
        raise ValueError(
            f"batch_size ({batch_size}) must be divisible by process_count ({count}): each "
            "process takes an equal contiguous part of the global batch"
        )
    return index, count


def _step_array(step: Any) -> Any:
    # The contract's rule for steps: concrete ones in [0, 2**64) exactly, traced ones of an
    # unsigned dtype (a signed loop counter could hold a negative: a silent rewind).
    if isinstance(step, jax.core.Tracer):
        _u64.to_words(step, "step", allow_negative=False)  # its TypeError for signed dtypes
        if step.ndim:
            raise TypeError(f"step must be a single integer, got an array of shape {step.shape}")
        return step
    number = _u64.to_int(step, "step", allow_negative=False)
    if number < 2**32:
        return np.uint32(number)  # a NumPy scalar: no device transfer of its own
    if not jax.config.jax_enable_x64:
        raise ValueError(f"step must be below 2**32 without jax_enable_x64, got {number}")
    return np.uint64(number)


def batch_indices(
    gen: Generator,
    step: Any,
    n: int,
    batch_size: int,
    *,
    process_index: int = 0,
    process_count: int = 1,
) -> jax.Array:
    """The example ids of global batch ``step``, or this process's part of it.

    Batches run through endless epochs: epoch ``e = step // (n // batch_size)`` is a fresh
    permutation of all ``n`` examples (:func:`index_shuffle` under a generator derived from
    ``gen`` and ``e``, see the module docstring), cut into ``n // batch_size`` batches; the
    last partial batch is dropped. With ``process_count > 1`` the result is this process's
    contiguous ``batch_size // process_count`` slice: the global batch never depends on the
    number of processes, so a run resumed on another world size sees the same batches.

    Args:
      gen: the generator reserved for the data order (it is consumed, like a sampler's).
      step: the global batch number, an int in ``[0, 2**64)`` or an integer array scalar;
        traced, it must be unsigned (``step.astype(jnp.uint32)``), as for ``construct``.
      n: the number of examples, a Python int (static under jit), ``1 <= n``.
      batch_size: the global batch size, ``1 <= batch_size <= n``.
      process_index: this process, in ``[0, process_count)``.
      process_count: how many processes share each batch; ``batch_size`` must be divisible
        by it.

    Returns: ``batch_size // process_count`` ids in ``[0, n)``, of the narrowest dtype
    holding ``n - 1`` (``int32`` up to ``n = 2**31``).

    >>> import numpy as np
    >>> import rngstate as rs
    >>> g = rs.Generator(seed=7)
    >>> whole = batch_indices(g, 5, n=100, batch_size=8)
    >>> halves = [batch_indices(g, 5, 100, 8, process_index=p, process_count=2) for p in (0, 1)]
    >>> bool((np.concatenate(halves) == whole).all())
    True
    """
    gen = shuffle.single_generator(gen)
    n = shuffle.check_n(n)
    batch_size = shuffle.bounded_int(batch_size, "batch_size", 1, n, f"n = {n}")
    process_index, process_count = _check_process(batch_size, process_index, process_count)
    dtype = shuffle.default_index_dtype(n)
    return _batch_indices(
        gen, _step_array(step), n, batch_size, process_index, process_count, dtype
    )


def _batch_indices_impl(gen, step, n, batch_size, process_index, process_count, dtype):
    per_epoch = n // batch_size
    if n > 2**32:  # (x64 only) batches per epoch and positions may pass 32 bits
        step = step.astype(jnp.uint64)
    wide = step.dtype
    epoch = step // jnp.asarray(per_epoch, wide)
    within = step % jnp.asarray(per_epoch, wide)
    part = batch_size // process_count
    first = within * jnp.asarray(batch_size, wide) + jnp.asarray(process_index * part, wide)
    positions = (first + jnp.arange(part, dtype=wide)).astype(dtype)
    epoch_gen = _root(gen).stream(_ORDER_STREAM).construct(epoch)
    return shuffle.permute(epoch_gen, positions, n)


# One dispatch eagerly; n, the sizes and the dtype are static (a new n compiles anew).
_batch_indices = jax.jit(_batch_indices_impl, static_argnums=(2, 3, 4, 5, 6))


def example_generator(gen: Generator, example_id: Any) -> Generator:
    """The generator of one example's augmentation, wherever and whenever it is drawn.

    It depends on ``gen``'s ``(seed, offset)`` and ``example_id`` alone, not on the batch,
    worker, device or process that asks, and distinct ids give independent streams (their
    seeds are distinct: ``stream`` is a bijection of integer names). For a new augmentation
    each epoch, pass ``gen.construct(epoch)``. ``example_id`` is an integer in
    ``[0, 2**64)`` or an integer array (a batch of generators, for ``jax.vmap``); traced,
    it must be unsigned, as ``Generator.stream`` requires.

    >>> import rngstate as rs
    >>> g = rs.Generator(seed=7)
    >>> example_generator(g, 3) == example_generator(g, 3), example_generator(g, 4).offset.tolist()
    (True, [0, 0])
    """
    gen = shuffle.single_generator(gen)
    return _root(gen).stream(_EXAMPLE_STREAM).stream(example_id)


class BatchIndexIterator:
    """An endless iterator of this process's index batches, as NumPy arrays, from ``step``.

    Any loader that takes an iterable of index lists accepts it: PyTorch's
    ``DataLoader(dataset, batch_sampler=it)``; for ``DataLoader(sampler=...)`` use
    :meth:`flat`, which yields single ids in batch order. ``state()`` is the one number to
    checkpoint besides ``gen``: the next step.

    >>> import rngstate as rs
    >>> it = BatchIndexIterator(rs.Generator(1), n=10, batch_size=4)
    >>> first = next(it); it.state()
    1
    >>> bool((first == BatchIndexIterator(rs.Generator(1), 10, 4).__next__()).all())
    True
    """

    def __init__(self, gen: Generator, n: int, batch_size: int, *, step: int = 0,
                 process_index: int = 0, process_count: int = 1,
                 num_steps: int | None = None) -> None:
        # Checked once here, so that a bad argument fails at construction, not mid-epoch.
        batch_indices(gen, step, n, batch_size, process_index=process_index,
                      process_count=process_count)
        self._args = (gen, n, batch_size, process_index, process_count)
        self._step = _u64.to_int(step, "step", allow_negative=False)
        self._stop = None if num_steps is None else self._step + shuffle.bounded_int(
            num_steps, "num_steps", 0, 2**63, "2**63")

    def state(self) -> int:
        """The next step: what a checkpoint keeps to resume this iterator."""
        return self._step

    def __iter__(self) -> BatchIndexIterator:
        return self

    def __next__(self) -> np.ndarray:
        if self._stop is not None and self._step >= self._stop:
            raise StopIteration
        gen, n, batch_size, process_index, process_count = self._args
        batch = batch_indices(gen, self._step, n, batch_size, process_index=process_index,
                              process_count=process_count)
        self._step += 1
        return np.asarray(batch)

    def __len__(self) -> int:
        if self._stop is None:
            raise TypeError("an endless BatchIndexIterator has no len(); pass num_steps")
        return self._stop - self._step

    def flat(self) -> Iterator[int]:
        """Single example ids, batch after batch (for ``DataLoader(sampler=...)``).

        >>> import rngstate as rs
        >>> ids = BatchIndexIterator(rs.Generator(1), 10, 4, num_steps=2).flat()
        >>> len(list(ids))
        8
        """
        for batch in self:
            yield from batch.tolist()
