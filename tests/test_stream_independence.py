"""Streams that sit next to each other share nothing a test can see.

For each pair of neighbouring generators (adjacent offsets, adjacent seeds, the aliasing pair
``(s, o+1)`` / ``(s+1, o)``, spawned siblings, named streams, the 32- and 64-bit word
boundaries) the words
of ``bits`` are compared:

- Pearson correlation of the paired uniforms: ``|r| * sqrt(n)`` is below the normal quantile;
- a 2-D chi-square on a ``GRID x GRID`` histogram of the pairs (uniform on the square);
- no 64-bit block (any two consecutive words) appears twice in the two streams together.

"Across" tests do the same on the first word of many generators in a row (the values a user
sees sweeping seeds, offsets or siblings), lag-one pairs. Significance as in
test_distributions: a family-wise ``FAMILY_ALPHA``, Bonferroni over every p-value here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import rngstate as rs

N = 2**16  # words per stream; a correlation of 0.02 is ~5 standard errors
GRID = 16  # 256 cells, 256 pairs expected in each
FAMILY_ALPHA = 1e-3
U64 = 2**64


def _words(gen: rs.Generator, n: int = N) -> np.ndarray:
    return np.asarray(rs.random.bits(gen, (n,), jnp.uint32)[0], dtype=np.uint64)


def _spawned(seed: int, which: tuple[int, int]) -> tuple[rs.Generator, rs.Generator]:
    kids, _ = rs.Generator(seed).spawn(max(which) + 1)
    pick = [jax.tree_util.tree_map(lambda leaf, i=i: leaf[i], kids) for i in which]
    return pick[0], pick[1]


SEED, OFFSET = 20261121, 5
# Pairs of generators whose streams (N words of one bits call each) must look unrelated.
PAIRS: dict[str, Callable[[], tuple[rs.Generator, rs.Generator]]] = {
    "adjacent-offsets": lambda: (rs.Generator(SEED, OFFSET), rs.Generator(SEED, OFFSET + 1)),
    "adjacent-seeds": lambda: (rs.Generator(SEED, OFFSET), rs.Generator(SEED + 1, OFFSET)),
    "seed-offset-diagonal": lambda: (
        rs.Generator(SEED, OFFSET + 1),
        rs.Generator(SEED + 1, OFFSET),
    ),
    "spawned-siblings": lambda: _spawned(SEED, (0, 1)),
    "spawned-first-and-last-of-8": lambda: _spawned(SEED, (0, 7)),
    "parent-and-child": lambda: (rs.Generator(SEED).construct(1), _spawned(SEED, (0, 1))[0]),
    "seed-crosses-32-bits": lambda: (rs.Generator(2**32 - 1, OFFSET), rs.Generator(2**32, OFFSET)),
    "offset-crosses-32-bits": lambda: (rs.Generator(SEED, 2**32 - 1), rs.Generator(SEED, 2**32)),
    "seed-wraps-64-bits": lambda: (rs.Generator(2**64 - 1, OFFSET), rs.Generator(0, OFFSET)),
    "offset-wraps-64-bits": lambda: (rs.Generator(SEED, 2**64 - 1), rs.Generator(SEED, 0)),
    "named-streams-adjacent-ints": lambda: (
        rs.Generator(SEED).stream(0),
        rs.Generator(SEED).stream(1),
    ),
    "named-streams-adjacent-strs": lambda: (
        rs.Generator(SEED).stream("layer/0"),
        rs.Generator(SEED).stream("layer/1"),
    ),
    "named-stream-int-and-str": lambda: (
        rs.Generator(SEED).stream(7),
        rs.Generator(SEED).stream("7"),
    ),
    "named-stream-and-parent": lambda: (
        rs.Generator(SEED, OFFSET),
        rs.Generator(SEED, OFFSET).stream("params"),
    ),
    "named-streams-of-adjacent-seeds": lambda: (
        rs.Generator(SEED).stream("params"),
        rs.Generator(SEED + 1).stream("params"),
    ),
    "high-words-diagonal": lambda: (
        rs.Generator(2**63, 2**40 + 1),
        rs.Generator(2**63 + 1, 2**40),
    ),
}


def _first_words(seeds: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """First ``bits`` word of each generator ``(seeds[i], offsets[i])``, one vmapped call."""
    gens = rs.Generator(seed=seeds, offset=offsets)
    words = jax.vmap(lambda g: rs.random.bits(g, (), jnp.uint32)[0])(gens)
    return np.asarray(words, dtype=np.uint64)


def _across(start_seed: int, seed_step: int, start_offset: int, offset_step: int):
    i = np.arange(N + 1, dtype=np.uint64)
    seeds = (np.uint64(start_seed) + np.uint64(seed_step) * i).astype(np.uint64)
    offsets = (np.uint64(start_offset) + np.uint64(offset_step) * i).astype(np.uint64)
    words = _first_words(seeds, offsets)
    return words[:-1], words[1:]


def _across_diagonal(start_seed: int, offset: int):
    # Pair i: first word of (s + i, o + 1) against first word of (s + i + 1, o).
    i = np.arange(N, dtype=np.uint64)
    s = np.uint64(start_seed) + i
    a = _first_words(s, np.full(N, offset + 1, dtype=np.uint64))
    b = _first_words(s + np.uint64(1), np.full(N, offset, dtype=np.uint64))
    return a, b


def _across_siblings(seed: int):
    kids, _ = rs.Generator(seed).spawn(N + 1)
    words = np.asarray(
        jax.vmap(lambda g: rs.random.bits(g, (), jnp.uint32)[0])(kids), dtype=np.uint64
    )
    return words[:-1], words[1:]


def _across_named_streams(seed: int):
    # Streams 0, 1, 2, ... of one parent (the integer names a user gives layers or workers).
    parent = rs.Generator(seed)
    names = jnp.arange(N + 1, dtype=jnp.uint32)
    words = jax.vmap(lambda i: rs.random.bits(parent.stream(i), (), jnp.uint32)[0])(names)
    words = np.asarray(words, dtype=np.uint64)
    return words[:-1], words[1:]


# Sequences of first words over many generators in a row, as lag-one pairs.
ACROSS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    "across-seeds": lambda: _across(2**32 - N // 2, 1, OFFSET, 0),
    "across-offsets": lambda: _across(SEED, 0, 2**32 - N // 2, 1),
    "across-seed-offset-diagonal": lambda: _across_diagonal(2**64 - N // 2, 2**40),
    "across-spawned-siblings": lambda: _across_siblings(SEED),
    "across-named-int-streams": lambda: _across_named_streams(SEED),
}

STATISTICS_PER_CASE = 2  # Pearson and chi-square p-values; the 64-bit check is exact
ALPHA = FAMILY_ALPHA / (STATISTICS_PER_CASE * (len(PAIRS) + len(ACROSS)))


def _uniforms(words: np.ndarray) -> np.ndarray:
    return (words.astype(np.float64) + 0.5) / 2**32


def _assert_unrelated(a: np.ndarray, b: np.ndarray, name: str) -> None:
    ua, ub = _uniforms(a), _uniforms(b)
    r = float(np.corrcoef(ua, ub)[0, 1])
    bound = stats.norm.isf(ALPHA / 2) / math.sqrt(len(ua))
    assert abs(r) < bound, f"{name}: correlation {r:.4f} beyond +-{bound:.4f}"
    cells = (np.floor(ua * GRID) * GRID + np.floor(ub * GRID)).astype(np.int64)
    counts = np.bincount(cells, minlength=GRID * GRID)
    p = float(stats.chisquare(counts).pvalue)
    assert p > ALPHA, f"{name}: 2-D chi-square p = {p:.3g} <= {ALPHA:.3g}"


def _blocks64(words: np.ndarray) -> np.ndarray:
    # Every window of two consecutive words, so a copy shifted by any number of words repeats.
    return (words[:-1] << np.uint64(32)) | words[1:]


def _assert_no_repeated_blocks(*streams: np.ndarray) -> None:
    blocks = np.concatenate([_blocks64(s) for s in streams])
    # With ~2**17 random 64-bit blocks a chance repeat has probability ~5e-10.
    assert len(np.unique(blocks)) == len(blocks), "a 64-bit block repeats"


@pytest.mark.parametrize("name", list(PAIRS))
def test_neighbouring_streams_are_unrelated(name: str):
    gen_a, gen_b = PAIRS[name]()
    a, b = _words(gen_a), _words(gen_b)
    _assert_unrelated(a, b, name)
    _assert_no_repeated_blocks(a, b)


@pytest.mark.parametrize("name", list(ACROSS))
def test_first_values_of_neighbouring_generators_are_unrelated(name: str):
    a, b = ACROSS[name]()
    _assert_unrelated(a, b, name)
    _assert_no_repeated_blocks(np.concatenate([a, b[-1:]]))


def test_the_checks_catch_a_correlated_or_shifted_stream():
    a = _words(rs.Generator(SEED, OFFSET))
    noise = _words(rs.Generator(SEED, OFFSET + 1))
    # Mixing 5% of a stream into another is caught by the correlation bound ...
    mixed = (0.05 * _uniforms(a) + 0.95 * _uniforms(noise)) * 2**32
    with pytest.raises(AssertionError, match="correlation"):
        _assert_unrelated(a, mixed.astype(np.uint64), "mixed")
    # ... and a copy one word later by the 64-bit block check.
    with pytest.raises(AssertionError, match="repeats"):
        _assert_no_repeated_blocks(a[1:], a[:-1])
