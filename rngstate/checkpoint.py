"""Checkpoint files: save and load any pytree of generators, arrays and plain data, atomically.

A checkpoint is a zip archive in NumPy's ``.npz`` layout: each array is an ``.npy`` member
(``arrays/0.npy``, ...), next to one JSON member, ``rngstate.json``, that holds the format
version, the settings random values depend on (the PRNG implementation and
``jax_threefry_partitionable``), the versions that wrote it, the tree's structure (dicts,
lists, tuples, and other pytree nodes by their key paths) with its plain data (ints, floats,
strings, bools, None), and BLAKE2b hashes of every member. ``numpy.load`` and ``unzip`` can
read it; no pickle is involved, so loading a file never runs code from it.

:func:`save` writes to a temporary file in the same directory, flushes and fsyncs it,
renames it over the target and fsyncs the directory: after a crash at any point the path
holds either the previous checkpoint or the new one, never a torn file. (A crash may leave
a ``.NAME.*.tmp`` file behind; it is never read and can be deleted.) :func:`load` checks
everything it reads against the schema of what :func:`save` writes (``_ckpt_schema``) and
against the recorded hashes, and raises :class:`CheckpointError`, naming the file, the
place in the tree and the problem, for a truncated, corrupt, edited, foreign or
newer-format file.

>>> import os, tempfile, jax.numpy as jnp, rngstate as rs
>>> path = os.path.join(tempfile.mkdtemp(), "run.ckpt")
>>> rs.save(path, {"gen": rs.Generator(seed=7, offset=3), "w": jnp.ones(2), "step": 3})
>>> rs.load(path)
{'gen': Generator(seed=7, offset=3), 'w': Array([1., 1.], dtype=float32), 'step': 3}
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import jax
import jax.numpy as jnp
import numpy as np

from rngstate import _u64
from rngstate._ckpt_schema import (
    DIGEST,
    Checker,
    SchemaError,
    check_meta,
    nan_key,
    plain_key,
    storable_dtype,
    stored_dtype,
    too_deep,
)
from rngstate.generator import Generator
from rngstate.pytrees import _is_generator_pair

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "LoadedNode",
    "CheckpointSettingsWarning",
    "format_summary",
    "load",
    "prng_settings",
    "save",
    "summary",
]

FORMAT_NAME = "rngstate checkpoint"
FORMAT_VERSION = 2
"""The version :func:`save` writes; :func:`load` reads this version and version 1.

Version 2 added content hashes (BLAKE2b) of every member and of the metadata, and pytree
nodes other than dicts, lists and tuples. Version 1 files load with every schema check but
without hashes to check."""

_META = "rngstate.json"
_ZIP_MAGIC = b"PK\x03\x04"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # no timestamps: the same tree gives the same bytes


class CheckpointError(ValueError):
    """A file that is not a readable rngstate checkpoint; the message names file and problem."""


class CheckpointSettingsWarning(UserWarning):
    """A checkpoint written under PRNG settings that differ from this process's."""


def prng_settings() -> dict[str, Any]:
    """The JAX settings that random values depend on, as recorded in every checkpoint.

    >>> sorted(prng_settings())
    ['jax_default_prng_impl', 'jax_threefry_partitionable']
    """
    return {
        "jax_default_prng_impl": str(jax.config.jax_default_prng_impl),
        "jax_threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
    }


# -- the tree as JSON plus a list of arrays ------------------------------------------------


class _Hasher:
    """A write-only file that keeps only the BLAKE2b hash of what is written to it."""

    def __init__(self) -> None:
        self.hash = hashlib.blake2b(digest_size=32)

    def write(self, data: Any) -> int:
        self.hash.update(data)
        return memoryview(data).nbytes


def _member_digest(array: np.ndarray) -> str:
    # The same writer, on the same array, as the archive member: the same bytes.
    sink = _Hasher()
    np.lib.format.write_array(sink, array, allow_pickle=False)
    return sink.hash.hexdigest()


def _meta_digest(meta: dict[str, Any]) -> str:
    """The hash of the metadata, over its canonical JSON without the hash field itself."""
    body = {k: v for k, v in meta.items() if k != DIGEST}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.blake2b(text.encode("ascii"), digest_size=32).hexdigest()


def _where(where: str) -> str:
    return where or "the root"


class _NotHeldByJax(Exception):
    """A stored array that this JAX would hold in another dtype (64-bit with x64 off)."""


