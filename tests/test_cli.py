"""The `rngstate` command: bits, inspect, doctor, demo, help and argument errors."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rngstate as rs
from rngstate import checkpoint, cli, demo, selfcheck

BLOCK = 2**20


def library_words(seed: int, offset: int, count: int) -> np.ndarray:
    """What `bits` promises: bits(Generator(seed, offset + i), (2**20,), uint32), i = 0, 1, ..."""
    blocks, i = [], 0
    while sum(b.size for b in blocks) < count:
        words, _ = rs.random.bits(rs.Generator(seed, offset + i), (BLOCK,), jnp.uint32)
        blocks.append(np.asarray(words))
        i += 1
    return np.concatenate(blocks)[:count] if blocks else np.zeros(0, np.uint32)


def run_main(argv, capsysbinary):
    status = cli.main(argv)
    out, err = capsysbinary.readouterr()
    return status, out, err


# -- bits ------------------------------------------------------------------------------


def test_bits_equals_the_library_for_two_blocks_and_ten_words(capsysbinary):
    count = BLOCK + 10
    status, out, err = run_main(["bits", "--seed", "5", "--count", str(count)], capsysbinary)
    assert status == 0 and err == b""
    words = np.frombuffer(out, dtype="<u4")
    np.testing.assert_array_equal(words, library_words(5, 0, count))


def test_bits_offset_and_short_counts(capsysbinary):
    seed, offset = 2**64 - 1, 2**64 - 1  # the offset wraps for the second block
    for count in (0, 1, 7):
        argv = ["bits", "--seed", str(seed), "--offset", hex(offset), "--count", str(count)]
        status, out, _ = run_main(argv, capsysbinary)
        assert status == 0
        np.testing.assert_array_equal(
            np.frombuffer(out, dtype="<u4"), library_words(seed, offset, count)
        )


def test_endless_bits_stop_quietly_when_the_reader_closes_the_pipe():
    count = BLOCK + 10
    writer = subprocess.Popen(
        [sys.executable, "-m", "rngstate", "bits", "--seed", "77"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    data = writer.stdout.read(4 * count)
    writer.stdout.close()  # like `| head -c`: the reader goes away mid-stream
    status = writer.wait(timeout=120)
    err = writer.stderr.read()
    writer.stderr.close()
    assert status == 0 and err == b""
    np.testing.assert_array_equal(np.frombuffer(data, "<u4"), library_words(77, 0, count))


# -- help and argument errors ----------------------------------------------------------


def test_console_script_is_installed():
    script = pathlib.Path(sys.executable).parent / "rngstate"
    result = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    for command in ("demo", "doctor", "inspect", "bits"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["demo", "doctor", "inspect", "bits"])
def test_each_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: rngstate {command}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,fragment",
    [
        ([], "required: COMMAND"),
        (["frobnicate"], "invalid choice"),
        (["bits"], "--seed"),
        (["bits", "--seed", "-1"], "must be in [0, 18446744073709551616)"),
        (["bits", "--seed", "abc"], "not an integer"),
        (["bits", "--seed", str(2**64)], "must be in"),
        (["bits", "--seed", "1", "--count", "1.5"], "not an integer"),
        (["inspect"], "file"),
        (["demo", "--fast", "--bogus"], "unrecognized arguments: --bogus"),
        (["demo", "--seed", "x"], "not an integer"),
    ],
)
def test_bad_arguments_give_one_line_and_status_2(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("rngstate")
    assert "error:" in captured.err and fragment in captured.err


# -- inspect ---------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "run.ckpt"
    rs.save(
        path,
        {
            "gens": {"dropout": rs.Generator(2**63 + 1, offset=42), "data": rs.Generator(7)},
            "kids": rs.Generator(seed=jnp.arange(3, dtype=jnp.uint32), offset=5),
            "w": jnp.ones((3, 2), jnp.bfloat16),
            "epoch": 4,
        },
    )
    return path


def test_inspect_text(saved, capsys):
    assert cli.main(["inspect", str(saved)]) == 0
    out = capsys.readouterr().out
    assert f"seed {2**63 + 1}  offset 42" in out
    assert "['gens']['data']" in out and "seed 7  offset 0" in out
    assert "batch (3,)" in out and "(0, 5), (1, 5), (2, 5)" in out
    assert "bfloat16[3, 2]" in out and "['epoch']" in out
    assert f"jax_threefry_partitionable = {bool(jax.config.jax_threefry_partitionable)}" in out
    assert f"jax {jax.__version__}" in out


def test_inspect_json(saved, capsys):
    assert cli.main(["inspect", "--json", str(saved)]) == 0
    info = json.loads(capsys.readouterr().out)
    entries = {e["path"]: e for e in info["entries"]}
    assert entries["['gens']['dropout']"] == {
        "path": "['gens']['dropout']",
        "kind": "generator",
        "seed": 2**63 + 1,
        "offset": 42,
    }
    assert entries["['kids']"]["seed"] == [0, 1, 2] and entries["['kids']"]["offset"] == [5] * 3
    assert entries["['w']"] == {
        "path": "['w']",
        "kind": "array",
        "dtype": "bfloat16",
        "shape": [3, 2],
    }
    assert entries["['epoch']"]["value"] == 4
    assert info["settings"]["jax_threefry_partitionable"] == bool(
        jax.config.jax_threefry_partitionable
    )
    assert info["settings_differ"] == [] and info["format_version"] == checkpoint.FORMAT_VERSION


@pytest.mark.parametrize("content", [None, b"", b"hello", b"PK\x03\x04rest-of-a-cut-zip"])
def test_inspect_bad_file_is_one_line_and_status_2(tmp_path, content, capsys):
    path = tmp_path / "bad.ckpt"
    if content is not None:
        path.write_bytes(content)
    assert cli.main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rngstate inspect: error: ")
    assert str(path) in err


# -- doctor ----------------------------------------------------------------------------


def test_doctor_reports_the_environment_and_passes(capsys):
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    for row in ("jax ", "jaxlib", "backend", "devices", "jax_enable_x64", "XLA_FLAGS"):
        assert row in out
    assert f"jax_default_prng_impl         {jax.config.jax_default_prng_impl}" in out
    for name in selfcheck.CHECKS:
        assert f"PASS  {name}" in out
    assert "FAIL" not in out


def test_doctor_fails_with_status_1(monkeypatch, capsys):
    def broken() -> str:
        raise AssertionError("pinned value 3 != 4")

    monkeypatch.setitem(selfcheck.CHECKS, "a broken check", broken)
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  a broken check" in out and "pinned value 3 != 4" in out
    assert "FAILED: a broken check" in out


def test_known_answers_are_package_data():
    # One copy, rngstate/threefry2x32_20.txt: the doctor check and test_derivation read it.
    rows = selfcheck.known_answers()
    assert rows == selfcheck.THREEFRY_KNOWN_ANSWERS and len(rows) >= 8
    assert all(len(row) == 6 and all(0 <= w < 2**32 for w in row) for row in rows)
    assert rows[0] == (0, 0, 0, 0, 0x6B200159, 0x99BA4EFE)  # Random123's kat_vectors, zeros
    [result] = selfcheck.run_checks(["threefry2x32-20 known answers"])
    assert result.passed and result.detail == f"{len(rows)} Random123 vectors"


def test_pinned_draws_hold_under_both_partitionable_settings():
    for setting in (True, False):
        with jax.threefry_partitionable(setting):
            [result] = selfcheck.run_checks(["pinned draws"])
        assert result.passed and f"partitionable={setting}" in result.detail


def test_a_check_that_raises_any_error_is_a_fail():
    selfcheck.register("raises ZeroDivisionError")(lambda: str(1 / 0))
    try:
        [result] = selfcheck.run_checks(["raises ZeroDivisionError"])
        assert not result.passed and "division by zero" in result.detail
        with pytest.raises(ValueError, match="already registered"):
            selfcheck.register("raises ZeroDivisionError")(lambda: "")
    finally:
        del selfcheck.CHECKS["raises ZeroDivisionError"]


@pytest.mark.parametrize(
    "flags,state",
    [
        ("", "off"),
        ("--xla_gpu_deterministic_ops", "on"),
        ("--xla_gpu_deterministic_ops=true --foo=1", "on"),
        ("--xla_gpu_deterministic_ops=false", "off"),
        ("--xla_gpu_deterministic_ops=true --xla_gpu_deterministic_ops=false", "off"),
    ],
)
def test_determinism_flag_reading(flags, state, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", flags)
    row = dict(selfcheck.environment())["XLA deterministic ops"]
    assert row.startswith(f"xla_gpu_deterministic_ops={state},")


# -- demo ------------------------------------------------------------------------------


def test_demo_fast_resumes_bit_for_bit(tmp_path, capfd):
    assert cli.main(["demo", "--fast", "--workdir", str(tmp_path)]) == 0
    out = capfd.readouterr().out
    config = demo.FAST
    assert f"epoch {config.epochs}/{config.epochs}" in out and "(resumed)" in out
    assert "identical bit for bit" in out
    assert "verdict      REPRODUCIBLE" in out
    # the checkpoint the fresh process resumed from, and what it produced
    midway = rs.load(tmp_path / "midway.ckpt")
    resumed = rs.load(tmp_path / "resumed.ckpt")
    assert midway["epoch"] == config.epochs // 2 and resumed["epoch"] == config.epochs
    assert resumed["state"]["dropout_gen"] != midway["state"]["dropout_gen"]
    # the report's final loss is the resumed process's, printed exactly
    assert repr(float(resumed["epoch_losses"][-1])) in out


def test_demo_reports_a_mismatch_and_fails(capsys):
    config = demo.FAST
    state = {"epoch_losses": [jnp.float32(1.0)], "state": {"params": demo.init_params(config)}}
    assert demo._report(config, state, [0.1], ["['state']['params'][0]['w']"]) == 1
    out = capsys.readouterr().out
    assert "DIFFERS" in out and "NOT REPRODUCIBLE" in out and "['state']['params'][0]['w']" in out


def test_differences_finds_one_flipped_bit():
    a = {"w": jnp.arange(4.0), "gen": rs.Generator(1)}
    flipped = np.asarray(a["w"]).copy().view(np.uint32)
    flipped[2] ^= 1
    b = {"w": jnp.asarray(flipped.view(np.float32)), "gen": rs.Generator(1)}
    assert demo.differences(a, b) == ["['w']"]
    assert demo.differences(a, {"w": a["w"], "gen": rs.Generator(1, 1)}) == ["['gen'].offset"]
    assert demo.differences(a, a) == []


def test_inspect_lists_a_generator_held_in_nnx_state_as_a_generator(tmp_path, capsys):
    nnx = pytest.importorskip("flax.nnx")

    class Noisy(nnx.Module):
        def __init__(self, gen):
            self.bias = nnx.Param(jnp.zeros(3))
            self.gen = nnx.data(gen)

    path = tmp_path / "model.ckpt"
    state = nnx.state(Noisy(rs.Generator(2**40 + 3, offset=9)))
    # nnx.state flattens the Generator into its two uint32[2] leaves by name
    assert set(state["gen"]) == {"seed", "offset"}
    rs.save(path, state)
    assert cli.main(["inspect", "--json", str(path)]) == 0
    entries = {e["path"]: e for e in json.loads(capsys.readouterr().out)["entries"]}
    assert entries["['gen']"] == {
        "path": "['gen']",
        "kind": "generator",
        "seed": 2**40 + 3,
        "offset": 9,
    }
    assert entries["['bias'].value"]["kind"] == "array"


def test_inspect_into_a_pipe_closed_early_stops_quietly(tmp_path):
    path = tmp_path / "many.ckpt"
    rs.save(path, {f"w{i:05d}": np.zeros(1, np.float32) for i in range(5000)})
    command = f"{sys.executable} -m rngstate inspect {path} | head -n 2"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.count("\n") == 2 and done.stdout.startswith("checkpoint  ")
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
