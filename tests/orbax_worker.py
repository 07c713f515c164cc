"""Restore an Orbax checkpoint of a train state onto this process's devices; report draws.

test_orbax.py saves the checkpoint on one device and runs this in a subprocess with 4 host
CPU devices: ``orbax_worker.py CHECKPOINT_DIR {replicated,data}``. The abstract target comes
from ``jax.eval_shape`` on the same state-building code, with a sharding per leaf: every leaf
replicated, or the batch of per-worker Generators sharded over the ``data`` axis. It prints
one JSON line with what the restored generators draw.
"""

from __future__ import annotations

import json
import pathlib
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from orbax_state import draws, make_state  # noqa: E402

import rngstate as rs  # noqa: E402


def main(path: str, layout: str) -> None:
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    abstract = jax.eval_shape(make_state)

    def place(keypath, leaf):
        sharded = layout == "data" and jax.tree_util.keystr(keypath).startswith("['workers']")
        spec = P("data") if sharded else P()
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=NamedSharding(mesh, spec))

    target = jax.tree_util.tree_map_with_path(place, abstract)
    with ocp.StandardCheckpointer() as checkpointer:
        state = checkpointer.restore(path, target)
    assert isinstance(state["rng"], rs.Generator) and isinstance(state["workers"], rs.Generator)
    with jax.set_mesh(mesh):
        out = draws(state)
    report = {
        "device_count": jax.device_count(),
        "workers_sharding": str(state["workers"].seed.sharding.spec),
        "workers_devices": len(state["workers"].seed.sharding.device_set),
        "draws": {k: np.asarray(v).tobytes().hex() for k, v in out.items()},
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
