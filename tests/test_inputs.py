"""Bad input is refused before dispatch: negative arrays, shapes, set_state, the facade in jit."""

import concurrent.futures
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rngstate as rs
from rngstate import _checks

# -- negative values in integer arrays ---------------------------------------------------


def test_negative_step_in_a_concrete_array_is_refused_like_the_scalar():
    with pytest.raises(ValueError, match="step must be in"):
        rs.Generator(5, offset=10).construct(np.array([-1]))
    with pytest.raises(ValueError, match="step must be in"):
        rs.Generator(5, offset=10).construct(jnp.array([3, -1]))


def test_negative_offset_in_an_array_is_refused():
    with pytest.raises(ValueError, match="offset must be in"):
        rs.Generator(offset=jnp.array([-1]))
    with pytest.raises(ValueError, match="offset must be in"):
        rs.Generator(offset=np.array([0, -(2**40)], np.int64))


def test_non_negative_signed_arrays_still_work():
    gens = rs.Generator(5, offset=10).construct(np.array([0, 2], np.int32))
    assert gens.offset.tolist() == [[0, 10], [0, 12]]


def test_negative_seed_arrays_wrap_as_scalars_do():
    batch = rs.Generator(seed=np.array([-1, 3], np.int64))
    assert batch.seed.tolist() == [[2**32 - 1, 2**32 - 1], [0, 3]]


def test_traced_signed_step_is_a_type_error_and_unsigned_is_exact():
    advance = jax.jit(lambda g, s: g.construct(s))
    with pytest.raises(TypeError, match=r"astype\(jnp.uint32\)"):
        advance(rs.Generator(1, offset=4), jnp.int32(-1))
    assert advance(rs.Generator(1, offset=4), jnp.uint32(3)) == rs.Generator(1, offset=7)


def test_scan_counter_cast_to_unsigned_advances_exactly():
    def body(g, i):
        return g, g.construct(i.astype(jnp.uint32)).offset

    _, offsets = jax.lax.scan(body, rs.Generator(2, offset=5), jnp.arange(3))
    assert offsets.tolist() == [[0, 5], [0, 6], [0, 7]]


def test_traced_signed_offset_under_vmap_is_refused():
    with pytest.raises(TypeError, match="offset is a traced int32"):
        jax.vmap(lambda o: rs.Generator(1, offset=o).offset)(jnp.arange(3))


# -- shapes ------------------------------------------------------------------------------


def test_array_shape_is_accepted_as_jax_random_accepts_it():
    gen = rs.Generator(3)
    x, _ = rs.random.uniform(gen, np.array([2, 3]))
    np.testing.assert_array_equal(x, jax.random.uniform(gen.key(), (2, 3)))
    with rs.fork_rng():
        rs.manual_seed(3)
        y = rs.ops.uniform(np.array([2, 3]))
    np.testing.assert_array_equal(y, x)


def test_int_and_list_shapes_match_jax_random():
    gen = rs.Generator(3)
    np.testing.assert_array_equal(rs.random.normal(gen, 4)[0], jax.random.normal(gen.key(), 4))
    np.testing.assert_array_equal(
        rs.random.normal(gen, [np.int64(2), 2])[0], jax.random.normal(gen.key(), (2, 2))
    )


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        ((2, -3), ValueError, r"dimensions in \[0, 2\*\*53\]"),
        (1.5, TypeError, "got float 1.5"),
        ((2.0, 3), TypeError, "got tuple"),
        (True, TypeError, "got bool True"),
        ((True,), TypeError, "got tuple"),
        (None, TypeError, "got NoneType"),
        ("ab", TypeError, "got str"),
        (np.array([2.0]), TypeError, "dtype float"),
        (np.zeros((1, 2), int), TypeError, "2 dimensions"),
        ((2**62,), ValueError, r"dimensions in \[0, 2\*\*53\]"),
        ((2**27, 2**27), ValueError, "at most 2\\*\\*53 elements"),
        ((0, 2**40, 2**40), ValueError, "at most 2\\*\\*53 elements"),
    ],
)
def test_bad_shapes_are_refused_naming_shape(bad, error, match):
    with pytest.raises(error, match=match) as raised:
        rs.random.uniform(rs.Generator(0), bad)
    assert "shape" in str(raised.value)
    with pytest.raises(error, match=match):
        rs.ops.normal(bad)
    with pytest.raises(error, match=match):
        rs.init.normal(rs.Generator(0), bad)


def test_traced_shape_is_a_type_error():
    with pytest.raises(TypeError, match="concrete"):
        jax.jit(lambda s: rs.random.uniform(rs.Generator(0), s)[0])(jnp.array([2]))


def test_shape_none_stays_allowed_where_jax_random_allows_it():
    x, _ = rs.random.bernoulli(rs.Generator(1), jnp.full((3,), 0.5))
    assert x.shape == (3,)


