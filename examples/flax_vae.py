"""A small Flax NNX VAE, shaped like Flax's own example, its randomness ported to rngstate.

The model, loss and training step follow Flax's ``examples/nnx_toy_examples/05_vae.py``,
shrunk (8x8 binary images made up here, a 4-d latent). Its randomness comes from one root
``Generator``, in both porting styles of docs/flax.md:

* the parameters are initialised through ``rngstate.flax.rngs(root.stream("init"), "params")``
  (the nnx layers are unchanged);
* the encoder's reparameterisation noise comes from a ``Generator`` the encoder holds with
  ``nnx.data`` and stores again after each draw;
* batch indices and the evaluation draws (latents decoded every few steps) come from the
  streams ``data`` and ``eval``, carried by the loop.

Checkpoints (model state, Optax state, the two streams, the losses so far) are written with
``rs.save`` or with Orbax every few steps and restored into a live model with
``rngstate.flax.update``. ``python examples/flax_vae.py`` (``--tiny`` for CI) trains
uninterrupted, then SIGKILLs a run halfway and resumes it in a new process, for each
checkpoint library, and checks losses, parameters and generators bit for bit.
``python examples/flax_vae.py timing`` measures time to first step and step time against the
same program written with ``jax.random`` and ``nnx.Rngs`` (fresh processes, interleaved).
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()  # time to first step counts the imports too

import argparse  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

IMAGE, HIDDEN, LATENT, BATCH, EXAMPLES = 64, 32, 4, 16, 256


def images(seed: int = 0) -> np.ndarray:
    """The data set: made-up 8x8 binary images (a fixed NumPy draw, not part of the port)."""
    rng = np.random.default_rng(seed)
    base = rng.random((8, IMAGE)) > 0.5
    flips = rng.random((EXAMPLES, IMAGE)) < 0.1
    return (base[rng.integers(0, 8, EXAMPLES)] ^ flips).astype(np.float32)


def build(seed: int, style: str):
    """Model, optimizer, jitted step and the loop's draws, in ``style`` "rngstate" or "jax"."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    import rngstate as rs
    from rngstate import flax as rsf

    root = rs.Generator(seed)
    ported = style == "rngstate"

    class Encoder(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.linear1 = nnx.Linear(IMAGE, HIDDEN, rngs=rngs)
            self.linear_mean = nnx.Linear(HIDDEN, LATENT, rngs=rngs)
            self.linear_std = nnx.Linear(HIDDEN, LATENT, rngs=rngs)
            if ported:
                self.gen = nnx.data(root.stream("noise"))
            else:
                self.rngs = nnx.Rngs(noise=seed + 1)

        def __call__(self, x):
            x = jax.nn.relu(self.linear1(x))
            mean = self.linear_mean(x)
            std = jnp.exp(self.linear_std(x))
            if ported:
                eps, self.gen = self.gen.normal(mean.shape)  # store the advanced generator
            else:
                eps = jax.random.normal(self.rngs.noise(), mean.shape)
            return mean + std * eps, mean, std

    class Decoder(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.linear1 = nnx.Linear(LATENT, HIDDEN, rngs=rngs)
            self.linear2 = nnx.Linear(HIDDEN, IMAGE, rngs=rngs)

        def __call__(self, z):
            return self.linear2(jax.nn.relu(self.linear1(z)))

    class VAE(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.encoder = Encoder(rngs)
            self.decoder = Decoder(rngs)

        def __call__(self, x):
            z, mean, std = self.encoder(x)
            return self.decoder(z), mean, std

        def generate(self, z):
            return nnx.sigmoid(self.decoder(z))

    rngs = rsf.rngs(root.stream("init"), "params") if ported else nnx.Rngs(params=seed)
    model = VAE(rngs)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)

    def vae_loss(model, x):
        logits, mean, std = model(x)
        kl = jnp.mean(0.5 * jnp.mean(-jnp.log(std**2) - 1.0 + std**2 + mean**2, axis=-1))
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, x)) + 0.1 * kl

    @nnx.jit
    def train_step(model, optimizer, x):
        loss, grads = nnx.value_and_grad(vae_loss)(model, x)
        optimizer.update(model, grads)
        return loss

    @nnx.jit
    def evaluate(model, z):
        return jnp.mean(model.generate(z))

    if ported:
        streams = {"data": root.stream("data"), "eval": root.stream("eval")}

        def batch(streams, step):
            index, streams["data"] = streams["data"].randint((BATCH,), 0, EXAMPLES)
            return index

        def latents(streams, step):
            z, streams["eval"] = streams["eval"].normal((8, LATENT))
            return z
    else:
        streams = {"data": jax.random.key(seed + 2), "eval": jax.random.key(seed + 3)}

        def batch(streams, step):
            return jax.random.randint(
                jax.random.fold_in(streams["data"], step), (BATCH,), 0, EXAMPLES
            )

        def latents(streams, step):
            return jax.random.normal(jax.random.fold_in(streams["eval"], step), (8, LATENT))

    return model, optimizer, train_step, evaluate, streams, batch, latents


