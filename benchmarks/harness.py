"""Side-by-side measurement: a registry of cases, interleaved rounds, ratios pair by pair.

The machine these benchmarks run on is shared and noisy, so absolute times drift from one
minute to the next. Every case therefore runs its contenders interleaved, one sample each per
round in a shuffled order, and a contender's ratio to the baseline is the median over rounds of
``t_contender / t_baseline`` taken within the same round: slow stretches hit both sides.
Each timed sample also records the CPU time of this process (all its threads); the ratio of
CPU times is reported beside the wall-time ratio, as a check that does not move with other
processes' load (targets are judged on wall time).

A case is a :class:`Case` in :data:`CASES` (see ``benchmarks/cases.py``). Its ``build`` turns a
size into zero-arg callables, built once; the harness warms them up (compiles), then times them
(``kind="time"``), or calls them once a round and records the number they return
(``kind="value"``: a compile count, a peak memory, a time measured in a subprocess).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import random
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TextIO

MODES = ("smoke", "quick", "full")
Mode = Literal["smoke", "quick", "full"]


class Unavailable(Exception):
    """A contender that cannot run here (a package or module missing); reported as ``n/a``."""


@dataclasses.dataclass(frozen=True)
class Target:
    """What a contender must show: a ratio to the baseline of at most ``max_ratio``, or a
    value exactly ``equals``.

    >>> Target(max_ratio=1.02).met(ratio=1.01, value=5.0), str(Target(max_ratio=1.02))
    (True, '<= 1.02x')
    >>> Target(equals=1).met(ratio=None, value=2), str(Target(equals=1))
    (False, '== 1')
    """

    max_ratio: float | None = None
    equals: float | None = None

    def met(self, ratio: float | None, value: float | None) -> bool | None:
        if self.max_ratio is not None:
            return None if ratio is None else ratio <= self.max_ratio
        return None if value is None else value == self.equals

    def __str__(self) -> str:
        if self.max_ratio is not None:
            return f"<= {self.max_ratio:g}x"
        return f"== {self.equals:g}"


@dataclasses.dataclass(frozen=True)
class Timing:
    """How hard a mode measures: rounds, warm-up calls, and the shortest timed sample.

    A timed sample repeats the call until it lasts about ``min_sample_s``, so that the timer
    resolution and one-off hiccups do not dominate calls of a few microseconds.
    """

    rounds: int
    warmup: int
    min_sample_s: float


TIMINGS: dict[str, Timing] = {
    "smoke": Timing(rounds=1, warmup=1, min_sample_s=0.0),
    "quick": Timing(rounds=15, warmup=2, min_sample_s=0.002),
    "full": Timing(rounds=51, warmup=3, min_sample_s=0.01),
}

Contender = Callable[[], Any]


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark: contenders measured side by side, and what they should show.

    Args:
      name: short and unique, e.g. ``"in-jit uniform"``.
      description: one line saying what is measured.
      build: ``size -> {contender name: zero-arg callable or Unavailable}``; called once.
      sizes: the size given to ``build`` in each mode (``"smoke"``, ``"quick"``, ``"full"``).
      baseline: the contender the ratios divide by, or None for no ratios.
      targets: per contender, what it must show.
      kind: ``"time"`` (the harness times each call) or ``"value"`` (each call returns the
        figure itself, in ``unit``).
      unit: ``"s"`` for times, else what a value-kind call returns (``"bytes"``, ``"count"``,
        ``"ratio"``).
      elements: values produced per call, for a throughput column (values per second).
      rounds: per mode, overrides the mode's number of rounds (for slow subprocess cases).
    """

    name: str
    description: str
    build: Callable[[Any], Mapping[str, Contender | Unavailable]]
    sizes: Mapping[str, Any]
    baseline: str | None = None
    targets: Mapping[str, Target] = dataclasses.field(default_factory=dict)
    kind: Literal["time", "value"] = "time"
    unit: str = "s"
    elements: Callable[[Any], int] | None = None
    rounds: Mapping[str, int] | None = None


CASES: list[Case] = []
"""The registry, in report order; ``cases.py`` fills it with :func:`register`."""


def register(case: Case) -> Case:
    """Add ``case`` to :data:`CASES` (names must be unique) and return it."""
    if any(c.name == case.name for c in CASES):
        raise ValueError(f"a case named {case.name!r} is already registered")
    missing = [m for m in MODES if m not in case.sizes]
    if missing:
        raise ValueError(f"case {case.name!r} has no size for mode(s) {', '.join(missing)}")
    CASES.append(case)
    return case


# -- statistics ---------------------------------------------------------------------------


