"""Every read of JAX's internals, in one place, each with a fallback.

rngstate uses a few things JAX does not promise to keep: its per-thread trace state, its
config states, the parameters of control-flow equations in a jaxpr, where its own source
files are, and whether a backend has started. Each is read here and nowhere else, from the
newest layout to the oldest (jax 0.6.2 to 0.12.0.1 are tested, docs/compatibility.md), with
a public fallback when none is found. ``tests/test_jax_compat.py`` checks each read against
JAX's public behaviour on every JAX version CI runs.

>>> import jax
>>> seen = []
>>> _ = jax.jit(lambda x: seen.append(is_eager()) or x)(0)
>>> is_eager(), seen
(True, [False])
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import jax

# -- the trace state: whether the calling thread runs eagerly --------------------------------

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


# -- config states: the flags every draw depends on, read per call ---------------------------


class _PublicFlag:
    """A config state's ``.value`` read through ``jax.config`` (slower, always there)."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def value(self) -> bool:
        return bool(getattr(jax.config, self.name))


def _config_state(name: str, public: str) -> Any:
    try:  # jax.config's own state object: reading .value skips its attribute lookup
        from jax._src import config

        state = getattr(config, name)
        if state.value == getattr(jax.config, public):
            return state
    except (ImportError, AttributeError):  # pragma: no cover - depends on the installed JAX
        pass
    return _PublicFlag(public)  # pragma: no cover - depends on the installed JAX


X64 = _config_state("enable_x64", "jax_enable_x64")
"""``jax_enable_x64`` as an object whose ``.value`` is the flag now (per thread)."""

THREEFRY_PARTITIONABLE = _config_state("threefry_partitionable", "jax_threefry_partitionable")
"""``jax_threefry_partitionable`` as an object whose ``.value`` is the flag now."""


# -- jaxpr equations: the parameters of lax.scan and lax.while_loop --------------------------


def scan_layout(params: Mapping[str, Any]) -> tuple[int, int]:
    """``(constants, carried values)`` at the front of a ``scan`` equation's inputs.

    jax 0.12 replaced the parameters ``num_consts``/``num_carry`` by ``ft_in``, a flat tree
    of the three groups (constants, carry, scanned inputs).

    >>> import jax, jax.numpy as jnp
    >>> body = lambda c, x: (c + x * k, c)
    >>> k = 2.0
    >>> jaxpr = jax.make_jaxpr(lambda c, xs: jax.lax.scan(body, c, xs))(1.0, jnp.ones(3))
    >>> scan_layout(jaxpr.eqns[0].params)
    (0, 1)
    """
    if "num_consts" in params:
        return int(params["num_consts"]), int(params["num_carry"])
    layout = params.get("ft_in")
    if layout is not None and hasattr(layout, "unpack"):
        consts, carry, _ = layout.unpack()
        return len(consts), len(carry)
    raise NotImplementedError(  # pragma: no cover - depends on the installed JAX
        f"rngstate cannot read the layout of lax.scan in jax {jax.__version__} "
        f"(parameters {sorted(params)}); docs/compatibility.md lists the JAX versions tested"
    )


def while_layout(params: Mapping[str, Any]) -> tuple[int, int]:
    """``(condition constants, body constants)`` at the front of a ``while`` equation's inputs.

    >>> import jax
    >>> jaxpr = jax.make_jaxpr(lambda c: jax.lax.while_loop(lambda c: c < 3, lambda c: c + 1, c))
    >>> while_layout(jaxpr(0).eqns[0].params)
    (0, 0)
    """
    if "cond_nconsts" in params:
        return int(params["cond_nconsts"]), int(params["body_nconsts"])
    raise NotImplementedError(  # pragma: no cover - depends on the installed JAX
        f"rngstate cannot read the layout of lax.while_loop in jax {jax.__version__} "
        f"(parameters {sorted(params)}); docs/compatibility.md lists the JAX versions tested"
    )


# -- where JAX's own code is -----------------------------------------------------------------


def is_user_filename(path: str) -> bool:
    """Whether ``path`` is a user's file, not JAX's (nor its libraries'): JAX's own rule.

    >>> import jax
    >>> is_user_filename(jax.__file__), is_user_filename("/home/me/train.py")
    (False, True)
    """
    try:
        from jax._src import source_info_util
    except ImportError:  # pragma: no cover - depends on the installed JAX
        return not path.startswith(_JAX_DIR)
    return source_info_util.is_user_filename(path)


_JAX_DIR = os.path.dirname(jax.__file__) + os.sep


def _tracing_code_dir() -> str:
    try:
        from jax._src import interpreters

        return os.path.dirname(interpreters.__file__) + os.sep
    except (ImportError, TypeError):  # pragma: no cover - depends on the installed JAX
        return f"{os.sep}jax{os.sep}_src{os.sep}interpreters{os.sep}"


TRACING_CODE_DIR = _tracing_code_dir()
"""The folder of JAX's tracing code (partial_eval, batching, ad): a frame running a file in
it belongs to a thread that traces."""


# -- the runtime -----------------------------------------------------------------------------


def backends_started() -> bool | None:
    """Whether a JAX backend is running; ``None`` when this JAX cannot tell.

    >>> import jax
    >>> _ = jax.numpy.zeros(1)
    >>> backends_started()
    True
    """
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # pragma: no cover - depends on the installed JAX
        return None


# -- logging -------------------------------------------------------------------------------

DEBUG_CALLBACK_LOGGER = "jax._src.debugging"
"""The logger JAX reports a failed ``jax.debug.callback`` on (named after its private module;
a filter on a logger of another name is harmless, so there is no fallback to find)."""
