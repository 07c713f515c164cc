"""Arguments for every op whose output can be split over a 2x4 device mesh.

Built from test_random_ops.OP_ARGS (the one table of valid arguments): every op that takes
a ``shape`` gets ``shape=(16, 8)``, so its output's two leading dimensions divide by 8 and
by 2x4. The few ops without a ``shape`` parameter, or whose other arguments bound the
shape, get their own arguments here, each with the reason.
"""

from __future__ import annotations

import inspect

import jax.numpy as jnp
from test_random_ops import OP_ARGS

import rngstate as rs

LEADING = (16, 8)

_OWN_ARGS: dict[str, tuple[tuple, dict]] = {
    # No shape parameter: the output has the shape of the array permuted (rows shuffled).
    "permutation": ((jnp.arange(128).reshape(LEADING),), {}),
    # 128 draws without replacement need a population of at least 128.
    "choice": ((256, LEADING), {"replace": False}),
    # multinomial: p broadcast to the leading dimensions, no shape= (whose meaning changed in
    # jax 0.12: it no longer includes the category axis), so every JAX draws (16, 8, 3).
    "multinomial": ((10.0, jnp.broadcast_to(jnp.array([0.2, 0.3, 0.5]), (*LEADING, 3))), {}),
    # Not a jax.random sampler (so not in OP_ARGS): the mask has the shape of x.
    "dropout": ((jnp.arange(128.0).reshape(LEADING), 0.25), {}),
}


def _with_leading_shape(name: str) -> tuple[tuple, dict]:
    args, kwargs = OP_ARGS[name]
    bound = inspect.signature(rs.random.JAX_SAMPLERS[name]).bind(None, *args, **kwargs)
    bound.arguments["shape"] = LEADING
    return bound.args[1:], bound.kwargs


def shardable_args() -> dict[str, tuple[str, tuple, dict]]:
    """``{case: (op name, args, kwargs)}`` for every op of rngstate.random, case = op name."""
    table = {}
    for name in rs.random.OP_NAMES:
        if name in _OWN_ARGS:
            table[name] = (name, *_OWN_ARGS[name])
        else:
            if "shape" not in inspect.signature(rs.random.JAX_SAMPLERS[name]).parameters:
                raise KeyError(f"{name} has no shape parameter: give it arguments in _OWN_ARGS")
            table[name] = (name, *_with_leading_shape(name))
    return table


# Samplers that loop until every element is accepted (gamma and those built on it; poisson,
# binomial and multinomial). Sharded, XLA all-reduces the loop's stop flag across devices.
REJECTION_SAMPLERS = frozenset(
    "gamma beta chisquare dirichlet f loggamma t generalized_normal ball poisson binomial "
    "multinomial".split()
)

# The last step of multivariate_normal is a matmul over the event axis, and of dirichlet a
# normalising sum over it (a softmax of log-gamma draws). With a batch of 16 rows split 8
# ways, XLA:CPU compiles that step for a 2-row block and can round it differently than for
# 16 rows; an unsharded call with the block's shape gives the sharded block exactly. The
# random draws underneath are the same bits. These cases bound the difference: a few ulp
# is rounding, where a different draw would differ by millions of ulp.
ROUNDING_CASES: dict[str, tuple[str, tuple, dict]] = {
    "multivariate_normal_batch16": (
        "multivariate_normal",
        (jnp.zeros(2), jnp.array([[2.0, 0.5], [0.5, 1.0]]), (16,)),
        {},
    ),
    "dirichlet_batch16": ("dirichlet", (jnp.array([1.0, 2.0, 3.0]), (16,)), {}),
}
ROUNDING_ULPS = 4  # 1 (mvn) and 2 (dirichlet) measured on XLA:CPU, jax 0.10

# jax 0.12 (jaxlib 0.12's XLA:CPU): the transcendental last step of these samplers (log, log1p,
# exp, pow of a uniform or gamma draw) rounds differently, by an ulp or two, in some elements
# depending on the program it is compiled in: sharded by jax.jit over 8 or 2x4 devices, inside
# shard_map (every device drawing the whole array) and with out_sharding= alike. Raw
# jax.random does the same: on jax 0.12.0.1, jax.jit(jax.random.exponential, out_shardings=...)
# on 8 devices differs from the unsharded jit in 1 of 128 values (docs/compatibility.md). The
# bits underneath are equal; jax 0.6.2 and 0.10.2 give every op exactly.
JAX_0_12_ROUNDING_OPS = frozenset(
    "beta chisquare dirichlet exponential f gumbel logistic pareto weibull_min".split()
)
