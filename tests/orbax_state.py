"""The Generator-holding train state of test_orbax.py and orbax_worker.py, and its draws."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

import rngstate as rs
from rngstate import flax as rsf

SEED = 2**40 + 5
WORKERS = 8


def make_state() -> dict:
    """NNX params and Optax state of a small MLP, a run Generator, a batch of 8 per worker."""
    gen = rs.Generator(seed=SEED)
    model = nnx.Sequential(
        nnx.Linear(4, 8, rngs=rsf.rngs(gen.stream("init"), "params")),
        nnx.Linear(8, 2, rngs=rsf.rngs(gen.stream("init2"), "params")),
    )
    params = nnx.state(model, nnx.Param)
    workers, gen = gen.spawn(WORKERS)
    return {
        "params": params,
        "opt": optax.adamw(1e-3).init(params),
        "rng": gen.construct(41),
        "workers": workers.construct(3),
        "step": jnp.int32(7),
    }


def draws(state: dict) -> dict[str, jax.Array]:
    """What the run draws next: from the run generator and from every worker's."""
    noise, gen = state["rng"].normal((4, 3))
    mask, _ = gen.dropout(jnp.ones((8, 16)), 0.5)
    per_worker = jax.vmap(lambda g: g.uniform((5,))[0])(state["workers"])
    return {"noise": noise, "dropout": mask, "per_worker": per_worker}
