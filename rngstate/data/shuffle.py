"""``index_shuffle``: one position of a keyed pseudo-random permutation of ``[0, n)``, per index.

The construction (docs/data.md gives the reasons):

* radices ``A = ceil(sqrt(n))``, ``B = ceil(n / A)`` (``B + 1`` when both are odd); an index
  is ``(u, v) = divmod(x, B)``, each half one ``uint32`` word, with or without x64;
* eight rounds of an alternating Feistel network, ``(u, v) -> (v, (u + F_i(v)) mod P_i)``
  with ``P_i`` alternately ``A`` and ``B``; each round is a bijection whatever ``F_i`` is;
* ``F_i(v) = mix(v xor k_i) xor k'_i``, ``mix`` Wellons's two-multiply ``lowbias32``, the
  round keys hashed once per call by the project's Threefry-2x32-20 from the contract key
  ``K`` of ``gen`` and ``n``: ``K_n = threefry(K, n)``, ``(k_i, k'_i) = threefry(K_n, [TAG, i])``;
* cycle walking: an image ``>= n`` goes through the network again until it lands in
  ``[0, n)`` (nothing to walk when ``A * B == n``).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rngstate import _u64
from rngstate.generator import Generator, derive_key
from rngstate.threefry import threefry2x32

__all__ = ["index_shuffle", "MAX_N", "ROUNDS"]

ROUNDS = 8
"""Feistel rounds: twice Luby-Rackoff's four, since ``F_i`` is a keyed mixer, not a PRF."""

MAX_N = 2**64 - 1
"""The largest ``n``: indices must also fit their dtype (``uint32`` at most without x64)."""

_ROUND_TAG = int.from_bytes(b"rsIS", "big")  # the counter's high word of the round keys
_MASK32 = 0xFFFFFFFF


def check_n(n: Any) -> int:
    """``n`` as a Python int in ``[1, 2**64)``, or a ``TypeError``/``ValueError`` naming it.

    >>> check_n(10)
    10
    """
    return bounded_int(n, "n", 1, MAX_N, "2**64 - 1")


def bounded_int(value: Any, name: str, low: int, high: int, high_text: str) -> int:
    """A concrete integer in ``[low, high]``: the project's integer check, then the bounds.

    >>> bounded_int(0, "batch_size", 1, 8, "n = 8")
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be in [1, n = 8], got 0
    """
    plain = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if plain and value < 0:
        number = int(value)  # below every bound here: reported with the bounds below
    else:
        number = _u64.to_int(value, name, allow_negative=False)
    if not low <= number <= high:
        raise ValueError(f"{name} must be in [{low}, {high_text}], got {number}")
    return number


def single_generator(gen: Any) -> Generator:
    """``gen`` if it is one (unbatched) Generator; a ``TypeError``/``ValueError`` otherwise."""
    if not isinstance(gen, Generator):
        raise TypeError(f"gen must be a rngstate.Generator, got {type(gen).__name__}")
    if gen.batch_shape:
        raise ValueError(f"gen must be a single generator, got batch shape {gen.batch_shape}")
    return gen


def _fits(dtype: Any, n: int) -> bool:
    return int(jnp.iinfo(dtype).max) >= n - 1


def default_index_dtype(n: int) -> Any:
    """The narrowest of ``int32``, ``uint32``, ``int64``, ``uint64`` that holds ``n - 1``.

    64-bit dtypes need ``jax_enable_x64``; without it a larger ``n`` is a ``ValueError``.

    >>> default_index_dtype(10**9), default_index_dtype(2**32 - 1)
    (dtype('int32'), dtype('uint32'))
    """
    wide = (jnp.int64, jnp.uint64) if jax.config.jax_enable_x64 else ()
    for dtype in (jnp.int32, jnp.uint32, *wide):
        if _fits(dtype, n):
            return np.dtype(dtype)
    raise ValueError(
        f"n must be at most 2**32 - 1 without jax_enable_x64 (indices are 32-bit), got {n}"
    )


