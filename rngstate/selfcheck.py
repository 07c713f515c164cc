"""Self-checks and the environment report behind ``rngstate doctor``.

A check is a function registered under a name: it returns a short detail when it passes
and raises (an ``AssertionError`` saying what differs) when it fails. Adding one is one
decorator line above the function::

    @register("golden values")
    def _golden() -> str: ...

>>> [r.passed for r in run_checks(["threefry2x32-20 known answers"])]
[True]
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np

from rngstate import _partitionable

__all__ = [
    "CheckResult",
    "CHECKS",
    "environment",
    "format_report",
    "known_answers",
    "register",
    "run_checks",
]

Check = Callable[[], str]
CHECKS: dict[str, Check] = {}
"""The registered checks, by name, in the order they run."""


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: its name, PASS or FAIL, and a one-line detail."""

    name: str
    passed: bool
    detail: str


def register(name: str) -> Callable[[Check], Check]:
    """Register a check under ``name`` (a decorator); names are unique.

    >>> @register("doc example")
    ... def _example() -> str:
    ...     return "fine"
    >>> run_checks(["doc example"])
    [CheckResult(name='doc example', passed=True, detail='fine')]
    >>> del CHECKS["doc example"]
    """

    def add(check: Check) -> Check:
        if name in CHECKS:
            raise ValueError(f"a check named {name!r} is already registered")
        CHECKS[name] = check
        return check

    return add


def run_checks(names: Iterable[str] | None = None) -> list[CheckResult]:
    """Run the named checks (all by default); a check that raises is a FAIL with the reason.

    >>> results = run_checks()
    >>> all(r.passed for r in results), len(results) >= 5
    (True, True)
    """
    results = []
    for name in CHECKS if names is None else names:
        try:
            with _partitionable.internal_draws():  # the checks' draws are not the user's
                detail = CHECKS[name]()
            results.append(CheckResult(name, True, detail))
        except Exception as exc:  # a check's failure is a result, not a crash of the report
            where = traceback.extract_tb(exc.__traceback__)[-1]
            reason = str(exc) or f"{type(exc).__name__} at line {where.lineno}"
            results.append(CheckResult(name, False, reason))
    return results


# -- the environment -----------------------------------------------------------------------

_DETERMINISM_FLAGS = ("--xla_gpu_deterministic_ops", "--xla_gpu_exclude_nondeterministic_ops")


def _flag_state(xla_flags: str, flag: str) -> str:
    state = "off"
    for token in xla_flags.split():  # the last setting wins, as in XLA
        name, _, value = token.partition("=")
        if name == flag:
            state = "on" if value.lower() in ("", "true", "1") else "off"
    return state


def environment() -> list[tuple[str, str]]:
    """What the values drawn on this machine depend on, as ``(name, value)`` rows.

    >>> dict(environment())["jax_threefry_partitionable"] in ("True", "False")
    True
    """
    import jaxlib

    from rngstate import __version__

    devices = jax.devices()
    kinds = sorted({d.device_kind for d in devices})
    xla_flags = os.environ.get("XLA_FLAGS", "")
    determinism = [
        f"{flag.lstrip('-')}={_flag_state(xla_flags, flag)}" for flag in _DETERMINISM_FLAGS
    ]
    return [
        (
            "python",
            f"{platform.python_version()} ({platform.python_implementation()}, "
            f"{platform.system()} {platform.machine()})",
        ),
        ("rngstate", __version__),
        ("jax", jax.__version__),
        ("jaxlib", jaxlib.__version__),
        ("numpy", np.__version__),
        ("backend", jax.default_backend()),
        (
            "devices",
            f"{len(devices)} x {', '.join(kinds)} (process {jax.process_index()} "
            f"of {jax.process_count()})",
        ),
        ("jax_enable_x64", str(bool(jax.config.jax_enable_x64))),
        ("jax_default_prng_impl", str(jax.config.jax_default_prng_impl)),
        ("jax_threefry_partitionable", str(bool(jax.config.jax_threefry_partitionable))),
        ("jax_default_matmul_precision", str(jax.config.jax_default_matmul_precision)),
        ("XLA_FLAGS", xla_flags or "(not set)"),
        ("XLA deterministic ops", ", ".join(determinism) + " (GPU only)"),
    ]


