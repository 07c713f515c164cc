"""The immutable generator state ``(seed, offset)`` and its key derivation.

A :class:`Generator` is a JAX pytree with two ``uint32[..., 2]`` leaves. Nothing in it is
static, so a jitted function taking a generator compiles once whatever the seed or offset.
"""

from __future__ import annotations

import difflib
import math
import secrets
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from rngstate import _checks, _partitionable, _u64, reuse
from rngstate.threefry import threefry2x32

__all__ = ["Generator", "derive_key"]

_STATE_BYTES = 16

# Domain-separation keys of `Generator.stream`, one per kind of name: eight ASCII bytes each,
# read as a big-endian u64. Int and str names are hashed under different keys, so they never
# share a derivation path.
_STREAM_DOMAIN_INT = int.from_bytes(b"rs:strmI", "big")
_STREAM_DOMAIN_STR = int.from_bytes(b"rs:strmS", "big")
_STREAM_NAME_PERSON = b"rngstate.stream"  # blake2b personalisation for str names


def derive_key(seed: jax.Array, offset: jax.Array) -> jax.Array:
    """The contract's key: ``threefry2x32_20(key=seed words, counter=offset words)``.

    ``seed`` and ``offset`` are ``uint32[..., 2]`` words ``[high, low]``; the result is a
    typed ``threefry2x32`` key array of the broadcast leading shape. For ``seed < 2**31``
    and ``offset < 2**32`` it equals ``jax.random.fold_in(jax.random.key(seed), offset)``:

    >>> import jax
    >>> from rngstate import _u64
    >>> k = derive_key(_u64.to_words(5, "seed", allow_negative=False),
    ...                _u64.to_words(7, "offset", allow_negative=False))
    >>> bool((jax.random.key_data(k) ==
    ...       jax.random.key_data(jax.random.fold_in(jax.random.key(5), 7))).all())
    True
    """
    return _rngstate_derive_key(seed, offset)


# One named jitted call per derivation: an eager `key()` is one dispatch, and every key a
# traced function consumes shows in its jaxpr as this call on the (seed, offset) it consumed,
# which is how `rngstate.check_reuse` finds them. Inlined under an outer jit.
@jax.jit
def _rngstate_derive_key(seed: jax.Array, offset: jax.Array) -> jax.Array:
    words = threefry2x32(seed[..., 0], seed[..., 1], offset[..., 0], offset[..., 1])
    # The barrier keeps XLA from fusing this 20-round hash into the consumer's loop, where
    # it would be recomputed per element (and, on CPU, push a 10-element draw from ~10 us to
    # ~45 us by sending the bloated fusion to the thread pool). Values are unaffected.
    data = jax.lax.optimization_barrier(jnp.stack(words, axis=-1))
    return jax.random.wrap_key_data(data, impl="threefry2x32")

if TYPE_CHECKING:
    # The ops rngstate.random attaches as methods, typed by a stub it generates (_stubgen).
    from rngstate._random_ops import GeneratorOps as _Ops
else:
    _Ops = object

DERIVE_KEY_CALL = _rngstate_derive_key.__name__
"""The name of the jitted call that derives a key, as it appears in a jaxpr."""


