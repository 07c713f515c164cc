"""Whether large allocations get huge pages here, and what a fresh output buffer costs.

A bulk draw writes a fresh output buffer. With 4 KiB pages, the kernel faults in each page
on first write (16,384 faults for 64 MiB), which on some machines takes as long as drawing
the values. glibc asks for transparent huge pages (2 MiB) for its large allocations when
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` is set and the kernel's THP mode allows it
(``madvise`` or ``always``). ``rngstate doctor`` prints :func:`report_lines`.

The probe allocates with the C library's ``malloc``, as XLA:CPU does for its buffers (NumPy
asks the kernel for huge pages on its own, so its arrays would not tell). This module imports
neither JAX nor the rest of rngstate: run as a script, it prints :func:`probe`'s figures as
JSON (the doctor runs it so with the tunable set, to compare).

>>> sorted(status())
['glibc_tunables', 'hugetlb_tunable', 'thp_defrag', 'thp_enabled']
"""

from __future__ import annotations

import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

PROBE_BYTES = 64 * 2**20
TUNABLE = "glibc.malloc.hugetlb=1"
_THP = "/sys/kernel/mm/transparent_hugepage/"


def _thp(name: str) -> str:
    try:
        with open(_THP + name) as f:
            text = f.read().strip()
    except OSError:
        return "unknown"
    # The kernel marks the active choice: "always [madvise] never".
    return next((w[1:-1] for w in text.split() if w.startswith("[")), text)


def status() -> dict[str, str]:
    """The kernel's THP settings and this process's glibc tunables.

    >>> status()["thp_enabled"] in ("always", "madvise", "never", "unknown")
    True
    """
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    hugetlb = next(
        (t.split("=", 1)[1] for t in tunables.split(":") if t.startswith("glibc.malloc.hugetlb=")),
        "not set",
    )
    return {
        "thp_enabled": _thp("enabled"),
        "thp_defrag": _thp("defrag"),
        "glibc_tunables": tunables or "(not set)",
        "hugetlb_tunable": hugetlb,
    }


def _anon_huge_bytes() -> int | None:
    try:
        with open("/proc/self/smaps_rollup") as f:
            line = next(line for line in f if line.startswith("AnonHugePages:"))
    except (OSError, StopIteration):
        return None
    return int(line.split()[1]) * 1024


def probe(seconds: float = 0.5, nbytes: int = PROBE_BYTES) -> dict[str, float | bool | None]:
    """Time filling a fresh ``nbytes`` buffer and refilling one whose pages exist.

    Returns the median seconds of each (``fresh_s``, ``reused_s``), the share of the fresh
    fill spent getting pages (``fault_share``), and whether the fresh buffer got huge pages
    (``huge_pages``; None where the kernel does not say).

    >>> figures = probe(seconds=0.05, nbytes=2**22)
    >>> 0.0 <= figures["fault_share"] <= 1.0
    True
    """
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.restype, libc.free.argtypes = None, [ctypes.c_void_p]
    fresh, reused, huge = [], [], None
    deadline = time.perf_counter() + seconds
    kept = libc.malloc(nbytes)
    if not kept:
        raise MemoryError(f"malloc({nbytes}) failed")
    ctypes.memset(kept, 0, nbytes)
    try:
        while time.perf_counter() < deadline or len(fresh) < 3:
            before = _anon_huge_bytes()
            start = time.perf_counter()
            buffer = libc.malloc(nbytes)
            if not buffer:
                raise MemoryError(f"malloc({nbytes}) failed")
            ctypes.memset(buffer, 1, nbytes)
            fresh.append(time.perf_counter() - start)
            after = _anon_huge_bytes()
            if before is not None and after is not None:
                huge = bool(huge) or after - before >= nbytes // 2
            libc.free(buffer)
            start = time.perf_counter()
            ctypes.memset(kept, 1, nbytes)
            reused.append(time.perf_counter() - start)
    finally:
        libc.free(kept)
    fresh_s, reused_s = statistics.median(fresh), statistics.median(reused)
    share = max(0.0, min(1.0, 1.0 - reused_s / fresh_s)) if fresh_s > 0 else 0.0
    return {"fresh_s": fresh_s, "reused_s": reused_s, "fault_share": share, "huge_pages": huge}


_RUN_AS_SCRIPT = (
    "import runpy, sys; path = sys.argv.pop(1); runpy.run_path(path, run_name='__main__')"
)


def probe_with_tunable(seconds: float = 0.5) -> dict[str, float | bool | None] | None:
    """:func:`probe` in a fresh interpreter with ``GLIBC_TUNABLES`` asking for huge pages."""
    tunables = [t for t in os.environ.get("GLIBC_TUNABLES", "").split(":") if t]
    tunables = [t for t in tunables if not t.startswith("glibc.malloc.hugetlb=")] + [TUNABLE]
    env = {**os.environ, "GLIBC_TUNABLES": ":".join(tunables)}
    try:
        done = subprocess.run(
            # Not as a script: its folder would shadow the standard library's `random`.
            [sys.executable, "-c", _RUN_AS_SCRIPT, os.path.abspath(__file__), str(seconds)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _describe(figures: dict | None) -> str:
    if figures is None:
        return "could not be measured"
    huge = {True: "huge pages: yes", False: "huge pages: no", None: "huge pages: unknown"}
    return (
        f"{figures['fresh_s'] * 1e3:.1f} ms to fill a fresh {PROBE_BYTES // 2**20} MiB buffer "
        f"({huge[figures['huge_pages']]}), {figures['reused_s'] * 1e3:.1f} ms once its pages "
        f"exist: getting pages is {figures['fault_share']:.0%} of it"
    )


def report_lines(seconds: float = 0.5) -> list[str]:
    """The doctor's lines: settings, then about ``2 * seconds`` of probing, here and with
    the tunable set.

    >>> report_lines(seconds=0.05)[0].startswith("huge pages")
    True
    """
    s = status()
    lines = [
        f"huge pages  THP enabled={s['thp_enabled']} defrag={s['thp_defrag']}; "
        f"glibc.malloc.hugetlb {s['hugetlb_tunable']}",
        f"  this process: {_describe(probe(seconds))}",
    ]
    if s["hugetlb_tunable"] != "1":
        lines.append(f"  with GLIBC_TUNABLES={TUNABLE}: {_describe(probe_with_tunable(seconds))}")
    if s["thp_enabled"] == "never":
        lines.append("  THP is off in this kernel: the tunable cannot get huge pages here")
    return lines


if __name__ == "__main__":
    print(json.dumps(probe(float(sys.argv[1]) if len(sys.argv) > 1 else 0.5)))
