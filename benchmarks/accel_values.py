"""Cross-backend values: every op drawn on the default backend and on the host CPU, compared.

One process holds both backends (``jax.devices("cpu")`` exists beside a GPU or TPU backend).
Each op of ``rngstate.random`` is drawn under ``jax.default_device`` of each, for a fixed set
of (seed, offset) pairs and two argument sets: the suite's own table of valid arguments
(``tests/test_random_ops.OP_ARGS``, small shapes, drawn with JAX's own bits) and the same
arguments with a ``(16, 8)`` output (``tests/sharding_cases``, 128 values, the fast path).
Integer and boolean outputs must be equal; floating outputs equal, or within the op's
stated bound (:data:`BOUNDS`). Then the golden values, rngstate's self-checks, and a
checkpoint saved under one backend and loaded under the other are checked on both.

On a machine whose default backend is the CPU, both sides are the same CPU: the comparison
is trivially CPU against CPU, and the report says so.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import rngstate as rs

TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")

SEEDS: tuple[tuple[int, int], ...] = ((0, 0), (2**40 + 5, 7), (2**64 - 1, 2**32 - 1))
"""(seed, offset) pairs drawn for every op: small, a 64-bit seed, the largest seed."""


@dataclasses.dataclass(frozen=True)
class Bound:
    """How far an op's floating values may move between backends, and why.

    ``ulps`` counts in units of the last place of ``max(|a|, |b|, 1)``: values below 1
    are compared in ulps of 1 (eps), so a result that passes through zero after a
    cancellation (``logistic`` at 0.5) is not charged millions of ulps for an absolute
    error of one eps. 0 means bit for bit.
    """

    ulps: int
    why: str


_INTEGER = Bound(0, "integer or boolean values: must be equal")
_ARITHMETIC = Bound(
    1,
    "bits to float by bit operations, then one multiply-add: a backend that contracts it "
    "into a fused multiply-add rounds once instead of twice",
)
_TRANSCENDENTAL = Bound(
    16,
    "log, exp, erf_inv, tan, pow come from each backend's own math library (XLA:CPU's "
    "polynomials, libdevice on CUDA), each within a few ulp, compounded by the op",
)
_REJECTION = Bound(
    64,
    "a rejection loop (gamma and what is built on it): transcendental differences, "
    "compounded through the accepted candidate's transform",
)
_LINALG = Bound(
    64,
    "a matrix factorisation (Cholesky, QR) and product: LAPACK on CPU, cuSOLVER/cuBLAS on "
    "GPU, different algorithms and summation orders",
)

BOUNDS: dict[str, Bound] = {
    **dict.fromkeys("bits randint permutation choice bernoulli rademacher".split(), _INTEGER),
    # Integer values computed through floating transcendentals: a count could only move if
    # a value fell within a rounding of an integer boundary. They must still be equal.
    **dict.fromkeys(
        "categorical poisson geometric binomial multinomial".split(),
        Bound(0, "integer values computed through log/lgamma: must be equal"),
    ),
    "uniform": _ARITHMETIC,
    "dropout": Bound(
        1, "the mask must be equal; kept values are x / (1 - rate), one correctly rounded divide"
    ),
    **dict.fromkeys(
        "normal truncated_normal exponential gumbel laplace logistic cauchy lognormal pareto "
        "rayleigh wald weibull_min triangular maxwell double_sided_maxwell".split(),
        _TRANSCENDENTAL,
    ),
    **dict.fromkeys(
        "gamma loggamma beta dirichlet chisquare f t generalized_normal ball".split(),
        _REJECTION,
    ),
    "multivariate_normal": _LINALG,
    "orthogonal": _LINALG,
}
"""Each op's stated bound, a priori from the operations it uses (not calibrated on a GPU)."""


# -- ulps -------------------------------------------------------------------------------


def _ordered(x: np.ndarray) -> np.ndarray:
    """Float bit patterns as integers that count up with the value (-0 and +0 both 0)."""
    bits = x.view(f"int{8 * x.dtype.itemsize}").astype(np.int64)
    magnitude = bits & np.int64(2 ** (8 * x.dtype.itemsize - 1) - 1)
    return np.where(bits < 0, -magnitude, magnitude)


