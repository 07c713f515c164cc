"""Catch generator reuse: two random operations drawing from the same ``(seed, offset)``.

Every op derives one key from ``(seed, offset)``; calling two ops on the same generator
gives them the same key, so their numbers are the same (or correlated). JAX's own key-reuse
checker cannot see this: each op derives a fresh key object. Two checkers can:

* :func:`check_reuse` (traced): wraps a function; each call first traces it (nothing is
  computed for the verdict), follows every generator through the jaxpr, and raises
  :class:`GeneratorReuseError` if two ops can consume the same state, naming both ops and
  their source lines; if none can, it calls the function.
* :func:`reuse_checking` (eager): inside the block, every draw records the state it
  consumed, and a second draw of one state raises. Draws inside compiled code (``jit``,
  ``nnx.jit``, ``eqx.filter_jit``) record theirs as they run, through a callback compiled in
  only while checking is on, so a jitted step called from a Python loop is checked on every
  call. ``RNGSTATE_CHECK_REUSE=1`` in the environment turns it on for the whole process.
  Off, it costs one flag test per draw.

>>> import rngstate as rs
>>> def twice(g):
...     x, _ = g.normal((2,))
...     y, _ = g.normal((2,))  # the same g: y == x
...     return x + y
>>> try:
...     rs.check_reuse(twice)(rs.Generator(0))
... except rs.GeneratorReuseError as e:
...     print(str(e).splitlines()[0])
two random operations consume the same generator state (seed, offset):
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import logging
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from rngstate import _jax_compat

__all__ = ["GeneratorReuseError", "check_reuse", "reuse_checking"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_THIS_FILE = os.path.abspath(__file__)

_FIX = (
    "Each (seed, offset) gives one key, and two draws from it give the same numbers. Use the "
    "generator each op returns (`x, gen = gen.normal(...)`), or make independent generators "
    "with `gen.spawn(n)` or `gen.stream(name)`."
)


class GeneratorReuseError(ValueError):
    """Two random operations consumed, or can consume, the same generator state.

    ``first`` and ``second`` describe the two operations (op name and source line).

    >>> issubclass(GeneratorReuseError, ValueError)
    True
    """

    def __init__(self, message: str, first: str = "", second: str = "") -> None:
        super().__init__(message)
        self.first = first
        self.second = second


# -- where an operation was called -----------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _is_library_file(path: str) -> bool:
    return path.startswith(_PACKAGE_DIR) or not _jax_compat.is_user_filename(path)


def _short(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith("..") else relative


# Names of rngstate's own call frames that say nothing about which op ran.
_GENERIC = frozenset({"op", "method", "derive_key", "fast"})


def _op_name_from(functions: list[tuple[str, str]]) -> str | None:
    """The op among rngstate's frames, innermost first: the outermost public, specific name."""
    name = None
    for path, function in functions:
        if not path.startswith(_PACKAGE_DIR):
            break
        short = function.rsplit(".", 1)[-1]
        if not short.startswith("_") and short not in _GENERIC:
            name = short
    return name


# -- the eager check -------------------------------------------------------------------------

_eager_active = os.environ.get("RNGSTATE_CHECK_REUSE", "") not in ("", "0")
"""True while draws are recorded; the one flag the draw path tests (free when off)."""

_env_on = _eager_active
_depth = 0
_lock = threading.Lock()
_FACADE_FILE = os.path.join(_PACKAGE_DIR, "facade.py")


@dataclasses.dataclass(frozen=True)
class _Call:
    """Who drew, kept raw: formatting a path on every draw would cost more than the draw."""

    op: str
    path: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.op} at {_short(self.path)}:{self.line} (in {self.function})"


_consumed: dict[tuple[bytes, bytes, tuple[int, ...]], _Call] = {}


