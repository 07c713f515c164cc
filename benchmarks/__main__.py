"""``python -m benchmarks [--mode quick|full|smoke] [--json PATH] [--case TEXT ...]``.

Runs the registered cases, prints the table as it goes, and writes every figure as JSON
(``benchmarks/results/latest.json`` for a full run, ``quick.json`` / ``smoke.json`` otherwise).
``--markdown PATH`` prints the table of a saved JSON report as Markdown, without running.

The bulk cases run in two fresh interpreters, one per memory environment (see
:data:`ENVIRONMENTS`): with 4 KiB pages, the page faults on a fresh 64 MiB output weigh as
much as the draw itself, so both figures are reported, the huge-page ones marked as such.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
DEFAULT_JSON = {"full": "latest.json", "quick": "quick.json", "smoke": "smoke.json"}
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HUGETLB = "glibc.malloc.hugetlb"
ENVIRONMENTS = {"default": None, "huge pages": f"{HUGETLB}=1"}
"""Memory environments of the bulk cases: the ``glibc.malloc.hugetlb`` tunable each sets."""
HUGE_PAGE_CASES = ("bulk bits u32", "bulk uniform f32", "bulk normal f32", "bulk uniform f32 vs")
"""The bulk cases also run with huge pages (the rest only in the default environment)."""


def _environ(tunable: str | None) -> dict[str, str]:
    kept = [t for t in os.environ.get("GLIBC_TUNABLES", "").split(":") if t]
    kept = [t for t in kept if not t.startswith(HUGETLB + "=")] + ([tunable] if tunable else [])
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if kept:
        env["GLIBC_TUNABLES"] = ":".join(kept)
    return env


def _run_elsewhere(names: list[str], mode: str, label: str, tunable: str | None) -> list[dict]:
    """Run the cases ``names`` in a fresh interpreter with the given tunable; their results."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "part.json")
        command = [sys.executable, "-m", "benchmarks", "--mode", mode, "--json", path]
        command += ["--in-process", "--exact", *[a for n in names for a in ("--case", n)]]
        print(f"\n-- bulk cases, environment: {label} (GLIBC_TUNABLES={tunable or 'unset'})")
        sys.stdout.flush()
        done = subprocess.run(command, cwd=REPO_ROOT, env=_environ(tunable))
        if done.returncode != 0 or not os.path.exists(path):
            print(f"bulk cases in environment {label!r} failed (exit status {done.returncode})")
            return []
        with open(path) as f:
            part = json.load(f)
    for case in part["cases"]:
        case["environment"] = label
        if label != "default":
            case["name"] = f"{case['name']} [{label}]"
    return part["cases"]


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmarks (or render a saved report)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--mode", choices=("smoke", "quick", "full"), default="full")
    parser.add_argument("--json", help="where to write the report (default: results/...)")
    parser.add_argument(
        "--case", action="append", default=[], help="run only cases whose name contains this"
    )
    parser.add_argument("--exact", action="store_true", help="--case names are exact")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the bulk cases here, in this process's environment, not in two subprocesses",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--markdown", metavar="JSON", help="print a saved report as Markdown")
    args = parser.parse_args(argv)

    from benchmarks import harness

    if args.markdown:
        with open(args.markdown) as f:
            report = json.load(f)
        print(harness.format_header(report) + "\n\n" + harness.format_markdown(report))
        return 0

    import benchmarks.cases  # noqa: F401  (registers the cases)

    def chosen(name: str) -> bool:
        if not args.case:
            return True
        return name in args.case if args.exact else any(t in name for t in args.case)

    cases = [c for c in harness.CASES if chosen(c.name)]
    if args.list or not cases:
        for case in harness.CASES:
            print(f"{case.name:24s} {case.description}")
        return 0 if args.list else 2
    json_path = args.json or os.path.join(RESULTS, DEFAULT_JSON[args.mode])
    bulk = [] if args.in_process or args.mode == "smoke" else [c for c in cases if _is_bulk(c)]
    here = [c for c in cases if c not in bulk]
    report = harness.run(here, args.mode, json_path=None, out=sys.stdout)
    for label, tunable in ENVIRONMENTS.items():
        names = [c.name for c in bulk if label == "default" or c.name.startswith(HUGE_PAGE_CASES)]
        if names:
            report["cases"] += _run_elsewhere(names, args.mode, label, tunable)
    if bulk:
        report["load_after"] = harness._load()
        print("\n" + harness.format_verdict(report))
    harness.write_json(report, json_path)
    print(f"wrote {json_path}")
    return 0


def _is_bulk(case) -> bool:
    return case.name.startswith("bulk ")


if __name__ == "__main__":
    sys.exit(main())
