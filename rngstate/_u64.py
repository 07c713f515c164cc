"""64-bit unsigned numbers as pairs of ``uint32`` words ``[high, low]``.

This is the one place that turns user integers into words and the one place that does
64-bit arithmetic on them. Working in ``uint32`` keeps the representation identical with
``jax_enable_x64`` on or off, and keeps every value exact (no silent truncation to 32 bits).
"""

from __future__ import annotations

import hashlib
import numbers
import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

U64_MOD = 2**64
_MASK32 = 0xFFFFFFFF

__all__ = [
    "U64_MOD", "text_to_int", "to_words", "to_int", "from_words", "add", "is_concrete", "as_signed"
]


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values Python can read now (not a tracer under jit/vmap/grad)."""
    return not isinstance(x, jax.core.Tracer)


def _python_int(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got bool {value!r}")
    if isinstance(value, numbers.Integral):
        return operator.index(value)
    raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")


def to_words(value: Any, name: str, *, allow_negative: bool) -> jax.Array:
    """Convert an integer (Python, NumPy or JAX, traced too) to ``uint32[..., 2]`` words.

    Python and NumPy integers are checked exactly: they must lie in ``[0, 2**64)``, or in
    ``[-2**63, 2**64)`` when ``allow_negative`` (negatives then wrap mod 2**64, PyTorch's rule).
    Concrete integer arrays are checked the same way, element by element. A traced array
    cannot be read, so where negatives are refused (offsets, steps, names) a traced array
    must have an unsigned dtype: a signed one is a ``TypeError``, since a negative value
    would wrap mod 2**64 and move an offset back onto numbers already drawn. Cast a loop
    counter explicitly (``i.astype(jnp.uint32)``) to say it is never negative.

    >>> to_words(2**40 + 5, "seed", allow_negative=True).tolist()
    [256, 5]
    >>> to_words(-1, "seed", allow_negative=True).tolist()
    [4294967295, 4294967295]
    """
    if (
        isinstance(value, (jax.Array, np.ndarray))
        and np.ndim(value) > 0
        or isinstance(value, jax.core.Tracer)
    ):
        return _array_to_words(value, name, allow_negative)
    number = to_int(value, name, allow_negative=allow_negative)
    return jnp.array([number >> 32, number & _MASK32], dtype=jnp.uint32)


def to_int(value: Any, name: str, *, allow_negative: bool) -> int:
    """Check one concrete integer exactly and return it as a Python int in ``[0, 2**64)``.

    The scalar rule of :func:`to_words`, for callers that need the number itself: Python
    and NumPy integers and concrete 0-d integer arrays; ``[0, 2**64)``, or
    ``[-2**63, 2**64)`` wrapping mod 2**64 when ``allow_negative``.

    >>> to_int(-1, "seed", allow_negative=True)
    18446744073709551615
    >>> to_int(2**64, "seed", allow_negative=False)
    Traceback (most recent call last):
    ...
    ValueError: seed must be in [0, 2**64), got 18446744073709551616
    """
    if isinstance(value, jax.core.Tracer):
        raise TypeError(f"{name} must be a concrete integer, got a traced value")
    if isinstance(value, (jax.Array, np.ndarray)):
        if np.ndim(value) > 0:
            raise TypeError(f"{name} must be a single integer, got an array of shape {value.shape}")
        if not jnp.issubdtype(value.dtype, jnp.integer):
            raise TypeError(f"{name} must be an integer, got an array of dtype {value.dtype}")
        value = int(value)
    number = _python_int(value, name)
    low = -(2**63) if allow_negative else 0
    if not low <= number < U64_MOD:
        raise ValueError(f"{name} must be in [{low}, 2**64), got {number}")
    return number % U64_MOD


def _array_to_words(value: Any, name: str, allow_negative: bool) -> jax.Array:
    dtype = jnp.result_type(value)
    if dtype == jnp.bool_ or not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {dtype}")
    if not allow_negative and jnp.issubdtype(dtype, jnp.signedinteger):
        _refuse_negatives(value, name, dtype)
    if isinstance(value, np.ndarray) and value.dtype.itemsize == 8:
        # Split in NumPy: without x64, jnp.asarray would cut a 64-bit array to 32 bits.
        wide = value.astype(np.uint64)  # two's complement: wraps negatives mod 2**64
        words = np.stack([wide >> np.uint64(32), wide & np.uint64(_MASK32)], axis=-1)
        return jnp.asarray(words.astype(np.uint32))
    value = jnp.asarray(value)
    if dtype.itemsize == 8:  # only exists with jax_enable_x64
        wide = value.astype(jnp.uint64)
        high = (wide >> 32).astype(jnp.uint32)
        low = (wide & _MASK32).astype(jnp.uint32)
    else:
        low = value.astype(jnp.uint32)  # two's complement: wraps negatives mod 2**32
        if jnp.issubdtype(dtype, jnp.signedinteger):
            high = jnp.where(value < 0, jnp.uint32(_MASK32), jnp.uint32(0))  # sign-extend
        else:
            high = jnp.zeros_like(low)
    return jnp.stack([high, low], axis=-1)


def _refuse_negatives(value: Any, name: str, dtype: Any) -> None:
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{name} is a traced {dtype} array: its sign cannot be checked under a JAX "
            f"transformation, and a negative {name} would wrap mod 2**64 (for an offset or "
            "a step: a rewind onto numbers already drawn). Pass an unsigned array, e.g. "
            f"{name}.astype(jnp.uint32)"
        )
    smallest = np.asarray(value).min(initial=0)
    if smallest < 0:
        raise ValueError(f"{name} must be in [0, 2**64), got an array holding {int(smallest)}")


def as_signed(number: int) -> int:
    """A u64 in ``[0, 2**64)`` read as a two's-complement int64 (MindSpore's seed type).

    >>> as_signed(2**64 - 7), as_signed(7)
    (-7, 7)
    """
    return number - U64_MOD if number >= 2**63 else number


def from_words(words: Any) -> int:
    """Read concrete ``uint32[2]`` words back as a Python int.

    >>> from_words(to_words(2**63 + 7, "seed", allow_negative=False))
    9223372036854775815
    """
    high, low = (int(w) for w in np.asarray(words, dtype=np.uint32).reshape(2))
    return (high << 32) | low


def add(a: jax.Array, b: jax.Array) -> jax.Array:
    """``(a + b) mod 2**64`` on ``uint32[..., 2]`` words, with the carry from low to high.

    >>> add(to_words(2**32 - 1, "a", allow_negative=False),
    ...     to_words(1, "b", allow_negative=False)).tolist()
    [1, 0]
    """
    return _rngstate_u64_add(a, b)


# A named jitted call, so that offset arithmetic is recognisable in a jaxpr (how
# `rngstate.check_reuse` follows offsets); an eager call is one dispatch, and it is inlined
# under an outer jit.
@jax.jit
def _rngstate_u64_add(a: jax.Array, b: jax.Array) -> jax.Array:
    low = a[..., 1] + b[..., 1]
    carry = (low < a[..., 1]).astype(jnp.uint32)
    high = a[..., 0] + b[..., 0] + carry
    return jnp.stack([high, low], axis=-1)


ADD_CALL = _rngstate_u64_add.__name__
"""The name of the jitted call of :func:`add`, as it appears in a jaxpr."""


def text_to_int(text: str, person: bytes = b"") -> int:
    """A stable 64-bit number for a string: its 8-byte BLAKE2b digest, big-endian.

    ``person`` is BLAKE2b's personalisation, which keeps uses apart (empty: plain BLAKE2b).
    Unlike Python's ``hash()``, the value is the same in every process.

    >>> text_to_int("uniform") == text_to_int("uniform") != text_to_int("normal")
    True
    """
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, person=person).digest()
    return int.from_bytes(digest, "big")
