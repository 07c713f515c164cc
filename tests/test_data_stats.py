"""The permutations of index_shuffle against the tests a statistician would run on random ones.

Each test runs on index_shuffle's permutations of many keys and, as the control, on NumPy's
``Generator.permutation``: both must pass. Everything is seeded, so the outcome is fixed;
each threshold is a p-value of 1e-4 (two-sided for z scores, |z| < 3.89), so a truly
uniform source fails one of these checks with probability about 1e-4 per check.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import rngstate as rs
from rngstate.data import index_shuffle

KEYS = 20_000
P_MIN = 1e-4
Z_MAX = stats.norm.isf(P_MIN / 2)


def ours(n: int, keys: int = KEYS) -> np.ndarray:
    gens = rs.Generator(seed=jnp.arange(keys, dtype=jnp.uint32) + n * 10**6, offset=3)
    perms = jax.vmap(lambda g: index_shuffle(g, jnp.arange(n), n))(gens)
    return np.asarray(perms)


def numpy_control(n: int, keys: int = KEYS) -> np.ndarray:
    rng = np.random.default_rng(20261203 + n)
    return np.stack([rng.permutation(n) for _ in range(keys)])


SOURCES = {"index_shuffle": ours, "numpy": numpy_control}
SIZES = [8, 9, 12]  # 12 = 4 * 3: no cycle walking; 8 and 9 (3 * 4) walk


def chi_square_p(observed: np.ndarray, expected: np.ndarray) -> float:
    """Pearson's chi-square p-value, bins with expected < 5 merged into one."""
    small = expected < 5
    if small.any():
        observed = np.append(observed[~small], observed[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    return float(stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue)


def cycle_lengths(perm: np.ndarray) -> list[int]:
    seen, lengths = np.zeros(len(perm), bool), []
    for start in range(len(perm)):
        length, i = 0, start
        while not seen[i]:
            seen[i], i, length = True, perm[i], length + 1
        if length:
            lengths.append(length)
    return lengths


@pytest.fixture(scope="module", params=[(s, n) for s in SOURCES for n in SIZES],
                ids=lambda p: f"{p[0]}-{p[1]}")
def perms(request):
    source, n = request.param
    return SOURCES[source](n)


def test_every_position_is_equally_likely_for_every_index(perms):
    n = perms.shape[1]
    counts = np.zeros((n, n))
    np.add.at(counts, (np.tile(np.arange(n), len(perms)), perms.ravel()), 1)
    chi2 = ((counts - len(perms) / n) ** 2 / (len(perms) / n)).sum()
    # A table of permutation counts has (n - 1)**2 degrees of freedom.
    assert stats.chi2.sf(chi2, (n - 1) ** 2) > P_MIN


def test_adjacent_order_is_a_fair_coin(perms):
    n = perms.shape[1]
    ascents = (np.diff(perms, axis=1) > 0).sum(axis=1)
    # Eulerian numbers: an ascent count of a random permutation has mean (n-1)/2, var (n+1)/12.
    z = (ascents.mean() - (n - 1) / 2) / math.sqrt((n + 1) / 12 / len(perms))
    assert abs(z) < Z_MAX


def test_index_and_position_are_uncorrelated_and_so_are_two_keys(perms):
    n, keys = perms.shape[1], len(perms)
    centred = perms - (n - 1) / 2
    index = np.arange(n) - (n - 1) / 2
    norm = (index**2).sum()  # Spearman's rho of a permutation: mean 0, variance 1/(n-1)
    rho_index = (centred @ index) / norm
    rho_pairs = (centred[::2] * centred[1::2]).sum(axis=1) / norm
    for rho, count in ((rho_index, keys), (rho_pairs, keys // 2)):
        assert abs(rho.mean() * math.sqrt(count * (n - 1))) < Z_MAX


def test_cycle_counts_fixed_points_and_parity_follow_their_laws(perms):
    n = perms.shape[1]
    lengths = [cycle_lengths(p) for p in perms]
    cycles = np.bincount([len(c) for c in lengths], minlength=n + 1)
    fixed = np.bincount([c.count(1) for c in lengths], minlength=n + 1)
    # Unsigned Stirling numbers of the first kind: permutations of n with k cycles.
    stirling = [[1]]
    for m in range(1, n + 1):
        prev = stirling[-1] + [0]
        stirling.append([(m - 1) * prev[k] + (prev[k - 1] if k else 0) for k in range(m + 1)])
    # Rencontres numbers: permutations with exactly k fixed points.
    derangements = [1, 0]
    for m in range(2, n + 1):
        derangements.append((m - 1) * (derangements[-1] + derangements[-2]))
    rencontres = [math.comb(n, k) * derangements[n - k] for k in range(n + 1)]
    assert chi_square_p(cycles.astype(float), np.array(stirling[n], float)) > P_MIN
    assert chi_square_p(fixed.astype(float), np.array(rencontres, float)) > P_MIN
    odd = sum((n - len(c)) % 2 for c in lengths)  # even and odd permutations: half each
    assert stats.binomtest(odd, len(perms)).pvalue > P_MIN


@pytest.mark.parametrize("source", SOURCES)
def test_a_large_permutation_has_the_moments_of_a_random_one(source):
    n = 100_003  # walks cycles (A * B = 317 * 316 > n)
    perm = SOURCES[source](n, keys=1)[0] if source == "numpy" else np.asarray(
        index_shuffle(rs.Generator(77), jnp.arange(n), n))
    ascents = (np.diff(perm) > 0).sum()
    assert abs((ascents - (n - 1) / 2) / math.sqrt((n + 1) / 12)) < Z_MAX
    rho = stats.spearmanr(np.arange(n), perm).statistic
    assert abs(rho * math.sqrt(n - 1)) < Z_MAX
    # Cycle count: mean H_n, variance H_n - H_n^(2) (Goncharov).
    h1 = sum(1 / k for k in range(1, n + 1))
    h2 = sum(1 / k**2 for k in range(1, n + 1))
    assert abs((len(cycle_lengths(perm)) - h1) / math.sqrt(h1 - h2)) < Z_MAX
    # Positions by blocks of the index range against blocks of the output range.
    blocks = 10
    table = np.histogram2d(np.arange(n), perm, bins=blocks)[0]
    assert stats.chi2_contingency(table).pvalue > P_MIN
