"""The benchmark cases: rngstate against raw jax.random, NumPy and PyTorch.

Each case registers itself with :func:`benchmarks.harness.register`; see README.md in this
folder for how to add one.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import rngstate as rs
from benchmarks.harness import Case, Contender, Target, Unavailable, register
from benchmarks.probe import FIRST_CALL_OPS

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

Contenders = dict[str, Contender | Unavailable]


# -- optional contenders ------------------------------------------------------------------


def optional_module(name: str) -> Any:
    """Import ``name``, or return :class:`Unavailable` saying it is not available here."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return Unavailable(f"{name} not available")


def _torch() -> Any:
    torch = optional_module("torch")
    if not isinstance(torch, Unavailable):
        torch.manual_seed(0)
    return torch


def _threaded(op: Callable[..., tuple[Any, rs.Generator]], *args: Any) -> Contender:
    """``op(gen, *args)`` called as a user calls it: each call hands on the next generator.

    The call returns the values, which the harness waits for, as it waits for the raw
    baseline's: the next generator comes out of the same program, ready with them. Waiting
    on it too would time ``block_until_ready`` flattening a Generator (~1.3 us), not the op.
    """
    state = [rs.Generator(seed=0)]

    def call() -> Any:
        values, state[0] = op(state[0], *args)
        return values

    return call


def _only(build: Callable[[int], Contenders], *names: str) -> Callable[[int], Contenders]:
    """A case's ``build`` that keeps only the ``names`` contenders of another case's."""

    def only(n: int) -> Contenders:
        contenders = build(n)
        return {name: contenders[name] for name in names}

    return only


def raw_dropout(key: jax.Array, x: jax.Array, rate: float) -> jax.Array:
    """Inverted dropout written by hand on raw jax.random, the way users write it."""
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


# -- in-jit overhead ------------------------------------------------------------------------
# Where the work is the same up to a few microseconds, each case also times a second copy of
# the baseline ("... again"): its ratio, ideally 1, shows how far noise alone moves a ratio
# in this run.

_IN_JIT_CALLS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    # op: (rngstate call, raw jax.random call), both taking (gen or key, x, n)
    "uniform": (
        lambda g, x, n: rs.random.uniform(g, (n,)),
        lambda k, x, n: jax.random.uniform(k, (n,)),
    ),
    "normal": (
        lambda g, x, n: rs.random.normal(g, (n,)),
        lambda k, x, n: jax.random.normal(k, (n,)),
    ),
    "bernoulli": (
        lambda g, x, n: rs.random.bernoulli(g, 0.5, (n,)),
        lambda k, x, n: jax.random.bernoulli(k, 0.5, (n,)),
    ),
    "dropout": (
        lambda g, x, n: rs.random.dropout(g, x, 0.5),
        lambda k, x, n: raw_dropout(k, x, 0.5),
    ),
}


def _in_jit_names(op: str) -> tuple[str, str]:
    raw = "jit(raw dropout)" if op == "dropout" else f"jit(jax.random.{op})"
    return raw, f"jit(rs.random.{op})"


def _in_jit(op: str) -> Callable[[int], Contenders]:
    ours, raw = _IN_JIT_CALLS[op]
    raw_name, ours_name = _in_jit_names(op)

    def build(n: int) -> Contenders:
        x = jnp.ones((n,), jnp.float32)
        ours_jit = jax.jit(lambda g, x: ours(g, x, n))
        raw_jit = jax.jit(lambda k, x: raw(k, x, n))
        raw_again = jax.jit(lambda k, x: raw(k, x, n))
        gen, key = rs.Generator(seed=0), jax.random.key(0)
        return {
            raw_name: lambda: raw_jit(key, x),
            ours_name: lambda: ours_jit(gen, x),
            f"{raw_name} again": lambda: raw_again(key, x),
        }

    return build


for _op in _IN_JIT_CALLS:
    register(
        Case(
            name=f"in-jit {_op}",
            description=f"one jitted {_op} draw: rngstate's derive+sample+advance vs raw jax",
            build=_in_jit(_op),
            sizes={"smoke": 2**8, "quick": 2**20, "full": 2**20},
            baseline=_in_jit_names(_op)[0],
            targets={_in_jit_names(_op)[1]: Target(max_ratio=1.02)},
        )
    )