def ulp_distance(a: Any, b: Any) -> np.ndarray:
    """Elementwise distance in ulps between two float arrays of one dtype (NaN == NaN).

    >>> import numpy as np
    >>> one = np.float32(1)
    >>> ulp_distance(np.array([one]), np.array([np.nextafter(one, np.float32(2))])).tolist()
    [1]
    >>> ulp_distance(np.array([-0.0], np.float32), np.array([0.0], np.float32)).tolist()
    [0]
    """
    a, b = np.asarray(a), np.asarray(b)
    both_nan = np.isnan(a.astype(np.float64)) & np.isnan(b.astype(np.float64))
    distance = np.abs(_ordered(a) - _ordered(b))
    return np.where(both_nan, 0, distance)


def scaled_ulps(a: Any, b: Any) -> np.ndarray:
    """``|a - b|`` in ulps of ``max(|a|, |b|, 1)`` (see :class:`Bound`); inf where one is NaN.

    >>> import numpy as np
    >>> eps = float(np.finfo(np.float32).eps)
    >>> scaled_ulps(np.float32([1e-3, 4.0]), np.float32([1e-3 + eps, 4.0 + 8 * eps])).tolist()
    [1.0, 2.0]
    """
    a, b = np.asarray(a), np.asarray(b)
    wide_a, wide_b = a.astype(np.float64), b.astype(np.float64)
    scale = np.maximum(np.maximum(np.abs(wide_a), np.abs(wide_b)), 1.0)
    # The ulp of `scale` in a's own precision (bfloat16 has 8 significant bits, float16 11).
    eps = float(np.finfo(a.dtype).eps)
    ulp = eps * np.exp2(np.floor(np.log2(scale)))
    with np.errstate(invalid="ignore"):
        out = np.abs(wide_a - wide_b) / ulp
    same = (ulp_distance(a, b) == 0) | (wide_a == wide_b)
    return np.where(same, 0.0, np.where(np.isnan(out), np.inf, out))


# -- the draws --------------------------------------------------------------------------


def devices() -> tuple[jax.Device, jax.Device]:
    """The default backend's first device and the host CPU's first device."""
    return jax.devices()[0], jax.devices("cpu")[0]


def _suite_tables() -> tuple[dict[str, tuple[tuple, dict]], dict[str, tuple[str, tuple, dict]]]:
    # The suite's one table of valid arguments per op, so that a new jax.random sampler
    # is covered here as soon as the suite covers it.
    if TESTS not in sys.path:
        sys.path.insert(0, TESTS)
    import sharding_cases
    from test_random_ops import OP_ARGS

    try:
        return OP_ARGS, sharding_cases.shardable_args()
    except KeyError:  # a sampler of a newer JAX that the table lacks: keep the others
        wide = {}
        for name in rs.random.OP_NAMES:
            own = sharding_cases._OWN_ARGS.get(name)
            if own is not None:
                wide[name] = (name, *own)
            elif name in OP_ARGS:
                wide[name] = (name, *sharding_cases._with_leading_shape(name))
        return OP_ARGS, wide


def op_cases(
    ops: Sequence[str] | None = None, small: bool = True
) -> list[tuple[str, str, tuple, dict]]:
    """``(op, label, args, kwargs)`` for each op: its small call (``small``) and its (16, 8)
    call; label ``"no arguments"`` for an op the suite's table does not cover."""
    small_args, wide = _suite_tables()
    small_args = {**small_args, "dropout": ((jnp.arange(1.0, 6.0), 0.25), {})}
    cases = []
    for name in rs.random.OP_NAMES if ops is None else ops:
        if name not in wide:
            cases.append((name, NO_ARGUMENTS, (), {}))
            continue
        if small and name in small_args:
            cases.append((name, "small", *small_args[name]))
        _, args, kwargs = wide[name]
        cases.append((name, "16x8", args, kwargs))
    return cases


NO_ARGUMENTS = "no arguments"


def _draw(device: jax.Device, name: str, seed: int, offset: int, args: tuple, kwargs: dict):
    with jax.default_device(device):
        gen = rs.Generator(seed=seed, offset=offset)
        values, _ = getattr(rs.random, name)(gen, *args, **kwargs)
        leaves = jax.tree.leaves(values)
        placed = {d for leaf in leaves for d in leaf.devices()}
        if placed != {device}:
            raise RuntimeError(f"{name} was computed on {placed}, not on {device}")
        return [np.asarray(leaf) for leaf in leaves]


