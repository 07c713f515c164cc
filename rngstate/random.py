"""Samplers: every ``jax.random`` sampler as ``op(gen, ...) -> (values, next_gen)``.

One mechanism, :func:`make_op`, wraps each ``jax.random`` function found in the installed
JAX. The wrapper keeps the original signature (``key`` replaced by ``gen``) and docstring,
derives the key from ``gen``, samples, and advances the offset by one, all inside a single
jitted call, so an eager call costs one dispatch and compiles once per combination of
static arguments (shapes, dtypes, Python scalars, strings).

>>> import rngstate as rs
>>> g = rs.Generator(seed=0)
>>> x, g2 = rs.random.normal(g, (3,))
>>> import jax
>>> bool((x == jax.random.normal(g.key(), (3,))).all()), g2 == g.construct(1)
(True, True)
"""

from __future__ import annotations

import difflib
import functools
import inspect
import itertools
import operator
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from rngstate import _checks, _jax_compat, _partitionable, _u64, fast, reuse
from rngstate._dropout import dropout_sampler as _dropout_sampler
from rngstate.generator import Generator, derive_key

# jax.random functions that take a key but are not samplers: they make or reshape keys.
_NOT_SAMPLERS = frozenset({"fold_in", "split", "clone", "key_data", "key_impl"})

RealArray = ArrayLike  # jax.random's name for a real-valued array argument

_ONE = np.array([0, 1], dtype=np.uint32)  # the offset step of one operation, as u64 words


def _discover_samplers() -> dict[str, Callable[..., Any]]:
    found = {}
    for name in sorted(dir(jax.random)):
        fn = getattr(jax.random, name)
        if name.startswith("_") or name in _NOT_SAMPLERS or not callable(fn):
            continue
        try:
            params = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            continue
        if params and params[0] == "key":
            found[name] = fn
    return found


JAX_SAMPLERS: dict[str, Callable[..., Any]] = _discover_samplers()
"""The ``jax.random`` samplers of the installed JAX, by name."""


FastAs = Callable[[dict[str, Any]], "tuple[str, dict[str, Any]] | None"]
"""How an op's call maps to a ``jax.random`` op of the fast path (see :func:`make_op`)."""


def _as_itself(name: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return name, arguments


# -- the one dispatch path ----------------------------------------------------------------
#
# An eager call costs a jitted dispatch plus the Python that prepares it. The preparation
# (binding the arguments, splitting what is compiled from what is traced, choosing the fast
# path) depends only on the call's *signature*: the arguments' types, the shapes and dtypes
# of its arrays, the exact values of what is compiled in, and a few global flags. It is
# therefore done once per signature and kept as a _Plan; a later call with the same
# signature only picks its traced values out of args/kwargs. A plan holds no array: the
# values traced in each call are passed to the jitted function as they are (a Python scalar
# goes in as jit converts it, weak-typed, on whatever devices the call runs on), so nothing
# kept here depends on a device, a sharding or a mesh.


class _Const:
    """A compiled-in value, equal to another only when it has the same type and exact bits.

    ``0.0 == -0.0`` and ``1 == 1.0 == True`` in Python, but they compile to different
    programs; and a NaN, never equal to itself, would otherwise recompile on every call.
    """

    __slots__ = ("value", "_key", "_hash")

    def __init__(self, value: Any) -> None:
        self.value = value
        self._key = (type(value), _exact(value))
        self._hash = hash(self._key)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Const) and self._key == other._key

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class _Default(_Const):
    """A parameter's default value that jax.random would trace (``uniform``'s ``maxval=1.0``).

    It is compiled in behind an optimization barrier: XLA cannot constant-fold what depends
    on it, so the values are those of the traced default, and no argument is passed for it.
    """

    def traced(self) -> Any:
        return lax.optimization_barrier(jnp.asarray(self.value))


def _exact(value: Any) -> Any:
    if isinstance(value, (float, complex, np.floating, np.complexfloating)):
        return struct.pack("<d", value) if isinstance(value, float) else np.asarray(value).tobytes()
    return value