def xla_cost(fn: Callable[..., Any], *args: Any) -> dict[str, float]:
    """XLA's own estimate of the compiled program's work: flops and bytes accessed."""
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost  # older JAX: one dict per device
    return {k: float(cost[k]) for k in ("flops", "bytes accessed")}


def _in_jit_cost(n: int) -> Contenders:
    x = jnp.ones((n,), jnp.float32)
    gen, key = rs.Generator(seed=0), jax.random.key(0)

    def cost_ratio(op: str) -> float:
        ours, raw = _IN_JIT_CALLS[op]
        a = xla_cost(lambda g, x: ours(g, x, n), gen, x)
        b = xla_cost(lambda k, x: raw(k, x, n), key, x)
        return max(a[k] / b[k] for k in a)

    return {f"{op}: rs / raw": lambda op=op: cost_ratio(op) for op in _IN_JIT_CALLS}


register(
    Case(
        name="in-jit XLA cost",
        description="XLA's cost estimate (max of flops, bytes) of the jitted draws, rs over raw",
        build=_in_jit_cost,
        sizes={"smoke": 2**8, "quick": 2**20, "full": 2**20},
        kind="value",
        unit="ratio",
        rounds={"smoke": 1, "quick": 1, "full": 1},
    )
)


# -- eager latency --------------------------------------------------------------------------


def _reuse_checked(call: Contender) -> Contender:
    def checked() -> Any:
        with rs.reuse_checking():  # one block per call: its cost is included
            return call()

    return checked


def _eager_latency(n: int) -> Contenders:
    key = jax.random.key(0)
    raw_jit = jax.jit(lambda k: jax.random.uniform(k, (n,)))
    # The same device work as the eager op (derive the key, sample, advance) without the
    # eager Python layer: the gap between the two is what dispatching from Python costs.
    ours_jit = jax.jit(lambda g: rs.random.uniform(g, (n,)))
    # Every rngstate contender gets the same shape object on each call, as a literal shape
    # in a loop does; the dispatch then skips working out the call's signature (the last
    # call's is kept). "a new shape tuple each call" is what x.shape gives: an equal tuple
    # of ints, which the dispatch compares by value before it works the signature out.
    shape = (n,)
    contenders: Contenders = {
        "jit(jax.random.uniform)": lambda: raw_jit(key),
        "rs.random.uniform": _threaded(rs.random.uniform, shape),
        "rs.random.uniform, a new shape tuple each call": _threaded(
            lambda gen: rs.random.uniform(gen, (n,))
        ),
        # The eager reuse check: off above (one flag test per draw), on here, and the op
        # timed twice, so that "off" can be read against the A/A noise of the same op.
        "rs.random.uniform again": _threaded(rs.random.uniform, shape),
        "rs.random.uniform, reuse check on": _reuse_checked(_threaded(rs.random.uniform, shape)),
        "rs.ops.uniform": Unavailable("rngstate.ops not available"),
        "rs.ops.uniform(seed=1)": Unavailable("rngstate.ops not available"),
        "Generator.uniform (method)": _threaded(rs.Generator.uniform, shape),
        "jit(rs.random.uniform)": _threaded(ours_jit),
        "jax.random.uniform (eager)": lambda: jax.random.uniform(key, (n,)),
    }
    ops = optional_module("rngstate.ops")
    if not isinstance(ops, Unavailable):
        contenders["rs.ops.uniform"] = lambda: ops.uniform(shape)
        contenders["rs.ops.uniform(seed=1)"] = lambda: ops.uniform(shape, seed=1)
    numpy_gen = np.random.default_rng(0)
    contenders["numpy Generator.random"] = lambda: numpy_gen.random(n)
    torch = _torch()
    contenders["torch.rand"] = torch if isinstance(torch, Unavailable) else lambda: torch.rand(n)
    return contenders


register(
    Case(
        name="eager latency",
        description="one small uniform draw called eagerly, result ready",
        build=_eager_latency,
        sizes={"smoke": 10, "quick": 10, "full": 10},
        baseline="jit(jax.random.uniform)",
        targets={
            "rs.random.uniform": Target(max_ratio=1.5),
            "Generator.uniform (method)": Target(max_ratio=1.5),
            "rs.ops.uniform": Target(max_ratio=1.6),
        },
    )
)


