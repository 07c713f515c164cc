"""An Equinox MLP trained with Optax, its randomness from rngstate, checkpointed with Orbax.

Three rngstate streams of one seed: ``init`` (the keys Equinox's layers are built with),
``dropout`` (a Generator passed through the jitted step) and ``shuffle`` (one permutation of
the data per epoch). An Orbax ``CheckpointManager`` saves the model's arrays, the Optax state,
both Generators and the losses so far after every epoch.

``python examples/equinox.py`` shows that nothing is lost on resume: it trains once without
stopping, once killed (SIGKILL) halfway and resumed in a new process, and compares the final
params and every loss bit for bit; then the same on 4 host CPU devices, with each batch
sharded over a ``data`` axis (``jax.make_mesh`` + ``jax.set_mesh``, explicit axes). ``--tiny``
makes it small enough for CI. ``python examples/equinox.py train --dir D`` runs one training
process (resuming from ``D`` if it holds a checkpoint).
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

# Run as a script, this file's folder comes first on sys.path, and this file is named like the
# library: take the folder off so that `import equinox` finds Equinox.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

SIZES = {  # samples, features, hidden, batch, epochs
    "tiny": (128, 8, 16, 32, 4),
    "full": (4096, 32, 256, 128, 10),
}


def train(directory: str, size: str, kill_after: int | None) -> dict:
    import equinox as eqx
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

    class MLP(eqx.Module):
        hidden: eqx.nn.Linear
        out: eqx.nn.Linear

        def __init__(self, gen: rs.Generator):
            # One key per layer, each used once: the init stream at offsets 0 and 1.
            self.hidden = eqx.nn.Linear(features, hidden, key=gen.key())
            self.out = eqx.nn.Linear(hidden, 1, key=gen.construct(1).key())

        def __call__(self, x, gen: rs.Generator):
            h = jax.nn.relu(x @ self.hidden.weight.T + self.hidden.bias)
            h, gen = rs.random.dropout(gen, h, 0.1)  # the mask follows h's sharding
            return (h @ self.out.weight.T + self.out.bias)[:, 0], gen

    run = rs.Generator(seed=2**40 + 2024)
    # The data: a fixed random regression problem, from its own stream.
    x_all, g = run.stream("data").normal((samples, features))
    w_true, _ = g.normal((features,))
    y_all = jnp.sin(x_all @ w_true)
    x_all, y_all = jax.device_put((x_all, y_all), replicated)

    tx = optax.adam(1e-2)
    params0, static = eqx.partition(MLP(run.stream("init")), eqx.is_array)

    def fresh_state() -> dict:
        return {
            "params": params0,
            "opt": tx.init(params0),
            "dropout": run.stream("dropout"),
            "shuffle": run.stream("shuffle"),
            "epoch": jnp.int32(0),
            "losses": jnp.full((epochs * steps,), jnp.nan, jnp.float32),
        }

    with jax.set_mesh(mesh):

        @jax.jit
        def train_step(params, opt, gen, x, y):
            def loss_fn(params):
                pred, gen_next = eqx.combine(params, static)(x, gen)
                return jnp.mean((pred - y) ** 2), gen_next

            (loss, gen), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, opt = tx.update(grads, opt, params)
            return eqx.apply_updates(params, updates), opt, gen, loss

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


def _run(directory: str, size: str, devices: int, kill_after: int | None = None):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = (
        f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    )
    command = [sys.executable, __file__, "train", "--dir", directory, "--size", size]
    if kill_after is not None:
        command += ["--kill-after", str(kill_after)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    print(proc.stdout, end="")
    if kill_after is not None:
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
        return None
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def demo(size: str) -> None:
    epochs = SIZES[size][-1]
    results = {}
    for devices in (1, 4):
        with tempfile.TemporaryDirectory() as straight, tempfile.TemporaryDirectory() as resumed:
            print(f"{devices} device(s), uninterrupted:")
            a = _run(straight, size, devices)
            print(f"{devices} device(s), killed after epoch {epochs // 2}:")
            _run(resumed, size, devices, kill_after=epochs // 2)
            print(f"{devices} device(s), resumed in a new process:")
            b = _run(resumed, size, devices)
        same = a == b
        print(f"{devices} device(s): final params and all losses bit-identical: {same}")
        print(f"  params sha256 {a['params_sha256'][:16]}, final loss {a['final_loss']:.6f}")
        assert same, (a, b)
        results[devices] = a
    # The random draws are the same on 1 and 4 devices; the float sums over a sharded batch
    # (loss, gradients) are reduced in another order, so the params may differ in low bits.
    same = results[1]["params_sha256"] == results[4]["params_sha256"]
    print(f"1 vs 4 devices, same params bits: {same} (data-parallel sums reduce in another order)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="demo", choices=["demo", "train"])
    parser.add_argument("--tiny", action="store_true", help="CI size")
    parser.add_argument("--size", choices=sorted(SIZES), default=None)
    parser.add_argument("--dir", help="train: the checkpoint directory")
    parser.add_argument("--kill-after", type=int, default=None, help="train: SIGKILL after epoch")
    args = parser.parse_args()
    size = args.size or ("tiny" if args.tiny else "full")
    if args.mode == "train":
        print(json.dumps(train(args.dir, size, args.kill_after)))
    else:
        demo(size)


if __name__ == "__main__":
    main()
