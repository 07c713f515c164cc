"""The schema of a checkpoint's metadata: what :func:`rngstate.save` writes, and nothing else.

A checkpoint's ``rngstate.json`` is checked against this schema before any array is read, so a
hand-edited file cannot make :func:`rngstate.load` read different data than was saved: every
node has exactly the fields of its type, each with the type ``save`` writes; array references
are plain ints ``0, 1, ..., n-1`` in tree order, each used once; dtypes are only those ``save``
writes; kinds agree with their payload. Problems raise :class:`SchemaError` with the place in
the tree, which the caller turns into a ``CheckpointError`` naming the file.
"""

from __future__ import annotations

import math
import re
from typing import Any

import jax.numpy as jnp
import numpy as np

from rngstate import _checks

DIGEST = "blake2b"
"""The field holding a BLAKE2b content hash (hex, 32 bytes), from format version 2 on."""

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")

MAX_DEPTH = 100
"""How deeply a checkpoint's tree may nest: the nodes from the root to a leaf, both counted
(and, apart, the levels of a tuple dict key).

``save`` refuses deeper trees with a ``TypeError`` and ``load`` refuses them as corrupt:
reading and checking a tree walks it recursively, and far past any real model's nesting a
tree would meet Python's recursion limit instead of a clear error."""


def too_deep(depth: int) -> str | None:
    """The problem with a node at nesting ``depth`` (the root is 1), or None if it may be.

    >>> too_deep(MAX_DEPTH) is None, too_deep(MAX_DEPTH + 1) is None
    (True, False)
    """
    if depth <= MAX_DEPTH:
        return None
    return f"nested more than {MAX_DEPTH} levels deep (MAX_DEPTH): flatten or split the tree"


def nan_key(key: Any) -> bool:
    """Whether a dict key is, or holds, a float NaN: a key equal to no key, not even itself.

    A dict can hold several NaN keys that all print as ``nan``, and no lookup finds one, so
    a loaded dict could not be matched against a target: ``save`` refuses them.

    >>> nan_key(float("nan")), nan_key(("a", float("nan"))), nan_key(1.5)
    (True, True, False)
    """
    if type(key) is float:
        return math.isnan(key)
    return type(key) is tuple and any(nan_key(k) for k in key)


class SchemaError(ValueError):
    """Metadata that ``save`` never writes; ``where`` is the place in the tree (keystr style)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"at {where or 'the root'}: {problem}")
        self.where = where


def storable_dtype(dtype: np.dtype) -> bool:
    """Whether a checkpoint stores arrays of ``dtype``: native numbers, bools and ML dtypes.

    >>> storable_dtype(np.dtype("float32")), storable_dtype(np.dtype(object))
    (True, False)
    """
    if not dtype.isnative:
        return False
    if dtype.isbuiltin == 1:
        return dtype.kind in "biufc"
    return dtype.type.__module__ == "ml_dtypes"  # bfloat16, float8_*, int4, ...


def stored_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype of the ``.npy`` member: the dtype itself, or raw bits for ML dtypes.

    ``.npy`` headers cannot name bfloat16 and its kin, so their bits are stored as unsigned
    integers of the same width.

    >>> stored_dtype(jnp.dtype("bfloat16")), stored_dtype(np.dtype("int8"))
    (dtype('uint16'), dtype('int8'))
    """
    return dtype if dtype.isbuiltin == 1 else np.dtype(f"u{dtype.itemsize}")


def dtype_from_name(name: Any, where: str) -> np.dtype:
    """The dtype a node's ``dtype`` field names, if ``save`` could have written it."""
    if type(name) is not str:
        raise SchemaError(where, f"dtype must be a string, got {name!r}")
    try:
        dtype = jnp.dtype(name)
    except TypeError:
        raise SchemaError(where, f"unknown dtype {name!r}") from None
    if str(dtype) != name or not storable_dtype(dtype):
        raise SchemaError(where, f"dtype {name!r} is not one that save() writes")
    return dtype


def _fields(node: Any, where: str, required: set[str], optional: frozenset = frozenset()):
    if type(node) is not dict:
        raise SchemaError(where, f"a node must be a JSON object, got {type(node).__name__}")
    keys = set(node)
    missing, extra = required - keys, keys - required - optional
    if missing or extra:
        parts = [f"missing {sorted(missing)}"] if missing else []
        parts += [f"unexpected {sorted(extra)}"] if extra else []
        detail = ", ".join(parts)
        raise SchemaError(where, f"{node.get('t', 'array')!r} node has wrong fields: {detail}")


