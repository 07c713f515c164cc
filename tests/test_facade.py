"""The process-wide default generator, rngstate.ops, capture/restore, threads and traces."""

from __future__ import annotations

import inspect
import os
import random
import threading
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import reference_key, reference_key_u64
from test_random_ops import OP_ARGS

import rngstate as rs
from rngstate import _jax_compat

pytestmark = pytest.mark.usefixtures("isolated_rng")


def _assert_same(a, b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _numpy_state():
    _, key, pos, has_gauss, cached = np.random.get_state()
    return key.tobytes(), pos, has_gauss, cached


# -- part 1: the default generator --------------------------------------------------------


def test_manual_seed_puts_the_default_generator_at_offset_zero():
    rs.manual_seed(2**40 + 5)
    assert rs.default_generator() == rs.Generator(seed=2**40 + 5, offset=0)
    assert rs.initial_seed() == 2**40 + 5
    first, second = rs.ops.normal((3,)), rs.ops.normal((3,))
    _assert_same(first, jax.random.normal(reference_key_u64(2**40 + 5, 0), (3,)))
    _assert_same(second, jax.random.normal(reference_key_u64(2**40 + 5, 1), (3,)))
    assert rs.default_generator() == rs.Generator(seed=2**40 + 5, offset=2)


def test_manual_seed_wraps_negatives_and_rejects_bad_seeds():
    rs.manual_seed(-1)
    assert rs.initial_seed() == 2**64 - 1
    with pytest.raises(ValueError, match=r"seed must be in \[-9223372036854775808, 2\*\*64\)"):
        rs.manual_seed(2**64)
    for bad in (1.0, "1", None, True):
        with pytest.raises(TypeError, match="seed must be an integer"):
            rs.manual_seed(bad)
    assert rs.initial_seed() == 2**64 - 1


def test_seed_draws_a_fresh_64_bit_seed_and_returns_it():
    rs.manual_seed(1)
    rs.ops.bits(())
    seeds = {rs.seed() for _ in range(4)}
    assert len(seeds) == 4 and all(0 <= s < 2**64 for s in seeds)
    last = rs.seed()
    assert rs.default_generator() == rs.Generator(seed=last, offset=0)
    assert rs.initial_seed() == last


def test_get_rng_state_is_seed_then_offset_as_little_endian_u64():
    rs.set_rng_state((2**40 + 5, 2**33 + 3))
    expected = (2**40 + 5).to_bytes(8, "little") + (2**33 + 3).to_bytes(8, "little")
    state = rs.get_rng_state()
    assert state.dtype == jnp.uint8 and bytes(np.asarray(state).tobytes()) == expected


def test_set_rng_state_resumes_the_default_stream_exactly():
    rs.manual_seed(9)
    rs.ops.uniform((2,))
    state = rs.get_rng_state()
    expected = rs.ops.uniform((4,))
    rs.manual_seed(100)
    rs.set_rng_state(state)
    _assert_same(rs.ops.uniform((4,)), expected)
    _assert_same(expected, jax.random.uniform(reference_key(9, 1), (4,)))


def test_set_rng_state_rejects_bad_states():
    rs.manual_seed(4)
    for bad in (
        np.zeros(15, np.uint8),
        np.zeros(16, np.int32),
        [1, 2, 3],
        np.zeros((2, 16), np.uint8),
    ):
        with pytest.raises(ValueError, match="state must"):
            rs.set_rng_state(bad)
    assert rs.default_generator() == rs.Generator(seed=4)


def test_default_generator_is_a_snapshot_not_a_handle():
    rs.manual_seed(3)
    snapshot = rs.default_generator()
    _, moved = snapshot.normal((2,))
    assert rs.default_generator() == rs.Generator(seed=3, offset=0)
    rs.ops.normal((2,))
    assert snapshot == rs.Generator(seed=3, offset=0) and moved == rs.default_generator()


def test_fork_rng_restores_everything_on_exit():
    rs.set_seed(11)
    rs.ops.uniform(())
    rs.ops.uniform((), seed=2)
    before = (rs.default_generator(), rs.get_seed(), _numpy_state(), random.getstate())
    with rs.fork_rng():
        rs.set_seed(12)
        rs.ops.uniform(())
        rs.ops.uniform((), seed=2)
        np.random.rand()
        random.random()
    after = (rs.default_generator(), rs.get_seed(), _numpy_state(), random.getstate())
    assert after == before


def test_fork_rng_restores_on_an_exception():
    rs.manual_seed(5)
    with pytest.raises(KeyError), rs.fork_rng():
        rs.manual_seed(6)
        rs.ops.bits(())
        raise KeyError("boom")
    assert rs.default_generator() == rs.Generator(seed=5)


def test_fork_rng_disabled_leaves_the_changes():
    rs.manual_seed(5)
    with rs.fork_rng(enabled=False):
        rs.manual_seed(6)
    assert rs.initial_seed() == 6


# -- part 2: rngstate.ops -----------------------------------------------------------------


def test_ops_has_the_functional_family():
    assert rs.ops.OP_NAMES == rs.random.OP_NAMES
    assert all(callable(getattr(rs.ops, name)) for name in rs.ops.OP_NAMES)
    with pytest.raises(AttributeError, match="did you mean normal"):
        rs.ops.nromal  # noqa: B018


@pytest.mark.parametrize("name", rs.random.OP_NAMES)
def test_ops_signature_is_the_functional_one_without_gen_plus_op_seed(name):
    functional = list(inspect.signature(getattr(rs.random, name)).parameters.values())
    stateful = list(inspect.signature(getattr(rs.ops, name)).parameters.values())
    assert functional[0].name == "gen"
    assert stateful[:-1] == functional[1:]
    assert stateful[-1].name == "seed" and stateful[-1].kind is inspect.Parameter.KEYWORD_ONLY
    assert stateful[-1].default is None
    assert getattr(rs.ops, name).__doc__


# Every op is the same wrapper around its functional op (checked above for all of them);
# these cover the argument kinds (shapes, scalars, arrays, keywords) without compiling the
# slow-to-compile gamma family a second time.
CHEAP_OPS = ["bernoulli", "bits", "categorical", "choice", "normal", "permutation", "randint"]
CHEAP_OPS += ["truncated_normal", "uniform", "multivariate_normal"]


@pytest.mark.parametrize("name", CHEAP_OPS)
def test_ops_draw_jax_random_from_the_default_generator(name):
    args, kwargs = OP_ARGS[name]
    rs.manual_seed(77)
    rs.set_rng_state((77, 5))
    values = getattr(rs.ops, name)(*args, **kwargs)
    expected = getattr(jax.random, name)(reference_key(77, 5), *args, **kwargs)
    jax.tree.map(_assert_same, values, expected)
    assert rs.default_generator() == rs.Generator(seed=77, offset=6)


def test_dropout_op_draws_the_functional_mask():
    rs.manual_seed(8)
    x = jnp.arange(1.0, 9.0)
    expected, _ = rs.random.dropout(rs.Generator(seed=8), x, 0.25)
    _assert_same(rs.ops.dropout(x, 0.25), expected)
    _assert_same(rs.ops.dropout(x, 0.25, deterministic=True), x)
    assert rs.default_generator() == rs.Generator(seed=8, offset=1)


def test_a_failing_call_consumes_nothing():
    rs.manual_seed(8)
    with pytest.raises(TypeError, match="unexpected keyword"):
        rs.ops.normal((2,), mean=1.0)
    with pytest.raises(TypeError, match="seed must be an integer"):
        rs.ops.normal((2,), seed=1.5)
    assert rs.default_generator() == rs.Generator(seed=8, offset=0)


# -- part 5: capture / restore ------------------------------------------------------------


def _draw_from_every_source():
    return [
        np.asarray(rs.ops.uniform((3,))),
        np.asarray(rs.ops.normal((2,), seed=4)),
        np.asarray(rs.ops.normal((2,), seed=4)),
        np.asarray(rs.ops.uniform((2,), seed=4)),
        np.asarray(rs.ops.randint((3,), 0, 100, seed=2**63 + 1)),
        np.random.rand(3),
        np.random.standard_normal(3),  # leaves a cached Gaussian behind
        [random.random(), random.gauss(0.0, 1.0)],  # so does gauss
    ]


def test_restore_replays_every_source_exactly():
    rs.set_seed(2**40 + 7)
    _draw_from_every_source()  # streams, cached Gaussians and counters are mid-way now
    snapshot = rs.capture()
    first = _draw_from_every_source()
    second_run = _draw_from_every_source()
    rs.restore(snapshot)
    assert rs.get_seed() == 2**40 + 7
    again = _draw_from_every_source()
    for a, b in zip(first, again, strict=True):
        _assert_same(a, b)
    assert not np.array_equal(first[0], second_run[0])


def test_restore_brings_back_an_unset_global_seed_and_dropped_streams():
    snapshot = rs.capture()
    snapshot["global_seed"]["is_set"] = False
    rs.restore(snapshot)
    assert rs.get_seed() is None
    rs.set_seed(3)
    rs.ops.uniform((), seed=1)
    rs.restore(snapshot)
    assert (
        rs.get_seed() is None and rs.capture()["op_streams"]["op"] == snapshot["op_streams"]["op"]
    )


def test_snapshot_is_plain_data_that_survives_a_generic_array_saver():
    rs.set_seed(5)
    rs.ops.normal((), seed=9)
    rs.ops.normal((), seed=2**64 - 1)
    snapshot = rs.capture()
    leaves, treedef = jax.tree.flatten(snapshot)
    assert all(isinstance(leaf, (np.ndarray, int, float, str, bool)) for leaf in leaves)
    assert snapshot["format_version"] == rs.facade.SNAPSHOT_VERSION
    # What an npz/array checkpoint writer hands back: every leaf as a NumPy array.
    loaded = jax.tree.unflatten(treedef, [np.array(leaf) for leaf in leaves])
    expected = _draw_from_every_source()
    rs.set_seed(6)
    rs.restore(loaded)
    for a, b in zip(expected, _draw_from_every_source(), strict=True):
        _assert_same(a, b)


def test_restore_rejects_foreign_snapshots_and_changes_nothing():
    rs.manual_seed(21)
    good = rs.capture()
    bad_version = {**good, "format_version": 99}
    missing = {k: v for k, v in good.items() if k != "numpy"}
    misshapen = {**good, "default_generator": {"seed": np.zeros(3, np.uint32), "offset": 0}}
    bad_python = {**good, "python_random": {**good["python_random"], "state": np.zeros(3)}}
    for bad, message in [
        (bad_version, "format_version 99 is not supported"),
        (missing, "not an rngstate.capture"),
        (misshapen, r"seed must be integer words of shape \(2,\)"),
        (bad_python, "state"),
        ("not a snapshot", "not an rngstate.capture"),
    ]:
        with pytest.raises(ValueError, match=message):
            rs.restore(bad)
    assert rs.default_generator() == rs.Generator(seed=21)


# -- part 7: threads ----------------------------------------------------------------------


def _offsets_of(values, seed):
    """Map each drawn uint32[4] back to the offset whose reference key produced it."""
    keys = jax.vmap(lambda o: jax.random.fold_in(jax.random.key(seed), o))(jnp.arange(800))
    table = np.asarray(jax.vmap(lambda k: jax.random.bits(k, (4,)))(keys))
    by_value = {tuple(row): offset for offset, row in enumerate(table.tolist())}
    assert len(by_value) == 800
    return sorted(by_value[tuple(np.asarray(v).tolist())] for v in values)


def _draw_concurrently(draw):
    results: list[list] = [[] for _ in range(8)]
    barrier = threading.Barrier(8)

    def worker(slot):
        barrier.wait()
        for _ in range(100):
            results[slot].append(draw())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [v for r in results for v in r]


def test_8_threads_x_100_draws_use_offsets_0_to_799_once_each():
    rs.manual_seed(1234)
    values = _draw_concurrently(lambda: rs.ops.bits((4,)))
    assert _offsets_of(values, 1234) == list(range(800))
    assert rs.default_generator() == rs.Generator(seed=1234, offset=800)


def test_8_threads_x_100_draws_on_one_op_seed_stream():
    rs.set_seed(0)
    values = _draw_concurrently(lambda: rs.ops.bits((4,), seed=3))
    stream = rs.capture()["op_streams"]
    assert stream["op"] == ("bits",)
    assert stream["offset"].tolist() == [[0, 800]]
    assert len({tuple(np.asarray(v).tolist()) for v in values}) == 800


# -- part 8: refusing to run under a JAX transformation -----------------------------------

TRANSFORMS = {
    "jit": lambda f: jax.jit(f)(1.0),
    "vmap": lambda f: jax.vmap(f)(jnp.ones(3)),
    "scan": lambda f: jax.lax.scan(lambda c, x: (c, f(x)), 0.0, jnp.ones(3)),
    "grad": lambda f: jax.grad(f)(1.0),
    "cond": lambda f: jax.lax.cond(True, f, f, 1.0),
    "while_loop": lambda f: jax.lax.while_loop(lambda x: x < 2.0, lambda x: x + f(x), 0.0),
    "checkpoint": lambda f: jax.checkpoint(f)(1.0),
    "eval_shape": lambda f: jax.eval_shape(f, 1.0),
    "jvp": lambda f: jax.jvp(f, (1.0,), (1.0,)),
}


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_a_draw_under_a_transformation_says_to_pass_a_generator(transform):
    rs.manual_seed(2)

    def uses_facade(x):
        return x * rs.ops.normal(())

    with pytest.raises(
        RuntimeError, match=r"rngstate\.ops\.normal\(\).*Pass a Generator explicitly"
    ):
        TRANSFORMS[transform](uses_facade)
    assert rs.default_generator() == rs.Generator(seed=2)


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_the_trace_state_read_agrees_with_jax_under_every_transformation(transform):
    # rngstate reads JAX's per-thread states directly where it can (fewer frames per draw):
    # it must say what JAX's own is_top_level says, at the top and inside each trace.
    from jax._src.core import trace_ctx

    seen = []

    def records(x):
        seen.append((_jax_compat.is_eager(), trace_ctx.is_top_level()))
        return x + 1.0  # while_loop's body adds it: the loop ends

    assert _jax_compat.is_eager() is trace_ctx.is_top_level() is True
    TRANSFORMS[transform](records)
    assert seen and all(ours is theirs is False for ours, theirs in seen)


FACADE_CALLS = {
    "ops.normal": lambda: rs.ops.normal((2,)),
    "ops.normal(seed=3)": lambda: rs.ops.normal((2,), seed=3),
    "manual_seed": lambda: rs.manual_seed(1),
    "seed": lambda: rs.seed(),
    "set_rng_state": lambda: rs.set_rng_state((1, 2)),
    "get_rng_state": lambda: rs.get_rng_state(),
    "default_generator": lambda: rs.default_generator(),
    "set_seed": lambda: rs.set_seed(1),
    "set_random_seed": lambda: rs.set_random_seed(1),
    "capture": lambda: rs.capture(),
    "restore": lambda: rs.restore(rs.capture()),
    "fork_rng": lambda: rs.fork_rng().__enter__(),
    "seed_worker": lambda: rs.seed_worker(1, 0, 0),
}


@pytest.mark.parametrize("call", sorted(FACADE_CALLS))
def test_every_stateful_call_refuses_to_run_under_jit(call):
    rs.set_seed(5)
    rs.manual_seed(2)

    def traced(x):
        FACADE_CALLS[call]()
        return x

    with pytest.raises(RuntimeError, match="Pass a Generator explicitly"):
        jax.jit(traced)(1.0)
    assert rs.default_generator() == rs.Generator(seed=2) and rs.get_seed() == 5
    with rs.fork_rng():
        FACADE_CALLS[call]()  # and runs eagerly


def test_a_trace_in_one_thread_does_not_block_another():
    # A thread that the trace waits on is refused (tests/test_inputs.py); one that merely
    # runs while an unrelated thread traces draws as usual.
    rs.manual_seed(6)
    drawn = []
    started, release = threading.Event(), threading.Event()

    @jax.jit
    def traced(x):
        started.set()
        release.wait(5)
        return x

    tracing = threading.Thread(target=lambda: traced(1.0))
    tracing.start()
    assert started.wait(30)
    try:
        other = threading.Thread(target=lambda: drawn.append(rs.ops.bits(())))
        other.start()
        other.join()
    finally:
        release.set()
        tracing.join()
    _assert_same(drawn[0], jax.random.bits(reference_key(6, 0), ()))


def test_the_functional_api_still_works_under_jit():
    gen = rs.Generator(seed=3)
    values, _ = jax.jit(lambda g: rs.random.normal(g, (2,)))(gen)
    _assert_same(values, jax.random.normal(reference_key(3, 0), (2,)))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_from_a_thread_takes_that_thread_for_its_main_one():
    # Draws in the main thread skip the search for a tracing thread that awaits them; in a
    # child forked from another thread, that thread is the child's main thread.
    from rngstate import facade

    status = []

    def fork_and_wait() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # JAX warns that fork and threads do not mix
            pid = os.fork()
        if pid == 0:  # the child: read, answer, and leave without running anything else
            same = facade._MAIN_THREAD == threading.get_ident() == threading.main_thread().ident
            os._exit(0 if same else 1)
        status.append(os.waitpid(pid, 0)[1])

    worker = threading.Thread(target=fork_and_wait)
    worker.start()
    worker.join()
    assert status == [0]
    assert facade._MAIN_THREAD == threading.main_thread().ident  # the parent is unchanged


def _fork_and_seed(deadline_s: float = 10.0) -> int:
    """Fork; the child seeds every way a DataLoader worker does and exits. Returns the child's
    exit status, or -1 when it had not finished by the deadline (then it is killed)."""
    import time

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # JAX warns that fork and threads do not mix
        pid = os.fork()
    if pid == 0:
        try:
            rs.manual_seed(5)
            rs.set_seed(6)
            seeded = rs.seed_worker(7, 0, 1) == rs.get_seed()
            os._exit(0 if seeded and rs.initial_seed() == rs.get_seed() else 1)
        finally:
            os._exit(2)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return -1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_threads_draw_seeds_itself_without_waiting():
    # Before the child's locks were reset, a child forked while another thread was inside a
    # draw (holding the facade's lock) hung at its first seeding call.
    stop = threading.Event()

    def draw() -> None:
        while not stop.is_set():
            rs.ops.uniform((2,))
            rs.ops.normal((), seed=3)

    rs.ops.uniform((2,))  # compiled before the threads start: they hold the lock longer
    threads = [threading.Thread(target=draw) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        statuses = [_fork_and_seed() for _ in range(12)]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert statuses == [0] * 12


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize(
    "module,name",
    [("rngstate.facade", "_lock"), ("rngstate.reuse", "_lock"), ("rngstate.fast", "_status_lock")],
)
def test_a_child_forked_while_a_process_lock_is_held_gets_it_free(module, name):
    # Deterministic: a thread holds the lock across the fork, as a draw in progress does.
    import importlib

    lock = getattr(importlib.import_module(module), name)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait()

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    try:
        status = _fork_and_seed()
        if module != "rngstate.facade":  # the child must also find the other locks free
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pid = os.fork()
            if pid == 0:
                fresh = getattr(importlib.import_module(module), name)
                os._exit(0 if fresh.acquire(timeout=10) else 1)
            status = status or os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    finally:
        release.set()
        thread.join()
    assert status == 0


def test_no_garbage_collection_runs_while_the_thread_list_is_read():
    # CPython 3.11 holds its thread-list lock through sys._current_frames(); a collection
    # there that frees a JAX array lets go of the GIL, and a second drawing thread then
    # deadlocks the process (an adversarial run of drawing threads hung so). Draws from a
    # thread other than the main one read the thread list on every call.
    import gc
    import linecache
    import sys as system

    from rngstate import facade

    inside = []

    def watch(phase: str, info: dict) -> None:
        # The Python frame that started the collection: is it on the call that reads the
        # thread list (a C call has no frame of its own)?
        caller = system._getframe().f_back
        text = linecache.getline(caller.f_code.co_filename, caller.f_lineno)
        # The C call itself, not the line that calls rngstate's wrapper around it (a
        # collection may start while that wrapper's frame is made, before it turns it off).
        if "sys._current_frames()" in text:
            inside.append((phase, caller.f_code.co_name))

    def read_often() -> None:
        for _ in range(200):
            facade._awaited_by_a_trace()

    threshold = gc.get_threshold()
    gc.callbacks.append(watch)
    gc.set_threshold(1, 1, 1)  # a collection on nearly every allocation
    try:
        worker = threading.Thread(target=read_often)
        worker.start()
        worker.join()
        rs.ops.uniform(())  # and a real draw from a second thread still works
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(watch)
    assert inside == []
