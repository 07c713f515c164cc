"""rngstate._jax_compat: each read of JAX's internals against JAX's public behaviour.

CI runs this file on jax 0.6.2 (make test-oldest), 0.10.2 (make test) and 0.12.0.1 (make
test-newest): the layouts differ between them (lax.scan's parameters moved in 0.12), so each
end of the range takes its own branch here.
"""

from __future__ import annotations

import inspect
import os
import pathlib

import jax
import jax.numpy as jnp
import pytest

from rngstate import _jax_compat

PACKAGE = pathlib.Path(_jax_compat.__file__).parent


def test_no_other_module_reads_jax_internals():
    # One place for every read of jax._src: a new JAX breaks one module, with its fallbacks.
    readers = sorted(
        path.name
        for path in PACKAGE.glob("*.py")
        if "jax._src" in path.read_text() and path.name != "_jax_compat.py"
    )
    assert readers == []


@pytest.mark.parametrize(
    "transform",
    [
        jax.jit,
        jax.vmap,
        jax.grad,
        lambda f: lambda x: jax.lax.scan(lambda c, _: (f(c), None), x, None, 1)[0],
    ],
    ids=["jit", "vmap", "grad", "scan"],
)
def test_is_eager_is_false_under_every_transformation(transform):
    seen = []

    def f(x):
        seen.append(_jax_compat.is_eager())
        return x * 1.0

    transform(f)(jnp.ones(()) if transform is jax.grad else jnp.ones((2,)))
    assert _jax_compat.DETECTABLE
    assert seen and not any(seen)
    assert _jax_compat.is_eager() is True


@pytest.mark.parametrize(
    ("state", "name"),
    [
        (_jax_compat.X64, "jax_enable_x64"),
        (_jax_compat.THREEFRY_PARTITIONABLE, "jax_threefry_partitionable"),
    ],
)
def test_config_states_follow_jax_config(state, name):
    before = getattr(jax.config, name)
    try:
        for value in (not before, before):
            jax.config.update(name, value)
            assert state.value is value
    finally:
        jax.config.update(name, before)


def test_public_flag_fallback_reads_jax_config():
    flag = _jax_compat._PublicFlag("jax_enable_x64")
    assert flag.value is jax.config.jax_enable_x64


def _only_eqn(jaxpr, primitive):
    (eqn,) = [e for e in jaxpr.eqns if e.primitive.name == primitive]
    return eqn


def test_scan_layout_of_a_real_scan():
    k1, k2 = jnp.float32(2.0), jnp.ones(3)

    def body(carry, x):  # two closed-over arrays become constants; a carry of two
        a, b = carry
        return (a + x * k1, b + k2.sum()), a

    jaxpr = jax.make_jaxpr(lambda c, xs: jax.lax.scan(body, c, xs))((1.0, 2.0), jnp.ones(4))
    eqn = _only_eqn(jaxpr.jaxpr, "scan")
    n_consts, n_carry = _jax_compat.scan_layout(eqn.params)
    assert n_carry == 2
    assert n_consts + n_carry + 1 == len(eqn.invars)  # one scanned input


def test_scan_layout_of_the_older_parameters():
    # jax < 0.12 names the counts; this branch is the one 0.6.2 and 0.10.2 take above.
    assert _jax_compat.scan_layout({"num_consts": 3, "num_carry": 1, "length": 5}) == (3, 1)


def test_scan_layout_refuses_an_unknown_layout():
    with pytest.raises(NotImplementedError, match="lax.scan"):
        _jax_compat.scan_layout({"length": 5})


def test_while_layout_of_a_real_loop():
    limit, step = jnp.float32(3.0), jnp.float32(1.0)
    jaxpr = jax.make_jaxpr(
        lambda c: jax.lax.while_loop(lambda c: c < limit, lambda c: c + step, c)
    )(0.0)
    eqn = _only_eqn(jaxpr.jaxpr, "while")
    cond_consts, body_consts = _jax_compat.while_layout(eqn.params)
    assert cond_consts + body_consts + 1 == len(eqn.invars)  # one carried value
    assert (cond_consts, body_consts) in ((1, 1), (0, 0))  # constants or inlined literals


def test_is_user_filename_follows_where_jax_is():
    assert not _jax_compat.is_user_filename(jax.__file__)
    assert not _jax_compat.is_user_filename(inspect.getfile(jax.lax.scan))
    assert _jax_compat.is_user_filename(__file__)


def test_tracing_code_dir_is_on_the_stack_while_tracing():
    assert os.path.isdir(_jax_compat.TRACING_CODE_DIR)
    found = []

    def f(x):
        found.append(
            any(_jax_compat.TRACING_CODE_DIR in frame.filename for frame in inspect.stack())
        )
        return x

    jax.jit(f)(1.0)
    assert found == [True]


def test_backends_started_after_a_computation():
    jnp.zeros(1).block_until_ready()
    assert _jax_compat.backends_started() is True
