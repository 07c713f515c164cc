"""An adversarial run against rngstate, bounded in time, that prints its figures.

    python tests/adversarial/run_adversarial.py --seconds 60 --seed 1

Five parts, each given its share of ``--seconds`` (and stopped at its own count limit):

checkpoints   mutated checkpoints, both hashes recomputed (a file ``save`` could have
              written but for the edit): each must load what was saved or raise
              ``CheckpointError``; a hang (a load past ``--hang-seconds``) ends the run.
scalars       saved Python ints and floats loaded into scalar targets of every float and
              int dtype (JAX and NumPy): each must come back as the same number or be
              refused; a rounded, overflowed or wrapped value is a silent change.
api           random calls of ``rngstate.random`` ops against ``jax.random`` with the same
              arguments (shapes, sizes and flags as ints, NumPy or JAX 0-d arrays): equal
              values, or both raise; rngstate raising where JAX works, or different values,
              is a failure.
threads+fork  threads drawing from the process-wide state (default stream and an op-seed
              stream) while the main thread forks children that seed themselves
              (``manual_seed``, ``set_seed``, ``seed_worker``); every child must finish,
              and the offsets must count every draw once.
reuse         random programs of ``lax.switch``es whose branches draw and return generators
              advanced by random steps, and draws between: ``check_reuse``'s verdict
              (its check alone, not the run) against the truth, found by enumerating every
              combination of branches.

Exit status 1 if anything failed. Nothing here reads outside the repository.
"""

from __future__ import annotations

import argparse
import faulthandler
import hashlib
import io
import itertools
import json
import os
import random
import sys
import tempfile
import threading
import time
import warnings
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

import rngstate as rs
from rngstate.checkpoint import CheckpointError

META = "rngstate.json"


def meta_hash(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "blake2b"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=32).hexdigest()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def leaves_equal(a, b) -> bool:
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    if ta != tb:
        return False
    for x, y in zip(la, lb, strict=True):
        if type(x) is not type(y):
            return False
        if isinstance(x, (jax.Array, np.ndarray, np.generic)):
            if x.dtype != y.dtype or np.shape(x) != np.shape(y):
                return False
            if np.asarray(x).tobytes() != np.asarray(y).tobytes():
                return False
        elif not (x == y or (x != x and y != y)):
            return False
    return True


# -- checkpoints -------------------------------------------------------------------------------


def the_tree():
    return {
        "gen": rs.Generator(5, offset=6),
        "batch": rs.Generator(seed=np.arange(4, dtype=np.uint32).reshape(2, 2), offset=1),
        "w": jnp.arange(6.0).reshape(2, 3),
        "e": jnp.zeros((0, 3)),
        "b": np.arange(3, dtype=np.int8),
        "s": np.float32(1.5),
        "plain": [1, 2.5, "x", None, True, (3, 4)],
        "nested": {"a": {"b": [jnp.ones(2)]}},
    }


def _nodes(node, found):
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            _nodes(value, found)
    elif isinstance(node, list):
        for value in node:
            _nodes(value, found)


_WEIRD = [0, 1, -1, 2**31, 2**62, 2**64, 0.5, "x", "", None, True, [], {}, [0], [2**30, 2**30, 0],
          [2**54, 0], [0, 2**27, 2**27], "float16", "bfloat16", "uint32", "int64", "object"]


