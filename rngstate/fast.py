"""The fast path: ``jax.random``'s values, with the bits hashed in counter mode.

``jax.random`` draws its threefry bits through a primitive that XLA:CPU lowers to a rolled
loop, which keeps it from fusing with anything. Here the same bits come from
:func:`rngstate.threefry.threefry2x32` in plain ``jnp`` ops on an iota counter, so XLA fuses
the hash, the transform to floats and whatever consumes them into one loop.

The values are ``jax.random``'s by construction: the fast sampler of an op is the
``jax.random`` function itself, called with the key re-wrapped as a PRNG implementation that
is threefry in every respect (seed, split, fold_in) except that ``random_bits`` is computed
here. With ``jax_threefry_partitionable`` on (JAX's default), JAX's bits for a shape are
``x0 ^ x1`` of threefry2x32 under the key, with counter ``(hi, lo)`` = the 64-bit flat
row-major index (``x0 << 32 | x1`` for 64-bit words, truncated for 8 and 16 bits). Draws
of 2**32 values or more, or of fewer than 64, use JAX's own bits (see ``_MIN_ELEMENTS``).

Safety net: the first use of each (op, dtype) in a process that would use the fast bits
compares the fast sampler with ``jax.random`` bit for bit on a few thousand values in three
shapes, with the op's parameters as Python numbers and as arrays, and every sampling mode;
on a single differing bit it warns once and the op goes back to ``jax.random`` for the rest
of the process. A passed check is remembered on disk (:mod:`rngstate._checkcache`), so a
later process on the same JAX, backend, CPU and flags skips it. :func:`status` reports where
each stands.
``RNGSTATE_FAST=0`` in the environment, :func:`set_enabled` or :func:`disabled` turn the
fast path off.

>>> import jax, rngstate as rs
>>> g = rs.Generator(seed=3)
>>> x, _ = rs.random.uniform(g, (64,))         # the fast path, verified on first use
>>> bool((x == jax.random.uniform(g.key(), (64,))).all()), status()["uniform[float32]"]
(True, 'verified')
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.random import define_prng_impl, threefry_prng_impl

from rngstate import _checkcache
from rngstate._dropout import dropout_sampler
from rngstate._partitionable import first_frame_outside_rngstate
from rngstate.threefry import threefry2x32

__all__ = [
    "COVERED",
    "counter_mode_bits",
    "disabled",
    "fast_sampler",
    "is_enabled",
    "select",
    "set_enabled",
    "status",
    "verify",
    "wide_vectors",
]

_FLOATS = ("float16", "bfloat16", "float32", "float64")
_UINTS = ("uint8", "uint16", "uint32", "uint64")

COVERED: Mapping[str, tuple[str, ...]] = {
    "bits": _UINTS,
    "uniform": _FLOATS,
    "normal": _FLOATS,
    "truncated_normal": _FLOATS,
    "bernoulli": _FLOATS,  # the dtype of p
    "dropout": _FLOATS,  # the dtype of x
    "randint": ("int8", "int16", "int32", "int64", *_UINTS),
    "exponential": _FLOATS,
    "gumbel": _FLOATS,
    "laplace": _FLOATS,
}
"""The ops the fast path serves, each with the dtypes it serves them in."""

# Where each op's dtype comes from, and the dtype jax.random uses when that argument is None.
_DTYPE_ARGUMENT = {"bernoulli": "p", "dropout": "x"}
_DEFAULT_DTYPE = {"bits": np.uint64, "randint": np.int64}  # canonicalized; others float64

# The counter is the flat index in one uint32 word; past that, JAX's own bits are used.
_MAX_ELEMENTS = 2**32
# Below this, JAX's own bits too: XLA:CPU sends the fused hash loop to its thread pool from
# about 16 elements on (~30 us of wake-up), jax.random's loop only from about 64.
_MIN_ELEMENTS = 64

VERIFIED, FALLBACK, UNTESTED = "verified", "fallback", "untested"

# The first-use check draws each of these shapes, 2,272 values. A last-ulp difference hits
# a few values, and which depends on the shape: on jax 0.6.2, exponential float64 differed in
# 2 of 117 values of (9, 13) and 1 of 102 of (2, 3, 17), in none of (102,) and (1031,). So:
# several ranks and sizes (each at least _MIN_ELEMENTS), and many values.
_PROBE_SHAPES = ((9, 13), (2, 3, 17), (2053,))
# The modes, other than the default, of the ops that have them: each takes another code path
# to its floats.
_PROBE_MODES = {"bernoulli": ("high",), "gumbel": ("high", "highest")}


# -- the bits ------------------------------------------------------------------------------


def counter_mode_bits(key_data: jax.Array, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
    """JAX's partitionable threefry bits for ``shape``, as plain fusible ops.

    ``key_data`` is ``uint32[2]``; ``bit_width`` is 8, 16, 32 or 64 (64 needs x64). The
    counter of element ``i`` (row-major) is ``(0, i)``, so ``shape`` must have fewer than
    2**32 elements.

    >>> import jax
    >>> k = jax.random.key(7)
    >>> mine = counter_mode_bits(jax.random.key_data(k), 32, (2, 3))
    >>> bool((mine == jax.random.bits(k, (2, 3), "uint32")).all())
    True
    """
    size = math.prod(shape)
    if size >= _MAX_ELEMENTS:
        raise ValueError(f"shape must have fewer than 2**32 elements, got {shape}")
    index = jnp.zeros(shape, jnp.uint32)
    stride = 1
    for axis in reversed(range(len(shape))):
        # One iota per axis, as JAX builds its counter, so SPMD partitioning needs no collective.
        index = index + lax.broadcasted_iota(jnp.uint32, shape, axis) * jnp.uint32(stride)
        stride *= shape[axis]
    hi, lo = threefry2x32(key_data[0], key_data[1], jnp.zeros_like(index), index)
    if bit_width == 64:
        return (hi.astype(jnp.uint64) << jnp.uint64(32)) | lo.astype(jnp.uint64)
    return (hi ^ lo).astype(f"uint{bit_width}")


def _random_bits(key_data: jax.Array, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
    shape = tuple(shape)
    constant = all(isinstance(d, (int, np.integer)) for d in shape)
    if (
        not constant
        or not _MIN_ELEMENTS <= math.prod(shape) < _MAX_ELEMENTS
        or not jax.config.jax_threefry_partitionable
    ):
        return threefry_prng_impl.random_bits(key_data, bit_width, shape)
    return counter_mode_bits(key_data, bit_width, shape)


# Threefry in every respect but where its bits are computed: keys split and fold in as
# jax.random's do, so samplers that split (randint) see the same subkeys.
_COUNTER_MODE = define_prng_impl(
    key_shape=(2,),
    seed=threefry_prng_impl.seed,
    split=threefry_prng_impl.split,
    random_bits=lambda key_data, bit_width, shape: _random_bits(key_data, bit_width, shape),
    fold_in=threefry_prng_impl.fold_in,
    name="rngstate_threefry2x32_counter_mode",
    tag="rsfry",
)


def _counter_mode_key(key: jax.Array) -> jax.Array:
    return jax.random.wrap_key_data(jax.random.key_data(key), impl=_COUNTER_MODE)


_FAST: dict[Callable[..., Any], Callable[..., Any]] = {}


def fast_sampler(sampler: Callable[..., Any]) -> Callable[..., Any]:
    """The fast version of ``sampler(key, ...)``: the same call, bits in counter mode.

    ``sampler`` is a ``jax.random`` function, or any function that samples with ``key``
    only through ``jax.random``. The result takes the same arguments and, for the ops in
    :data:`COVERED`, returns the same values; it is cached, so it can key a jit cache.

    >>> import jax
    >>> k = jax.random.key(0)
    >>> fast_normal = fast_sampler(jax.random.normal)
    >>> bool((fast_normal(k, (5,)) == jax.random.normal(k, (5,))).all())
    True
    """
    fast = _FAST.get(sampler)
    if fast is None:

        def fast(key: jax.Array, *args: Any, **kwargs: Any) -> Any:
            return sampler(_counter_mode_key(key), *args, **kwargs)

        fast.__name__ = f"fast_{getattr(sampler, '__name__', 'sampler')}"
        fast = _FAST.setdefault(sampler, fast)
    return fast


# -- switching it off ----------------------------------------------------------------------


def _jax_version() -> tuple[int, ...]:
    """The installed JAX's release numbers, e.g. ``(0, 10, 2)``."""
    return tuple(int(part) for part in jax.__version__.split(".")[:3] if part.isdigit())

