"""Hand-edited checkpoints whose zip checksums stay valid: each is refused, never misread.

Every edit here rewrites the archive with :mod:`zipfile`, so each member's CRC-32 matches its
edited bytes: only the schema and the content hashes stand between the edit and the data.
Each attack is tried twice: as a plain edit, and by a forger who also recomputes the hash of
``rngstate.json`` (so the schema check itself is what refuses it).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import typing
import warnings
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_checkpoint import assert_same

import rngstate as rs
from rngstate import checkpoint, cli
from rngstate.checkpoint import CheckpointError

META = "rngstate.json"


def meta_hash(meta):
    """The documented rule: BLAKE2b-256 of the sorted, compact JSON without the hash field."""
    body = {k: v for k, v in meta.items() if k != "blake2b"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=32).hexdigest()


def the_tree():
    return {
        "gen": rs.Generator(5, offset=6),
        "state": jnp.array([1, 2, 3, 0x3F800000], jnp.uint32),
        "x": jnp.array(2.5),
        "m": jnp.arange(4.0).reshape(2, 2),
        "steps": [1, 2, 3],
        "note": "hello",
    }


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.ckpt"
    rs.save(path, the_tree())
    return path


def edit(source, target, change=None, rehash=False, rename=None, duplicate=None):
    """Copy ``source`` to ``target``, changing its metadata and members; CRCs stay valid."""
    with zipfile.ZipFile(source) as old:
        members = [(info.filename, old.read(info)) for info in old.infolist()]
    if change is not None:
        meta = json.loads(dict(members)[META])
        change(meta)
        if rehash:
            meta["blake2b"] = meta_hash(meta)
        members = [(n, json.dumps(meta).encode() if n == META else d) for n, d in members]
    if rename is not None:
        members = [(rename.get(n, n), d) for n, d in members]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of a duplicate name
        with zipfile.ZipFile(target, "w") as new:
            for name, data in members:
                new.writestr(name, data)
            if duplicate is not None:
                new.writestr(*duplicate)
    return target


def entry(meta, name):
    """The node of the top-level dict entry ``name``."""
    for key, node in meta["tree"]["items"]:
        if key["v"] == name:
            return node
    raise KeyError(name)


def refused(path, *fragments):
    with pytest.raises(CheckpointError) as info:
        rs.load(path)
    message = str(info.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    with pytest.raises(CheckpointError):
        checkpoint.summary(path)  # `rngstate inspect` reads it the same way
    return message


def test_the_untouched_copy_loads(tmp_path, good):
    assert_same(rs.load(edit(good, tmp_path / "copy.ckpt", change=lambda m: None)), the_tree())


# -- the attacks -----------------------------------------------------------------------------


def retype(meta):
    entry(meta, "state")["dtype"] = "float32"  # uint32 bits read as float32 before


def test_dtype_field_cannot_reinterpret_the_bits(tmp_path, good):
    refused(edit(good, tmp_path / "a.ckpt", retype), "rngstate.json", "edited")
    forged = edit(good, tmp_path / "b.ckpt", retype, rehash=True)
    refused(forged, "at ['state']", "holds uint32, but a float32 array is stored as float32")


def test_bfloat16_bits_cannot_be_relabelled(tmp_path):
    # uint16 and bfloat16 share a .npy dtype; only the content hash tells them apart
    rs.save(tmp_path / "h.ckpt", {"h": jnp.arange(3, dtype=jnp.uint16)})
    change = lambda m: entry(m, "h").update(dtype="bfloat16")  # noqa: E731
    refused(edit(tmp_path / "h.ckpt", tmp_path / "a.ckpt", change), "edited")


def alias(meta):
    entry(meta, "gen")["offset"]["ref"] = 0  # offset read from the seed's member before


def test_two_leaves_cannot_share_a_member(tmp_path, good):
    for rehash in (False, True):
        path = edit(good, tmp_path / f"{rehash}.ckpt", alias, rehash=rehash)
        refused(path, "at ['gen'].offset", "ref 0 out of order", "each used once")


def swap(meta):
    gen = entry(meta, "gen")
    gen["seed"]["ref"], gen["offset"]["ref"] = 1, 0


def test_refs_cannot_be_swapped(tmp_path, good):
    for rehash in (False, True):
        refused(edit(good, tmp_path / f"{rehash}.ckpt", swap, rehash=rehash), "at ['gen'].seed")


@pytest.mark.parametrize("ref", [0.5, True, "2", None, -1, [0]])
def test_refs_are_plain_ints(tmp_path, good, ref):
    change = lambda m: entry(m, "gen")["seed"].update(ref=ref)  # noqa: E731
    for rehash in (False, True):
        path = edit(good, tmp_path / f"{rehash}.ckpt", change, rehash=rehash)
        refused(path, "at ['gen'].seed", "ref")


def test_a_duplicated_member_name_is_refused(tmp_path, good):
    with zipfile.ZipFile(good) as archive:
        other = archive.read("arrays/1.npy")  # the offset's bytes, as a second arrays/0.npy
    path = edit(good, tmp_path / "dup.ckpt", duplicate=("arrays/0.npy", other))
    refused(path, "member arrays/0.npy appears twice")
    path = edit(good, tmp_path / "dup_meta.ckpt", duplicate=(META, b"{}"))
    refused(path, f"member {META} appears twice")


def empty_items(meta):
    entry(meta, "steps")["items"] = {}  # iterated as an empty list before


def test_items_of_an_object_cannot_empty_a_list(tmp_path, good):
    for rehash in (False, True):
        path = edit(good, tmp_path / f"{rehash}.ckpt", empty_items, rehash=rehash)
        refused(path, "at ['steps']", "items must be a JSON list")


def test_emptying_a_list_of_arrays_leaves_members_unread(tmp_path):
    rs.save(tmp_path / "l.ckpt", {"l": [jnp.ones(2), jnp.zeros(2)]})
    change = lambda m: entry(m, "l").update(items=[])  # noqa: E731
    path = edit(tmp_path / "l.ckpt", tmp_path / "a.ckpt", change, rehash=True)
    refused(path, "member arrays/0.npy is not part of the tree")


@pytest.mark.parametrize("name,rehash,fragment", [
    ("x", False, "edited"),  # 0-d: the schema allows it, the metadata hash does not
    ("m", False, "a numpy_scalar has shape []"),
    ("m", True, "a numpy_scalar has shape []"),
])
def test_kind_cannot_turn_a_jax_array_into_numpy(tmp_path, good, name, rehash, fragment):
    change = lambda m: entry(m, name).update(kind="numpy_scalar")  # noqa: E731
    refused(edit(good, tmp_path / "k.ckpt", change, rehash=rehash), fragment)


@pytest.mark.parametrize("rehash", [False, True])
def test_renamed_members_cannot_swap_seed_and_offset(tmp_path, good, rehash):
    rename = {"arrays/0.npy": "arrays/1.npy", "arrays/1.npy": "arrays/0.npy"}
    change = (lambda m: None) if rehash else None
    path = edit(good, tmp_path / "r.ckpt", change, rehash=rehash, rename=rename)
    refused(path, "at ['gen'].seed", "arrays/0.npy", "content hash differs")


def test_plain_values_cannot_be_edited(tmp_path, good):
    def change(meta):
        entry(meta, "steps")["items"][0]["v"] = 7

    refused(edit(good, tmp_path / "v.ckpt", change), "rngstate.json", "edited")


@pytest.mark.parametrize(
    "change,fragment",
    [
        (lambda m: m["tree"]["items"][0][1].update(extra=1), "unexpected ['extra']"),
        (lambda m: entry(m, "note").update(t="bytes"), "unknown node type 'bytes'"),
        (lambda m: entry(m, "note").update(v=5), "v must be a str"),
        (lambda m: entry(m, "x").update(dtype="object"), "not one that save() writes"),
        (lambda m: entry(m, "x").update(dtype=">f4"), "not one that save() writes"),
        (lambda m: entry(m, "x").update(shape=[1.0]), "shape must be a list of ints"),
        (lambda m: m["tree"]["items"].append(m["tree"]["items"][-1]), "appears twice"),
        (lambda m: m.update(written_by="me"), "written_by must map names to str"),
        (lambda m: m.update(written_by={"jax": 3}), "written_by must map names to str"),
        (lambda m: m.update(settings=[]), "settings must map"),
    ],
)
def test_other_schema_violations(tmp_path, good, change, fragment):
    refused(edit(good, tmp_path / "s.ckpt", change, rehash=True), fragment)


def test_the_metadata_hash_is_required(tmp_path, good):
    refused(edit(good, tmp_path / "h.ckpt", lambda m: m.pop("blake2b")), "missing ['blake2b']")


def test_a_node_entry_cannot_repeat(tmp_path):
    rs.save(tmp_path / "n.ckpt", {"opt": Moments(jnp.array(1), {"w": 2})})

    def change(meta):
        items = entry(meta, "opt")["items"]
        items[1] = [items[0][0], items[1][1]]  # mu under count's key: two .count

    for rehash in (False, True):
        path = edit(tmp_path / "n.ckpt", tmp_path / f"{rehash}.ckpt", change, rehash=rehash)
        refused(path, "at ['opt']", "key .count appears twice")


def test_repeated_json_keys_are_refused(tmp_path, good):
    with zipfile.ZipFile(good) as archive:
        text = archive.read(META).decode()
    doubled = text.replace('"note"}', '"note","t":"str"}', 1)
    assert doubled != text
    path = tmp_path / "j.ckpt"
    with zipfile.ZipFile(good) as old, zipfile.ZipFile(path, "w") as new:
        for info in old.infolist():
            new.writestr(info.filename, doubled if info.filename == META else old.read(info))
    refused(path, "repeats the key 't'")


# -- `rngstate inspect` on malformed metadata --------------------------------------------------


@pytest.mark.parametrize("written_by", ["me", ["jax"], {"jax": None}])
def test_inspect_reports_malformed_metadata_in_one_line(tmp_path, good, written_by, capsys):
    path = edit(good, tmp_path / "w.ckpt", lambda m: m.update(written_by=written_by), rehash=True)
    for argv in (["inspect", str(path)], ["inspect", "--json", str(path)]):
        assert cli.main(argv) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1
        assert captured.err.startswith("rngstate inspect: error: ") and str(path) in captured.err
        assert "written_by" in captured.err


def test_inspect_lists_registered_nodes_by_key_path(tmp_path, capsys):
    state = jax.tree_util.register_dataclass(
        __import__("dataclasses").make_dataclass("S", ["w", "gen"]), ["w", "gen"], []
    )
    rs.save(tmp_path / "n.ckpt", {"s": state(jnp.ones(2), rs.Generator(3, offset=1))})
    assert cli.main(["inspect", str(tmp_path / "n.ckpt")]) == 0
    out = capsys.readouterr().out
    assert "['s'].gen  seed 3  offset 1" in out and "['s'].w  float32[2]" in out


# -- saving: errors before the disk is touched, and errors that name the target ---------------


def test_a_huge_int_is_a_type_error_before_any_file_exists(tmp_path):
    with pytest.raises(TypeError, match=r"cannot store the \d+-bit int at \['n'\]"):
        rs.save(tmp_path / "n.ckpt", {"n": 10**5000})
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_names_the_target(tmp_path):
    target = tmp_path / "no" / "such" / "run.ckpt"
    with pytest.raises(FileNotFoundError) as info:
        rs.save(target, {"gen": rs.Generator(1)})
    assert info.value.filename == str(target) and str(target.parent) in str(info.value)
    assert ".tmp" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


_FILE_SIZE_LIMIT = textwrap.dedent(
    """
    import errno, os, resource, signal, sys
    import jax.numpy as jnp
    import rngstate as rs

    path = sys.argv[1]
    rs.save(path, {"w": jnp.arange(10.0)})
    # A real write error from the kernel: files above 64 KiB fail with EFBIG.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2**16, resource.RLIM_INFINITY))
    try:
        rs.save(path, {"w": jnp.zeros(2**16)})
    except OSError as exc:
        assert exc.errno == errno.EFBIG, exc
        print(exc.filename)
        print(exc)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
