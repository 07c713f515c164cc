"""Flax NNX streams as rngstate Generators, and back (``pip install 'rngstate[flax]'``).

An nnx ``RngStream`` holds a key ``K`` and a ``uint32`` count ``c``; its next key is
``jax.random.fold_in(K, c)``, which is one Threefry-2x32 block of the counter ``[0, c]``
under the key words of ``K``. That is exactly rngstate's key (contract §2) for::

    Generator(seed = hi << 32 | lo, offset = c)    where [hi, lo] = jax.random.key_data(K)

for any threefry key ``K``. So each side converts into the other without changing one bit:
:func:`generator` reads the Generator an ``RngStream`` is at, :func:`rng_stream` makes the
``RngStream`` a Generator is at, and :func:`rngs` builds an ``nnx.Rngs`` whose streams draw
the keys of ``gen.stream(name)``, 64-bit seeds included. The one limit is nnx's: its count
is a ``uint32`` and wraps, so offsets of ``2**32`` and more have no ``RngStream``.

Flax is imported only when a function here is called; rngstate itself needs only JAX.

>>> import jax, rngstate as rs
>>> from rngstate import flax as rsf
>>> gen = rs.Generator(seed=2**40 + 5)
>>> rngs = rsf.rngs(gen, "params", "dropout")
>>> bool((jax.random.key_data(rngs.dropout()) ==
...       jax.random.key_data(gen.stream("dropout").key())).all())
True
>>> rsf.generator(rngs.dropout) == gen.stream("dropout").construct(1)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rngstate import _u64
from rngstate.generator import Generator
from rngstate.pytrees import _is_generator_pair

# GeneratorVariable is made on first use, by the module's __getattr__.
__all__ = ["GeneratorVariable", "generator", "rng_stream", "rngs", "update"]  # noqa: F822

_COUNT_LIMIT = (
    "nnx.RngStream's count is uint32 (it wraps at 2**32), so a Generator offset of 2**32 or "
    "more has no RngStream"
)


def _nnx() -> Any:
    try:
        from flax import nnx
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "rngstate.flax needs Flax: pip install 'rngstate[flax]' (or flax>=0.12)"
        ) from error
    return nnx


def _key_of_seed(gen: Generator) -> jax.Array:
    return jax.random.wrap_key_data(gen.seed, impl="threefry2x32")


def _require_generator(gen: Any, name: str = "gen") -> None:
    if not isinstance(gen, Generator):
        raise TypeError(f"{name} must be an rngstate.Generator, got {type(gen).__name__}")


def rngs(gen: Generator, *names: str) -> Any:
    """An ``nnx.Rngs`` with one stream per name, stream ``name`` drawing ``gen.stream(name)``.

    The ``k``-th key stream ``name`` gives (``rngs.name()``, as every nnx layer draws) is
    the key of ``gen.stream(name).construct(k)``: the same numbers as drawing from that
    Generator with rngstate. Give ``"default"`` among the names for the stream nnx uses
    for any name it does not find. ``gen`` may be a batch (for ``nnx.vmap``).

    >>> import rngstate as rs
    >>> r = rngs(rs.Generator(3), "params", "default")
    >>> sorted(r), generator(r.params) == rs.Generator(3).stream("params")
    (['default', 'params'], True)
    """
    _require_generator(gen)
    if not names:
        raise ValueError("rngs() needs at least one stream name, e.g. rngs(gen, 'params')")
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"stream names must be Python identifiers (nnx's rule), got {name!r}")
    nnx = _nnx()
    return nnx.Rngs(**{name: _key_of_seed(gen.stream(name)) for name in names})


def generator(stream: Any) -> Generator:
    """The Generator an ``nnx.RngStream`` is at: its next key is the stream's next key.

    ``stream`` is an ``nnx.RngStream`` (``rngs.params``, ``rngs["dropout"]``) with a
    threefry key; the seed is its key data, the offset its count. The stream is not advanced.

    >>> import jax
    >>> from flax import nnx
    >>> s = nnx.Rngs(params=2**40 + 5).params  # nnx.Rngs(int) without x64: the low 32 bits
    >>> _ = s(), s()
    >>> generator(s)
    Generator(seed=5, offset=2)
    """
    nnx = _nnx()
    if not isinstance(stream, nnx.RngStream):
        raise TypeError(f"stream must be an nnx.RngStream, got {type(stream).__name__}")
    key = stream.key.get_value()
    impl = jax.random.key_impl(key)
    if "threefry2x32" not in str(impl):
        raise ValueError(
            f"stream's key must be a threefry2x32 key (rngstate's derivation), got {impl}"
        )
    count = jnp.asarray(stream.count.get_value(), jnp.uint32)
    offset = jnp.stack([jnp.zeros_like(count), count], axis=-1)
    return Generator.from_words(jax.random.key_data(key), offset)


def rng_stream(gen: Generator, tag: str = "default") -> Any:
    """The ``nnx.RngStream`` a Generator is at: the stream's next keys are ``gen``'s.

    The stream's key is the seed's words as a threefry key and its count is the offset,
    which must be below ``2**32`` (nnx's count is ``uint32``): a larger concrete offset
    raises ``ValueError``. A traced offset cannot be checked; its high word is dropped.
    ``tag`` is the stream's nnx tag (its name in an ``nnx.Rngs``).

    >>> import rngstate as rs
    >>> s = rng_stream(rs.Generator(seed=2**40 + 5, offset=3), tag="dropout")
    >>> generator(s)
    Generator(seed=1099511627781, offset=3)
    >>> rng_stream(rs.Generator(offset=2**32))
    Traceback (most recent call last):
    ...
    ValueError: offset must be below 2**32: nnx.RngStream's count is uint32 (it wraps at 2**32), so a Generator offset of 2**32 or more has no RngStream
    """  # noqa: E501 - the doctest's output is one line
    _require_generator(gen)
    if _u64.is_concrete(gen.offset) and np.any(np.asarray(gen.offset)[..., 0] != 0):
        raise ValueError(f"offset must be below 2**32: {_COUNT_LIMIT}")
    nnx = _nnx()
    stream = nnx.RngStream(_key_of_seed(gen), tag=tag)
    stream.count.set_value(jnp.asarray(gen.offset[..., 1], jnp.uint32))
    return stream


_GENERATOR_VARIABLE_DOC = """An ``nnx.Variable`` holding a :class:`~rngstate.Generator`.

A module's generator as nnx state, which ``nnx.update``, ``nnx.jit``, Orbax and nnx's
filters handle as a whole (a Generator held with ``nnx.data`` needs :func:`update`).

Read it with ``get_value()``, store the advanced one with ``set_value()``.
``nnx.state(model, GeneratorVariable)`` selects a model's generators.

>>> import jax.numpy as jnp, rngstate as rs
>>> from flax import nnx
>>> from rngstate import flax as rsf
>>> class Noisy(nnx.Module):
...     def __init__(self, gen):
...         self.gen = rsf.GeneratorVariable(gen)
...     def __call__(self, x):
...         noise, gen = self.gen.get_value().normal(x.shape)
...         self.gen.set_value(gen)
...         return x + noise
>>> model = Noisy(rs.Generator(1))
>>> _ = nnx.jit(lambda m, x: m(x))(model, jnp.zeros(2))
>>> fresh = Noisy(rs.Generator(5))
>>> nnx.update(fresh, nnx.state(model))
>>> fresh.gen.get_value()
Generator(seed=1, offset=1)
"""
# The class is made on first use, so this docstring is also run here by the doctests.
__test__ = {"GeneratorVariable": _GENERATOR_VARIABLE_DOC}


def _make_generator_variable() -> type:
    nnx = _nnx()

    class GeneratorVariable(nnx.Variable):
        __doc__ = _GENERATOR_VARIABLE_DOC

    GeneratorVariable.__module__ = __name__
    GeneratorVariable.__qualname__ = "GeneratorVariable"
    return GeneratorVariable


def __getattr__(name: str) -> Any:
    # GeneratorVariable subclasses nnx.Variable: made on first use, so that importing
    # rngstate.flax does not import Flax.
    if name == "GeneratorVariable":
        variable = _make_generator_variable()
        globals()[name] = variable
        return variable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def update(node: Any, state: Any, *states: Any) -> None:
    """``nnx.update`` for modules that hold Generators with ``nnx.data``: restore in place.

    ``nnx.state`` flattens a Generator held with ``nnx.data`` into its ``seed`` and
    ``offset`` arrays, and ``nnx.update`` then fails with ``Cannot set key 'offset' on
    immutable node of type Generator``: nnx sets a restored state leaf by leaf, and a
    Generator cannot be changed in place (it is immutable). This function puts each such
    Generator back whole, as a new Generator on its module (or dict or list), and leaves
    the rest of the state to ``nnx.update``. ``state`` is what ``nnx.state`` gave, or what
    a checkpoint library restored from it (``rs.load``, Orbax, with or without a target:
    without one, each Variable comes back as a dict ``{'value': ...}``, which is unwrapped
    here). A Generator held in a :class:`GeneratorVariable` needs no help: ``nnx.update``
    restores it from an ``nnx.State``.

    >>> import jax.numpy as jnp, rngstate as rs
    >>> from flax import nnx
    >>> class Noisy(nnx.Module):
    ...     def __init__(self, gen):
    ...         self.gen = nnx.data(gen)
    >>> saved = nnx.state(Noisy(rs.Generator(7, offset=3)))
    >>> model = Noisy(rs.Generator(0))
    >>> update(model, saved)
    >>> model.gen
    Generator(seed=7, offset=3)
    """
    nnx = _nnx()
    for one in (state, *states):
        if not isinstance(one, Mapping):
            raise TypeError(f"state must be an nnx.State or a mapping, got {type(one).__name__}")
        nnx.update(node, _put_generators(node, one, ""))


def _as_generator(value: Any, place: str) -> Generator:
    if isinstance(value, Generator):
        return value
    if _is_generator_pair(value):
        return Generator.from_words(jnp.asarray(value["seed"]), jnp.asarray(value["offset"]))
    raise ValueError(
        f"state at {place} must restore a Generator: a Generator or its 'seed' and 'offset' "
        f"uint32[..., 2] arrays, got {type(value).__name__}"
    )


def _put_generators(parent: Any, state: Mapping, where: str) -> dict:
    """Set each Generator of ``parent`` that ``state`` restores; the rest of ``state``."""
    nnx = _nnx()
    rest = {}
    for key, value in state.items():
        if isinstance(parent, list) and isinstance(key, str) and key.isdigit():
            key = int(key)  # Orbax restores list indices without a target as strings
        place = f"{where}.{key}" if where else str(key)
        child = _child(parent, key)
        if isinstance(child, Generator):
            _set_child(parent, key, _as_generator(value, place), place)
        elif isinstance(child, nnx.Variable) and isinstance(value, Mapping):
            # A Variable restored without a target: its one child `value`, by name.
            if set(value) != {"value"}:
                raise ValueError(
                    f"state at {place} restores an nnx.Variable: a Variable or a mapping "
                    f"with the one key 'value', got the keys {sorted(map(str, value))}"
                )
            inner = value["value"]
            held = isinstance(child.get_raw_value(), Generator)
            rest[key] = _as_generator(inner, f"{place}.value") if held else inner
        elif isinstance(value, Mapping) and child is not None:
            rest[key] = _put_generators(child, value, place)
        else:
            rest[key] = value
    return rest


def _child(parent: Any, key: Any) -> Any:
    if isinstance(parent, (Mapping, list, tuple)):
        try:
            return parent[key]
        except (KeyError, IndexError, TypeError):
            return None
    return getattr(parent, key, None) if isinstance(key, str) else None


def _set_child(parent: Any, key: Any, value: Generator, place: str) -> None:
    if isinstance(parent, (dict, list)):
        parent[key] = value
    elif isinstance(parent, tuple):
        raise ValueError(
            f"cannot restore the Generator at {place}: it sits in a tuple, which cannot be "
            "changed in place; hold it in a list, a dict or a GeneratorVariable"
        )
    else:
        setattr(parent, key, value)
