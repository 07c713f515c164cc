"""Checkpoint files: save and load a pytree of generators, arrays and plain data, atomically.

A checkpoint is a zip archive in NumPy's ``.npz`` layout: each array is an ``.npy`` member
(``arrays/0.npy``, ...), next to one JSON member, ``rngstate.json``, that holds the format
version, the settings random values depend on (the PRNG implementation and
``jax_threefry_partitionable``), the versions that wrote it, and the tree's structure with
its plain data (ints, floats, strings, bools, None). ``numpy.load`` and ``unzip`` can read
it; no pickle is involved, so loading a file never runs code from it.

:func:`save` writes to a temporary file in the same directory, flushes and fsyncs it,
renames it over the target and fsyncs the directory: after a crash at any point the path
holds either the previous checkpoint or the new one, never a torn file. (A crash may leave
a ``.NAME.*.tmp`` file behind; it is never read and can be deleted.) :func:`load` checks
everything it reads and raises :class:`CheckpointError`, naming the file and the problem,
for a truncated, corrupt, foreign or newer-format file.

>>> import os, tempfile, jax.numpy as jnp, rngstate as rs
>>> path = os.path.join(tempfile.mkdtemp(), "run.ckpt")
>>> rs.save(path, {"gen": rs.Generator(seed=7, offset=3), "w": jnp.ones(2), "step": 3})
>>> rs.load(path)
{'gen': Generator(seed=7, offset=3), 'w': Array([1., 1.], dtype=float32), 'step': 3}
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any, BinaryIO

import jax
import jax.numpy as jnp
import numpy as np

from rngstate import _u64
from rngstate.generator import Generator

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "CheckpointSettingsWarning",
    "format_summary",
    "load",
    "prng_settings",
    "save",
    "summary",
]

FORMAT_NAME = "rngstate checkpoint"
FORMAT_VERSION = 1
"""The version :func:`save` writes; :func:`load` reads this version and older ones."""

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


class _Encoder:
    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []

    def array(self, value: Any, where: str) -> dict[str, Any]:
        if isinstance(value, jax.core.Tracer):
            raise TypeError(
                f"save() needs concrete values, got a traced array at {where or 'the root'}; "
                "call it outside jit/vmap/grad"
            )
        array = np.asarray(value)
        node = {"ref": len(self.arrays), "dtype": str(array.dtype), "shape": list(array.shape)}
        if array.dtype.isbuiltin != 1:  # bfloat16, float8, int4: store the raw bits
            array = array.view(f"u{array.dtype.itemsize}")
        self.arrays.append(array)
        return node

    def node(self, value: Any, where: str) -> dict[str, Any]:
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
            return {"t": "int", "v": int(value)}
        if isinstance(value, float):
            return {"t": "float", "v": float(value).hex()}  # exact, and inf/nan are valid JSON
        if isinstance(value, str):
            return {"t": "str", "v": value}
        if type(value) in (list, tuple):
            items = [self.node(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return {"t": type(value).__name__, "items": items}
        if type(value) is dict:
            items = []
            for key, child in value.items():
                items.append(
                    [self.node(key, f"{where} key {key!r}"), self.node(child, f"{where}[{key!r}]")]
                )
            return {"t": "dict", "items": items}
        raise TypeError(
            f"save() cannot store {type(value).__name__} at {where or 'the root'}: a checkpoint "
            "holds Generators, arrays, typed keys, None, bool, int, float, str, and "
            "dicts / lists / tuples of them (convert other containers, e.g. namedtuple._asdict())"
        )


class _Decoder:
    def __init__(self, archive: zipfile.ZipFile, names: set[str]) -> None:
        self.archive = archive
        self.names = names

    def array(self, node: dict[str, Any]) -> np.ndarray:
        member = f"arrays/{int(node['ref'])}.npy"
        if member not in self.names:
            raise ValueError(f"member {member} is missing")
        raw = self.archive.read(member)  # checks the member's CRC-32
        array = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
        dtype = jnp.dtype(node["dtype"])
        if array.dtype != dtype:
            if array.dtype.kind != "u" or array.dtype.itemsize != dtype.itemsize:
                raise ValueError(f"{member} holds {array.dtype}, the tree says {dtype}")
            array = array.view(dtype)
        if list(array.shape) != list(node["shape"]):
            raise ValueError(
                f"{member} has shape {list(array.shape)}, the tree says {node['shape']}"
            )
        return array

    def words(self, node: dict[str, Any]) -> jax.Array:
        array = self.array(node)
        if array.dtype != np.uint32 or array.ndim < 1 or array.shape[-1] != 2:
            raise ValueError(
                f"a generator leaf must be uint32[..., 2], got {array.dtype}{list(array.shape)}"
            )
        return jnp.asarray(array)

    def node(self, node: dict[str, Any]) -> Any:
        tag = node["t"]
        if tag == "generator":
            seed, offset = self.words(node["seed"]), self.words(node["offset"])
            if seed.shape != offset.shape:
                raise ValueError(f"generator seed {seed.shape} and offset {offset.shape} differ")
            return Generator.from_words(seed, offset)
        if tag == "key":
            return jax.random.wrap_key_data(jnp.asarray(self.array(node)), impl=node["impl"])
        if tag == "array":
            array = self.array(node)
            kind = node["kind"]
            if kind == "jax":
                return jnp.asarray(array)
            if kind == "numpy":
                return array
            if kind == "numpy_scalar":
                return array[()]
            raise ValueError(f"unknown array kind {kind!r}")
        if tag == "none":
            return None
        if tag == "bool":
            return _typed(node["v"], bool)
        if tag == "int":
            return _typed(node["v"], int)
        if tag == "float":
            return float.fromhex(_typed(node["v"], str))
        if tag == "str":
            return _typed(node["v"], str)
        if tag in ("list", "tuple"):
            items = [self.node(item) for item in node["items"]]
            return items if tag == "list" else tuple(items)
        if tag == "dict":
            return {self.node(key): self.node(value) for key, value in node["items"]}
        raise ValueError(f"unknown node type {tag!r}")


def _typed(value: Any, kind: type) -> Any:
    if type(value) is not kind:
        raise ValueError(f"expected a {kind.__name__}, got {value!r}")
    return value


# -- writing -------------------------------------------------------------------------------


def _write_archive(file: BinaryIO, meta: dict[str, Any], arrays: list[np.ndarray]) -> None:
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
        # The metadata goes first, so even a cut file is recognisable as a checkpoint.
        archive.writestr(
            zipfile.ZipInfo(_META, _FIXED_TIME), json.dumps(meta, separators=(",", ":"))
        )
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


def save(path: str | os.PathLike[str], tree: Any) -> None:
    """Write ``tree`` to ``path`` atomically: after a crash it holds the old file or the new.

    ``tree`` is any nesting of dicts, lists and tuples whose leaves are generators
    (:class:`Generator`, batched too), JAX or NumPy arrays (any dtype, bfloat16 too), typed
    JAX keys, NumPy scalars, or plain ``None`` / ``bool`` / ``int`` / ``float`` / ``str``;
    a ``capture()`` snapshot is such a tree. The file is written exactly at ``path`` (no
    suffix is added). The data go to a temporary file in the same directory, which is
    flushed, fsynced and renamed over ``path``; then the directory is fsynced, so the rename
    itself survives a power cut.

    Raises ``TypeError`` naming the place of anything it cannot store, before touching disk.

    >>> import os, tempfile, rngstate as rs
    >>> path = os.path.join(tempfile.mkdtemp(), "gens.ckpt")
    >>> save(path, [rs.Generator(1), rs.Generator(2, offset=5)])
    >>> load(path)
    [Generator(seed=1, offset=0), Generator(seed=2, offset=5)]
    """
    path = os.fspath(path)
    encoder = _Encoder()
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "settings": prng_settings(),
        "written_by": _versions(),
        "tree": encoder.node(tree, ""),
    }
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as file:
            if hasattr(os, "fchmod"):  # mkstemp makes 0600; give the file the usual mode
                os.fchmod(file.fileno(), _new_file_mode())
            _write_archive(file, meta, encoder.arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
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
        names = set(archive.namelist())
        if _META not in names:
            raise fail(
                f"not an rngstate checkpoint: no {_META} member (a plain .npz? it holds "
                f"{', '.join(sorted(names)[:5]) or 'nothing'})"
            )
        try:
            meta = json.loads(archive.read(_META).decode("utf-8"))
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
        if not isinstance(meta.get("settings"), dict) or "tree" not in meta:
            raise fail(f"corrupt checkpoint: {_META} lacks settings or tree")
    except BaseException:
        archive.close()
        raise
    return archive, meta


def _read(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    path = os.fspath(path)
    archive, meta = _open(path)
    with archive:
        try:
            tree = _Decoder(archive, set(archive.namelist())).node(meta["tree"])
        except Exception as exc:
            raise CheckpointError(f"{path}: corrupt checkpoint: {exc}") from None
    return tree, meta


def load(path: str | os.PathLike[str]) -> Any:
    """Read a tree written by :func:`save`, with every generator, array and value as saved.

    JAX arrays come back as JAX arrays (on the default device), NumPy arrays as NumPy ones.
    Raises :class:`CheckpointError`, naming the file and the problem, for a truncated,
    corrupt, foreign or newer-format file. Warns (:class:`CheckpointSettingsWarning`) when
    the file was written under a different PRNG implementation or
    ``jax_threefry_partitionable``: generators then resume at the same seed and offset but
    draw different values.

    >>> import os, tempfile, rngstate as rs
    >>> path = os.path.join(tempfile.mkdtemp(), "g.ckpt")
    >>> save(path, {"gen": rs.Generator(seed=2**63)})
    >>> load(path)["gen"].initial_seed() == 2**63
    True
    """
    tree, meta = _read(path)
    recorded, running = meta["settings"], prng_settings()
    differ = [
        f"{k}={recorded.get(k)!r} (now {v!r})" for k, v in running.items() if recorded.get(k) != v
    ]
    if differ:
        warnings.warn(
            f"{os.fspath(path)} was written with {', '.join(differ)}: the generators resume "
            "at their saved seeds and offsets but will draw different values than the run "
            "that saved them",
            CheckpointSettingsWarning,
            stacklevel=2,
        )
    return tree


# -- describing a checkpoint (`rngstate inspect`) ------------------------------------------


def _words_to_ints(words: jax.Array) -> Any:
    flat = np.asarray(words).reshape(-1, 2)
    numbers = np.array([_u64.from_words(w) for w in flat], dtype=object)
    return numbers.reshape(words.shape[:-1]).tolist()


def _leaves(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Each leaf with its place, written as jax.tree_util.keystr writes key paths."""
    if type(value) is dict:
        for key, child in value.items():
            yield from _leaves(child, f"{where}[{key!r}]")
    elif type(value) in (list, tuple):
        for i, child in enumerate(value):
            yield from _leaves(child, f"{where}[{i}]")
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


def summary(path: str | os.PathLike[str]) -> dict[str, Any]:
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
    tree, meta = _read(path)
    running = prng_settings()
    return {
        "path": os.fspath(path),
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
    checkpoint  .../g.ckpt (... bytes, format version 1)
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