def test_a_failing_write_names_the_target_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "run.ckpt"
    result = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMIT, str(path)],
        capture_output=True, text=True, check=True,
    )
    filename, message = result.stdout.splitlines()
    assert filename == str(path) and str(path) in message and "File too large" in message
    assert os.listdir(tmp_path) == ["run.ckpt"]  # no temporary left behind
    np.testing.assert_array_equal(rs.load(path)["w"], jnp.arange(10.0))


# -- fuzzing the metadata ------------------------------------------------------------------------

_REPLACEMENTS = [
    0, 1, 2, 3, -1, 0.5, 2.0, True, False, None, "2", "", "float32", "uint32", "bfloat16",
    "numpy_scalar", "numpy", "jax", "list", "tuple", "dict", "int", "str", "none", "node",
    [], {}, [0], [2], [2, 2], {"t": "none"}, {"t": "int", "v": 1}, "0x1.0p+0",
]


def _places(value, where=()):
    """Every place in a JSON value, as a path of keys and indices."""
    yield where
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _places(child, (*where, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _places(child, (*where, i))


def _mutate(meta, data):
    meta = copy.deepcopy(meta)
    places = [p for p in _places(meta) if p]
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        place = data.draw(st.sampled_from(places), label="place")
        parent = meta
        try:
            for step in place[:-1]:
                parent = parent[step]
            last = place[-1]
            parent[last]  # noqa: B018 -- an earlier edit may have removed the place
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, (dict, list)):
            continue  # an earlier edit put a string there: it indexes, but cannot be edited
        how = data.draw(st.sampled_from(["replace", "delete", "swap", "copy"]), label="how")
        if how == "replace":
            parent[last] = copy.deepcopy(data.draw(st.sampled_from(_REPLACEMENTS)))
        elif how == "delete":
            del parent[last]
        elif how in ("swap", "copy") and isinstance(parent, list) and len(parent) > 1:
            other = data.draw(st.integers(0, len(parent) - 1), label="other")
            if how == "swap":
                parent[last], parent[other] = parent[other], parent[last]
            else:
                parent[other] = copy.deepcopy(parent[last])
    return meta


def _tree_meta(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(META))["tree"]


class Moments(typing.NamedTuple):
    count: jax.Array
    mu: dict


def fuzz_tree():
    return {
        **the_tree(),
        "kids": rs.Generator(1).spawn(2)[0],
        "k": jax.random.key(1),
        "opt": Moments(jnp.array(1), {"w": jnp.ones(2, jnp.bfloat16), "n": None}),
        "odd": {(1, "t"): {0.5: np.int8(3)}},
    }


@pytest.fixture(scope="module")
def fuzz_source(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "source.ckpt"
    rs.save(path, fuzz_tree())
    with zipfile.ZipFile(path) as archive:
        meta = json.loads(archive.read(META))
    return path, meta, rs.load(path)




@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), rehash=st.booleans())
def test_fuzzed_metadata_loads_the_original_or_is_refused(fuzz_source, tmp_path_factory, data,
                                                          rehash):
    """A plain edit: the original data or CheckpointError. A forger's edit (the metadata hash
    recomputed): CheckpointError, or a file save() itself would write for what it loads."""
    source, meta, original = fuzz_source
    mutated = _mutate(meta, data)
    work = tmp_path_factory.mktemp("m")
    path = work / "m.ckpt"
    edit(source, path, lambda m: (m.clear(), m.update(mutated)), rehash=rehash)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", checkpoint.CheckpointSettingsWarning)
        try:
            loaded = rs.load(path)
            checkpoint.summary(path)
        except CheckpointError as exc:
            assert str(path) in str(exc)
            return
        if not rehash:
            assert_same(loaded, original)
        else:  # what load accepts is exactly what save writes for the data it gives back
            rs.save(work / "again.ckpt", loaded)  # registered nodes too: same type, same keys
            assert _tree_meta(work / "again.ckpt") == mutated["tree"]
        try:
            typed = rs.load(path, target=fuzz_tree())
        except CheckpointError as exc:
            assert rehash and "does not match the target" in str(exc)
            return
        assert jax.tree.structure(typed) == jax.tree.structure(fuzz_tree())


