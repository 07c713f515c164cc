"""Run the dieharder battery on rngstate's bit streams and write ``docs/quality.md``.

Three streams of little-endian uint32 words, all built from ``rngstate.random.bits`` with the
block of ``rngstate bits`` (``BLOCK`` = 2**20 words of one generator):

``single-seed``
    Exactly ``rngstate bits --seed S``: block ``i`` is ``bits(Generator(S, i))``.
``seeds-8``
    Eight adjacent seeds, interleaved word by word: for block ``i`` the generators
    ``Generator(S + j, i)``, ``j = 0..7``, each give ``BLOCK`` words ``w_j``, and the
    stream carries ``w_0[0], w_1[0], ..., w_7[0], w_0[1], w_1[1], ...``; so word ``8n + j``
    of the stream is word ``n`` of ``rngstate bits --seed S+j``.
``offsets-8``
    Eight adjacent offsets of one seed, interleaved word by word: for block ``i`` the
    generators ``Generator(S, 8i + j)``, ``j = 0..7``, interleaved as above; every offset
    is used once, and each adjacent pair of offsets sits in neighbouring words.

Usage (``make quality`` runs it)::

    python tests/quality/run_dieharder.py run --mode standard   # full on single-seed,
                                                               # subset on the others
    python tests/quality/run_dieharder.py run --mode subset --streams seeds-8
    python tests/quality/run_dieharder.py report               # rewrite docs/quality.md
    python tests/quality/run_dieharder.py stream seeds-8 --seed 1 | head -c 64 | xxd

Raw dieharder output goes to ``build/quality/<stream>-<battery>-<seed>.txt`` (with start
and end times); ``report`` parses every such log into ``docs/quality.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "build" / "quality"
REPORT = ROOT / "docs" / "quality.md"
DEFAULT_SEED = 20261121
STDIN_RAW = "200"  # dieharder -g number of stdin_input_raw (see `dieharder -g -1`)
FANOUT = 8

# The named subset: the list plus the cheap tests of the same families, by dieharder
# test number. rgb_bitdist needs an explicit ntuple; it runs for ntuple 1..12 as `-a` does.
SUBSET: dict[str, int] = {
    "diehard_birthdays": 0,
    "diehard_operm5": 1,
    "diehard_rank_32x32": 2,
    "diehard_rank_6x8": 3,
    "diehard_bitstream": 4,
    "diehard_count_1s_str": 8,
    "diehard_count_1s_byt": 9,
    "diehard_parking_lot": 10,
    "diehard_2dsphere": 11,
    "diehard_3dsphere": 12,
    "diehard_squeeze": 13,
    "diehard_runs": 15,
    "diehard_craps": 16,
    "sts_monobit": 100,
    "sts_runs": 101,
    "sts_serial": 102,
    "rgb_bitdist": 200,
}
RGB_BITDIST_NTUPLES = range(1, 13)


def subset_args() -> list[list[str]]:
    """dieharder arguments of each run of the subset battery."""
    runs = [["-d", str(number)] for name, number in SUBSET.items() if name != "rgb_bitdist"]
    runs += [["-d", str(SUBSET["rgb_bitdist"]), "-n", str(n)] for n in RGB_BITDIST_NTUPLES]
    return runs


STREAM_DOC = {
    "single-seed": "`rngstate bits --seed S`: block i = bits(Generator(S, i), (2**20,), uint32)",
    "seeds-8": "word 8n+j = word n of `rngstate bits --seed S+j`, j = 0..7 "
    "(block i interleaves Generator(S+j, i))",
    "offsets-8": "block i interleaves word by word bits(Generator(S, 8i+j), (2**20,), uint32), "
    "j = 0..7",
}


def _blocks(name: str, seed: int) -> Iterator[np.ndarray]:
    """The words of stream ``name``, one block (a uint32 array) at a time, endless."""
    import rngstate as rs
    from rngstate.cli import _jitted_block

    draw = _jitted_block()
    layouts: dict[str, Callable[[int], list[rs.Generator]]] = {
        "single-seed": lambda i: [rs.Generator(seed, i)],
        "seeds-8": lambda i: [rs.Generator((seed + j) % 2**64, i) for j in range(FANOUT)],
        "offsets-8": lambda i: [rs.Generator(seed, FANOUT * i + j) for j in range(FANOUT)],
    }
    layout = layouts[name]
    i = 0
    while True:
        words = [np.asarray(draw(g)) for g in layout(i)]
        # Column-major stacking puts word n of generator j at position FANOUT * n + j.
        yield np.stack(words, axis=1).reshape(-1).astype("<u4", copy=False)
        i += 1


def write_stream(name: str, seed: int) -> None:
    """Write stream ``name`` to stdout until the reader closes the pipe."""
    out = sys.stdout.buffer
    try:
        for block in _blocks(name, seed):
            out.write(block.tobytes())
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ensure_dieharder() -> str:
    found = shutil.which("dieharder")
    if found:
        return found
    print("dieharder is not installed; installing the Debian package `dieharder`:", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "dieharder"]):
        print("  " + shlex.join(sudo + cmd), flush=True)
        subprocess.run(sudo + cmd, check=True)
    found = shutil.which("dieharder")
    if not found:
        sys.exit("dieharder still not on PATH; install it by hand: apt-get install dieharder")
    return found


def _pipe_into_dieharder(stream: str, seed: int, dieharder_args: list[str], log) -> None:
    command = ["dieharder", *dieharder_args, "-g", STDIN_RAW]
    log.write(
        f"# command: python tests/quality/run_dieharder.py stream {stream} --seed {seed} "
        f"| {shlex.join(command)}\n"
    )
    log.flush()
    producer = subprocess.Popen(
        [sys.executable, __file__, "stream", stream, "--seed", str(seed)],
        stdout=subprocess.PIPE,
    )
    try:
        subprocess.run(
            command,
            stdin=producer.stdout,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    finally:
        producer.stdout.close()
        producer.wait()


def log_path(stream: str, battery: str, seed: int) -> Path:
    """Where the raw dieharder output of one run lives."""
    return LOGS / f"{stream}-{battery}-{seed}.txt"


def run(stream: str, battery: str, seed: int, tests: list[list[str]] | None = None) -> Path:
    """Run ``battery`` (``full``: ``-a``; ``subset``: one ``-d`` per test) on a stream.

    With ``subset`` (or explicit ``tests``, dieharder arguments per run) every test reads
    the stream from its first word.
    """
    _ensure_dieharder()
    LOGS.mkdir(parents=True, exist_ok=True)
    path = log_path(stream, battery, seed)
    with path.open("w") as log:
        log.write(f"# stream: {stream}  seed: {seed}  battery: {battery}\n# start: {_now()}\n")
        log.flush()
        if battery == "full":
            _pipe_into_dieharder(stream, seed, ["-a"], log)
        else:
            for args in tests or subset_args():
                _pipe_into_dieharder(stream, seed, args, log)
                log.flush()
        log.write(f"# end: {_now()}\n")
    return path


_ROW = re.compile(
    r"^\s*(?P<name>\w+)\|\s*(?P<ntup>\d+)\|\s*(?P<tsamples>\d+)\|\s*(?P<psamples>\d+)\|"
    r"(?P<p>[0-9.eE+-]+)\|\s*(?P<verdict>PASSED|WEAK|FAILED)\s*$"
)


def parse(path: Path) -> dict:
    """Rows, verdict counts and start/end times of one raw dieharder log."""
    text = path.read_text()
    rows = [m.groupdict() for m in map(_ROW.match, text.splitlines()) if m]
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("PASSED", "WEAK", "FAILED")}
    start = re.search(r"# start: (\S+)", text)
    end = re.search(r"# end: (\S+)", text)
    head = re.match(r"# stream: (\S+)\s+seed: (\d+)\s+battery: (\S+)", text)
    commands = re.findall(r"^# command: (.*)$", text, flags=re.MULTILINE)
    return {
        "path": path,
        "text": text,
        "rows": rows,
        "counts": counts,
        "stream": head.group(1) if head else path.stem,
        "seed": int(head.group(2)) if head else None,
        "battery": head.group(3) if head else "?",
        "commands": commands,
        "start": start.group(1) if start else None,
        "end": end.group(1) if end else None,
    }


def _minutes(start: str | None, end: str | None) -> str:
    if not (start and end):
        return "did not finish"
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    delta = dt.datetime.strptime(end, fmt) - dt.datetime.strptime(start, fmt)
    return f"{delta.total_seconds() / 60:.0f} min"


def _table_only(text: str) -> str:
    """The dieharder output without this script's header lines, and with dieharder's banner
    (printed again by every ``-d`` run of a subset) shown only before the first result."""
    kept, results_seen = [], False
    for line in text.splitlines():
        banner = line.startswith(("#===", "stdin_input")) or any(
            word in line for word in ("dieharder version", "rng_name", "test_name")
        )
        ours = line.startswith(("# stream:", "# start:", "# end:", "# command:"))
        if ours or (banner and results_seen):
            continue
        results_seen |= bool(_ROW.match(line))
        kept.append(line)
    return "\n".join(kept).strip()


def report(paths: list[Path], out: Path = REPORT) -> str:
    """Write the markdown report for the given raw logs; returns its text."""
    runs = [parse(p) for p in paths]
    lines = [
        "# Statistical quality: dieharder",
        "",
        "Generated by `make quality` (`tests/quality/run_dieharder.py`) from real runs of "
        "[dieharder](https://webhome.phy.duke.edu/~rgb/General/dieharder.php) "
        f"{_dieharder_version(runs)} reading raw words from stdin (`-g {STDIN_RAW}`). "
        "A test is PASSED for 0.005 <= p <= 0.995, WEAK outside that, FAILED for p < 1e-6 "
        "or p > 1 - 1e-6 (dieharder's own rules). A good generator gives a WEAK for 1% of "
        "p-values by chance: about one in a full battery of ~114 p-values, three or more in "
        "about one battery in ten. Every WEAK is rerun on another seed below.",
        "",
        "The statistical checks that run with `make test` on every change are "
        "`tests/test_distributions.py` (every sampler against its scipy distribution, "
        "Kolmogorov-Smirnov or chi-square, Bonferroni-corrected, fixed seeds) and "
        "`tests/test_stream_independence.py` (adjacent seeds and offsets, `(s, o+1)` against "
        "`(s+1, o)`, spawned siblings, named streams and 64-bit boundaries: Pearson "
        "correlation, 2-D "
        "chi-square, no repeated 64-bit block). This page holds the external battery.",
        "",
        "## Streams",
        "",
        "All words come from `rngstate.random.bits(gen, (2**20,), jnp.uint32)`, written "
        "little-endian; `S` is the seed of the run.",
        "",
    ]
    lines += [f"- `{name}`: {doc}" for name, doc in STREAM_DOC.items()]
    lines += [
        "",
        "`full` is `dieharder -a` on one continuous stream; `subset` runs "
        + ", ".join(f"`{n}`" for n in SUBSET)
        + " each with `-d N` on the stream from its first word.",
        "",
        "## Summary",
        "",
        "| stream | seed | battery | PASSED | WEAK | FAILED | start (UTC) | run time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        c = r["counts"]
        lines.append(
            f"| {r['stream']} | {r['seed']} | {r['battery']} | {c['PASSED']} | {c['WEAK']} | "
            f"{c['FAILED']} | {r['start']} | {_minutes(r['start'], r['end'])} |"
        )
    weak = [(r, row) for r in runs for row in r["rows"] if row["verdict"] != "PASSED"]
    if weak:
        lines += [
            "",
            "Every result that was not PASSED, and the same test rerun on the same kind of "
            "stream with another seed (`run --rerun NUMBER:NTUP --seed ...`):",
            "",
        ]
    for r, row in weak:
        again = [
            f"seed {other['seed']}: p = {o['p']}, {o['verdict']}"
            for other in runs
            if other["battery"] == "rerun" and other["stream"] == r["stream"] and other is not r
            for o in other["rows"]
            if (o["name"], o["ntup"]) == (row["name"], row["ntup"])
        ]
        lines.append(
            f"- {r['stream']} seed {r['seed']} ({r['battery']}): `{row['name']}` "
            f"ntup {row['ntup']}, p = {row['p']}, {row['verdict']}; rerun: "
            + ("; ".join(again) if again else "not rerun")
        )
    lines += ["", "## Full tables", ""]
    for r in runs:
        lines += [
            f"### {r['stream']}, seed {r['seed']}, {r['battery']}",
            "",
            f"Log `build/quality/{r['path'].name}`, started {r['start']}, "
            f"ended {r['end'] or '(not finished)'}. "
            + ("Commands:" if len(r["commands"]) > 1 else "Command:"),
            "",
            *[f"    {c}" for c in r["commands"]],
            "",
            "```",
            _table_only(r["text"]),
            "```",
            "",
        ]
    text = "\n".join(lines).rstrip() + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def _dieharder_version(runs: list[dict]) -> str:
    for r in runs:
        m = re.search(r"dieharder version (\S+)", r["text"])
        if m:
            return m.group(1)
    return ""


def _report_order(path: Path) -> tuple:
    run = parse(path)
    streams, batteries = list(STREAM_DOC), ["full", "subset", "rerun"]
    return (
        streams.index(run["stream"]) if run["stream"] in streams else len(streams),
        batteries.index(run["battery"]) if run["battery"] in batteries else len(batteries),
        run["seed"] or 0,
    )


_MODES = {
    "standard": {"single-seed": "full", "seeds-8": "subset", "offsets-8": "subset"},
    "full": dict.fromkeys(STREAM_DOC, "full"),
    "subset": dict.fromkeys(STREAM_DOC, "subset"),
}


def _rerun_args(rerun: str) -> list[list[str]]:
    """``"200:3,102:0"`` -> dieharder arguments for each (test number, ntup)."""
    specs = []
    for item in rerun.split(","):
        number, _, ntup = item.partition(":")
        specs.append(["-d", number] + (["-n", ntup] if ntup and ntup != "0" else []))
    return specs


def main(argv: list[str] | None = None) -> int:
    """Command line of the quality runner (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_stream = sub.add_parser("stream", help="write one stream's words to stdout")
    p_stream.add_argument("name", choices=list(STREAM_DOC))
    p_stream.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p_run = sub.add_parser("run", help="run dieharder, then rewrite the report")
    p_run.add_argument("--mode", choices=list(_MODES), default="standard")
    p_run.add_argument("--streams", default=",".join(STREAM_DOC))
    p_run.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p_run.add_argument(
        "--rerun",
        default=None,
        help="only these tests, as NUMBER:NTUP[,...] (e.g. to rerun a WEAK on another seed)",
    )
    sub.add_parser("report", help="rewrite docs/quality.md from build/quality/*.txt")
    args = parser.parse_args(argv)
    if args.command == "stream":
        write_stream(args.name, args.seed)
        return 0
    if args.command == "run":
        for stream in args.streams.split(","):
            if args.rerun:
                run(stream, "rerun", args.seed, _rerun_args(args.rerun))
            else:
                run(stream, _MODES[args.mode][stream], args.seed)
    report(sorted(LOGS.glob("*.txt"), key=_report_order))
    print(f"wrote {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
