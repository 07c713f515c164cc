"""Sample every op sharded over host CPU devices; print one JSON report on stdout.

test_sharding.py runs this in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (the test process keeps one device).
Each configuration is one program that samples every op, each under its own
``jax.named_scope`` (which names it in the compiled program's metadata, so a collective can
be traced to its op), so a configuration compiles once. The reference is the same program
jitted without shardings: under a jit, Python scalars are constants of the program, so the
unsharded reference must be jitted as well.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import pathlib
import re
import sys
import time
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from sharding_cases import (  # noqa: E402
    JAX_0_12_ROUNDING_OPS,
    LEADING,
    REJECTION_SAMPLERS,
    ROUNDING_CASES,
    shardable_args,
)

import rngstate as rs  # noqa: E402

GEN = rs.Generator(seed=2**40 + 5, offset=7)
CASES = {**shardable_args(), **ROUNDING_CASES}
EVERY_OP = list(shardable_args())
# An HLO instruction line: "%name = <result type> <opcode>(operands), ..., metadata={...}".
COLLECTIVE = re.compile(
    r"= (\S+) (all-gather|all-reduce|collective-permute|all-to-all|reduce-scatter)(?:-start)?\("
)
SCOPE = re.compile(r'op_name="[^"]*?/case_(\w+?)/')
SCALING_PAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "scaling-out.md"


def _takes_out_sharding(name: str) -> bool:
    # jax.random's own argument passes through rngstate as a static argument. The rejection
    # samplers are left out of this configuration only to save compile time (~10 s): they
    # go through the same argument handling as the rest.
    parameters = inspect.signature(getattr(rs.random, name)).parameters
    return "out_sharding" in parameters and name not in REJECTION_SAMPLERS


# (how the output is sharded, mesh shape, cases). "jit": jax.jit(out_shardings=...);
# "shard_map": every device samples the whole array inside shard_map and keeps its block;
# "explicit": jax.random's own out_sharding= argument under an explicit-axes mesh.
CONFIGS: list[tuple[str, tuple[int, ...], list[str]]] = [
    ("jit", (1,), EVERY_OP),
    ("jit", (2,), EVERY_OP),
    ("jit", (4,), EVERY_OP),
    ("jit", (8,), EVERY_OP + list(ROUNDING_CASES)),
    ("jit", (2, 4), EVERY_OP),
    ("shard_map", (2, 4), EVERY_OP),
]
# jax.random's out_sharding= under an explicit-axes mesh: entered with jax.set_mesh, which
# jax has from 0.7.1 on; an older jax runs the other configurations only.
if hasattr(jax, "set_mesh"):
    CONFIGS.append(("explicit", (8,), [n for n in EVERY_OP if _takes_out_sharding(n)]))


def sample_all(gen: rs.Generator, cases: list[str], **extra: Any) -> dict[str, jax.Array]:
    out = {}
    for case in cases:
        name, args, kwargs = CASES[case]
        with jax.named_scope(f"case_{case}"):
            out[case] = getattr(rs.random, name)(gen, *args, **kwargs, **extra)[0]
    return out


def block_of_global(gen: rs.Generator, cases: list[str]) -> dict[str, jax.Array]:
    """Inside shard_map: sample the whole array, keep this device's (x, y) block."""
    rows, cols = LEADING[0] // jax.lax.axis_size("x"), LEADING[1] // jax.lax.axis_size("y")
    starts = (jax.lax.axis_index("x") * rows, jax.lax.axis_index("y") * cols)
    return {
        case: jax.lax.dynamic_slice(
            whole, (*starts, *[0] * (whole.ndim - 2)), (rows, cols, *whole.shape[2:])
        )
        for case, whole in sample_all(gen, cases).items()
    }


def collectives_by_case(compiled_text: str) -> dict[str, list[str]]:
    """``{case: ["all-reduce pred[]", ...]}``: each collective's opcode and result type."""
    found: dict[str, set[str]] = {}
    for line in compiled_text.splitlines():
        collective = COLLECTIVE.search(line)
        if collective:
            scope = SCOPE.search(line)
            result_type, opcode = collective.groups()
            found.setdefault(scope.group(1) if scope else "?", set()).add(
                f"{opcode} {re.sub(r'{[^}]*}', '', result_type)}"  # drop the layout
            )
    return {case: sorted(kinds) for case, kinds in found.items()}