def fast_path_lines() -> list[str]:
    """The fast path (:mod:`rngstate.fast`): on or off, and where each covered op stands.

    Each op's default dtype is verified against ``jax.random`` now (seconds an op where
    no verdict is remembered on disk, nothing where one is); its other dtypes show what
    this process has used so far. Then where the verdicts are remembered
    (:func:`check_cache_lines`).

    >>> lines = fast_path_lines()
    >>> lines[0].startswith("fast path  on") or lines[0].startswith("fast path  off")
    True
    """
    from rngstate import fast

    if not fast.is_enabled():
        return ["fast path  off (RNGSTATE_FAST=0 or rngstate.fast.set_enabled(False))"]
    report = fast.verify(dtypes=("float32", "uint32", "int32"))
    lines = ["fast path  on (RNGSTATE_FAST=0 or rngstate.fast.set_enabled(False) turns it off)"]
    width = max(len(op) for op in fast.COVERED)
    for op, dtypes in fast.COVERED.items():
        by_state: dict[str, list[str]] = {"verified": [], "fallback": [], "untested": []}
        for dtype in dtypes:
            by_state[report[f"{op}[{dtype}]"]].append(dtype)
        states = "; ".join(f"{state}: {' '.join(ds)}" for state, ds in by_state.items() if ds)
        lines.append(f"  {op.ljust(width)}  {states}")
    return [*lines, *check_cache_lines()]


def check_cache_lines() -> list[str]:
    """Where the fast path remembers its first-use verdicts, and what it holds there.

    >>> check_cache_lines()[0].startswith("check cache")
    True
    """
    from rngstate import _checkcache

    folder = _checkcache.directory()
    if folder is None:
        return [f"check cache  off ({_checkcache.ENV}=off); every process checks on first use"]
    held = _checkcache.entries()
    current = sorted(
        f"{e['op']}[{e['dtype']}]" + (" wide" * (e["kind"] == "wide")) for e in held if e["current"]
    )
    lines = [
        f"check cache  {folder} ({_checkcache.ENV} moves it, =off turns it off): "
        f"{len(held)} verdicts, {len(current)} for this JAX, backend, CPU and flags"
    ]
    if current:
        lines.append(f"  verified, remembered: {' '.join(current)}")
    return lines


def format_report(
    env: list[tuple[str, str]], results: list[CheckResult], more: tuple[str, ...] = ()
) -> str:
    """The text of ``rngstate doctor``: the environment, ``more`` lines, a line per check.

    >>> print(format_report([("jax", "0.5")], [CheckResult("demo", True, "ok")]))
    rngstate doctor: reproducibility report for this machine
    <BLANKLINE>
    environment
      jax  0.5
    <BLANKLINE>
    self-check
      PASS  demo  ok
    <BLANKLINE>
    all 1 checks passed
    """
    width = max(len(k) for k, _ in env)
    lines = ["rngstate doctor: reproducibility report for this machine", "", "environment"]
    lines += [f"  {k.ljust(width)}  {v}" for k, v in env]
    lines += ["", *more] if more else []
    lines += ["", "self-check"]
    name_width = max(len(r.name) for r in results)
    lines += [
        f"  {'PASS' if r.passed else 'FAIL'}  {r.name.ljust(name_width)}  {r.detail}"
        for r in results
    ]
    failed = [r.name for r in results if not r.passed]
    verdict = f"FAILED: {', '.join(failed)}" if failed else f"all {len(results)} checks passed"
    return "\n".join([*lines, "", verdict])


# -- the checks ----------------------------------------------------------------------------


