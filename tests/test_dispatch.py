"""The eager dispatch path: its per-signature plans keep nothing that outlives a call's
context (no device array, sharding or mesh) and never mix up values that compare equal."""

from __future__ import annotations

import pathlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from host_devices import run_on_host_devices

import rngstate as rs

WORKER = pathlib.Path(__file__).with_name("dispatch_mesh_worker.py")
GEN = rs.Generator(seed=2**40 + 5, offset=7)


def _bits(x) -> bytes:
    x = np.asarray(x)
    return x.dtype.str.encode() + x.tobytes()


def test_nothing_kept_at_module_level_is_a_device_array_sharding_or_mesh():
    rs.random.uniform(GEN, (3,), minval=0.5)
    rs.random.bernoulli(GEN, 0.3, (3,))
    rs.random.dropout(GEN, jnp.ones(3), 0.5)
    rs.random.gamma(GEN, jnp.array([0.5, 2.0]), (3, 2))
    forbidden = (jax.Array, np.ndarray, jax.sharding.Sharding, jax.sharding.Mesh)
    for plan in list(rs.random._plans.values()):
        held = [plan.static]
        held += [leaf for slot in plan.static.slots if isinstance(slot, tuple) for leaf in slot[1]]
        held += [getattr(leaf, "value", None) for leaf in held]
        assert not any(isinstance(h, forbidden) for h in held), plan.static.slots
    # Nor does the last call each op remembers (a call passing an array is not remembered).
    for binder in _binders():
        if binder.last is not None:
            flags, args, names, values, plan, traced = binder.last
            leaves = jax.tree.leaves((args, values, traced))
            assert not any(isinstance(leaf, forbidden) for leaf in leaves), binder.name


def _binders() -> list:
    ops = [getattr(rs.random, name) for name in rs.random.OP_NAMES if name != "dropout"]
    return [op.__rngstate_op__[1] for op in ops] + [rs.random._DROPOUT[1]]


@pytest.fixture(scope="module")
def mesh_report() -> dict:
    return run_on_host_devices(4, WORKER, timeout=600)


def test_draws_after_a_mesh_context_neither_fail_nor_stay_on_its_devices(mesh_report):
    assert mesh_report["device_count"] == 4
    for step in mesh_report["steps"]:
        assert step["error"] is None, step
        assert step["same"], step
        if "after the mesh" in step["step"]:
            assert step["devices"] == 1, step  # not left sharded on the old mesh


@pytest.mark.parametrize("first, then", [(0.0, -0.0), (-0.0, 0.0)])
def test_signed_zeros_are_not_confused(first, then):
    # loc + scale * x with scale = 0 keeps the sign of loc where x > 0: the two zeros differ.
    def ours(loc):
        return rs.random.double_sided_maxwell(GEN, loc, 0.0, (64,))[0]

    def raw(loc):
        return jax.random.double_sided_maxwell(GEN.key(), loc, 0.0, (64,))

    assert _bits(raw(first)) != _bits(raw(then))  # the case can tell the zeros apart
    assert _bits(ours(first)) == _bits(raw(first))
    assert _bits(ours(then)) == _bits(raw(then))


@pytest.mark.parametrize(
    "call",
    [
        lambda op, g: op.uniform(g, (5,)),  # both scalars defaulted
        lambda op, g: op.uniform(g, (5,), jnp.bfloat16, 0.25, 3.0),
        lambda op, g: op.uniform(g, (5,), maxval=3),  # an int where jax.random says float
        lambda op, g: op.bernoulli(g, shape=(5,)),  # p defaulted
        lambda op, g: op.bernoulli(g, np.float32(0.7), (5,)),
        lambda op, g: op.randint(g, (5,), -3, 9, jnp.int8),
        lambda op, g: op.truncated_normal(g, -1.5, 2.0, (5,), jnp.bfloat16),
        lambda op, g: op.normal(g, [2, 3]),
        lambda op, g: op.gamma(g, jnp.array([0.5, 2.0]), (3, 2)),
    ],
)
def test_a_repeated_signature_draws_what_raw_jax_random_draws(call):
    # The first call prepares the plan, the second reuses it; both must be raw jax.random's,
    # dtype (weak types included) and bits, with x64 off and on.
    for x64 in (False, True):
        with jax.enable_x64(x64):
            expected = _bits(call(jax.random, GEN.key()))
            for _ in range(2):
                values, nxt = call(rs.random, GEN)
                assert _bits(values) == expected
                assert nxt == GEN.construct(1)


def test_a_changed_global_setting_is_not_served_an_old_plan():
    with rs.fast.disabled():
        a, _ = rs.random.uniform(GEN, (100,))
    b, _ = rs.random.uniform(GEN, (100,))
    with rs.fast.disabled():
        c, _ = rs.random.uniform(GEN, (100,))
    assert _bits(a) == _bits(b) == _bits(c) == _bits(jax.random.uniform(GEN.key(), (100,)))
    with jax.enable_x64(True):
        d, _ = rs.random.uniform(GEN, (4,), jnp.float64)
    assert d.dtype == jnp.float64


def test_bad_arguments_still_raise_on_every_call():
    rs.random.uniform(GEN, (2,))
    for _ in range(2):
        with pytest.raises(TypeError, match="unexpected keyword argument 'shap'"):
            rs.random.uniform(GEN, shap=(2,))


def test_a_call_whose_array_argument_a_check_replaced_is_not_kept():
    # A pre-dispatch check may put back an array argument as what it holds (a shape array as
    # its tuple); plans key arrays by shape and dtype only, so such a call must not be kept.
    binder = rs.random._DROPOUT[1]
    args = (jnp.ones(3), 0.5)
    assert binder.split(binder.bind(args, {}), args, {})[2] is not None
    replaced = {**binder.bind(args, {}), "x": np.ones(3)}
    assert binder.split(replaced, args, {})[2] is None