class _Static:
    """The non-array part of a call, which jit keys its compile cache on.

    Made only by :func:`_static`, which returns the same object for equal slots: jit hashes
    and compares its static arguments on every call, and object identity does both in C.
    """

    __slots__ = ("slots",)

    def __init__(self, slots: tuple[Any, ...]) -> None:
        self.slots = slots  # per parameter: _TRACED, a _Default, or (treedef, leaf slots)

    def rebuild(self, names: tuple[str, ...], dynamic: list[Any]) -> dict[str, Any]:
        it = iter(dynamic)
        values = {}
        for name, slot in zip(names, self.slots, strict=True):
            if slot is _TRACED:
                values[name] = next(it)
            elif isinstance(slot, _Default):
                values[name] = slot.traced()
            else:
                treedef, leaves = slot
                values[name] = jax.tree.unflatten(
                    treedef, [next(it) if leaf is _TRACED else leaf.value for leaf in leaves]
                )
        return values


_statics: dict[tuple[Any, ...], _Static] = {}


def _static(slots: tuple[Any, ...]) -> _Static:
    """The one :class:`_Static` of these slots (kept with the plans, and cleared with them)."""
    static = _statics.get(slots)
    if static is None:
        static = _statics.setdefault(slots, _Static(slots))
    return static


_TRACED = "traced"
_SCALARS = (int, float, complex, np.number)
# jax.random annotates value parameters with these. Python numbers passed to them are traced,
# as raw jax.random traces them, so XLA cannot constant-fold them into different bits.
_VALUE_ANNOTATIONS = frozenset({"Array", "ArrayLike", "RealArray", "IntegerArray", "float"})
# The parity test over every op with explicit scalars guards this rule.

_PLAIN = frozenset({bool, str, type(None)})
_INT_ONLY = frozenset({int})
_NUMBERS = frozenset({int, float, complex})
_MAX_PLANS = 4096


class _Uncachable(Exception):
    """An argument the signature cannot describe (a dict, an unhashable object)."""


def _signature_of(value: Any, value_parameter: bool) -> Any:
    """What the preparation of a call depends on in one argument (see _Plan)."""
    kind = type(value)
    if kind is int:  # the commonest (shape entries): ints compare exactly among themselves,
        return int if value_parameter else value  # and nothing else here returns an int
    if kind in _NUMBERS:
        # Traced numbers are keyed by type alone: a new value is a new argument, not a plan.
        return kind if value_parameter else (kind, _exact(value))
    if kind is tuple or kind is list:
        if _INT_ONLY.issuperset(map(type, value)):  # a shape: each int would key as itself
            return kind, value if kind is tuple else tuple(value)
        return kind, tuple(map(_signature_of, value, itertools.repeat(value_parameter)))
    if kind in _PLAIN:
        return kind, value
    if kind in _ARRAY_KINDS or isinstance(value, (jax.Array, np.ndarray)):  # tracers too
        _ARRAY_KINDS.add(kind)
        return kind, value.shape, value.dtype
    if isinstance(value, np.number):
        return kind if value_parameter else (kind, _exact(value))
    if isinstance(value, (np.dtype, type)):
        return kind, value
    try:
        hash(value)
    except TypeError:
        raise _Uncachable from None
    if isinstance(value, (tuple, dict)) or jax.tree.leaves(value) != [value]:
        raise _Uncachable  # a pytree: hashable containers may still hold arrays
    return kind, value


_ARRAY_KINDS: set[type] = {np.ndarray}  # the array types met so far: a set lookup is cheaper


def _is_traced(value: Any, value_parameter: bool) -> bool:
    return isinstance(value, (jax.Array, np.ndarray)) or (
        value_parameter and isinstance(value, _SCALARS) and not isinstance(value, bool)
    )


def _annotation_kinds(param: inspect.Parameter) -> set[str]:
    annotation = param.annotation
    if not isinstance(annotation, str):
        annotation = getattr(annotation, "__name__", str(annotation))
    return {part.strip() for part in annotation.split("|")}


def _is_value_parameter(param: inspect.Parameter) -> bool:
    return _annotation_kinds(param) <= _VALUE_ANNOTATIONS


def _is_static_int_parameter(param: inspect.Parameter) -> bool:
    """A parameter jax.random reads as a Python int or bool (``permutation``'s ``x``,
    ``choice``'s ``replace``, ``orthogonal``'s ``n``): not traced, and int or bool allowed."""
    return not _is_value_parameter(param) and bool(_annotation_kinds(param) & {"int", "bool"})


