"""Generator reuse checkers: planted reuse of each kind is reported; correct code is not."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import rngstate as rs

HERE = pathlib.Path(__file__)
LINES = HERE.read_text().splitlines()


def line(marker: str) -> str:
    """``test_reuse.py:N``, N the one line that carries ``# <marker>``."""
    hits = [i + 1 for i, text in enumerate(LINES) if text.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, marker
    return f"{HERE.name}:{hits[0]}"


def reuse_message(fn, *args) -> str:
    with pytest.raises(rs.GeneratorReuseError) as info:
        rs.check_reuse(fn)(*args)
    return str(info.value)


def assert_pair(message: str, first: tuple[str, str], second: tuple[str, str]) -> None:
    assert "two random operations consume the same generator state" in message
    (op1, at1), (op2, at2) = first, second
    assert re.search(rf"first: +{op1} at \S*{re.escape(line(at1))} ", message), message
    assert re.search(rf"second: +{op2} at \S*{re.escape(line(at2))} ", message), message
    assert "spawn" in message and "stream" in message  # how to fix it


def assert_loop(message: str, op: str, at: str, loop: str) -> None:
    assert "in more than one iteration of a loop" in message
    assert re.search(rf"{op} at \S*{re.escape(line(at))} .*in {loop} at", message), message


G = rs.Generator(seed=3)


# -- planted reuse, traced ---------------------------------------------------------------


def test_same_generator_twice():
    def f(g):
        x, _ = g.normal((2,))  # twice-1
        y, _ = g.normal((2,))  # twice-2
        return x + y

    assert_pair(reuse_message(f, G), ("normal", "twice-1"), ("normal", "twice-2"))


def test_nested_jit_dropout_after_op():
    @jax.jit
    def layer(x, g):
        return rs.random.dropout(g, x, 0.5)  # dropout-2

    @jax.jit
    def f(g):
        x, _ = g.uniform((4,))  # dropout-1
        y, _ = layer(x, g)
        return y

    assert_pair(reuse_message(f, G), ("uniform", "dropout-1"), ("dropout", "dropout-2"))


def test_two_layers_given_one_generator_initializers():
    def init(g):
        w1, _ = rs.init.kaiming_uniform(g, (4, 8))  # init-1
        w2, _ = rs.init.xavier_normal(g, (8, 2))  # init-2
        return w1, w2

    assert_pair(reuse_message(init, G), ("kaiming_uniform", "init-1"), ("xavier_normal", "init-2"))


def test_spawn_then_draw_from_the_same_state():
    def f(g):
        kids, _ = g.spawn(4)  # spawn-1
        x, _ = g.bernoulli(0.5, (2,))  # spawn-2
        return kids, x

    assert_pair(reuse_message(f, G), ("spawn", "spawn-1"), ("bernoulli", "spawn-2"))


def test_key_then_op():
    def f(g):
        k = g.key()  # key-1
        return jax.random.normal(k) + g.normal(())[0]  # key-2

    assert_pair(reuse_message(f, G), ("key", "key-1"), ("normal", "key-2"))


def test_scan_carry_not_advanced():
    def f(g):
        def body(carry, _):
            x, _ = carry.normal(())  # scan-carry
            return carry, x

        return lax.scan(body, g, None, length=3)

    assert_loop(reuse_message(f, G), "normal", "scan-carry", "lax.scan")


def test_scan_advances_less_than_it_draws():
    def f(g):
        def body(carry, _):
            x, carry = carry.normal(())  # short-1
            y, _ = carry.uniform(())  # short-2
            # advanced by 1, drew 2: the next step's normal reuses this uniform
            return carry, x + y

        return lax.scan(body, g, None, length=3)

    assert_pair(reuse_message(f, G), ("normal", "short-1"), ("uniform", "short-2"))


def test_fori_loop_closing_over_a_generator():
    def f(g):
        return lax.fori_loop(0, 4, lambda i, acc: acc + g.normal(())[0], 0.0)  # fori

    assert_loop(reuse_message(f, G), "normal", "fori", "lax.scan")


def test_while_loop_closing_over_a_generator():
    def f(g, n):
        return lax.fori_loop(0, n, lambda i, acc: acc + g.gumbel(())[0], 0.0)  # while

    assert_loop(reuse_message(f, G, jnp.int32(4)), "gumbel", "while", "lax.while_loop")


def test_after_a_scan_the_loop_offsets_are_known():
    def f(g):
        def body(carry, _):
            x, carry = carry.normal(())  # after-1
            return carry, x

        _, xs = lax.scan(body, g, None, length=3)
        # offset 2 is the third step's:
        y, _ = g.construct(2).laplace(())  # after-2
        return xs, y

    assert_pair(reuse_message(f, G), ("normal", "after-1"), ("laplace", "after-2"))


def test_vmap_two_draws_from_each_child():
    def f(g):
        kids, _ = g.spawn(3)

        def each(k):
            a, _ = k.normal(())  # vmap-1
            b, _ = k.exponential(())  # vmap-2
            return a + b

        return jax.vmap(each)(kids)

    assert_pair(reuse_message(f, G), ("normal", "vmap-1"), ("exponential", "vmap-2"))


def test_grad_and_value_and_grad():
    def loss(w, g):
        x, _ = g.normal((3,))  # grad-1
        y, _ = rs.random.dropout(g, x * w, 0.5)  # grad-2
        return y.sum()

    for transform in (jax.grad, jax.value_and_grad):
        message = reuse_message(lambda g, t=transform: t(loss)(jnp.ones(3), g), G)
        assert_pair(message, ("normal", "grad-1"), ("dropout", "grad-2"))


def test_checkpoint_under_grad():
    @jax.checkpoint
    def loss(w, g):
        x, _ = g.normal((3,))  # remat-1
        y, _ = g.uniform((3,))  # remat-2
        return (x * y * w).sum()

    message = reuse_message(lambda g: jax.grad(loss)(jnp.ones(3), g), G)
    assert_pair(message, ("normal", "remat-1"), ("uniform", "remat-2"))


def test_custom_jvp_and_custom_vjp():
    @jax.custom_jvp
    def noisy(x, g):
        return x * g.normal(())[0]  # custom-1

    noisy.defjvp(lambda primals, tangents: (noisy(*primals), tangents[0]))

    @jax.custom_vjp
    def noisy_vjp(x, g):
        return x * g.normal(())[0]  # custom-2

    noisy_vjp.defvjp(lambda x, g: (noisy_vjp(x, g), None), lambda _, ct: (ct, None))

    def f(g):
        return jax.grad(lambda x: noisy(x, g) + noisy_vjp(x, g))(1.0)

    assert_pair(reuse_message(f, G), ("normal", "custom-1"), ("normal", "custom-2"))


def test_shard_map():
    mesh = jax.make_mesh((1,), ("x",))
    P = jax.sharding.PartitionSpec

    def f(g):
        def inside(seed, offset):
            gen = rs.Generator.from_words(seed, offset)
            a, _ = gen.normal((2,))  # shard-1
            b, _ = gen.normal((2,))  # shard-2
            return a + b

        return jax.shard_map(inside, mesh=mesh, in_specs=(P(), P()), out_specs=P())(
            g.seed, g.offset
        )

    assert_pair(reuse_message(f, G), ("normal", "shard-1"), ("normal", "shard-2"))


def test_generators_equal_by_value_are_one_state():
    def f(a, b):
        return a.normal(())[0] + b.cauchy(())[0]  # value

    message = reuse_message(f, rs.Generator(7, 2), rs.Generator(7).construct(2))
    assert_pair(message, ("normal", "value"), ("cauchy", "value"))


def test_stream_asked_for_twice():
    def f(g):
        a, _ = g.stream("noise").normal(())  # stream-1
        b, _ = g.stream("noise").uniform(())  # stream-2
        return a + b

    assert_pair(reuse_message(f, G), ("normal", "stream-1"), ("uniform", "stream-2"))


def test_the_error_is_raised_before_anything_runs():
    calls = []

    def f(g):
        calls.append(1)
        return g.normal(())[0] + g.normal(())[0]

    with pytest.raises(rs.GeneratorReuseError):
        rs.check_reuse(f)(G)
    assert len(calls) == 1  # traced once, never called afterwards


# -- correct code passes -----------------------------------------------------------------


def no_reuse(fn, *args):
    """Check ``fn`` and return what it returns: the checker runs it when it finds nothing."""
    return rs.check_reuse(fn)(*args)


def test_correct_code_runs_and_returns_fn_result():
    def f(g):
        x, g = g.normal((2,))
        y, g = rs.random.dropout(g, x, 0.5)
        w, g = rs.init.kaiming_uniform(g, (2, 2))
        kids, g = g.spawn(2)
        return x, g

    x, g = no_reuse(jax.jit(f), G)
    np.testing.assert_array_equal(x, jax.random.normal(G.key(), (2,)))
    assert g == G.construct(4)


def test_cond_and_switch_branches_are_alternatives():
    def f(g, p, i):
        a, g2 = lax.cond(p, lambda g: g.normal(()), lambda g: g.uniform(()), g)
        b, g2 = lax.switch(i, [lambda g: g.normal(()), lambda g: g.gumbel(())], g2)
        return a + b, g2

    no_reuse(f, G, jnp.bool_(True), jnp.int32(1))


# -- after a cond: the branches' generators joined ----------------------------------------


def drew_in_true_then_after(g, pred):
    x, g2 = lax.cond(
        pred,
        lambda g: (g.normal(())[0], g),  # join-true
        lambda g: g.normal(()),
        g,
    )
    return x, g2.normal(())[0]  # join-after


@pytest.mark.parametrize("gen", [G, rs.Generator(seed=jnp.uint32(3))])
def test_a_draw_after_a_cond_meets_the_draw_of_the_branch_that_did_not_advance(gen):
    # Before the join, the cond's differing outputs were unknown values and this passed,
    # though at run time (pred true) both draws are the same numbers.
    x, y = jax.jit(drew_in_true_then_after)(gen, jnp.bool_(True))
    assert x == y  # the reuse is real
    message = reuse_message(drew_in_true_then_after, gen, jnp.bool_(True))
    assert_pair(message, ("normal", "join-true"), ("normal", "join-after"))
    jitted = reuse_message(jax.jit(drew_in_true_then_after), gen, jnp.bool_(False))
    assert_pair(jitted, ("normal", "join-true"), ("normal", "join-after"))


def test_a_switch_joins_every_branch():
    def f(g, i):
        x, g2 = lax.switch(
            i,
            [
                lambda g: g.normal(()),
                lambda g: (0.0, g.construct(5)),
                lambda g: (g.normal(())[0], g),  # switch-third
            ],
            g,
        )
        return x + g2.normal(())[0]  # switch-after

    message = reuse_message(f, G, jnp.int32(0))
    assert_pair(message, ("normal", "switch-third"), ("normal", "switch-after"))


def test_nested_conds_join_through_both():
    def f(g, p, q):
        def inner(g):
            return lax.cond(q, lambda g: (0.0, g), lambda g: g.normal(()), g)

        x, g2 = lax.cond(p, inner, lambda g: g.normal(()), g)
        y, _ = g2.normal(())  # nested-after
        z, _ = g.construct(1).uniform(())  # nested-k
        return x + y + z

    # p and q true: inner draws nothing and returns g; false q: it draws at 0 and returns
    # g + 1, where both later draws land.
    message = reuse_message(f, G, jnp.bool_(True), jnp.bool_(False))
    assert_pair(message, ("normal", "nested-after"), ("uniform", "nested-k"))


def test_a_draw_after_a_cond_is_not_checked_against_another_branch():
    def f(g, pred):
        # true: draws at 0 and returns g + 1; false: draws nothing and returns g. The draw
        # after is at 1 or at 0, and at 0 only when the true branch did not run.
        x, g2 = lax.cond(pred, lambda g: g.normal(()), lambda g: (0.0, g), g)
        y, g3 = g2.normal(())
        return x + y, g3

    for pred in (True, False):
        no_reuse(f, G, jnp.bool_(pred))
    x, _ = jax.jit(f)(G, jnp.bool_(True))
    assert x == jax.random.normal(G.key(), ()) + jax.random.normal(G.construct(1).key(), ())


def test_branches_advanced_by_different_steps_then_drawn_apart_pass():
    def f(g, pred):
        x, g2 = lax.cond(
            pred,
            lambda g: g.normal(()),
            lambda g: (g.normal(())[0] + g.construct(1).normal(())[0], g.construct(2)),
            g,
        )
        y, g3 = g2.normal(())
        return x + y, g3

    no_reuse(f, G, jnp.bool_(False))


def test_cond_in_a_scan_with_an_advanced_carry():
    def f(g):
        def body(carry, i):
            return lax.cond(i % 2 == 0, lambda c: c.normal(()), lambda c: c.uniform(()), carry)[
                ::-1
            ]

        return lax.scan(body, g, jnp.arange(4))

    no_reuse(f, G)


def test_spawn_and_stream_children_and_construct_k():
    def f(g):
        kids, g2 = g.spawn(3)
        draws = [jax.vmap(lambda k: k.normal(())[0])(kids), g2.normal(())[0]]
        draws += [g.stream(name).normal(())[0] for name in ("a", "b", 3)]
        draws += [g.stream("a").stream(1).normal(())[0]]
        draws += [g2.construct(k).normal(())[0] for k in range(1, 4)]
        return draws

    no_reuse(f, G)


def test_vmap_over_a_batch_and_scan_over_children():
    def f(g):
        kids, g = g.spawn(4)

        def body(acc, kid):
            x, kid = kid.normal(())
            y, _ = kid.normal(())
            return acc + x + y, None

        return jax.vmap(lambda k: k.uniform(())[0])(kids), lax.scan(body, 0.0, kids), g

    no_reuse(f, G)


def test_nested_scans_and_loops_that_advance():
    def f(g, n):
        def inner(c, _):
            x, c = c.normal(())
            return c, x

        def outer(c, _):
            c, xs = lax.scan(inner, c, None, length=3)
            y, c = c.uniform(())
            return c, xs.sum() + y

        g, ys = lax.scan(outer, g, None, length=5)
        z, g = g.normal(())  # after 5 * 4 draws: offset 20, not drawn yet

        def body(_, carry):
            acc, gen = carry
            x, gen = gen.normal(())
            return acc + x, gen

        return ys, z, lax.fori_loop(0, n, body, (0.0, g))

    no_reuse(f, G, jnp.int32(3))


def test_grad_of_checkpoint_is_recomputation_not_reuse():
    @jax.checkpoint
    def loss(w, g):
        x, g = g.normal((3,))
        y, g = rs.random.dropout(g, x * w, 0.5)
        return y.sum(), g

    no_reuse(lambda g: jax.grad(loss, has_aux=True)(jnp.ones(3), g), G)


def test_deterministic_dropout_consumes_nothing():
    def f(g):
        x, g2 = rs.random.dropout(g, jnp.ones(3), 0.5, deterministic=True)
        y, _ = rs.random.dropout(g2, x, 0.5)
        return y

    no_reuse(f, G)


# -- the eager check -------------------------------------------------------------------


def test_eager_reuse_names_both_calls():
    g = rs.Generator(11)
    with rs.reuse_checking():
        _, g1 = g.normal((2,))  # eager-1
        _, _ = g1.uniform((2,))
        with pytest.raises(rs.GeneratorReuseError) as info:
            g.uniform((2,))  # eager-2
    message = str(info.value)
    assert f"uniform draws from {g!r} at " in message
    assert re.search(rf"\S*{re.escape(line('eager-2'))} ", message)
    assert re.search(rf"which normal at \S*{re.escape(line('eager-1'))} ", message)


@pytest.mark.parametrize(
    "second, name",
    [
        (lambda g: g.spawn(2), "spawn"),
        (lambda g: rs.init.kaiming_uniform(g, (2, 2)), "kaiming_uniform"),
        (lambda g: rs.random.dropout(g, jnp.ones(2), 0.5), "dropout"),
    ],
)
def test_eager_reuse_by_spawn_initializers_dropout(second, name):
    g = rs.Generator(12)
    with rs.reuse_checking():
        g.normal(())
        with pytest.raises(rs.GeneratorReuseError, match=f"{name} draws from"):
            second(g)


def test_eager_check_is_off_by_default_and_after_the_block():
    g = rs.Generator(13)
    assert not rs.reuse._eager_active
    a, _ = g.normal(())
    b, _ = g.normal(())
    assert a == b  # the bug the checker exists for, unreported when off
    with rs.reuse_checking():
        g.normal(())  # each block starts with nothing recorded
    assert not rs.reuse._eager_active
    g.normal(())


def test_eager_check_leaves_the_facade_alone_and_passes_jitted_draws_of_new_states():
    with rs.reuse_checking():
        rs.set_seed(5)
        first = rs.ops.normal((2,))
        rs.set_seed(5)  # a deliberate replay of the process-wide state
        np.testing.assert_array_equal(rs.ops.normal((2,)), first)
        f = jax.jit(lambda g: g.normal(())[1])
        f(rs.Generator(1))
        f(rs.Generator(2))


# -- draws inside compiled code, checked as they run (the step that forgets its generator) ---


def compiled_reuse(step, calls: int = 3) -> tuple[int, str]:
    """Call ``step()`` up to ``calls`` times under reuse_checking: the call that raised, and
    the message (``(calls, "")`` when none did)."""
    made = []
    with pytest.raises(rs.GeneratorReuseError) as info:
        with rs.reuse_checking():
            for call in range(calls):
                made.append(call)
                step()
    return made[-1], str(info.value)


def assert_no_compiled_reuse(step, calls: int = 3) -> None:
    with rs.reuse_checking():
        for _ in range(calls):
            step()


def caught_when_dropped_passes_when_carried(step, first, marker: str) -> None:
    """``step(state, x) -> (y, next state)`` called with ``first`` each time (the new state
    dropped) is caught on its second call; with the state it returned, it passes."""
    call, message = compiled_reuse(lambda: step(first, jnp.zeros(2)))
    assert call == 1 and re.search(rf"\S*{re.escape(line(marker))} ", message), message
    assert "inside compiled code" in message
    held = {"state": first}

    def carried():
        _, held["state"] = step(held["state"], jnp.zeros(2))

    assert_no_compiled_reuse(carried)


def test_nnx_jit_step_that_does_not_store_the_module_generator_is_caught():
    nnx = pytest.importorskip("flax.nnx")

    class Forgets(nnx.Module):
        def __init__(self, gen):
            self.gen = nnx.data(gen)

        def __call__(self, x):
            noise, _ = self.gen.normal(x.shape)  # nnx-forgets
            return x + noise

    class Stores(Forgets):
        def __call__(self, x):
            noise, self.gen = self.gen.normal(x.shape)
            return x + noise

    step = nnx.jit(lambda m, x: m(x))
    forgets = Forgets(rs.Generator(21))
    step(forgets, jnp.zeros(2))  # compiled before checking starts: retraced by it
    call, message = compiled_reuse(lambda: step(forgets, jnp.zeros(2)))
    assert call == 1  # the second call of the jitted step
    assert "normal draws from Generator(seed=21, offset=0) at " in message
    assert re.search(rf"\S*{re.escape(line('nnx-forgets'))} ", message), message
    assert "inside compiled code" in message and "self.gen = self.gen.normal" in message
    stores = Stores(rs.Generator(21))
    assert_no_compiled_reuse(lambda: step(stores, jnp.zeros(2)))
    assert stores.gen == rs.Generator(21).construct(3)


def test_jax_jit_step_whose_generator_is_not_passed_on_is_caught():
    @jax.jit
    def step(g, x):
        noise, g = g.normal(x.shape)  # jax-jit-draw
        return x + noise, g

    caught_when_dropped_passes_when_carried(step, rs.Generator(22), "jax-jit-draw")


def test_equinox_filter_jit_step_is_checked_on_every_call():
    eqx = pytest.importorskip("equinox")

    class Noisy(eqx.Module):
        gen: rs.Generator

        def __call__(self, x):
            noise, gen = self.gen.normal(x.shape)  # eqx-draw
            return x + noise, eqx.tree_at(lambda m: m.gen, self, gen)

    @eqx.filter_jit
    def step(model, x):
        return model(x)

    caught_when_dropped_passes_when_carried(step, Noisy(rs.Generator(23)), "eqx-draw")


def test_compiled_draws_in_scan_and_remat_under_grad_are_not_taken_for_reuse():
    def loss(w, g):
        def body(g, _):
            noise, g = g.normal(w.shape)
            return g, jnp.sum((w + noise) ** 2)

        g, losses = lax.scan(body, g, None, length=3)
        return losses.sum(), g

    grad = jax.jit(jax.grad(jax.checkpoint(loss), has_aux=True))
    state = {"gen": rs.Generator(24)}

    def carried():
        _, state["gen"] = grad(jnp.ones(2), state["gen"])

    assert_no_compiled_reuse(carried)  # the recomputation draws each state again, by design
    assert state["gen"] == rs.Generator(24).construct(9)
    gen = rs.Generator(24)
    call, _ = compiled_reuse(lambda: grad(jnp.ones(2), gen))
    assert call == 1  # forward and recomputation of call 0, then call 1 draws again


def test_programs_compiled_while_checking_do_not_record_after_it():
    f = jax.jit(lambda g: g.normal(())[0])
    g = rs.Generator(25)
    with rs.reuse_checking():
        f(g)
    assert not rs.reuse._eager_active
    assert f(g) == f(g)  # unchecked again: the same state twice, nothing recorded or raised
    with rs.reuse_checking():  # a new block starts with nothing recorded
        f(g)


def test_blocks_around_eager_draws_alone_clear_no_compilation_cache(monkeypatch):
    g = rs.Generator(26)
    jax.jit(lambda x: x + 1)(1)  # something compiled while checking is off
    cleared = []
    real_clear = jax.clear_caches
    monkeypatch.setattr(jax, "clear_caches", lambda: (cleared.append(1), real_clear()))
    with rs.reuse_checking():  # so this block retraces what runs in it
        g.normal((3,))
    assert cleared == [1]
    for i in range(3):
        with rs.reuse_checking():
            g.construct(i + 1).normal((3,))
    assert cleared == [1]  # eager draws compile no callback: nothing to clear
    f = jax.jit(lambda g: g.normal(())[0])
    with rs.reuse_checking():
        f(g)  # compiled inside, with a callback: cleared on leaving
    assert cleared == [1, 1]


def test_environment_variable_checks_the_whole_process():
    code = "import rngstate as rs\ng = rs.Generator(0)\ng.normal(())\ng.normal(())\n"
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={**__import__("os").environ, "RNGSTATE_CHECK_REUSE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode != 0
    assert "GeneratorReuseError: a generator state is drawn from twice" in run.stderr
    assert "normal draws from Generator(seed=0, offset=0) at <string>:4" in run.stderr


# -- the docs page ---------------------------------------------------------------------------

DOC = HERE.resolve().parents[1] / "docs" / "common-mistakes.md"


def test_common_mistakes_page_prints_what_it_says(capsys):
    """Each example prints the text block after it (``...`` ends a line that is cut short)."""
    blocks = re.findall(r"```(python|text)\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    pairs = [
        (code, text)
        for (kind, code), (next_kind, text) in zip(blocks, blocks[1:], strict=False)
        if (kind, next_kind) == ("python", "text")
    ]
    assert len(pairs) == 7
    for code, expected in pairs:
        exec(compile(code, "example.py", "exec"), {})
        printed = capsys.readouterr().out.splitlines()
        wanted = expected.splitlines()
        assert len(printed) >= len(wanted), (printed, wanted)
        for got, want in zip(printed, wanted, strict=False):
            if want.endswith("..."):
                assert got.startswith(want[:-3]), (got, want)
            else:
                assert got == want


def test_plain_jax_keys_python_arguments_and_an_outer_jit():
    """Raw jax.random keys are left alone; Python arguments stay Python; tracers are checked."""

    def raw(n, scale=1.0):
        return scale * jax.random.normal(jax.random.key(0), (n,))

    np.testing.assert_array_equal(no_reuse(raw, 3), jax.random.normal(jax.random.key(0), (3,)))
    assert rs.check_reuse(lambda g, **kw: g.normal(**kw)[0])(G, shape=(2,)).shape == (2,)

    def twice(g):
        return g.normal(())[0] + g.normal(())[0]  # outer-jit

    with pytest.raises(rs.GeneratorReuseError, match=re.escape(line("outer-jit"))):
        jax.jit(lambda g: rs.check_reuse(twice)(g))(G)


def test_a_key_made_and_never_used_draws_nothing():
    def f(g):
        g.key()  # a read, e.g. for a log line that was removed
        return g.normal(())

    assert no_reuse(f, G)[1] == G.construct(1)


def _scan_loss(advance: bool, remat: bool):
    def loss(w, g):
        def body(carry, _):
            gen, acc = carry
            x, next_gen = rs.random.dropout(gen, w, 0.5)  # grad-scan
            return ((next_gen if advance else gen), acc + x.sum()), None

        step = jax.checkpoint(body) if remat else body
        (g, acc), _ = lax.scan(step, (g, 0.0), None, length=4)
        return acc, g

    return loss


@pytest.mark.parametrize("remat", [False, True])
def test_grad_of_a_scan_that_advances(remat):
    # Under grad JAX splits the key derivation and the offset add (the seed's part is
    # hoisted out of the loop); the checker follows both halves.
    loss = _scan_loss(advance=True, remat=remat)
    _, g = no_reuse(lambda w, g: jax.grad(loss, has_aux=True)(w, g), jnp.ones(3), G)
    assert g == G.construct(4)
    no_reuse(lambda w, g: jax.hessian(lambda w: loss(w, g)[0])(w), jnp.ones(3), G)


def test_grad_of_a_remat_scan_that_does_not_advance():
    loss = _scan_loss(advance=False, remat=True)
    message = reuse_message(lambda w, g: jax.grad(loss, has_aux=True)(w, g), jnp.ones(3), G)
    assert_loop(message, "dropout", "grad-scan", "lax.scan")
