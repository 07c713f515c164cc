"""Benchmarks on the default backend: in-jit draws and the training loop, fast path on and off.

Built from the harness (:mod:`benchmarks.harness`) and the cases of ``make bench``
(:mod:`benchmarks.cases`): each case times raw ``jax.random`` (the baseline), rngstate with
the fast path, rngstate with it off (``rngstate.fast.disabled()`` while the program is
traced and compiled) and the baseline again (the A/A control), interleaved round by round.
A ``bandwidth`` case per size times a device-to-device copy and a fill, so that a draw's
throughput can be read against what the device's memory allows.

The cases are not registered in the harness's registry: they belong to this check, not to
``make bench``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

import rngstate as rs
from benchmarks import cases as bench_cases
from benchmarks.cases import Contenders
from benchmarks.harness import MODES, Case, Mode, run_case

__all__ = ["ACCELERATOR_SIZES", "CPU_SIZES", "build_cases", "decide_fast_path", "run"]

ACCELERATOR_SIZES = (2**24, 2**26, 2**28)
"""Elements per draw on an accelerator: past the launch overhead of one kernel."""
CPU_SIZES = (2**16, 2**20)
"""Elements per draw on a CPU: small enough for a few minutes on a shared 2-core machine."""

ACCELERATOR_STEPS, CPU_STEPS = 1000, 200  # training-loop steps in one lax.scan

# op: (rngstate draw, raw jax.random draw, bytes written per element), each taking
# (generator or key, x, n); `x` is the dropout input.
DRAWS: dict[str, tuple[Callable[..., Any], Callable[..., Any], int]] = {
    "bits u32": (
        lambda g, x, n: rs.random.bits(g, (n,), jnp.uint32),
        lambda k, x, n: jax.random.bits(k, (n,), jnp.uint32),
        4,
    ),
    **{op: (*bench_cases._IN_JIT_CALLS[op], 4) for op in ("uniform", "normal", "dropout")},
    "bernoulli": (*bench_cases._IN_JIT_CALLS["bernoulli"], 1),
}

RAW, FAST, SLOW, AGAIN = "jax.random", "rngstate, fast path", "rngstate, fast path off", "again"
LOOP = "training loop"


def _aot(fn: Callable[..., Any], *args: Any, fast: bool) -> Callable[[], Any]:
    """``fn(*args)`` compiled now, with the fast path on or off while it is traced."""
    if fast:
        compiled = jax.jit(fn).lower(*args).compile()
    else:
        with rs.fast.disabled():
            compiled = jax.jit(fn).lower(*args).compile()
    return lambda: compiled(*args)


def _in_jit(op: str) -> Callable[[int], Contenders]:
    ours, raw, _ = DRAWS[op]

    def build(n: int) -> Contenders:
        x = jnp.ones((n,), jnp.float32) if op == "dropout" else jnp.zeros((), jnp.float32)
        gen, key = rs.Generator(seed=0), jax.random.key(0)
        return {
            RAW: _aot(lambda k, x: raw(k, x, n), key, x, fast=True),
            FAST: _aot(lambda g, x: ours(g, x, n)[0], gen, x, fast=True),
            SLOW: _aot(lambda g, x: ours(g, x, n)[0], gen, x, fast=False),
            f"{RAW} {AGAIN}": _aot(lambda k, x: raw(k, x, n), key, x, fast=True),
        }

    return build


def _bandwidth(n: int) -> Contenders:
    x = jnp.arange(n, dtype=jnp.uint32)
    fill = jnp.uint32(7)
    return {
        # Reads 4n bytes and writes 4n: an elementwise op XLA cannot drop (an identity
        # function would hand back its input without a copy).
        "copy (read + write)": _aot(lambda x: x ^ jnp.uint32(1), x, fast=True),
        # Writes 4n bytes, reads nothing: what a generator, which only writes, could reach.
        "fill (write)": _aot(lambda v: jnp.full((n,), v), fill, fast=True),
    }


def _training_loop(steps: int) -> Contenders:
    # make bench's training loop, plus rngstate traced with the fast path off.
    contenders = dict(bench_cases._training_loop(steps))
    with rs.fast.disabled():
        slow = bench_cases._training_loop(steps)["rngstate"]
        jax.block_until_ready(slow())  # traced and compiled now, with the fast path off
    return {
        "raw keys, fold_in": contenders["raw keys, fold_in"],
        FAST: contenders["rngstate"],
        SLOW: slow,
        f"raw keys, fold_in {AGAIN}": contenders["raw keys, fold_in again"],
    }


def _sizes(size: Any) -> dict[str, Any]:
    return dict.fromkeys(MODES, size)


def build_cases(sizes: Sequence[int], steps: int, ops: Sequence[str] | None = None) -> list[Case]:
    """The check's cases: per size, the bandwidth and each draw in jit; then the training loop.

    ``ops``: names from :data:`DRAWS` and ``"training loop"`` (default: all of them).
    """
    draws = [op for op in DRAWS if ops is None or op in ops]
    unknown = set(ops or ()) - set(DRAWS) - {LOOP}
    if unknown:
        raise ValueError(f"unknown draws {sorted(unknown)}; choose from {[*DRAWS, LOOP]}")
    found: list[Case] = []
    for n in sizes:
        found.append(
            Case(
                name=f"bandwidth 2**{int(math.log2(n))}",
                description="device-to-device copy and fill of uint32",
                build=_bandwidth,
                sizes=_sizes(n),
                baseline="copy (read + write)",
                elements=lambda n: n,
            )
        )
        for op in draws:
            found.append(
                Case(
                    name=f"in-jit {op} 2**{int(math.log2(n))}",
                    description=f"one jitted {op} draw of {n} values",
                    build=_in_jit(op),
                    sizes=_sizes(n),
                    baseline=RAW,
                    elements=lambda n: n,
                )
            )
    if ops is not None and LOOP not in ops:
        return found
    found.append(
        Case(
            name=LOOP,
            description="make bench's MLP with dropout, SGD steps in lax.scan",
            build=_training_loop,
            sizes=_sizes(steps),
            baseline="raw keys, fold_in",
            rounds={"smoke": 1, "quick": 9, "full": 21},
        )
    )
    return found


def run(
    sizes: Sequence[int], steps: int, mode: Mode, ops: Sequence[str] | None = None, out=None
) -> list[dict[str, Any]]:
    """Run :func:`build_cases` in ``mode``; print one line per case to ``out``."""
    results = []
    for case in build_cases(sizes, steps, ops):
        result = run_case(case, mode)
        results.append(result)
        if out is not None:
            ratios = ", ".join(
                f"{c['name']} {c['ratio']['median']:.3f}x"
                for c in result["contenders"]
                if "ratio" in c
            )
            out.write(f"  {case.name}: {ratios} ({result['seconds']:.1f} s)\n")
            out.flush()
    return results


# -- reading the figures ------------------------------------------------------------------


def _contender(result: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    return next((c for c in result["contenders"] if c["name"] == name), None)


def draw_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per in-jit case: times, speed-up of the fast path over off, share of fill bandwidth."""
    fills = {}
    for r in results:
        if r["name"].startswith("bandwidth"):
            fill = _contender(r, "fill (write)")
            copy = _contender(r, "copy (read + write)")
            if fill and copy and fill.get("median") and copy.get("median"):
                fills[r["size"]] = (4 * r["size"] / fill["median"], 8 * r["size"] / copy["median"])
    rows = []
    for r in results:
        if not r["name"].startswith("in-jit"):
            continue
        op = r["name"][len("in-jit ") :].rsplit(" ", 1)[0]
        raw, fast, slow = (_contender(r, name) for name in (RAW, FAST, SLOW))
        if not (raw and fast and slow and "median" in fast and "median" in slow):
            rows.append({"op": op, "size": r["size"], "error": _errors(r)})
            continue
        written = DRAWS[op][2] * r["size"]
        fill_bw, copy_bw = fills.get(r["size"], (None, None))
        rows.append(
            {
                "op": op,
                "size": r["size"],
                "raw_s": raw["median"],
                "fast_s": fast["median"],
                "slow_s": slow["median"],
                "fast_ratio": fast["ratio"]["median"],
                "fast_ci": fast["ratio"]["ci95"],
                "slow_ratio": slow["ratio"]["median"],
                "again_ratio": (_contender(r, f"{RAW} {AGAIN}") or {})
                .get("ratio", {})
                .get("median"),
                "speedup": slow["ratio"]["median"] / fast["ratio"]["median"],
                "fast_gbs": written / fast["median"] / 1e9,
                "fill_gbs": None if fill_bw is None else fill_bw / 1e9,
                "copy_gbs": None if copy_bw is None else copy_bw / 1e9,
                "fast_share_of_fill": None
                if fill_bw is None
                else written / fast["median"] / fill_bw,
            }
        )
    return rows


