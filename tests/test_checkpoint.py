"""Checkpoints: round trips, atomic saves under failure and kill, and every kind of bad file."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rngstate as rs
from rngstate import checkpoint
from rngstate.checkpoint import CheckpointError, CheckpointSettingsWarning


def rich_tree():
    return {
        "gen": rs.Generator(2**64 - 1, offset=2**63 + 5),
        "batch": rs.Generator(seed=jnp.arange(6, dtype=jnp.uint32).reshape(2, 3), offset=7),
        "params": [
            {"w": jnp.linspace(-1, 1, 12, dtype=jnp.bfloat16).reshape(3, 4), "b": jnp.zeros(4)},
            {"w": jnp.array([[1.5, -0.0]], jnp.float16), "mask": jnp.array([True, False])},
        ],
        "numpy": np.arange(5, dtype=np.uint64) * np.uint64(2**61),
        "complex": np.array([1 + 2j], np.complex64),
        "scalar": np.float64(0.1),
        "key": jax.random.key(3),
        "plain": (None, True, 2**70, -(2**40), 0.1, float("inf"), -0.0, "ünï", [], {}),
        7: {"int key": "value"},
        ("tuple", "key"): None,
    }


def assert_same(a, b):
    """Identical structure, types, dtypes and bits (-0.0 and nan included)."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, rs.Generator):
        assert a.seed.shape == b.seed.shape
        np.testing.assert_array_equal(a.seed, b.seed)
        np.testing.assert_array_equal(a.offset, b.offset)
    elif isinstance(a, (jax.Array, np.ndarray, np.generic)):
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            assert str(jax.random.key_impl(a)) == str(jax.random.key_impl(b))
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b)
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, float):
        assert math.copysign(1, a) == math.copysign(1, b) and (a == b or a != a and b != b)
    else:
        assert a == b


def test_round_trip_keeps_every_leaf_type_and_bit(tmp_path):
    path = tmp_path / "run.ckpt"
    tree = rich_tree()
    rs.save(path, tree)
    assert_same(rs.load(path), tree)
    assert_same(rs.load(str(path)), tree)


def test_same_tree_gives_same_bytes(tmp_path):
    rs.save(tmp_path / "a", rich_tree())
    rs.save(tmp_path / "b", rich_tree())
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_file_is_a_standard_npz_without_pickles(tmp_path):
    path = tmp_path / "run.ckpt"
    rs.save(path, {"w": jnp.arange(3.0), "gen": rs.Generator(5, 6)})
    with np.load(path, allow_pickle=False) as npz:
        arrays = [npz[name] for name in npz.files if name.startswith("arrays/")]
        meta = json.loads(zipfile.ZipFile(path).read("rngstate.json"))
    assert any(np.array_equal(a, [0.0, 1.0, 2.0]) for a in arrays)
    assert meta["version"] == checkpoint.FORMAT_VERSION
    assert meta["settings"] == {
        "jax_default_prng_impl": str(jax.config.jax_default_prng_impl),
        "jax_threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
    }
    assert meta["written_by"]["jax"] == jax.__version__
    assert meta["written_by"]["rngstate"] == rs.__version__


def test_restored_generators_draw_what_the_originals_would(tmp_path):
    gen = rs.Generator(2**40 + 5)
    _, gen = gen.normal((3,))
    rs.save(tmp_path / "g", {"gen": gen})
    restored = rs.load(tmp_path / "g")["gen"]
    for op in ("normal", "uniform", "bits"):
        expected, gen = getattr(gen, op)((5,))
        got, restored = getattr(restored, op)((5,))
        np.testing.assert_array_equal(got, expected)


def test_generators_round_trip_under_jit_after_load(tmp_path):
    rs.save(tmp_path / "g", rs.Generator(9, 4))
    step = jax.jit(lambda g: g.uniform((2,)))
    np.testing.assert_array_equal(step(rs.load(tmp_path / "g"))[0], step(rs.Generator(9, 4))[0])


