"""Write the table of a saved benchmark report into docs/performance.md.

``python -m benchmarks.report [--json benchmarks/results/latest.json] [--doc docs/performance.md]``

The table goes between the two marker lines of the page (:data:`BEGIN`, :data:`END`); the
rest of the page is left as it is. Rerun it after ``make bench`` so the page shows the run
committed in ``benchmarks/results/latest.json``: its date, commit, machine and load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from benchmarks import harness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = "<!-- benchmark table: begin (written by python -m benchmarks.report) -->"
END = "<!-- benchmark table: end -->"


def section(report: Mapping[str, Any]) -> str:
    """The Markdown written between the markers: where and when, then the table."""
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    heading = [
        f"Run of {report['date']} (mode {report['mode']}, commit `{m['git_commit']}`): "
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}; {versions}.",
        f"Load average (1, 5, 15 min) at start {report.get('load_before')}, "
        f"at end {report.get('load_after')}.",
        "",
        "Ratios are medians of per-round ratios to the case's baseline, with a 95% confidence "
        "interval; `?` marks a target the interval straddles. Cases marked `[huge pages]` ran "
        "with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`.",
    ]
    return "\n".join([*heading, "", harness.format_markdown(report)])


def write(report: Mapping[str, Any], doc_path: str) -> None:
    """Replace the text between the markers of ``doc_path`` with :func:`section`."""
    with open(doc_path) as f:
        text = f.read()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{doc_path} has no {BEGIN!r} ... {END!r} markers")
    text = text[: start + len(BEGIN)] + "\n\n" + section(report) + "\n\n" + text[end:]
    tmp = doc_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, doc_path)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and write the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__)
    parser.add_argument("--json", default=os.path.join(ROOT, "benchmarks/results/latest.json"))
    parser.add_argument("--doc", default=os.path.join(ROOT, "docs/performance.md"))
    args = parser.parse_args(argv)
    with open(args.json) as f:
        report = json.load(f)
    write(report, args.doc)
    print(f"wrote the table of {args.json} into {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