def mutate(meta: dict, rng: random.Random) -> tuple[dict, dict[str, bytes]]:
    """One edit of the metadata (and, for shape edits, a member that agrees with it)."""
    nodes: list[dict] = []
    _nodes(meta["tree"], nodes)
    node = rng.choice(nodes)
    members: dict[str, bytes] = {}
    kind = rng.randrange(6)
    if kind == 0 and "shape" in node:  # a shape the member agrees with: the hang of issue 3
        shape = rng.choice([[2**30, 2**30, 0], [2**54, 0], [0, 2**27, 2**27], [2**26, 2**26, 0],
                            [0], [1, 0, 7]])
        member = npy(np.empty(shape, np.dtype(node["dtype"]) if node["dtype"] in (
            "float32", "int8", "uint32") else np.float32))
        node["shape"], node["dtype"] = shape, str(np.load(io.BytesIO(member)).dtype)
        node["blake2b"] = hashlib.blake2b(member, digest_size=32).hexdigest()
        members[f"arrays/{node['ref']}.npy"] = member
    elif kind == 1 and node:  # a field's value replaced
        field = rng.choice(sorted(node))
        node[field] = rng.choice(_WEIRD)
    elif kind == 2 and node:  # a field removed
        node.pop(rng.choice(sorted(node)))
    elif kind == 3:  # a field added
        node[rng.choice(["t", "v", "items", "ref", "x", "kind"])] = rng.choice(_WEIRD)
    elif kind == 4 and isinstance(node.get("items"), list) and node["items"]:
        items = node["items"]  # reorder, drop or repeat an item
        action = rng.randrange(3)
        if action == 0:
            rng.shuffle(items)
        elif action == 1:
            items.pop(rng.randrange(len(items)))
        else:
            items.append(items[rng.randrange(len(items))])
    else:  # deepen: wrap a node in lists
        for _ in range(rng.choice([1, 50, 120])):
            node_copy = dict(node)
            node.clear()
            node.update({"t": "list", "items": [node_copy]})
    meta["blake2b"] = meta_hash(meta)
    return meta, members


def save_writes(loaded, meta: dict, folder: str) -> bool:
    """Whether ``save`` of what was loaded writes the edited tree: then the edit made a file
    ``save`` could have written (a reordered dict, a dropped list item), not a misread."""
    path = os.path.join(folder, "again.ckpt")
    rs.save(path, loaded)
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(META))["tree"] == meta["tree"]


def run_checkpoints(budget: float, limit: int, rng: random.Random, folder: str) -> dict:
    good = os.path.join(folder, "good.ckpt")
    tree = the_tree()
    rs.save(good, tree)
    expected = rs.load(good)
    with zipfile.ZipFile(good) as archive:
        original = {name: archive.read(name) for name in archive.namelist()}
    counts = {"files": 0, "loaded the original": 0, "refused (CheckpointError)": 0,
              "loaded other data, as saved": 0, "loaded different data": 0,
              "other exception": 0}
    end = time.monotonic() + budget
    while time.monotonic() < end and counts["files"] < limit:
        meta, members = mutate(json.loads(original[META]), rng)
        path = os.path.join(folder, f"m{counts['files'] % 8}.ckpt")
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in original.items():
                data = json.dumps(meta).encode() if name == META else members.get(name, data)
                archive.writestr(name, data)
        counts["files"] += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loaded = rs.load(path)
        except CheckpointError:
            counts["refused (CheckpointError)"] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - every other kind is a finding
            counts["other exception"] += 1
            print(f"  checkpoints: {type(exc).__name__}: {exc}"[:300], file=sys.stderr)
            continue
        if leaves_equal(loaded, expected):
            counts["loaded the original"] += 1
        elif save_writes(loaded, meta, folder):
            counts["loaded other data, as saved"] += 1
        else:
            counts["loaded different data"] += 1
            print(f"  checkpoints: misread {json.dumps(meta['tree'])[:300]}", file=sys.stderr)
    counts["failed"] = counts["loaded different data"] + counts["other exception"]
    return counts


# -- scalars -----------------------------------------------------------------------------------


_SCALAR_DTYPES = ["float16", "bfloat16", "float32", "int8", "uint8", "int32", "uint32",
                  "complex64"]


def random_scalar(rng: random.Random):
    pick = rng.randrange(6)
    if pick == 0:
        return rng.randrange(-(2**70), 2**70) >> rng.randrange(70)
    if pick == 1:
        return rng.choice([16777217, 2049, 257, 65504, 65520, 2**24, 2**127, -(2**31) - 1])
    if pick == 2:
        return rng.uniform(-1, 1) * 10.0 ** rng.randrange(-10, 40)
    if pick == 3:
        return rng.choice([0.1, 1e10, 0.5, -0.0, float("inf"), float("-inf"), float("nan"),
                           65504.0, 1 / 3, 2.0**-24, 2.0**-25, 3.0e38])
    if pick == 4:
        return float(np.float16(rng.uniform(-100, 100)))  # exact in float16
    return rng.randrange(-300, 300)


