"""rngstate.data with real loaders: Grain's DataLoader over the Grain sampler, and PyTorch's
DataLoader over BatchIndexIterator (where torch is installed)."""

from __future__ import annotations

import numpy as np
import pytest

import rngstate as rs
from rngstate.data import batch_indices, example_generator

N, BATCH = 37, 8


class Source:
    """A random-access data source: record i is i itself (Grain's protocol)."""

    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> int:
        return int(i)

    def __repr__(self) -> str:  # Grain checks the source of a restored state by its repr
        return f"Source({N})"


def grain_loader(sampler, process_index=0, process_count=1, transforms=()):
    grain = pytest.importorskip("grain")
    shard = grain.sharding.ShardOptions(process_index, process_count, drop_remainder=True)
    return grain.DataLoader(
        data_source=Source(), sampler=sampler, worker_count=0, shard_options=shard,
        operations=[*transforms, grain.transforms.Batch(BATCH // process_count)],
    )


def test_grain_batches_are_the_global_batches_in_any_process_count():
    pytest.importorskip("grain")
    from rngstate.data.grain import Sampler

    gen = rs.Generator(5)
    sampler = Sampler(gen, N, BATCH, num_epochs=2)
    one = [np.asarray(b) for b in grain_loader(sampler)]
    assert len(one) == 2 * (N // BATCH)
    for step, batch in enumerate(one):
        assert sorted(batch.tolist()) == sorted(batch_indices(gen, step, N, BATCH).tolist())
    parts = [[np.asarray(b) for b in grain_loader(sampler, k, 2)] for k in range(2)]
    for step, batch in enumerate(one):
        joined = np.concatenate([parts[0][step], parts[1][step]])
        assert sorted(joined.tolist()) == sorted(batch.tolist())


def test_grain_resumes_from_its_iterator_state_and_records_carry_the_example_rng():
    grain = pytest.importorskip("grain")
    from rngstate.data.grain import Sampler

    class Noise(grain.transforms.RandomMap):
        def random_map(self, element, rng):
            return element * 1000 + int(rng.integers(0, 1000))

    gen = rs.Generator(6)
    sampler = Sampler(gen, N, BATCH, num_epochs=3)
    whole = [np.asarray(b) for b in grain_loader(sampler, transforms=[Noise()])]
    first = iter(grain_loader(sampler, transforms=[Noise()]))
    head = [np.asarray(next(first)) for _ in range(5)]
    state = first.get_state()
    resumed = iter(grain_loader(Sampler(gen, N, BATCH, num_epochs=3), transforms=[Noise()]))
    resumed.set_state(state)
    rest = [np.asarray(b) for b in resumed]
    assert len(head + rest) == len(whole)
    assert all((a == b).all() for a, b in zip(whole, head + rest, strict=True))
    # The noise of record i is NumPy's Philox keyed by example_generator(gen, i)'s seed.
    record = int(whole[0][0]) // 1000
    high, low = (int(w) for w in np.asarray(example_generator(gen, record).seed))
    expected = np.random.Generator(np.random.Philox(key=(high << 32) | low)).integers(0, 1000)
    assert int(whole[0][0]) == record * 1000 + int(expected)


def test_pytorch_dataloader_takes_the_batch_iterator_and_its_flat_ids():
    torch = pytest.importorskip("torch")
    gen = rs.Generator(9)
    data = torch.arange(N)
    batches = rs.data.BatchIndexIterator(gen, N, BATCH, num_steps=6)
    loader = torch.utils.data.DataLoader(data, batch_sampler=batches)
    got = [b.tolist() for b in loader]
    assert got == [batch_indices(gen, s, N, BATCH).tolist() for s in range(6)]
    flat = rs.data.BatchIndexIterator(gen, N, BATCH, num_steps=6).flat()
    loader = torch.utils.data.DataLoader(data, sampler=flat, batch_size=BATCH)
    assert [b.tolist() for b in loader] == got