register(
    Case(
        name="eager vs eager jax",
        description="the eager op against eager jax.random (target: at least 1.8x faster)",
        build=_only(_eager_latency, "jax.random.uniform (eager)", "rs.random.uniform"),
        sizes={"smoke": 10, "quick": 10, "full": 10},
        baseline="jax.random.uniform (eager)",
        targets={"rs.random.uniform": Target(max_ratio=round(1 / 1.8, 3))},
    )
)


# -- the model used by the compile and training-loop cases ----------------------------------

DROPOUT_RATE = 0.1
_LAYERS = (32, 128, 128, 10)
_BATCH = 64


def _model_data() -> tuple[list[tuple[jax.Array, jax.Array]], jax.Array, jax.Array]:
    rng = np.random.default_rng(0)
    params = [
        (
            jnp.asarray(rng.normal(size=(a, b)) / np.sqrt(a), jnp.float32),
            jnp.zeros((b,), jnp.float32),
        )
        for a, b in zip(_LAYERS[:-1], _LAYERS[1:], strict=True)
    ]
    x = jnp.asarray(rng.normal(size=(_BATCH, _LAYERS[0])), jnp.float32)
    y = jnp.asarray(rng.normal(size=(_BATCH, _LAYERS[-1])), jnp.float32)
    return params, x, y


def _mlp_loss(params: list, x: jax.Array, y: jax.Array, dropout: Callable, state: Any):
    """MSE of an MLP with tanh and dropout after each hidden layer; ``dropout`` threads
    ``state`` (a Generator, or a raw key counter) and returns ``(h, state)``."""
    h = x
    for w, b in params[:-1]:
        h, state = dropout(state, jnp.tanh(h @ w + b))
    w, b = params[-1]
    return jnp.mean((h @ w + b - y) ** 2), state


def _sgd(params: list, grads: list, lr: float = 0.01) -> list:
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


def rngstate_step(params: list, gen: rs.Generator, x: jax.Array, y: jax.Array):
    """One SGD step whose dropout draws from ``gen``; returns ``(params, gen, loss)``."""

    def dropout(g: rs.Generator, h: jax.Array):
        return rs.random.dropout(g, h, DROPOUT_RATE)

    grad = jax.value_and_grad(_mlp_loss, has_aux=True)
    (loss, gen), grads = grad(params, x, y, dropout, gen)
    return _sgd(params, grads), gen, loss


def raw_step(params: list, counter: jax.Array, base_key: jax.Array, x: jax.Array, y: jax.Array):
    """The same step hand-threading raw keys: each dropout uses ``fold_in(base, counter++)``."""

    def dropout(i: jax.Array, h: jax.Array):
        return raw_dropout(jax.random.fold_in(base_key, i), h, DROPOUT_RATE), i + 1

    grad = jax.value_and_grad(_mlp_loss, has_aux=True)
    (loss, counter), grads = grad(params, x, y, dropout, counter)
    return _sgd(params, grads), counter, loss


# -- compiles -------------------------------------------------------------------------------


class _CompileCounter(logging.Handler):
    def __init__(self, function_name: str) -> None:
        super().__init__(logging.DEBUG)
        name = re.escape(function_name)
        self.pattern = re.compile(rf"Compiling (jit\({name}\)|{name} )")
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self.pattern.match(record.getMessage()):
            self.count += 1


@contextlib.contextmanager
def count_compiles(function_name: str) -> Iterator[_CompileCounter]:
    """Count XLA compilations of jitted functions named ``function_name`` in the block.

    Uses JAX's own compile log (``jax_log_compiles``), kept out of the console.
    """
    counter = _CompileCounter(function_name)
    jax_logger = logging.getLogger("jax")
    was_logging, was_propagating = jax.config.jax_log_compiles, jax_logger.propagate
    jax_logger.addHandler(counter)
    jax_logger.propagate = False
    jax.config.update("jax_log_compiles", True)
    try:
        yield counter
    finally:
        jax.config.update("jax_log_compiles", was_logging)
        jax_logger.propagate = was_propagating
        jax_logger.removeHandler(counter)