def test_compiled_in_values_of_other_types_or_bits_never_share_a_signature():
    # Python's 1 == 1.0 == True and 0.0 == -0.0 would let one plan serve another's call.
    values = [1, True, 1.0, np.int32(1), 0, False, 0.0, -0.0, (1,), [1], (True,), (1.0,)]
    keys = [rs.random._signature_of(v, False) for v in values]
    assert len(set(keys)) == len(values), keys
    # Numbers passed to value parameters are traced: keyed by type, never by value.
    assert rs.random._signature_of(2, True) == rs.random._signature_of(3, True) != (
        rs.random._signature_of(2.0, True)
    )


def test_the_last_call_is_reused_only_for_the_same_objects_under_the_same_settings():
    shape = (100,)
    binder = rs.random.uniform.__rngstate_op__[1]
    on, _ = rs.random.uniform(GEN, shape)
    assert binder.last[1] == (shape,)  # remembered
    assert binder.last[4].op[0] is rs.fast.fast_sampler(jax.random.uniform)
    # The same shape object with the fast path off is served by jax.random's own sampler.
    with rs.fast.disabled():
        plain, _ = rs.random.uniform(GEN, shape)
        assert binder.last[4].op[0] is jax.random.uniform
    assert _bits(plain) == _bits(on)
    # The same shape object with another global setting: jax.random draws other values.
    with jax.threefry_partitionable(False), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        off, _ = rs.random.uniform(GEN, shape)
        raw_off = jax.random.uniform(GEN.key(), shape)
    assert _bits(off) == _bits(raw_off) != _bits(on)
    assert _bits(rs.random.uniform(GEN, shape)[0]) == _bits(on)
    # A list is the same object after it changed: it is never taken as unchanged.
    shape_list = [2, 3]
    rs.random.normal(GEN, shape_list)
    shape_list.append(4)
    grown, _ = rs.random.normal(GEN, shape_list)
    assert _bits(grown) == _bits(jax.random.normal(GEN.key(), (2, 3, 4)))
    # Another keyword with the same value object is another call.
    three = 3.0
    a, _ = rs.random.uniform(GEN, shape, maxval=three)
    b, _ = rs.random.uniform(GEN, shape, minval=three, maxval=4.0)
    assert _bits(a) == _bits(jax.random.uniform(GEN.key(), shape, maxval=3.0))
    assert _bits(b) == _bits(jax.random.uniform(GEN.key(), shape, minval=3.0, maxval=4.0))
    # The same first positional object with another second one, or with fewer or none.
    wide, _ = rs.random.uniform(GEN, shape, jnp.float32)
    half, _ = rs.random.uniform(GEN, shape, jnp.float16)
    assert half.dtype == jnp.float16 and _bits(half) == _bits(
        jax.random.uniform(GEN.key(), shape, jnp.float16)
    )
    assert _bits(rs.random.uniform(GEN, shape)[0]) == _bits(wide) == _bits(on)
    for _ in range(2):
        scalar, _ = rs.random.uniform(GEN)
        assert scalar.shape == () and _bits(scalar) == _bits(jax.random.uniform(GEN.key()))


def test_a_shape_built_anew_counts_as_unchanged_only_when_it_is_equal_ints(monkeypatch):
    # x.shape or (n,) is a new tuple on every call: equal items of type int make it the
    # same call; anything else equal to it (NumPy ints, another length, a list) does not.
    binder = rs.random.uniform.__rngstate_op__[1]
    planned = []
    make_plan = rs.random._plan
    monkeypatch.setattr(binder, "last", None)
    monkeypatch.setattr(rs.random, "_plan", lambda *a: planned.append(a[2][0]) or make_plan(*a))
    n = 100
    for shape, plans in [
        ((n,), 1),
        (tuple([n]), 1),  # new and equal: the last call's plan
        ((np.int64(n),), 2),
        ((n,), 3),  # the last call's items are not ints
        ((n + 1,), 4),
        ([n], 5),
        ([n], 6),  # a list is never taken as unchanged
    ]:
        values, _ = rs.random.uniform(GEN, shape)
        assert len(planned) == plans, (shape, planned)
        assert _bits(values) == _bits(jax.random.uniform(GEN.key(), tuple(map(int, shape))))


@pytest.mark.parametrize(
    "value, fixed",
    [
        ((1, (2, 3.0), "a", None, True, -0.0, 1j), True),
        (jnp.float32, True),
        (np.dtype("float32"), True),
        (np.float32(0.5), True),
        (np.zeros(1, "i4,i4")[0], False),  # a structured scalar is a view of its array
        ([1, 2], False),  # mutable
        ((1, [2]), False),  # mutable inside
        (np.ones(2), False),  # an array: never kept
        (jnp.ones(2), False),
        ({"a": 1}, False),
        (type("Sub", (int,), {})(1), False),  # a subclass may carry anything
    ],
)
def test_only_immutable_arguments_without_arrays_count_as_unchanged(value, fixed):
    assert rs.random._fixed(value) is fixed


def test_a_batch_of_generators_is_refused_on_every_call():
    batch = rs.Generator(seed=jnp.arange(3))
    for call in (
        lambda: rs.random.uniform(batch, (2,)),
        lambda: batch.normal((2,)),
        lambda: rs.random.dropout(batch, jnp.ones(2), 0.5),
    ):
        for _ in range(2):
            with pytest.raises(ValueError, match=r"got a batch of shape \(3,\).*jax.vmap"):
                call()