def _as_python_scalar(value: Any) -> Any:
    """A concrete 0-d integer or bool array as the Python int or bool it holds, as jax.random
    reads one passed where it takes a static int or bool; anything else as it is.

    >>> import numpy as np
    >>> _as_python_scalar(np.array(5)), _as_python_scalar(np.array(True)), _as_python_scalar(2.5)
    (5, True, 2.5)
    """
    if (
        isinstance(value, (np.ndarray, jax.Array))
        and not isinstance(value, jax.core.Tracer)
        and value.ndim == 0
        and (value.dtype == np.bool_ or np.issubdtype(value.dtype, np.integer))
    ):
        return bool(value) if value.dtype == np.bool_ else int(value)
    return value


class _Plan:
    """How to dispatch every call of one signature: the sampler, the static part, and where
    in ``(args, kwargs)`` each traced value is (an index or a name, then indices into nested
    tuples and lists)."""

    __slots__ = ("op", "static", "sources", "wide")

    def __init__(
        self,
        op: tuple[Callable[..., Any], _Binder],
        static: _Static,
        sources: tuple | None,
        wide: bool = False,
    ) -> None:
        self.op, self.static, self.sources, self.wide = op, static, sources, wide

    def dynamic(self, args: tuple, kwargs: dict) -> list[Any]:
        out = []
        for where, path in self.sources:
            value = args[where] if type(where) is int else kwargs[where]
            for i in path:
                value = value[i]
            out.append(value)
        return out


_plans: dict[tuple, _Plan | None] = {}


_x64 = _jax_compat.X64
_partitionable_flag = _jax_compat.THREEFRY_PARTITIONABLE


def _flags() -> tuple[bool, bool, bool]:
    """The global settings a plan depends on: canonical dtypes, the threefry flag
    (which also decides whether to warn), and the fast path's choice."""
    return _x64.value, _partitionable_flag.value, fast.is_enabled()


