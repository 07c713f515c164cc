"""The process-wide random state, for eager code: the one module of rngstate that has any.

Code written for PyTorch or MindSpore seeds a process (``manual_seed``, ``set_seed``) and
then draws without naming a generator. This module keeps that state behind one lock: the
default :class:`~rngstate.Generator`, one generator per op-seed stream, and the global
seed. A draw hands the current generator to a functional op of :mod:`rngstate.random` and
keeps the generator the op returns, so the stateful API adds bookkeeping and nothing else.

Seeds follow MindSpore's ``set_seed`` rules (the same as TensorFlow's):

* no global seed, no op seed: the default generator, seeded from OS entropy at import;
* ``set_seed(g)``, no op seed: the default generator, which ``set_seed`` put at ``(g, 0)``;
* an op seed ``s`` for op ``name``: a stream of its own, keyed by (global seed, or 0 when
  none is set; ``s``; ``name``), whose offset advances by one per call. Its seed is
  :func:`stream_seed`;
* calling ``set_seed`` again puts the default generator back to ``(g, 0)``, forgets every
  stream and reseeds NumPy's and Python's global generators, so everything replays.

Every function here that draws, changes the state or hands it out refuses to run inside a
JAX transformation (jit, vmap, scan, grad, ...): traced once, it would bake one draw into
the compiled program. Pass a ``Generator`` explicitly there.

>>> import rngstate as rs
>>> with rs.fork_rng():
...     rs.set_seed(42)
...     a = rs.ops.uniform((2,))
...     rs.set_seed(42)
...     bool((a == rs.ops.uniform((2,))).all())
True
"""

from __future__ import annotations

import contextlib
import gc
import os
import random as py_random
import secrets
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from rngstate import _jax_compat, _u64
from rngstate.generator import Generator
from rngstate.threefry import hash_u64

SNAPSHOT_VERSION = 1
"""The layout version written into every :func:`capture` snapshot."""

_MASK32 = 0xFFFFFFFF

if not _jax_compat.DETECTABLE:  # pragma: no cover - depends on the installed JAX
    warnings.warn(
        "rngstate cannot detect JAX traces with this JAX version: the stateful API "
        "(rngstate.ops, set_seed, ...) will not refuse to run inside jit/vmap/grad",
        RuntimeWarning,
        stacklevel=2,
    )

# A generator, or its (seed, offset) as ints until the first draw needs arrays: seeding
# stays pure Python, so it starts no JAX backend (XLA flags set later still apply).
_Slot = Generator | tuple[int, int]

_lock = threading.Lock()
_default: _Slot = (secrets.randbits(64), 0)
_streams: dict[tuple[int, str], _Slot] = {}
_global_seed: int | None = None


def require_eager(what: str, instead: str = "rngstate.random.<op>(gen, ...)") -> None:
    """Raise when called under a JAX transformation; ``what`` names the refused call.

    >>> import jax
    >>> jax.jit(lambda x: require_eager("rngstate.seed") or x)(1)
    Traceback (most recent call last):
    ...
    RuntimeError: rngstate.seed() uses the process-wide random state ...
    """
    if not _is_eager():
        raise _refusal(what, instead)


def _is_eager() -> bool:
    """Whether the process-wide state may be used here: not traced, and not awaited by a
    thread that traces."""
    # The main thread is started by no other: only another thread can be awaited by one.
    return _jax_compat.is_eager() and (_get_ident() == _MAIN_THREAD or not _awaited_by_a_trace())


# Read once, as this is on every draw, and again in a forked child, whose main thread is the
# one that forked (threading's own fork hook, registered before this one, has run by then).
_MAIN_THREAD = threading.main_thread().ident
_get_ident = threading.get_ident

# Every lock of rngstate's process-wide state, as (module, name). A fork copies a lock held
# by another thread (a draw in progress, the eager reuse record, the fast path's first-use
# check) as held, and that thread does not exist in the child to release it: the child's
# first `with lock` would wait forever.
_PROCESS_LOCKS = (
    ("rngstate.facade", "_lock"),
    ("rngstate.facade", "_frames_lock"),
    ("rngstate.reuse", "_lock"),
    ("rngstate.fast", "_status_lock"),
)


