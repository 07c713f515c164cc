"""Data order and per-example randomness that resume exactly, under any number of processes.

``index_shuffle`` permutes ``[0, n)`` index by index; ``batch_indices`` gives global batch
``step`` of endless epochs (or one process's part of it); ``example_generator`` gives the
generator of one example's augmentation; ``BatchIndexIterator`` feeds any loader. docs/data.md
has the construction and the derivations.

>>> import rngstate as rs
>>> rs.data.batch_indices(rs.Generator(0), 0, n=10, batch_size=4).shape
(4,)
"""

from rngstate.data.order import (
    BatchIndexIterator,
    batch_indices,
    example_generator,
    steps_per_epoch,
)
from rngstate.data.shuffle import index_shuffle

__all__ = [
    "index_shuffle",
    "batch_indices",
    "example_generator",
    "steps_per_epoch",
    "BatchIndexIterator",
]
