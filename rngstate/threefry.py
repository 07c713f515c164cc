"""Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3").

The only implementation of the hash in the package: key derivation uses it for one block,
and the counter-mode samplers use it for many. Written in plain array ops so XLA can fuse
it with whatever consumes its output; it broadcasts over any leading shape. The same code
runs on NumPy (``xp=np``) for seeds derived on the host, where no JAX dispatch may happen
(in a forked data-loader worker, for instance): :func:`hash_u64`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["threefry2x32", "hash_u64"]

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA
_MASK32 = 0xFFFFFFFF


def _rotate_left(x: Any, r: int, xp: ModuleType) -> Any:
    return (x << xp.uint32(r)) | (x >> xp.uint32(32 - r))


def threefry2x32(
    key0: jax.Array, key1: jax.Array, count0: jax.Array, count1: jax.Array, *, xp: ModuleType = jnp
) -> tuple[jax.Array, jax.Array]:
    """Hash the counter block ``(count0, count1)`` under the key ``(key0, key1)``.

    All four inputs are ``uint32`` arrays that broadcast together; returns two words.
    ``xp`` is the array module, ``jax.numpy`` or ``numpy``.
    Matches Random123's ``threefry2x32_R(20, ctr, key)``:

    >>> import jax.numpy as jnp
    >>> zero = jnp.uint32(0)
    >>> [hex(int(w)) for w in threefry2x32(zero, zero, zero, zero)]
    ['0x6b200159', '0x99ba4efe']
    """
    key0, key1, x0, x1 = (xp.asarray(v, xp.uint32) for v in (key0, key1, count0, count1))
    schedule = (key0, key1, key0 ^ key1 ^ xp.uint32(_PARITY))
    x0 = x0 + schedule[0]
    x1 = x1 + schedule[1]
    for block in range(5):  # 5 blocks of 4 rounds, a key injection after each
        for r in _ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = _rotate_left(x1, r, xp) ^ x0
        x0 = x0 + schedule[(block + 1) % 3]
        x1 = x1 + schedule[(block + 2) % 3] + xp.uint32(block + 1)
    return x0, x1


def hash_u64(key: int, counter: int) -> int:
    """One threefry2x32-20 block on 64-bit Python ints, computed on the host with NumPy.

    ``key`` and ``counter`` in ``[0, 2**64)`` are split into ``[high, low]`` words; the two
    output words are read back high first. This is the contract's key derivation as a number:
    ``hash_u64(s, o)`` is the key data of ``Generator(seed=s, offset=o).key()``. It never
    dispatches to a JAX device, so it is safe in forked processes.

    >>> hex(hash_u64(0, 0))
    '0x6b20015999ba4efe'
    """
    # Shape-(1,) arrays: NumPy wraps array arithmetic mod 2**32 silently (scalars would warn).
    key_high, key_low, count_high, count_low = (
        np.array([word], np.uint32)
        for word in (key >> 32, key & _MASK32, counter >> 32, counter & _MASK32)
    )
    high, low = threefry2x32(key_high, key_low, count_high, count_low, xp=np)
    return (int(high[0]) << 32) | int(low[0])