def _after_fork_in_child() -> None:
    """A forked child's own main thread and fresh, free locks.

    The state the locks guard is whole in the child: each is replaced by one assignment, so
    a draw in progress at the fork is, in the child, a draw that never happened.
    """
    global _MAIN_THREAD
    _MAIN_THREAD = threading.main_thread().ident
    for module_name, name in _PROCESS_LOCKS:
        module = sys.modules.get(module_name)  # a module not imported yet has a fresh lock
        if module is not None:
            setattr(module, name, threading.Lock())


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _refusal(what: str, instead: str) -> RuntimeError:
    return RuntimeError(
        f"{what}() uses the process-wide random state and cannot run inside a JAX "
        "transformation (jit, vmap, scan, grad, ...): the traced program would replay "
        "one fixed draw. Pass a Generator explicitly instead, e.g. "
        f"`values, gen = {instead}`, and return the new gen from the function."
    )


_TRACING_CODE = _jax_compat.TRACING_CODE_DIR


def _awaited_by_a_trace() -> bool:
    """Whether a thread inside a JAX trace waits on this one (``join`` or ``Future.result``).

    JAX keeps its trace state per thread, so a thread started by a traced function looks
    eager. This finds the thread that waits on it: some frame of a tracing thread (one
    running JAX's tracing code) holds, as ``self``, this thread's ``Thread`` or the future
    of the work item it runs. Cheap when nothing traces: one look at each thread's frames.
    """
    me = threading.get_ident()
    current = threading.current_thread()
    stacks = _current_frames()
    tracing = [f for ident, f in stacks.items() if ident != me and _runs_tracing_code(f)]
    if not tracing:
        return False
    mine = {id(current)}
    frame = stacks.get(me)
    while frame is not None:
        owner = frame.f_locals.get("self")
        for held in (owner, getattr(owner, "future", None)):
            if held is not None:
                mine.add(id(held))
        frame = frame.f_back
    for frame in tracing:
        while frame is not None:
            owner = frame.f_locals.get("self")
            if owner is not None and id(owner) in mine:
                return True
            frame = frame.f_back
    return False


_frames_lock = threading.Lock()


def _current_frames() -> dict[int, Any]:
    """``sys._current_frames()``, one thread at a time and with the garbage collector off.

    CPython (3.11) holds its thread-list lock for the whole call while making frame objects.
    A collection started there can free a JAX array, whose destructor lets go of the GIL; a
    second thread then takes the GIL and waits on the thread-list lock, and neither moves
    again (an adversarial run of threads drawing from ``rngstate.ops`` hung so). With the
    collector off nothing is freed inside the call, and the lock keeps rngstate's callers
    from turning it back on under one another.
    """
    with _frames_lock:
        collecting = gc.isenabled()
        gc.disable()
        try:
            return sys._current_frames()
        finally:
            if collecting:
                gc.enable()


def _runs_tracing_code(frame: Any) -> bool:
    while frame is not None:
        if _TRACING_CODE in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _as_generator(slot: _Slot) -> Generator:
    return Generator(*slot) if isinstance(slot, tuple) else slot


def _slot_ints(slot: _Slot) -> tuple[int, int]:
    if isinstance(slot, tuple):
        return slot
    return _u64.from_words(slot.seed), _u64.from_words(slot.offset)


def stream_seed(global_seed: int, op_seed: int, name: str) -> int:
    """The seed of the op-seed stream for ``(global_seed, op_seed, name)``; offsets start at 0.

    The rule, with ``H(k, c)`` one block of the contract's key derivation (threefry2x32-20
    of counter ``c`` under key ``k``, read as a u64; :func:`rngstate.threefry.hash_u64`)::

        stream_seed = H(H(global_seed, op_seed), blake2b-64(name))

    where ``blake2b-64(name)`` is the 8-byte BLAKE2b digest of the UTF-8 op name read as a
    big-endian integer. For a fixed key, threefry is a permutation of the counter, so for a
    given global seed distinct op seeds never share the inner key, and for a given inner
    key distinct name digests never share a stream seed.

    >>> stream_seed(0, 1, "uniform") != stream_seed(0, 1, "normal") != stream_seed(0, 2, "normal")
    True
    """
    return hash_u64(hash_u64(global_seed, op_seed), _u64.text_to_int(name))