def _eager_caller(name: str) -> _Call | None:
    """The user's call behind this draw, or None for a draw of the process-wide state."""
    frame = sys._getframe(2)
    functions = []
    while frame is not None and _is_library_file(frame.f_code.co_filename):
        if frame.f_code.co_filename == _FACADE_FILE:
            return None
        functions.append((frame.f_code.co_filename, frame.f_code.co_name))
        frame = frame.f_back
    op = _op_name_from(functions) or name  # an initializer's own name, not its sampler's
    if frame is None:
        return _Call(op, "<unknown>", 0, "?")
    return _Call(op, frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


def record(name: str, gen: Any) -> None:
    """Record that op ``name`` consumed ``gen``'s state; raise if it was consumed before.

    Called by every draw while :func:`reuse_checking` is on. A draw being traced (jit,
    vmap, scan) compiles in a callback that records the state it consumes each time the
    program runs; draws of the process-wide state (``rngstate.ops``) are not recorded: that
    state only repeats when it is rewound on purpose (``set_seed``, ``restore``, ``fork_rng``).

    >>> import rngstate as rs
    >>> with reuse_checking():
    ...     record("normal", rs.Generator(3))
    ...     try:
    ...         record("uniform", rs.Generator(3))
    ...     except GeneratorReuseError as e:
    ...         print(str(e).splitlines()[1].split(" at ")[0].strip())
    uniform draws from Generator(seed=3, offset=0)
    """
    seed, offset = gen.seed, gen.offset
    here = _eager_caller(name)
    if here is None:
        return
    if isinstance(seed, jax.core.Tracer) or isinstance(offset, jax.core.Tracer):
        _record_at_run_time(here, seed, offset)
        return
    _consume(here, np.asarray(seed), np.asarray(offset))


def _consume(here: _Call, seed: np.ndarray, offset: np.ndarray, compiled: bool = False) -> None:
    """Record that ``here`` consumed ``(seed, offset)``; raise if it was consumed before.

    ``compiled``: the draw ran inside compiled code, where the same traced draw may run twice
    in one call (the recomputation of a ``jax.checkpoint`` block under ``grad``): one repeat
    of one state by the very same traced draw is let pass.
    """
    state = (seed.tobytes(), offset.tobytes(), seed.shape)
    with _lock:
        first = _consumed.get(state)
        if first is None:
            _consumed[state] = here
            return
        if compiled and first is here and state not in _repeated:
            _repeated.add(state)
            return
    from rngstate.generator import Generator  # reuse is imported by generator

    gen = Generator.from_words(seed, offset)
    note = (
        ", inside compiled code,\n  which the same draw made earlier (in an earlier call of "
        "the compiled function): " + _COMPILED_FIX + "\n"
        if first is here
        else f",\n  which {first} already drew from.\n"
    )
    raise GeneratorReuseError(
        "a generator state is drawn from twice:\n"
        f"  {here.op} draws from {gen!r} at {str(here).split(' at ', 1)[1]}" + note + _FIX,
        first=str(first),
        second=str(here),
    )


# -- draws inside compiled code, checked as they run ------------------------------------------

_COMPILED_FIX = (
    "the function does not carry out the generator the op returned, so every call draws "
    "the same numbers. Store it (`noise, self.gen = self.gen.normal(...)` in an nnx.Module "
    "under nnx.jit) or return it from the jitted step and pass that one to the next call."
)

_repeated: set[tuple[bytes, bytes, tuple[int, ...]]] = set()
_pending: list[GeneratorReuseError] = []  # a reuse found inside compiled code, not yet raised


def _inside(*files: str) -> bool:
    """Whether the trace now running is inside a call made from one of JAX's ``files``."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.endswith(files):
            return True
        frame = frame.f_back
    return False


_REMAT_FILES = (os.path.join("jax", "_src", "ad_checkpoint.py"),)
_PER_DEVICE_FILES = (
    os.path.join("jax", "_src", "shard_map.py"),
    os.path.join("jax", "experimental", "shard_map.py"),
    os.path.join("jax", "_src", "interpreters", "pxla.py"),
)


def _record_at_run_time(here: _Call, seed: Any, offset: Any) -> None:
    """Compile into the trace a callback that records the state the draw consumes at run time.

    Only while checking is on (:func:`reuse_checking` retraces what was compiled before it),
    so a jitted step called from a Python loop is checked on every call: a step that does
    not carry out its advanced generator draws the same state again, which the eager table
    sees. Left out inside ``shard_map``/``pmap``, where each device runs the callback with
    the same replicated state (the traced check covers those).
    """
    global _callbacks_compiled
    if _inside(*_PER_DEVICE_FILES):
        return
    callback = functools.partial(_run_time_draw, here, _inside(*_REMAT_FILES))
    jax.debug.callback(callback, seed, offset)
    _callbacks_compiled = True


# JAX's compilation caches are cleared only when a program may lack, or keep, the callbacks:
# a block around eager draws alone costs no recompilation.
_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
_trace_events_seen = False  # False: the event is not reported here, so assume every trace
_traced_unchecked = True  # a program may have been traced while checking was off
_callbacks_compiled = False  # a program with run-time records was traced


def _note_trace(event: str, duration: float, **kwargs: Any) -> None:
    global _trace_events_seen, _traced_unchecked
    if event == _TRACE_EVENT:
        _trace_events_seen = True
        if not _eager_active:
            _traced_unchecked = True


jax.monitoring.register_event_duration_secs_listener(_note_trace)


def _forget_programs_without_callbacks() -> None:
    """Entering checking: programs traced before record nothing at run time; retrace them."""
    global _traced_unchecked
    if _traced_unchecked or not _trace_events_seen:
        jax.clear_caches()
        _traced_unchecked = False


def _forget_programs_with_callbacks() -> None:
    """Leaving checking: no program keeps a callback (a host call per draw) afterwards."""
    global _callbacks_compiled
    if _callbacks_compiled:
        jax.clear_caches()
        _callbacks_compiled = False


def _run_time_draw(here: _Call, remat: bool, seed: Any, offset: Any) -> None:
    if not _eager_active:  # compiled while checking was on, run after it ended
        return
    try:
        _consume(here, np.asarray(seed), np.asarray(offset), compiled=remat)
    except GeneratorReuseError as error:
        with _lock:
            _pending.append(error)
        raise  # stops the program; reuse_checking re-raises it as itself


def _not_a_reported_reuse(record: logging.LogRecord) -> bool:
    """JAX logs each failed callback with its traceback; a reuse is raised in full anyway."""
    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, GeneratorReuseError)


logging.getLogger(_jax_compat.DEBUG_CALLBACK_LOGGER).addFilter(_not_a_reported_reuse)


def _raise_pending(cause: BaseException | None = None) -> None:
    with _lock:
        error = _pending[0] if _pending else None
        _pending.clear()
    if error is not None:
        raise error from cause


@contextlib.contextmanager
def reuse_checking() -> Iterator[None]:
    """Check eager draws for reuse inside the block: a second draw of a state raises.

    Every op, initializer, ``dropout`` and ``spawn`` called eagerly records the
    ``(seed, offset)`` it consumed (one small entry per draw, kept until the outermost block
    ends). A draw of a recorded state raises :class:`GeneratorReuseError` naming the op, the
    line that called it, and the op and line that drew from that state first.

    Draws inside compiled code are checked as they run: while checking is on, each traced
    draw compiles in a ``jax.debug.callback`` that records the ``(seed, offset)`` it consumes
    at run time. So a jitted step (``jax.jit``, ``nnx.jit``, ``eqx.filter_jit``) that does not
    carry out the advanced generator is caught on its second call from a Python loop. To
    make that so, entering the outermost block clears JAX's compilation caches
    (``jax.clear_caches()``) when something was compiled since checking was last on, so
    programs compiled before are traced again with the callbacks; leaving it clears them
    when a program with callbacks was compiled inside, so none keeps them afterwards. A
    block around eager draws alone recompiles nothing. A ``jax.checkpoint`` block under ``grad``
    runs its draws twice per call (forward and recomputation), so there one repeat of a state by
    the same draw is let pass (a step that forgets its generator is caught on its second call
    under ``grad``, on its third without). Draws inside ``shard_map``/``pmap`` are not recorded
    at run time (each device would report the same replicated state):
    :func:`check_reuse` covers them.
    ``RNGSTATE_CHECK_REUSE=1`` in the environment checks the whole process (a reuse found in
    compiled code then surfaces as the ``JaxRuntimeError`` of the failed callback, which
    holds the message).

    >>> import rngstate as rs
    >>> g = rs.Generator(0)
    >>> with rs.reuse_checking():
    ...     x, g1 = g.normal((2,))
    ...     try:
    ...         y, _ = g.uniform((2,))
    ...     except rs.GeneratorReuseError as e:
    ...         print(type(e).__name__)
    GeneratorReuseError
    """
    global _eager_active, _depth
    with _lock:
        outermost = _depth == 0 and not _env_on
        if outermost:
            _consumed.clear()
            _repeated.clear()
            _pending.clear()
        _depth += 1
        _eager_active = True
    if outermost:
        _forget_programs_without_callbacks()
    try:
        yield
        jax.effects_barrier()  # the callbacks of programs still running have recorded
    except Exception as error:
        _raise_pending(error)  # a reuse found in compiled code, raised as itself
        raise
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and not _env_on:
                _eager_active = False
                _consumed.clear()
                _repeated.clear()
        if outermost:
            _forget_programs_with_callbacks()
    _raise_pending()


# -- the traced check: abstract values -------------------------------------------------------


class _Token:
    """An unknown value with an identity: two uses of one token are the same value."""

    __slots__ = ("hint",)

    def __init__(self, hint: str = "") -> None:
        self.hint = hint

    def __repr__(self) -> str:
        return f"<{self.hint or 'value'} {id(self):x}>"


@dataclasses.dataclass(frozen=True)
class _Const:
    """A value known at trace time (a small integer array)."""

    value: np.ndarray = dataclasses.field(compare=False, hash=False)
    key: tuple = ()

    @staticmethod
    def of(value: Any) -> _Const:
        array = np.asarray(value)
        return _Const(array, (array.dtype.str, array.shape, array.tobytes()))


@dataclasses.dataclass(frozen=True)
class _Ref:
    """``base + k``: an unknown value ``base`` (a token or a derived expression) plus ``k``.

    Offsets move by :func:`rngstate._u64.add` of a known step, which adds to ``k``; any other
    value keeps ``k = 0``.
    """

    base: Any
    k: int = 0


@dataclasses.dataclass(frozen=True)
class _Join:
    """A value after a ``cond``/``switch`` whose branches return different values: the value
    of branch ``b`` is ``alts[b]``. A draw from it is one draw per branch, each counted as
    sitting in that branch (``uid``, in the iterations of ``loops``), so that it collides
    with the draws of its own branch and not with those of another (see :func:`_exclusive`).
    """

    uid: int
    loops: tuple[int, ...]
    alts: tuple[Any, ...]


_MAX_ALTERNATIVES = 64  # joins of joins multiply: past this a value is left unknown


def _alternatives(av: Any) -> list[tuple[tuple, Any]]:
    """Each plain value a (possibly nested) join can be, with the branches that give it.

    >>> _alternatives(_Join(7, (), (_Ref("a", 1), _Ref("a", 2))))
    [(((7, 0, ()),), _Ref(base='a', k=1)), (((7, 1, ()),), _Ref(base='a', k=2))]
    """
    if not isinstance(av, _Join):
        return [((), av)]
    return [
        (((av.uid, b, av.loops), *path), leaf)
        for b, alt in enumerate(av.alts)
        for path, leaf in _alternatives(alt)
    ]


_U64 = 2**64
_CONST_BASE = "const"


def _fresh(hint: str = "") -> _Ref:
    return _Ref(_Token(hint))


def _identity(av: Any) -> tuple:
    """A hashable identity: equal identities mean equal values."""
    if isinstance(av, _Const):
        return ("c", av.key)
    if isinstance(av, _Join):
        return ("j", av.uid, av.loops, tuple(_identity(a) for a in av.alts))
    return ("r", av.base, av.k)


def _offset_point(av: Any) -> tuple[Any, int]:
    """An offset as (base, k): known single offsets share one base and differ in k."""
    if isinstance(av, _Const):
        if av.value.shape == (2,) and av.value.dtype == np.uint32:
            high, low = (int(w) for w in av.value)
            return _CONST_BASE, (high << 32) | low
        return ("c", av.key), 0
    return av.base, av.k


def _as_u64_step(av: Any) -> int | None:
    if isinstance(av, _Const) and av.value.shape == (2,) and av.value.dtype == np.uint32:
        return _offset_point(av)[1]
    return None


def _u64_add_const(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64 = (a[..., 0].astype(np.uint64) << np.uint64(32)) | a[..., 1].astype(np.uint64)
    b64 = (b[..., 0].astype(np.uint64) << np.uint64(32)) | b[..., 1].astype(np.uint64)
    with np.errstate(over="ignore"):
        s = a64 + b64
    return np.stack([(s >> np.uint64(32)).astype(np.uint32), s.astype(np.uint32)], axis=-1)


# -- the traced check: what was consumed ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Loop:
    uid: int
    count: int | None  # None: not known at trace time (while_loop)
    kind: str
    where: str


@dataclasses.dataclass
class _Use:
    """One consumption: offsets ``start + sum(i_l * stride_l)`` over the enclosing loops."""

    seed: tuple
    base: Any
    start: int
    dims: tuple[tuple[int, _Loop], ...]  # (stride, loop), innermost first
    path: tuple[tuple[int, int, tuple[int, ...]], ...]  # (cond uid, branch, enclosing loops)
    op: str
    where: str


@dataclasses.dataclass(frozen=True)
class _Context:
    path: tuple = ()
    loops: tuple[int, ...] = ()
    where: str | None = None  # set inside rngstate's own calls: the user's call site
    op: str | None = None
    recompute: bool = False  # inside the recomputation of a rematerialised block


def _frames(eqn: Any) -> list[tuple[str, str, int]]:
    tb = eqn.source_info.traceback
    if tb is None:
        return []
    return [(f.file_name, f.function_name, f.line_num) for f in tb.frames]


def _user_site(frames: list[tuple[str, str, int]]) -> tuple[str, str | None, bool]:
    """(where, op name, made by rngstate): the user's line and rngstate's op in between."""
    functions = []
    for path, function, line in frames:
        if path == _THIS_FILE:  # the checker's own wrapper around the user's function
            continue
        if not _is_library_file(path):
            where = f"{_short(path)}:{line} (in {function.rsplit('.', 1)[-1]})"
            return where, _op_name_from(functions), bool(functions)
        if path.startswith(_PACKAGE_DIR) or functions:
            functions.append((path, function))
    return "<unknown>", _op_name_from(functions), bool(functions)


def _sampler_name(jaxpr: Any, sample: str, own_calls: frozenset[str]) -> str | None:
    """The sampler inside a `_sample_and_advance` call: the frame that call made."""
    from rngstate import random as dispatch

    samplers = dispatch.JAX_SAMPLERS
    for eqn in jaxpr.eqns:
        if eqn.params.get("name") in own_calls:
            continue
        frames = [(path, function.rsplit(".", 1)[-1]) for path, function, _ in _frames(eqn)]
        names = [name for _, name in frames]
        if sample not in names:
            continue
        # Frames are innermost first: the ones before the call are what it called. The
        # sampler is the first public function inside it, rngstate's or jax.random's.
        for path, name in reversed(frames[: names.index(sample)]):
            if path == dispatch.__file__:
                continue  # the dispatch's own plumbing (rebuilding the arguments) is no op
            if path.startswith(_PACKAGE_DIR):
                if not name.startswith("_") and name not in _GENERIC:
                    return name.removesuffix("_sampler")
            elif name in samplers:
                return name
            else:
                break
    return None


_MAX_CONST_SIZE = 4096
_MAX_COMBOS = 4096


class _Analysis:
    def __init__(self) -> None:
        from rngstate import _u64
        from rngstate import generator as generator_module
        from rngstate import random as random_module

        self.derive = generator_module.DERIVE_KEY_CALL
        self.add = _u64.ADD_CALL
        self.stream = generator_module._stream_seed.__name__
        self.own_calls = frozenset({self.derive, self.add})
        self.sample = random_module._sample_and_advance.__name__  # the call behind every op
        self.uses: list[_Use] = []
        self.uid = itertools.count()

    # -- walking jaxprs ----------------------------------------------------------------------

    def run(self, jaxpr: Any, consts: Any, args: list[Any], ctx: _Context) -> list[Any]:
        env: dict[Any, Any] = {}

        def read(v: Any) -> Any:
            if type(v).__name__ == "Literal":
                return self.constant(v.val)
            return env[v] if v in env else _fresh()

        for var, value in zip(jaxpr.constvars, consts, strict=True):
            env[var] = self.constant(value)
        for var, av in zip(jaxpr.invars, args, strict=True):
            env[var] = av
        used = {
            id(v) for v in itertools.chain(jaxpr.outvars, *(e.invars for e in jaxpr.eqns))
        }
        for eqn in jaxpr.eqns:
            if eqn.params.get("name") == self.derive and not any(
                id(v) in used for v in eqn.outvars
            ):
                for v in eqn.outvars:  # a key made and never used draws nothing
                    env[v] = _fresh("key")
                continue
            outs = self.eqn(eqn, [read(v) for v in eqn.invars], ctx)
            for var, av in zip(eqn.outvars, outs, strict=True):
                env[var] = av
        return [read(v) for v in jaxpr.outvars]

    def constant(self, value: Any) -> Any:
        if isinstance(value, jax.core.Tracer):
            return _fresh()
        try:
            array = np.asarray(value)
        except Exception:  # typed keys and other values with no plain array form
            return _fresh()
        if array.dtype.kind in "iub" and array.size <= _MAX_CONST_SIZE:
            return _Const.of(array)
        return _fresh()

    def closed(self, closed_jaxpr: Any, args: list[Any], ctx: _Context) -> list[Any]:
        if hasattr(closed_jaxpr, "consts"):
            return self.run(closed_jaxpr.jaxpr, closed_jaxpr.consts, args, ctx)
        return self.run(closed_jaxpr, [], args, ctx)

    def eqn(self, eqn: Any, ins: list[Any], ctx: _Context) -> list[Any]:
        name = eqn.primitive.name
        params = eqn.params
        call_name = params.get("name")
        if name in ("pjit", "jit"):
            if call_name == self.derive:
                return self.derive_call(eqn, ins, ctx)
            if call_name == self.add:
                if len(ins) == 2 and len(eqn.outvars) == 1:
                    return [self.add_offsets(ins[0], ins[1])]
                return self.split_add(eqn, ins, ctx)
            if call_name == self.stream and not all(isinstance(a, _Const) for a in ins):
                return [_Ref(("stream", *(_identity(a) for a in ins)))]
            return self.closed(params["jaxpr"], ins, self.enter(eqn, ctx))
        if name == "scan":
            return self.scan(eqn, ins, ctx)
        if name == "while":
            return self.while_loop(eqn, ins, ctx)
        if name == "cond":
            return self.cond(eqn, ins, ctx)
        if name in ("checkpoint", "remat", "remat2"):
            inner = self.enter(eqn, ctx)
            if params.get("differentiated"):
                inner = dataclasses.replace(inner, recompute=True)
            return self.closed(params["jaxpr"], ins, inner)
        if name in ("custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr"):
            sub = params.get("call_jaxpr") or params.get("fun_jaxpr")
            return self.call(sub, eqn, ins, ctx)
        sub = params.get("jaxpr") or params.get("call_jaxpr")
        if sub is not None:  # shard_map, closed_call and other calls: positional in and out
            return self.call(sub, eqn, ins, ctx)
        for value in params.values():  # anything else with jaxprs: look inside, unrelated
            for inner in value if isinstance(value, (tuple, list)) else (value,):
                if hasattr(inner, "eqns") or hasattr(getattr(inner, "jaxpr", None), "eqns"):
                    jaxpr = getattr(inner, "jaxpr", inner)
                    self.closed(inner, [_fresh() for _ in jaxpr.invars], self.enter(eqn, ctx))
        return self.fold(eqn, ins)

    def call(self, sub: Any, eqn: Any, ins: list[Any], ctx: _Context) -> list[Any]:
        jaxpr = getattr(sub, "jaxpr", sub)
        if len(jaxpr.invars) != len(ins):  # inputs not one to one: look inside, unrelated
            self.closed(sub, [_fresh() for _ in jaxpr.invars], self.enter(eqn, ctx))
            return [_fresh() for _ in eqn.outvars]
        outs = self.closed(sub, ins, self.enter(eqn, ctx))
        if len(outs) != len(eqn.outvars):
            return [_fresh() for _ in eqn.outvars]
        return outs

    def fold(self, eqn: Any, ins: list[Any]) -> list[Any]:
        """Evaluate a small integer computation on known values; anything else is unknown."""
        foldable = (
            all(isinstance(a, _Const) for a in ins)
            and not eqn.effects
            and all(_small_integer(v.aval) for v in eqn.outvars)
        )
        if not foldable:
            return [_fresh() for _ in eqn.outvars]
        try:
            with jax.ensure_compile_time_eval():
                outs = eqn.primitive.bind(*(a.value for a in ins), **eqn.params)
        except Exception:  # a primitive that cannot run outside its trace: unknown
            return [_fresh() for _ in eqn.outvars]
        outs = outs if eqn.primitive.multiple_results else [outs]
        return [self.constant(o) for o in outs]

    def add_offsets(self, a: Any, b: Any) -> Any:
        for join, other, first in ((a, b, True), (b, a, False)):
            if isinstance(join, _Join):  # each branch's value moves by the same step
                alts = tuple(
                    self.add_offsets(alt, other) if first else self.add_offsets(other, alt)
                    for alt in join.alts
                )
                return _joined(join.uid, join.loops, alts)
        if isinstance(a, _Const) and isinstance(b, _Const):
            return _Const.of(_u64_add_const(a.value, b.value))
        step = _as_u64_step(b)
        if step is not None and isinstance(a, _Ref):
            return _Ref(a.base, (a.k + step) % _U64)
        step = _as_u64_step(a)
        if step is not None and isinstance(b, _Ref):
            return _Ref(b.base, (b.k + step) % _U64)
        return _fresh("offset")

    def enter(self, eqn: Any, ctx: _Context) -> _Context:
        """The context inside a call: rngstate's own calls keep the user's call site."""
        if ctx.where is not None:
            return ctx
        where, op, ours = _user_site(_frames(eqn))
        if not ours:
            return ctx
        if op is None and eqn.params.get("name") == self.sample:
            op = _sampler_name(eqn.params["jaxpr"].jaxpr, self.sample, self.own_calls)
        return dataclasses.replace(ctx, where=where, op=op)

    def derive_call(self, eqn: Any, ins: list[Any], ctx: _Context) -> list[Any]:
        """A key derivation: one consumption of (seed, offset).

        Under ``grad``, JAX may split the call: the part that depends on the seed alone is
        hoisted out of a loop (its outputs are words, not a key) and the rest takes the
        offset and those words. The words stand for the seed they came from.
        """
        ids = [_identity(a) for a in ins]
        if not any(_is_key(v.aval) for v in eqn.outvars):
            return [_Ref(("part", i, *ids)) for i in range(len(eqn.outvars))]
        if len(ins) == 2:
            self.consume(eqn, ids[0], ins[1], ctx)
        else:
            offsets = [i for i, a in enumerate(ins) if not _is_part(a)]
            if len(offsets) == 1:  # otherwise the offset cannot be told apart: not related
                seed = ("parts", *(ids[i] for i in range(len(ins)) if i != offsets[0]))
                self.consume(eqn, seed, ins[offsets[0]], ctx)
        return [_fresh("key") for _ in eqn.outvars]

    def split_add(self, eqn: Any, ins: list[Any], ctx: _Context) -> list[Any]:
        """An offset addition that JAX split under ``grad`` (see :meth:`derive_call`).

        The part on known values folds to constants; the rest adds what it gives for an
        offset of zero, which is the step.
        """
        closed_jaxpr = eqn.params["jaxpr"]
        unknown = [i for i, a in enumerate(ins) if not isinstance(a, _Const)]
        if not unknown:
            return self.closed(closed_jaxpr, ins, ctx)
        out = eqn.outvars[0].aval
        if len(unknown) == 1 and len(eqn.outvars) == 1 and isinstance(ins[unknown[0]], _Ref):
            zero = np.zeros(eqn.invars[unknown[0]].aval.shape, np.uint32)
            probe = [_Const.of(zero) if i == unknown[0] else a for i, a in enumerate(ins)]
            (step,) = self.closed(closed_jaxpr, probe, ctx)
            if getattr(out, "shape", None) == (2,) and _as_u64_step(step) is not None:
                return [self.add_offsets(ins[unknown[0]], step)]
        return [_fresh("offset") for _ in eqn.outvars]

    def consume(self, eqn: Any, seed: tuple, offset: Any, ctx: _Context) -> None:
        if ctx.recompute:
            return
        where, op = ctx.where, ctx.op
        if where is None:
            where, op, _ = _user_site(_frames(eqn))
        if op is None:
            op = "key"
        for branches, alt in _alternatives(offset):  # after a cond: one use per branch
            base, start = _offset_point(alt)
            self.uses.append(_Use(seed, base, start, (), (*ctx.path, *branches), op, where))

    # -- control flow --------------------------------------------------------------------

    def cond(self, eqn: Any, ins: list[Any], ctx: _Context) -> list[Any]:
        uid = next(self.uid)
        results = []
        for index, branch in enumerate(eqn.params["branches"]):
            inner = dataclasses.replace(ctx, path=(*ctx.path, (uid, index, ctx.loops)))
            results.append(self.closed(branch, ins[1:], inner))
        # An output the branches agree on is known after the cond. A generator's words that
        # differ (one branch drew, another did not) are joined: a draw after the cond can
        # meet a draw of any branch, and is checked against each as if in that branch.
        return [
            outs[0]
            if all(o == outs[0] for o in outs)
            else _joined(uid, ctx.loops, outs)
            if _generator_words(var.aval)
            else _fresh()
            for outs, var in zip(zip(*results, strict=True), eqn.outvars, strict=True)
        ]

    def scan(self, eqn: Any, ins: list[Any], ctx: _Context) -> list[Any]:
        p = eqn.params
        n_consts, n_carry = _jax_compat.scan_layout(p)
        n_xs = len(ins) - n_consts - n_carry
        loop = _Loop(next(self.uid), int(p["length"]), "lax.scan", _user_site(_frames(eqn))[0])
        consts, carry = ins[:n_consts], ins[n_consts : n_consts + n_carry]
        body_ins, tokens = self.loop_inputs(consts, carry, n_xs)
        outs = self.loop_body(p["jaxpr"], body_ins, tokens, consts, carry, loop, ctx)
        return outs[:n_carry] + [_fresh() for _ in outs[n_carry:]]

    def while_loop(self, eqn: Any, ins: list[Any], ctx: _Context) -> list[Any]:
        p = eqn.params
        nc, nb = _jax_compat.while_layout(p)
        cond_consts, body_consts, carry = ins[:nc], ins[nc : nc + nb], ins[nc + nb :]
        loop = _Loop(next(self.uid), None, "lax.while_loop", _user_site(_frames(eqn))[0])
        consts = body_consts + cond_consts
        body_ins, tokens = self.loop_inputs(body_consts, carry, 0)
        inner = dataclasses.replace(ctx, loops=(*ctx.loops, loop.uid))
        start = len(self.uses)
        carry_ins = body_ins[nb:]
        self.closed(p["cond_jaxpr"], [*cond_consts, *carry_ins], inner)
        outs = self.closed(p["body_jaxpr"], body_ins, inner)
        self.lift(start, tokens, consts, carry, outs, loop)
        # After an unknown number of iterations, the carried generators cannot be related.
        return [_fresh() for _ in carry]

    def loop_inputs(self, consts: list[Any], carry: list[Any], n_xs: int):
        tokens = {
            "carry": [_Token("carry") for _ in carry],
            "xs": [_Token("xs") for _ in range(n_xs)],
        }
        body_ins = (
            list(consts)
            + [_Ref(t) for t in tokens["carry"]]
            + [_Ref(t) for t in tokens["xs"]]
        )
        return body_ins, tokens

    def loop_body(self, body, body_ins, tokens, consts, carry, loop, ctx):
        inner = dataclasses.replace(ctx, loops=(*ctx.loops, loop.uid))
        start = len(self.uses)
        outs = self.closed(body, body_ins, inner)
        strides = self.lift(start, tokens, consts, carry, outs[: len(carry)], loop)
        results = []
        for init, stride in zip(carry, strides, strict=True):
            if stride is None:
                results.append(_fresh())
            elif stride == 0:
                results.append(init)
            else:
                results.append(self.add_offsets(init, self.step(stride * loop.count)))
        return results + outs[len(carry) :]

    @staticmethod
    def step(k: int) -> _Const:
        k %= _U64
        return _Const.of(np.array([k >> 32, k & 0xFFFFFFFF], np.uint32))

    def lift(self, start, tokens, consts, carry, carry_out, loop) -> list[int | None]:
        """Rewrite the body's uses in the loop's outer terms; return each carry's stride."""
        strides: list[int | None] = []
        for token, out in zip(tokens["carry"], carry_out, strict=True):
            strides.append(out.k if isinstance(out, _Ref) and out.base is token else None)
        carry_of = {t: i for i, t in enumerate(tokens["carry"])}
        renamed: dict[Any, _Token] = {}
        outside = _tokens_of([*consts, *carry])

        def sub_identity(ident: tuple) -> tuple | None:
            """A value's identity in outer terms, or None if it changes between iterations."""
            if ident[0] == "c":
                return ident
            if ident[0] == "j":
                alts = [sub_identity(i) for i in ident[3]]
                return None if any(a is None for a in alts) else (*ident[:3], tuple(alts))
            if ident[0] == "parts":
                parts = [sub_identity(i) for i in ident[1:]]
                return None if any(p is None for p in parts) else ("parts", *parts)
            _, base, k = ident
            if isinstance(base, _Token) and base in carry_of:
                i = carry_of[base]
                return _identity(carry[i]) if strides[i] == 0 and k == 0 else None
            base = sub_base(base)
            return None if base is None else ("r", base, k)

        def sub_base(base: Any) -> Any:
            if isinstance(base, _Token):
                return base if base in outside else None
            if isinstance(base, tuple) and base[0] in ("stream", "part"):
                head = 2 if base[0] == "part" else 1  # ("part", output index, *identities)
                parts = [sub_identity(i) for i in base[head:]]
                return None if any(p is None for p in parts) else (*base[:head], *parts)
            return base  # a known offset

        lifted: list[_Use] = []
        for use in self.uses[start:]:
            lifted.append(use)
            seed = sub_identity(use.seed)
            if seed is None:
                seed = ("per-iteration", renamed.setdefault(use.seed, _Token("iteration")))
                use.seed, use.dims = seed, ()
                continue
            use.seed = seed
            if isinstance(use.base, _Token) and use.base in carry_of:
                i = carry_of[use.base]
                stride, init = strides[i], carry[i]
                if stride is None:
                    use.base = renamed.setdefault(use.base, _Token("iteration"))
                    use.dims = ()
                    continue
                lifted.pop()  # a carry that entered the loop joined: one use per branch
                for branches, alt in _alternatives(init):
                    base, k = _offset_point(alt)
                    lifted.append(
                        dataclasses.replace(
                            use,
                            base=base,
                            start=(use.start + k) % _U64,
                            dims=(*use.dims, (stride, loop)),
                            path=(*use.path, *branches),
                        )
                    )
            else:
                base = sub_base(use.base)
                if base is None:
                    use.base = renamed.setdefault(use.base, _Token("iteration"))
                    use.dims = ()
                    continue
                use.base = base
                use.dims = (*use.dims, (0, loop))
        self.uses[start:] = lifted
        return strides

    # -- the verdict ---------------------------------------------------------------------

    def findings(self) -> list[tuple[_Use, _Use, str]]:
        """Each reuse: (first use, second use, the loop for a use that repeats itself)."""
        found = []
        groups: dict[tuple, list[_Use]] = {}
        for use in self.uses:
            groups.setdefault((use.seed, use.base), []).append(use)
        for uses in groups.values():
            # Every offset of the group, with the uses (and loop iterations) that consume it.
            at: dict[int, list[tuple[int, dict[int, int]]]] = {}
            for index, use in enumerate(uses):
                for offset, runs in _points(use).items():
                    at.setdefault(offset, []).extend((index, run) for run in runs)
            reported: set[int] = set()
            for consumers in at.values():
                for (i, run_i), (j, run_j) in itertools.combinations(consumers, 2):
                    if i in reported or j in reported:
                        continue
                    if i == j:
                        reported.add(i)
                        found.append((uses[i], uses[i], _repeating_loop(uses[i], run_i, run_j)))
                    elif not _exclusive(uses[i], run_i, uses[j], run_j):
                        reported.update((i, j))
                        first, second = sorted((i, j))
                        found.append((uses[first], uses[second], ""))
        return found


def _joined(uid: int, loops: tuple[int, ...], alts: Any) -> Any:
    """The join of the branches' values, or an unknown one when it would hold too many."""
    join = _Join(uid, loops, tuple(alts))
    if len(_alternatives(join)) > _MAX_ALTERNATIVES:
        return _fresh("offset")
    return join


def _generator_words(aval: Any) -> bool:
    """Whether a value can be a generator's seed or offset: ``uint32[..., 2]``."""
    shape = getattr(aval, "shape", None)
    return getattr(aval, "dtype", None) == np.uint32 and bool(shape) and shape[-1] == 2


def _is_key(aval: Any) -> bool:
    dtype = getattr(aval, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _is_part(av: Any) -> bool:
    return isinstance(av, _Ref) and isinstance(av.base, tuple) and av.base[0] == "part"


def _small_integer(aval: Any) -> bool:
    dtype, shape = getattr(aval, "dtype", None), getattr(aval, "shape", None)
    if dtype is None or shape is None or not isinstance(dtype, np.dtype):  # typed keys too
        return False
    return dtype.kind in "iub" and math.prod(shape) <= _MAX_CONST_SIZE


def _tokens_of(avs: list[Any]) -> set:
    found: set = set()

    def walk(expr: Any) -> None:
        if isinstance(expr, _Token):
            found.add(expr)
        elif isinstance(expr, tuple):
            for e in expr:
                walk(e)

    for av in avs:
        for _, alt in _alternatives(av):
            if isinstance(alt, _Ref):
                walk(alt.base)
    return found


def _counts(use: _Use) -> list[int]:
    counts = [2 if loop.count is None else max(loop.count, 0) for _, loop in use.dims]
    # Keep the enumeration small: a collision between iterations far apart needs offsets
    # that differ by many strides, which the first iterations show as well.
    while counts and np.prod(counts, dtype=float) > _MAX_COMBOS:
        j = int(np.argmax(counts))
        counts[j] = max(2, counts[j] // 2)
    return counts


def _points(use: _Use) -> dict[int, list[dict[int, int]]]:
    """Each offset the use consumes, with the loop iterations (by loop uid) that consume it."""
    counts = _counts(use)
    points: dict[int, list[dict[int, int]]] = {}
    for idx in itertools.product(*(range(c) for c in counts)):
        offset = use.start
        for i, (stride, _) in zip(idx, use.dims, strict=True):
            offset += i * stride
        iterations = {loop.uid: i for i, (_, loop) in zip(idx, use.dims, strict=True)}
        points.setdefault(offset % _U64, []).append(iterations)
    return points


def _exclusive(a: _Use, ia: dict[int, int], b: _Use, ib: dict[int, int]) -> bool:
    """True if the two consumptions sit in different branches of one run of a cond."""
    branches = {(uid, loops): index for uid, index, loops in a.path}
    for uid, index, loops in b.path:
        other = branches.get((uid, loops))
        if other is not None and other != index:
            if all(ia.get(loop) == ib.get(loop) for loop in loops):
                return True
    return False


def _repeating_loop(use: _Use, run_a: dict[int, int], run_b: dict[int, int]) -> str:
    """The loop whose iterations differ between two runs of one use that hit one offset."""
    for _, loop in use.dims:
        if run_a[loop.uid] != run_b[loop.uid]:
            return f"{loop.kind} at {loop.where}"
    raise AssertionError("two runs of one use in the same iterations")


def _message(first: _Use, second: _Use, loop: str) -> str:
    if loop:
        return (
            f"a random operation consumes the same generator state (seed, offset) in more "
            f"than one iteration of a loop:\n  {first.op} at {first.where}, in {loop}\n"
            "The generator it draws from is not advanced from one iteration to the next: "
            "carry the generator through the loop and return the one the op gave back, or "
            "give each iteration its own (`gen.spawn(n)` and scan over the children).\n" + _FIX
        )
    return (
        "two random operations consume the same generator state (seed, offset):\n"
        f"  first:  {first.op} at {first.where}\n"
        f"  second: {second.op} at {second.where}\n" + _FIX
    )


def _split_arguments(args: tuple, kwargs: dict):
    leaves, treedef = jax.tree.flatten((args, kwargs))
    dynamic = [i for i, leaf in enumerate(leaves) if isinstance(leaf, (jax.Array, np.ndarray))]
    return leaves, treedef, dynamic


def _input_value(leaf: Any, seen: dict[int, Any]) -> Any:
    if id(leaf) in seen:
        return seen[id(leaf)]
    av = _fresh("argument")
    if (
        not isinstance(leaf, jax.core.Tracer)
        and leaf.dtype == np.uint32
        and leaf.ndim >= 1
        and leaf.shape[-1] == 2
        and leaf.size <= _MAX_CONST_SIZE
    ):
        av = _Const.of(np.asarray(leaf))  # generators equal by value are the same state
    seen[id(leaf)] = av
    return av


def _check(fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    leaves, treedef, dynamic = _split_arguments(args, kwargs)

    def traced(*values: Any) -> Any:
        filled = list(leaves)
        for i, value in zip(dynamic, values, strict=True):
            filled[i] = value
        call_args, call_kwargs = jax.tree.unflatten(treedef, filled)
        return fn(*call_args, **call_kwargs)

    closed = jax.make_jaxpr(traced)(*(leaves[i] for i in dynamic))
    analysis = _Analysis()
    seen: dict[int, Any] = {}
    inputs = [_input_value(leaves[i], seen) for i in dynamic]
    analysis.closed(closed, inputs, _Context())
    found = analysis.findings()
    if found:
        first, second, loop = found[0]
        raise GeneratorReuseError(
            _message(first, second, loop),
            first=f"{first.op} at {first.where}",
            second=f"{second.op} at {second.where}",
        )


def check_reuse(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with a reuse check: each call traces ``fn``, raises on reuse, then runs it.

    The check follows every generator through the traced program (``jit``, ``scan``,
    ``fori_loop``/``while_loop``, ``cond``/``switch``, ``vmap``, ``grad``, ``checkpoint``,
    ``custom_jvp``/``custom_vjp``, ``shard_map``) and raises :class:`GeneratorReuseError`
    if two random operations (ops, initializers, ``dropout``, ``spawn``, ``key()``) can
    consume the same ``(seed, offset)``, or one op can in two iterations of a loop. The
    message names both operations and the lines that called them. Generators passed in
    equal by value count as the same state. Two branches of one ``cond`` are alternatives,
    not a reuse; a draw after a ``cond`` is checked against each branch's draws, from the
    generator that branch returns. Array arguments are traced; everything else is passed
    as it is.

    Cannot relate, so never reports: a generator rebuilt from arrays computed in the
    program (``Generator(seed=some_array)``, slices of a batch, a loop carry after a
    ``while_loop``), steps computed from a loop's index or ``xs`` (``construct(i % 2)``),
    generators equal only by value at run time, or one generator closed over by a
    ``vmap``ped function (each element then draws the same numbers).

    >>> import jax, rngstate as rs
    >>> @rs.check_reuse
    ... @jax.jit
    ... def step(g):
    ...     x, g = g.normal((2,))
    ...     y, g = g.uniform((2,))
    ...     return x + y, g
    >>> _, g = step(rs.Generator(0))
    >>> g
    Generator(seed=0, offset=2)
    """

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        _check(fn, args, kwargs)
        return fn(*args, **kwargs)

    return checked
