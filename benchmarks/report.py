"""Write the table of a saved benchmark report into docs/performance.md.

``python -m benchmarks.report [--json benchmarks/results/latest.json] [--doc docs/performance.md]``
``python -m benchmarks.report --table "cold start" --json benchmarks/results/cold-start.json``
``python -m benchmarks.report --table samplers --json benchmarks/results/samplers.json``

The table goes between the two marker lines of the page (:data:`BEGIN`, :data:`END`, or the
markers of the ``--table`` chosen, :data:`TABLES`); the rest of the page is left as it is.
Rerun it after ``make bench`` so the page shows the run committed in
``benchmarks/results/``: its date, commit, machine and load.
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


def _heading(report: Mapping[str, Any]) -> list[str]:
    return section(report).split("\n\n")[0].split("\n")[:2]


def _figure(c: Mapping[str, Any] | None, unit: str) -> str:
    """A contender's median, and its ratio to the baseline with the 95% interval."""
    if c is None:
        return ""
    if c["status"] != "ok":
        return "n/a"
    text = harness.format_quantity(c["median"], unit)
    ratio = c.get("ratio")
    if ratio and not c.get("baseline"):
        low, high = ratio["ci95"]
        text += f" ({ratio['median']:.3g}x [{low:.3g}-{high:.3g}])"
    return text


def compact(report: Mapping[str, Any], prefix: str, columns: Mapping[str, str]) -> str:
    """One row per case named ``prefix ...``, one column per contender (``columns``: the
    contender's name to the column's title): each median, and its ratio to the case's
    baseline with a 95% confidence interval."""
    lines = [
        "| " + " | ".join(["", *columns.values()]) + " |",
        "|" + "---|" * (len(columns) + 1),
    ]
    for result in report["cases"]:
        if not result["name"].startswith(prefix + " "):
            continue
        by_name = {c["name"]: c for c in result["contenders"]}
        cells = [_figure(by_name.get(name), result["unit"]) for name in columns]
        label = result["name"][len(prefix) + 1 :]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def _compact_section(prefix: str, columns: Mapping[str, str], note: str) -> Any:
    def make(report: Mapping[str, Any]) -> str:
        table = compact(report, prefix, columns)
        return "\n".join([*_heading(report), "", note, "", table])

    return make


TABLES = {
    "benchmark": ("latest.json", BEGIN, END, section),
    "cold start": (
        "cold-start.json",
        "<!-- cold-start table: begin (written by python -m benchmarks.report) -->",
        "<!-- cold-start table: end -->",
        _compact_section(
            "cold start",
            {
                "jax.random": "eager jax.random",
                "rngstate, warm cache": "rngstate, warm cache",
                "rngstate, cold cache": "rngstate, cold cache",
                "RNGSTATE_FAST=0": "RNGSTATE_FAST=0",
            },
            "Wall time of the first call in a fresh interpreter (imports done), median over "
            "rounds, with the median per-round ratio to eager `jax.random` and its 95% "
            "confidence interval.",
        ),
    ),
    "samplers": (
        "samplers.json",
        "<!-- sampler table: begin (written by python -m benchmarks.report) -->",
        "<!-- sampler table: end -->",
        _compact_section(
            "sampler",
            {
                "rs.random (eager)": "rngstate (eager)",
                "jit(jax.random)": "jit(jax.random)",
                "numpy": "NumPy default_rng",
                "torch (CPU)": "PyTorch (CPU)",
                "jit(floor: its sorts)": "jax.random's sorts alone",
            },
            "Median time of one draw, with the median per-round ratio to NumPy's and its 95% "
            "confidence interval; rngstate's values are `jax.random`'s bit for bit.",
        ),
    ),
}
"""Each table of the page: its report file in benchmarks/results/, markers, and writer."""


def write(report: Mapping[str, Any], doc_path: str, table: str = "benchmark") -> None:
    """Replace the text between the markers of ``table`` in ``doc_path`` with its text."""
    _, begin, end_marker, make = TABLES[table]
    with open(doc_path) as f:
        text = f.read()
    start, end = text.find(begin), text.find(end_marker)
    if start < 0 or end < start:
        raise ValueError(f"{doc_path} has no {begin!r} ... {end_marker!r} markers")
    text = text[: start + len(begin)] + "\n\n" + make(report) + "\n\n" + text[end:]
    tmp = doc_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, doc_path)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and write the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__)
    parser.add_argument("--table", choices=sorted(TABLES), default="benchmark")
    parser.add_argument("--json", default=None, help="default: the table's file in results/")
    parser.add_argument("--doc", default=os.path.join(ROOT, "docs/performance.md"))
    args = parser.parse_args(argv)
    if args.json is None:
        args.json = os.path.join(ROOT, "benchmarks/results", TABLES[args.table][0])
    with open(args.json) as f:
        report = json.load(f)
    write(report, args.doc, args.table)
    print(f"wrote the table of {args.json} into {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