def _plain(value: Any, kind: type, where: str, what: str) -> Any:
    if type(value) is not kind:
        raise SchemaError(where, f"{what} must be a {kind.__name__}, got {value!r}")
    return value


def _entry_text(entry: dict[str, Any], key: Any = None) -> str:
    """An entry of a registered node, written as jax.tree_util.keystr writes it."""
    kind = entry["k"]
    if kind == "dict":
        return f"[{key!r}]"
    if kind == "attr":
        return f".{entry['name']}"
    if kind == "index":
        return f"[{entry['idx']}]"
    return f"[<flat index {entry['idx']}>]"


class Checker:
    """Walks a tree of nodes once, checking each; collects the array nodes in tree order."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.arrays: list[tuple[str, dict[str, Any]]] = []
        self.depth = 0

    def tree(self, node: Any) -> list[tuple[str, dict[str, Any]]]:
        self.node(node, "")
        return self.arrays

    def array(self, node: Any, where: str) -> None:
        """The fields every array has: its member's ref, dtype, shape (and hash, from v2)."""
        hashed = {DIGEST} if self.version >= 2 else set()
        _fields(node, where, {"ref", "dtype", "shape"} | hashed)
        ref = node["ref"]
        if type(ref) is not int:
            raise SchemaError(where, f"ref must be a plain int, got {ref!r}")
        if ref != len(self.arrays):
            raise SchemaError(
                where,
                f"ref {ref} out of order: refs run 0, 1, 2, ... in tree order, each used once "
                f"(expected {len(self.arrays)})",
            )
        dtype_from_name(node["dtype"], where)
        shape = node["shape"]
        if type(shape) is not list or any(type(n) is not int or n < 0 for n in shape):
            raise SchemaError(where, f"shape must be a list of ints >= 0, got {shape!r}")
        try:  # the samplers' own bound: past it XLA hangs or aborts building the array
            _checks.shape(tuple(shape))
        except ValueError as exc:
            raise SchemaError(where, str(exc)) from None
        if hashed and (type(node[DIGEST]) is not str or not _HEX_DIGEST.fullmatch(node[DIGEST])):
            raise SchemaError(where, f"{DIGEST} must be 64 hex digits, got {node[DIGEST]!r}")
        self.arrays.append((where, node))

    def node(self, node: Any, where: str) -> None:
        self.depth += 1
        try:
            problem = too_deep(self.depth)
            if problem:
                raise SchemaError(where, f"the tree is {problem}")
            self.check(node, where)
        finally:
            self.depth -= 1

    def check(self, node: Any, where: str) -> None:
        if type(node) is not dict or "t" not in node:
            raise SchemaError(where, "a node must be a JSON object with a type field 't'")
        tag = node["t"]
        if tag == "generator":
            _fields(node, where, {"t", "seed", "offset"})
            for leaf in ("seed", "offset"):
                self.array(node[leaf], f"{where}.{leaf}")
                spec = node[leaf]
                if spec["dtype"] != "uint32" or not spec["shape"] or spec["shape"][-1] != 2:
                    raise SchemaError(
                        f"{where}.{leaf}", "a generator leaf must be uint32[..., 2]"
                    )
            if node["seed"]["shape"] != node["offset"]["shape"]:
                raise SchemaError(where, "generator seed and offset shapes differ")
        elif tag == "key":
            self.array({k: v for k, v in node.items() if k not in ("t", "impl")}, where)
            _fields(node, where, {"t", "impl", "ref", "dtype", "shape"}, frozenset({DIGEST}))
            _plain(node["impl"], str, where, "impl")
        elif tag == "array":
            kind = node.get("kind")
            self.array({k: v for k, v in node.items() if k not in ("t", "kind")}, where)
            _fields(node, where, {"t", "kind", "ref", "dtype", "shape"}, frozenset({DIGEST}))
            if kind not in ("jax", "numpy", "numpy_scalar"):
                raise SchemaError(where, f"unknown array kind {kind!r}")
            if kind == "numpy_scalar" and node["shape"] != []:
                raise SchemaError(where, f"a numpy_scalar has shape [], not {node['shape']}")
        elif tag == "none":
            _fields(node, where, {"t"})
        elif tag in ("bool", "int", "str"):
            _fields(node, where, {"t", "v"})
            _plain(node["v"], {"bool": bool, "int": int, "str": str}[tag], where, "v")
        elif tag == "float":
            _fields(node, where, {"t", "v"})
            _hex_float(node["v"], where)
        elif tag in ("list", "tuple"):
            _fields(node, where, {"t", "items"})
            items = node["items"]
            if type(items) is not list:
                raise SchemaError(where, f"{tag} items must be a JSON list, got {items!r}")
            for i, item in enumerate(items):
                self.node(item, f"{where}[{i}]")
        elif tag == "dict":
            _fields(node, where, {"t", "items"})
            self.pairs(node["items"], where, "dict")
        elif tag == "node" and self.version >= 2:
            _fields(node, where, {"t", "type", "items"})
            _plain(node["type"], str, where, "type")
            self.pairs(node["items"], where, "node")
        else:
            raise SchemaError(where, f"unknown node type {tag!r}")

    def pairs(self, items: Any, where: str, tag: str) -> None:
        if type(items) is not list:
            raise SchemaError(where, f"{tag} items must be a JSON list of pairs, got {items!r}")
        seen: set[Any] = set()
        for item in items:
            if type(item) is not list or len(item) != 2:
                raise SchemaError(where, f"{tag} items must be [key, value] pairs, got {item!r}")
            head, child = item
            key = self.key(head, where) if tag == "dict" else self.entry(head, where)
            text = f"[{key!r}]" if tag == "dict" else _entry_text(head, key[1])
            if key in seen:
                raise SchemaError(where, f"key {text} appears twice")
            seen.add(key)
            self.node(child, where + text)

    def key(self, node: Any, where: str) -> Any:
        """A dict key: a hashable plain value (None, bool, int, float, str, tuples of them)."""
        return plain_key(node, where)

    def entry(self, entry: Any, where: str) -> Any:
        kinds = {"dict": "key", "attr": "name", "index": "idx", "flat": "idx"}
        if type(entry) is not dict or entry.get("k") not in kinds:
            raise SchemaError(where, f"a node entry must be a key entry, got {entry!r}")
        field = kinds[entry["k"]]
        _fields(entry, where, {"k", field})
        if entry["k"] == "dict":
            return ("dict", self.key(entry["key"], where))
        value = entry[field]
        if field == "name":
            return ("attr", _plain(value, str, where, "an attribute name"))
        if type(value) is not int or value < 0:
            raise SchemaError(where, f"an index must be an int >= 0, got {value!r}")
        return (entry["k"], value)