class _Binder:
    """Binds a call's arguments to a sampler's parameters and splits static from traced."""

    def __init__(
        self, name: str, sampler: Callable[..., Any], fast_as: FastAs | None = None
    ) -> None:
        params = list(inspect.signature(sampler).parameters.values())[1:]  # after the key
        for p in params:
            if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                raise TypeError(f"cannot wrap {name}: parameter {p.name} is {p.kind}")
        self.name = name
        self.names = tuple(p.name for p in params)
        self.positional = tuple(p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD)
        self.defaults = {p.name: p.default for p in params if p.default is not p.empty}
        self.array_params = frozenset(p.name for p in params if _is_value_parameter(p))
        self.static_ints = tuple(p.name for p in params if _is_static_int_parameter(p))
        self._value_positions = tuple(n in self.array_params for n in self.positional)
        self.fast_as = fast_as
        # The last call's (flags, args, keyword names, keyword values, plan, traced values),
        # kept when every argument is _fixed: a call passing the very same objects under
        # the same flags (or, for a lone positional argument, an equal tuple of ints) has
        # the same signature, so it skips computing it (see _dispatcher).
        self.last: tuple | None = None

    def signature(
        self, flags: tuple[bool, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple | None:
        """The plan cache's key for this call under ``flags`` (:func:`_flags`), or None when
        the call has no cacheable one."""
        if len(args) > len(self.positional):
            return None  # bind() reports it
        try:
            key = (self, flags, *map(_signature_of, args, self._value_positions))
            if kwargs:
                values = self.array_params
                key += tuple([(k, _signature_of(v, k in values)) for k, v in kwargs.items()])
        except _Uncachable:
            return None
        return key

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if len(args) > len(self.positional):
            raise TypeError(
                f"{self.name}() takes at most {len(self.positional)} arguments after gen, "
                f"got {len(args)}"
            )
        values = dict(self.defaults)
        values.update(zip(self.positional, args, strict=False))
        for key in kwargs:
            if key not in self.names:
                raise TypeError(f"{self.name}() got an unexpected keyword argument {key!r}")
            if key in self.positional[: len(args)]:
                raise TypeError(f"{self.name}() got multiple values for argument {key!r}")
        values.update(kwargs)
        missing = [n for n in self.names if n not in values]
        if missing:
            raise TypeError(f"{self.name}() missing required argument(s): {', '.join(missing)}")
        return values

    def split(
        self, values: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[_Static, list[Any], tuple | None]:
        """The static part, the traced values, and where each traced value came from in
        ``(args, kwargs)`` (None when one is not found there)."""
        where = {name: i for i, name in enumerate(self.positional[: len(args)])}
        where.update({name: name for name in kwargs})
        dynamic: list[Any] = []
        sources: list[Any] | None = []
        for name, source in where.items():
            passed = args[source] if type(source) is int else kwargs[source]
            if values[name] is not passed and isinstance(passed, (jax.Array, np.ndarray)):
                # A check replaced an array by what it holds (a shape array by its tuple): the
                # signature keys arrays by shape and dtype only, so this call cannot be kept.
                sources = None
        slots: list[Any] = []
        for name in self.names:
            value = values[name]
            traced_scalars = name in self.array_params
            if name not in where and traced_scalars and type(value) in _NUMBERS:
                slots.append(_Default(value))
                continue
            if _is_traced(value, traced_scalars):
                dynamic.append(value)
                slots.append(_TRACED)
                if sources is not None and name in where:
                    sources.append((where[name], ()))
                else:
                    sources = None
                continue
            paths, treedef = jax.tree.flatten_with_path(value)
            leaf_slots = []
            for path, leaf in paths:
                if _is_traced(leaf, traced_scalars):
                    dynamic.append(leaf)
                    leaf_slots.append(_TRACED)
                    indices = tuple(getattr(k, "idx", None) for k in path)
                    if sources is not None and name in where and None not in indices:
                        sources.append((where[name], indices))
                    else:
                        sources = None
                else:  # shapes, dtypes, strings, flags: part of what is compiled
                    leaf_slots.append(_Const(leaf))
            slots.append((treedef, tuple(leaf_slots)))
        return _static(tuple(slots)), dynamic, None if sources is None else tuple(sources)


def _sample_and_advance_body(
    op: tuple[Callable[..., Any], _Binder],
    static: _Static,
    seed: jax.Array,
    offset: jax.Array,
    dynamic: list,
) -> tuple[Any, jax.Array]:
    sampler, binder = op
    if seed.ndim != 1:  # here, it costs nothing per call: jit traces each shape once
        raise ValueError(
            f"{binder.name}() samples from one generator; got a batch of shape "
            f"{seed.shape[:-1]}. Map over the batch with jax.vmap."
        )
    values = sampler(derive_key(seed, offset), **static.rebuild(binder.names, dynamic))
    return values, _u64.add(offset, jnp.asarray(_ONE))


_sample_and_advance = jax.jit(_sample_and_advance_body, static_argnums=(0, 1))
# The same, with wider vectors (fast.wide_vectors); XLA takes compiler options only at the
# top level, so calls made while tracing a user's function use the plain one.
_sample_and_advance_wide = jax.jit(
    _sample_and_advance_body, static_argnums=(0, 1), compiler_options=dict(fast.WIDE_OPTIONS)
)

# Whether a call may take the wide programs: only when not tracing (and, where the trace
# state cannot be read, never).
_eager = _jax_compat.is_eager if _jax_compat.DETECTABLE else lambda: False


def _dispatcher(op: tuple[Callable[..., Any], _Binder]) -> Callable[..., tuple[Any, Generator]]:
    """The eager entry point of one op (``op`` is its sampler and binder): the checks of the
    generator, the call's plan, the jitted call, the next generator. Ops and their methods
    are this function itself, so a call costs no extra Python frame."""
    binder = op[1]

    # Private by name: frames named so are not taken for the op's name (reuse._op_name_from).
    def _call_op(gen: Generator, *args: Any, **kwargs: Any) -> tuple[Any, Generator]:
        if not isinstance(gen, Generator):
            raise TypeError(f"{binder.name}() takes a Generator first, got {type(gen).__name__}")
        seed = gen.seed  # one generator, not a batch: checked as the program is traced
        flags = _flags()
        if not flags[1]:
            _partitionable.warn_if_off()
        if reuse._eager_active:
            reuse.record(binder.name, gen)
        last = binder.last
        if (
            last is not None
            and last[0] == flags
            and len(args) == len(known := last[1])
            # One positional argument (the shape) is the common call: no iterator for it, and
            # a shape built anew each call (x.shape, (n,)) counts as unchanged when equal.
            and (
                args[0] is known[0] or _equal_shapes(args[0], known[0])
                if len(args) == 1
                else all(map(operator.is_, args, known))
            )
            and (
                (not kwargs and not last[2])
                or (tuple(kwargs) == last[2] and all(map(operator.is_, kwargs.values(), last[3])))
            )
        ):
            plan, dynamic = last[4], last[5]
        else:
            plan, dynamic = _plan(op, flags, args, kwargs)
        call = _sample_and_advance_wide if plan.wide and _eager() else _sample_and_advance
        values, offset = call(plan.op, plan.static, seed, gen.offset, dynamic)
        return values, _from_words(seed, offset)

    return _call_op


_from_words = Generator.from_words


def _plan(
    op: tuple[Callable[..., Any], _Binder],
    flags: tuple[bool, bool, bool],
    args: tuple,
    kwargs: dict,
) -> tuple[_Plan, list[Any]]:
    """The plan of a call and its traced values: kept, or made now (and kept if it can be)."""
    sampler, binder = op
    key = binder.signature(flags, args, kwargs)
    plan = _plans.get(key) if key is not None else None
    if plan is not None:
        dynamic = plan.dynamic(args, kwargs) if plan.sources else []
    else:
        arguments = binder.bind(args, kwargs)
        for name in binder.static_ints:  # read as jax.random reads them, before the checks
            arguments[name] = _as_python_scalar(arguments[name])
        # Checks of the bound arguments go here: they run before anything is dispatched,
        # once per call signature (types, array shapes and dtypes, compiled-in values).
        _checks.shape_arguments(sampler, arguments)
        static, dynamic, sources = binder.split(arguments, args, kwargs)
        wide = False
        if binder.fast_as is not None and (served := binder.fast_as(arguments)) is not None:
            # Chosen here, outside the jit, so that the choice keys the compile cache.
            sampler = fast.select(sampler, *served)
            wide = sampler is not op[0] and fast.wide_vectors(*served)
        plan = _Plan((sampler, binder), static, sources, wide)
        if key is not None and sources is not None:
            if len(_plans) >= _MAX_PLANS:
                _plans.clear()  # bounded; rebuilding a plan costs one slow call
                _statics.clear()  # (a static made again is compiled again, once)
            _plans[key] = plan
        else:
            key = None  # not kept, so not remembered either
    if key is not None and all(map(_fixed, args)) and all(map(_fixed, kwargs.values())):
        binder.last = (flags, args, tuple(kwargs), tuple(kwargs.values()), plan, dynamic)
    return plan, dynamic


_FIXED = frozenset({int, float, complex, bool, str, type(None)})


def _equal_shapes(new: Any, old: Any) -> bool:
    """Whether ``new`` and ``old`` are tuples of ``int`` (exactly) with equal items: they then
    key the same plan and trace the same values, as the very same object would."""
    return (
        type(new) is tuple
        and type(old) is tuple
        and new == old
        and _INT_ONLY.issuperset(map(type, new))
        and _INT_ONLY.issuperset(map(type, old))
    )


def _fixed(value: Any) -> bool:
    """Whether ``value`` is immutable all through and holds no array, so that being the
    same object as before means having the same signature (the last-call shortcut)."""
    kind = type(value)
    if kind in _FIXED:
        return True
    if kind is tuple:
        return _FIXED.issuperset(map(type, value)) or all(map(_fixed, value))
    return isinstance(value, (np.dtype, type, np.number, np.bool_))  # not np.void: a view


def make_op(
    name: str, sampler: Callable[..., Any], *, fast_as: FastAs | None = None
) -> Callable[..., tuple[Any, Generator]]:
    """Turn ``sampler(key, *args, **kwargs)`` into ``op(gen, *args, **kwargs)``.

    The op returns ``(sampler(gen.key(), *args, **kwargs), gen.construct(1))`` and shows
    the sampler's own parameters and docstring to ``help()`` and ``inspect.signature``.

    ``fast_as`` lets the op take the fast path (:mod:`rngstate.fast`): given the call's
    arguments by name, it returns the ``jax.random`` op the sampler draws with and that
    op's arguments (``(op, arguments)``), or ``None`` for a call the fast path does not
    serve. The sampler must use its key only through that op. A ``jax.random`` sampler
    under its own name needs nothing: it is its own ``fast_as``.

    >>> import jax, inspect
    >>> op = make_op("uniform", jax.random.uniform)
    >>> list(inspect.signature(op).parameters)[:3]
    ['gen', 'shape', 'dtype']
    """
    if fast_as is None and JAX_SAMPLERS.get(name) is sampler:
        fast_as = functools.partial(_as_itself, name)
    bound = (sampler, _Binder(name, sampler, fast_as))
    op = _dispatcher(bound)
    signature = inspect.signature(sampler)
    params = list(signature.parameters.values())
    gen_param = params[0].replace(name="gen", annotation="Generator")
    op.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[gen_param, *params[1:]],
        return_annotation="tuple[Array, Generator]",
    )
    op.__name__ = op.__qualname__ = name
    op.__module__ = __name__
    op.__wrapped_sampler__ = sampler  # type: ignore[attr-defined]
    op.__rngstate_op__ = bound  # type: ignore[attr-defined]
    op.__doc__ = (
        f"``jax.random.{name}`` driven by a :class:`Generator`: returns ``(values, next_gen)``.\n\n"
        f"``values`` equals ``jax.random.{name}(gen.key(), ...)`` for the same arguments and\n"
        "``next_gen == gen.construct(1)``. The parameters after ``gen`` are jax.random's:\n\n"
        + inspect.cleandoc(sampler.__doc__ or "")
    )
    return op


def dropout(
    gen: Generator, x: Any, rate: float, *, deterministic: bool = False
) -> tuple[jax.Array, Generator]:
    """Inverted dropout: zero each element with probability ``rate``, scale the rest.

    Kept elements are divided by ``1 - rate`` so the expectation is unchanged. The mask is
    ``jax.random.bernoulli(gen.key(), 1 - rate, x.shape)``. With ``deterministic=True``
    (evaluation) it returns ``x`` and ``gen`` unchanged and consumes no key.

    Args:
      gen: the generator.
      x: the input array.
      rate: the drop probability, in ``[0, 1]`` (a Python float or a traced scalar).
      deterministic: skip dropout.

    >>> import jax.numpy as jnp, rngstate as rs
    >>> y, g = dropout(rs.Generator(0), jnp.ones(6), 0.5)
    >>> sorted(set(y.tolist())), g
    ([0.0, 2.0], Generator(seed=0, offset=1))
    >>> dropout(rs.Generator(0), jnp.ones(2), 0.5, deterministic=True)[1]
    Generator(seed=0, offset=0)
    """
    if deterministic:
        return jnp.asarray(x), gen
    if isinstance(rate, (int, float, np.floating, np.integer)) and not isinstance(rate, bool):
        if not 0.0 <= float(rate) <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {rate}")
    elif isinstance(rate, bool):
        raise TypeError("rate must be a number in [0, 1], got bool")
    return _run_dropout(gen, x, rate)


_DROPOUT = (
    _dropout_sampler,
    _Binder("dropout", _dropout_sampler, functools.partial(_as_itself, "dropout")),
)
_run_dropout = _dispatcher(_DROPOUT)

_OPS: dict[str, Callable[..., Any]] = {
    name: make_op(name, sampler) for name, sampler in JAX_SAMPLERS.items()
}
_OPS["dropout"] = dropout
globals().update(_OPS)
if TYPE_CHECKING:  # the same ops, typed: a stub generated from them (python -m rngstate._stubgen)
    from rngstate._random_ops import *  # noqa: F403

OP_NAMES: tuple[str, ...] = tuple(sorted(_OPS))
"""Every op of this module: the installed ``jax.random`` samplers, plus ``dropout``."""

__all__ = ["OP_NAMES", "JAX_SAMPLERS", "make_op", *OP_NAMES]


def __getattr__(name: str) -> Any:
    close = difflib.get_close_matches(name, OP_NAMES, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise AttributeError(f"rngstate.random has no op {name!r}{hint}")


def _as_method(op: Callable[..., Any]) -> Callable[..., Any]:
    bound = getattr(op, "__rngstate_op__", None)
    if bound is not None:  # an op of make_op: the method is its dispatcher again, self = gen
        method = functools.update_wrapper(_dispatcher(bound), op)
    else:

        @functools.wraps(op)
        def method(self: Generator, *args: Any, **kwargs: Any) -> Any:
            return op(self, *args, **kwargs)

    params = list(inspect.signature(op).parameters.values())
    method.__signature__ = inspect.signature(
        op
    ).replace(  # type: ignore[attr-defined]
        parameters=[params[0].replace(name="self"), *params[1:]]
    )
    return method


# The same ops as Generator methods: gen.normal((3,)) is rngstate.random.normal(gen, (3,)).
for _name, _op in _OPS.items():
    setattr(Generator, _name, _as_method(_op))
del _name, _op
