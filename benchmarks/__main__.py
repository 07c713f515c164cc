"""``python -m benchmarks [--mode quick|full|smoke] [--json PATH] [--case TEXT ...]``.

Runs the registered cases, prints the table as it goes, and writes every figure as JSON
(``benchmarks/results/latest.json`` for a full run, ``quick.json`` / ``smoke.json`` otherwise).
``--markdown PATH`` prints the table of a saved JSON report as Markdown, without running.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
DEFAULT_JSON = {"full": "latest.json", "quick": "quick.json", "smoke": "smoke.json"}


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmarks (or render a saved report)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--mode", choices=("smoke", "quick", "full"), default="full")
    parser.add_argument("--json", help="where to write the report (default: results/...)")
    parser.add_argument(
        "--case", action="append", default=[], help="run only cases whose name contains this"
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

    cases = [c for c in harness.CASES if not args.case or any(t in c.name for t in args.case)]
    if args.list or not cases:
        for case in harness.CASES:
            print(f"{case.name:24s} {case.description}")
        return 0 if args.list else 2
    json_path = args.json or os.path.join(RESULTS, DEFAULT_JSON[args.mode])
    harness.run(cases, args.mode, json_path=json_path, out=sys.stdout)
    print(f"wrote {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