def summarize(xs: Iterable[float]) -> dict[str, float]:
    """Median, quartiles and range of a sample (quartiles inclusive of the extremes).

    >>> summarize([4.0, 1.0, 3.0, 2.0, 5.0])
    {'median': 3.0, 'q1': 2.0, 'q3': 4.0, 'min': 1.0, 'max': 5.0}
    >>> summarize([7.0])["q3"]
    7.0
    """
    xs = sorted(xs)
    if not xs:
        raise ValueError("summarize needs at least one sample")
    if len(xs) == 1:
        q1 = q3 = xs[0]
    else:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return {"median": statistics.median(xs), "q1": q1, "q3": q3, "min": xs[0], "max": xs[-1]}


def median_ci(xs: Iterable[float], z: float = 1.96) -> tuple[float, float]:
    """A distribution-free ~95% confidence interval of the median (order statistics).

    With few samples it widens to the whole range: a single sample gives no spread to judge.

    >>> median_ci([float(x) for x in range(1, 52)])
    (18.0, 34.0)
    >>> median_ci([5.0])
    (5.0, 5.0)
    """
    xs = sorted(xs)
    n = len(xs)
    half_width = z * math.sqrt(n) / 2
    lo = max(math.floor(n / 2 - half_width), 1)
    hi = min(math.ceil(1 + n / 2 + half_width), n)
    return xs[lo - 1], xs[hi - 1]


def paired_ratios(samples: list[float], baseline: list[float]) -> list[float]:
    """Ratios round by round: ``samples[r] / baseline[r]``.

    >>> paired_ratios([2.0, 3.0], [1.0, 2.0])
    [2.0, 1.5]
    """
    if len(samples) != len(baseline):
        raise ValueError("paired ratios need one sample of each contender per round")
    return [s / b for s, b in zip(samples, baseline, strict=True)]


def round_order(names: list[str], round_index: int) -> list[str]:
    """The order of the contenders in one round: shuffled anew each round, reproducibly.

    A fixed cyclic order would give each contender the same predecessor in every round, and
    whatever one contender leaves behind (busy threads, a freed buffer) would always tax the
    same next one; shuffling spreads that over all of them.

    >>> round_order(["a", "b", "c"], 0) == round_order(["a", "b", "c"], 0)
    True
    >>> sorted(round_order(["a", "b", "c"], 5))
    ['a', 'b', 'c']
    """
    order = list(names)
    random.Random(round_index).shuffle(order)
    return order


# -- running ------------------------------------------------------------------------------


def _block(result: Any) -> Any:
    import jax

    return jax.block_until_ready(result)


