"""Every sampler's values follow its distribution, checked against scipy.stats.

Continuous samplers: a Kolmogorov-Smirnov test against the scipy distribution; discrete
samplers: a chi-square test against the scipy pmf (tails merged so every bin expects at least
``MIN_EXPECTED`` draws). Samplers without a scipy counterpart are reduced to a statistic that
has one (the radius of a point in a ball, an entry of a Haar-random orthogonal matrix, a
Mahalanobis distance, a marginal), or checked by their defining properties.

Seeds are fixed, so the suite gives the same answer on every run. The significance level of
each test is the family-wise ``FAMILY_ALPHA`` divided by the number of tests (Bonferroni), and
``test_the_threshold_catches_*`` show that, at these sample sizes, that level still rejects a
5% error of scale or a shift of 0.05 standard deviations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import permutations
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import rngstate as rs

N = 2**17  # draws per test: a 5% scale error moves the KS statistic ~2x past the threshold
MIN_EXPECTED = 20
FAMILY_ALPHA = 1e-3


@dataclass(frozen=True)
class Case:
    """One goodness-of-fit test: ``draw(gen)`` gives samples, ``reference`` their law."""

    name: str
    draw: Callable[[rs.Generator], Any]
    reference: Any  # a frozen scipy distribution, a cdf callable, or a probability vector


def _haar_entry(n: int) -> Case:
    # For Q Haar on O(n), Q[0, 0]**2 ~ Beta(1/2, (n - 1)/2) (first column uniform on a sphere).
    def draw(g):
        q, _ = rs.random.orthogonal(g, n, (N // n,))
        return np.asarray(q[:, 0, 0], np.float64) ** 2

    return Case(f"orthogonal-n{n}-entry", draw, stats.beta(0.5, (n - 1) / 2))


def _ball_radius(d: int, p: float) -> Case:
    # Uniform in the unit L_p ball: P(|x|_p <= r) = r**d, so |x|_p**d ~ U(0, 1).
    def draw(g):
        x = np.asarray(rs.random.ball(g, d, p, (N,))[0], np.float64)
        return (np.sum(np.abs(x) ** p, axis=-1) ** (1 / p)) ** d

    return Case(f"ball-d{d}-p{p}-radius", draw, stats.uniform())


def _mvn_mahalanobis(cov: np.ndarray) -> Case:
    mean = np.arange(len(cov), dtype=np.float32)
    precision = np.linalg.inv(cov)

    def draw(g):
        x, _ = rs.random.multivariate_normal(g, mean, cov, (N,))
        z = np.asarray(x, np.float64) - mean
        return np.einsum("ni,ij,nj->n", z, precision, z)

    return Case(f"multivariate_normal-d{len(cov)}", draw, stats.chi2(len(cov)))


def _dirichlet_marginal(alpha: list[float]) -> Case:
    def draw(g):
        x, _ = rs.random.dirichlet(g, jnp.array(alpha), (N,))
        return np.asarray(x[:, 0], np.float64)

    return Case(f"dirichlet-{alpha}", draw, stats.beta(alpha[0], sum(alpha) - alpha[0]))


def _double_sided_maxwell_cdf(loc: float, scale: float) -> Callable:
    def cdf(x):
        z = (np.asarray(x) - loc) / scale
        return 0.5 + 0.5 * np.sign(z) * stats.maxwell.cdf(np.abs(z))

    return cdf


def _first(op: str, *args, **kwargs) -> Callable[[rs.Generator], Any]:
    return lambda g: getattr(rs.random, op)(g, *args, **kwargs)[0]


CONTINUOUS: list[Case] = [
    Case("uniform-unit", _first("uniform", (N,)), stats.uniform()),
    Case("uniform-shifted", _first("uniform", (N,), minval=-3.0, maxval=5.0), stats.uniform(-3, 8)),
    Case("normal", _first("normal", (N,)), stats.norm()),
    Case("normal-2d", lambda g: rs.random.normal(g, (N // 4, 4))[0].ravel(), stats.norm()),
    Case("truncated_normal-a", _first("truncated_normal", -1.0, 2.0, (N,)), stats.truncnorm(-1, 2)),
    Case("truncated_normal-b", _first("truncated_normal", 0.5, 3.0, (N,)), stats.truncnorm(0.5, 3)),
    Case("exponential", _first("exponential", (N,)), stats.expon()),
    Case("laplace", _first("laplace", (N,)), stats.laplace()),
    Case("logistic", _first("logistic", (N,)), stats.logistic()),
    Case("gumbel", _first("gumbel", (N,)), stats.gumbel_r()),
    Case("cauchy", _first("cauchy", (N,)), stats.cauchy()),
    Case("maxwell", _first("maxwell", (N,)), stats.maxwell()),
    Case("lognormal-0.5", _first("lognormal", 0.5, (N,)), stats.lognorm(0.5)),
    Case("lognormal-2", _first("lognormal", 2.0, (N,)), stats.lognorm(2.0)),
    Case("gamma-0.3", _first("gamma", 0.3, (N,)), stats.gamma(0.3)),
    Case("gamma-5", _first("gamma", 5.0, (N,)), stats.gamma(5.0)),
    Case("loggamma-0.5", _first("loggamma", 0.5, (N,)), stats.loggamma(0.5)),
    Case("loggamma-4", _first("loggamma", 4.0, (N,)), stats.loggamma(4.0)),
    Case("beta-0.5-0.5", _first("beta", 0.5, 0.5, (N,)), stats.beta(0.5, 0.5)),
    Case("beta-2-5", _first("beta", 2.0, 5.0, (N,)), stats.beta(2.0, 5.0)),
    _dirichlet_marginal([1.0, 2.0, 3.0]),
    _dirichlet_marginal([0.5, 0.5, 4.0]),
    Case("chisquare-3", _first("chisquare", 3.0, (N,)), stats.chi2(3)),
    Case("chisquare-10", _first("chisquare", 10.0, (N,)), stats.chi2(10)),
    Case("f-3-4", _first("f", 3.0, 4.0, (N,)), stats.f(3, 4)),
    Case("f-10-20", _first("f", 10.0, 20.0, (N,)), stats.f(10, 20)),
    Case("t-4", _first("t", 4.0, (N,)), stats.t(4)),
    Case("t-30", _first("t", 30.0, (N,)), stats.t(30)),
    Case("pareto-2", _first("pareto", 2.0, (N,)), stats.pareto(2.0)),
    Case("pareto-5", _first("pareto", 5.0, (N,)), stats.pareto(5.0)),
    Case("rayleigh-1", _first("rayleigh", 1.0, (N,)), stats.rayleigh()),
    Case("rayleigh-2", _first("rayleigh", 2.0, (N,)), stats.rayleigh(scale=2.0)),
    Case(
        "double_sided_maxwell-0-1",
        _first("double_sided_maxwell", 0.0, 1.0, (N,)),
        _double_sided_maxwell_cdf(0.0, 1.0),
    ),
    Case(
        "double_sided_maxwell-0.5-2",
        _first("double_sided_maxwell", 0.5, 2.0, (N,)),
        _double_sided_maxwell_cdf(0.5, 2.0),
    ),
    Case("generalized_normal-1.5", _first("generalized_normal", 1.5, (N,)), stats.gennorm(1.5)),
    Case("generalized_normal-3", _first("generalized_normal", 3.0, (N,)), stats.gennorm(3.0)),
    Case("wald-0.5", _first("wald", 0.5, (N,)), stats.invgauss(0.5)),
    Case("wald-1.5", _first("wald", 1.5, (N,)), stats.invgauss(1.5)),
    Case("weibull_min-1-2", _first("weibull_min", 1.0, 2.0, (N,)), stats.weibull_min(2.0)),
    Case(
        "weibull_min-3-0.7",
        _first("weibull_min", 3.0, 0.7, (N,)),
        stats.weibull_min(0.7, scale=3.0),
    ),
    Case("triangular-0-0.3-1", _first("triangular", 0.0, 0.3, 1.0, (N,)), stats.triang(0.3)),
    Case(
        "triangular--2-2-3",
        _first("triangular", -2.0, 2.0, 3.0, (N,)),
        stats.triang(0.8, loc=-2.0, scale=5.0),
    ),
    _mvn_mahalanobis(np.array([[2.0, 0.5], [0.5, 1.0]])),
    _mvn_mahalanobis(np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.3], [0.0, 0.3, 4.0]])),
    _ball_radius(3, 2.0),
    _ball_radius(5, 1.0),
    _haar_entry(3),
    _haar_entry(8),
]


def _categorical_probs(k: int) -> np.ndarray:
    w = np.arange(1, k + 1, dtype=np.float64)
    return w / w.sum()


def _arrangements(op: Callable[[rs.Generator], Any], g: rs.Generator, n: int, k: int):
    """Index (into all ordered k-of-n arrangements) of ``op`` at N // 8 consecutive offsets,
    one draw per offset as a user's loop would make them."""
    gens = rs.Generator(g.initial_seed(), jnp.arange(N // 8, dtype=jnp.uint32))
    rows = np.asarray(jax.vmap(op)(gens))
    index = {p: i for i, p in enumerate(permutations(range(n), k))}
    return np.array([index[tuple(r)] for r in rows.tolist()])


PERM_N = 5
CHOICE_N, CHOICE_K = 6, 3
DISCRETE: list[Case] = [
    Case("bernoulli-0.3", _first("bernoulli", 0.3, (N,)), stats.bernoulli(0.3)),
    Case("bernoulli-0.9", _first("bernoulli", 0.9, (N,)), stats.bernoulli(0.9)),
    Case("randint-0-10", _first("randint", (N,), 0, 10), stats.randint(0, 10)),
    Case("randint--7-90", _first("randint", (N,), -7, 90), stats.randint(-7, 90)),
    Case("binomial-10-0.4", _first("binomial", 10.0, 0.4, (N,)), stats.binom(10, 0.4)),
    Case("binomial-50-0.05", _first("binomial", 50.0, 0.05, (N,)), stats.binom(50, 0.05)),
    Case("poisson-3.5", _first("poisson", 3.5, (N,)), stats.poisson(3.5)),
    Case("poisson-40", _first("poisson", 40.0, (N,)), stats.poisson(40.0)),
    Case("geometric-0.3", _first("geometric", 0.3, (N,)), stats.geom(0.3)),
    Case("geometric-0.05", _first("geometric", 0.05, (N,)), stats.geom(0.05)),
    Case(
        "rademacher",
        lambda g: (rs.random.rademacher(g, (N,))[0] + 1) // 2,
        stats.bernoulli(0.5),
    ),
    Case(
        "bits-uint8",
        _first("bits", (N,), jnp.uint8),
        stats.randint(0, 256),
    ),
    Case(
        "bits-uint32-high-byte",
        lambda g: rs.random.bits(g, (N,), jnp.uint32)[0] >> 24,
        stats.randint(0, 256),
    ),
    Case(
        "bits-uint32-low-byte",
        lambda g: rs.random.bits(g, (N,), jnp.uint32)[0] & 0xFF,
        stats.randint(0, 256),
    ),
    Case(
        "categorical-3",
        _first("categorical", jnp.log(jnp.array([0.1, 0.2, 0.7])), shape=(N,)),
        np.array([0.1, 0.2, 0.7]),
    ),
    Case(
        "categorical-10",
        _first("categorical", jnp.log(jnp.asarray(_categorical_probs(10))), shape=(N,)),
        _categorical_probs(10),
    ),
    Case(
        "multinomial-10-marginal",
        # p broadcast to the batch, no shape=: jax 0.12 changed what shape= means (it no
        # longer includes the category axis; docs/compatibility.md), this call means one thing.
        lambda g: rs.random.multinomial(
            g, 10.0, jnp.broadcast_to(jnp.array([0.2, 0.3, 0.5]), (N, 3))
        )[0][:, 1],
        stats.binom(10, 0.3),
    ),
    Case(
        "multinomial-100-marginal",
        lambda g: rs.random.multinomial(
            g, 100.0, jnp.broadcast_to(jnp.asarray(_categorical_probs(6)), (N, 6))
        )[0][:, 5],
        stats.binom(100, _categorical_probs(6)[5]),
    ),
    Case(
        "choice-replace-weighted",
        _first("choice", 4, (N,), p=jnp.array([0.1, 0.2, 0.3, 0.4])),
        np.array([0.1, 0.2, 0.3, 0.4]),
    ),
    Case("choice-replace-uniform", _first("choice", 7, (N,)), np.full(7, 1 / 7)),
    Case(
        "choice-no-replace-arrangements",
        lambda g: _arrangements(
            lambda one: rs.random.choice(one, CHOICE_N, (CHOICE_K,), False)[0],
            g,
            CHOICE_N,
            CHOICE_K,
        ),
        np.full(math.perm(CHOICE_N, CHOICE_K), 1 / math.perm(CHOICE_N, CHOICE_K)),
    ),
    Case(
        "permutation-arrangements",
        lambda g: _arrangements(
            lambda one: rs.random.permutation(one, PERM_N)[0], g, PERM_N, PERM_N
        ),
        np.full(math.factorial(PERM_N), 1 / math.factorial(PERM_N)),
    ),
]

MOMENT_TESTS = 2 * 3 + 2 * 2  # p-values of the orthogonal and dropout property tests
N_TESTS = len(CONTINUOUS) + len(DISCRETE) + MOMENT_TESTS
ALPHA = FAMILY_ALPHA / N_TESTS


def _seed(name: str) -> int:
    # A fixed, distinct seed per case (crc32 is stable across runs, unlike hash()).
    import zlib

    return zlib.crc32(name.encode())


def ks_pvalue(samples: np.ndarray, reference: Any) -> float:
    """Kolmogorov-Smirnov p-value of ``samples`` against a scipy distribution or a cdf."""
    cdf = reference.cdf if hasattr(reference, "cdf") else reference
    return float(stats.kstest(np.asarray(samples, np.float64), cdf).pvalue)


def chisquare_pvalue(samples: np.ndarray, reference: Any) -> float:
    """Chi-square p-value of integer ``samples`` against a scipy pmf or a probability vector.

    Outcomes expected fewer than ``MIN_EXPECTED`` times are merged into the tail bins.
    """
    x = np.asarray(samples).astype(np.int64).ravel()
    n = x.size
    if isinstance(reference, np.ndarray):
        observed = np.bincount(x, minlength=len(reference))
        assert len(observed) == len(reference), "a value outside the support was drawn"
        return float(stats.chisquare(observed, n * reference).pvalue)
    support_lo, support_hi = reference.support()
    lo, hi = int(max(support_lo, x.min() - 1)), int(min(support_hi, x.max() + 1))
    ks = np.arange(lo, hi + 1)
    expected = n * reference.pmf(ks)
    inner = ks[expected >= MIN_EXPECTED]
    first, last = int(inner.min()), int(inner.max())
    middle = np.arange(first + 1, last)
    observed = [np.sum(x <= first), *[np.sum(x == k) for k in middle], np.sum(x >= last)]
    probs = [reference.cdf(first), *reference.pmf(middle), reference.sf(last - 1)]
    probs = np.asarray(probs)
    assert np.sum(observed) == n
    return float(stats.chisquare(observed, n * probs / probs.sum()).pvalue)


@pytest.mark.parametrize("case", CONTINUOUS, ids=lambda c: c.name)
def test_continuous_sampler_matches_scipy(case: Case):
    samples = np.asarray(case.draw(rs.Generator(seed=_seed(case.name))))
    assert np.all(np.isfinite(samples))
    p = ks_pvalue(samples, case.reference)
    assert p > ALPHA, f"{case.name}: KS p = {p:.3g} <= {ALPHA:.3g}"


@pytest.mark.parametrize("case", DISCRETE, ids=lambda c: c.name)
def test_discrete_sampler_matches_scipy(case: Case):
    samples = np.asarray(case.draw(rs.Generator(seed=_seed(case.name))))
    p = chisquare_pvalue(samples, case.reference)
    assert p > ALPHA, f"{case.name}: chi-square p = {p:.3g} <= {ALPHA:.3g}"


def test_the_threshold_catches_a_five_percent_scale_error():
    x, _ = rs.random.normal(rs.Generator(seed=_seed("normal")), (N,))
    assert ks_pvalue(np.asarray(x), stats.norm()) > ALPHA
    assert ks_pvalue(1.05 * np.asarray(x), stats.norm()) < ALPHA
    assert ks_pvalue(np.asarray(x) / 1.05, stats.norm()) < ALPHA


def test_the_threshold_catches_a_small_shift():
    x, _ = rs.random.normal(rs.Generator(seed=_seed("normal")), (N,))
    assert ks_pvalue(np.asarray(x) + 0.05, stats.norm()) < ALPHA


def test_the_threshold_catches_a_five_percent_rate_error():
    k, _ = rs.random.poisson(rs.Generator(seed=_seed("poisson-3.5")), 3.5, (N,))
    assert chisquare_pvalue(np.asarray(k), stats.poisson(3.5)) > ALPHA
    assert chisquare_pvalue(np.asarray(k), stats.poisson(3.5 * 1.05)) < ALPHA


@pytest.mark.parametrize("n", [3, 8])
def test_orthogonal_is_orthogonal_and_haar(n: int):
    count = N // (n * n)
    q, _ = rs.random.orthogonal(rs.Generator(seed=_seed(f"haar-{n}")), n, (count,))
    q = np.asarray(q, np.float64)
    eye = np.broadcast_to(np.eye(n), q.shape)
    np.testing.assert_allclose(np.swapaxes(q, -1, -2) @ q, eye, atol=2e-5)
    np.testing.assert_allclose(q @ np.swapaxes(q, -1, -2), eye, atol=2e-5)
    # Haar on O(n): det = +1 and -1 equally often, and trace(Q) has mean 0 and variance 1.
    det_positive = np.sum(np.linalg.det(q) > 0)
    assert stats.binomtest(int(det_positive), count, 0.5).pvalue > ALPHA
    trace = np.trace(q, axis1=-2, axis2=-1)
    z_mean = trace.mean() * math.sqrt(count)
    assert abs(z_mean) < stats.norm.isf(ALPHA / 2)
    # var(trace^2) is finite (E tr^4 = 3 for n >= 4, 2 for n = 3): a CLT bound on the mean.
    fourth = 3.0 if n >= 4 else 2.0
    z_var = (np.mean(trace**2) - 1.0) / math.sqrt((fourth - 1.0) / count)
    assert abs(z_var) < stats.norm.isf(ALPHA / 2)


@pytest.mark.parametrize("rate", [0.1, 0.7])
def test_dropout_keeps_the_right_fraction_and_scales_it(rate: float):
    x = jnp.linspace(1.0, 2.0, N, dtype=jnp.float32)
    y, _ = rs.random.dropout(rs.Generator(seed=_seed(f"dropout-{rate}")), x, rate)
    y, x = np.asarray(y), np.asarray(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - rate), rtol=1e-6)
    assert stats.binomtest(int(kept.sum()), N, 1 - rate).pvalue > ALPHA
    # The expectation is unchanged: mean(y) is within a CLT bound of mean(x).
    sd = math.sqrt(np.mean(x**2) * rate / (1 - rate) / N)
    assert abs(y.mean() - x.mean()) < stats.norm.isf(ALPHA / 2) * sd


def test_every_sampler_is_covered():
    """A sampler added to jax.random fails here until it gets a distribution test."""
    covered = {c.name.split("-")[0] for c in CONTINUOUS + DISCRETE} | {"dropout"}
    assert set(rs.random.OP_NAMES) <= covered, set(rs.random.OP_NAMES) - covered
