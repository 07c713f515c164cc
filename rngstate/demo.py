"""``rngstate demo``: a pure-functional training loop, checkpointed midway, resumed bit for bit.

A small MLP learns labels drawn from a random teacher network. Everything random comes
from one seed through named streams: the data (``"data"``), the initial weights
(``"params"``, one sub-stream per layer, made with :mod:`rngstate.init`), the order of the
samples, reshuffled each epoch with ``permutation`` (``"shuffle"``), and the dropout masks
(``"dropout"``). The training step is traced once inside a jitted epoch that runs the steps
with ``lax.scan``; generators go in and come out of it like any other array.

The demo trains without interruption, saving a checkpoint halfway. A fresh Python process
then loads that checkpoint, rebuilds the data from the seed, trains the remaining epochs
and saves its result; the demo compares that result with the uninterrupted run and exits
non-zero unless the losses, parameters, optimizer state and generators are identical, bit
for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import rngstate as rs

__all__ = ["FAST", "FULL", "DemoConfig", "differences", "run"]


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """The size of the demo's problem and its training hyperparameters."""

    seed: int = 0
    samples: int = 4096
    features: int = 16
    classes: int = 4
    hidden: int = 64
    batch: int = 128
    epochs: int = 8
    dropout: float = 0.1
    learning_rate: float = 0.05
    momentum: float = 0.9

    @property
    def steps_per_epoch(self) -> int:
        """Whole batches per epoch; the few samples left over are skipped that epoch."""
        return self.samples // self.batch


FULL = DemoConfig()
FAST = DemoConfig(samples=1024, hidden=32, epochs=4)

Params = list[dict[str, jax.Array]]


# -- the model, in plain JAX ---------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=0)  # one compile for all the ops it draws with
def make_data(config: DemoConfig) -> tuple[jax.Array, jax.Array]:
    """Features ``N(0, 1)`` and labels sampled from a random teacher MLP's softmax.

    >>> x, y = make_data(FAST)
    >>> x.shape, y.shape, int(y.max()) < FAST.classes
    ((1024, 16), (1024,), True)
    """
    gen = rs.Generator(config.seed).stream("data")
    x, gen = gen.normal((config.samples, config.features))
    w1, gen = rs.init.kaiming_normal(gen, (config.features, 2 * config.hidden))
    w2, gen = rs.init.xavier_normal(gen, (2 * config.hidden, config.classes), gain=4.0)
    y, _ = gen.categorical(jax.nn.relu(x @ w1) @ w2)
    return x, y


def init_params(config: DemoConfig) -> Params:
    """Kaiming-uniform hidden layers and a Xavier-uniform output layer, each from its own stream.

    >>> [layer["w"].shape for layer in init_params(FAST)]
    [(16, 32), (32, 32), (32, 4)]
    """
    streams = rs.Generator(config.seed).stream("params")
    sizes = [config.features, config.hidden, config.hidden, config.classes]
    params = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layer_gen = streams.stream(f"dense{i}")  # a layer's weights never depend on the others
        last = i == len(sizes) - 2
        init = rs.init.xavier_uniform if last else rs.init.kaiming_uniform
        w, _ = init(layer_gen, (fan_in, fan_out))
        params.append({"w": w, "b": jnp.zeros((fan_out,), jnp.float32)})
    return params


def forward(
    params: Params, x: jax.Array, gen: rs.Generator | None, rate: float
) -> tuple[jax.Array, rs.Generator | None]:
    """The MLP's logits; dropout after each hidden layer when a generator is given."""
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
        if gen is not None:
            x, gen = rs.random.dropout(gen, x, rate)
    return x @ params[-1]["w"] + params[-1]["b"], gen


def _loss(
    params: Params, x: jax.Array, y: jax.Array, gen: rs.Generator, rate: float
) -> tuple[jax.Array, rs.Generator]:
    logits, gen = forward(params, x, gen, rate)
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.take_along_axis(log_probs, y[:, None], axis=1).mean(), gen