# -- shapes past the samplers' size check, depth, NaN keys -------------------------------------


def member_bytes(array):
    buffer = __import__("io").BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.parametrize("shape", [[2**30, 2**30, 0], [2**54, 0], [0, 2**27, 2**27]])
def test_an_empty_array_of_a_huge_shape_is_refused_before_it_is_built(tmp_path, shape):
    # Both hashes recomputed: a file save could have written but for its shape. Before the
    # schema checked shapes, jnp.asarray of the first one hung in XLA's compiler.
    rs.save(tmp_path / "e.ckpt", {"x": jnp.zeros((0,))})
    member = member_bytes(np.empty(shape, np.float32))

    def change(meta):
        entry(meta, "x").update(shape=shape, blake2b=hashlib.blake2b(member, digest_size=32)
                                .hexdigest())

    path = edit(tmp_path / "e.ckpt", tmp_path / "huge.ckpt", change, rehash=True,
                rename={"arrays/0.npy": "old"}, duplicate=("arrays/0.npy", member))
    with zipfile.ZipFile(path) as archive:  # drop the renamed original member
        members = [(n, archive.read(n)) for n in archive.namelist() if n != "old"]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    refused(path, "at ['x']", "2**53")


def test_an_empty_array_within_the_bound_loads_at_once(tmp_path):
    # Within the size bound, yet jnp.asarray of the first compiled for hours in XLA (an
    # adversarial run found it): load copies arrays to the device instead.
    tree = {"x": np.empty((2**20, 2**20, 0), np.float32), "y": jnp.zeros((2**20, 0, 2**20)),
            "n": np.empty((0, 3), np.int8)}
    rs.save(tmp_path / "z.ckpt", tree)
    loaded = rs.load(tmp_path / "z.ckpt")
    assert loaded["x"].shape == (2**20, 2**20, 0) and loaded["n"].shape == (0, 3)
    target = {"x": jax.ShapeDtypeStruct((2**20, 2**20, 0), jnp.float32),
              "y": jax.ShapeDtypeStruct((2**20, 0, 2**20), jnp.float32),
              "n": jax.ShapeDtypeStruct((0, 3), jnp.int8)}
    restored = rs.load(tmp_path / "z.ckpt", target=target)
    assert isinstance(restored["x"], jax.Array) and restored["x"].shape == (2**20, 2**20, 0)
    assert restored["y"].dtype == jnp.float32 and restored["n"].dtype == jnp.int8


