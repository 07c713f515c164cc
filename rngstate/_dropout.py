"""The one definition of the dropout mask, shared by the dropout op and its fast path.

>>> import jax, jax.numpy as jnp
>>> dropout_sampler(jax.random.key(0), jnp.ones(4), 0.0).tolist()
[1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

# jax.random takes out_sharding from JAX 0.7 on, with explicit-axes meshes; an older JAX
# has no such mesh, and its bernoulli no such parameter.
_MASK_TAKES_SHARDING = "out_sharding" in inspect.signature(jax.random.bernoulli).parameters


def dropout_sampler(key: jax.Array, x: ArrayLike, rate: ArrayLike) -> jax.Array:
    """Inverted dropout of ``x`` with the mask ``jax.random.bernoulli(key, 1 - rate, x.shape)``.

    The mask is sharded as ``x`` is (``out_sharding=jax.typeof(x).sharding``).

    The parameter annotations mark ``x`` and ``rate`` as values, so Python numbers passed
    to them are traced rather than compiled in.

    >>> import jax, jax.numpy as jnp
    >>> dropout_sampler(jax.random.key(0), jnp.ones(3), 1.0).tolist()
    [0.0, 0.0, 0.0]
    """
    x = jnp.asarray(x)
    keep_prob = 1.0 - rate
    # The mask takes x's sharding, as nnx.Dropout's does: under an explicit-axes mesh
    # (jax.set_mesh) `where` needs its operands sharded alike. Values do not depend on it.
    sharded_as_x = {"out_sharding": jax.typeof(x).sharding} if _MASK_TAKES_SHARDING else {}
    keep = jax.random.bernoulli(key, keep_prob, x.shape, **sharded_as_x)
    # rate == 1 keeps nothing; guard the division so the kept-nothing case has no inf/nan.
    scaled = x / jnp.where(keep_prob > 0, keep_prob, 1.0).astype(x.dtype)
    return jnp.where(keep, scaled, jnp.zeros_like(x))