def _errors(result: Mapping[str, Any]) -> str:
    return "; ".join(f"{c['name']}: {c['reason']}" for c in result["contenders"] if c["reason"])


MIN_GAIN = 1.05
"""The fast path is worth its default on a backend when it makes draws at least 5% faster."""


def decide_fast_path(results: Sequence[Mapping[str, Any]], platform: str) -> dict[str, Any]:
    """The fast path's default for ``platform`` from the figures, and the reason.

    At the largest size measured, the speed-up of each op (fast path off over on, both
    paired against raw jax.random in the same rounds) and of the training loop: the fast
    path should be on where their geometric mean is at least :data:`MIN_GAIN` and no op
    loses more than 5%; off where the mean is at most 1 / MIN_GAIN; otherwise the values
    are the same either way and the default stays as it is.
    """
    rows = [r for r in draw_rows(results) if "speedup" in r]
    if not rows:
        return {"platform": platform, "default": None, "reason": "no figures"}
    largest = max(r["size"] for r in rows)
    speedups = {r["op"]: r["speedup"] for r in rows if r["size"] == largest}
    loop = next((r for r in results if r["name"] == LOOP), None)
    if loop is not None:
        fast, slow = _contender(loop, FAST), _contender(loop, SLOW)
        if fast and slow and "ratio" in fast and "ratio" in slow:
            speedups[LOOP] = slow["ratio"]["median"] / fast["ratio"]["median"]
    mean = math.exp(statistics.fmean(math.log(s) for s in speedups.values()))
    worst = min(speedups, key=speedups.get)
    if mean >= MIN_GAIN and speedups[worst] >= 1 / MIN_GAIN:
        default, why = True, f"the fast path gains {mean:.2f}x (geometric mean)"
    elif mean <= 1 / MIN_GAIN:
        default, why = False, f"the fast path costs {1 / mean:.2f}x (geometric mean)"
    else:
        default = None
        why = (
            f"no clear gain ({mean:.2f}x geometric mean, worst {worst} "
            f"{speedups[worst]:.2f}x): the values are the same either way, keep the default"
        )
    return {
        "platform": platform,
        "size": largest,
        "speedups": speedups,
        "geomean": mean,
        "default": default,
        "reason": why,
    }
