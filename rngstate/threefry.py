"""Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3").

The only implementation of the hash in the package: key derivation uses it for one block,
and the counter-mode samplers use it for many. Written in plain ``jnp`` ops so XLA can fuse
it with whatever consumes its output; it broadcasts over any leading shape.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["threefry2x32"]

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA


def _rotate_left(x: jax.Array, r: int) -> jax.Array:
    return (x << jnp.uint32(r)) | (x >> jnp.uint32(32 - r))


def threefry2x32(
    key0: jax.Array, key1: jax.Array, count0: jax.Array, count1: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Hash the counter block ``(count0, count1)`` under the key ``(key0, key1)``.

    All four inputs are ``uint32`` arrays that broadcast together; returns two words.
    Matches Random123's ``threefry2x32_R(20, ctr, key)``:

    >>> import jax.numpy as jnp
    >>> zero = jnp.uint32(0)
    >>> [hex(int(w)) for w in threefry2x32(zero, zero, zero, zero)]
    ['0x6b200159', '0x99ba4efe']
    """
    key0, key1, x0, x1 = (jnp.asarray(v, jnp.uint32) for v in (key0, key1, count0, count1))
    schedule = (key0, key1, key0 ^ key1 ^ jnp.uint32(_PARITY))
    x0 = x0 + schedule[0]
    x1 = x1 + schedule[1]
    for block in range(5):  # 5 blocks of 4 rounds, a key injection after each
        for r in _ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = _rotate_left(x1, r) ^ x0
        x0 = x0 + schedule[(block + 1) % 3]
        x1 = x1 + schedule[(block + 2) % 3] + jnp.uint32(block + 1)
    return x0, x1
