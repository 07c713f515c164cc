"""The fast path's first-use verdicts remembered on disk: reused, keyed, atomic, never trusted
when unreadable, and never written outside the folder a test gives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading

import jax
import pytest
from conftest import reference_key
from fast_cases import bit_mismatch

import rngstate as rs
from rngstate import _checkcache, fast, selfcheck

TESTS = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache folder of the test's own, a fresh status table, and the checks counted."""
    monkeypatch.setenv(_checkcache.ENV, str(tmp_path))
    monkeypatch.setattr(fast, "_status", {})
    checked = []
    real = fast._check

    def counting(op, dtype, reference=None):
        checked.append((op, dtype))
        return real(op, dtype, reference)

    monkeypatch.setattr(fast, "_check", counting)
    return tmp_path / "fast-path-checks", checked


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_passed_check_is_remembered_and_not_run_again(cache, monkeypatch):
    folder, checked = cache
    assert fast._verified("laplace", "float32")
    assert checked == [("laplace", "float32")]
    [name] = _files(folder)
    stored = json.loads((folder / name).read_text())
    assert stored["verdict"] == "verified"
    assert stored["key"]["jax"] == jax.__version__ and stored["key"]["op"] == "laplace"
    monkeypatch.setattr(fast, "_status", {})  # as a new process starts
    assert fast._verified("laplace", "float32")
    assert checked == [("laplace", "float32")]  # remembered: not checked again
    assert fast.status()["laplace[float32]"] == "verified"


def test_a_failed_check_is_not_remembered(cache):
    folder, checked = cache

    def odd(key, shape, dtype):  # a reference one value off: the check fails
        values = jax.random.exponential(key, shape, dtype)
        return values.at[(0,) * len(shape)].add(1)

    with pytest.warns(RuntimeWarning, match="does not match"):
        assert fast._check("exponential", "float32", reference=odd) == "fallback"
    assert not _checkcache.recall("fast", "exponential", "float32")
    assert _files(folder) == []


def test_a_corrupt_or_foreign_file_is_ignored_and_the_check_runs(cache, monkeypatch):
    folder, checked = cache
    assert fast._verified("gumbel", "float32")
    [name] = _files(folder)
    for text in ("{not json", json.dumps({"key": {"jax": "0.0.1"}, "verdict": "verified"}), ""):
        (folder / name).write_text(text)
        monkeypatch.setattr(fast, "_status", {})
        assert fast._verified("gumbel", "float32")
    assert len(checked) == 4  # each damaged file: checked again, and written whole again
    assert json.loads((folder / name).read_text())["key"]["op"] == "gumbel"


def test_the_key_holds_what_the_values_depend_on(cache, monkeypatch):
    _checkcache.remember("fast", "normal", "float32")
    assert _checkcache.recall("fast", "normal", "float32")
    assert not _checkcache.recall("fast", "normal", "bfloat16")
    assert not _checkcache.recall("wide", "normal", "float32")
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=true")
    assert not _checkcache.recall("fast", "normal", "float32")
    monkeypatch.delenv("XLA_FLAGS")
    monkeypatch.setattr(
        _checkcache, "_process_fingerprint", lambda: (("jax", "0.0.1"), ("backend", "cpu"))
    )
    assert not _checkcache.recall("fast", "normal", "float32")  # another JAX


def test_off_or_unwritable_means_no_cache_and_still_jax_randoms_values(cache, monkeypatch):
    folder, checked = cache
    monkeypatch.setenv(_checkcache.ENV, "off")
    assert _checkcache.directory() is None
    assert fast._verified("normal", "float32") and checked == [("normal", "float32")]
    assert not folder.exists()
    blocker = folder.parent / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(_checkcache.ENV, str(blocker))  # its fast-path-checks/ cannot be made
    _checkcache.remember("fast", "normal", "float32")  # silently skipped
    assert not _checkcache.recall("fast", "normal", "float32")
    gen = rs.Generator(seed=5, offset=7)
    values, _ = gen.normal((9, 8))
    assert bit_mismatch(values, jax.random.normal(reference_key(5, 7), (9, 8))) is None


def test_concurrent_writers_leave_one_whole_file(cache):
    folder, _ = cache
    errors = []

    def writer():
        try:
            for _ in range(50):
                _checkcache.remember("fast", "bits", "uint8")
                # a reader racing the writers sees the whole verdict or none, never half
                assert _checkcache.recall("fast", "bits", "uint8")
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(_files(folder)) == 1  # no temporary file left behind


def test_doctor_shows_where_the_cache_is_and_what_it_holds(cache):
    folder, _ = cache
    _checkcache.remember("fast", "uniform", "float32")
    _checkcache.remember("wide", "uniform", "float32")
    lines = selfcheck.check_cache_lines()
    assert str(folder) in lines[0] and "2 verdicts, 2 for this JAX" in lines[0]
    assert lines[1].split(":", 1)[1].split() == ["uniform[float32]", "uniform[float32]", "wide"]


def test_a_new_process_with_a_warm_cache_draws_without_checking(tmp_path):
    code = """
        import jax, rngstate as rs
        from rngstate import fast
        calls = []
        real = fast._check
        fast._check = lambda *a, **k: calls.append(a) or real(*a, **k)
        values, _ = rs.Generator(seed=11).exponential((70,))
        same = bool((values == jax.random.exponential(rs.Generator(seed=11).key(), (70,))).all())
        print(len(calls), fast.status()["exponential[float32]"], same)
    """
    env = {**os.environ, "PYTHONPATH": TESTS, _checkcache.ENV: str(tmp_path)}

    def run():
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.split()

    assert run() == ["1", "verified", "True"]  # cold: checked, and remembered
    assert run() == ["0", "verified", "True"]  # warm: the verdict is read, nothing compiled