def _compiles(steps: int) -> Contenders:
    params, x, y = _model_data()

    def fresh_step() -> Callable:
        # A new function object each time, so no earlier compilation is reused.
        def bench_train_step(params, gen):
            return rngstate_step(params, gen, x, y)

        return jax.jit(bench_train_step)

    def advancing() -> int:
        step, p, gen = fresh_step(), params, rs.Generator(seed=0)
        with count_compiles("bench_train_step") as counter:
            for _ in range(steps):
                p, gen, loss = step(p, gen)
            jax.block_until_ready(loss)
        return counter.count

    def reseeding() -> int:
        step, p = fresh_step(), params
        with count_compiles("bench_train_step") as counter:
            for i in range(steps):
                p, _, loss = step(p, rs.Generator(seed=2**40 + i, offset=i))
            jax.block_until_ready(loss)
        return counter.count

    return {"advancing generator": advancing, "new seed every step": reseeding}


register(
    Case(
        name="compiles",
        description="XLA compilations of a jitted training step over many steps",
        build=_compiles,
        sizes={"smoke": 3, "quick": 1000, "full": 1000},
        kind="value",
        unit="count",
        targets={
            "advancing generator": Target(equals=1),
            "new seed every step": Target(equals=1),
        },
        rounds={"smoke": 1, "quick": 1, "full": 1},
    )
)


# -- training loop --------------------------------------------------------------------------


def _training_loop(steps: int) -> Contenders:
    params, x, y = _model_data()
    base_key = jax.random.key(0)

    @jax.jit
    def rngstate_loop(params, gen):
        def body(carry, _):
            p, g = carry
            p, g, loss = rngstate_step(p, g, x, y)
            return (p, g), loss

        return jax.lax.scan(body, (params, gen), None, length=steps)

    @jax.jit
    def raw_loop(params, counter):
        def body(carry, _):
            p, i = carry
            p, i, loss = raw_step(p, i, base_key, x, y)
            return (p, i), loss

        return jax.lax.scan(body, (params, counter), None, length=steps)

    raw_again = jax.jit(raw_loop.__wrapped__)
    gen, counter = rs.Generator(seed=0), jnp.uint32(0)
    return {
        "raw keys, fold_in": lambda: raw_loop(params, counter),
        "rngstate": lambda: rngstate_loop(params, gen),
        "raw keys, fold_in again": lambda: raw_again(params, counter),
    }


register(
    Case(
        name="training loop",
        description="MLP 32-128-128-10, batch 64, dropout on hidden layers, SGD, in lax.scan",
        build=_training_loop,
        sizes={"smoke": 2, "quick": 1000, "full": 1000},
        baseline="raw keys, fold_in",
        targets={"rngstate": Target(max_ratio=1.03)},
        rounds={"smoke": 1, "quick": 9, "full": 31},
    )
)


# -- bulk throughput -------------------------------------------------------------------------


@functools.cache
def _ones(module: Any, n: int) -> Any:
    """A cached ``ones(n)`` float32 array of ``module`` (jax.numpy, numpy or torch)."""
    if module.__name__ == "torch":
        return module.ones(n)
    with jax.core.eval_context():  # concrete even when first made inside a jit trace
        return module.ones(n, module.float32)