@pytest.mark.parametrize(
    "tree,where",
    [
        ({"a": [1, object()]}, r"\['a'\]\[1\]"),
        ({"a": {1, 2}}, r"\['a'\]"),
        ({"o": np.array([object()])}, r"\['o'\]"),
        ({"k": {np.int32(1): 2}}, r"\['k'\]"),
        ({"n": 10**5000}, r"\['n'\]"),
        (b"bytes", "the root"),
    ],
)
def test_unsupported_leaves_are_named_and_nothing_is_written(tmp_path, tree, where):
    with pytest.raises(TypeError, match=f"cannot store .* at {where}"):
        rs.save(tmp_path / "x", tree)
    assert list(tmp_path.iterdir()) == []


def test_traced_values_are_refused(tmp_path):
    def save_inside(x):
        rs.save(tmp_path / "x", {"x": x})
        return x

    with pytest.raises(TypeError, match=r"concrete values.*\['x'\]"):
        jax.jit(save_inside)(jnp.ones(2))


# -- atomic saves ----------------------------------------------------------------------------


def test_failure_mid_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    old = {"gen": rs.Generator(1), "w": jnp.ones(3)}
    rs.save(path, old)
    before = path.read_bytes()
    real_write = np.lib.format.write_array
    calls = []

    def write_half_then_fail(file, array, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # the three arrays are hashed first, then written: the 2nd write
            file.write(b"\0" * 100)
            raise OSError(28, "No space left on device")
        return real_write(file, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_half_then_fail)
    with pytest.raises(OSError, match="No space left") as info:
        rs.save(path, {"gen": rs.Generator(2), "w": jnp.zeros(1000)})
    assert len(calls) == 5 and info.value.errno == 28
    assert info.value.filename == str(path)  # the target, not the temporary
    assert path.read_bytes() == before
    assert_same(rs.load(path), old)
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]  # the temporary is removed


