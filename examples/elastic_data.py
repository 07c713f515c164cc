"""Elastic resume of the data order: 2 processes x 2 devices, killed mid-epoch, resumed on 1.

``python examples/elastic_data.py`` runs three trainings in subprocesses and compares them:

1. uninterrupted: 1 process, 1 CPU device, ``STEPS`` steps;
2. 2 JAX processes (``jax.distributed``, gloo), 2 host CPU devices each (4 devices), batch
   sharded over all 4; each process loads only its part of each global batch
   (``batch_indices(..., process_index, process_count=2)``); both are killed (SIGKILL-like
   ``os._exit``) after ``KILL_AFTER`` steps, in the middle of an epoch;
3. resumed from the last checkpoint (the data generator and the step, ``rs.save``) in 1
   process on 1 device, to the end.

Each step's global batch of example ids (gathered across processes) is logged; the example
prints whether runs 2+3 saw exactly the global batches of run 1, and exits non-zero if not.
A step is a jitted SGD update of a linear model on the batch, its data augmented per
example with ``example_generator`` (the same noise for an example whoever loads it).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile

N, BATCH, FEATURES = 1000, 32, 4
STEPS, KILL_AFTER = 70, 40  # 31 steps per epoch: killed in the middle of the second epoch


def train(directory: str, process_id: int, process_count: int, port: int) -> None:
    import jax

    if process_count > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=process_count,
                                   process_id=process_id, initialization_timeout=60)
    import jax.numpy as jnp
    import numpy as np
    from jax.experimental import multihost_utils
    from jax.sharding import PartitionSpec as P

    import rngstate as rs

    data = jax.random.normal(jax.random.key(0), (N, FEATURES))  # the same data everywhere
    target = data @ jnp.arange(1.0, FEATURES + 1)
    mesh = jax.make_mesh((jax.device_count(),), ("data",),
                         axis_types=(jax.sharding.AxisType.Auto,))
    checkpoint = os.path.join(directory, "checkpoint")
    log = os.path.join(directory, "batches.jsonl")
    if os.path.exists(checkpoint):
        state = rs.load(checkpoint, target={"gen": rs.Generator(), "step": np.uint32(0),
                                            "w": np.zeros(FEATURES, np.float32)})
        gen, start, w = state["gen"], int(state["step"]), jnp.asarray(state["w"])
    else:
        gen, start, w = rs.Generator(seed=2024).stream("data"), 0, jnp.zeros(FEATURES)

    def local_batch(step):
        ids = rs.data.batch_indices(gen, step, N, BATCH, process_index=jax.process_index(),
                                    process_count=jax.process_count())
        # Per-example augmentation: noise keyed by each example's generator.
        noise = jax.vmap(lambda i: rs.data.example_generator(gen.construct(step // (N // BATCH)),
                                                             i).normal((FEATURES,))[0])(
            ids.astype(jnp.uint32))
        return ids, data[ids] + 0.01 * noise, target[ids]

    @jax.jit
    def update(w, x, y):
        grad = jax.grad(lambda w: jnp.mean((x @ w - y) ** 2))(w)
        return w - 0.05 * grad

    for step in range(start, STEPS):
        ids, x, y = local_batch(step)
        x, y = (multihost_utils.host_local_array_to_global_array(a, mesh, P("data"))
                for a in (np.asarray(x), np.asarray(y)))
        w = update(w, x, y)
        global_ids = np.asarray(multihost_utils.process_allgather(np.asarray(ids), tiled=True))
        if jax.process_index() == 0:
            with open(log, "a") as f:
                f.write(json.dumps({"step": step, "ids": global_ids.tolist()}) + "\n")
            # w is replicated: each local shard is all of it.
            rs.save(checkpoint, {"gen": gen, "step": np.uint32(step + 1),
                                 "w": np.asarray(w.addressable_data(0))})
        if process_count > 1:
            multihost_utils.sync_global_devices(f"step {step}")
        if step + 1 == KILL_AFTER and process_count > 1:
            os._exit(9)  # killed mid-epoch: no clean shutdown


def _run(directory: str, processes: int, devices: int) -> None:
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", directory, str(p),
                               str(processes), str(port)], env=env) for p in range(processes)]
    for proc in procs:
        proc.wait(timeout=900)


def _batches(directory: str) -> dict[int, list[int]]:
    with open(os.path.join(directory, "batches.jsonl")) as f:
        return {r["step"]: r["ids"] for r in map(json.loads, f)}


def main() -> int:
    with tempfile.TemporaryDirectory() as whole, tempfile.TemporaryDirectory() as elastic:
        _run(whole, processes=1, devices=1)
        _run(elastic, processes=2, devices=2)
        killed_at = len(_batches(elastic))
        _run(elastic, processes=1, devices=1)
        expected, got = _batches(whole), _batches(elastic)
    same = len(expected) == STEPS and got == expected
    print(f"killed after {killed_at} of {STEPS} steps on 2 processes x 2 devices, resumed on "
          f"1 process x 1 device: every global batch identical to the uninterrupted run: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        directory, process_id, count, port = sys.argv[2:6]
        train(directory, int(process_id), int(count), int(port))
    else:
        sys.exit(main())
