"""``python -m benchmarks.accel_check``: prove rngstate on whatever backend this machine has.

1. The cross-backend report (:mod:`benchmarks.accel_values`): every op drawn on the
   default backend and on the host CPU in this process and compared; the golden values, the
   self-checks and a checkpoint moved between the two (``--values=full|quick|none``).
2. The test suite (``pytest``, a subprocess) on the default JAX backend
   (``--tests=quick|full|none``).
3. Benchmarks (:mod:`benchmarks.accel_bench`): in-jit draws and the training loop,
   rngstate against raw ``jax.random``, fast path on and off, against the device's copy
   bandwidth (``--bench=auto|small|large|none``; auto: large sizes on an accelerator).

Writes every figure to ``benchmarks/results/accel-<platform>.json`` (``--json``) and renders
``docs/accelerators.md`` (``--doc``) from all saved results, after each part, so a run cut
short still leaves what it measured (marked incomplete). Needs no network and only the
project on ``PYTHONPATH``: ``PYTHONPATH=. python -m benchmarks.accel_check``. Exits 1 when a
test fails or a value differs beyond its bound.
"""

from __future__ import annotations

import os

# Before JAX starts: the test suite's subprocesses would each reserve 75% of a GPU's memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import argparse
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

QUICK_TESTS = (
    "tests/test_random_ops.py",
    "tests/test_fast.py",
    "tests/golden",
    "tests/test_transforms.py",
)
"""``--tests=quick``: what depends most on the backend: every op against raw jax.random, the
fast path's bits (in jit, vmap, scan, x64, sharded), the golden values, transformations."""


def _platform_name(device_platform: str) -> str:
    return {"cuda": "gpu", "rocm": "gpu"}.get(device_platform, device_platform)


def run_tests(kind: str, out: TextIO) -> dict[str, Any]:
    """Run pytest on the default backend in a subprocess; its summary and skip reasons."""
    if kind == "none":
        return {"kind": "none"}
    targets = list(QUICK_TESTS) if kind == "quick" else []
    argv = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *targets]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"  # its progress shows as it goes, not when a buffer fills
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        out.write(line)
        out.flush()
    returncode = proc.wait()
    summary = next(
        (ln.strip("= ") for ln in reversed(lines) if re.search(r"\d+ (passed|failed|error)", ln)),
        "no summary",
    )
    return {
        "kind": kind,
        "command": "python -m pytest -q " + " ".join(targets) if targets else "python -m pytest -q",
        "returncode": returncode,
        "summary": summary,
        "skipped": [ln[len("SKIPPED ") :] for ln in lines if ln.startswith("SKIPPED ")],
        "seconds": time.perf_counter() - started,
        "passed": returncode == 0,
    }


def _device_label(device: Any) -> str:
    if device.platform == "cpu":
        from benchmarks.harness import machine_info

        return f"CPU ({machine_info()['cpu']})"
    return f"{getattr(device, 'device_kind', device.platform)} ({device.platform})"


