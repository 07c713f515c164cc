"""Cases for the fast-path tests, shared with the x64 and 8-device subprocesses.

Each case is an op of ``rngstate.fast.COVERED``, a dtype and a shape; ``arguments`` builds
the call and ``reference`` computes it with raw ``jax.random`` (dropout: the documented mask).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import rngstate as rs
from rngstate import fast, golden

# On the JAX the project pins its values with, every covered (op, dtype) must verify. On
# another (`make test-oldest`), the first-use check may send a pair back to jax.random (jax
# 0.6.2: exponential float64, one ulp): the values must still be jax.random's.
STRICT = jax.__version__ == golden.pinned_table()["pinned_with"]["jax"]

# Scalar and empty (drawn with JAX's own bits: below fast._MIN_ELEMENTS), odd, 3-d.
SHAPES = [(), (0, 3), (7, 11), (2, 3, 17)]


def arguments(op: str, dtype: str, shape: tuple[int, ...]) -> dict[str, Any]:
    """Keyword arguments of one call of ``op`` in ``dtype`` and ``shape``."""
    if op == "bernoulli":
        return {"p": jnp.asarray(0.3, dtype), "shape": shape}
    if op == "dropout":
        return {
            "x": jnp.arange(1, 1 + int(np.prod(shape)), dtype=dtype).reshape(shape),
            "rate": 0.25,
        }
    if op == "randint":
        return {"shape": shape, "minval": 3, "maxval": 100, "dtype": jnp.dtype(dtype)}
    if op == "truncated_normal":
        return {"lower": -1.0, "upper": 2.5, "shape": shape, "dtype": jnp.dtype(dtype)}
    return {"shape": shape, "dtype": jnp.dtype(dtype)}


def reference(op: str, key: jax.Array, **kwargs: Any) -> jax.Array:
    """Raw jax.random for ``op``; dropout is inverted bernoulli masking."""
    if op == "dropout":
        x, rate = jnp.asarray(kwargs["x"]), kwargs["rate"]
        keep_prob = 1.0 - jnp.asarray(rate, jnp.result_type(float))
        keep = jax.random.bernoulli(key, keep_prob, x.shape)
        return jnp.where(keep, x / keep_prob.astype(x.dtype), jnp.zeros_like(x))
    return getattr(jax.random, op)(key, **kwargs)


def bit_mismatch(got: Any, want: Any) -> str | None:
    """None when both arrays have the same dtype, shape and bytes; else what differs."""
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"{got.dtype}{list(got.shape)} != {want.dtype}{list(want.shape)}"
    if got.tobytes() != want.tobytes():
        flat_got, flat_want = got.reshape(-1), want.reshape(-1)
        bad = [
            i
            for i in range(flat_got.size)
            if flat_got[i : i + 1].tobytes() != flat_want[i : i + 1].tobytes()
        ]
        first = bad[0]
        return f"{len(bad)} of {got.size} differ, first {flat_got[first]} != {flat_want[first]}"
    return None


def uses_fast_path(fn: Any, *args: Any) -> bool:
    """Whether tracing ``fn(*args)`` samples through the counter-mode key of the fast path."""
    return "rsfry" in str(jax.make_jaxpr(lambda *a: fn(*a))(*args))  # a fresh trace


def covered_dtypes(op: str, x64: bool) -> list[str]:
    """The dtypes of ``op`` on the fast path: the 64-bit ones when ``x64``, the others if not."""
    return [dtype for dtype in fast.COVERED[op] if dtype.endswith("64") == x64]


def shapes_for(op: str, dtype: str) -> list[tuple[int, ...]]:
    """Every shape of SHAPES in the op's default 32-bit dtype; the 3-d one in the others
    (the shape handling is the same for every dtype, and each draw costs a compile)."""
    main = {"bits": "uint32", "randint": "int32"}.get(op, "float32")
    return SHAPES if dtype == main else [(2, 3, 17)]


def check(op: str, dtypes: list[str], seed: int, offset: int) -> list[str]:
    """Draw ``op`` in each dtype and each of its :func:`shapes_for` through
    ``rngstate.random`` in one jitted program, and with raw jax.random in another; returns
    what went wrong (nothing when all matched, took the fast path and were verified)."""
    cases = [(dtype, shape) for dtype in dtypes for shape in shapes_for(op, dtype)]
    calls = [arguments(op, dtype, shape) for dtype, shape in cases]
    # Arrays go in as arguments: XLA folds constants with a different rounding than it
    # divides at run time (dropout's float16 scaling), which would compare folding, not bits.
    arrays = [{k: v for k, v in c.items() if isinstance(v, jax.Array)} for c in calls]
    static = [{k: v for k, v in c.items() if not isinstance(v, jax.Array)} for c in calls]

    def draw(gen: rs.Generator, arrays: list[dict]) -> list[jax.Array]:
        values = []
        for more, kwargs in zip(static, arrays, strict=True):
            value, gen = getattr(rs.random, op)(gen, **more, **kwargs)
            values.append(value)
        return values

    def expected(base: jax.Array, arrays: list[dict]) -> list[jax.Array]:
        # contract §2 for small numbers: the key is fold_in(key(seed), offset)
        return [
            reference(op, jax.random.fold_in(base, offset + i), **more, **kwargs)
            for i, (more, kwargs) in enumerate(zip(static, arrays, strict=True))
        ]

    gen = rs.Generator(seed=seed, offset=offset)
    got = jax.jit(draw)(gen, arrays)
    want = jax.jit(expected)(jax.random.key(seed), arrays)
    problems = [
        f"{op}[{dtype}] {shape}: {problem}"
        for (dtype, shape), g, w in zip(cases, got, want, strict=True)
        if (problem := bit_mismatch(g, w))
    ]
    states = {dtype: fast.status()[f"{op}[{dtype}]"] for dtype in dtypes}
    allowed = {"verified"} if STRICT else {"verified", "fallback"}
    problems += [f"{op}[{d}] is {state}" for d, state in states.items() if state not in allowed]
    if "verified" in states.values() and not uses_fast_path(draw, gen, arrays):
        problems.append(f"{op}: did not take the fast path")
    return problems
