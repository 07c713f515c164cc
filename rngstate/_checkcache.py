"""The fast path's first-use verdicts, remembered on disk so that a new process skips the check.

The first-use check of :mod:`rngstate.fast` compiles and runs a program of a few thousand
values per (op, dtype): seconds on a small CPU, paid again by every new process. Its outcome
depends only on what compiles and runs the draw, so a "verified" verdict is written to one
small file whose name hashes all of it: the check itself (this module's :data:`CHECK_VERSION`
and the source of the modules that compute the fast bits), JAX and jaxlib's versions, the
backend and its device kind, the CPU's architecture and feature flags, ``XLA_FLAGS``, the
PRNG and x64 settings, and the (op, dtype, kind). Change any of them and the check runs
again. Only "verified" is remembered: a failed check, rare and cheap to repeat, runs again.

Where: ``$RNGSTATE_CACHE_DIR`` if set (``off``, ``0`` or empty turns the cache off), else
``$XDG_CACHE_HOME/rngstate``, else ``~/.cache/rngstate``; the files are under its
``fast-path-checks/``. A file is written to a temporary name and renamed into place, so
processes racing on one verdict each leave a whole file; an unreadable, corrupt or foreign
file is ignored (the check then runs), and a cache that cannot be written is skipped silently.

>>> import os, tempfile
>>> from unittest import mock
>>> with mock.patch.dict(os.environ, {"RNGSTATE_CACHE_DIR": tempfile.mkdtemp()}):
...     before = recall("fast", "normal", "float32")
...     remember("fast", "normal", "float32")
...     print(before, recall("fast", "normal", "float32"), [e["op"] for e in entries()])
False True ['normal']
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import sys
import tempfile
from typing import Any

import jax

__all__ = ["CHECK_VERSION", "ENV", "directory", "entries", "recall", "remember"]

ENV = "RNGSTATE_CACHE_DIR"
CHECK_VERSION = 2
"""Raised whenever the probes of the first-use check change: older verdicts are then unused."""

_OFF = {"", "0", "off", "false", "no"}
_SUBDIR = "fast-path-checks"
# The modules whose code computes the fast path's values: an edit to any of them (an
# editable install keeps its version number) makes every remembered verdict stale.
_SOURCES = ("fast.py", "threefry.py", "_dropout.py")


def directory() -> str | None:
    """The folder of the remembered verdicts, or None when the cache is off.

    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"RNGSTATE_CACHE_DIR": "off"}):
    ...     directory() is None
    True
    """
    chosen = os.environ.get(ENV)
    if chosen is not None:
        if chosen.strip().lower() in _OFF:
            return None
        root = os.path.expanduser(chosen)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "rngstate")
    return os.path.join(root, _SUBDIR)


@functools.cache
def _cpu_features() -> str:
    """The CPU's architecture and a digest of its feature flags (what XLA:CPU compiles for)."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = platform.processor()
    digest = hashlib.sha256(" ".join(sorted(flags.split(":")[-1].split())).encode()).hexdigest()
    return f"{platform.machine()}:{digest[:16]}"


@functools.cache
def _sources_digest() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for name in _SOURCES:
        with open(os.path.join(here, name), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


@functools.cache
def _process_fingerprint() -> tuple[tuple[str, str], ...]:
    """What this process compiles with; fixed once its backend has started."""
    import jaxlib

    device = jax.devices()[0]
    return (
        ("check", str(CHECK_VERSION)),
        ("sources", _sources_digest()),
        ("python", f"{sys.version_info[0]}.{sys.version_info[1]}"),
        ("jax", jax.__version__),
        ("jaxlib", jaxlib.__version__),
        ("backend", jax.default_backend()),
        ("device", str(getattr(device, "device_kind", ""))),
        ("platform_version", str(getattr(device.client, "platform_version", ""))),
        ("cpu", _cpu_features()),
    )


def _key(kind: str, op: str, dtype: str) -> dict[str, str]:
    config = jax.config
    return {
        **dict(_process_fingerprint()),
        # Read on each use: these may change while the process runs.
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "x64": str(bool(config.jax_enable_x64)),
        "partitionable": str(bool(config.jax_threefry_partitionable)),
        "prng": str(config.jax_default_prng_impl),
        "kind": kind,
        "op": op,
        "dtype": dtype,
    }


def _path(folder: str, key: dict[str, str]) -> str:
    text = json.dumps(key, sort_keys=True)
    return os.path.join(folder, hashlib.sha256(text.encode()).hexdigest()[:32] + ".json")


def recall(kind: str, op: str, dtype: str) -> bool:
    """Whether a verdict "verified" for ``kind`` ("fast" or "wide") of (op, dtype) is
    remembered for this process's JAX, backend, CPU and flags. Never raises."""
    folder = directory()
    if folder is None:
        return False
    try:
        key = _key(kind, op, dtype)
        with open(_path(folder, key)) as f:
            stored = json.load(f)
        return stored.get("key") == key and stored.get("verdict") == "verified"
    except Exception:  # noqa: BLE001 - unreadable, corrupt or foreign: as if absent
        return False


def remember(kind: str, op: str, dtype: str) -> None:
    """Write the verdict "verified" for ``kind`` of (op, dtype), atomically. Never raises."""
    folder = directory()
    if folder is None:
        return
    tmp = None
    try:
        key = _key(kind, op, dtype)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"key": key, "verdict": "verified"}, f, sort_keys=True)
        os.replace(tmp, _path(folder, key))  # whole file or none, whoever renames last
        tmp = None
    except Exception:  # noqa: BLE001 - a cache that cannot be written is only slower
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)


def entries() -> list[dict[str, Any]]:
    """The remembered verdicts: each file's op, dtype, kind, jax, backend, and ``current``
    (whether it applies to this process). Unreadable files are left out.

    >>> isinstance(entries(), list)
    True
    """
    folder = directory()
    if folder is None:
        return []
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json") and n[0] != ".")
    except OSError:
        return []
    found = []
    for name in names:
        try:
            with open(os.path.join(folder, name)) as f:
                key = json.load(f)["key"]
            current = key == _key(key["kind"], key["op"], key["dtype"])
            shown = {k: key[k] for k in ("op", "dtype", "kind", "jax", "backend")}
            found.append({**shown, "current": current})
        except Exception:  # noqa: BLE001 - corrupt or foreign: not listed
            continue
    return found
