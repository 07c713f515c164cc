"""Measurements that need a process of their own: peak memory of one draw, import time.

Run as ``python -m benchmarks.probe memory rngstate 67108864`` or
``python -m benchmarks.probe import jax``; the figure is printed as the last line of stdout.
Only the standard library is imported up front, so the import time of the module under test
is not hidden by an earlier import.
"""

from __future__ import annotations

import importlib
import resource
import sys
import time


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


def main(argv: list[str]) -> None:
    """Dispatch ``memory LIBRARY N`` or ``import MODULE`` and print the figure."""
    if len(argv) == 3 and argv[0] == "memory":
        print(draw_memory(argv[1], int(argv[2])))
    elif len(argv) == 2 and argv[0] == "import":
        print(import_seconds(argv[1]))
    else:
        raise SystemExit("usage: python -m benchmarks.probe memory LIBRARY N | import MODULE")


if __name__ == "__main__":
    main(sys.argv[1:])
