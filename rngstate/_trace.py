"""Whether the calling thread runs eagerly: JAX's per-thread trace state, read in one place.

>>> import jax
>>> seen = []
>>> _ = jax.jit(lambda x: seen.append(is_eager()) or x)(0)
>>> is_eager(), seen
(True, [False])
"""

from __future__ import annotations

from collections.abc import Callable

DETECTABLE: bool
"""Whether this JAX lets rngstate see its trace state (if not, :func:`is_eager` says True)."""

is_eager: Callable[[], bool]
"""True at the top level of the calling thread, False while it traces (jit, vmap, grad...)."""

try:
    from jax._src.core import trace_ctx as _trace_ctx

    # What jax.core.trace_state_clean() returns, without its frame: this is read per draw.
    is_eager = _trace_ctx.is_top_level
    DETECTABLE = True
except (ImportError, AttributeError):  # pragma: no cover - depends on the installed JAX

    def is_eager() -> bool:
        return True

    DETECTABLE = False