def _as_indices(index: Any, n: int) -> jax.Array:
    """``index`` as an integer JAX array whose dtype holds ``n - 1``, range-checked if concrete."""
    if isinstance(index, (bool, np.bool_)):
        raise TypeError(f"index must be an integer or an integer array, got bool {index!r}")
    if isinstance(index, jax.core.Tracer) or isinstance(index, jax.Array):
        dtype = index.dtype
        if dtype == jnp.bool_ or not jnp.issubdtype(dtype, jnp.integer):
            raise TypeError(f"index must be an integer array, got dtype {dtype}")
        if not _fits(dtype, n):
            raise ValueError(
                f"index has dtype {dtype}, which cannot hold positions up to n - 1 = {n - 1}; "
                f"pass {default_index_dtype(n)} indices"
            )
        if _u64.is_concrete(index):
            _check_range(np.asarray(index), n)
        return index
    try:
        host = np.asarray(index)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"index must be an integer or an integer array, got {index!r}") from None
    if host.dtype == np.bool_ or not np.issubdtype(host.dtype, np.integer):
        if host.dtype == object and all(isinstance(v, int) for v in host.ravel()):
            _check_range(host, n)  # Python ints beyond int64: out of range anyway
        raise TypeError(f"index must be an integer or an integer array, got dtype {host.dtype}")
    _check_range(host, n)
    dtype = jax.dtypes.canonicalize_dtype(host.dtype)
    # Checked values: a 64-bit NumPy array narrowed without x64 loses nothing.
    return jnp.asarray(host.astype(dtype if _fits(dtype, n) else default_index_dtype(n)))


def _check_range(host: np.ndarray, n: int) -> None:
    if host.size == 0:
        return
    low, high = int(host.min()), int(host.max())
    if low < 0 or high >= n:
        bad = low if low < 0 else high
        raise ValueError(f"index must be in [0, n) = [0, {n}), got {bad}")


def _mix(x: jax.Array) -> jax.Array:
    # lowbias32 (C. Wellons, "Prospecting for hash functions"): a bijection of uint32 whose
    # every output bit depends on every input bit, for two multiplies; the low bits that
    # the narrow halves keep are as well mixed as the high ones.
    x = x ^ (x >> jnp.uint32(16))
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> jnp.uint32(15))
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> jnp.uint32(16))


def round_keys(gen: Generator, n: int) -> jax.Array:
    """The ``uint32[ROUNDS, 2]`` round keys of the permutation of ``[0, n)`` fixed by ``gen``.

    >>> round_keys(Generator(0), 10).shape
    (8, 2)
    """
    key = jax.random.key_data(derive_key(gen.seed, gen.offset))
    per_n = threefry2x32(key[..., 0], key[..., 1], jnp.uint32(n >> 32), jnp.uint32(n & _MASK32))
    rounds = jnp.arange(ROUNDS, dtype=jnp.uint32)
    k0, k1 = (w[..., None] for w in per_n)
    return jnp.stack(threefry2x32(k0, k1, jnp.uint32(_ROUND_TAG), rounds), axis=-1)


