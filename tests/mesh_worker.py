"""Draw on sharded inputs under ``jax.set_mesh``, on 4 host CPU devices; print a JSON report.

test_mesh.py runs this in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``. Each case is drawn three ways under
a mesh made by ``jax.make_mesh`` (explicit axes, JAX's default, and auto axes): eagerly,
inside ``jax.jit``, and by raw ``jax.random`` with the generator's key under the same mesh
(the reference for the output's sharding). The values must equal the unsharded draw on one
device, computed first, eagerly and jitted (under a jit, Python scalars become constants of
the outer program, so the jitted reference is what a jitted draw compares with).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import rngstate as rs
from rngstate._dropout import dropout_sampler

GEN = rs.Generator(seed=2**40 + 5, offset=7)
ROWS = P("data", None)


def cases(explicit: bool) -> dict[str, tuple[str, tuple, dict, dict]]:
    """``{case: (op, args, kwargs, which args to shard over 'data')}``.

    Arrays are (8, 16): 128 elements, so the fast path serves the ops it covers.
    """
    x = jnp.arange(128.0).reshape(8, 16)
    table = {
        "dropout": ("dropout", (x, 0.25), {}, {0: ROWS}),
        "dropout_small": ("dropout", (x[:, :2], 0.5), {}, {0: ROWS}),  # jax.random's own bits
        "bernoulli_p": ("bernoulli", (jnp.full((8, 16), 0.3),), {}, {0: ROWS}),
        "uniform_minval": (
            "uniform",
            ((8, 16),),
            {"minval": -x, "maxval": 200.0},
            {"minval": ROWS},
        ),
        "normal": ("normal", ((8, 16),), {}, {}),
        "permutation_x": ("permutation", (x,), {"axis": 1, "independent": True}, {0: ROWS}),
        "categorical_logits": ("categorical", (jnp.log1p(x),), {}, {0: ROWS}),
        "randint": ("randint", ((8, 16), 0, 100), {}, {}),
        "exponential": ("exponential", ((8, 16),), {}, {}),
    }
    if explicit:  # jax.random's out_sharding is for explicit axes only
        for name, args in [
            ("normal", ((8, 16),)),
            ("uniform", ((8, 16),)),
            ("bits", ((8, 16),)),
            ("randint", ((8, 16), 0, 100)),
            ("gumbel", ((8, 16),)),
            ("bernoulli", (0.3, (8, 16))),
        ]:
            table[f"{name}_out_sharding"] = (name, args, {"out_sharding": ROWS}, {})
    return table


def _sharded(mesh: Any, args: tuple, kwargs: dict, where: dict) -> tuple[tuple, dict]:
    args, kwargs = list(args), dict(kwargs)
    for slot, spec in where.items():
        holder = args if isinstance(slot, int) else kwargs
        holder[slot] = jax.device_put(holder[slot], NamedSharding(mesh, spec))
    return tuple(args), kwargs


def _raw(name: str) -> Any:
    return dropout_sampler if name == "dropout" else getattr(jax.random, name)


def _without(kwargs: dict, key: str) -> dict:
    return {k: v for k, v in kwargs.items() if k != key}


def _bits(x: Any) -> list:
    return [str(np.asarray(x).dtype), list(np.shape(x)), np.asarray(x).tobytes().hex()]


def main() -> None:
    one = jax.devices()[0]
    report: dict[str, Any] = {"device_count": jax.device_count(), "cases": {}}
    for explicit in (True, False):
        kind = "explicit" if explicit else "auto"
        table = cases(explicit)
        # References first, on one device and outside any mesh.
        reference = {}
        for case, (name, args, kwargs, _) in table.items():
            plain = _without(kwargs, "out_sharding")
            with jax.default_device(one):
                op = getattr(rs.random, name)
                eager = op(GEN, *args, **plain)[0]
                jitted = jax.jit(lambda g, op=op, a=args, k=plain: op(g, *a, **k)[0])(GEN)
            reference[case] = (_bits(eager), _bits(jitted))
        axis_type = AxisType.Explicit if explicit else AxisType.Auto
        mesh = jax.make_mesh((4,), ("data",), axis_types=(axis_type,))
        for case, (name, args, kwargs, where) in table.items():
            row: dict[str, Any] = {}
            with jax.set_mesh(mesh):
                s_args, s_kwargs = _sharded(mesh, args, kwargs, where)
                try:
                    raw = _raw(name)(GEN.key(), *s_args, **s_kwargs)
                    row["raw_sharding"] = str(raw.sharding.spec)
                except Exception as error:  # jax.random's own refusal: rngstate must match it
                    row["raw_error"] = f"{type(error).__name__}: {str(error)[:300]}"
                try:
                    op = getattr(rs.random, name)
                    eager = op(GEN, *s_args, **s_kwargs)[0]
                    jitted = jax.jit(lambda g, op=op, a=s_args, k=s_kwargs: op(g, *a, **k)[0])(GEN)
                    row["eager_same_bits"] = _bits(eager) == reference[case][0]
                    row["jit_same_bits"] = _bits(jitted) == reference[case][1]
                    row["sharding"] = str(eager.sharding.spec)
                    row["blocks"] = len({str(s.index) for s in eager.addressable_shards})
                except Exception as error:  # reported, so the test names the case that failed
                    row["error"] = f"{type(error).__name__}: {str(error)[:300]}"
            report["cases"][f"{kind}/{case}"] = row
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