def _hex_float(text: Any, where: str) -> float:
    """A float as ``save`` writes it: ``float.hex()``, exact and in its one spelling."""
    try:
        value = float.fromhex(_plain(text, str, where, "v"))
    except ValueError:
        value = None
    if value is None or value.hex() != text:
        raise SchemaError(where, f"not a float as save() writes it (float.hex()): {text!r}")
    return value


def plain_key(node: Any, where: str, depth: int = 1) -> Any:
    """The value of a dict key node: None, bool, int, float, str, or a tuple of them."""
    problem = too_deep(depth)
    if problem:
        raise SchemaError(where, f"a dict key is {problem}")
    tag = node.get("t") if type(node) is dict else None
    if tag == "none":
        _fields(node, where, {"t"})
        return None
    if tag in ("bool", "int", "str", "float"):
        _fields(node, where, {"t", "v"})
        if tag == "float":
            value = _hex_float(node["v"], where)
            if math.isnan(value):
                raise SchemaError(where, "a NaN dict key, which save() refuses")
            return value
        return _plain(node["v"], {"bool": bool, "int": int, "str": str}[tag], where, "v")
    if tag == "tuple":
        _fields(node, where, {"t", "items"})
        if type(node["items"]) is not list:
            raise SchemaError(where, "tuple items must be a JSON list")
        return tuple(plain_key(item, where, depth + 1) for item in node["items"])
    raise SchemaError(where, f"a dict key must be a plain hashable value, got {node!r}")


def check_meta(meta: Any, version: int) -> None:
    """The fields around the tree: types only (the tree is checked by :class:`Checker`)."""
    fields = {"format", "version", "settings", "written_by", "tree"}
    if version >= 2:
        fields.add(DIGEST)
    missing, extra = fields - set(meta), set(meta) - fields
    if missing or extra:
        parts = [f"missing {sorted(missing)}"] if missing else []
        parts += [f"unexpected {sorted(extra)}"] if extra else []
        raise SchemaError("", f"rngstate.json has wrong fields: {', '.join(parts)}")
    for name, kinds in (("settings", (str, bool)), ("written_by", (str,))):
        value = meta[name]
        if type(value) is not dict or not all(
            type(k) is str and type(v) in kinds for k, v in value.items()
        ):
            raise SchemaError("", f"{name} must map names to {'/'.join(k.__name__ for k in kinds)}")
    if version >= 2 and (type(meta[DIGEST]) is not str or not _HEX_DIGEST.fullmatch(meta[DIGEST])):
        raise SchemaError("", f"{DIGEST} must be 64 hex digits")