def halves(n: int) -> tuple[int, int]:
    """The network's radices ``(A, B)``: ``A = ceil(sqrt(n))``, ``B = ceil(n / A)``, plus one
    when both are odd.

    Their product covers ``n`` with at most about ``2 * sqrt(n)`` to spare, so cycle walking
    is rare. Parity: a round adds ``F(v)`` to ``u`` modulo ``P``, for each ``v`` a rotation
    of ``Z_P``; with ``P`` odd that is always an even permutation, so with both radices odd
    the network would only reach even permutations (half of them), a structure a cycle
    count finds at once. An even radix makes each round's parity a fair coin.

    >>> halves(10), halves(2**24), halves(2**24 + 1), halves(9)
    ((4, 3), (4096, 4096), (4097, 4096), (3, 4))
    """
    a = math.isqrt(n - 1) + 1 if n > 1 else 1
    b = -(-n // a)
    return a, b + (a & b & 1)


def _add_mod(u: jax.Array, f: jax.Array, modulus: int) -> jax.Array:
    # (u + f) mod modulus for u < modulus <= 2**32, without a wider dtype: the uint32 sum
    # may wrap once, and then (as when it passes the modulus) subtracting fixes it.
    if modulus == 1 << 32:
        return u + f
    total = u + f % jnp.uint32(modulus)
    over = (total >= jnp.uint32(modulus)) | (total < u)
    return jnp.where(over, total - jnp.uint32(modulus), total)


def _network(u: jax.Array, v: jax.Array, keys: jax.Array, radices: tuple[int, int]):
    for i in range(ROUNDS):
        f = _mix(v ^ keys[..., i, 0]) ^ keys[..., i, 1]
        u, v = v, _add_mod(u, f, radices[i % 2])  # the halves swap radices every round
    return u, v  # ROUNDS is even: u < A and v < B again


def _permute(index: jax.Array, keys: jax.Array, n: int) -> jax.Array:
    radix_a, radix_b = halves(n)
    dtype = index.dtype
    last = jnp.array(n - 1, dtype)  # n itself may not fit the dtype
    signed = jnp.issubdtype(dtype, jnp.signedinteger)
    valid = (index >= 0) & (index <= last) if signed else index <= last
    x = jnp.where(valid, index, jnp.zeros((), dtype))
    width_b = jnp.array(radix_b, dtype)  # B <= max(n - 1, 1) fits the dtype
    u, v = (x // width_b).astype(jnp.uint32), (x % width_b).astype(jnp.uint32)
    state = _network(u, v, keys, (radix_a, radix_b))
    if radix_a * radix_b != n:  # cycle walking: only where A * B passes n
        n_u, n_v = jnp.uint32(n // radix_b), jnp.uint32(n % radix_b)

        def outside(state):
            high, low = state
            return (high > n_u) | ((high == n_u) & (low >= n_v))

        def again(state):
            stepped = _network(*state, keys, (radix_a, radix_b))
            out = outside(state)
            return tuple(jnp.where(out, s, t) for s, t in zip(stepped, state, strict=True))

        state = jax.lax.while_loop(lambda s: jnp.any(outside(s)), again, state)
    high, low = state
    position = high.astype(dtype) * width_b + low.astype(dtype)
    # An out-of-range traced index cannot raise: its result is outside [0, n) as well.
    invalid = jnp.array(-1 if signed else jnp.iinfo(dtype).max, dtype)
    return jnp.where(valid, position, invalid)


def index_shuffle(gen: Generator, index: Any, n: int) -> jax.Array:
    """The position of each ``index`` under a pseudo-random permutation of ``[0, n)``.

    The permutation is fixed by ``gen``'s ``(seed, offset)`` and ``n``, and is evaluated
    index by index: O(1) memory whatever ``n``, eagerly or under ``jit``/``vmap``, on sharded
    inputs, with no host round trip. Like a sampler it consumes ``gen``'s key: draw nothing
    else from the same ``(seed, offset)``. ``gen`` is a single generator.

    Args:
      gen: the generator whose current key fixes the permutation.
      index: an integer or an integer array of any shape, values in ``[0, n)``. Concrete
        values outside are a ``ValueError``; a traced one cannot be checked and gives ``-1``
        (signed dtypes) or the dtype's maximum (unsigned), never a position.
      n: the size of the permuted range, a Python int in ``[1, 2**64)``; static under jit.
        The index dtype must hold ``n - 1`` (``uint32`` reaches ``2**32 - 1``; larger ``n``
        needs ``jax_enable_x64`` and 64-bit indices).

    Returns: an array of ``index``'s shape and dtype (Python ints and NumPy arrays: the
    narrowest 32- or 64-bit dtype that holds ``n - 1``).

    >>> import jax.numpy as jnp
    >>> import rngstate as rs
    >>> g = rs.Generator(seed=0)
    >>> p = index_shuffle(g, jnp.arange(10), 10)
    >>> sorted(p.tolist()) == list(range(10))
    True
    >>> int(index_shuffle(g, 3, 10)) == int(p[3])
    True
    """
    n = check_n(n)
    single_generator(gen)
    index = _as_indices(index, n)
    return _index_shuffle(gen, index, n)


def permute(gen: Generator, index: jax.Array, n: int) -> jax.Array:
    """:func:`index_shuffle` without the checks, for callers that made them (traceable).

    >>> int(permute(Generator(0), jnp.int32(3), 10)) == int(index_shuffle(Generator(0), 3, 10))
    True
    """
    return _permute(index, round_keys(gen, n), n)


# One dispatch eagerly (the round keys and the network); inlined under an outer jit.
_index_shuffle = jax.jit(permute, static_argnums=2)
