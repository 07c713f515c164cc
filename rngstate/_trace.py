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

try:  # Newer JAX keeps both parts in per-thread config states: read them without the
    # three frames of is_top_level and its two properties (~0.1 us of every stateful draw).
    from jax._src import core as _core

    _trace_state = _core.trace_state_strong_ref
    _axis_env_state = _core.axis_env_state

    def _is_eager_from_states() -> bool:
        return (
            _trace_state.value is _core.eval_trace and _axis_env_state.value is _core.top_axis_env
        )

    if DETECTABLE and _is_eager_from_states() is True and is_eager() is True:
        is_eager = _is_eager_from_states
except (ImportError, AttributeError):  # pragma: no cover - depends on the installed JAX
    pass
