"""Shapes and sizes: the one check every op's ``shape`` (and ``spawn``'s ``n``) goes through.

A shape is what ``jax.random`` accepts, checked before anything is dispatched: an int ``n``
(read as ``(n,)``), or a sequence or concrete 1-d array of ints, each ``>= 0``. Bools,
floats, strings and traced arrays are ``TypeError``; negative dimensions and sizes beyond
:data:`MAX_ELEMENTS` are ``ValueError``. Both name the argument and the accepted range.

The bound. XLA keeps extents and byte sizes as int64 and aborts the process (it does not
raise) when their product overflows, e.g. ``uniform(g, (2**62,))``. ``2**53`` elements
(the largest count a float64 holds exactly) of the widest dtype, 8 bytes, are ``2**56``
bytes, with room below ``2**63`` for a sampler's wider intermediates. Larger requests can
never be allocated, so they are refused; smaller ones that do not fit the device raise
XLA's own out-of-memory error.

>>> shape([2, 3]), shape(4), shape(__import__("numpy").array([5]))
((2, 3), (4,), (5,))
>>> shape((2, -3))
Traceback (most recent call last):
...
ValueError: shape must have dimensions in [0, 2**53], got (2, -3)
"""

from __future__ import annotations

import functools
import inspect
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

__all__ = ["MAX_ELEMENTS", "shape", "count", "shape_arguments"]

MAX_ELEMENTS = 2**53
"""The most elements one shape may hold: the product of its nonzero dimensions."""

_ACCEPTED = "an int or a sequence of ints in [0, 2**53] with at most 2**53 elements"


def _bad_type(name: str, value: Any, why: str = "") -> TypeError:
    got = f"{type(value).__name__} {value!r}"
    return TypeError(f"{name} must be {_ACCEPTED}; got {got}{why}")


def _dimension(value: Any, name: str, whole: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or isinstance(value, jax.core.Tracer):
        raise _bad_type(name, whole)
    try:
        return operator.index(value)
    except TypeError:
        raise _bad_type(name, whole) from None


def shape(value: Any, name: str = "shape") -> tuple[int, ...]:
    """``value`` as a shape tuple of Python ints, or a ``TypeError``/``ValueError`` naming ``name``.

    >>> shape((3, 0, 2**40))
    (3, 0, 1099511627776)
    >>> shape(True)
    Traceback (most recent call last):
    ...
    TypeError: shape must be an int or a sequence of ints ...; got bool True
    """
    if type(value) is tuple and all(type(d) is int for d in value):  # the common case, fast
        dims = value
    elif isinstance(value, (jax.Array, np.ndarray)) and not isinstance(value, jax.core.Tracer):
        if value.dtype == np.bool_ or not np.issubdtype(value.dtype, np.integer):
            raise _bad_type(name, value, f" of dtype {value.dtype}")
        if value.ndim > 1:
            raise _bad_type(name, value, f" of {value.ndim} dimensions")
        dims = tuple(int(d) for d in np.asarray(value).reshape(-1))
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        dims = tuple(_dimension(d, name, value) for d in value)
    elif isinstance(value, jax.core.Tracer):
        raise _bad_type(name, value, ": a shape must be concrete (static) under jit")
    else:
        dims = (_dimension(value, name, value),)
    if dims and not (min(dims) >= 0 and max(dims) <= MAX_ELEMENTS):
        raise ValueError(f"{name} must have dimensions in [0, 2**53], got {dims}")
    total = math.prod(dims)
    if total > MAX_ELEMENTS or (total == 0 and math.prod(d for d in dims if d) > MAX_ELEMENTS):
        raise ValueError(f"{name} must hold at most 2**53 elements, got {dims}")
    return dims


def count(value: Any, name: str, per_item: int = 1) -> int:
    """A number of items, ``value * per_item`` elements in all, each at most :data:`MAX_ELEMENTS`.

    >>> count(4, "n")
    4
    >>> count(2**60, "n")
    Traceback (most recent call last):
    ...
    ValueError: n must be in [0, 9007199254740992], got 1152921504606846976
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    number = int(value)
    top = MAX_ELEMENTS // max(per_item, 1)
    if not 0 <= number <= top:
        raise ValueError(f"{name} must be in [0, {top}], got {number}")
    return number


@functools.cache
def _shape_parameters(sampler: Callable[..., Any]) -> tuple[tuple[str, bool], ...]:
    # (name, None allowed) for each parameter that is a shape: named `shape`, as in every
    # jax.random sampler, jax.nn initializer and rngstate.init op.
    try:
        params = inspect.signature(sampler).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - samplers have signatures
        return ()
    return tuple((p.name, p.default is None) for p in params if p.name == "shape")


def shape_arguments(sampler: Callable[..., Any], arguments: dict[str, Any]) -> None:
    """Check the shape arguments of one call of ``sampler``, put back as tuples of ints.

    ``arguments`` are the call's arguments by name (the key left out). A shape whose
    default is ``None`` may be ``None`` (``jax.random``: the broadcast shape of the others).

    >>> import jax
    >>> arguments = {"shape": [2, 3], "dtype": float}
    >>> shape_arguments(jax.random.uniform, arguments); arguments["shape"]
    (2, 3)
    """
    for name, none_allowed in _shape_parameters(sampler):
        value = arguments.get(name)
        if value is None and none_allowed:
            continue
        arguments[name] = shape(value, name)
    _extents(getattr(sampler, "__name__", ""), arguments)


# Integer arguments that are sizes too: permutation(x=n) and choice(a=n) draw from arange(n),
# orthogonal makes (..., n, m) matrices, ball (..., d) points. Left unchecked, a huge one
# aborts the process in XLA as a huge shape does.
_EXTENTS = {"permutation": ("x",), "choice": ("a",), "orthogonal": ("n", "m"), "ball": ("d",)}


def _extents(op: str, arguments: dict[str, Any]) -> None:
    """Refuse integer size arguments whose elements, with the shape's, pass MAX_ELEMENTS.

    >>> import rngstate as rs
    >>> rs.random.permutation(rs.Generator(0), 2**62)
    Traceback (most recent call last):
    ...
    ValueError: x must be at most 2**53 elements with shape (), got {'x': 4611686018427387904}
    """
    sizes = {}
    for name in _EXTENTS.get(op, ()):
        value = arguments.get(name)
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            sizes[name] = int(value)  # an array, or None, is not a size
    if not sizes:
        return
    square = op == "orthogonal" and arguments.get("m") is None  # (n, n) matrices
    elements = math.prod(arguments.get("shape") or ()) * math.prod(sizes.values())
    if elements * (sizes.get("n", 1) if square else 1) > MAX_ELEMENTS:
        names = " and ".join(sizes)
        raise ValueError(
            f"{names} must be at most 2**53 elements with shape "
            f"{arguments.get('shape') or ()}, got {sizes}"
        )
