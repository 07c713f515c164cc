"""rngstate.hugepages: the settings it reads and the probe the doctor prints."""

from __future__ import annotations

from rngstate import hugepages


def test_status_reads_the_kernel_and_the_tunable(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.check=0:glibc.malloc.hugetlb=1")
    s = hugepages.status()
    assert s["hugetlb_tunable"] == "1"
    assert s["thp_enabled"] in ("always", "madvise", "never", "unknown")
    monkeypatch.delenv("GLIBC_TUNABLES")
    assert hugepages.status()["hugetlb_tunable"] == "not set"


def test_probe_times_fresh_and_reused_pages():
    figures = hugepages.probe(seconds=0.05, nbytes=2**23)
    assert figures["fresh_s"] > 0 and figures["reused_s"] > 0
    assert 0.0 <= figures["fault_share"] <= 1.0
    assert figures["huge_pages"] in (True, False, None)


def test_the_probe_runs_with_the_tunable_in_a_fresh_interpreter(monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    figures = hugepages.probe_with_tunable(seconds=0.05)
    assert figures is not None and figures["fresh_s"] > 0
    lines = hugepages.report_lines(seconds=0.05)
    assert lines[0].startswith("huge pages  THP enabled=")
    assert any(line.startswith(f"  with GLIBC_TUNABLES={hugepages.TUNABLE}:") for line in lines)