def stateful(op: Callable[..., Any], name: str) -> Callable[..., Any]:
    """The op of :mod:`rngstate.ops` called ``name``: the functional ``op`` run on the
    process-wide state, keeping the generator it returns and returning only the values.

    ``seed=None`` draws from the default generator; an integer op seed draws from that
    seed's stream for ``name``. The returned function is the op itself (one Python frame
    per draw); :mod:`rngstate.ops` gives it its name, signature and docstring.

    >>> import rngstate as rs
    >>> normal = stateful(rs.random.normal, "normal")
    >>> with rs.fork_rng():
    ...     rs.manual_seed(3)
    ...     x = normal((2,))
    ...     rs.default_generator()
    Generator(seed=3, offset=1)
    """
    refused, instead = f"rngstate.ops.{name}", f"rngstate.random.{name}(gen, ...)"

    def stateful_op(*args: Any, seed: int | None = None, **kwargs: Any) -> Any:
        global _default
        if not _is_eager():
            raise _refusal(refused, instead)
        if seed is None:
            with _lock:
                values, _default = op(_as_generator(_default), *args, **kwargs)
            return values
        stream = (_u64.to_int(seed, "seed", allow_negative=False), name)
        with _lock:
            slot = _streams.get(stream)
            if slot is None:
                slot = (stream_seed(_global_seed or 0, stream[0], name), 0)
            values, _streams[stream] = op(_as_generator(slot), *args, **kwargs)
        return values

    return stateful_op


# -- the default generator (PyTorch / MindSpore module functions) ------------------------


def manual_seed(seed: int) -> None:
    """Put the default generator at ``(seed, 0)``; op-seed streams and the global seed stay.

    ``seed`` is an integer in ``[-2**63, 2**64)``; negatives wrap mod 2**64 (PyTorch's rule).

    >>> import rngstate as rs
    >>> with rs.fork_rng():
    ...     rs.manual_seed(-1)
    ...     rs.default_generator()
    Generator(seed=18446744073709551615, offset=0)
    """
    global _default
    require_eager("rngstate.manual_seed")
    value = _u64.to_int(seed, "seed", allow_negative=True)
    with _lock:
        _default = (value, 0)


def seed() -> int:
    """Reseed the default generator from OS entropy (offset 0) and return the new seed.

    >>> import rngstate as rs
    >>> with rs.fork_rng():
    ...     s = rs.seed()
    ...     s == rs.initial_seed()
    True
    """
    global _default
    require_eager("rngstate.seed")
    value = secrets.randbits(64)
    with _lock:
        _default = (value, 0)
    return value


def initial_seed(*, signed: bool = False) -> int:
    """The default generator's seed, an int in ``[0, 2**64)`` (PyTorch's reading).

    ``signed=True`` gives the same 64 bits as an int64 in ``[-2**63, 2**63)``, MindSpore's
    reading. Refused inside a JAX transformation, where the value would be baked in.

    >>> import rngstate as rs
    >>> with rs.fork_rng():
    ...     rs.manual_seed(-7)
    ...     rs.initial_seed(), rs.initial_seed(signed=True)
    (18446744073709551609, -7)
    """
    require_eager("rngstate.initial_seed")
    with _lock:
        number = _slot_ints(_default)[0]
    return _u64.as_signed(number) if signed else number


def default_generator() -> Generator:
    """The default generator's current state, as an immutable :class:`Generator`.

    Drawing from the returned value does not move the default generator; it is a snapshot.

    >>> import rngstate as rs
    >>> with rs.fork_rng():
    ...     rs.manual_seed(1)
    ...     _ = rs.ops.bits(())
    ...     rs.default_generator()
    Generator(seed=1, offset=1)
    """
    global _default
    require_eager("rngstate.default_generator")
    with _lock:
        _default = _as_generator(_default)
        return _default


def get_rng_state() -> jax.Array:
    """The default generator's state as ``uint8[16]``: seed, then offset, little-endian u64.

    The layout of :meth:`Generator.get_state`, MindSpore 2.x and a PyTorch CUDA generator.

    >>> import rngstate as rs
    >>> with rs.fork_rng():
    ...     rs.manual_seed(2)
    ...     rs.get_rng_state().tolist()
    [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    """
    require_eager("rngstate.get_rng_state")
    return default_generator().get_state()


def set_rng_state(state: Any) -> None:
    """Load the default generator from ``uint8[16]`` bytes or a ``(seed, offset)`` pair.

    The bytes are those of :func:`get_rng_state`; the pair is MindSpore 1.x style.

    >>> import rngstate as rs
    >>> with rs.fork_rng():
    ...     rs.set_rng_state((5, 9))
    ...     rs.default_generator()
    Generator(seed=5, offset=9)
    """
    global _default
    require_eager("rngstate.set_rng_state")
    gen = Generator().set_state(state)
    if gen.batch_shape:
        raise ValueError(f"state must hold one generator (uint8[16]), got batch {gen.batch_shape}")
    with _lock:
        _default = gen


