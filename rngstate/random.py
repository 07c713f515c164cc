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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rngstate import _partitionable, _u64, fast
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


class _Static:
    """The non-array part of a call, hashable so that jit keys its compile cache on it."""

    __slots__ = ("slots", "_hash")

    def __init__(self, slots: tuple[Any, ...]) -> None:
        self.slots = slots  # per parameter: (treedef, leaf slots) or _TRACED
        self._hash = hash(slots)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Static) and self.slots == other.slots

    def rebuild(self, names: tuple[str, ...], dynamic: list[Any]) -> dict[str, Any]:
        it = iter(dynamic)
        values = {}
        for name, slot in zip(names, self.slots, strict=True):
            if slot is _TRACED:
                values[name] = next(it)
            else:
                treedef, leaves = slot
                values[name] = jax.tree.unflatten(
                    treedef, [next(it) if leaf is _TRACED else leaf[1] for leaf in leaves]
                )
        return values


_TRACED = "traced"
_SCALARS = (int, float, complex, np.number)
# jax.random annotates value parameters with these. Python numbers passed to them are traced,
# as raw jax.random traces them, so XLA cannot constant-fold them into different bits.
_VALUE_ANNOTATIONS = frozenset({"Array", "ArrayLike", "RealArray", "IntegerArray", "float"})
# The parity test over every op with explicit scalars guards this rule.


@functools.lru_cache(maxsize=4096)
def _scalar_as_array(kind: type, value: Any, x64: bool) -> jax.Array:
    # A Python scalar passed to jit is converted on every call (~40 us); its device array,
    # made once, is passed for ~1 us. jnp.asarray keeps the scalar's weak type, so the
    # compiled program and its values are the same. `kind` and `x64` keep 1, 1.0 and True
    # (equal as dict keys) and the two precisions apart.
    del kind, x64
    # Made concrete even when first met inside a user's jit: a cached tracer would leak
    # into every later trace ("Execution supplied 0 arguments but ... expected N").
    with jax.ensure_compile_time_eval():
        return jnp.asarray(value)


def _traced(value: Any) -> Any:
    if isinstance(value, (int, float, complex)):
        return _scalar_as_array(type(value), value, bool(jax.config.jax_enable_x64))
    return value


def _is_value_parameter(param: inspect.Parameter) -> bool:
    annotation = param.annotation
    if not isinstance(annotation, str):
        annotation = getattr(annotation, "__name__", str(annotation))
    kinds = {part.strip() for part in annotation.split("|")}
    return kinds <= _VALUE_ANNOTATIONS


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
        self.fast_as = fast_as

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

    def split(self, values: dict[str, Any]) -> tuple[_Static, list[Any]]:
        dynamic: list[Any] = []
        slots: list[Any] = []
        for name in self.names:
            value = values[name]
            traced_scalars = name in self.array_params
            if isinstance(value, (jax.Array, np.ndarray)) or (
                traced_scalars and isinstance(value, _SCALARS) and not isinstance(value, bool)
            ):
                dynamic.append(_traced(value))
                slots.append(_TRACED)
                continue
            leaves, treedef = jax.tree.flatten(value)
            leaf_slots = []
            for leaf in leaves:
                if isinstance(leaf, (jax.Array, np.ndarray)) or (
                    traced_scalars and isinstance(leaf, _SCALARS) and not isinstance(leaf, bool)
                ):
                    dynamic.append(_traced(leaf))
                    leaf_slots.append(_TRACED)
                else:  # shapes, dtypes, strings, flags: part of what is compiled
                    leaf_slots.append((type(leaf), leaf))
            slots.append((treedef, tuple(leaf_slots)))
        return _Static(tuple(slots)), dynamic


@functools.partial(jax.jit, static_argnums=(0, 1))
def _sample_and_advance(
    op: tuple[Callable[..., Any], _Binder],
    static: _Static,
    seed: jax.Array,
    offset: jax.Array,
    dynamic: list,
) -> tuple[Any, jax.Array]:
    sampler, binder = op
    values = sampler(derive_key(seed, offset), **static.rebuild(binder.names, dynamic))
    return values, _u64.add(offset, jnp.asarray(_ONE))


def _run(op: tuple[Callable[..., Any], _Binder], gen: Generator, args: tuple, kwargs: dict):
    name = op[1].name
    if not isinstance(gen, Generator):
        raise TypeError(f"{name}() takes a Generator first, got {type(gen).__name__}")
    if gen.batch_shape:
        raise ValueError(
            f"{name}() samples from one generator; got a batch of shape {gen.batch_shape}. "
            "Map over the batch with jax.vmap."
        )
    _partitionable.warn_if_off()
    sampler, binder = op
    arguments = binder.bind(args, kwargs)
    static, dynamic = binder.split(arguments)
    if binder.fast_as is not None and (served := binder.fast_as(arguments)) is not None:
        # Chosen here, outside the jit, so that the choice keys the compile cache.
        sampler = fast.select(sampler, *served)
    values, offset = _sample_and_advance((sampler, binder), static, gen.seed, gen.offset, dynamic)
    return values, Generator.from_words(gen.seed, offset)


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

    def op(gen: Generator, *args: Any, **kwargs: Any) -> tuple[Any, Generator]:
        return _run(bound, gen, args, kwargs)

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
    return _run(_DROPOUT, gen, (x, rate), {})


_DROPOUT = (
    _dropout_sampler,
    _Binder("dropout", _dropout_sampler, functools.partial(_as_itself, "dropout")),
)

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
