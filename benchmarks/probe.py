"""Measurements that need a process of their own: peak memory of one draw, import time, the
first call of an op or of a jitted step (cold start).

Run as ``python -m benchmarks.probe memory rngstate 67108864``,
``python -m benchmarks.probe import jax`` or ``python -m benchmarks.probe first rngstate
uniform``; the figure is printed as the last line of stdout.
Only the standard library is imported up front, so the import time of the module under test
is not hidden by an earlier import.
"""

from __future__ import annotations

import importlib
import resource
import sys
import time
from typing import Any


def _status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return None
    return int(line.split()[1]) * 1024  # "VmHWM:  123456 kB"


def _reset_peak_rss() -> bool:
    """Make the peak resident size (VmHWM) the current one (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def draw_memory(library: str, n: int) -> int:
    """Peak resident memory added by one ``float32[n]`` normal draw, in bytes.

    The draw is compiled ahead and a tiny draw runs first, so neither the compiler nor the
    runtime's first-use set-up is counted: only the draw itself, as the peak resident size
    during the draw (``VmHWM``, reset just before it) over the resident size just before it.
    Without Linux's ``/proc`` it falls back to ``ru_maxrss`` after minus ``ru_maxrss`` before.
    """
    import jax

    if library == "rngstate":
        import rngstate as rs

        def draw(arg: object, shape: tuple[int, ...]) -> object:
            return rs.random.normal(arg, shape)

        arg = rs.Generator(seed=0)
    elif library == "jax":

        def draw(arg: object, shape: tuple[int, ...]) -> object:
            return jax.random.normal(arg, shape)

        arg = jax.random.key(0)
    else:
        raise ValueError(f"library must be rngstate or jax, got {library!r}")
    jax.block_until_ready(jax.jit(lambda a: draw(a, (16,)))(arg))
    compiled = jax.jit(lambda a: draw(a, (n,))).lower(arg).compile()
    if _reset_peak_rss():  # earlier peaks (import, compile) must not hide the draw's
        before = _status_bytes("VmRSS")
        jax.block_until_ready(compiled(arg))
        peak = _status_bytes("VmHWM")
        if before is not None and peak is not None:
            return peak - before
    before = _peak_rss_bytes()  # no /proc: the peak so far is the baseline
    jax.block_until_ready(compiled(arg))
    return _peak_rss_bytes() - before


def import_seconds(module: str) -> float:
    """Wall time of ``import module`` in a fresh interpreter (this one)."""
    if module in sys.modules:
        raise RuntimeError(f"{module} is already imported; run this probe in a fresh process")
    start = time.perf_counter()
    importlib.import_module(module)
    return time.perf_counter() - start


FIRST_CALL_OPS = ("uniform", "normal", "bernoulli", "exponential", "truncated_normal")
"""The ops whose first call is measured (the issue's cold-start table), and ``step``: a
jitted step with dropout and a normal draw on ``(256, 256)``."""


def _first_call(library: str, op: str) -> Any:
    """The call whose first run is timed: ``op`` of ``(1000,)`` values, or the step."""
    import jax
    import jax.numpy as jnp

    shape = (1000,)
    extra: dict[str, tuple[Any, ...]] = {
        "bernoulli": (0.5, shape),
        "truncated_normal": (-1.0, 2.0, shape),
    }
    if library == "jax":
        key = jax.random.key(0)
        if op == "step":

            @jax.jit
            def raw_step(key: jax.Array, x: jax.Array) -> jax.Array:
                drop, noise = jax.random.split(key)
                keep = jax.random.bernoulli(drop, 0.9, x.shape)
                y = jnp.where(keep, x / 0.9, 0.0)
                return y + 0.01 * jax.random.normal(noise, x.shape)

            x = jnp.ones((256, 256))
            return lambda: raw_step(key, x)
        return lambda: getattr(jax.random, op)(key, *extra.get(op, (shape,)))
    import rngstate as rs

    gen = rs.Generator(seed=0)
    if op == "step":

        @jax.jit
        def step(gen: rs.Generator, x: jax.Array) -> tuple[jax.Array, rs.Generator]:
            y, gen = rs.random.dropout(gen, x, 0.1)
            noise, gen = rs.random.normal(gen, x.shape)
            return y + 0.01 * noise, gen

        x = jnp.ones((256, 256))
        return lambda: step(gen, x)
    return lambda: getattr(rs.random, op)(gen, *extra.get(op, (shape,)))


def first_call_seconds(library: str, op: str) -> float:
    """Wall time of the first call of ``op`` (or the jitted ``step``) in a fresh
    interpreter, imports done before the clock starts; ``library`` is jax or rngstate
    (``RNGSTATE_CACHE_DIR`` and ``RNGSTATE_FAST`` in the environment set its cache and path)."""
    import jax

    if op not in (*FIRST_CALL_OPS, "step") or library not in ("jax", "rngstate"):
        raise ValueError(f"no first-call probe for {library} {op}")
    call = _first_call(library, op)
    start = time.perf_counter()
    jax.block_until_ready(call())
    return time.perf_counter() - start


def main(argv: list[str]) -> None:
    """Dispatch ``memory LIBRARY N`` or ``import MODULE`` and print the figure."""
    if len(argv) == 3 and argv[0] == "memory":
        print(draw_memory(argv[1], int(argv[2])))
    elif len(argv) == 2 and argv[0] == "import":
        print(import_seconds(argv[1]))
    elif len(argv) == 3 and argv[0] == "first":
        print(first_call_seconds(argv[1], argv[2]))
    else:
        raise SystemExit(
            "usage: python -m benchmarks.probe memory LIBRARY N | import MODULE | first LIBRARY OP"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
