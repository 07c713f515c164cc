"""A Grain sampler whose order and per-record randomness come from a ``Generator``.

Grain (``pip install 'rngstate[grain]'``) is imported only when a record is asked for. The
sampler holds no state of its own: Grain's iterator checkpoints the position, and the
generator (two arrays, ``rs.save``-able) is the rest of what a resumed run needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rngstate.data import order, shuffle
from rngstate.generator import Generator

__all__ = ["Sampler"]


def _unsigned(ids: Any) -> Any:
    return np.uint32 if ids.dtype.itemsize == 4 else np.uint64  # a traced-style id rule


class Sampler:
    """Grain's ``Sampler`` protocol over :func:`~rngstate.data.batch_indices`'s order.

    Global record ``g`` is element ``g % batch_size`` of global batch ``g // batch_size``,
    so epochs are fresh permutations with the last partial batch dropped, as in
    ``batch_indices``. Grain's ``shard_options`` deal records ``k, k + K, ...`` to process
    ``k`` of ``K``; with ``grain.Batch(batch_size // K)`` each process's batch ``b`` holds
    its share of global batch ``b``, whatever ``K`` is. Each record's ``rng`` is a NumPy
    ``Generator(Philox(key=s))`` with ``s`` the seed of
    ``example_generator(gen, record_key)``: the same for a record wherever it is read.

    Args:
      gen: the generator reserved for the data (order and per-record randomness).
      num_records: the data source's length ``n``.
      batch_size: the global batch size (``1 <= batch_size <= n``).
      num_epochs: how many epochs the sampler spans; ``None`` for endless.

    >>> import rngstate as rs
    >>> s = Sampler(rs.Generator(0), num_records=10, batch_size=4, num_epochs=1)
    >>> len(s), sorted(s[i].record_key for i in range(8)) == sorted(
    ...     rs.data.batch_indices(rs.Generator(0), 0, 10, 4).tolist()
    ...     + rs.data.batch_indices(rs.Generator(0), 1, 10, 4).tolist())
    (8, True)
    """

    def __init__(self, gen: Generator, num_records: int, batch_size: int,
                 num_epochs: int | None = None) -> None:
        per_epoch = order.steps_per_epoch(num_records, batch_size)  # checks n and batch_size
        order.batch_indices(gen, 0, num_records, batch_size)  # checks gen
        self.gen, self.num_records, self.batch_size = gen, int(num_records), int(batch_size)
        self._length = None
        if num_epochs is not None:
            epochs = shuffle.bounded_int(num_epochs, "num_epochs", 1, 2**32, "2**32")
            self._length = epochs * per_epoch * self.batch_size
        self._cached: tuple[int, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError("an endless Sampler has no len(); pass num_epochs")
        return self._length

    def __repr__(self) -> str:
        # Grain writes the sampler's repr into its checkpoints and compares it on restore.
        return (f"rngstate.data.grain.Sampler(gen={self.gen!r}, num_records={self.num_records}, "
                f"batch_size={self.batch_size}, length={self._length})")

    def _batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        # Grain reads records from several threads: the cache is one tuple, read once.
        cached = self._cached
        if cached is None or cached[0] != step:
            ids = order.batch_indices(self.gen, step, self.num_records, self.batch_size)
            seeds = np.asarray(order.example_generator(self.gen, ids.astype(_unsigned(ids))).seed)
            keys = (seeds[:, 0].astype(np.uint64) << np.uint64(32)) | seeds[:, 1]
            cached = self._cached = (step, np.asarray(ids), keys)
        return cached[1], cached[2]

    def __getitem__(self, index: int) -> Any:
        import grain  # lazily: grain is an optional extra

        if index < 0 or (self._length is not None and index >= self._length):
            raise IndexError(f"index must be in [0, {self._length}), got {index}")
        step, slot = divmod(int(index), self.batch_size)
        ids, keys = self._batch(step)
        rng = np.random.Generator(np.random.Philox(key=int(keys[slot])))
        return grain.RecordMetadata(index=index, record_key=int(ids[slot]), rng=rng)
