"""Where the time of one small eager draw goes: ``python -m benchmarks.profile_eager``.

Prints CPU time per call (this process, all threads: other processes' load barely moves it)
of three calls doing the same device work at three levels, then the Python functions that
the eager call spends its time in (cProfile). The gaps between the levels split the eager
cost into device work (key derivation and offset advance included), jit dispatch of that
program, and rngstate's Python layer.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Callable
from typing import Any

import jax

import rngstate as rs

SHAPE = (10,)


def cpu_per_call(fn: Callable[[], Any], calls: int, rounds: int) -> float:
    """Median over ``rounds`` of the CPU seconds per call of ``fn`` (result made ready)."""
    for _ in range(min(calls, 100)):
        jax.block_until_ready(fn())
    samples = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            jax.block_until_ready(fn())
        samples.append((time.process_time() - start) / calls)
    return sorted(samples)[len(samples) // 2]


def main(calls: int = 500, rounds: int = 15, profiled: int = 5000) -> None:
    """Print the three levels and the cProfile table of ``profiled`` eager calls."""
    key, gen = jax.random.key(0), rs.Generator(seed=0)
    raw_jit = jax.jit(lambda k: jax.random.uniform(k, SHAPE))
    ours_jit = jax.jit(lambda g: rs.random.uniform(g, SHAPE))
    levels = {
        "jit(jax.random.uniform)(key)": lambda: raw_jit(key),
        "jit(rs.random.uniform)(gen)": lambda: ours_jit(gen),
        "rs.random.uniform(gen) eager": lambda: rs.random.uniform(gen, SHAPE),
    }
    base = None
    for name, fn in levels.items():
        t = cpu_per_call(fn, calls, rounds)
        base = base or t
        print(f"{name:32s} {t * 1e6:7.2f} us CPU per call  ({t / base:.2f}x)")

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(profiled):
        jax.block_until_ready(rs.random.uniform(gen, SHAPE))
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(12)
    print(text.getvalue())


if __name__ == "__main__":
    main()