def test_spawn_refuses_counts_that_cannot_be_allocated():
    with pytest.raises(ValueError, match=r"n must be in \[0, 2251799813685248\]"):
        rs.Generator(seed=jnp.arange(2, dtype=jnp.uint32)).spawn(2**60)
    with pytest.raises(ValueError, match="n must be in"):
        rs.Generator().spawn(2**60)
    with pytest.raises(TypeError, match="n must be an int"):
        rs.Generator().spawn(True)
    assert rs.Generator().spawn(np.int64(2))[0].batch_shape == (2,)


def test_shape_check_returns_the_canonical_tuple():
    assert _checks.shape(np.array([2, 3])) == (2, 3)
    assert _checks.shape(jnp.int32(4)) == (4,)
    assert _checks.shape([]) == ()
    assert _checks.shape((0, 2**53)) == (0, 2**53)


# -- set_state ---------------------------------------------------------------------------

STATE_GEN = rs.Generator(seed=2**40 + 5, offset=2**33 + 3)


@pytest.mark.parametrize(
    "form",
    [bytes, bytearray, lambda b: memoryview(bytes(b)), lambda b: list(bytes(b)), np.asarray],
    ids=["bytes", "bytearray", "memoryview", "list16", "numpy"],
)
def test_set_state_reads_the_forms_users_hold(form):
    state = STATE_GEN.get_state()
    assert rs.Generator().set_state(form(np.asarray(state))) == STATE_GEN
    with rs.fork_rng():
        rs.set_rng_state(form(np.asarray(state)))
        assert rs.default_generator() == STATE_GEN


def test_set_state_reads_a_real_torch_tensor():
    torch = pytest.importorskip("torch")
    state = torch.tensor(list(bytes(np.asarray(STATE_GEN.get_state()))), dtype=torch.uint8)
    assert rs.Generator().set_state(state) == STATE_GEN
    # torch's own CUDA-layout state: seed then offset, little-endian u64 (built by hand here,
    # as a CPU build has no CUDA generator)
    layout = torch.frombuffer(
        bytearray((7).to_bytes(8, "little") + (12).to_bytes(8, "little")), dtype=torch.uint8
    )
    assert rs.Generator().set_state(layout) == rs.Generator(7, offset=12)
    with pytest.raises(ValueError, match="got int64"):
        rs.Generator().set_state(torch.zeros(16, dtype=torch.int64))


@pytest.mark.parametrize("bad", [None, 3.0, object(), "x" * 16, {1: 2}])
def test_set_state_wrong_types_are_type_errors(bad):
    with pytest.raises(TypeError, match="state must be 16 bytes"):
        rs.Generator().set_state(bad)


def test_set_state_refuses_a_seed_only_8_byte_state():
    with pytest.raises(ValueError, match="a seed alone"):
        rs.Generator().set_state(bytes(8))


def test_set_state_list_values_outside_a_byte_are_refused():
    with pytest.raises(ValueError, match=r"outside \[0, 256\)"):
        rs.Generator().set_state([300] * 16)


@pytest.mark.parametrize(
    ("pair", "error"), [((1.5, 2), TypeError), ((1, -2), ValueError), ((None, 0), TypeError)]
)
def test_pair_form_errors_name_state(pair, error):
    with pytest.raises(error, match=r"state as a \(seed, offset\) pair"):
        rs.Generator().set_state(pair)


# -- the facade in jit -------------------------------------------------------------------


@pytest.mark.parametrize("read", [rs.initial_seed, rs.get_seed], ids=["initial_seed", "get_seed"])
def test_facade_reads_are_refused_inside_jit(read):
    with pytest.raises(RuntimeError, match="cannot run inside a JAX transformation"):
        jax.jit(lambda x: x + (read() or 0))(1)


# -- fuzz over op arguments --------------------------------------------------------------

_DIMS = st.one_of(
    st.integers(-3, 4),
    st.just(2**62),
    st.floats(-2, 3),
    st.booleans(),
    st.none(),
    st.text(max_size=2),
)
_SHAPES = st.one_of(
    st.lists(_DIMS, max_size=3).map(tuple),
    st.lists(st.integers(-2, 4), max_size=3).map(lambda d: np.array(d, np.int64)),
    _DIMS,
)
_INTS = st.one_of(st.integers(-(2**64), 2**65), st.booleans(), st.floats(-1, 1), st.none())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=_SHAPES, seed=_INTS, step=_INTS, op=st.sampled_from(["uniform", "normal", "bits"]))
def test_fuzz_op_arguments_give_the_right_values_or_a_clear_error(shape, seed, step, op):
    try:
        gen = rs.Generator(seed=seed).construct(step)
        got, nxt = getattr(rs.random, op)(gen, shape)
    except (TypeError, ValueError):
        return
    want = getattr(jax.random, op)(gen.key(), _checks.shape(shape))
    np.testing.assert_array_equal(got, want)
    assert nxt == gen.construct(1)


def _in_a_thread(fn):
    out = []

    def run():
        try:
            out.append(fn())
        except Exception as error:  # handed back to the test thread
            out.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out[0]


