"""benchmarks.report writes a saved report's table into docs/performance.md's markers."""

from __future__ import annotations

import json

import pytest

from benchmarks import report


def _small_report() -> dict:
    contender = {"status": "ok", "reason": None, "q1": 1e-5, "q3": 2e-5, "median": 1.5e-5}
    return {
        "date": "2026-01-02T03:04:05Z",
        "mode": "quick",
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "python": "3.11.0",
            "versions": {"jax": "0.10.2", "torch": None},
            "git_commit": "abc1234",
        },
        "load_before": [1.5, 1.0, 0.5],
        "load_after": [2.0, 1.0, 0.5],
        "cases": [
            {
                "name": "eager latency",
                "unit": "s",
                "size": 10,
                "contenders": [
                    {**contender, "name": "jit(jax.random.uniform)", "baseline": True},
                    {
                        **contender,
                        "name": "rs.random.uniform",
                        "ratio": {"median": 1.4, "ci95": [1.3, 1.6]},
                        "target": "<= 1.5x",
                        "met": True,
                        "met_for_certain": False,
                    },
                ],
            }
        ],
    }


def test_the_table_goes_between_the_markers_and_the_page_stays(tmp_path):
    results, doc = tmp_path / "latest.json", tmp_path / "performance.md"
    results.write_text(json.dumps(_small_report()))
    doc.write_text(f"# Title\n\nabove\n\n{report.BEGIN}\nold table\n{report.END}\n\nbelow\n")
    assert report.main(["--json", str(results), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Title\n\nabove\n\n") and text.endswith(f"{report.END}\n\nbelow\n")
    assert "old table" not in text
    for shown in ("2026-01-02T03:04:05Z", "`abc1234`", "Test CPU", "[1.5, 1.0, 0.5]"):
        assert shown in text
    row = next(line for line in text.splitlines() if "rs.random.uniform" in line)
    assert "1.400x [1.30-1.60]" in row and "yes?" in row
    # Written twice, the page is the same: nothing accumulates between the markers.
    report.main(["--json", str(results), "--doc", str(doc)])
    assert doc.read_text() == text


def test_a_page_without_markers_is_refused(tmp_path):
    doc = tmp_path / "performance.md"
    doc.write_text("# no markers\n")
    with pytest.raises(ValueError, match="markers"):
        report.write(_small_report(), str(doc))


@pytest.mark.parametrize("table", ["cold start", "samplers"])
def test_the_compact_tables_go_between_their_markers_on_the_page(tmp_path, table):
    prefix = {"cold start": "cold start", "samplers": "sampler"}[table]
    base, other = {
        "cold start": ("jax.random", "rngstate, warm cache"),
        "samplers": ("numpy", "rs.random (eager)"),
    }[table]
    small = _small_report()
    contender = {"status": "ok", "reason": None, "q1": 1.0, "q3": 2.0, "median": 1.5}
    small["cases"].append(
        {
            "name": f"{prefix} gamma(2)",
            "unit": "s",
            "size": 10,
            "contenders": [
                {**contender, "name": base, "baseline": True},
                {**contender, "name": other, "ratio": {"median": 0.5, "ci95": [0.4, 0.6]}},
            ],
        }
    )
    results, doc = tmp_path / "r.json", tmp_path / "performance.md"
    results.write_text(json.dumps(small))
    _, begin, end, _ = report.TABLES[table]
    doc.write_text(f"above\n{begin}\nstale rows\n{end}\nbelow\n")
    assert report.main(["--table", table, "--json", str(results), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert (
        "stale rows" not in text and text.startswith("above\n") and text.endswith(f"{end}\nbelow\n")
    )
    [row] = [line for line in text.splitlines() if line.startswith("| gamma(2)")]
    assert "1.5 s" in row and "0.5x [0.4-0.6]" in row
    assert "eager latency" not in text  # only the cases of its own family


def test_the_page_has_the_markers_of_every_table():
    with open(report.os.path.join(report.ROOT, "docs/performance.md")) as f:
        text = f.read()
    for _, begin, end, _ in report.TABLES.values():
        assert text.find(begin) < text.find(end) and text.find(begin) >= 0