def make_epoch(config: DemoConfig) -> Callable[..., Any]:
    """The jitted epoch: reshuffle, then ``lax.scan`` the training step over the batches.

    ``epoch(state, x, y) -> (state, step_losses)``, where ``state`` holds ``params``,
    ``velocity``, ``shuffle_gen`` and ``dropout_gen``.
    """
    steps, batch = config.steps_per_epoch, config.batch

    def train_step(carry, batch_xy):
        params, velocity, gen = carry
        (loss, gen), grads = jax.value_and_grad(_loss, has_aux=True)(
            params, *batch_xy, gen, config.dropout
        )
        velocity = jax.tree.map(lambda v, g: config.momentum * v + g, velocity, grads)
        params = jax.tree.map(lambda p, v: p - config.learning_rate * v, params, velocity)
        return (params, velocity, gen), loss

    @jax.jit
    def epoch(state: dict[str, Any], x: jax.Array, y: jax.Array):
        order, shuffle_gen = state["shuffle_gen"].permutation(x.shape[0])
        order = order[: steps * batch]
        batches = (x[order].reshape(steps, batch, -1), y[order].reshape(steps, batch))
        carry = (state["params"], state["velocity"], state["dropout_gen"])
        (params, velocity, dropout_gen), losses = jax.lax.scan(train_step, carry, batches)
        new_state = {
            "params": params,
            "velocity": velocity,
            "shuffle_gen": shuffle_gen,
            "dropout_gen": dropout_gen,
        }
        return new_state, losses

    return epoch


@functools.partial(jax.jit, static_argnums=0)
def initial_state(config: DemoConfig) -> dict[str, Any]:
    """Parameters, zero momentum, and the shuffle and dropout streams of the seed."""
    params = init_params(config)
    root = rs.Generator(config.seed)
    return {
        "params": params,
        "velocity": jax.tree.map(jnp.zeros_like, params),
        "shuffle_gen": root.stream("shuffle"),
        "dropout_gen": root.stream("dropout"),
    }


def accuracy(params: Params, x: jax.Array, y: jax.Array) -> float:
    """The fraction of labels the model gets right, dropout off."""
    logits, _ = forward(params, x, None, 0.0)
    return float((logits.argmax(-1) == y).mean())


# -- training, checkpointing, resuming ----------------------------------------------------


def _say(line: str) -> None:
    print(line, flush=True)


@contextlib.contextmanager
def _progress(label: str) -> Iterator[None]:
    """Announce ``label`` if it takes more than a second, then every 5 s until it is done."""
    done = threading.Event()
    start = time.perf_counter()

    def tick() -> None:
        if done.wait(1.0):
            return
        _say(f"  {label} ...")
        while not done.wait(5.0):
            _say(f"  {label} ... {time.perf_counter() - start:.0f} s")

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()


def _train(
    config: DemoConfig,
    checkpoint: dict[str, Any],
    label: str = "",
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], list[float]]:
    """Train from ``checkpoint["epoch"]`` to the last epoch; returns the checkpoint and times."""
    with _progress("drawing the data"):
        x, y = jax.block_until_ready(make_data(config))
    epoch_fn = make_epoch(config)
    state, losses = checkpoint["state"], list(checkpoint["epoch_losses"])
    seconds = []
    first = checkpoint["epoch"]
    for epoch in range(first, config.epochs):
        start = time.perf_counter()
        with _progress(f"epoch {epoch + 1}/{config.epochs}: compiling and running"):
            state, step_losses = jax.block_until_ready(epoch_fn(state, x, y))
        seconds.append(time.perf_counter() - start)
        losses.append(step_losses.mean())
        checkpoint = {**checkpoint, "state": state, "epoch": epoch + 1, "epoch_losses": losses}
        note = " (compiling the epoch included)" if epoch == first else ""
        _say(
            f"  epoch {epoch + 1}/{config.epochs}  loss {float(losses[-1]):.4f}  "
            f"{seconds[-1]:.2f} s{note}{label}"
        )
        if on_epoch is not None:
            on_epoch(checkpoint)
    return checkpoint, seconds


def resume(checkpoint_path: str, result_path: str) -> int:
    """Load a demo checkpoint, train to the last epoch, save the result (the fresh process).

    The configuration travels in the checkpoint; the data is rebuilt from its seed.
    """
    checkpoint = rs.load(checkpoint_path)
    config = DemoConfig(**checkpoint["config"])
    _say(f"  pid {os.getpid()} loaded {checkpoint_path}: epoch {checkpoint['epoch']} done")
    checkpoint, _ = _train(config, checkpoint, label="  (resumed)")
    rs.save(result_path, checkpoint)
    return 0