@contextlib.contextmanager
def fork_rng(enabled: bool = True) -> Iterator[None]:
    """Run a block with the whole random state restored on exit, also on an exception.

    Everything :func:`capture` holds comes back: the default generator, the op-seed streams,
    the global seed, NumPy's and Python's global generators. ``enabled=False`` does nothing
    (PyTorch's switch). Draws made by other threads during the block are undone too.

    >>> import rngstate as rs
    >>> before = rs.initial_seed()
    >>> with rs.fork_rng():
    ...     rs.set_seed(1)
    >>> rs.initial_seed() == before
    True
    """
    if not enabled:
        yield
        return
    snapshot = capture()
    try:
        yield
    finally:
        restore(snapshot)


# -- the global seed (MindSpore / TensorFlow) --------------------------------------------


def _seed_numpy(value: int) -> None:
    # np.random.seed takes 32 bits at most. Below 2**32 the seed goes in as it is, so a
    # 32-bit seed gives what np.random.seed(seed) gives; wider seeds go in as both 32-bit
    # words (low first) through init_by_array, which keeps 2**40 + 5 apart from 5.
    if value <= _MASK32:
        np.random.seed(value)
    else:
        np.random.seed(np.array([value & _MASK32, value >> 32], dtype=np.uint32))


def set_seed(seed: int | None) -> None:
    """Set the global seed: seeds everything random in the process, so every run replays.

    ``set_seed(None)`` unsets it, as ``tf.random.set_seed(None)`` does: :func:`get_seed` is
    ``None`` again, the default generator gets a fresh seed from OS entropy (as at import),
    op-seed streams start over keyed by global seed 0, and NumPy's and Python's global
    generators are reseeded from OS entropy.

    The default generator goes to ``(seed, 0)``, every op-seed stream starts over (its
    counter and its key, which depends on the global seed), Python's ``random`` is seeded
    with ``seed``, and NumPy's global ``np.random`` with ``seed`` when it fits in 32 bits,
    or else with the word array ``[seed & 0xffffffff, seed >> 32]`` (64-bit seeds that
    share low bits stay distinct).

    ``seed`` must be an integer in ``[0, 2**64)`` or ``None``: others raise ``TypeError``
    (not an integer) or ``ValueError`` (out of range).

    >>> import numpy as np, rngstate as rs
    >>> with rs.fork_rng():
    ...     rs.set_seed(2**40 + 5)
    ...     rs.get_seed(), rs.default_generator()
    (1099511627781, Generator(seed=1099511627781, offset=0))
    """
    global _default, _global_seed
    require_eager("rngstate.set_seed")
    if seed is None:
        with _lock:
            _global_seed = None
            _default = (secrets.randbits(64), 0)
            _streams.clear()
            py_random.seed(None)
            np.random.seed(None)
        return
    value = _u64.to_int(seed, "seed", allow_negative=False)
    with _lock:
        _global_seed = value
        _default = (value, 0)
        _streams.clear()
        py_random.seed(value)
        _seed_numpy(value)


def get_seed() -> int | None:
    """The global seed set by :func:`set_seed`, or ``None`` when none was set.

    >>> import rngstate as rs
    >>> with rs.fork_rng():
    ...     rs.set_seed(3)
    ...     rs.get_seed()
    3
    """
    require_eager("rngstate.get_seed")
    with _lock:
        return _global_seed


# -- the whole random state as one value -------------------------------------------------


def _words(value: int) -> np.ndarray:
    return np.array([value >> 32, value & _MASK32], dtype=np.uint32)


def _word_table(values: list[int]) -> np.ndarray:
    return np.array([[v >> 32, v & _MASK32] for v in values], dtype=np.uint32).reshape(-1, 2)


