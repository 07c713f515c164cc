"""Time a 2**26-element float32 normal draw sharded over 1, 2, 4 and 8 host CPU devices.

Usage: ``python benchmarks/sharded_normal.py [--size-log2 26] [--repeats 5]``. It asks XLA
for 8 host devices itself (before JAX starts). Prints, per device count, the best and median
wall time of a jitted draw with ``out_shardings`` (compile excluded) and the ratio to one
device, and how many cores were busy on average (CPU time / wall time); then the
compiled-text check for one op: the collectives in its 8-device program. Host devices share
the machine's cores, and XLA:CPU already spreads one device's large loop over its thread
pool, so the speed-up stops at the core count.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import rngstate as rs  # noqa: E402

COLLECTIVE = re.compile(
    r"= (\S+) (all-gather|all-reduce|collective-permute|all-to-all|reduce-scatter)(?:-start)?\("
)


def sharded_draw(devices: int, shape: tuple[int, ...]):
    mesh = jax.make_mesh((devices,), ("x",), devices=jax.devices()[:devices])
    return jax.jit(
        lambda g: rs.random.normal(g, shape),
        out_shardings=(NamedSharding(mesh, P("x")), NamedSharding(mesh, P())),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-log2", type=int, default=26)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    shape = (2**args.size_log2,)
    gen = rs.Generator(seed=42)
    print(f"jax {jax.__version__}, {os.cpu_count()} CPU cores, {jax.device_count()} host devices")
    print(f"normal float32, {shape[0]:,} elements; best/median of {args.repeats}, no compile")
    reference = None
    best_one = None
    for devices in (1, 2, 4, 8):
        draw = sharded_draw(devices, shape)
        values, _ = draw(gen)  # compile and warm up
        values.block_until_ready()
        if reference is None:
            reference = np.asarray(values)
        same = np.array_equal(np.asarray(values), reference)
        times = []
        cpu_start = time.process_time()
        for _ in range(args.repeats):
            start = time.perf_counter()
            draw(gen)[0].block_until_ready()
            times.append(time.perf_counter() - start)
        cores_busy = (time.process_time() - cpu_start) / sum(times)
        best = min(times)
        best_one = best_one or best
        print(
            f"{devices} device(s): best {best * 1e3:8.1f} ms  median "
            f"{statistics.median(times) * 1e3:8.1f} ms  ratio to 1 device {best / best_one:5.2f}  "
            f"cores busy {cores_busy:3.1f}  values equal to 1 device: {same}"
        )
    for name, op_args in {"normal": (shape,), "gamma": (0.7, (1024,))}.items():
        mesh = jax.make_mesh((8,), ("x",))
        fn = jax.jit(
            lambda g, name=name, op_args=op_args: getattr(rs.random, name)(g, *op_args)[0],
            out_shardings=NamedSharding(mesh, P("x")),
        )
        text = fn.lower(gen).compile().as_text()
        found = [f"{opcode} {kind}" for kind, opcode in COLLECTIVE.findall(text)]
        print(f"compiled-text check, {name} on 8 devices: {len(found)} collective(s) {found}")


if __name__ == "__main__":
    main()
