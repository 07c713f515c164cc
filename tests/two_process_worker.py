"""One of two JAX processes (``jax.distributed``, CPU, gloo); prints one JSON report.

Usage: ``python two_process_worker.py PROCESS_ID PORT [--die-after-init]``. Run by
test_multiprocess.py, which compares the reports with its own single-process draws.
Arrays travel as hex of their bytes, so the comparison is bit for bit.
"""

from __future__ import annotations

import json
import os
import sys

import jax

PROCESS_ID, PORT = int(sys.argv[1]), int(sys.argv[2])
SEED, OFFSET = 2**40 + 5, 7
SHAPE = (16, 8)

# Gloo carries CPU collectives between processes (JAX's default in recent versions; named
# here so that older ones agree). Bounded waits: a missing or dead peer ends the run (the
# test harness also kills the survivor as soon as one process fails).
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(
    coordinator_address=f"127.0.0.1:{PORT}",
    num_processes=2,
    process_id=PROCESS_ID,
    initialization_timeout=60,
    heartbeat_timeout_seconds=30,
    shutdown_timeout_seconds=10,
)
if "--die-after-init" in sys.argv:
    os._exit(3)  # a peer that dies: the other process must not wait for it forever

import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import rngstate as rs  # noqa: E402


def hex_of(array: jax.Array | np.ndarray) -> str:
    return np.ascontiguousarray(np.asarray(array)).tobytes().hex()


def main() -> None:
    gen = rs.Generator(seed=SEED, offset=OFFSET)
    mesh = jax.make_mesh((jax.device_count(),), ("p",))  # one CPU device per process
    report: dict = {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "sharded": {},
    }
    # normal: no communication; gamma: its rejection loop all-reduces a flag through gloo.
    for name, args in {"normal": (SHAPE,), "gamma": (0.7, SHAPE)}.items():
        draw = jax.jit(
            lambda g, name=name, args=args: getattr(rs.random, name)(g, *args),
            out_shardings=(NamedSharding(mesh, P("p")), NamedSharding(mesh, P())),
        )
        values, next_gen = draw(gen)
        report["sharded"][name] = {
            "global_shape": list(values.shape),
            "local_blocks": [
                {"rows": [shard.index[0].start, shard.index[0].stop], "hex": hex_of(shard.data)}
                for shard in values.addressable_shards
            ],
            "gathered_hex": hex_of(multihost_utils.process_allgather(values, tiled=True)),
            "next_gen": repr(next_gen),
        }
    mine, shared = rs.process_generator(gen)
    draw_mine, _ = rs.random.normal(mine, (4,))
    report["process_generator"] = {
        "seed_words": np.asarray(mine.seed).tolist(),
        "offset_words": np.asarray(mine.offset).tolist(),
        "next_gen": repr(shared),
        "normal_hex": hex_of(draw_mine),
    }
    shared_seed = rs.set_random_seed()  # None: drawn on process 0, broadcast to all
    report["set_random_seed"] = {
        "none": shared_seed,
        "get_seed": rs.get_seed(),
        "default_generator_normal_hex": hex_of(rs.ops.normal((4,))),
        "none_diff_rank": rs.set_random_seed(diff_rank_seed=True),
        "given_diff_rank": rs.set_random_seed(1000, diff_rank_seed=True),
    }
    print(json.dumps(report), flush=True)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
