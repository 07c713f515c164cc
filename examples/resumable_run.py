"""The driver the training examples share: train with Orbax checkpoints, be killed, resume.

examples/flax_nnx.py and examples/equinox.py each build their model and hand it to ``main``.
``train`` is one training process: the data, the Optax optimizer and three rngstate streams of
one seed (``init`` for the model, ``dropout`` passed through the jitted step, ``shuffle`` for
one permutation of the data per epoch), each batch sharded over a ``data`` axis of all the
process's devices (``jax.make_mesh`` + ``jax.set_mesh``, explicit axes). After every epoch an
Orbax ``CheckpointManager`` saves the params, the Optax state, both Generators and the losses
so far; a new process resumes from the latest checkpoint. ``demo`` runs ``train`` in
subprocesses: once without stopping, once killed (SIGKILL) halfway and resumed, and compares
the final params and every loss bit for bit; then the same on 4 host CPU devices.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any, NamedTuple

SIZES = {  # samples, features, hidden, batch, epochs
    "tiny": (128, 8, 16, 32, 4),
    "full": (4096, 32, 256, 128, 10),
}


class Model(NamedTuple):
    """What an example trains: how to make its params, run it, and update its params."""

    init_params: Callable[[], Any]  # the initial params (a pytree of arrays)
    apply: Callable[..., Any]  # (params, x, dropout Generator) -> (predictions, next Generator)
    apply_updates: Callable[[Any, Any], Any]  # (params, Optax updates) -> params


# (the init Generator, features, hidden width) -> the Model
ModelFactory = Callable[[Any, int, int], Model]


def train(directory: str, size: str, kill_after: int | None, make_model: ModelFactory) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import orbax.checkpoint as ocp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import rngstate as rs

    samples, features, hidden, batch, epochs = SIZES[size]
    steps = samples // batch
    mesh = jax.make_mesh((jax.device_count(),), ("data",))  # explicit axes: JAX's default
    replicated, rows = NamedSharding(mesh, P()), NamedSharding(mesh, P("data", None))

    run = rs.Generator(seed=2**40 + 2024)
    # The data: a fixed random regression problem, from its own stream.
    x_all, g = run.stream("data").normal((samples, features))
    w_true, _ = g.normal((features,))
    y_all = jnp.sin(x_all @ w_true)
    x_all, y_all = jax.device_put((x_all, y_all), replicated)

    tx = optax.adam(1e-2)
    model = make_model(run.stream("init"), features, hidden)

    def fresh_state() -> dict:
        params = model.init_params()
        return {
            "params": params,
            "opt": tx.init(params),
            "dropout": run.stream("dropout"),
            "shuffle": run.stream("shuffle"),
            "epoch": jnp.int32(0),
            "losses": jnp.full((epochs * steps,), jnp.nan, jnp.float32),
        }

    with jax.set_mesh(mesh):

        @jax.jit
        def train_step(params, opt, gen, x, y):
            def loss_fn(params):
                pred, gen_next = model.apply(params, x, gen)
                return jnp.mean((pred - y) ** 2), gen_next

            (loss, gen), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, opt = tx.update(grads, opt, params)
            return model.apply_updates(params, updates), opt, gen, loss

        abstract = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated),
            jax.eval_shape(fresh_state),
        )
        options = ocp.CheckpointManagerOptions(max_to_keep=2)
        with ocp.CheckpointManager(os.path.join(directory, "ckpt"), options=options) as manager:
            if manager.latest_step() is None:
                state = jax.device_put(fresh_state(), replicated)
            else:  # resume: Generators come back as Generators, on this process's devices
                state = manager.restore(
                    manager.latest_step(), args=ocp.args.StandardRestore(abstract)
                )
            params, opt, gen, shuffle = (state[k] for k in ("params", "opt", "dropout", "shuffle"))
            losses = state["losses"]
            for epoch in range(int(state["epoch"]), epochs):
                order, shuffle = shuffle.permutation(samples)
                for i in range(steps):
                    idx = order[i * batch : (i + 1) * batch]
                    x, y = jax.device_put(
                        (x_all[idx], y_all[idx]), (rows, NamedSharding(mesh, P("data")))
                    )
                    params, opt, gen, loss = train_step(params, opt, gen, x, y)
                    losses = losses.at[epoch * steps + i].set(loss)
                state = {
                    "params": params,
                    "opt": opt,
                    "dropout": gen,
                    "shuffle": shuffle,
                    "epoch": jnp.int32(epoch + 1),
                    "losses": losses,
                }
                manager.save(epoch + 1, args=ocp.args.StandardSave(state))
                manager.wait_until_finished()
                mean = float(jnp.nanmean(losses[epoch * steps : (epoch + 1) * steps]))
                print(f"  epoch {epoch + 1}: mean loss {mean:.6f}", flush=True)
                if kill_after == epoch + 1:
                    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, as a crash would
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(params)]
    return {
        "devices": jax.device_count(),
        "params_sha256": hashlib.sha256(b"".join(a.tobytes() for a in leaves)).hexdigest(),
        "losses_sha256": hashlib.sha256(np.asarray(losses).tobytes()).hexdigest(),
        "final_loss": float(losses[-1]),
    }


def _run(script: str, directory: str, size: str, devices: int, kill_after: int | None = None):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = (
        f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    )
    command = [sys.executable, script, "train", "--dir", directory, "--size", size]
    if kill_after is not None:
        command += ["--kill-after", str(kill_after)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    print(proc.stdout, end="")
    if kill_after is not None:
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
        return None
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def demo(script: str, size: str) -> None:
    epochs = SIZES[size][-1]
    results = {}
    for devices in (1, 4):
        with tempfile.TemporaryDirectory() as straight, tempfile.TemporaryDirectory() as resumed:
            print(f"{devices} device(s), uninterrupted:")
            a = _run(script, straight, size, devices)
            print(f"{devices} device(s), killed after epoch {epochs // 2}:")
            _run(script, resumed, size, devices, kill_after=epochs // 2)
            print(f"{devices} device(s), resumed in a new process:")
            b = _run(script, resumed, size, devices)
        same = a == b
        print(f"{devices} device(s): final params and all losses bit-identical: {same}")
        print(f"  params sha256 {a['params_sha256'][:16]}, final loss {a['final_loss']:.6f}")
        assert same, (a, b)
        results[devices] = a
    # The random draws are the same on 1 and 4 devices; the float sums over a sharded batch
    # (loss, gradients) are reduced in another order, so the params may differ in low bits.
    same = results[1]["params_sha256"] == results[4]["params_sha256"]
    print(f"1 vs 4 devices, same params bits: {same} (data-parallel sums reduce in another order)")


def main(doc: str, script: str, make_model: ModelFactory) -> None:
    """The command line of the example ``script`` (its ``__file__``), described by ``doc``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="demo", choices=["demo", "train"])
    parser.add_argument("--tiny", action="store_true", help="CI size")
    parser.add_argument("--size", choices=sorted(SIZES), default=None)
    parser.add_argument("--dir", help="train: the checkpoint directory")
    parser.add_argument("--kill-after", type=int, default=None, help="train: SIGKILL after epoch")
    args = parser.parse_args()
    size = args.size or ("tiny" if args.tiny else "full")
    if args.mode == "train":
        print(json.dumps(train(args.dir, size, args.kill_after, make_model)))
    else:
        demo(script, size)