def _machine() -> str:
    from benchmarks.harness import machine_info

    m = machine_info()
    return f"{m['cpu']}, {m['cores']} cores, {m['platform']}"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the three parts, write the JSON and the page."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.accel_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tests", choices=("quick", "full", "none"), default="quick")
    parser.add_argument(
        "--values",
        choices=("auto", "full", "quick", "none"),
        default="auto",
        help="full: every op at its small and (16, 8) shapes; quick: (16, 8) only; auto: full "
        "off CPU (on a CPU the comparison is the CPU with itself)",
    )
    parser.add_argument("--ops", help="comma-separated ops for the values (default: all)")
    parser.add_argument(
        "--bench",
        choices=("auto", "small", "large", "none"),
        default="auto",
        help="sizes per draw: small 2**16, 2**20; large 2**24-2**28; auto: large off CPU",
    )
    parser.add_argument("--bench-ops", help="comma-separated draws (default: all)")
    parser.add_argument(
        "--mode",
        choices=("smoke", "quick", "full"),
        default="quick",
        help="the harness's rounds per case",
    )
    parser.add_argument("--json", help="where to write the results (default: results/...)")
    parser.add_argument("--doc", default=os.path.join(REPO_ROOT, "docs", "accelerators.md"))
    parser.add_argument("--no-doc", action="store_true", help="do not write the page")
    parser.add_argument(
        "--render", action="store_true", help="only render the page from saved results"
    )
    args = parser.parse_args(argv)
    out = sys.stdout

    from benchmarks import accel_doc

    if args.render:
        _write(args.doc, accel_doc.render(accel_doc.load_results()))
        print(f"wrote {args.doc}")
        return 0

    started = time.perf_counter()
    import jax

    from benchmarks import accel_bench, accel_values, harness

    device = jax.devices()[0]
    platform_name = _platform_name(device.platform)
    try:
        jax.devices("cpu")
    except RuntimeError as exc:
        print(f"no host CPU backend beside {device}: {exc} (is JAX_PLATFORMS set?)")
        return 2
    machine = harness.machine_info()
    result: dict[str, Any] = {
        "platform": platform_name,
        "device": _device_label(device),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python -m benchmarks.accel_check "
        + shlex.join(sys.argv[1:] if argv is None else list(argv)),
        "commit": machine["git_commit"],
        "versions": machine["versions"],
        "python": platform.python_version(),
        "machine": _machine(),
        "load_before": _load(),
        "tests": None,
        "values": None,
        "bench": None,
        "decision": None,
        "complete": False,
    }
    json_path = args.json or os.path.join(accel_doc.RESULTS, f"accel-{platform_name}.json")

    def save() -> None:
        # After each part, so that a run cut short by a time limit still leaves its figures.
        tests, values = result["tests"], result["values"]
        result["passed"] = bool(
            (tests is None or tests.get("passed", True)) and (values is None or values["passed"])
        )
        result["seconds"] = time.perf_counter() - started
        result["load_after"] = _load()
        harness.write_json(result, json_path)
        if not args.no_doc:
            _write(args.doc, accel_doc.render(accel_doc.load_results([result])))

    if args.values != "none":
        print(f"== values: {device} against the host CPU", flush=True)
        ops = args.ops.split(",") if args.ops else None
        small = args.values == "full" or (args.values == "auto" and platform_name != "cpu")
        values = accel_values.report(ops=ops, small=small)
        for op in values["ops"]:
            state = "ok" if op["passed"] else "DIFFERS: " + "; ".join(op["problems"][:2])
            print(
                f"  {op['name']:22s} max {op['max_ulps']:g} ulp (bound {op['bound_ulps']}) {state}"
            )
        if values["cpu_vs_cpu"]:
            print("  (the default backend is the CPU: this compares the CPU with itself)")
        print(f"  golden, self-checks, checkpoints: passed={values['passed']}", flush=True)
        result["values"] = values
        save()

    print(f"== test suite on {device}", flush=True)
    result["tests"] = run_tests(args.tests, out)
    save()

    if args.bench != "none":
        large = args.bench == "large" or (args.bench == "auto" and platform_name != "cpu")
        sizes = accel_bench.ACCELERATOR_SIZES if large else accel_bench.CPU_SIZES
        steps = accel_bench.ACCELERATOR_STEPS if large else accel_bench.CPU_STEPS
        if args.mode == "smoke":
            sizes, steps = (2**10,), 2
        draw_ops = args.bench_ops.split(",") if args.bench_ops else None
        print(f"== benchmarks on {device}, sizes {sizes}, mode {args.mode}", flush=True)
        results = accel_bench.run(sizes, steps, args.mode, draw_ops, out=out)
        loop = next((r for r in results if r["name"] == accel_bench.LOOP), None)
        result["bench"] = {
            "mode": args.mode,
            "sizes": list(sizes),
            "cases": results,
            "rows": accel_bench.draw_rows(results),
            "training_loop": None
            if loop is None
            else {
                "description": loop["description"],
                "size": loop["size"],
                "ratios": {
                    c["name"]: c["ratio"]["median"] for c in loop["contenders"] if "ratio" in c
                },
            },
        }
        result["decision"] = accel_bench.decide_fast_path(results, platform_name)
        print(f"  fast path default on {platform_name}: {result['decision']}", flush=True)

    result["complete"] = True
    save()
    print(f"wrote {json_path}" + ("" if args.no_doc else f" and {args.doc}"))
    print(f"accel-check {'passed' if result['passed'] else 'FAILED'} in {result['seconds']:.0f} s")
    return 0 if result["passed"] else 1


def _load() -> list[float] | None:
    """The 1, 5 and 15-minute load averages: how quiet the machine was."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
