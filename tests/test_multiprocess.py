"""Contract §7 across processes: two JAX processes (jax.distributed on 127.0.0.1, gloo).

The harness is bounded: each run has a deadline, and when one process fails the other is
killed at once instead of waiting in a collective for a peer that is gone.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import rngstate as rs

WORKER = pathlib.Path(__file__).with_name("two_process_worker.py")
DEADLINE_SECONDS = 120  # a normal run takes ~10-20 s; the deadline only bounds a broken one
SEED, OFFSET, SHAPE = 2**40 + 5, 7, (16, 8)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_two_processes(tmp_path: pathlib.Path, extra: dict[int, list[str]] | None = None):
    """Start processes 0 and 1; return ``(returncodes, stdouts, stderrs, seconds)``."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one device each
    env["JAX_PLATFORMS"] = "cpu"
    port = _free_port()
    procs, files = [], []
    for process_id in (0, 1):
        out = open(tmp_path / f"out{process_id}", "w+")  # files, not pipes: nothing can block
        err = open(tmp_path / f"err{process_id}", "w+")
        files.append((out, err))
        argv = [sys.executable, str(WORKER), str(process_id), str(port)]
        argv += (extra or {}).get(process_id, [])
        procs.append(subprocess.Popen(argv, stdout=out, stderr=err, env=env))
    start = time.monotonic()
    try:
        while True:
            codes = [p.poll() for p in procs]  # poll every process, every time
            if None not in codes or any(code not in (None, 0) for code in codes):
                break
            if time.monotonic() - start > DEADLINE_SECONDS:
                break
            time.sleep(0.1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    seconds = time.monotonic() - start
    outputs = []
    for out, err in files:
        out.seek(0)
        err.seek(0)
        outputs.append((out.read(), err.read()))
        out.close()
        err.close()
    return [p.returncode for p in procs], [o for o, _ in outputs], [e for _, e in outputs], seconds


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    codes, outs, errs, seconds = run_two_processes(tmp_path_factory.mktemp("two_processes"))
    for process_id, (code, err) in enumerate(zip(codes, errs, strict=True)):
        assert code == 0, (
            f"process {process_id} exited with {code} after {seconds:.0f} s "
            f"(deadline {DEADLINE_SECONDS} s):\n{err[-3000:]}"
        )
    return [json.loads(out.splitlines()[-1]) for out in outs]


def _bytes(values) -> str:
    return np.ascontiguousarray(np.asarray(values)).tobytes().hex()


def test_two_processes_form_one_runtime(reports):
    assert [r["process_index"] for r in reports] == [0, 1]
    for r in reports:
        assert (r["process_count"], r["device_count"], r["local_device_count"]) == (2, 2, 1)


@pytest.mark.parametrize("name,args", [("normal", (SHAPE,)), ("gamma", (0.7, SHAPE))])
def test_global_array_across_processes_equals_the_single_process_draw(reports, name, args):
    gen = rs.Generator(seed=SEED, offset=OFFSET)
    # Jitted here too: under jit, Python scalars are constants of the program.
    expected, next_gen = jax.jit(lambda g: getattr(rs.random, name)(g, *args))(gen)
    expected = np.asarray(expected)
    rows_seen = []
    for r in reports:
        sharded = r["sharded"][name]
        assert sharded["global_shape"] == list(SHAPE)
        assert sharded["gathered_hex"] == _bytes(expected), f"process {r['process_index']}"
        assert sharded["next_gen"] == repr(next_gen)
        for block in sharded["local_blocks"]:
            start, stop = block["rows"]
            assert block["hex"] == _bytes(expected[start:stop])
            rows_seen.append((start, stop))
    assert sorted(rows_seen) == [(0, 8), (8, 16)], "each process holds its own half"


def test_process_generator_gives_each_process_its_own_stream(reports):
    gen = rs.Generator(seed=SEED, offset=OFFSET)
    children, next_gen = gen.spawn(2)  # the reference: child i belongs to process i
    for r in reports:
        mine = r["process_generator"]
        i = r["process_index"]
        assert mine["seed_words"] == np.asarray(children.seed[i]).tolist()
        assert mine["offset_words"] == [0, 0]
        assert mine["next_gen"] == repr(next_gen)  # the shared stream stays in step
        child = rs.Generator.from_words(children.seed[i], children.offset[i])
        assert mine["normal_hex"] == _bytes(jax.random.normal(child.key(), (4,)))
    assert (
        reports[0]["process_generator"]["seed_words"]
        != reports[1]["process_generator"]["seed_words"]
    )
    assert (
        reports[0]["process_generator"]["normal_hex"]
        != reports[1]["process_generator"]["normal_hex"]
    )


def test_set_random_seed_shares_one_seed_or_adds_the_rank(reports):
    seeded = [r["set_random_seed"] for r in reports]
    shared = seeded[0]["none"]
    assert 0 <= shared < 2**64
    assert [s["none"] for s in seeded] == [shared, shared], "one seed for the whole run"
    assert [s["get_seed"] for s in seeded] == [shared, shared]
    # Both default generators start at (shared, 0): the same draw in both processes.
    expected = jax.random.normal(rs.Generator(seed=shared).key(), (4,))
    assert [s["default_generator_normal_hex"] for s in seeded] == [_bytes(expected)] * 2
    # diff_rank_seed: the seed plus the process index (a fresh shared draw for seed=None).
    assert [s["given_diff_rank"] for s in seeded] == [1000, 1001]
    first, second = (s["none_diff_rank"] for s in seeded)
    assert (second - first) % 2**64 == 1


def test_a_dead_peer_ends_the_run_quickly(tmp_path):
    codes, _, errs, seconds = run_two_processes(tmp_path, extra={1: ["--die-after-init"]})
    assert codes[1] == 3, errs[1][-3000:]
    # The harness stopped the survivor as soon as its peer died: it did not wait for JAX's
    # heartbeat timeout (30 s), after which the survivor would abort by itself.
    assert codes[0] == -signal.SIGKILL, f"survivor ended with {codes[0]} after {seconds:.0f} s"