_BULK: dict[str, dict[str, Callable[..., Any]]] = {
    # kind: {contender: draw(generator-like state, n)}; every op of the fast path (rngstate.fast)
    "bits u32": {
        "rngstate": lambda g, n: rs.random.bits(g, (n,)),
        "jax.random": lambda k, n: jax.random.bits(k, (n,)),
        "numpy": lambda r, n: r.integers(0, 2**32, size=n, dtype=np.uint32),
        "torch": lambda t, n: t.randint(-(2**31), 2**31, (n,), dtype=t.int32),
    },
    "bits u8": {
        "rngstate": lambda g, n: rs.random.bits(g, (n,), jnp.uint8),
        "jax.random": lambda k, n: jax.random.bits(k, (n,), jnp.uint8),
        "numpy": lambda r, n: r.integers(0, 256, size=n, dtype=np.uint8),
        "torch": lambda t, n: t.randint(0, 256, (n,), dtype=t.uint8),
    },
    "uniform f32": {
        "rngstate": lambda g, n: rs.random.uniform(g, (n,)),
        "jax.random": lambda k, n: jax.random.uniform(k, (n,)),
        "numpy": lambda r, n: r.random(n, dtype=np.float32),
        "torch": lambda t, n: t.rand(n),
    },
    "uniform bf16": {
        "rngstate": lambda g, n: rs.random.uniform(g, (n,), jnp.bfloat16),
        "jax.random": lambda k, n: jax.random.uniform(k, (n,), jnp.bfloat16),
        "torch": lambda t, n: t.rand(n, dtype=t.bfloat16),
    },
    "normal f32": {
        "rngstate": lambda g, n: rs.random.normal(g, (n,)),
        "jax.random": lambda k, n: jax.random.normal(k, (n,)),
        "numpy": lambda r, n: r.standard_normal(n, dtype=np.float32),
        "torch": lambda t, n: t.randn(n),
    },
    "truncated_normal f32": {
        "rngstate": lambda g, n: rs.random.truncated_normal(g, -2.0, 2.0, (n,)),
        "jax.random": lambda k, n: jax.random.truncated_normal(k, -2.0, 2.0, (n,)),
        "torch": lambda t, n: t.nn.init.trunc_normal_(t.empty(n), a=-2.0, b=2.0),
    },
    "bernoulli f32": {
        "rngstate": lambda g, n: rs.random.bernoulli(g, 0.3, (n,)),
        "jax.random": lambda k, n: jax.random.bernoulli(k, 0.3, (n,)),
        "numpy": lambda r, n: r.random(n, dtype=np.float32) < 0.3,
        "torch": lambda t, n: t.rand(n) < 0.3,
    },
    "dropout f32": {
        "rngstate": lambda g, n: rs.random.dropout(g, _ones(jnp, n), 0.1),
        "jax.random": lambda k, n: raw_dropout(k, _ones(jnp, n), 0.1),
        "numpy": lambda r, n: np.where(r.random(n, dtype=np.float32) < 0.9, _ones(np, n) / 0.9, 0),
        "torch": lambda t, n: t.nn.functional.dropout(_ones(t, n), 0.1, training=True),
    },
    "randint i32": {
        "rngstate": lambda g, n: rs.random.randint(g, (n,), 0, 1000),
        "jax.random": lambda k, n: jax.random.randint(k, (n,), 0, 1000),
        "numpy": lambda r, n: r.integers(0, 1000, size=n, dtype=np.int32),
        "torch": lambda t, n: t.randint(0, 1000, (n,), dtype=t.int32),
    },
    "exponential f32": {
        "rngstate": lambda g, n: rs.random.exponential(g, (n,)),
        "jax.random": lambda k, n: jax.random.exponential(k, (n,)),
        "numpy": lambda r, n: r.standard_exponential(n, dtype=np.float32),
        "torch": lambda t, n: t.empty(n).exponential_(),
    },
    "gumbel f32": {
        "rngstate": lambda g, n: rs.random.gumbel(g, (n,)),
        "jax.random": lambda k, n: jax.random.gumbel(k, (n,)),
        "numpy": lambda r, n: r.gumbel(size=n),  # float64: NumPy has no float32 gumbel
    },
    "laplace f32": {
        "rngstate": lambda g, n: rs.random.laplace(g, (n,)),
        "jax.random": lambda k, n: jax.random.laplace(k, (n,)),
        "numpy": lambda r, n: r.laplace(size=n),  # float64
    },
}

# The fast path's targets (issue: fast samplers), as time over jit(jax.random)'s.
_BULK_TARGETS = {"bits u32": 0.2, "uniform f32": 0.2, "normal f32": 0.333, "dropout f32": 0.25}
# Against NumPy: 1.0x with 4 KiB pages, 1.5x where glibc hands out huge pages.
_HUGE_PAGES = "glibc.malloc.hugetlb=1" in os.environ.get("GLIBC_TUNABLES", "").split(":")


def _bulk(kind: str) -> Callable[[int], Contenders]:
    draws = _BULK[kind]

    def build(n: int) -> Contenders:
        key = jax.random.key(0)
        raw_jit = jax.jit(lambda k: draws["jax.random"](k, n))
        contenders: Contenders = {
            "jit(jax.random)": lambda: raw_jit(key),
            "rs.random (eager)": _threaded(draws["rngstate"], n),
        }
        if "numpy" in draws:
            for name, bit_generator in (("PCG64", np.random.PCG64), ("Philox", np.random.Philox)):
                numpy_gen = np.random.Generator(bit_generator(0))
                contenders[f"numpy {name}"] = lambda r=numpy_gen: draws["numpy"](r, n)
        if "torch" in draws:
            torch = _torch()
            contenders["torch (CPU)"] = (
                torch if isinstance(torch, Unavailable) else lambda: draws["torch"](torch, n)
            )
        return contenders

    return build


