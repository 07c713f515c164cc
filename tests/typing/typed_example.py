"""What a type checker sees of rngstate: each reveal_type line states the type it must reveal.

tests/test_typing.py runs pyright on this file and compares every ``reveal_type`` with the
``# expect:`` comment on its line; ``# pyright: ignore[...]`` lines must still be errors
(``reportUnnecessaryTypeIgnoreComment``), which proves the ops have real parameters.
"""

from typing import reveal_type

import jax.numpy as jnp

import rngstate as rs

g = rs.Generator(seed=0)

# Generator methods: the ops of rngstate.random, attached at import time.
reveal_type(g.normal((3,)))  # expect: tuple[Array, Generator]
x, g2 = g.uniform((2, 2), jnp.float32, minval=-1.0, maxval=1.0)
reveal_type(x)  # expect: Array
reveal_type(g2)  # expect: Generator
reveal_type(g.randint((4,), 0, 10))  # expect: tuple[Array, Generator]
reveal_type(g.bits((4,), jnp.uint32))  # expect: tuple[Array, Generator]
reveal_type(g.gumbel((3,), mode="high"))  # expect: tuple[Array, Generator]
reveal_type(g.choice(5, (2,), replace=False))  # expect: tuple[Array, Generator]
reveal_type(g.dropout(jnp.ones(4), 0.5))  # expect: tuple[Array, Generator]
reveal_type(g.spawn(4))  # expect: tuple[Generator, Generator]

# rngstate.random: op(gen, ...) -> (values, next_gen).
reveal_type(rs.random.normal(g, (3,)))  # expect: tuple[Array, Generator]
reveal_type(rs.random.exponential(g, (3,)))  # expect: tuple[Array, Generator]
reveal_type(rs.random.categorical(g, jnp.zeros(3)))  # expect: tuple[Array, Generator]
reveal_type(rs.random.dropout(g, jnp.ones(4), 0.5))  # expect: tuple[Array, Generator]

# rngstate.ops: the stateful facade returns the values only.
reveal_type(rs.ops.normal((3,)))  # expect: Array
reveal_type(rs.ops.randint((3,), 0, 10, seed=7))  # expect: Array
reveal_type(rs.ops.dropout(jnp.ones(4), 0.5))  # expect: Array

# rngstate.init: initializers, (gen, shape, dtype, ...) -> (array, next_gen).
reveal_type(rs.init.kaiming_uniform(g, (64, 32)))  # expect: tuple[Array, Generator]
reveal_type(rs.init.glorot_normal(g, (64, 32)))  # expect: tuple[Array, Generator]
reveal_type(rs.init.orthogonal(g, (8, 4), column_axis=0))  # expect: tuple[Array, Generator]

# Real parameters: a misspelt or missing argument is an error, not Any.
g.normal((3,), dtpye=jnp.float32)  # pyright: ignore[reportCallIssue]
rs.random.randint(g, (3,))  # pyright: ignore[reportCallIssue]
rs.ops.normal(g, (3,))  # pyright: ignore[reportArgumentType]
