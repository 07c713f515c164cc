"""The fast path against raw jax.random, NumPy and PyTorch, at 2**24 elements per draw.

    .venv/bin/python -m benchmarks.fast_path [--rounds 15] [--size 16777216] [--op uniform]

Every contender of a row is called once per round, in an order that rotates each round;
a contender's ratio is the median over rounds of ``raw jax.random's time / its time`` in
the same round (speed-up: above 1 is faster), so a slow stretch of a shared machine hits
both sides of a pair. ``cpu`` is the same ratio on this process's CPU time.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import rngstate as rs

Draw = Callable[[], Any]

# Targets of the issue, as speed-ups over raw jax.random (NumPy: over NumPy).
TARGETS = {
    ("bits u32", "rngstate"): 5.0,
    ("uniform f32", "rngstate"): 5.0,
    ("normal f32", "rngstate"): 2.5,
    ("dropout f32", "rngstate"): 4.0,
}
NUMPY_TARGETS = {"uniform f32": 1.0}


def _torch() -> Any:
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return None
    torch.manual_seed(0)
    return torch


def _threaded(op: Callable[..., tuple[Any, rs.Generator]], *args: Any, **kwargs: Any) -> Draw:
    """``op(gen, ...)`` as a user calls it eagerly: each call hands on the next generator."""
    state = [rs.Generator(seed=0)]

    def call() -> Any:
        values, state[0] = op(state[0], *args, **kwargs)
        return values

    return call


def rows(n: int) -> dict[str, dict[str, Draw]]:
    """Each covered op: its contenders, raw ``jax.random`` first."""
    key = jax.random.key(0)
    rng = np.random.default_rng(0)
    torch = _torch()
    x = jnp.ones((n,), jnp.float32)
    x_np = np.ones((n,), np.float32)
    x_torch = torch and torch.ones(n)
    r = {op: getattr(rs.random, op) for op in rs.random.OP_NAMES}

    def raw_dropout(k: jax.Array, x: jax.Array) -> jax.Array:
        keep = jax.random.bernoulli(k, 0.9, x.shape)
        return jnp.where(keep, x / 0.9, 0.0)

    raw_dropout_jit = jax.jit(raw_dropout)

    def both(op: str, *args: Any) -> dict[str, Draw]:
        """Raw ``jax.random.<op>(key, *args)`` and ``rs.random.<op>(gen, *args)``."""
        raw = getattr(jax.random, op)
        return {"jax.random": lambda: raw(key, *args), "rngstate": _threaded(r[op], *args)}

    table: dict[str, dict[str, Draw | None]] = {
        "bits u32": {
            **both("bits", (n,), jnp.uint32),
            "numpy": lambda: rng.integers(0, 2**32, n, dtype=np.uint32),
            "torch": torch
            and (lambda: torch.randint(-(2**31), 2**31 - 1, (n,), dtype=torch.int32)),
        },
        "bits u8": {
            **both("bits", (n,), jnp.uint8),
            "numpy": lambda: rng.integers(0, 256, n, dtype=np.uint8),
            "torch": torch and (lambda: torch.randint(0, 256, (n,), dtype=torch.uint8)),
        },
        "uniform f32": {
            **both("uniform", (n,)),
            "numpy": lambda: rng.random(n, dtype=np.float32),
            "torch": torch and (lambda: torch.rand(n)),
        },
        "uniform bf16": {
            **both("uniform", (n,), jnp.bfloat16),
            "torch": torch and (lambda: torch.rand(n, dtype=torch.bfloat16)),
        },
        "normal f32": {
            **both("normal", (n,)),
            "numpy": lambda: rng.standard_normal(n, dtype=np.float32),
            "torch": torch and (lambda: torch.randn(n)),
        },
        "truncated_normal f32": {
            **both("truncated_normal", -2.0, 2.0, (n,)),
            "torch": torch and (lambda: torch.nn.init.trunc_normal_(torch.empty(n), a=-2.0, b=2.0)),
        },
        "bernoulli f32": {
            **both("bernoulli", 0.3, (n,)),
            "numpy": lambda: rng.random(n, dtype=np.float32) < 0.3,
            "torch": torch and (lambda: torch.rand(n) < 0.3),
        },
        "dropout f32": {
            "jax.random": lambda: raw_dropout_jit(key, x),
            "rngstate": _threaded(r["dropout"], x, 0.1),
            "numpy": lambda: np.where(rng.random(n, dtype=np.float32) < 0.9, x_np / 0.9, 0.0),
            "torch": torch and (lambda: torch.nn.functional.dropout(x_torch, 0.1, training=True)),
        },
        "randint i32": {
            **both("randint", (n,), 0, 1000),
            "numpy": lambda: rng.integers(0, 1000, n, dtype=np.int32),
            "torch": torch and (lambda: torch.randint(0, 1000, (n,), dtype=torch.int32)),
        },
        "exponential f32": {
            **both("exponential", (n,)),
            "numpy": lambda: rng.standard_exponential(n, dtype=np.float32),
            "torch": torch and (lambda: torch.empty(n).exponential_()),
        },
        "gumbel f32": {
            **both("gumbel", (n,)),
            "numpy": lambda: rng.gumbel(size=n),
        },
        "laplace f32": {
            **both("laplace", (n,)),
            "numpy": lambda: rng.laplace(size=n),
        },
    }
    return {op: {k: v for k, v in row.items() if v} for op, row in table.items()}


def training_loop(steps: int = 20) -> dict[str, Draw]:
    """A jitted training loop: a 2-layer MLP with dropout and input noise, in lax.scan."""
    batch, width = 256, 2048
    k1, k2 = jax.random.split(jax.random.key(1))
    params = (
        jax.random.normal(k1, (width, width)) / width**0.5,
        jax.random.normal(k2, (width, 10)) / width**0.5,
    )
    data = jnp.ones((batch, width))

    def loss(params: Any, h: jax.Array, mask_and_noise: tuple) -> jax.Array:
        w1, w2 = params
        keep, noise = mask_and_noise
        h = jax.nn.relu((h + 0.1 * noise) @ w1)
        h = jnp.where(keep, h / 0.9, 0.0)
        return jnp.mean((h @ w2) ** 2)

    def update(params: Any, randomness: tuple) -> Any:
        grads = jax.grad(loss)(params, data, randomness)
        return jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads)

    @jax.jit
    def ours(params: Any, gen: rs.Generator) -> Any:
        def step(carry: Any, _: Any) -> Any:
            params, gen = carry
            noise, gen = gen.normal((batch, width))
            keep, gen = gen.bernoulli(0.9, (batch, width))
            return (update(params, (keep, noise)), gen), None

        return jax.lax.scan(step, (params, gen), length=steps)[0]

    @jax.jit
    def raw(params: Any, key: jax.Array) -> Any:
        def step(carry: Any, i: jax.Array) -> Any:
            params, key = carry
            k_noise, k_keep = jax.random.split(jax.random.fold_in(key, i))
            noise = jax.random.normal(k_noise, (batch, width))
            keep = jax.random.bernoulli(k_keep, 0.9, (batch, width))
            return (update(params, (keep, noise)), key), None

        return jax.lax.scan(step, (params, key), jnp.arange(steps))[0]

    gen, key = rs.Generator(seed=0), jax.random.key(0)
    return {"jax.random": lambda: raw(params, key), "rngstate": lambda: ours(params, gen)}


class Timings:
    """Wall and CPU seconds of each contender, one sample per round, in rotating order."""

    def __init__(self, contenders: dict[str, Draw], rounds: int) -> None:
        names = list(contenders)
        for draw in contenders.values():
            jax.block_until_ready(draw())  # compile and warm up
        self.wall: dict[str, np.ndarray] = {}
        self.cpu: dict[str, np.ndarray] = {}
        wall: dict[str, list[float]] = {n: [] for n in names}
        cpu: dict[str, list[float]] = {n: [] for n in names}
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                c0, t0 = time.process_time(), time.perf_counter()
                jax.block_until_ready(contenders[name]())
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        self.wall = {n: np.array(v) for n, v in wall.items()}
        self.cpu = {n: np.maximum(np.array(v), 1e-9) for n, v in cpu.items()}

    def seconds(self, name: str) -> float:
        return float(np.median(self.wall[name]))

    def speedup(self, name: str, over: str) -> tuple[float, float]:
        """Median over rounds of ``over``'s time / ``name``'s time: wall, then CPU."""
        return (
            float(np.median(self.wall[over] / self.wall[name])),
            float(np.median(self.cpu[over] / self.cpu[name])),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--size", type=int, default=2**24)
    parser.add_argument("--op", action="append", help="only these rows (repeatable)")
    args = parser.parse_args(argv)
    table = rows(args.size)
    table["training loop"] = training_loop()
    print(f"jax {jax.__version__}, {args.size} elements, {args.rounds} rounds; x = speed-up")
    print(f"{'op':22s} {'contender':11s} {'M values/s':>10s} {'vs jax':>8s} {'cpu':>7s}  target")
    short = []
    for op, contenders in table.items():
        if args.op and op not in args.op:
            continue
        timings = Timings(contenders, args.rounds)
        for name in contenders:
            seconds = timings.seconds(name)
            speedup, cpu_speedup = timings.speedup(name, over="jax.random")
            rate = "" if op == "training loop" else f"{args.size / seconds / 1e6:10.0f}"
            target = TARGETS.get((op, name))
            verdict = ""
            if target:
                verdict = f">= {target}x: {'yes' if speedup >= target else 'NO'}"
                short += [] if speedup >= target else [f"{op} vs jax.random"]
            if name == "rngstate" and op in NUMPY_TARGETS and "numpy" in contenders:
                vs_numpy, _ = timings.speedup(name, over="numpy")
                ok = vs_numpy >= NUMPY_TARGETS[op]
                verdict += f"; {vs_numpy:.2f}x numpy: {'yes' if ok else 'NO'}"
                short += [] if ok else [f"{op} vs numpy"]
            print(f"{op:22s} {name:11s} {rate:>10s} {speedup:7.2f}x {cpu_speedup:6.2f}x  {verdict}")
    print("short of target:", ", ".join(short) or "none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