for _kind in _BULK:
    _target = _BULK_TARGETS.get(_kind)
    register(
        Case(
            name=f"bulk {_kind}",
            description=f"throughput of one large {_kind} draw; rngstate takes the fast path",
            build=_bulk(_kind),
            sizes={"smoke": 2**10, "quick": 2**24, "full": 2**24},
            baseline="jit(jax.random)",
            targets={"rs.random (eager)": Target(max_ratio=_target)} if _target else {},
            elements=lambda n: n,
            rounds={"smoke": 1, "quick": 3, "full": 7},
        )
    )


register(
    Case(
        name="bulk uniform f32 vs numpy",
        description="the fast path's uniform float32 against NumPy's PCG64 random(float32)",
        build=_only(_bulk("uniform f32"), "numpy PCG64", "rs.random (eager)"),
        sizes={"smoke": 2**10, "quick": 2**24, "full": 2**24},
        baseline="numpy PCG64",
        targets={"rs.random (eager)": Target(max_ratio=0.667 if _HUGE_PAGES else 1.0)},
        elements=lambda n: n,
        rounds={"smoke": 1, "quick": 3, "full": 7},
    )
)


# -- every sampler outside the fast path, against NumPy and PyTorch --------------------------


def _probs(module: Any, k: int) -> Any:
    """A fixed, uneven probability vector over ``k`` categories, in ``module``'s arrays."""
    weights = np.arange(1, k + 1, dtype=np.float32)
    p = weights / weights.sum()
    if module is np:
        return p.astype(np.float64)  # NumPy's choice checks p sums to 1 in float64
    if getattr(module, "__name__", "") == "torch":
        return module.from_numpy(p)
    with jax.core.eval_context():
        return jnp.asarray(p)


def _both(op: str, *params: float) -> dict[str, Callable[..., Any]]:
    """The rngstate and jax.random draws of ``op(key, *params, (n,))``, the same call."""
    return {
        "rngstate": lambda g, n: getattr(rs.random, op)(g, *params, (n,)),
        "jax.random": lambda k, n: getattr(jax.random, op)(k, *params, (n,)),
    }


def _sort_floor(k: jax.Array, n: int) -> jax.Array:
    """What jax.random's permutation of ``n`` cannot go under: its rounds (two for 10**6) of
    XLA's unstable ``sort_key_val`` on 32-bit keys. The order of equal keys is the sort's
    own, so no other sort gives its values bit for bit."""
    rounds = int(np.ceil(3 * np.log(max(1, n)) / np.log(2**32 - 1)))  # as jax.random counts
    x = jnp.arange(n)
    for round_key in jax.random.split(k, rounds):
        _, x = jax.lax.sort_key_val(jax.random.bits(round_key, (n,)), x)
    return x