def _checkpoint(model, optimizer, streams, losses, step):
    from flax import nnx

    return {
        "model": nnx.state(model),
        "opt": nnx.state(optimizer),
        "streams": dict(streams),
        "losses": np.asarray(losses, np.float32),
        "step": np.asarray(step, np.int64),
    }


def save(backend: str, directory: str, tree) -> None:
    import rngstate as rs

    if backend == "rs":
        rs.save(os.path.join(directory, "run.ckpt"), tree)
        return
    import orbax.checkpoint as ocp

    path = os.path.join(directory, f"orbax-{int(tree['step'])}")
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, tree)
    with open(os.path.join(directory, "latest"), "w") as f:  # written after the save is done
        f.write(path)


def restore(backend: str, directory: str, target):
    """The latest checkpoint read against ``target``'s structure, or None."""
    import jax

    import rngstate as rs

    if backend == "rs":
        path = os.path.join(directory, "run.ckpt")
        return rs.load(path, target=target) if os.path.exists(path) else None
    latest = os.path.join(directory, "latest")
    if not os.path.exists(latest):
        return None
    import orbax.checkpoint as ocp

    with open(latest) as f:
        path = f.read()
    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(path, jax.eval_shape(lambda: target))


def train(args: argparse.Namespace) -> None:
    """One training process: resume from the directory's checkpoint if there is one."""
    from flax import nnx

    from rngstate import flax as rsf

    data = images()
    model, optimizer, train_step, evaluate, streams, batch, latents = build(args.seed, "rngstate")
    losses: list[float] = []
    start = 0
    template = _checkpoint(model, optimizer, streams, np.zeros(args.steps), 0)
    restored = restore(args.backend, args.dir, template)
    if restored is not None:
        rsf.update(model, restored["model"])  # puts the encoder's Generator back whole
        nnx.update(optimizer, restored["opt"])
        streams.update(restored["streams"])
        start = int(restored["step"])
        losses = [float(v) for v in np.asarray(restored["losses"])[:start]]
    samples = []
    for step in range(start, args.steps):
        losses.append(float(train_step(model, optimizer, data[np.asarray(batch(streams, step))])))
        if (step + 1) % 5 == 0:
            samples.append(float(evaluate(model, latents(streams, step))))
            padded = np.zeros(args.steps, np.float32)
            padded[: len(losses)] = losses
            save(args.backend, args.dir, _checkpoint(model, optimizer, streams, padded, step + 1))
        if step + 1 == args.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # a crash between checkpoints: no clean exit
    leaves = [np.asarray(x) for x in __import__("jax").tree.leaves(nnx.state(model))]
    np.savez(
        os.path.join(args.dir, "result.npz"),
        losses=np.asarray(losses, np.float32),
        sample=np.asarray(samples[-1:], np.float32),  # the last evaluation's mean pixel
        params=np.concatenate([x.ravel().view(np.uint8) for x in leaves]),
        gens=np.concatenate(
            [np.asarray(g.seed).ravel() for g in streams.values()]
            + [np.asarray(g.offset).ravel() for g in streams.values()]
            + [np.asarray(model.encoder.gen.offset)]
        ),
    )


