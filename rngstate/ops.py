"""Stateful samplers for eager code: ``rngstate.ops.<op>(..., seed=None) -> values``.

The same family as :mod:`rngstate.random`, built from it: each op here is that module's op
with the generator argument taken away and a keyword-only op seed added. It draws from the
process-wide state of :mod:`rngstate.facade` and returns only the values.

* ``seed=None``: from the default generator (``rngstate.manual_seed`` / ``set_seed``).
* ``seed=s``: from the stream keyed by (global seed or 0, ``s``, op name), whose counter
  advances each call; ``rngstate.set_seed`` starts every stream over.

>>> import jax, rngstate as rs
>>> with rs.fork_rng():
...     rs.set_seed(0)
...     x = rs.ops.normal((3,))
...     y = rs.ops.normal((3,))
>>> bool((x == jax.random.normal(rs.Generator(0).key(), (3,))).all()), bool((x != y).all())
(True, True)
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rngstate import facade, random

__all__ = ["OP_NAMES", *random.OP_NAMES]

OP_NAMES: tuple[str, ...] = random.OP_NAMES
"""The ops of this module: those of :mod:`rngstate.random`."""


def _prose(doc: str | None) -> str:
    # The functional op's examples call it with a generator, so keep only the text above them.
    lines = inspect.cleandoc(doc or "").splitlines()
    cut = next((i for i, line in enumerate(lines) if line.lstrip().startswith(">>>")), None)
    return "\n".join(lines[:cut]).rstrip()


def _stateful(name: str, op: Callable[..., Any]) -> Callable[..., Any]:
    stateful_op = facade.stateful(op, name)
    signature = inspect.signature(op)
    op_seed = inspect.Parameter(
        "seed", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="int | None"
    )
    stateful_op.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*list(signature.parameters.values())[1:], op_seed],
        return_annotation="Array",
    )
    stateful_op.__name__ = stateful_op.__qualname__ = name
    stateful_op.__module__ = __name__
    stateful_op.__doc__ = (
        f"``rngstate.random.{name}`` on the process-wide random state; returns the values.\n\n"
        "With ``seed=None`` it draws from the default generator and advances it; with an op\n"
        f"seed it draws from the stream keyed by (global seed or 0, seed, {name!r}) and\n"
        "advances that stream. Inside jit/vmap/scan/grad it raises: pass a Generator to\n"
        f"``rngstate.random.{name}`` there. The other parameters are the functional op's:\n\n"
        + _prose(getattr(op, "__wrapped_sampler__", op).__doc__)
    )
    return stateful_op


_OPS = {name: _stateful(name, getattr(random, name)) for name in random.OP_NAMES}
globals().update(_OPS)
if TYPE_CHECKING:  # the same ops, typed: a stub generated from them (python -m rngstate._stubgen)
    from rngstate._stateful_ops import *  # noqa: F403


def __getattr__(name: str) -> Any:
    close = difflib.get_close_matches(name, OP_NAMES, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise AttributeError(f"rngstate.ops has no op {name!r}{hint}")