def run_scalars(budget: float, limit: int, rng: random.Random, folder: str) -> dict:
    counts = {"loads": 0, "came back exactly": 0, "refused": 0, "silently changed": 0}
    path = os.path.join(folder, "s.ckpt")
    end = time.monotonic() + budget
    while time.monotonic() < end and counts["loads"] < limit:
        value = random_scalar(rng)
        dtype = jnp.dtype(rng.choice(_SCALAR_DTYPES))
        target = (jax.ShapeDtypeStruct((), dtype) if rng.random() < 0.5
                  else np.asarray(0, dtype) if rng.random() < 0.5 else np.zeros((), dtype)[()])
        rs.save(path, {"y": value})
        counts["loads"] += 1
        try:
            got = rs.load(path, target={"y": target})["y"]
        except CheckpointError:
            counts["refused"] += 1
            continue
        wide = np.complex128 if jnp.issubdtype(dtype, jnp.complexfloating) else (
            np.float64 if jnp.issubdtype(dtype, jnp.floating) else object)
        back = np.asarray(got).astype(wide).item() if wide is not object else int(got)
        if back == value or (back != back and value != value):
            counts["came back exactly"] += 1
        else:
            counts["silently changed"] += 1
            print(f"  scalars: {value!r} -> {dtype} gave {back!r}", file=sys.stderr)
    counts["failed"] = counts["silently changed"]
    return counts


# -- the API against jax.random ----------------------------------------------------------------


def static(rng: random.Random, n: int, kind: str = "int"):
    """``n`` as an int, a NumPy scalar, or a 0-d NumPy or JAX array."""
    form = rng.randrange(4)
    if kind == "bool":
        n = bool(n)
        return [n, np.bool_(n), np.array(n), jnp.array(n)][form]
    return [n, np.int32(n), np.array(n), jnp.array(n, jnp.int32)][form]


def random_call(rng: random.Random):
    op = rng.choice(["permutation", "choice", "ball", "orthogonal", "categorical", "normal",
                     "uniform", "randint", "bernoulli"])
    if op == "permutation":
        if rng.random() < 0.5:
            return op, (static(rng, rng.randrange(0, 9)),), {}
        x = np.arange(12).reshape(3, 4)
        return op, (x,), {"axis": static(rng, rng.randrange(-2, 2)),
                          "independent": static(rng, rng.randrange(2), "bool")}
    if op == "choice":
        n = rng.randrange(1, 8)
        k = rng.randrange(0, n + 1)
        return op, (static(rng, n), (k,)), {"replace": static(rng, rng.randrange(2), "bool")}
    if op == "ball":
        return op, (static(rng, rng.randrange(1, 5)),), {"shape": (rng.randrange(0, 4),)}
    if op == "orthogonal":
        kwargs = {"m": static(rng, rng.randrange(1, 4))} if rng.random() < 0.5 else {}
        return op, (static(rng, rng.randrange(1, 4)),), kwargs
    if op == "categorical":
        return op, (jnp.zeros((2, 3)),), {"axis": static(rng, rng.randrange(-2, 2))}
    if op == "randint":
        return op, ((rng.randrange(0, 4),), 0, static(rng, rng.randrange(1, 100))), {}
    if op == "bernoulli":
        return op, (rng.random(), (rng.randrange(0, 4),)), {}
    shape = tuple(rng.randrange(0, 3) for _ in range(rng.randrange(0, 3)))
    return op, (rng.choice([shape, list(shape), np.array(shape, np.int64)]),), {}


def jitted(op: str, args: tuple, kwargs: dict, key):
    return jax.jit(lambda k: getattr(jax.random, op)(k, *args, **kwargs))(key)


def same(a, b) -> bool:
    return (a.dtype == b.dtype and a.shape == b.shape
            and np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))