@dataclasses.dataclass
class OpResult:
    """One op over every seed and argument set: the worst difference seen."""

    name: str
    bound: Bound
    elements: int = 0
    differing: int = 0
    max_ulps: float = 0.0
    integer: bool = True
    problems: list[str] = dataclasses.field(default_factory=list)
    attribution: str = ""

    @property
    def passed(self) -> bool:
        return not self.problems and self.max_ulps <= self.bound.ulps

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bound_ulps": self.bound.ulps,
            "why": self.bound.why,
            "elements": self.elements,
            "differing": self.differing,
            "max_ulps": self.max_ulps,
            "integer": self.integer,
            "passed": self.passed,
            "problems": self.problems,
            "attribution": self.attribution,
        }


def _compare(result: OpResult, a: np.ndarray, b: np.ndarray, where: str) -> None:
    if a.dtype != b.dtype or a.shape != b.shape:
        result.problems.append(f"{where}: {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}")
        return
    result.elements += a.size
    if a.dtype.kind == "f" and result.name not in _INTEGER_VALUED:
        result.integer = False
    if a.tobytes() == b.tobytes():
        return
    if a.dtype.kind == "f" and result.bound.ulps > 0:
        ulps = scaled_ulps(a, b)
        result.differing += int(np.count_nonzero(ulps))
        result.max_ulps = max(result.max_ulps, float(ulps.max()))
        return
    words = f"uint{8 * a.dtype.itemsize}"  # bit for bit, element by element
    unequal = int(np.count_nonzero(a.reshape(-1).view(words) != b.reshape(-1).view(words)))
    result.differing += unequal
    result.max_ulps = float("inf")
    result.problems.append(f"{where}: {unequal} of {a.size} values differ")


def compare_ops(
    accelerator: jax.Device,
    cpu: jax.Device,
    ops: Sequence[str] | None = None,
    seeds: Sequence[tuple[int, int]] = SEEDS,
    small: bool = True,
) -> list[OpResult]:
    """Draw every case on both devices and compare; the accelerator draws first, so the
    fast path's first-use check of each (op, dtype) runs there."""
    results: dict[str, OpResult] = {}
    for name, label, args, kwargs in op_cases(ops, small):
        result = results.setdefault(name, OpResult(name, BOUNDS.get(name, _UNSTATED)))
        if name not in BOUNDS and not result.problems:
            result.problems.append("no bound stated for this op (add it to BOUNDS)")
        if label == NO_ARGUMENTS:
            result.problems.append("tests/test_random_ops.OP_ARGS has no arguments for it")
            continue
        for seed, offset in seeds:
            where = f"{label} seed={seed} offset={offset}"
            try:
                ours = _draw(accelerator, name, seed, offset, args, kwargs)
                host = _draw(cpu, name, seed, offset, args, kwargs)
            except Exception as exc:  # noqa: BLE001 - a failing op is a result of the report
                result.problems.append(f"{where}: {type(exc).__name__}: {exc}")
                continue
            for a, b in zip(ours, host, strict=True):
                _compare(result, a, b, where)
    for result in results.values():
        if result.differing and not result.passed:  # values were drawn and differ: whose?
            try:
                result.attribution = _attribute(accelerator, cpu, result.name, seeds)
            except Exception as exc:  # noqa: BLE001
                result.attribution = f"not attributed: {type(exc).__name__}: {exc}"
    return list(results.values())


_UNSTATED = Bound(0, "no bound stated")
_INTEGER_VALUED = frozenset("binomial multinomial".split())


def _attribute(accelerator: jax.Device, cpu: jax.Device, name: str, seeds) -> str:
    """Whether a difference is rngstate's fast path or the backends' own jax.random."""
    with rs.fast.disabled():
        again = compare_ops_raw(accelerator, cpu, name, seeds)
    if again:
        return "also with the fast path off: jax.random itself differs between the backends"
    return "only with the fast path on: the fast path differs from jax.random on this backend"


def compare_ops_raw(accelerator, cpu, name: str, seeds) -> bool:
    """Whether ``name`` drawn with the fast path off still differs beyond its bound."""
    for _, label, args, kwargs in op_cases([name]):
        if label == NO_ARGUMENTS:
            continue
        for seed, offset in seeds:
            probe = OpResult(name, BOUNDS.get(name, _UNSTATED))
            for a, b in zip(
                _draw(accelerator, name, seed, offset, args, kwargs),
                _draw(cpu, name, seed, offset, args, kwargs),
                strict=True,
            ):
                _compare(probe, a, b, label)
            if not probe.passed:
                return True
    return False


# -- golden values, self-checks, checkpoints ----------------------------------------------