def test_data_and_rename_reach_the_disk_in_order(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(
            ("fsync", os.path.isdir(f"/proc/self/fd/{fd}") if os.path.exists("/proc") else None)
        )
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.dirname(src) == os.path.dirname(os.fspath(dst))))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    rs.save(tmp_path / "run.ckpt", {"gen": rs.Generator(3)})
    names = [e[0] for e in events]
    assert names == ["fsync", "replace", "fsync"]  # file data, then rename, then directory
    assert events[1][1]  # the temporary lives in the target's directory
    if events[0][1] is not None:
        assert events[0][1] is False and events[2][1] is True


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import jax.numpy as jnp
    import rngstate as rs

    real_write = np.lib.format.write_array
    calls = []
    def write_some_then_hang(file, array, **kwargs):
        calls.append(1)
        if len(calls) <= 3:  # save hashes the three arrays before it touches the disk
            return real_write(file, array, **kwargs)
        file.write(b"partial array data " * 1000)
        file.flush()
        print("writing", flush=True)
        time.sleep(600)  # killed here, mid-write

    np.lib.format.write_array = write_some_then_hang
    rs.save(sys.argv[1], {"gen": rs.Generator(2), "w": jnp.zeros(100000)})
    """
)


def test_killed_writer_leaves_the_old_file(tmp_path):
    path = tmp_path / "run.ckpt"
    old = {"gen": rs.Generator(1, offset=41), "w": jnp.arange(4.0)}
    rs.save(path, old)
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline() == "writing\n"
        temporaries = [p for p in tmp_path.iterdir() if p.name != "run.ckpt"]
        assert len(temporaries) == 1 and temporaries[0].stat().st_size > 0
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    assert_same(rs.load(path), old)


# -- bad files ---------------------------------------------------------------------------


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.ckpt"
    rs.save(path, {"gen": rs.Generator(5, 6), "w": jnp.arange(64.0), "note": "hello"})
    return path


def _expect_error(path, *fragments):
    with pytest.raises(CheckpointError) as info:
        rs.load(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, -1])
def test_truncated_file(tmp_path, good_file, keep):
    data = good_file.read_bytes()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(data[: int(len(data) * keep)] if keep > 0 else data[:keep])
    _expect_error(cut, "truncated")


def test_empty_file(tmp_path):
    (tmp_path / "empty.ckpt").write_bytes(b"")
    _expect_error(tmp_path / "empty.ckpt", "empty")


def test_text_file_is_foreign(tmp_path):
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    _expect_error(tmp_path / "notes.txt", "not an rngstate checkpoint", "not a zip")


def test_plain_npz_is_foreign(tmp_path):
    np.savez(tmp_path / "plain.npz", w=np.arange(3))
    _expect_error(tmp_path / "plain.npz", "not an rngstate checkpoint", "rngstate.json")


def _rewrite_meta(source, target, change):
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == "rngstate.json":
                meta = json.loads(data)
                change(meta)
                data = json.dumps(meta).encode()
            new.writestr(info, data)


def test_newer_format_is_refused(tmp_path, good_file):
    newer = tmp_path / "newer.ckpt"
    _rewrite_meta(good_file, newer, lambda m: m.update(version=checkpoint.FORMAT_VERSION + 1))
    _expect_error(newer, f"version {checkpoint.FORMAT_VERSION + 1}", "newer", "upgrade")


def test_foreign_json_member_is_refused(tmp_path, good_file):
    other = tmp_path / "other.ckpt"
    _rewrite_meta(good_file, other, lambda m: m.update(format="something else"))
    _expect_error(other, "not an rngstate checkpoint")


def test_flipped_bytes_in_the_data_are_reported_as_corrupt(tmp_path, good_file):
    data = bytearray(good_file.read_bytes())
    with zipfile.ZipFile(good_file) as archive:
        info = archive.getinfo("arrays/1.npy")  # the 64 floats of "w"
    start = info.header_offset + 30 + len(info.filename) + 128  # past the headers, in the data
    data[start] ^= 0xFF
    bad = tmp_path / "flipped.ckpt"
    bad.write_bytes(bytes(data))
    _expect_error(bad, "corrupt")


def test_flipped_metadata_is_reported_as_corrupt(tmp_path, good_file):
    data = bytearray(good_file.read_bytes())
    data[data.index(b'"version"') + 3] ^= 0x01
    bad = tmp_path / "flipped.ckpt"
    bad.write_bytes(bytes(data))
    _expect_error(bad, "corrupt")


def test_any_flipped_byte_is_detected_or_harmless(tmp_path, good_file):
    """Every 3rd byte flipped in turn: load raises CheckpointError or returns the saved tree."""
    data = good_file.read_bytes()
    original = rs.load(good_file)
    bad = tmp_path / "bad.ckpt"
    detected = 0
    for position in range(0, len(data), 3):
        flipped = bytearray(data)
        flipped[position] ^= 0x5A
        bad.write_bytes(bytes(flipped))
        try:
            loaded = rs.load(bad)
        except CheckpointError:
            detected += 1
            continue
        assert_same(loaded, original)  # only bytes nothing reads (timestamps, padding)
    assert detected > len(data) // 3 * 0.8


# -- settings --------------------------------------------------------------------------


def test_warns_when_saved_under_other_prng_settings(tmp_path):
    path = tmp_path / "other.ckpt"
    running = bool(jax.config.jax_threefry_partitionable)
    with jax.threefry_partitionable(not running):
        rs.save(path, {"gen": rs.Generator(1)})
    with pytest.warns(CheckpointSettingsWarning, match="jax_threefry_partitionable") as record:
        tree = rs.load(path)
    assert str(path) in str(record[0].message)
    assert tree["gen"] == rs.Generator(1)  # the state itself is still restored


def test_no_warning_under_the_same_settings(tmp_path, recwarn):
    rs.save(tmp_path / "same.ckpt", {"gen": rs.Generator(1)})
    rs.load(tmp_path / "same.ckpt")
    assert not [w for w in recwarn if issubclass(w.category, CheckpointSettingsWarning)]


# -- resuming in another process -------------------------------------------------------

_DRAWS = textwrap.dedent(
    """
    import jax.numpy as jnp
    import rngstate as rs

    def draws(state, steps):
        gen, step, out = state["gen"], state["step"], []
        for _ in range(steps):
            x, gen = gen.normal((4,))
            p, gen = gen.permutation(9)
            d, gen = rs.random.dropout(gen, jnp.ones(6), 0.5)
            s, _ = gen.stream(f"layer{step}").uniform((2,))
            out += [x, p, d, s]
            step += 1
        return {"gen": gen, "step": step, "values": out}
    """
)


def test_a_second_process_resumes_bit_for_bit(tmp_path):
    namespace = {}
    exec(_DRAWS, namespace)
    draws = namespace["draws"]
    start = {"gen": rs.Generator(2**40 + 123, offset=2**33), "step": 0}
    uninterrupted = draws(start, 6)
    first_half = draws(start, 3)
    rs.save(tmp_path / "mid.ckpt", {"gen": first_half["gen"], "step": first_half["step"]})
    child = _DRAWS + textwrap.dedent(
        """
        import sys
        state = rs.load(sys.argv[1])
        rs.save(sys.argv[2], draws(state, 3))
        """
    )
    subprocess.run(
        [sys.executable, "-c", child, str(tmp_path / "mid.ckpt"), str(tmp_path / "end.ckpt")],
        check=True,
    )
    second_half = rs.load(tmp_path / "end.ckpt")
    resumed = first_half["values"] + second_half["values"]
    assert len(resumed) == len(uninterrupted["values"])
    for got, expected in zip(resumed, uninterrupted["values"], strict=True):
        assert np.asarray(got).tobytes() == np.asarray(expected).tobytes()
    assert second_half["gen"] == uninterrupted["gen"]


def test_a_captured_snapshot_survives_a_checkpoint(tmp_path):
    import random

    rs.set_seed(123)
    rs.ops.normal((2,))
    rs.ops.uniform((2,), seed=7)
    np.random.rand()
    random.random()
    checkpoint.save(tmp_path / "snapshot.ckpt", rs.capture())

    def draw():
        return [
            rs.ops.normal((3,)),
            rs.ops.uniform((2,), seed=7),
            np.random.rand(2),
            random.random(),
        ]

    expected = draw()
    rs.restore(checkpoint.load(tmp_path / "snapshot.ckpt"))
    for got, want in zip(draw(), expected, strict=True):
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes()


@pytest.mark.parametrize("dtype", ["float64", "int64", "uint64", "complex128"])
def test_a_64_bit_jax_array_is_refused_where_x64_is_off_not_narrowed(tmp_path, dtype):
    path = tmp_path / "x64.ckpt"
    with jax.enable_x64(True):
        saved = jnp.asarray(np.array([1 + 2**-40, 3], dtype))  # needs all 64 bits
        rs.save(path, {"w": saved})
        assert rs.load(path)["w"].dtype == dtype
        assert np.asarray(rs.load(path)["w"]).tobytes() == np.asarray(saved).tobytes()
    with jax.enable_x64(False):
        with pytest.raises(CheckpointError, match=rf"\['w'\] .* {dtype} values.*x64 is off"):
            rs.load(path)
        target = {"w": jax.ShapeDtypeStruct((2,), np.dtype(dtype))}
        with pytest.raises(CheckpointError, match=rf"\['w'\] .* {dtype} values"):
            rs.load(path, target)
        # Described as stored, whatever this process's x64 setting.
        (entry,) = checkpoint.summary(path)["entries"]
        assert entry == {"path": "['w']", "kind": "array", "dtype": dtype, "shape": [2]}


def test_a_64_bit_numpy_leaf_into_a_jax_target_is_refused_where_x64_is_off(tmp_path):
    path = tmp_path / "np64.ckpt"
    rs.save(path, {"w": np.array([1 + 2**-40], np.float64)})
    assert rs.load(path)["w"].dtype == np.float64  # NumPy keeps it, x64 or not
    with jax.enable_x64(False):
        target = {"w": jax.ShapeDtypeStruct((1,), np.float64)}
        with pytest.raises(CheckpointError, match="float64 values.*as float32"):
            rs.load(path, target)