def max_ulp(got: np.ndarray, want: np.ndarray) -> float:
    if got.shape != want.shape or got.dtype != want.dtype:
        return float("inf")
    if np.array_equal(got, want):
        return 0.0
    if not np.issubdtype(want.dtype, np.floating):
        return float("inf")
    scale = np.spacing(np.maximum(np.abs(got), np.abs(want)))
    return float(np.max(np.abs(got.astype(np.float64) - want) / scale))


def run_config(
    kind: str, mesh_shape: tuple[int, ...], cases: list[str], reference: dict
) -> dict[str, Any]:
    axes = ("x", "y")[: len(mesh_shape)]
    devices = np.array(jax.devices()[: int(np.prod(mesh_shape))]).reshape(mesh_shape)
    axis_type = AxisType.Explicit if kind == "explicit" else AxisType.Auto
    mesh = Mesh(devices, axes, axis_types=(axis_type,) * len(axes))
    spec = P(*axes)  # the leading dimension over x, the next over y
    start = time.process_time()
    if kind == "jit":
        fn = jax.jit(lambda g: sample_all(g, cases), out_shardings=NamedSharding(mesh, spec))
    elif kind == "shard_map":
        fn = jax.jit(
            jax.shard_map(
                lambda g: block_of_global(g, cases), mesh=mesh, in_specs=P(), out_specs=spec
            )
        )
    else:
        fn = jax.jit(lambda g: sample_all(g, cases, out_sharding=spec))
    with jax.set_mesh(mesh) if kind == "explicit" else contextlib.nullcontext():
        compiled = fn.lower(GEN).compile()
        values = compiled(GEN)
    collectives = collectives_by_case(compiled.as_text())
    ops = {}
    for case in cases:
        got = values[case]
        ops[case] = {
            "max_ulp": max_ulp(np.asarray(got), reference[case]),
            "blocks": len({str(shard.index) for shard in got.addressable_shards}),
            "sharding_ok": got.sharding.is_equivalent_to(NamedSharding(mesh, spec), got.ndim),
            "collectives": collectives.pop(case, []),
        }
    return {
        "kind": kind,
        "mesh": "x".join(map(str, mesh_shape)),
        "devices": devices.size,
        "ops": ops,
        "unattributed_collectives": collectives,
        "cpu_seconds": round(time.process_time() - start, 2),
    }


def raw_jax_random_rounding() -> dict[str, int]:
    """Raw jax.random, not rngstate: ``{op: values that differ}`` between the unsharded jit
    and jit with out_shardings over 8 devices, for the ops that may round (sharding_cases)."""
    key = jax.random.key(5)
    mesh = Mesh(np.array(jax.devices()[:8]), ("x",))

    def draw(k: jax.Array) -> dict[str, jax.Array]:
        out = {}
        for name in sorted(JAX_0_12_ROUNDING_OPS):
            _, args, kwargs = CASES[name]
            out[name] = getattr(jax.random, name)(k, *args, **kwargs)
        return out

    unsharded = jax.device_get(jax.jit(draw)(key))
    sharded = jax.device_get(jax.jit(draw, out_shardings=NamedSharding(mesh, P("x")))(key))
    return {name: int(np.sum(sharded[name] != unsharded[name])) for name in unsharded}


def run_readme_example() -> str:
    """Run the first Python block of the scaling-out page (its asserts check it); its output."""
    section = SCALING_PAGE.read_text()
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "docs/scaling-out.md", "exec"), {})
    return printed.getvalue()


def main() -> None:
    start = time.process_time()
    reference = jax.device_get(jax.jit(lambda g: sample_all(g, list(CASES)))(GEN))
    report = {
        "device_count": jax.device_count(),
        "reference_cpu_seconds": round(time.process_time() - start, 2),
        "configs": [run_config(kind, mesh, cases, reference) for kind, mesh, cases in CONFIGS],
        "readme_example": run_readme_example(),
        "raw_jax_random_rounding": raw_jax_random_rounding(),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