def nested(depth):
    tree = [jnp.ones(1)]
    for _ in range(depth - 1):
        tree = [tree]
    return tree


def test_a_tree_nested_past_the_depth_limit_is_a_type_error(tmp_path):
    # Before the limit, 500 levels raised RecursionError from deep inside save. Levels count
    # the nodes on the way from the root to a leaf, the leaf included.
    for depth in (100, 500, 5000):
        with pytest.raises(TypeError, match=r"more than 100 levels deep \(MAX_DEPTH\)"):
            rs.save(tmp_path / "d.ckpt", nested(depth))
    assert not os.listdir(tmp_path)
    rs.save(tmp_path / "d.ckpt", nested(99))  # the deepest tree save writes loads back
    loaded = rs.load(tmp_path / "d.ckpt", target=nested(99))
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(nested(99))


def test_a_file_nested_past_the_depth_limit_is_refused(tmp_path):
    rs.save(tmp_path / "d.ckpt", {"x": nested(98)})  # 100 levels: the most save writes

    def change(meta):
        node = meta["tree"]["items"][0][1]
        meta["tree"]["items"][0][1] = {"t": "list", "items": [node]}

    refused(edit(tmp_path / "d.ckpt", tmp_path / "deeper.ckpt", change, rehash=True),
            "more than 100 levels deep")


@pytest.mark.parametrize("key", [float("nan"), ("a", float("nan")), float("-nan")])
def test_a_nan_dict_key_is_a_type_error_before_any_file_exists(tmp_path, key):
    with pytest.raises(TypeError, match="NaN equals no key"):
        rs.save(tmp_path / "k.ckpt", {key: jnp.ones(1), 1.5: jnp.zeros(1)})
    assert not os.listdir(tmp_path)


def test_a_nan_dict_key_written_by_hand_is_refused(tmp_path):
    rs.save(tmp_path / "k.ckpt", {1.5: jnp.ones(1)})

    def change(meta):
        meta["tree"]["items"][0][0]["v"] = float("nan").hex()

    refused(edit(tmp_path / "k.ckpt", tmp_path / "nan.ckpt", change, rehash=True), "NaN")
