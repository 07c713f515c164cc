"""Eager latency of the stateful facade against the functional op it wraps.

Times ``rngstate.ops.uniform((10,))``, the same with an op seed, and
``rngstate.random.uniform(g, (10,))``. Each call is waited for (``block_until_ready``) and
the three are interleaved so all see the same machine load; prints the median and the
10th/90th percentiles in microseconds.

    python benchmarks/facade_latency.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import rngstate as rs


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    tenth, ninetieth = ordered[len(ordered) // 10], ordered[len(ordered) * 9 // 10]
    return f"median {statistics.median(ordered):6.1f} us  (p10 {tenth:6.1f}, p90 {ninetieth:6.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()

    rs.manual_seed(0)
    gen = rs.Generator(seed=0)
    for _ in range(args.warmup):
        rs.ops.uniform((10,)).block_until_ready()
        rs.ops.uniform((10,), seed=1).block_until_ready()
        x, gen = rs.random.uniform(gen, (10,))
        x.block_until_ready()

    stateful, op_seeded, functional = [], [], []
    for _ in range(args.calls):
        start = time.perf_counter()
        rs.ops.uniform((10,)).block_until_ready()
        stateful.append((time.perf_counter() - start) * 1e6)
        start = time.perf_counter()
        rs.ops.uniform((10,), seed=1).block_until_ready()
        op_seeded.append((time.perf_counter() - start) * 1e6)
        start = time.perf_counter()
        x, gen = rs.random.uniform(gen, (10,))
        x.block_until_ready()
        functional.append((time.perf_counter() - start) * 1e6)

    print(f"calls: {args.calls} each, interleaved, after {args.warmup} warm-up calls")
    print(f"rngstate.ops.uniform((10,))         {_percentiles(stateful)}")
    print(f"rngstate.ops.uniform((10,), seed=1) {_percentiles(op_seeded)}")
    print(f"rngstate.random.uniform(g, (10,))   {_percentiles(functional)}")
    overhead = statistics.median(stateful) - statistics.median(functional)
    print(f"facade overhead (median difference): {overhead:.1f} us")


if __name__ == "__main__":
    main()