def time_sample(fn: Contender, number: int) -> tuple[float, float]:
    """Wall time and CPU time (all threads of this process) per call, over ``number`` calls."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection belongs to no one contender
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(number):
            _block(fn())
        return (time.perf_counter() - wall) / number, (time.process_time() - cpu) / number
    finally:
        if gc_was_enabled:
            gc.enable()


def warm_up(fn: Contender, calls: int) -> float:
    """Call ``fn`` ``calls`` times (at least twice: the first call compiles) and return the
    shortest time of the calls after the first."""
    times = []
    for _ in range(max(calls, 2)):
        start = time.perf_counter()
        _block(fn())
        times.append(time.perf_counter() - start)
    return min(times[1:])


def calls_per_sample(one_call_s: float, min_sample_s: float) -> int:
    """How many calls make one timed sample last at least ``min_sample_s``.

    >>> calls_per_sample(0.5, 0.01), calls_per_sample(1e-5, 0.01), calls_per_sample(1e-5, 0)
    (1, 1000, 1)
    """
    if min_sample_s <= 0:
        return 1
    return max(1, min(100_000, math.ceil(min_sample_s / max(one_call_s, 1e-9))))


def run_case(case: Case, mode: Mode) -> dict[str, Any]:
    """Build and measure one case in ``mode``; return its figures as a JSON-ready dict."""
    timing = TIMINGS[mode]
    size = case.sizes[mode]
    rounds = (case.rounds or {}).get(mode, timing.rounds)
    started = time.perf_counter()
    built = dict(case.build(size))
    entries: dict[str, dict[str, Any]] = {}
    runnable: dict[str, Contender] = {}
    for name, fn in built.items():
        entries[name] = {"name": name, "status": "ok", "reason": None}
        if isinstance(fn, Unavailable):
            entries[name].update(status="unavailable", reason=f"n/a: {fn}")
        else:
            runnable[name] = fn

    numbers: dict[str, int] = {}
    for name, fn in list(runnable.items()):
        try:
            if case.kind == "time":
                one_call = warm_up(fn, timing.warmup)
                numbers[name] = calls_per_sample(one_call, timing.min_sample_s)
        except Unavailable as exc:
            entries[name].update(status="unavailable", reason=f"n/a: {exc}")
            del runnable[name]
        except Exception as exc:  # noqa: BLE001 - one broken contender must not end the run
            entries[name].update(status="error", reason=f"error: {type(exc).__name__}: {exc}")
            del runnable[name]

    samples: dict[str, list[float]] = {name: [] for name in runnable}
    cpu_samples: dict[str, list[float]] = {name: [] for name in runnable}
    for r in range(rounds):
        for name in round_order(list(runnable), r):
            if name not in samples:
                continue
            fn = runnable[name]
            try:
                if case.kind == "time":
                    wall, cpu = time_sample(fn, numbers[name])
                    samples[name].append(wall)
                    cpu_samples[name].append(cpu)
                else:
                    samples[name].append(float(fn()))
            except Exception as exc:  # noqa: BLE001
                entries[name].update(status="error", reason=f"error: {type(exc).__name__}: {exc}")
                del samples[name]

    base = samples.get(case.baseline) if case.baseline else None
    cpu_base = cpu_samples.get(case.baseline) if case.baseline else None
    for name, xs in samples.items():
        entry = entries[name]
        entry.update(summarize(xs))
        entry["samples"] = xs
        entry["calls_per_sample"] = numbers.get(name)
        if case.kind == "time":
            entry["cpu_samples"] = cpu_samples[name]
            entry["cpu_median"] = statistics.median(cpu_samples[name])
        if case.elements is not None and entry["median"] > 0:
            entry["per_second"] = case.elements(size) / entry["median"]
        if base is not None and name != case.baseline:
            ratios = paired_ratios(xs, base)
            entry["ratio"] = {**summarize(ratios), "ci95": median_ci(ratios)}
            if cpu_base and min(cpu_base) > 0:
                entry["cpu_ratio"] = summarize(paired_ratios(cpu_samples[name], cpu_base))
    for name, target in case.targets.items():
        if name not in entries:
            raise ValueError(f"case {case.name!r} sets a target for unknown contender {name!r}")
        entry = entries[name]
        entry["target"] = str(target)
        ratio = entry.get("ratio", {})
        entry["met"] = target.met(ratio.get("median"), entry.get("median"))
        if "ci95" in ratio:  # does the whole interval lie on the same side of the target?
            ends = {target.met(end, None) for end in ratio["ci95"]}
            entry["met_for_certain"] = len(ends) == 1
    if case.baseline and case.baseline in entries:
        entries[case.baseline]["baseline"] = True

    return {
        "name": case.name,
        "description": case.description,
        "kind": case.kind,
        "unit": case.unit,
        "size": size,
        "rounds": rounds,
        "baseline": case.baseline,
        "seconds": time.perf_counter() - started,
        "contenders": list(entries.values()),
    }


def machine_info() -> dict[str, Any]:
    """Where and with what the run happened: CPU, cores, load, and package versions."""
    import platform
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    versions = {}
    for package in ("rngstate", "jax", "jaxlib", "numpy", "torch"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=os.path.dirname(os.path.abspath(__file__)),
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip() if out.returncode == 0 else ""
    return commit or None


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run(
    cases: Iterable[Case],
    mode: Mode,
    *,
    json_path: str | os.PathLike[str] | None = None,
    out: TextIO | None = None,
) -> dict[str, Any]:
    """Run ``cases`` in ``mode``, print the table to ``out`` as each case finishes, write JSON.

    Returns the report: ``machine``, ``date``, ``mode``, ``load_before``/``load_after`` (the
    1/5/15-minute load averages, to judge how quiet the machine was) and ``cases``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": mode,
        "machine": machine_info(),
        "load_before": _load(),
        "cases": [],
    }
    started = time.perf_counter()
    if out is not None:
        out.write(format_header(report) + "\n\n" + format_table_head() + "\n")
        out.flush()
    for case in cases:
        result = run_case(case, mode)
        report["cases"].append(result)
        if out is not None:
            out.write("\n".join(format_case_rows(result)) + "\n")
            out.flush()
    report["load_after"] = _load()
    report["seconds"] = time.perf_counter() - started
    if out is not None:
        out.write("\n" + format_verdict(report) + "\n")
    if json_path is not None:
        write_json(report, json_path)
    return report


def write_json(report: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``report`` to ``path`` atomically (a reader never sees half a file)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


# -- formatting ---------------------------------------------------------------------------


def format_quantity(x: float | None, unit: str) -> str:
    """A figure with a readable unit: seconds, bytes, counts.

    >>> format_quantity(0.0000123, "s"), format_quantity(3 * 2**20, "bytes")
    ('12.3 us', '3.0 MiB')
    >>> format_quantity(1.0, "count"), format_quantity(1.0000024, "ratio")
    ('1', '1.000002x')
    """
    if x is None:
        return ""
    if unit == "s":
        for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
            if abs(x) >= scale:
                return f"{x / scale:.3g} {name}"
        return f"{x / 1e-9:.3g} ns"
    if unit == "bytes":
        return f"{x / 2**20:.1f} MiB"
    if unit == "count":
        return f"{x:g}"
    if unit == "ratio":
        return f"{x:.6f}x"
    return f"{x:.3g} {unit}"


def format_rate(x: float | None) -> str:
    """Values per second with an SI prefix.

    >>> format_rate(2.5e8)
    '250 M/s'
    """
    if x is None:
        return ""
    for scale, name in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:.3g} {name}/s"
    return f"{x:.3g} /s"