def first_step(args: argparse.Namespace) -> None:
    """Time to the first step's loss (from the process start), then the median step time."""
    import jax

    data = images()
    model, optimizer, train_step, _, streams, batch, _ = build(args.seed, args.style)
    jax.block_until_ready(train_step(model, optimizer, data[np.asarray(batch(streams, 0))]))
    first = time.perf_counter() - _STARTED
    times = []
    for step in range(1, args.steps):
        t = time.perf_counter()
        jax.block_until_ready(train_step(model, optimizer, data[np.asarray(batch(streams, step))]))
        times.append(time.perf_counter() - t)
    print(f"first {first:.3f} step {statistics.median(times) * 1e3:.3f}")


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True)


def timing(args: argparse.Namespace) -> None:
    found: dict[str, dict[str, list[float]]] = {
        s: {"first": [], "step": []} for s in ("jax", "rngstate")
    }
    for _ in range(args.repeats):
        for style in ("jax", "rngstate"):  # interleaved: drift on a shared machine hits both
            done = _run("first-step", "--style", style, "--steps", str(args.steps))
            if done.returncode != 0:
                sys.exit(done.stderr)
            _, first, _, step = done.stdout.split()
            found[style]["first"].append(float(first))
            found[style]["step"].append(float(step))
    for what, unit in (("first", "s"), ("step", "ms")):
        jax_median = statistics.median(found["jax"][what])
        rs_median = statistics.median(found["rngstate"][what])
        name = "time to first step" if what == "first" else "median step time"
        print(
            f"{name}: jax.random {jax_median:.3f} {unit}, rngstate {rs_median:.3f} {unit}, "
            f"ratio {rs_median / jax_median:.2f}x (medians of {args.repeats} processes)"
        )


def demo(args: argparse.Namespace) -> None:
    steps = 10 if args.tiny else 60
    kill_at = steps // 2 + 2  # two steps after a checkpoint: they are redone on resume
    ok = True
    for backend in ("rs", "orbax"):
        with tempfile.TemporaryDirectory() as whole, tempfile.TemporaryDirectory() as cut:
            common = ("train", "--backend", backend, "--steps", str(steps))
            for argv in (
                (*common, "--dir", whole),
                (*common, "--dir", cut, "--kill-at", str(kill_at)),
                (*common, "--dir", cut),
            ):
                done = _run(*argv)
                killed = "--kill-at" in argv
                if done.returncode != (-signal.SIGKILL if killed else 0):
                    sys.exit(f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr}")
            a, b = (
                np.load(os.path.join(whole, "result.npz")),
                np.load(os.path.join(cut, "result.npz")),
            )
            same = all(np.array_equal(a[k], b[k]) for k in ("losses", "params", "gens", "sample"))
            ok &= same and len(a["losses"]) == steps
            name = "rs.save" if backend == "rs" else "Orbax"
            print(
                f"{name}: killed after step {kill_at} and resumed: {steps} losses, params and "
                f"generators bit-identical: {same}"
            )
    sys.exit(0 if ok else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "command", nargs="?", default="demo", choices=["demo", "train", "first-step", "timing"]
    )
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--dir")
    parser.add_argument("--backend", choices=["rs", "orbax"], default="rs")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--kill-at", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--style", choices=["jax", "rngstate"], default="rngstate")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    {"demo": demo, "train": train, "first-step": first_step, "timing": timing}[args.command](args)


if __name__ == "__main__":
    main()