def known_answers() -> tuple[tuple[int, ...], ...]:
    """Random123's threefry2x32_R(20, ctr, key) answers: ``(key0, key1, ctr0, ctr1, out0, out1)``.

    Read from ``rngstate/threefry2x32_20.txt`` (package data, the one copy; the tests read
    it through this function too).

    >>> known_answers()[0] == (0, 0, 0, 0, 0x6B200159, 0x99BA4EFE)
    True
    """
    text = resources.files("rngstate").joinpath("threefry2x32_20.txt").read_text()
    rows: list[tuple[int, ...]] = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            words = tuple(int(word, 16) for word in line.split())
            if len(words) != 6:
                raise ValueError(f"threefry2x32_20.txt: expected 6 hex words, got {line!r}")
            rows.append(words)
    return tuple(rows)


THREEFRY_KNOWN_ANSWERS = known_answers()

# Draws of Generator(seed=2**40 + 5, offset=3), pinned when the engine was written, for each
# value of jax_threefry_partitionable (jax.random's bit layout depends on it).
_PINNED_SEED, _PINNED_OFFSET = 2**40 + 5, 3
PINNED_DRAWS = {
    True: {
        "bits": [0xF88B3999, 0x901E4E12, 0x3BC5040D, 0x266C3FA0, 0x3ED871DC, 0x44B4651E],
        "permutation": [3, 8, 7, 2, 4, 6, 1, 0, 5, 9],
        "randint": [174, 896, 873, 115, 489],
    },
    False: {
        "bits": [0xCF218DBD, 0xD0CE2BF7, 0xC4C8380F, 0xE94DB21D, 0xE0D1A6E7, 0x09D35E47],
        "permutation": [8, 6, 1, 0, 4, 7, 5, 3, 9, 2],
        "randint": [885, 940, 311, 111, 792],
    },
}

# Seeds of Generator(seed=2**40 + 5).stream(name): the stream derivation never changes.
PINNED_STREAMS = {
    "params": 10482233552649214690,
    2**64 - 1: 12284551700466862664,
    "": 854263011215541429,
}


@register("threefry2x32-20 known answers")
def _known_answers() -> str:
    from rngstate.threefry import threefry2x32

    for key0, key1, ctr0, ctr1, out0, out1 in THREEFRY_KNOWN_ANSWERS:
        got = [int(w) for w in threefry2x32(*(jnp.uint32(v) for v in (key0, key1, ctr0, ctr1)))]
        assert got == [out0, out1], (
            f"key {key0:08x} {key1:08x} counter {ctr0:08x} {ctr1:08x}: got "
            f"{got[0]:08x} {got[1]:08x}, expected {out0:08x} {out1:08x}"
        )
    return f"{len(THREEFRY_KNOWN_ANSWERS)} Random123 vectors"


@register("derived key equals fold_in")
def _derived_key_is_fold_in() -> str:
    from rngstate.generator import Generator

    pairs = [(0, 0), (42, 7), (2**31 - 1, 2**32 - 1)]
    for seed, offset in pairs:
        got = jax.random.key_data(Generator(seed, offset).key())
        expected = jax.random.key_data(jax.random.fold_in(jax.random.key(seed), offset))
        assert np.array_equal(got, expected), f"seed {seed} offset {offset}: {got} != {expected}"
    wide, narrow = Generator(2**40 + 5).key(), Generator(5).key()
    assert not np.array_equal(jax.random.key_data(wide), jax.random.key_data(narrow)), (
        "seed 2**40 + 5 gives the key of seed 5: seeds are truncated to 32 bits"
    )
    return f"{len(pairs)} (seed, offset) pairs; 64-bit seeds kept whole"


@register("pinned draws")
def _pinned_draws() -> str:
    from rngstate.generator import Generator

    partitionable = bool(jax.config.jax_threefry_partitionable)
    gen = Generator(_PINNED_SEED, _PINNED_OFFSET)
    got = {
        "bits": gen.bits((6,), jnp.uint32)[0].tolist(),
        "permutation": gen.permutation(10)[0].tolist(),
        "randint": gen.randint((5,), 0, 1000, jnp.int32)[0].tolist(),  # int64 under x64 differs
    }
    for op, expected in PINNED_DRAWS[partitionable].items():
        assert got[op] == expected, f"{op}: got {got[op]}, pinned {expected}"
    return f"bits, permutation, randint (jax_threefry_partitionable={partitionable})"


