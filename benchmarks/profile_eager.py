"""Where the time of one small eager draw goes: ``python -m benchmarks.profile_eager``.

Prints the wall time per call (median over interleaved rounds, result ready) of the same
device work at several levels, each a ratio to the raw jitted ``jax.random`` call, then the
Python functions that the eager call spends its time in (cProfile). The levels split the
eager cost into what the program's shape costs (deriving the key in it, a second output for
the advanced offset, carrying the returned generator to the next call) and what rngstate's
Python layer adds before and after the dispatch. The last column puts each level against an
eager ``jax.random`` call, which the "1.8x faster" target is measured against.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
from collections.abc import Callable
from typing import Any

import jax

import rngstate as rs
from benchmarks import harness
from rngstate.generator import Generator, derive_key

SHAPE = (10,)
EAGER_JAX = "jax.random.uniform(key) eager"


def levels() -> dict[str, Callable[[], Any]]:
    """The calls compared, cheapest first; each returns what it waits for."""
    key, gen = jax.random.key(0), rs.Generator(seed=0)
    seed, offset = gen.seed, gen.offset
    raw = jax.jit(lambda k: jax.random.uniform(k, SHAPE))
    raw_two_outputs = jax.jit(lambda k: (jax.random.uniform(k, SHAPE), k))
    derived = jax.jit(lambda s, o: jax.random.uniform(derive_key(s, o), SHAPE))
    program = jax.jit(
        lambda s, o: (
            jax.random.uniform(derive_key(s, o), SHAPE),
            Generator.from_words(s, o).construct(1).offset,
        )
    )
    ours_jit = jax.jit(lambda g: rs.random.uniform(g, SHAPE))
    carried = [gen]

    def program_carrying_the_generator() -> Any:
        # What a loop does: each call draws from the generator the previous call returned.
        current = carried[0]
        values, next_offset = program(current.seed, current.offset)
        carried[0] = Generator.from_words(current.seed, next_offset)
        return values

    (size,) = SHAPE  # "a new shape tuple": (size,) is built anew on each call
    return {
        "jit(jax.random.uniform)(key)": lambda: raw(key),
        "  the same, key also returned": lambda: raw_two_outputs(key),
        "key derived from (seed, offset)": lambda: derived(seed, offset),
        "  and the offset advanced": lambda: program(seed, offset)[0],
        "  the generator carried to the next": program_carrying_the_generator,
        "jit(rs.random.uniform)(gen)": lambda: ours_jit(gen)[0],
        "rs.random.uniform(gen) eager": lambda: rs.random.uniform(gen, SHAPE)[0],
        "  a new shape tuple each call": lambda: rs.random.uniform(gen, (size,))[0],
        "  waiting on (values, gen)": lambda: rs.random.uniform(gen, SHAPE),
        "rs.ops.uniform() eager": lambda: rs.ops.uniform(SHAPE),
        EAGER_JAX: lambda: jax.random.uniform(key, SHAPE),
    }


def wall_per_call(calls: dict[str, Callable[[], Any]], number: int, rounds: int) -> dict:
    """Median over ``rounds`` of each call's wall seconds, sampled as ``make bench`` samples:
    interleaved in a shuffled order each round, ``number`` calls a sample, result ready."""
    for fn in calls.values():
        harness.warm_up(fn, min(number, 100))
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(rounds):
        for name in harness.round_order(list(calls), r):
            samples[name].append(harness.time_sample(calls[name], number)[0])
    return {name: statistics.median(values) for name, values in samples.items()}


def main(calls: int = 500, rounds: int = 15, profiled: int = 5000) -> None:
    """Print the levels and the cProfile table of ``profiled`` eager calls."""
    gen = rs.Generator(seed=0)
    times = wall_per_call(levels(), calls, rounds)
    base, eager_jax = times["jit(jax.random.uniform)(key)"], times[EAGER_JAX]
    print(f"{'':37s} per call   vs raw jit   vs eager jax.random")
    for name, t in times.items():
        print(f"{name:37s} {t * 1e6:6.2f} us   {t / base:5.2f}x       {t / eager_jax:5.3f}x")

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