class Generator(_Ops):
    """An immutable random-number generator: a 64-bit ``seed`` and a 64-bit ``offset``.

    Every random operation derives one key from ``(seed, offset)`` and returns the values
    with a new generator whose offset is one further on; the old generator is unchanged.
    It is a JAX pytree of two ``uint32[..., 2]`` arrays (``[high word, low word]``), so it
    passes through ``jax.jit``, ``jax.vmap``, ``lax.scan`` and checkpoint libraries as data.

    Args:
      seed: an integer in ``[-2**63, 2**64)`` (negatives wrap mod 2**64, as in PyTorch), or
        an integer JAX/NumPy array (traced too) for a batch of generators.
      offset: an integer in ``[0, 2**64)``, or an integer array of such values; a traced
        array must be unsigned (a signed one could hold a negative, see :meth:`construct`).

    >>> g = Generator(seed=12)
    >>> g
    Generator(seed=12, offset=0)
    >>> x, g = g.normal((2,))
    >>> g
    Generator(seed=12, offset=1)
    >>> g.construct(100)
    Generator(seed=12, offset=101)
    """

    __slots__ = ("seed", "offset")
    seed: jax.Array
    offset: jax.Array

    def __init__(self, seed: Any = 0, offset: Any = 0) -> None:
        seed_words = _u64.to_words(seed, "seed", allow_negative=True)
        offset_words = _u64.to_words(offset, "offset", allow_negative=False)
        batch = jnp.broadcast_shapes(seed_words.shape[:-1], offset_words.shape[:-1])
        object.__setattr__(self, "seed", jnp.broadcast_to(seed_words, (*batch, 2)))
        object.__setattr__(self, "offset", jnp.broadcast_to(offset_words, (*batch, 2)))

    @classmethod
    def from_words(cls, seed: Any, offset: Any) -> Generator:
        """Build a generator from its leaves as they are (``uint32[..., 2]`` words), unchecked.

        This is how pytree unflattening rebuilds generators; use it for leaves you got from
        another generator.

        >>> g = Generator(3, 4)
        >>> Generator.from_words(g.seed, g.offset)
        Generator(seed=3, offset=4)
        """
        self = _new_object(cls)
        _set_seed(self, seed)  # the slots' own setters: every op's result is built here
        _set_offset(self, offset)
        return self

    # -- immutability -------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"Generator is immutable: cannot set {name!r}; methods return a new Generator"
        )

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Generator is immutable: cannot delete {name!r}")

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: name the miss and suggest the nearest op.
        known = [n for n in dir(type(self)) if not n.startswith("_")]
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise AttributeError(f"Generator has no attribute or op {name!r}{hint}")

    # -- reading the state --------------------------------------------------------------

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The leading shape of a batch of generators; ``()`` for a single one.

        >>> Generator(seed=jnp.arange(4)).batch_shape
        (4,)
        """
        return tuple(self.seed.shape[:-1])

    def key(self) -> jax.Array:
        """The typed ``threefry2x32`` key for the current ``(seed, offset)`` (contract §2).

        >>> import jax
        >>> jax.random.key_data(Generator(seed=0).key()).tolist()
        [1797259609, 2579123966]
        """
        return derive_key(self.seed, self.offset)

    def initial_seed(self, *, signed: bool = False) -> int:
        """The seed as a Python int in ``[0, 2**64)`` (PyTorch's reading; MindSpore / PyTorch name).

        ``signed=True`` reads the same 64 bits as an int64 in ``[-2**63, 2**63)``, as
        MindSpore's ``initial_seed()`` returns it (``-7`` stays ``-7``).

        >>> Generator(seed=-7).initial_seed(), Generator(seed=-7).initial_seed(signed=True)
        (18446744073709551609, -7)
        """
        self._require_single_concrete("initial_seed")
        number = _u64.from_words(self.seed)
        return _u64.as_signed(number) if signed else number

    def get_state(self) -> jax.Array:
        """The state as ``uint8[..., 16]``: seed, then offset, each a little-endian u64.

        The byte layout of MindSpore 2.x ``Generator.get_state()`` and of a PyTorch CUDA
        generator state, so either can be loaded with :meth:`set_state`.

        >>> Generator(seed=1, offset=2).get_state().tolist()
        [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]
        """
        shifts = jnp.arange(0, 32, 8, dtype=jnp.uint32)

        def little_endian(words: jax.Array) -> jax.Array:
            low_high = jnp.stack([words[..., 1], words[..., 0]], axis=-1)  # low word first
            octets = (low_high[..., None] >> shifts) & jnp.uint32(0xFF)
            return octets.reshape(*words.shape[:-1], 8).astype(jnp.uint8)

        return jnp.concatenate([little_endian(self.seed), little_endian(self.offset)], -1)

    # -- new generators -----------------------------------------------------------------

    def construct(self, step: Any = 1) -> Generator:
        """A generator with the offset advanced by ``step`` (mod 2**64), the seed kept.

        ``step`` is an integer in ``[0, 2**64)`` or an integer array of such values (a
        negative is a ``ValueError``: it would rewind onto numbers already drawn). A traced
        ``step`` must have an unsigned dtype, since its sign cannot be checked under jit; a
        signed one (a ``lax.scan`` or ``fori_loop`` counter is ``int32``) is a ``TypeError``
        until cast: ``g.construct(i.astype(jnp.uint32))``.

        >>> Generator(seed=1, offset=2**64 - 1).construct(2)
        Generator(seed=1, offset=1)
        >>> Generator(seed=1).construct(jnp.arange(3)).batch_shape
        (3,)
        """
        step_words = _u64.to_words(step, "step", allow_negative=False)
        offset = _u64.add(self.offset, step_words)
        # A batch of steps makes a batch of generators: both leaves get the batch shape, so
        # the result maps under jax.vmap like any other batch.
        seed = jnp.broadcast_to(self.seed, offset.shape)
        return Generator.from_words(seed, offset)

    def manual_seed(self, seed: Any) -> Generator:
        """A generator with a new seed and offset 0 (PyTorch / MindSpore name).

        >>> Generator(seed=1, offset=9).manual_seed(7)
        Generator(seed=7, offset=0)
        """
        return Generator(seed=seed)

    def reseed(self) -> Generator:
        """A generator with a fresh 64-bit seed from OS entropy and offset 0.

        MindSpore and PyTorch call this ``seed()``; here ``seed`` is the state leaf, so the
        method has its own name (the module function :func:`rngstate.seed` keeps the name).

        >>> g = Generator().reseed()
        >>> g.offset.tolist(), 0 <= g.initial_seed() < 2**64
        ([0, 0], True)
        """
        return Generator(seed=secrets.randbits(64))

    def set_state(self, state: Any) -> Generator:
        """A generator from a saved state: 16 bytes (seed then offset) or a ``(seed, offset)`` pair.

        The bytes are those of :meth:`get_state` (seed then offset, little-endian u64s, as
        MindSpore 2.x and PyTorch CUDA generators store them), as whatever holds them: a
        ``uint8[..., 16]`` JAX or NumPy array, a torch or MindSpore tensor (read through
        ``__dlpack__`` or ``__array__``; neither library is imported), ``bytes``,
        ``bytearray``, ``memoryview``, or a list of 16 ints in ``[0, 256)``. A tuple of two
        integers is a ``(seed, offset)`` pair, MindSpore 1.x style.

        An 8-byte state (a seed alone) is refused: loading it at offset 0 would draw again
        the numbers that seed already gave. Use ``manual_seed(int.from_bytes(b, "little"))``
        to start such a seed over on purpose. ``None`` and objects that hold no array are a
        ``TypeError``; a wrong length, dtype or value is a ``ValueError``.

        >>> g = Generator(seed=2**40 + 5, offset=3)
        >>> Generator().set_state(g.get_state())
        Generator(seed=1099511627781, offset=3)
        >>> Generator().set_state(bytes(g.get_state()))
        Generator(seed=1099511627781, offset=3)
        >>> Generator().set_state((9, 4))
        Generator(seed=9, offset=4)
        """
        if isinstance(state, tuple) and len(state) == 2:
            try:
                return Generator(seed=state[0], offset=state[1])
            except (TypeError, ValueError) as error:
                raise type(error)(f"state as a (seed, offset) pair: {error}") from None
        octets = _state_octets(state)
        if octets.ndim < 1 or octets.shape[-1] != _STATE_BYTES:
            seed_only = " (a seed alone; see the docstring)" if octets.shape[-1:] == (8,) else ""
            raise ValueError(
                "state must be uint8[..., 16] (seed then offset, little-endian u64); "
                f"got {octets.dtype}{list(octets.shape)}{seed_only}"
            )
        octets = jnp.asarray(octets, jnp.uint32).reshape(*octets.shape[:-1], 4, 4)
        words = (octets << jnp.arange(0, 32, 8, dtype=jnp.uint32)).sum(-1, dtype=jnp.uint32)
        # words: [seed lo, seed hi, offset lo, offset hi]
        seed = jnp.stack([words[..., 1], words[..., 0]], axis=-1)
        offset = jnp.stack([words[..., 3], words[..., 2]], axis=-1)
        return Generator.from_words(seed, offset)

    def spawn(self, n: int) -> tuple[Generator, Generator]:
        """``n`` independent child generators, and this generator advanced by one.

        The children's seeds are the key data of ``jax.random.split(self.key(), n)`` and
        their offsets are 0; they come as one batched generator of batch shape ``(n,)``,
        ready for ``jax.vmap``. ``n`` is an int in ``[0, 2**52]`` (the children's words,
        ``2 * n`` per generator of a batch, stay within :data:`rngstate._checks.MAX_ELEMENTS`).

        >>> kids, g = Generator(seed=1).spawn(4)
        >>> kids.batch_shape, g
        ((4,), Generator(seed=1, offset=1))
        """
        n = _checks.count(n, "n", per_item=2 * math.prod(self.batch_shape))
        _partitionable.warn_if_off()  # jax.random.split's keys depend on the flag
        if reuse._eager_active:
            reuse.record("spawn", self)
        keys = self.key().reshape(-1)
        children = jax.vmap(lambda k: jax.random.key_data(jax.random.split(k, int(n))))(keys)
        seeds = children.reshape(*self.batch_shape, int(n), 2)
        return Generator.from_words(seeds, jnp.zeros_like(seeds)), self.construct(1)

    def stream(self, name: int | str) -> Generator:
        """An independent generator for one purpose, fixed by this seed and ``name`` alone.

        ``name`` is a ``str`` (a purpose or a layer path: ``"params"``, ``"encoder/3/mlp"``)
        or an integer in ``[0, 2**64)`` (Python, NumPy, or an integer JAX array, traced too).
        The offset of this generator plays no part and this generator is not advanced: the
        same seed and name give the same stream in any order and at any point of a run, so
        each layer can own a stream without threading one generator through the others.
        Streams nest: ``g.stream("params").stream(3)``. For seed ``s`` (words ``[hi, lo]``):

            domain = threefry2x32_20(key=TAG, counter=[s >> 32, s & 0xffffffff])
            seed'  = threefry2x32_20(key=domain, counter=[w >> 32, w & 0xffffffff])
            offset' = 0

        where an int name is ``w`` itself and ``TAG`` is the u64 of the ASCII bytes
        ``"rs:strmI"``, and a str name is ``w = `` the big-endian u64 of
        ``blake2b(name.encode("utf-8"), digest_size=8, person=b"rngstate.stream")`` with
        ``TAG = "rs:strmS"``. Collisions: for one parent, distinct int names give distinct
        seeds (Threefry is a permutation of the counter under a fixed key); distinct str names
        share a seed only if their 64-bit digests collide (probability 2**-64 per pair); an
        int and a str name are hashed under different domain keys, so they share a seed only
        by a 2**-64 chance, as do streams of different parents. The parent's own keys are
        Threefry under the parent seed, never under a domain key, so a stream's seed is
        unrelated to any key the parent samples with.

        >>> g = Generator(seed=7)
        >>> g.stream("dropout") == g.construct(5).stream("dropout")
        True
        >>> g.stream("dropout") == g.stream("params"), g.stream(0) == g.stream("0")
        (False, False)
        """
        if isinstance(name, str):
            name_number = _u64.text_to_int(name, person=_STREAM_NAME_PERSON)
            name_words = _u64.to_words(name_number, "name", allow_negative=False)
            tag = _STREAM_DOMAIN_STR
        else:
            try:
                name_words = _u64.to_words(name, "name", allow_negative=False)
            except TypeError:
                if isinstance(name, jax.core.Tracer):
                    raise  # its own message: a traced name must be unsigned
                raise TypeError(
                    "name must be a str or an integer in [0, 2**64), "
                    f"got {type(name).__name__} {name!r}"
                ) from None
            tag = _STREAM_DOMAIN_INT
        tag_words = _u64.to_words(tag, "tag", allow_negative=False)
        seed = _stream_seed(self.seed, tag_words, name_words)
        return Generator.from_words(seed, jnp.zeros_like(seed))

    # -- value semantics ----------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Generator):
            return NotImplemented
        return bool(
            self.seed.shape == other.seed.shape
            and jnp.array_equal(self.seed, other.seed)
            and jnp.array_equal(self.offset, other.offset)
        )

    __hash__ = None  # type: ignore[assignment]  # holds arrays; equal values, no identity

    def __repr__(self) -> str:
        # Never raises: jax.eval_shape, Orbax targets, eqx.partition and tree maps put
        # ShapeDtypeStructs, tracers, None or anything else in the leaves.
        seed, offset = _as_int(self.seed), _as_int(self.offset)
        if seed is not None and offset is not None:
            return f"Generator(seed={seed}, offset={offset})"
        return f"Generator(seed={_describe(self.seed)}, offset={_describe(self.offset)})"

    def _require_single_concrete(self, what: str) -> None:
        if not (_u64.is_concrete(self.seed) and _u64.is_concrete(self.offset)):
            raise TypeError(
                f"{what}() reads the state as Python values and cannot run inside "
                "jit/vmap/grad; use the .seed and .offset arrays there"
            )
        if self.batch_shape:
            raise ValueError(
                f"{what}() needs a single generator, got batch shape {self.batch_shape}"
            )


@jax.jit  # one dispatch instead of two eager 20-round hashes; inlined under an outer jit
def _stream_seed(seed: jax.Array, tag: jax.Array, name: jax.Array) -> jax.Array:
    domain = threefry2x32(tag[0], tag[1], seed[..., 0], seed[..., 1])
    return jnp.stack(threefry2x32(domain[0], domain[1], name[..., 0], name[..., 1]), axis=-1)


_STATE_FORMS = (
    "state must be 16 bytes (uint8[16]: seed then offset, little-endian u64) as an array, a "
    "tensor, bytes, a memoryview or a list of ints, or a (seed, offset) pair"
)


def _state_octets(state: Any) -> Any:
    """The bytes of a state as a uint8 array (JAX arrays, traced too, stay JAX arrays)."""
    if isinstance(state, jax.Array):
        array = state
    elif isinstance(state, (bytes, bytearray)):
        array = np.frombuffer(state, np.uint8)
    elif isinstance(state, memoryview):
        byte_view = state.format == "B"
        array = np.frombuffer(state.tobytes(), np.uint8) if byte_view else np.asarray(state)
    elif isinstance(state, (list, tuple)):
        try:
            array = np.asarray(state)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{_STATE_FORMS}; got a {type(state).__name__} of non-ints") from None
    elif isinstance(state, np.ndarray):
        array = state
    elif hasattr(state, "__dlpack__") or hasattr(state, "__array__"):
        array = _foreign_array(state)
    else:
        raise TypeError(f"{_STATE_FORMS}; got {type(state).__name__}")
    if array.dtype == np.uint8:
        return array
    if isinstance(state, (list, tuple, memoryview)) and np.issubdtype(array.dtype, np.integer):
        if array.size and not (array.min() >= 0 and array.max() <= 255):
            raise ValueError(f"{_STATE_FORMS}; got a value outside [0, 256)")
        return array.astype(np.uint8)
    raise ValueError(
        "state must be uint8[..., 16] (seed then offset, little-endian u64); "
        f"got {array.dtype}{list(array.shape)}"
    )


def _foreign_array(state: Any) -> np.ndarray:
    # A torch or MindSpore tensor: dlpack shares the memory where the producer allows it
    # (a CPU tensor); __array__ copies. Neither library is imported here.
    if hasattr(state, "__dlpack__"):
        try:
            return np.from_dlpack(state)
        except (TypeError, ValueError, RuntimeError, BufferError):
            pass
    if hasattr(state, "__array__"):
        return np.asarray(state)
    raise TypeError(f"{_STATE_FORMS}; got {type(state).__name__}, which NumPy cannot read")


def _as_int(leaf: Any) -> int | None:
    """The u64 of one concrete ``uint32[2]`` leaf, or None when there is no such number."""
    if not isinstance(leaf, (jax.Array, np.ndarray)) or not _u64.is_concrete(leaf):
        return None
    if leaf.shape != (2,) or leaf.dtype != np.uint32:
        return None
    try:
        return _u64.from_words(leaf)
    except Exception:  # noqa: BLE001 - a deleted (donated) or non-addressable array
        return None


def _describe(leaf: Any) -> str:
    """What a leaf holds, in words: ``uint32[4, 2]``, ``traced uint32[2]``, ``None``, ...

    >>> import jax
    >>> _describe(jax.ShapeDtypeStruct((2,), "uint32")), _describe(None), _describe("x")
    ('abstract uint32[2]', 'None', 'str')
    """
    if leaf is None:
        return "None"
    shape, dtype = getattr(leaf, "shape", None), getattr(leaf, "dtype", None)
    try:
        described = f"{np.dtype(dtype).name}{list(shape)}"
    except Exception:  # noqa: BLE001 - not array-like: name the type only
        return type(leaf).__name__
    if isinstance(leaf, jax.core.Tracer):
        return f"traced {described}"
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return f"abstract {described}"
    if isinstance(leaf, (jax.Array, np.ndarray)):
        return described
    return f"{type(leaf).__name__} {described}"


# Bound once: looking up a slot's __set__ makes a new method object on every call.
_new_object = object.__new__
_set_seed = Generator.__dict__["seed"].__set__
_set_offset = Generator.__dict__["offset"].__set__

jax.tree_util.register_pytree_with_keys(
    Generator,
    lambda g: (
        (
            (jax.tree_util.GetAttrKey("seed"), g.seed),
            (jax.tree_util.GetAttrKey("offset"), g.offset),
        ),
        None,
    ),
    lambda _, leaves: Generator.from_words(*leaves),
    flatten_func=lambda g: ((g.seed, g.offset), None),
)