@contextmanager
def _on(device: jax.Device) -> Iterator[None]:
    with jax.default_device(device), warnings.catch_warnings():
        warnings.simplefilter("ignore", rs.checkpoint.CheckpointSettingsWarning)
        yield


def golden_values(device: jax.Device) -> dict[str, Any]:
    """The pinned golden values (both partitionable settings) drawn on ``device``."""
    from rngstate import golden

    out: dict[str, Any] = {"pinned_with": golden.pinned_table()["pinned_with"]["jax"]}
    with _on(device):
        for flag in (True, False):
            stable = golden.mismatches(partitionable=flag, fields=golden.STABLE_FIELDS)
            sampler = golden.mismatches(partitionable=flag, fields=golden.SAMPLER_FIELDS)
            out[f"partitionable={flag}"] = {"stable": stable, "sampler": sampler}
    out["cases"] = len(golden.pinned_table()["cases"])
    out["passed"] = not any(
        v["stable"] or v["sampler"] for k, v in out.items() if k.startswith("partitionable=")
    )
    return out


def self_checks(device: jax.Device) -> list[dict[str, Any]]:
    """``rngstate doctor``'s checks, run with ``device`` as the default device."""
    from rngstate import selfcheck

    with _on(device):
        return [dataclasses.asdict(r) for r in selfcheck.run_checks()]


def checkpoint_across(save_on: jax.Device, load_on: jax.Device) -> dict[str, Any]:
    """Advance a generator on ``save_on``, save it, load it on ``load_on``: same bits next?"""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "across.ckpt")
        with _on(save_on):
            gen = rs.Generator(seed=2**40 + 5, offset=2**33 - 3)
            _, gen = gen.normal((1000,))
            _, gen = gen.dropout(jnp.ones(300), 0.5)
            rs.save(path, {"gen": gen, "step": 2})
            expected = [np.asarray(gen.bits((256,))[0]), np.asarray(gen.uniform((70,))[0])]
        with _on(load_on):
            back = rs.load(path)["gen"]
            placed = {d for leaf in jax.tree.leaves(back) for d in leaf.devices()}
            got = [np.asarray(back.bits((256,))[0]), np.asarray(back.uniform((70,))[0])]
    same = all(a.tobytes() == b.tobytes() for a, b in zip(expected, got, strict=True))
    return {
        "saved_on": str(save_on),
        "loaded_on": str(load_on),
        "loaded_to": sorted(str(d) for d in placed),
        "same_state": back == gen,
        "same_bits": same,
        "passed": same and back == gen and placed == {load_on},
    }


def report(
    ops: Sequence[str] | None = None,
    seeds: Sequence[tuple[int, int]] = SEEDS,
    small: bool = True,
) -> dict:
    """The whole cross-backend report, as a JSON-ready dict with ``passed``.

    ``ops``: a subset of ``rs.random.OP_NAMES`` (default: all); ``small``: draw each op's
    small call as well as its (16, 8) one.
    """
    accelerator, cpu = devices()
    same_device = accelerator == cpu
    results = compare_ops(accelerator, cpu, ops, seeds, small)
    fast_status = rs.fast.status()
    golden = {str(d): golden_values(d) for d in dict.fromkeys((accelerator, cpu))}
    checks = {str(d): self_checks(d) for d in dict.fromkeys((accelerator, cpu))}
    checkpoints = [checkpoint_across(accelerator, cpu), checkpoint_across(cpu, accelerator)]
    passed = (
        all(r.passed for r in results)
        and all(g["passed"] for g in golden.values())
        and all(c["passed"] for cs in checks.values() for c in cs)
        and all(c["passed"] for c in checkpoints)
    )
    return {
        "accelerator": describe(accelerator),
        "cpu": describe(cpu),
        "cpu_vs_cpu": same_device,
        "seeds": [list(s) for s in seeds],
        "argument_sets": (
            "the suite's small arguments (tests/test_random_ops.OP_ARGS) and a (16, 8) output"
            if small
            else "a (16, 8) output (tests/sharding_cases)"
        ),
        "ops": [r.as_dict() for r in results],
        "fast_status": {k: v for k, v in fast_status.items() if v != "untested"},
        "golden": golden,
        "self_checks": checks,
        "checkpoints": checkpoints,
        "passed": passed,
    }


def describe(device: jax.Device) -> dict[str, str]:
    """A device as the report names it: platform, kind, id."""
    return {
        "platform": device.platform,
        "kind": getattr(device, "device_kind", device.platform),
        "name": str(device),
    }