_CATEGORIES = 1000
# kind: {contender: draw(generator-like state, n)}, n the size of the case (10**6 in full).
_SAMPLERS: dict[str, dict[str, Callable[..., Any]]] = {
    "permutation": {
        "rngstate": lambda g, n: rs.random.permutation(g, n),
        "jax.random": lambda k, n: jax.random.permutation(k, n),
        "numpy": lambda r, n: r.permutation(n),
        "torch": lambda t, n: t.randperm(n),
        "floor": _sort_floor,
    },
    "choice without replacement (n/100 of n)": {
        "rngstate": lambda g, n: rs.random.choice(g, n, (n // 100,), replace=False),
        "jax.random": lambda k, n: jax.random.choice(k, n, (n // 100,), replace=False),
        "numpy": lambda r, n: r.choice(n, n // 100, replace=False),
    },
    "choice with p (over 1000)": {
        "rngstate": lambda g, n: rs.random.choice(g, _CATEGORIES, (n,), p=_probs(jnp, _CATEGORIES)),
        "jax.random": lambda k, n: jax.random.choice(
            k, _CATEGORIES, (n,), p=_probs(jnp, _CATEGORIES)
        ),
        "numpy": lambda r, n: r.choice(_CATEGORIES, n, p=_probs(np, _CATEGORIES)),
        "torch": lambda t, n: t.multinomial(_probs(t, _CATEGORIES), n, replacement=True),
    },
    "categorical (n/10 draws over 1000 logits)": {
        "rngstate": lambda g, n: rs.random.categorical(
            g, jnp.log(_probs(jnp, _CATEGORIES)), shape=(n // 10,)
        ),
        "jax.random": lambda k, n: jax.random.categorical(
            k, jnp.log(_probs(jnp, _CATEGORIES)), shape=(n // 10,)
        ),
        "numpy": lambda r, n: r.choice(_CATEGORIES, n // 10, p=_probs(np, _CATEGORIES)),
        "torch": lambda t, n: t.multinomial(_probs(t, _CATEGORIES), n // 10, replacement=True),
    },
    "gamma(2)": {
        **_both("gamma", 2.0),
        "numpy": lambda r, n: r.standard_gamma(2.0, n, dtype=np.float32),
        "torch": lambda t, n: t.distributions.Gamma(2.0, 1.0).sample((n,)),
    },
    "loggamma(2)": {
        **_both("loggamma", 2.0),
        "numpy": lambda r, n: np.log(r.standard_gamma(2.0, n, dtype=np.float32)),
    },
    "beta(2, 3)": {
        **_both("beta", 2.0, 3.0),
        "numpy": lambda r, n: r.beta(2.0, 3.0, n),
        "torch": lambda t, n: t.distributions.Beta(2.0, 3.0).sample((n,)),
    },
    "dirichlet(ones(10)), n/10 rows": {
        "rngstate": lambda g, n: rs.random.dirichlet(g, _ones(jnp, 10), (n // 10,)),
        "jax.random": lambda k, n: jax.random.dirichlet(k, _ones(jnp, 10), (n // 10,)),
        "numpy": lambda r, n: r.dirichlet(_ones(np, 10), n // 10),
        "torch": lambda t, n: t.distributions.Dirichlet(_ones(t, 10)).sample((n // 10,)),
    },
    "poisson(3)": {
        **_both("poisson", 3.0),
        "numpy": lambda r, n: r.poisson(3.0, n),
        "torch": lambda t, n: t.poisson(t.full((n,), 3.0)),
    },
    "binomial(10, 0.3)": {
        **_both("binomial", 10.0, 0.3),
        "numpy": lambda r, n: r.binomial(10, 0.3, n),
        "torch": lambda t, n: t.distributions.Binomial(10, t.tensor(0.3)).sample((n,)),
    },
    "t(5)": {
        **_both("t", 5.0),
        "numpy": lambda r, n: r.standard_t(5.0, n),
        "torch": lambda t, n: t.distributions.StudentT(5.0).sample((n,)),
    },
    "chisquare(3)": {
        **_both("chisquare", 3.0),
        "numpy": lambda r, n: r.chisquare(3.0, n),
        "torch": lambda t, n: t.distributions.Chi2(3.0).sample((n,)),
    },
    "f(3, 7)": {
        **_both("f", 3.0, 7.0),
        "numpy": lambda r, n: r.f(3.0, 7.0, n),
        "torch": lambda t, n: t.distributions.FisherSnedecor(3.0, 7.0).sample((n,)),
    },
    "multivariate_normal (dim 10), n/10 rows": {
        "rngstate": lambda g, n: rs.random.multivariate_normal(
            g, jnp.zeros(10), jnp.eye(10), (n // 10,)
        ),
        "jax.random": lambda k, n: jax.random.multivariate_normal(
            k, jnp.zeros(10), jnp.eye(10), (n // 10,)
        ),
        "numpy": lambda r, n: r.multivariate_normal(np.zeros(10), np.eye(10), n // 10),
        "torch": lambda t, n: t.distributions.MultivariateNormal(t.zeros(10), t.eye(10)).sample(
            (n // 10,)
        ),
    },
}


def _sampler(kind: str) -> Callable[[int], Contenders]:
    draws = _SAMPLERS[kind]

    def build(n: int) -> Contenders:
        key = jax.random.key(0)
        raw_jit = jax.jit(lambda k: draws["jax.random"](k, n))
        numpy_gen = np.random.default_rng(0)
        contenders: Contenders = {
            "numpy": lambda: draws["numpy"](numpy_gen, n),
            "rs.random (eager)": _threaded(draws["rngstate"], n),
            "jit(jax.random)": lambda: raw_jit(key),
        }
        if "floor" in draws:
            floor = jax.jit(lambda k: draws["floor"](k, n))
            contenders["jit(floor: its sorts)"] = lambda: floor(key)
        torch = _torch()
        if "torch" not in draws:
            contenders["torch (CPU)"] = Unavailable("not available: torch has no such sampler")
        else:
            contenders["torch (CPU)"] = (
                torch if isinstance(torch, Unavailable) else lambda: draws["torch"](torch, n)
            )
        return contenders

    return build


for _kind in _SAMPLERS:
    register(
        Case(
            name=f"sampler {_kind}",
            description=f"one draw of {_kind}; rngstate's values are jax.random's",
            build=_sampler(_kind),
            sizes={"smoke": 2**8, "quick": 10**6, "full": 10**6},
            baseline="numpy",
            rounds={"smoke": 1, "quick": 3, "full": 5},
        )
    )


# -- memory and import time: each measurement in its own process ----------------------------


def run_probe(*args: str, env: Mapping[str, str] | None = None) -> float:
    """Run ``python -m benchmarks.probe ARGS`` in a fresh interpreter (``env`` added to this
    process's environment); return its figure."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.probe", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env} if env else None,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"probe {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return float(done.stdout.split()[-1])


def _memory(n: int) -> Mapping[str, Contender]:
    return {
        "jax.random.normal": lambda: run_probe("memory", "jax", str(n)),
        "rs.random.normal": lambda: run_probe("memory", "rngstate", str(n)),
    }


register(
    Case(
        name="memory",
        description="peak resident memory added by one float32 normal draw, own process each",
        build=_memory,
        # smoke: 4 MiB, above malloc's mmap threshold, so the output is fresh pages that count
        # (a 16 KiB one fits in memory the process already holds and can measure as 0).
        sizes={"smoke": 2**20, "quick": 2**26, "full": 2**26},
        baseline="jax.random.normal",
        kind="value",
        unit="bytes",
        rounds={"smoke": 1, "quick": 1, "full": 3},
    )
)


def _import_time(_: Any) -> Mapping[str, Contender]:
    return {
        "import jax": lambda: run_probe("import", "jax"),
        "import rngstate": lambda: run_probe("import", "rngstate"),
    }


register(
    Case(
        name="import time",
        description="wall time of the import statement in a fresh interpreter",
        build=_import_time,
        sizes={"smoke": None, "quick": None, "full": None},
        baseline="import jax",
        kind="value",
        unit="s",
        rounds={"smoke": 1, "quick": 2, "full": 9},
    )
)

# -- cold start: the first call in a fresh process -----------------------------------------


def _cold_start(op: str) -> Callable[[Any], Mapping[str, Contender | Unavailable]]:
    def build(size: Any) -> Mapping[str, Contender | Unavailable]:
        names = ("jax.random", "rngstate, warm cache", "rngstate, cold cache", "RNGSTATE_FAST=0")
        if size is None:
            why = "not available in smoke mode: a fresh interpreter per call"
            return {name: Unavailable(why) for name in names}
        warm = tempfile.mkdtemp(prefix="rngstate-bench-cache-")
        atexit.register(shutil.rmtree, warm, True)
        run_probe("first", "rngstate", op, env={"RNGSTATE_CACHE_DIR": warm})  # warms it

        def cold() -> float:
            with tempfile.TemporaryDirectory(prefix="rngstate-bench-cache-") as empty:
                return run_probe("first", "rngstate", op, env={"RNGSTATE_CACHE_DIR": empty})

        return dict(
            zip(
                names,
                (
                    lambda: run_probe("first", "jax", op),
                    lambda: run_probe("first", "rngstate", op, env={"RNGSTATE_CACHE_DIR": warm}),
                    cold,
                    lambda: run_probe("first", "rngstate", op, env={"RNGSTATE_FAST": "0"}),
                ),
                strict=True,
            )
        )

    return build


for _op in (*FIRST_CALL_OPS, "step"):
    what = "a jitted step (dropout + normal, 256x256)" if _op == "step" else f"{_op} (1000,)"
    register(
        Case(
            name=f"cold start {_op}",
            description=f"first call of {what} in a fresh interpreter, imports done",
            build=_cold_start(_op),
            # One op runs in the suite's smoke run; the others would only repeat it.
            sizes={"smoke": _op if _op == "uniform" else None, "quick": _op, "full": _op},
            baseline="jax.random",
            targets={"rngstate, warm cache": Target(max_ratio=1.3)},
            kind="value",
            unit="s",
            rounds={"smoke": 1, "quick": 3, "full": 7},
        )
    )


# The data-order cases (rngstate.data) live in a module of their own.
from benchmarks import data_cases  # noqa: E402,F401