def test_facade_call_from_a_thread_started_inside_jit_is_refused():
    seen = []

    def traced(x):
        seen.append(_in_a_thread(lambda: rs.ops.normal((2,))))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            try:
                seen.append(pool.submit(rs.get_seed).result())
            except RuntimeError as error:
                seen.append(error)
        return x

    jax.jit(traced)(1)
    assert all(isinstance(s, RuntimeError) for s in seen), seen
    assert "cannot run inside a JAX transformation" in str(seen[0])


def test_stream_names_follow_the_same_rule():
    gen = rs.Generator(5)
    with pytest.raises(ValueError, match="name must be in"):
        gen.stream(np.array([-1]))
    with pytest.raises(TypeError, match="name is a traced int32"):
        jax.vmap(gen.stream)(jnp.arange(2))
    kids = jax.vmap(gen.stream)(jnp.arange(2, dtype=jnp.uint32))
    assert kids == gen.stream(jnp.arange(2, dtype=jnp.uint32))


# Counts up to the bound that do not fit in memory raise XLA's out-of-memory error, not a
# crash; the fuzz stays below or beyond them so that its draws fit on any machine.
_COUNTS = st.one_of(
    st.integers(-3, 5), st.integers(2**52 + 1, 2**70), st.booleans(), st.floats(0, 3)
)


@settings(max_examples=30, deadline=None)
@given(n=_COUNTS)
def test_fuzz_spawn_counts_give_split_keys_or_a_clear_error(n):
    gen = rs.Generator(9, offset=2)
    try:
        kids, nxt = gen.spawn(n)
    except (TypeError, ValueError):
        return
    np.testing.assert_array_equal(kids.seed, jax.random.key_data(jax.random.split(gen.key(), n)))
    assert nxt == gen.construct(1)


@pytest.mark.parametrize(
    "op,args",
    [
        ("permutation", (2**62,)),
        ("choice", (2**60,)),
        ("orthogonal", (2**27,)),  # (n, n): 2**54 elements
        ("orthogonal", (2**20, (2**14,))),  # a batch of 2**14 (n, n) matrices
        ("ball", (2**60,)),
    ],
)
def test_integer_sizes_past_the_bound_are_refused_before_dispatch(op, args):
    # these aborted the interpreter in XLA, as a huge shape did
    with pytest.raises(ValueError, match=r"at most 2\*\*53 elements"):
        getattr(rs.random, op)(rs.Generator(0), *args)


def test_integer_sizes_within_the_bound_still_draw_jax_randoms_values():
    g = rs.Generator(3, 4)
    key = g.key()
    for op, args in [("permutation", (7,)), ("choice", (5, (3,))), ("ball", (3,))]:
        got, _ = getattr(rs.random, op)(g, *args)
        np.testing.assert_array_equal(got, getattr(jax.random, op)(key, *args))


# -- concrete 0-d arrays where jax.random takes a static int or bool -----------------------------


@pytest.mark.parametrize(
    "op,args,kwargs",
    [
        ("permutation", (np.array(5),), {}),
        ("permutation", (jnp.array(4, jnp.int16),), {}),
        ("permutation", (np.arange(6).reshape(2, 3),), {"axis": np.array(1),
                                                         "independent": np.array(True)}),
        ("ball", (np.array(3),), {}),
        ("ball", (np.uint8(2),), {"shape": (4,)}),
        ("choice", (np.array(5), (3,)), {}),
        ("choice", (5, (3,)), {"replace": np.array(1)}),
        ("choice", (5, (3,)), {"replace": np.array(False)}),
        ("choice", (jnp.arange(12.0).reshape(3, 4), (2,)), {"axis": jnp.array(1)}),
        ("orthogonal", (np.array(3),), {}),
        ("orthogonal", (jnp.array(4),), {"m": np.array(2, np.int64)}),
        ("categorical", (jnp.zeros((2, 3)),), {"axis": np.array(0)}),
    ],
)
def test_a_concrete_0d_array_for_a_static_int_is_read_as_jax_random_reads_it(op, args, kwargs):
    # Before, the array was traced like a value and JAX raised ConcretizationTypeError.
    gen = rs.Generator(11, offset=2)
    expected = getattr(jax.random, op)(gen.key(), *args, **kwargs)
    for values, after in (getattr(rs.random, op)(gen, *args, **kwargs),
                          getattr(gen, op)(*args, **kwargs)):
        assert values.dtype == expected.dtype and values.shape == expected.shape
        np.testing.assert_array_equal(np.asarray(values), np.asarray(expected))
        assert after == gen.construct(1)


def test_a_0d_array_size_past_the_bound_is_refused_as_the_int_is():
    with pytest.raises(ValueError, match="x must be at most 2\\*\\*53 elements"):
        rs.random.permutation(rs.Generator(0), np.array(2**62, np.int64))


def test_a_traced_0d_size_is_still_refused_by_jax_as_it_is_for_jax_random():
    gen = rs.Generator(0)
    with pytest.raises(jax.errors.ConcretizationTypeError):
        jax.jit(lambda n: jax.random.permutation(gen.key(), n))(5)
    with pytest.raises(jax.errors.ConcretizationTypeError):
        jax.jit(lambda n: rs.random.permutation(gen, n))(5)