@register("golden values")
def _golden_values() -> str:
    """The pinned keys and first draws of rngstate/golden.json (docs/stability.md)."""
    from rngstate import golden

    flag = jax.config.jax_threefry_partitionable
    stable = golden.mismatches(fields=golden.STABLE_FIELDS + golden.DATA_FIELDS)
    if stable:
        raise AssertionError(
            f"the key derivation or bits differ from the pinned values ({len(stable)}); "
            f"this installation is broken: {stable[0]}"
        )
    moved = golden.mismatches(fields=golden.SAMPLER_FIELDS)
    if moved:
        pinned_jax = golden.pinned_table()["pinned_with"]["jax"]
        raise AssertionError(
            f"{len(moved)} sampler values differ from those pinned with JAX {pinned_jax} "
            f"(this is JAX {jax.__version__}; keys and bits match): a JAX upgrade changed a "
            f"sampler, see docs/stability.md: {moved[0]}"
        )
    cases = len(golden.pinned_table()["cases"])
    return f"{cases} pinned (seed, offset) pairs match (threefry_partitionable={flag})"


@register("named streams")
def _named_streams() -> str:
    from rngstate.generator import Generator

    parent = Generator(_PINNED_SEED)
    for name, expected in PINNED_STREAMS.items():
        got = parent.stream(name).initial_seed()
        assert got == expected, f"stream({name!r}): seed {got}, pinned {expected}"
    return f"{len(PINNED_STREAMS)} pinned stream seeds"


@register("checkpoint round trip")
def _checkpoint_round_trip() -> str:
    from rngstate import checkpoint
    from rngstate.generator import Generator

    gen = Generator(2**64 - 1, offset=2**63)
    weights = jnp.arange(6, dtype=jnp.bfloat16)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "selfcheck.ckpt")
        checkpoint.save(path, {"gen": gen, "weights": weights})
        back = checkpoint.load(path)
    assert back["gen"] == gen, f"generator {back['gen']} != {gen}"
    assert np.array_equal(back["weights"], weights) and back["weights"].dtype == weights.dtype
    drawn, expected = back["gen"].bits((4,))[0], gen.bits((4,))[0]
    assert np.array_equal(drawn, expected), "a restored generator draws different bits"
    return f"save, fsync, rename and load in {tempfile.gettempdir()}"


@register("generator reuse checkers")
def _reuse_checkers() -> str:
    import rngstate as rs

    def twice(g: rs.Generator) -> jax.Array:
        return g.normal(())[0] + g.uniform(())[0]

    for check in (lambda: rs.check_reuse(twice)(rs.Generator(0)), lambda: _eager_twice(twice)):
        try:
            check()
        except rs.GeneratorReuseError:
            continue
        raise AssertionError("a planted generator reuse went unreported")
    eager = "on" if rs.reuse._eager_active else "off"
    return (
        "rs.check_reuse(fn) (traced) and rs.reuse_checking() / RNGSTATE_CHECK_REUSE=1 "
        f"(eager, now {eager}) catch a planted reuse"
    )


def _eager_twice(fn: Callable[..., jax.Array]) -> jax.Array:
    import rngstate as rs

    with rs.reuse_checking():
        return fn(rs.Generator(0))


def main() -> int:
    """Print the report; 0 when every check passes, 1 otherwise (``rngstate doctor``).

    >>> main()  # doctest: +ELLIPSIS
    rngstate doctor: reproducibility report for this machine
    ...
    all ... checks passed
    0
    """
    results = run_checks()
    from rngstate import hugepages

    more = (*fast_path_lines(), "", *hugepages.report_lines())
    print(format_report(environment(), results, more))
    sys.stdout.flush()
    return 0 if all(r.passed for r in results) else 1