def format_size(size: Any) -> str:
    """Sizes that are powers of two as ``2**k``.

    >>> format_size(2**20), format_size(10), format_size({"steps": 5})
    ('2**20', '10', 'steps=5')
    """
    if isinstance(size, int) and size > 2 and size & (size - 1) == 0:
        return f"2**{size.bit_length() - 1}"
    if isinstance(size, Mapping):
        return ", ".join(f"{k}={format_size(v)}" for k, v in size.items())
    return str(size)


_COLUMNS = (
    ("case", 18),
    ("contender", 37),
    ("median", 10),
    ("spread (IQR)", 21),
    ("ratio [95% CI]", 22),
    ("cpu ratio", 9),
    ("target", 9),
    ("met", 4),
    ("throughput", 11),
)


def _cells(result: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    unit = result["unit"]
    for i, c in enumerate(result["contenders"]):
        size = "" if result["size"] is None else f"({format_size(result['size'])})"
        label = [result["name"], size][i] if i < 2 else ""
        name = c["name"] + (" [baseline]" if c.get("baseline") else "")
        if c["status"] != "ok":
            rows.append([label, name, c["reason"], "", "", "", c.get("target", ""), "", ""])
            continue
        spread = f"{format_quantity(c['q1'], unit)} - {format_quantity(c['q3'], unit)}"
        if c["q1"] == c["q3"]:
            spread = ""
        ratio = ""
        if "ratio" in c:
            r = c["ratio"]
            ratio = f"{r['median']:.3f}x [{r['ci95'][0]:.2f}-{r['ci95'][1]:.2f}]"
        met = _met_word(c)
        rows.append(
            [
                label,
                name,
                format_quantity(c["median"], unit),
                spread,
                ratio,
                f"{c['cpu_ratio']['median']:.3f}x" if "cpu_ratio" in c else "",
                c.get("target", ""),
                met,
                format_rate(c.get("per_second")),
            ]
        )
    return rows


def _met_word(c: Mapping[str, Any]) -> str:
    word = {True: "yes", False: "NO", None: ""}[c.get("met")]
    return word + "?" if word and c.get("met_for_certain") is False else word


def format_table_head() -> str:
    """The table's column titles and rule."""
    head = "  ".join(title.ljust(width) for title, width in _COLUMNS).rstrip()
    return head + "\n" + "-" * len(head)


def format_case_rows(result: Mapping[str, Any]) -> list[str]:
    """One case of the table: a row per contender, the case name and size on the left."""
    return [
        "  ".join(
            cell.ljust(width) for cell, (_, width) in zip(row, _COLUMNS, strict=True)
        ).rstrip()
        for row in _cells(result)
    ] + [""]


def format_header(report: Mapping[str, Any]) -> str:
    """Machine, versions, date, mode and load, as two lines."""
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    load = report.get("load_before")
    return (
        f"rngstate benchmarks, mode {report['mode']}, {report['date']}, commit {m['git_commit']}\n"
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}; {versions}; "
        f"load average at start {load}"
    )


def format_verdict(report: Mapping[str, Any]) -> str:
    """Targets met and missed, one line each, and the run's length and load."""
    lines = []
    for result in report["cases"]:
        for c in result["contenders"]:
            if "target" not in c:
                continue
            shown = c.get("ratio", {}).get("median") if "ratio" in c else c.get("median")
            figure = f"{shown:.3f}" if isinstance(shown, float) else c.get("reason", "")
            verdict = {"yes": "met", "NO": "MISSED", "": "not measured"}[_met_word(c).rstrip("?")]
            if _met_word(c).endswith("?"):
                verdict += "?"
            cpu = f", cpu ratio {c['cpu_ratio']['median']:.3f}" if "cpu_ratio" in c else ""
            lines.append(
                f"  {verdict:12s} {result['name']} / {c['name']}: {figure} {c['target']}{cpu}"
            )
    return (
        "targets (? : the median ratio's 95% confidence interval straddles the target):\n"
        + "\n".join(lines)
        + f"\nran {report.get('seconds', 0):.0f} s; load average at start "
        f"{report.get('load_before')}, at end {report.get('load_after')}"
    )


def format_markdown(report: Mapping[str, Any]) -> str:
    """The table as Markdown, for the README."""
    titles = [title for title, _ in _COLUMNS]
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    for result in report["cases"]:
        for row in _cells(result):
            lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    return "\n".join(lines)