# From jax 0.12, XLA:CPU rounds the float transforms of jax.random's samplers (uniform's
# `bits * (maxval - minval) + minval`, normal's) differently in each program it compiles, and
# the first-use check's program is not the program a draw runs: on jax 0.12.0.1, after the
# check passed, 163 of 6,000 normal and 687 of 6,000 uniform (array maxval) values differed
# from jax.random in the last ulp (docs/compatibility.md). Off there unless RNGSTATE_FAST=1
# asks for it, until the check compares the programs that really run.
ROUNDS_BY_PROGRAM = _jax_version() >= (0, 12)
"""Whether this JAX's own sampler values depend on the program they are compiled in (the
fast path then starts off)."""

_setting = os.environ.get("RNGSTATE_FAST", "0" if ROUNDS_BY_PROGRAM else "1")
_enabled = _setting.strip().lower() not in {"0", "false", "off", "no"}


def is_enabled() -> bool:
    """Whether ops take the fast path (``RNGSTATE_FAST=0`` in the environment starts it off).

    >>> is_enabled() in (True, False)
    True
    """
    return _enabled


def set_enabled(enabled: bool) -> bool:
    """Turn the fast path on or off for the whole process; returns the previous setting.

    The choice is made when an op is traced: a function jitted before the call keeps
    the path it was compiled with until it is traced again.

    >>> previous = set_enabled(False)
    >>> is_enabled()
    False
    >>> _ = set_enabled(previous)
    """
    global _enabled
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
    previous, _enabled = _enabled, enabled
    return previous


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within the block, every op samples through ``jax.random`` itself.

    >>> with disabled():
    ...     is_enabled()
    False
    """
    previous = set_enabled(False)
    try:
        yield
    finally:
        set_enabled(previous)


# -- the safety net ------------------------------------------------------------------------

_status: dict[tuple[str, str], str] = {}
_status_lock = threading.Lock()


def status() -> dict[str, str]:
    """Each covered ``"op[dtype]"``: ``"verified"``, ``"fallback"`` or ``"untested"``.

    An (op, dtype) is verified against ``jax.random`` at its first use in the process;
    ``"fallback"`` means the check failed and the op uses ``jax.random``.

    >>> sorted(set(status().values()) - {"verified", "fallback", "untested"})
    []
    """
    return {
        f"{op}[{dtype}]": _status.get((op, dtype), UNTESTED)
        for op, dtypes in COVERED.items()
        for dtype in dtypes
    }


def _probe_arguments(op: str, dtype: str, shape: tuple[int, ...]) -> dict[str, Any]:
    """A call of ``op`` in ``dtype`` and ``shape`` with non-default Python-number arguments
    (compiled into the program as constants, as a user's literals are under jit)."""
    if op == "bernoulli":  # a NumPy scalar: a constant in the program, in the dtype checked
        return {"p": jnp.dtype(dtype).type(0.4), "shape": shape}
    if op == "dropout":
        return {"x": jnp.ones(shape, dtype), "rate": 0.3}
    if op == "randint":
        return {"shape": shape, "minval": -7, "maxval": 1000, "dtype": dtype}
    if op == "uniform":
        return {"shape": shape, "dtype": dtype, "minval": -2.0, "maxval": 3.0}
    if op == "truncated_normal":
        return {"lower": -1.5, "upper": 2.0, "shape": shape, "dtype": dtype}
    return {"shape": shape, "dtype": dtype}


def _array_probe_arguments(
    op: str, dtype: str, shape: tuple[int, ...], full: bool
) -> dict[str, Any] | None:
    """The same call with its parameters as arrays, computed at run time (as arguments of a
    program are): a 0-d array and an array along the last axis, or (``full``) arrays of the
    whole shape. None for an op without such parameters.

    XLA folds constant bounds before it fuses, and fuses (contracting ``a * b + c`` into one
    rounding, or not) what it computes at run time: on jax 0.12, uniform with an array
    ``maxval`` differed from jax.random in the last ulp where scalar bounds did not.
    """
    n = shape[-1]
    edge = shape if full else (n,)
    if op == "uniform":
        low = jnp.linspace(-3.0, 0.5, math.prod(edge)).reshape(edge) if full else jnp.asarray(-3.0)
        high = jnp.linspace(1.0, 50.0, math.prod(edge)).reshape(edge)
        return {"shape": shape, "dtype": dtype, "minval": low, "maxval": high}
    if op == "truncated_normal":
        lower = jnp.linspace(-2.0, 0.5, math.prod(edge)).reshape(edge)
        return {"lower": lower, "upper": jnp.asarray(1.0, dtype), "shape": shape, "dtype": dtype}
    if op == "bernoulli":
        p = jnp.linspace(0.0, 1.0, math.prod(edge), dtype=dtype).reshape(edge)
        return {"p": p, "shape": shape}
    if op == "randint":
        high = (jnp.arange(math.prod(edge), dtype=jnp.int32) % 120 + 1).reshape(edge)
        return {"shape": shape, "minval": jnp.asarray(-5), "maxval": high, "dtype": dtype}
    if op == "dropout":
        return {"x": jnp.ones(shape, dtype), "rate": jnp.asarray(0.7, jnp.float32)}
    return None


def _probe_calls(op: str, dtype: str, reference: Callable[..., Any]) -> list[dict[str, Any]]:
    """The calls the first-use check draws: every probe shape with Python-number parameters
    and again with array ones (whole-shape arrays on the 3-d shape), and each further mode
    that ``reference`` accepts on the 3-d shape (a mode it rejects is no call a user can
    make)."""
    calls = [_probe_arguments(op, dtype, shape) for shape in _PROBE_SHAPES]
    for shape in _PROBE_SHAPES:
        arrays = _array_probe_arguments(op, dtype, shape, full=len(shape) == 3)
        if arrays is not None:
            calls.append(arrays)
    for mode in _PROBE_MODES.get(op, ()):
        arguments = {**_probe_arguments(op, dtype, _PROBE_SHAPES[1]), "mode": mode}
        try:
            jax.eval_shape(functools.partial(reference, **arguments), _probe_key())
        except (TypeError, ValueError):
            continue  # an older jax.random without this mode
        calls.append(arguments)
        arrays = _array_probe_arguments(op, dtype, _PROBE_SHAPES[1], full=False)
        if arrays is not None:  # bernoulli's p as an array too
            calls.append({**arrays, "mode": mode})
    return calls


def _probe_key() -> jax.Array:  # made on use: nothing at module level holds a device array
    return jax.random.key(20240917)


def _differing(a: Any, b: Any) -> int:
    """How many elements of ``a`` and ``b`` differ in their bits (all, if shapes or dtypes do)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return max(a.size, b.size, 1)
    as_uint = f"u{a.dtype.itemsize}"
    a, b = (np.ascontiguousarray(x).view(as_uint) for x in (a, b))
    return int(np.sum(a != b))


def _draw(
    samplers: tuple[Callable[..., Any], ...],
    calls: list[dict[str, Any]],
    compiler_options: Mapping[str, Any] | None = None,
) -> tuple[list[Any], ...]:
    """Each sampler's draws of ``calls``, all in one program (compiled with the options)."""
    # One program for several samplers: on jax 0.6.2 (exponential float64, last ulp) it shows
    # the same differences as separate programs do, for fewer compiles. Arrays go in as
    # arguments, as a user's do (XLA folds constants with other roundings than it computes at
    # run time).
    arrays = [{k: v for k, v in c.items() if isinstance(v, jax.Array)} for c in calls]
    static = [{k: v for k, v in c.items() if not isinstance(v, jax.Array)} for c in calls]

    def draw(keys: list[jax.Array], arrays: list[dict[str, Any]]) -> tuple[list, ...]:
        def side(sampler: Callable[..., Any]) -> list[Any]:
            calls = zip(keys, static, arrays, strict=True)
            return [sampler(key, **more, **given) for key, more, given in calls]

        return tuple(side(sampler) for sampler in samplers)

    keys = [jax.random.fold_in(_probe_key(), i) for i in range(len(calls))]
    options = dict(compiler_options) if compiler_options else None
    return jax.jit(draw, compiler_options=options)(keys, arrays)


def _check(op: str, dtype: str, reference: Callable[..., Any] | None = None) -> str:
    """Compare the fast sampler of ``op`` with ``reference`` (``jax.random``'s) bit for bit.

    Every value of every probe call must match: one last-ulp difference in one element is a
    mismatch. Returns ``"verified"``, or warns and returns ``"fallback"``.
    """
    sampler = _reference(op)
    reference = sampler if reference is None else reference
    try:
        # Concrete evaluation even when the first use is inside a user's jit/vmap/scan trace.
        with jax.core.eval_context():
            calls = _probe_calls(op, dtype, reference)
            fast_values, reference_values = _draw((fast_sampler(sampler), reference), calls)
        differ = [
            (call, count, np.size(r))
            for call, f, r in zip(calls, fast_values, reference_values, strict=True)
            if (count := _differing(f, r))
        ]
        problem = None
        if not calls:
            problem = "no probe call ran"
        elif differ:
            call, count, size = differ[0]
            shown = {k: v for k, v in call.items() if not isinstance(v, jax.Array)}
            problem = f"{count} of {size} values differ in a call with {shown}"
            if len(differ) > 1:
                problem += f", and {len(differ) - 1} more of {len(calls)} calls"
    except Exception as error:  # noqa: BLE001 - any failure means: do not use it
        problem = f"{type(error).__name__}: {error}"
    if problem is None:
        return VERIFIED
    warnings.warn(
        f"rngstate fast path for {op}[{dtype}] does not match jax.random {jax.__version__} "
        f"({problem}); {op} uses jax.random from now on in this process",
        RuntimeWarning,
        stacklevel=first_frame_outside_rngstate(),  # the user's call of the op
    )
    return FALLBACK


def _checked_once(table: dict[Any, Any], key: Any, check: Callable[[], Any]) -> Any:
    """``table[key]``, computed by ``check()`` the first time, once even across threads."""
    state = table.get(key)
    if state is None:
        with _status_lock:
            state = table.get(key)
            if state is None:
                state = table[key] = check()
    return state


def _remembered(kind: str, op: str, dtype: str, check: Callable[[], bool]) -> bool:
    """``check()``, unless the cache on disk (:mod:`rngstate._checkcache`) remembers that it
    passed for this JAX, backend, CPU and flags; a pass is remembered for the next process."""
    if _checkcache.recall(kind, op, dtype):
        return True
    passed = check()
    if passed:
        _checkcache.remember(kind, op, dtype)
    return passed


def _verified(op: str, dtype: str) -> bool:
    def check() -> str:
        passed = _remembered("fast", op, dtype, lambda: _check(op, dtype) == VERIFIED)
        return VERIFIED if passed else FALLBACK

    return _checked_once(_status, (op, dtype), check) == VERIFIED


def _dtype_of(op: str, arguments: Mapping[str, Any]) -> str | None:
    """The dtype an op call samples in, if the fast path covers it; else None."""
    if op not in COVERED:
        return None
    if op in _DTYPE_ARGUMENT:
        value = arguments.get(_DTYPE_ARGUMENT[op])
        requested = getattr(value, "dtype", None)
        if requested is None:
            requested = type(value)  # a Python scalar: its type, canonicalized as JAX does
    else:
        requested = arguments.get("dtype")
        if requested is None:
            requested = _DEFAULT_DTYPE.get(op, np.float64)
    try:
        return _covered_name(op, requested, bool(jax.config.jax_enable_x64))
    except TypeError:  # unhashable: not a dtype
        return None


@functools.lru_cache(maxsize=1024)
def _covered_name(op: str, requested: Any, x64: bool) -> str | None:
    # Cached: canonicalizing a dtype costs several microseconds, a fifth of a small draw.
    del x64  # part of the cache key: canonical dtypes differ with it
    try:
        name = np.dtype(jax.dtypes.canonicalize_dtype(requested)).name
    except (TypeError, ValueError):
        return None  # jax.random will report the bad argument itself
    return name if name in COVERED[op] else None


def select(sampler: Callable[..., Any], op: str, arguments: Mapping[str, Any]) -> Callable:
    """The sampler to run for one call: its fast version when that is on and serves the call.

    ``sampler`` draws with the ``jax.random`` op ``op`` called with ``arguments`` (by
    name). Its fast version (:func:`fast_sampler`) is returned when the fast path is
    enabled, ``jax_threefry_partitionable`` is on, :data:`COVERED` has ``op`` in the call's
    dtype, and that (op, dtype) is verified (checked now on first use). Otherwise
    ``sampler`` itself.

    >>> import jax
    >>> select(jax.random.uniform, "uniform", {"shape": (64,), "dtype": None}).__name__
    'fast_uniform'
    >>> select(jax.random.uniform, "uniform", {"shape": (2,), "dtype": None}).__name__
    'uniform'
    >>> select(jax.random.gamma, "gamma", {"a": 1.0}).__name__
    'gamma'
    """
    if not _enabled or not jax.config.jax_threefry_partitionable:
        return sampler
    dtype = _dtype_of(op, arguments)
    if dtype is None or not _draws_counter_mode_bits(op, arguments) or not _verified(op, dtype):
        return sampler
    return fast_sampler(sampler)


def _draws_counter_mode_bits(op: str, arguments: Mapping[str, Any]) -> bool:
    """Whether the fast sampler of this call would compute any of its bits here: not when
    its size is known and outside [_MIN_ELEMENTS, _MAX_ELEMENTS) (JAX's own bits serve it),
    so such a call pays for no first-use check it would not use."""
    if op == "dropout":
        shape = getattr(arguments.get("x"), "shape", None)
    else:
        shape = arguments.get("shape")
        if shape is None and op == "bernoulli":
            shape = np.shape(arguments.get("p"))
    try:
        size = math.prod(int(d) for d in shape)  # type: ignore[union-attr]
    except TypeError:  # not known yet (None, traced): the fast sampler decides per draw
        return True
    return _MIN_ELEMENTS <= size < _MAX_ELEMENTS


def verify(
    ops: tuple[str, ...] | None = None, dtypes: tuple[str, ...] | None = None
) -> dict[str, str]:
    """Check now the covered (op, dtype) pairs usable in this process; returns :func:`status`.

    ``ops`` and ``dtypes`` narrow the pairs (default: all); 64-bit dtypes are checked only
    with ``jax_enable_x64`` on.

    >>> verify(("bits",), ("uint8", "uint64"))["bits[uint8]"]
    'verified'
    """
    x64 = jax.config.jax_enable_x64
    for op in COVERED if ops is None else ops:
        for dtype in COVERED[op]:
            if (dtypes is None or dtype in dtypes) and (x64 or not dtype.endswith("64")):
                _verified(op, dtype)
    return status()


# -- wider vectors -------------------------------------------------------------------------
# XLA:CPU vectorizes the fused hash loop 256 bits wide by default. On a CPU with AVX-512 it
# runs faster asking for 512: the programs of covered ops are then compiled with this option,
# where the (op, dtype) gives bit for bit jax.random's values compiled with it (checked on
# first use, as the fast path itself is). RNGSTATE_FAST_WIDE=0 turns it off.

WIDE_OPTIONS: Mapping[str, Any] = {"xla_cpu_prefer_vector_width": 512}
"""The compiler options of the fast path's programs where :func:`wide_vectors` says so."""

_OFF = {"0", "false", "off", "no"}
_wide_wanted = os.environ.get("RNGSTATE_FAST_WIDE", "1").strip().lower() not in _OFF
# Where it was measured faster (2**22 values, AVX-512, CPU time): bits and uniform 1.7x;
# normal, bound by its inverse erf rather than the hash, gained nothing and is left alone.
_WIDE_OPS = frozenset({"bits", "uniform"})
_wide_status: dict[tuple[str, str], bool] = {}


@functools.cache
def _cpu_has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return "avx512f" in flags.split()


def wide_vectors(op: str, arguments: Mapping[str, Any]) -> bool:
    """Whether a fast-path call of ``op`` is compiled with :data:`WIDE_OPTIONS`.

    Only for bits and uniform (where it is faster) of at least 64 values, on the CPU
    backend of a CPU with AVX-512, and only for an (op, dtype) whose values
    with the option are jax.random's bit for bit (checked now on first use). Elsewhere it
    says False and nothing changes.

    >>> wide_vectors("uniform", {"shape": (2,), "dtype": None}) in (True, False)
    True
    """
    if op not in _WIDE_OPS or not _wide_wanted or not _cpu_has_avx512():
        return False
    shape = arguments.get("shape")
    if isinstance(shape, tuple) and math.prod(shape) < _MIN_ELEMENTS:
        return False  # drawn with JAX's own bits (see _MIN_ELEMENTS): nothing to widen
    if jax.default_backend() != "cpu":
        return False
    dtype = _dtype_of(op, arguments)
    if dtype is None:
        return False
    return _checked_once(
        _wide_status,
        (op, dtype),
        lambda: _remembered("wide", op, dtype, lambda: _check_wide(op, dtype)),
    )


def _check_wide(op: str, dtype: str) -> bool:
    """Whether the fast sampler compiled with :data:`WIDE_OPTIONS` draws ``jax.random``'s
    bits in every call of the first-use check (:func:`_check`)."""
    sampler = _reference(op)
    try:
        with jax.core.eval_context():
            calls = _probe_calls(op, dtype, sampler)
            [wide] = _draw((fast_sampler(sampler),), calls, WIDE_OPTIONS)
            [plain] = _draw((sampler,), calls)
        return bool(calls) and not any(map(_differing, wide, plain))
    except Exception:  # noqa: BLE001 - any failure means: do not use it
        return False


def _reference(op: str) -> Callable[..., Any]:
    return dropout_sampler if op == "dropout" else getattr(jax.random, op)