def run_api(budget: float, limit: int, rng: random.Random) -> dict:
    counts = {"calls": 0, "same values": 0, "same as jitted jax.random, not eager": 0,
              "both raised": 0, "rngstate raised, jax did not": 0,
              "jax raised, rngstate did not": 0, "different values": 0}
    ops = set()
    end = time.monotonic() + budget
    while time.monotonic() < end and counts["calls"] < limit:
        op, args, kwargs = random_call(rng)
        ops.add(op)
        gen = rs.Generator(rng.randrange(2**64), offset=rng.randrange(2**64))
        counts["calls"] += 1
        try:
            expected = getattr(jax.random, op)(gen.key(), *args, **kwargs)
        except Exception:  # noqa: BLE001
            expected = None
        try:
            got, after = getattr(rs.random, op)(gen, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            if expected is None:
                counts["both raised"] += 1
            else:
                counts["rngstate raised, jax did not"] += 1
                print(f"  api: {op}{args}{kwargs}: {type(exc).__name__}: {exc}"[:300],
                      file=sys.stderr)
            continue
        if expected is None:
            counts["jax raised, rngstate did not"] += 1
        elif same(got, expected) and after == gen.construct(1):
            counts["same values"] += 1
        elif same(got, jitted(op, args, kwargs, gen.key())):
            # JAX's own eager run rounds differently from its jitted one (ball: 1 ulp);
            # rngstate's ops are jitted and equal jax.random's jitted values.
            counts["same as jitted jax.random, not eager"] += 1
        else:
            counts["different values"] += 1
            print(f"  api: {op}{args}{kwargs}: values differ", file=sys.stderr)
    counts["ops"] = len(ops)
    counts["failed"] = (counts["rngstate raised, jax did not"] + counts["different values"]
                        + counts["jax raised, rngstate did not"])
    return counts


# -- threads and fork --------------------------------------------------------------------------


def run_threads_and_fork(budget: float, limit: int, threads: int, hang: float) -> dict:
    counts = {"threads": threads, "draws": 0, "children forked": 0, "children finished": 0,
              "children hung": 0, "children failed": 0, "offsets lost or repeated": 0}
    if not hasattr(os, "fork"):
        counts["failed"] = 0
        counts["skipped"] = "no os.fork on this platform"
        return counts
    rs.manual_seed(1)
    rs.set_seed(1)
    rs.manual_seed(1)
    rs.ops.uniform(())  # compiled before the threads start
    rs.ops.uniform((), seed=9)
    start = rs.default_generator().offset
    stop = threading.Event()
    drawn = [0] * threads
    streamed = [0] * threads

    def draw(i: int) -> None:
        while not stop.is_set():
            rs.ops.uniform(())
            drawn[i] += 1
            rs.ops.uniform((), seed=9)
            streamed[i] += 1

    workers = [threading.Thread(target=draw, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    end = time.monotonic() + budget
    try:
        while time.monotonic() < end and counts["children forked"] < limit:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pid = os.fork()
            if pid == 0:
                try:
                    rs.manual_seed(5)
                    rs.set_seed(6)
                    ok = rs.seed_worker(7, 0, 1) == rs.get_seed()
                    os._exit(0 if ok else 1)
                finally:
                    os._exit(2)
            counts["children forked"] += 1
            deadline = time.monotonic() + hang
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    code = os.waitstatus_to_exitcode(status)
                    counts["children finished" if code == 0 else "children failed"] += 1
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    counts["children hung"] += 1
                    break
                time.sleep(0.005)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    counts["draws"] = sum(drawn) + sum(streamed)
    from rngstate import _u64

    moved = _u64.from_words(rs.default_generator().offset) - _u64.from_words(start)
    if moved != sum(drawn):
        counts["offsets lost or repeated"] = abs(moved - sum(drawn))
    counts["failed"] = (counts["children hung"] + counts["children failed"]
                        + counts["offsets lost or repeated"])
    return counts


# -- reuse across conds ------------------------------------------------------------------------


def random_program(rng: random.Random) -> list:
    """Steps: ("draw",) from the running generator, or ("cond", branches), each branch a
    (draws, returned advance) pair: it draws at offsets 0..draws-1 from its input and
    returns its input advanced by `advance`."""
    steps = []
    for _ in range(rng.randrange(1, 4)):
        if rng.random() < 0.6:
            branches = [(rng.randrange(0, 3), rng.randrange(0, 3)) for _ in range(
                rng.choice([2, 2, 3]))]
            steps.append(("cond", branches))
        else:
            steps.append(("draw",))
    return steps


def truth(steps: list) -> bool:
    """Whether some choice of branches makes two draws share an offset."""
    conds = [s[1] for s in steps if s[0] == "cond"]
    for choice in itertools.product(*(range(len(b)) for b in conds)):
        offset, seen, picks = 0, [], iter(choice)
        for step in steps:
            if step[0] == "draw":
                seen.append(offset)
                offset += 1
            else:
                draws, advance = step[1][next(picks)]
                seen.extend(offset + d for d in range(draws))
                offset += advance
        if len(seen) != len(set(seen)):
            return True
    return False


def as_function(steps: list):
    def branch(draws: int, advance: int):
        def run(g):
            total = jnp.zeros(())
            for d in range(draws):
                total = total + g.construct(d).normal(())[0]
            return total, g.construct(advance)

        return run

    def f(g, *indices):
        total, picks = jnp.zeros(()), iter(indices)
        for step in steps:
            if step[0] == "draw":
                x, g = g.normal(())
                total = total + x
            else:
                x, g = jax.lax.switch(next(picks), [branch(*b) for b in step[1]], g)
                total = total + x
        return total

    return f


def run_reuse(budget: float, limit: int, rng: random.Random) -> dict:
    counts = {"programs": 0, "with a reuse": 0, "reported": 0, "missed": 0, "false alarms": 0}
    end = time.monotonic() + budget
    while time.monotonic() < end and counts["programs"] < limit:
        steps = random_program(rng)
        real = truth(steps)
        n_conds = sum(s[0] == "cond" for s in steps)
        try:  # the check alone: check_reuse would also compile and run each program
            rs.reuse._check(as_function(steps), (rs.Generator(3), *[jnp.int32(0)] * n_conds), {})
            found = False
        except rs.GeneratorReuseError:
            found = True
        counts["programs"] += 1
        counts["with a reuse"] += real
        if real and found:
            counts["reported"] += 1
        elif real:
            counts["missed"] += 1
            print(f"  reuse missed: {steps}", file=sys.stderr)
        elif found:
            counts["false alarms"] += 1
            print(f"  reuse false alarm: {steps}", file=sys.stderr)
    counts["failed"] = counts["missed"] + counts["false alarms"]
    return counts


PARTS = ("checkpoints", "scalars", "api", "reuse", "threads+fork")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="the whole run's budget")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=10_000, help="most cases of each part")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--hang-seconds", type=float, default=20.0)
    parser.add_argument("--parts", default=",".join(PARTS), help="a comma-separated subset")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; the parts are {', '.join(PARTS)}")
    rng = random.Random(args.seed)
    share = args.seconds / len(parts)
    # A hang must end the run with a traceback, not keep it waiting.
    faulthandler.dump_traceback_later(args.seconds * 3 + 120, exit=True, file=sys.__stderr__)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        runs = {
            "checkpoints": lambda: run_checkpoints(share, args.limit, rng, folder),
            "scalars": lambda: run_scalars(share, args.limit, rng, folder),
            "api": lambda: run_api(share, args.limit, rng),
            "reuse": lambda: run_reuse(share, args.limit, rng),
            "threads+fork": lambda: run_threads_and_fork(
                share, args.limit, args.threads, args.hang_seconds
            ),
        }
        for part in parts:
            results[part] = runs[part]()
    faulthandler.cancel_dump_traceback_later()
    print(f"adversarial run: seed {args.seed}, {args.seconds:g} s, "
          f"jax {jax.__version__}, rngstate {rs.__version__}")
    for part, counts in results.items():
        print(f"{part:13s} " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    failed = sum(c["failed"] for c in results.values())
    print("FAILED" if failed else "no failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