def _as_jax(array: Any, where: str) -> jax.Array:
    """``array`` as a ``jax.Array`` of its own dtype; refused where JAX would narrow it.

    With ``jax_enable_x64`` off, ``jnp.asarray`` turns float64 into float32 (int64 into
    int32, ...) without a word: a saved value must not come back changed.
    """
    if isinstance(array, jax.Array):
        return array  # made by this process already (keys included): nothing to narrow
    held = jax.dtypes.canonicalize_dtype(array.dtype)
    if held != array.dtype:
        raise _NotHeldByJax(
            f"at {_where(where)} the checkpoint holds {array.dtype} values, which a JAX array "
            f"in this process would hold as {held} (jax_enable_x64 is off): enable it before "
            "loading (jax.config.update('jax_enable_x64', True)), or save NumPy or 32-bit arrays"
        )
    return _to_device(array)


def _to_device(array: np.ndarray) -> jax.Array:
    """A plain copy to the default device. Not ``jnp.asarray``: for an empty array with large
    sides (``float32[2**20, 2**20, 0]``, within the size bound) that compiles a program, and
    XLA takes minutes to hours over it; a transfer takes milliseconds."""
    return jax.device_put(array)


class _Encoder:
    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self.depth = 0

    def array(self, value: Any, where: str) -> dict[str, Any]:
        if isinstance(value, jax.core.Tracer):
            raise TypeError(
                f"save() needs concrete values, got a traced array at {_where(where)}; "
                "call it outside jit/vmap/grad"
            )
        array = np.asarray(value)
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        if not storable_dtype(array.dtype):
            raise TypeError(
                f"save() cannot store an array of dtype {array.dtype} at {_where(where)}: a "
                "checkpoint holds bool, integer, floating, complex and ML (bfloat16, float8, "
                "int4, ...) arrays"
            )
        node = {"ref": len(self.arrays), "dtype": str(array.dtype), "shape": list(array.shape)}
        array = array.view(stored_dtype(array.dtype))
        node[DIGEST] = _member_digest(array)
        self.arrays.append(array)
        return node

    def node(self, value: Any, where: str) -> dict[str, Any]:
        self.depth += 1
        try:
            problem = too_deep(self.depth)
            if problem:
                raise TypeError(f"save() cannot store the tree at {_where(where)}: {problem}")
            return self.value(value, where)
        finally:
            self.depth -= 1

    def value(self, value: Any, where: str) -> dict[str, Any]:
        if isinstance(value, Generator):
            return {
                "t": "generator",
                "seed": self.array(value.seed, where + ".seed"),
                "offset": self.array(value.offset, where + ".offset"),
            }
        if isinstance(value, (jax.Array, np.ndarray)):
            if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
                impl = str(jax.random.key_impl(value))
                return {"t": "key", "impl": impl, **self.array(jax.random.key_data(value), where)}
            kind = "jax" if isinstance(value, jax.Array) else "numpy"
            return {"t": "array", "kind": kind, **self.array(value, where)}
        if isinstance(value, np.generic):
            return {"t": "array", "kind": "numpy_scalar", **self.array(value, where)}
        if value is None:
            return {"t": "none"}
        if isinstance(value, bool):
            return {"t": "bool", "v": value}
        if isinstance(value, int):
            try:
                str(value)  # JSON writes ints in decimal; Python caps the digits of a conversion
            except ValueError:
                raise TypeError(
                    f"save() cannot store the {value.bit_length()}-bit int at {_where(where)}: "
                    "it has more decimal digits than Python converts to text "
                    "(sys.get_int_max_str_digits()); store it as a string or an array"
                ) from None
            return {"t": "int", "v": int(value)}
        if isinstance(value, float):
            return {"t": "float", "v": float(value).hex()}  # exact, and inf/nan are valid JSON
        if isinstance(value, str):
            return {"t": "str", "v": value}
        if type(value) in (list, tuple):
            items = [self.node(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return {"t": type(value).__name__, "items": items}
        if type(value) is dict:
            items = [
                [self.key(key, where), self.node(child, f"{where}[{key!r}]")]
                for key, child in value.items()
            ]
            return {"t": "dict", "items": items}
        return self.registered(value, where)

    def key(self, key: Any, where: str, depth: int = 1) -> dict[str, Any]:
        if nan_key(key):
            raise TypeError(
                f"save() cannot store the dict key {key!r} at {_where(where)}: a NaN equals "
                "no key, not even another NaN, so the loaded dict could not be looked up or "
                "matched against a target; use another key (a string such as 'nan')"
            )
        problem = too_deep(depth)
        if problem:
            raise TypeError(f"save() cannot store a dict key at {_where(where)}: {problem}")
        if key is None or type(key) in (bool, int, float, str):
            return self.value(key, f"{where} key {key!r}")
        if type(key) is tuple:
            return {"t": "tuple", "items": [self.key(k, where, depth + 1) for k in key]}
        raise TypeError(
            f"save() cannot store a dict key of type {type(key).__name__} at {_where(where)}: "
            "keys are None, bool, int, float, str, or tuples of them"
        )

    def registered(self, value: Any, where: str) -> dict[str, Any]:
        """Any other pytree node (nnx.State, a NamedTuple, a registered dataclass): its keys."""
        children, _ = jax.tree_util.tree_flatten_with_path(value, is_leaf=lambda x: x is not value)
        if len(children) == 1 and children[0][0] == ():  # not a registered node: a leaf
            raise TypeError(
                f"save() cannot store {type(value).__name__} at {_where(where)}: a checkpoint "
                "holds Generators, arrays, typed keys, None, bool, int, float, str, and "
                "pytrees of them (dicts, lists, tuples, and nodes registered with "
                "jax.tree_util, such as nnx.State or Optax states)"
            )
        items = []
        for (entry,), child in children:
            text = jax.tree_util.keystr((entry,))
            items.append([self.entry(entry, where), self.node(child, where + text)])
        kind = type(value)
        name = value.type_name if kind is LoadedNode else f"{kind.__module__}.{kind.__qualname__}"
        return {"t": "node", "type": name, "items": items}

    def entry(self, entry: Any, where: str) -> dict[str, Any]:
        tu = jax.tree_util
        if isinstance(entry, tu.DictKey):
            return {"k": "dict", "key": self.key(entry.key, where)}
        if isinstance(entry, tu.GetAttrKey):
            return {"k": "attr", "name": entry.name}
        if isinstance(entry, tu.SequenceKey):
            return {"k": "index", "idx": entry.idx}
        if isinstance(entry, tu.FlattenedIndexKey):
            return {"k": "flat", "idx": entry.key}
        raise TypeError(
            f"save() cannot store the key {entry!r} ({type(entry).__name__}) under "
            f"{_where(where)}: key paths are made of DictKey, GetAttrKey, SequenceKey and "
            "FlattenedIndexKey entries"
        )


class _Node:
    """A registered pytree node read back: its type's name and its children by key entry."""

    def __init__(self, type_name: str, entries: list[tuple[Any, Any]]) -> None:
        self.type_name = type_name
        self.entries = entries


def _key_entry(entry: dict[str, Any]) -> Any:
    tu = jax.tree_util
    kind = entry["k"]
    if kind == "dict":
        return tu.DictKey(plain_key(entry["key"], ""))
    if kind == "attr":
        return tu.GetAttrKey(entry["name"])
    if kind == "index":
        return tu.SequenceKey(entry["idx"])
    return tu.FlattenedIndexKey(entry["idx"])


def _build(
    node: dict[str, Any], arrays: list[np.ndarray], where: str, to_jax: Callable = _as_jax
) -> Any:
    """The value of a checked node, with its arrays already read and checked; ``to_jax``
    makes the JAX arrays (``rngstate inspect`` keeps them as read)."""
    tag = node["t"]
    if tag == "generator":
        seed, offset = (_to_device(arrays[node[k]["ref"]]) for k in ("seed", "offset"))
        return Generator.from_words(seed, offset)
    if tag == "key":
        try:
            return jax.random.wrap_key_data(_to_device(arrays[node["ref"]]), impl=node["impl"])
        except Exception as exc:  # an unknown impl, or key data of the wrong shape for it
            raise SchemaError(where, f"not a {node['impl']!r} key: {exc}") from None
    if tag == "array":
        array = arrays[node["ref"]]
        if node["kind"] == "jax":
            return to_jax(array, where)
        return array if node["kind"] == "numpy" else array[()]
    if tag == "none":
        return None
    if tag == "float":
        return float.fromhex(node["v"])
    if tag in ("bool", "int", "str"):
        return node["v"]
    if tag in ("list", "tuple"):
        items = [
            _build(item, arrays, f"{where}[{i}]", to_jax) for i, item in enumerate(node["items"])
        ]
        return items if tag == "list" else tuple(items)
    if tag == "dict":
        return {
            (key := plain_key(k, where)): _build(v, arrays, f"{where}[{key!r}]", to_jax)
            for k, v in node["items"]
        }
    entries = []
    for head, child in node["items"]:
        entry = _key_entry(head)
        entries.append(
            (entry, _build(child, arrays, where + jax.tree_util.keystr((entry,)), to_jax))
        )
    return _Node(node["type"], entries)


def _read_member(
    archive: zipfile.ZipFile, ref: int, where: str, spec: dict[str, Any], version: int
) -> np.ndarray:
    member = f"arrays/{ref}.npy"
    try:
        raw = archive.read(member)  # checks the member's CRC-32
    except KeyError:
        raise SchemaError(where, f"member {member} is missing") from None
    if version >= 2 and hashlib.blake2b(raw, digest_size=32).hexdigest() != spec[DIGEST]:
        raise SchemaError(
            where,
            f"{member}: its content hash differs from the one recorded (an edited, damaged or "
            "swapped member)",
        )
    try:
        array = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    except Exception as exc:
        raise SchemaError(where, f"{member} is not a readable .npy array ({exc})") from None
    dtype = jnp.dtype(spec["dtype"])
    if array.dtype != stored_dtype(dtype):
        raise SchemaError(
            where,
            f"{member} holds {array.dtype}, but a {dtype} array is stored as "
            f"{stored_dtype(dtype)} (the dtype field was edited?)",
        )
    if list(array.shape) != spec["shape"]:
        raise SchemaError(
            where, f"{member} has shape {list(array.shape)}, the tree says {spec['shape']}"
        )
    return array.view(dtype)


def _decode(archive: zipfile.ZipFile, meta: dict[str, Any], to_jax: Callable) -> Any:
    """Check the metadata against the schema, then every member; build the tree."""
    version = meta["version"]
    check_meta(meta, version)
    specs = Checker(version).tree(meta["tree"])
    expected = {_META, *(f"arrays/{i}.npy" for i in range(len(specs)))}
    extra = sorted(set(archive.namelist()) - expected)
    if extra:
        raise SchemaError("", f"member {extra[0]} is not part of the tree")
    if version >= 2 and _meta_digest(meta) != meta[DIGEST]:
        raise SchemaError(
            "", f"the content hash of {_META} differs from the one recorded (an edited file)"
        )
    arrays = [
        _read_member(archive, i, where, spec, version) for i, (where, spec) in enumerate(specs)
    ]
    return _build(meta["tree"], arrays, "", to_jax)


class LoadedNode(dict):
    """A pytree node read without a target: a dict of its children by name that keeps the
    saved key entries, so saving it again writes the same key paths.

    An ``nnx.State`` holds each Variable as a node with the child ``.value`` (a
    ``GetAttrKey``); read back as a plain dict it would be saved again as ``['value']``, and
    the file would no longer load against the model. A ``LoadedNode`` flattens with the
    saved entries and is saved under the saved node's type name.

    >>> import jax
    >>> node = LoadedNode("flax.nnx.Param", [(jax.tree_util.GetAttrKey("value"), 1.0)])
    >>> node["value"], jax.tree_util.keystr(jax.tree_util.tree_flatten_with_path(node)[0][0][0])
    (1.0, '.value')
    """

    def __init__(self, type_name: str, entries: list[tuple[Any, Any]]) -> None:
        super().__init__((_entry_name(entry), child) for entry, child in entries)
        self.type_name = type_name
        self._entries = {_entry_name(entry): entry for entry, _ in entries}

    def entries(self) -> tuple[Any, ...]:
        """The key entry of each child: the saved one, a ``DictKey`` for a key added since."""
        return tuple(self._entries.get(k, jax.tree_util.DictKey(k)) for k in self)

    def __repr__(self) -> str:
        return f"LoadedNode({self.type_name}, {dict.__repr__(self)})"


def _flatten_loaded(node: LoadedNode) -> tuple[list[tuple[Any, Any]], tuple[str, tuple]]:
    entries = node.entries()
    return [(entry, node[_entry_name(entry)]) for entry in entries], (node.type_name, entries)


jax.tree_util.register_pytree_with_keys(
    LoadedNode,
    _flatten_loaded,
    lambda aux, children: LoadedNode(aux[0], list(zip(aux[1], children, strict=True))),
)


def _plain(value: Any) -> Any:
    """A read tree without a target: registered nodes become :class:`LoadedNode` dicts."""
    if type(value) is dict:
        return {k: _plain(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, _Node):
        children = [(entry, _plain(child)) for entry, child in value.entries]
        return LoadedNode(value.type_name, children)
    return value


def _entry_name(entry: Any) -> Any:
    for field in ("key", "name", "idx"):
        if hasattr(entry, field):
            return getattr(entry, field)
    raise AssertionError(entry)  # _key_entry makes only the four kinds


# -- reading into a target ---------------------------------------------------------------------


def _flat(value: Any, keys: tuple) -> Iterator[tuple[tuple, Any]]:
    """Each leaf of a read tree with its key path, as jax.tree_util would give it."""
    tu = jax.tree_util
    if isinstance(value, Generator):
        for path, leaf in tu.tree_flatten_with_path(value)[0]:
            yield keys + path, leaf
    elif type(value) is dict:
        for key, child in value.items():
            yield from _flat(child, keys + (tu.DictKey(key),))
    elif type(value) in (list, tuple):
        for i, child in enumerate(value):
            yield from _flat(child, keys + (tu.SequenceKey(i),))
    elif isinstance(value, _Node):
        for entry, child in value.entries:
            yield from _flat(child, keys + (entry,))
    elif value is not None:  # None is a pytree node without leaves
        yield keys, value


def _spec(dtype: Any, shape: Any) -> str:
    return f"{dtype}{list(shape)}"


def _describe(value: Any) -> str:
    if isinstance(value, (jax.Array, jax.ShapeDtypeStruct, np.ndarray, np.generic)):
        return f"an array {_spec(value.dtype, np.shape(value))}"
    return f"a value of type {type(value).__name__}"


def _fit(leaf: Any, want: Any, where: str, path: str) -> Any:
    """The saved ``leaf`` as the target leaf ``want`` asks: same shape and dtype, its type."""

    def mismatch() -> CheckpointError:
        return CheckpointError(
            f"{path}: does not match the target at {_where(where)}: the target has "
            f"{_describe(want)}, the checkpoint holds {_describe(leaf)}"
        )

    if isinstance(want, (jax.Array, jax.ShapeDtypeStruct, np.ndarray, np.generic)):
        shape, dtype = tuple(np.shape(want)), want.dtype
        if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
            if leaf.dtype != dtype or tuple(np.shape(leaf)) != shape:
                raise mismatch()
            value = leaf
        elif type(leaf) in (bool, int, float) and shape == () and _scalar_fits(leaf, dtype):
            value = np.asarray(leaf, dtype=dtype)
        else:
            raise mismatch()
        if isinstance(want, np.ndarray):
            return np.asarray(value)
        if isinstance(want, np.generic):
            return np.asarray(value)[()]
        try:
            value = _as_jax(value, where)
        except _NotHeldByJax as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        sharding = getattr(want, "sharding", None)
        if isinstance(sharding, jax.sharding.Sharding):
            value = jax.device_put(value, sharding)
        return value
    if type(want) in (bool, int, float, str):
        if type(leaf) is not type(want):
            raise mismatch()
        return leaf
    raise TypeError(
        f"load(target=...) at {_where(where)}: a target's leaves are arrays, "
        f"jax.ShapeDtypeStruct or bool/int/float/str values, got {type(want).__name__}"
    )


def _scalar_fits(value: bool | int | float, dtype: np.dtype) -> bool:
    """Whether a saved Python scalar fills a scalar leaf of ``dtype`` (as eval_shape makes)
    exactly: converted to ``dtype`` and back it is the same number (NaN stays NaN).

    >>> _scalar_fits(16777217, np.dtype("float32")), _scalar_fits(0.5, jnp.dtype("bfloat16"))
    (False, True)
    """
    if dtype == np.bool_ or type(value) is bool:
        return dtype == np.bool_ and type(value) is bool
    if jnp.issubdtype(dtype, jnp.integer):
        info = jnp.iinfo(dtype)
        return type(value) is int and info.min <= value <= info.max
    if not jnp.issubdtype(dtype, jnp.inexact):
        return False
    wide = np.complex128 if jnp.issubdtype(dtype, jnp.complexfloating) else np.float64
    try:
        with np.errstate(all="ignore"):  # an overflow to inf is found below, not warned
            back = np.asarray(value, dtype=dtype).astype(wide).item()
    except OverflowError:  # an int past float64's range
        return False
    return back == value or (back != back and value != value)


def _path_key(keys: tuple) -> tuple:
    """A key path as compared with a target's: each entry's kind and key, so a list's ``[0]``
    is not a dict's ``[0]``, nor a key ``1`` a key ``True``."""
    return tuple((type(entry).__name__, repr(_entry_name(entry))) for entry in keys)


def _restore(tree: Any, target: Any, path: str) -> Any:
    tu = jax.tree_util
    found = {_path_key(keys): (tu.keystr(keys), leaf) for keys, leaf in _flat(tree, ())}
    wanted, treedef = tu.tree_flatten_with_path(target)
    leaves = []
    for keys, want in wanted:
        where = tu.keystr(keys)
        if _path_key(keys) not in found:
            raise CheckpointError(
                f"{path}: does not match the target at {_where(where)}: the target has "
                f"{_describe(want)} there, the checkpoint has no leaf there"
                + _container_note(where, found)
            )
        leaves.append(_fit(found.pop(_path_key(keys))[1], want, where, path))
    if found:
        where, leaf = next(iter(found.values()))
        raise CheckpointError(
            f"{path}: does not match the target at {_where(where)}: the checkpoint has "
            f"{_describe(leaf)} there, the target has no leaf there"
        )
    return tu.tree_unflatten(treedef, leaves)


def _container_note(where: str, found: dict[tuple, tuple[str, Any]]) -> str:
    """Why a path that reads the same on both sides did not match: other containers."""
    if any(text == where for text, _ in found.values()):
        return (
            " (it has one at the same path in another kind of container: a list or tuple "
            "index is not a dict key, nor an attribute)"
        )
    return ""


# -- writing -------------------------------------------------------------------------------


def _write_archive(file: BinaryIO, meta_text: bytes, arrays: list[np.ndarray]) -> None:
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
        # The metadata goes first, so even a cut file is recognisable as a checkpoint.
        archive.writestr(zipfile.ZipInfo(_META, _FIXED_TIME), meta_text)
        for i, array in enumerate(arrays):
            info = zipfile.ZipInfo(f"arrays/{i}.npy", _FIXED_TIME)
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _new_file_mode() -> int:
    umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms that cannot open a directory (Windows) have no need to
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _file_name(path: Any) -> str:
    """``path`` as text, as ``open`` takes it: a str, bytes or an ``os.PathLike``."""
    try:
        return os.fsdecode(path)
    except TypeError:
        raise TypeError(
            f"path must be a str, bytes or os.PathLike file name, got {type(path).__name__}"
        ) from None


def _naming(exc: OSError, path: str) -> OSError:
    """The same error (errno, so the same subclass) with the checkpoint's path as its file."""
    return OSError(exc.errno, f"{exc.strerror or exc} (saving the checkpoint)", path)


def save(path: str | bytes | os.PathLike, tree: Any) -> None:
    """Write ``tree`` to ``path`` atomically: after a crash it holds the old file or the new.

    ``tree`` is any JAX pytree whose leaves are generators (:class:`Generator`, batched
    too), JAX or NumPy arrays (bool, integer, floating, complex; bfloat16 and the other ML
    dtypes too), typed JAX keys, NumPy scalars, or plain ``None`` / ``bool`` / ``int`` /
    ``float`` / ``str``. Its nodes are dicts (keys: ``None``, ``bool``, ``int``,
    ``float``, ``str`` or tuples of them), lists, tuples, or any node registered with
    ``jax.tree_util`` (``nnx.State``, Optax's NamedTuple states, registered dataclasses),
    stored by their key paths; a ``capture()`` snapshot is such a tree. Nothing is pickled.
    The file is written exactly at ``path`` (no suffix is added). The data go to a temporary
    file in the same directory, which is flushed, fsynced and renamed over ``path``; then
    the directory is fsynced, so the rename itself survives a power cut.

    Raises ``TypeError`` naming the place of anything it cannot store, before touching disk.
    An ``OSError`` (a full disk, a missing directory) names ``path`` and leaves the previous
    file at ``path`` as it was.

    >>> import os, tempfile, rngstate as rs
    >>> path = os.path.join(tempfile.mkdtemp(), "gens.ckpt")
    >>> save(path, [rs.Generator(1), rs.Generator(2, offset=5)])
    >>> load(path)
    [Generator(seed=1, offset=0), Generator(seed=2, offset=5)]
    """
    path = _file_name(path)
    encoder = _Encoder()
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "settings": prng_settings(),
        "written_by": _versions(),
        "tree": encoder.node(tree, ""),
    }
    meta[DIGEST] = _meta_digest(meta)
    meta_text = json.dumps(meta, separators=(",", ":")).encode("ascii")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            errno.ENOENT, f"no directory {directory} to save the checkpoint in", path
        )
    try:
        fd, temporary = tempfile.mkstemp(
            prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
        )
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        with os.fdopen(fd, "wb") as file:
            if hasattr(os, "fchmod"):  # mkstemp makes 0600; give the file the usual mode
                os.fchmod(file.fileno(), _new_file_mode())
            _write_archive(file, meta_text, encoder.arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from exc
        raise
    _fsync_directory(directory)


def _versions() -> dict[str, str]:
    import jaxlib

    from rngstate import __version__

    return {
        "rngstate": __version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }


# -- reading -------------------------------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a JSON object repeats the key {_first_repeat(keys)!r}")
    return dict(pairs)


def _first_repeat(names: list[str]) -> str:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return ""


def _open(path: str) -> tuple[zipfile.ZipFile, dict[str, Any]]:
    """Open the archive and check its metadata; the caller closes the archive."""

    def fail(problem: str) -> CheckpointError:
        return CheckpointError(f"{path}: {problem}")

    with open(path, "rb") as file:
        head = file.read(30 + len(_META))
    if not head:
        raise fail("empty file (a save that never completed?)")
    if not head.startswith(_ZIP_MAGIC):
        raise fail("not an rngstate checkpoint: not a zip/.npz archive")
    try:
        archive = zipfile.ZipFile(path)
    except Exception as exc:  # zipfile raises several kinds on damaged archives
        if head[30:] == _META.encode():
            raise fail(
                f"truncated or damaged checkpoint: the zip directory is unreadable ({exc})"
            ) from None
        raise fail(f"damaged zip archive, not readable as a checkpoint ({exc})") from None
    try:
        names = archive.namelist()
        if len(set(names)) != len(names):  # zipfile would read the last one of the same name
            raise fail(f"corrupt checkpoint: member {_first_repeat(names)} appears twice")
        if _META not in names:
            raise fail(
                f"not an rngstate checkpoint: no {_META} member (a plain .npz? it holds "
                f"{', '.join(sorted(names)[:5]) or 'nothing'})"
            )
        try:
            text = archive.read(_META).decode("utf-8")
            meta = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except Exception as exc:
            raise fail(f"corrupt checkpoint: unreadable {_META} ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise fail(f"not an rngstate checkpoint: {_META} does not name the format")
        version = meta.get("version")
        if type(version) is not int or version < 1:
            raise fail(f"corrupt checkpoint: bad format version {version!r}")
        if version > FORMAT_VERSION:
            raise fail(
                f"written in checkpoint format version {version}, newer than version "
                f"{FORMAT_VERSION} that this rngstate reads; upgrade rngstate to load it"
            )
    except BaseException:
        archive.close()
        raise
    return archive, meta


def _as_read(array: np.ndarray, where: str) -> np.ndarray:
    return array


def _read(
    path: str | bytes | os.PathLike, to_jax: Callable = _as_jax
) -> tuple[Any, dict[str, Any]]:
    """The tree as read (registered nodes as :class:`_Node`) and the checked metadata."""
    path = _file_name(path)
    archive, meta = _open(path)
    with archive:
        try:
            tree = _decode(archive, meta, to_jax)
        except SchemaError as exc:
            raise CheckpointError(f"{path}: corrupt checkpoint {exc}") from None
        except _NotHeldByJax as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        except Exception as exc:  # zipfile's CRC check and the like
            raise CheckpointError(f"{path}: corrupt checkpoint: {exc}") from None
    return tree, meta


def load(path: str | bytes | os.PathLike, target: Any = None) -> Any:
    """Read a tree written by :func:`save`, with every generator, array and value as saved.

    Without ``target``, JAX arrays come back as JAX arrays (on the default device), NumPy
    arrays as NumPy ones, dicts, lists and tuples as themselves, and each other pytree node
    (``nnx.State``, a NamedTuple, ...) as a dict of its children by key (a ``GetAttrKey``'s
    name, a ``DictKey``'s key, an index): a :class:`LoadedNode`, which saves again under the
    same key paths and node type. With ``target``, a pytree of arrays,
    ``jax.ShapeDtypeStruct`` (``jax.eval_shape``'s output) or plain values, the result has
    the target's structure and node types; each leaf must have the target leaf's shape and
    dtype, and comes back as the target's kind (JAX arrays, on the target's sharding where it
    has one, for JAX arrays and ``ShapeDtypeStruct``; NumPy for NumPy). A leaf present on
    one side only, or of another shape or dtype, raises :class:`CheckpointError` naming the
    first such path.

    Raises :class:`CheckpointError`, naming the file, the place in the tree and the problem,
    for a truncated, corrupt, edited, foreign or newer-format file. Warns
    (:class:`CheckpointSettingsWarning`) when the file was written under a different PRNG
    implementation or ``jax_threefry_partitionable``: generators then resume at the same
    seed and offset but draw different values.

    >>> import os, tempfile, jax, rngstate as rs
    >>> path = os.path.join(tempfile.mkdtemp(), "g.ckpt")
    >>> save(path, {"gen": rs.Generator(seed=2**63), "w": jax.numpy.zeros(3)})
    >>> load(path)["gen"].initial_seed() == 2**63
    True
    >>> target = jax.eval_shape(lambda: {"gen": rs.Generator(0), "w": jax.numpy.ones(3)})
    >>> load(path, target)["w"]
    Array([0., 0., 0.], dtype=float32)
    """
    path = _file_name(path)
    tree, meta = _read(path)
    recorded, running = meta["settings"], prng_settings()
    differ = [
        f"{k}={recorded.get(k)!r} (now {v!r})" for k, v in running.items() if recorded.get(k) != v
    ]
    if differ:
        warnings.warn(
            f"{path} was written with {', '.join(differ)}: the generators resume "
            "at their saved seeds and offsets but will draw different values than the run "
            "that saved them",
            CheckpointSettingsWarning,
            stacklevel=2,
        )
    if target is None:
        return _plain(tree)
    return _restore(tree, target, path)


# -- describing a checkpoint (`rngstate inspect`) ------------------------------------------


def _words_to_ints(words: jax.Array) -> Any:
    flat = np.asarray(words).reshape(-1, 2)
    numbers = np.array([_u64.from_words(w) for w in flat], dtype=object)
    return numbers.reshape(words.shape[:-1]).tolist()


def _leaves(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Each leaf with its place, written as jax.tree_util.keystr writes key paths.

    A node holding exactly a generator's two leaves by name (``nnx.state`` of a module that
    holds a Generator, an Orbax-style ``{'seed', 'offset'}`` dict) is listed as a generator.
    """
    named = (
        {_entry_name(entry): child for entry, child in value.entries}
        if isinstance(value, _Node)
        else value
    )
    if _is_generator_pair(named):
        yield where, Generator.from_words(named["seed"], named["offset"])
    elif type(value) is dict:
        for key, child in value.items():
            yield from _leaves(child, f"{where}[{key!r}]")
    elif type(value) in (list, tuple):
        for i, child in enumerate(value):
            yield from _leaves(child, f"{where}[{i}]")
    elif isinstance(value, _Node):
        for entry, child in value.entries:
            yield from _leaves(child, where + jax.tree_util.keystr((entry,)))
    else:
        yield where, value


def _describe_leaf(leaf: Any) -> dict[str, Any]:
    if isinstance(leaf, Generator):
        entry: dict[str, Any] = {"kind": "generator"}
        if leaf.batch_shape:
            entry["batch_shape"] = list(leaf.batch_shape)
        entry["seed"] = _words_to_ints(leaf.seed)
        entry["offset"] = _words_to_ints(leaf.offset)
        return entry
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return {
                "kind": "key",
                "impl": str(jax.random.key_impl(leaf)),
                "shape": list(leaf.shape),
            }
        return {"kind": "array", "dtype": str(leaf.dtype), "shape": list(np.shape(leaf))}
    if isinstance(leaf, float) and not np.isfinite(leaf):
        return {"kind": "value", "value": repr(leaf)}  # JSON has no nan/inf
    return {"kind": "value", "value": leaf}


def summary(path: str | bytes | os.PathLike) -> dict[str, Any]:
    """What a checkpoint holds, as JSON-ready data: settings, versions and one entry per leaf.

    Generators are listed with their seed and offset as integers; arrays by dtype and shape;
    plain values as they are. Settings that differ from this process's are listed under
    ``"settings_differ"``.

    >>> import os, tempfile, rngstate as rs
    >>> path = os.path.join(tempfile.mkdtemp(), "g.ckpt")
    >>> save(path, {"gen": rs.Generator(5, offset=2)})
    >>> summary(path)["entries"]
    [{'path': "['gen']", 'kind': 'generator', 'seed': 5, 'offset': 2}]
    """
    path = _file_name(path)
    tree, meta = _read(path, to_jax=_as_read)  # described as stored, whatever x64 is here
    running = prng_settings()
    return {
        "path": path,
        "size_bytes": os.path.getsize(path),
        "format_version": meta["version"],
        "written_by": meta.get("written_by", {}),
        "settings": meta["settings"],
        "settings_differ": sorted(k for k, v in running.items() if meta["settings"].get(k) != v),
        "entries": [{"path": where, **_describe_leaf(leaf)} for where, leaf in _leaves(tree, "")],
    }


def format_summary(info: dict[str, Any]) -> str:
    """The plain-text report of ``rngstate inspect`` for a :func:`summary`.

    >>> import os, tempfile, rngstate as rs
    >>> path = os.path.join(tempfile.mkdtemp(), "g.ckpt")
    >>> save(path, {"gen": rs.Generator(5, offset=2)})
    >>> print(format_summary(summary(path)))  # doctest: +ELLIPSIS
    checkpoint  .../g.ckpt (... bytes, format version 2)
    ...
      ['gen']  seed 5  offset 2
    """
    written = info["written_by"]
    lines = [
        f"checkpoint  {info['path']} ({info['size_bytes']:,} bytes, "
        f"format version {info['format_version']})",
        "written by  " + ", ".join(f"{k} {v}" for k, v in written.items()),
    ]
    for key, value in info["settings"].items():
        note = (
            "  (differs from this process: values drawn will differ)"
            if key in info["settings_differ"]
            else ""
        )
        lines.append(f"setting     {key} = {value}{note}")
    groups = {"generator": "generators", "key": "keys", "array": "arrays", "value": "values"}
    for kind, title in groups.items():
        entries = [e for e in info["entries"] if e["kind"] == kind]
        if not entries:
            continue
        lines.append(f"{title} ({len(entries)})")
        width = max(len(e["path"]) for e in entries)
        for e in entries:
            lines.append(f"  {e['path'].ljust(width)}  {_entry_text(e)}")
    return "\n".join(lines)


def _entry_text(entry: dict[str, Any]) -> str:
    kind = entry["kind"]
    if kind == "generator":
        if "batch_shape" in entry:
            seeds = np.ravel(np.asarray(entry["seed"], dtype=object))
            offsets = np.ravel(np.asarray(entry["offset"], dtype=object))
            shown = ", ".join(f"({s}, {o})" for s, o in list(zip(seeds, offsets, strict=True))[:3])
            more = ", ..." if len(seeds) > 3 else ""
            return f"batch {tuple(entry['batch_shape'])}: (seed, offset) {shown}{more}"
        return f"seed {entry['seed']}  offset {entry['offset']}"
    if kind == "key":
        return f"key<{entry['impl']}>{entry['shape']}"
    if kind == "array":
        return f"{entry['dtype']}{entry['shape']}"
    return repr(entry["value"])