def capture() -> dict[str, Any]:
    """Everything random in the process as one value, for :func:`restore` or a checkpoint.

    A pytree of NumPy arrays and plain data (ints, floats, bools, strings, tuples, dicts).
    64-bit numbers are ``uint32[2]`` words ``[high, low]``, like a Generator's leaves::

        format_version     int (SNAPSHOT_VERSION)
        default_generator  {"seed": u32[2], "offset": u32[2]}
        global_seed        {"is_set": bool, "value": u32[2]}
        op_streams         {"op": tuple[str], "op_seed", "seed", "offset": u32[n, 2]}
        numpy              {"algorithm": str, "key": u32[624], "pos": int,
                            "has_gauss": int, "cached_gaussian": float}
        python_random      {"version": int, "state": u32[625],
                            "has_gauss_next": bool, "gauss_next": float}

    >>> import rngstate as rs
    >>> snapshot = rs.capture()
    >>> a = rs.ops.normal((3,))
    >>> rs.restore(snapshot)
    >>> bool((rs.ops.normal((3,)) == a).all())
    True
    """
    require_eager("rngstate.capture", "gen.get_state()")
    with _lock:
        default_seed, default_offset = _slot_ints(_default)
        streams = sorted((key, _slot_ints(slot)) for key, slot in _streams.items())
        algorithm, key, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
        version, mt_state, gauss_next = py_random.getstate()
        global_seed = _global_seed
    return {
        "format_version": SNAPSHOT_VERSION,
        "default_generator": {"seed": _words(default_seed), "offset": _words(default_offset)},
        "global_seed": {"is_set": global_seed is not None, "value": _words(global_seed or 0)},
        "op_streams": {
            "op": tuple(name for (_, name), _ in streams),
            "op_seed": _word_table([op_seed for (op_seed, _), _ in streams]),
            "seed": _word_table([s for _, (s, _) in streams]),
            "offset": _word_table([o for _, (_, o) in streams]),
        },
        "numpy": {
            "algorithm": str(algorithm),
            "key": np.array(key, dtype=np.uint32),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python_random": {
            "version": int(version),
            "state": np.array(mt_state, dtype=np.uint32),
            "has_gauss_next": gauss_next is not None,
            "gauss_next": float(gauss_next or 0.0),
        },
    }


def _read_words(value: Any, what: str, rows: int | None = None) -> list[int]:
    words = np.asarray(value)
    shape = (2,) if rows is None else (rows, 2)
    if words.shape != shape or not np.issubdtype(words.dtype, np.integer):
        raise ValueError(
            f"snapshot {what} must be integer words of shape {shape}, "
            f"got {words.dtype}{list(words.shape)}"
        )
    return [_u64.from_words(w) for w in words.reshape(-1, 2)]


def restore(snapshot: dict[str, Any]) -> None:
    """Put the whole random state back from a :func:`capture` snapshot.

    Afterwards the process draws exactly what it drew after the capture: from the default
    generator, from every op-seed stream, from ``np.random`` and from ``random``. A snapshot
    of another format version, or with parts missing or misshapen, raises ``ValueError``.

    >>> import random, rngstate as rs
    >>> snapshot = rs.capture()
    >>> a = random.random()
    >>> rs.restore(snapshot)
    >>> random.random() == a
    True
    """
    global _default, _global_seed
    require_eager("rngstate.restore", "gen.set_state(state)")
    try:
        version = snapshot["format_version"]
        if version != SNAPSHOT_VERSION:
            raise ValueError(
                f"snapshot format_version {version!r} is not supported; "
                f"this rngstate reads version {SNAPSHOT_VERSION}"
            )
        default_seed, default_offset = (
            _read_words(snapshot["default_generator"][k], k)[0] for k in ("seed", "offset")
        )
        global_part = snapshot["global_seed"]
        global_seed = _read_words(global_part["value"], "global seed")[0]
        streams_part = snapshot["op_streams"]
        names = tuple(str(name) for name in streams_part["op"])
        columns = [
            _read_words(streams_part[k], k, len(names)) for k in ("op_seed", "seed", "offset")
        ]
        numpy_part = snapshot["numpy"]
        numpy_state = (
            str(numpy_part["algorithm"]),
            np.asarray(numpy_part["key"], dtype=np.uint32),
            int(numpy_part["pos"]),
            int(numpy_part["has_gauss"]),
            float(numpy_part["cached_gaussian"]),
        )
        python_part = snapshot["python_random"]
        python_state = (
            int(python_part["version"]),
            tuple(int(w) for w in np.asarray(python_part["state"]).reshape(-1)),
            float(python_part["gauss_next"]) if python_part["has_gauss_next"] else None,
        )
        # Load both into throwaway generators first: a bad part fails before anything changes.
        np.random.RandomState().set_state(numpy_state)
        py_random.Random().setstate(python_state)
    except (KeyError, TypeError) as error:
        raise ValueError(f"not an rngstate.capture() snapshot: missing or bad {error}") from None
    with _lock:
        np.random.set_state(numpy_state)
        py_random.setstate(python_state)
        _default = (default_seed, default_offset)
        _global_seed = global_seed if global_part["is_set"] else None
        _streams.clear()
        for name, op_seed, seed_value, offset in zip(names, *columns, strict=True):
            _streams[(op_seed, name)] = (seed_value, offset)