def differences(a: Any, b: Any) -> list[str]:
    """Places where two trees differ in structure, dtype, shape or any bit; ``[]`` if identical.

    >>> differences({"w": jnp.float32(0.0)}, {"w": jnp.float32(-0.0)})  # same value, not bits
    ["['w']"]
    """
    leaves_a, tree_a = jax.tree_util.tree_flatten_with_path(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten_with_path(b)
    if tree_a != tree_b:
        return [f"tree structure: {tree_a} != {tree_b}"]
    found = []
    for (path, leaf_a), (_, leaf_b) in zip(leaves_a, leaves_b, strict=True):
        x, y = np.asarray(leaf_a), np.asarray(leaf_b)
        if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
            found.append(jax.tree_util.keystr(path))
    return found


def _header(config: DemoConfig) -> None:
    sizes = [config.features, config.hidden, config.hidden, config.classes]
    _say("rngstate demo: a pure-functional training loop, checkpointed and resumed bit for bit")
    _say("")
    _say(
        f"  model    MLP {' -> '.join(map(str, sizes))} (relu, dropout {config.dropout}), "
        f"SGD momentum {config.momentum}, learning rate {config.learning_rate}"
    )
    _say(
        f"  data     {config.samples:,} samples labelled by a random teacher network, "
        f"batch {config.batch}, reshuffled every epoch"
    )
    _say(
        f"  streams  Generator(seed={config.seed}).stream(name) for "
        '"data", "params", "shuffle", "dropout"'
    )
    _say(f"  jax      {jax.__version__} on {jax.default_backend()}, {len(jax.devices())} device(s)")
    _say("")


def _report(
    config: DemoConfig, full: dict[str, Any], seconds: list[float], differ: list[str]
) -> int:
    x, y = make_data(config)
    losses = [float(v) for v in full["epoch_losses"]]
    steady = seconds[1:] or seconds  # the first epoch includes compiling
    samples_per_second = config.steps_per_epoch * config.batch * len(steady) / sum(steady)
    leaves = len(jax.tree.leaves(full))
    _say("")
    _say("report")
    _say(
        f"  steps        {config.epochs * config.steps_per_epoch} "
        f"({config.epochs} epochs x {config.steps_per_epoch} steps of {config.batch} samples)"
    )
    _say(
        f"  loss         {losses[0]:.4f} -> {losses[-1]:.4f} (min {min(losses):.4f}); "
        "by epoch: " + " ".join(f"{v:.3f}" for v in losses)
    )
    _say(f"  accuracy     {accuracy(full['state']['params'], x, y):.1%} on the training data")
    _say(
        f"  throughput   {samples_per_second:,.0f} samples/s "
        f"({samples_per_second / config.batch:,.0f} steps/s), compile excluded"
    )
    if differ:
        _say(f"  resumed run  DIFFERS from the uninterrupted run in {len(differ)}/{leaves} leaves:")
        for place in differ[:10]:
            _say(f"               {place}")
        _say("  verdict      NOT REPRODUCIBLE: resuming from the checkpoint changed the run")
        return 1
    _say(f"  resumed run  final loss {losses[-1]!r} and all {leaves} leaves of the state")
    _say("               (parameters, momentum, losses, generators) identical bit for bit")
    _say("  verdict      REPRODUCIBLE: the resumed run equals the uninterrupted one")
    return 0


def run(config: DemoConfig = FULL, workdir: str | None = None) -> int:
    """Train, checkpoint midway, resume in a fresh process, compare; 0 only if bit-identical.

    Prints the report to stdout. ``workdir`` keeps the checkpoint files (a temporary
    directory otherwise).
    """
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="rngstate-demo-") as directory:
            return run(config, directory)
    os.makedirs(workdir, exist_ok=True)
    midway_path = os.path.join(workdir, "midway.ckpt")
    result_path = os.path.join(workdir, "resumed.ckpt")
    midway = max(1, config.epochs // 2)
    _header(config)

    def save_midway(checkpoint: dict[str, Any]) -> None:
        if checkpoint["epoch"] == midway:
            rs.save(midway_path, checkpoint)
            size = os.path.getsize(midway_path)
            _say(f"  checkpoint after epoch {midway} saved: {midway_path} ({size:,} bytes)")

    _say(f"uninterrupted run: {config.epochs} epochs of {config.steps_per_epoch} steps")
    with _progress("drawing the initial parameters"):
        start = {
            "config": dataclasses.asdict(config),
            "state": jax.block_until_ready(initial_state(config)),
            "epoch": 0,
            "epoch_losses": [],
        }
    full, seconds = _train(config, start, on_epoch=save_midway)

    _say("")
    _say(
        f"resumed run: a new process loads the checkpoint, runs epochs {midway + 1}-{config.epochs}"
    )
    started = time.perf_counter()
    status = subprocess.run(
        [sys.executable, "-m", "rngstate.demo", midway_path, result_path], check=False
    ).returncode
    if status != 0:
        _say(f"FAILED: the resuming process exited with status {status}")
        return 1
    _say(
        f"  done in {time.perf_counter() - started:.1f} s (start, import JAX, load, compile, train)"
    )
    return _report(config, full, seconds, differences(full, rs.load(result_path)))


def _resume_main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m rngstate.demo CHECKPOINT RESULT", file=sys.stderr)
        return 2
    return resume(argv[0], argv[1])


if __name__ == "__main__":
    sys.exit(_resume_main(sys.argv[1:]))
