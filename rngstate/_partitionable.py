"""rngstate's values are sharding-independent only with ``jax_threefry_partitionable`` on.

With the flag on (JAX's default since 0.5), ``jax.random`` computes every element from its
global index, so an output's values do not depend on how it is sharded. With it off, they do,
and ``jax.random.split`` (hence :meth:`Generator.spawn`) gives other keys. rngstate reads the
flag and never changes it: flipping a global setting would change every other ``jax.random``
user's numbers in the process.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import warnings
from collections.abc import Iterator

import jax

MESSAGE = (
    "jax_threefry_partitionable is off: rngstate's values will depend on how outputs are "
    "sharded across devices, and differ from runs with it on (JAX's default since 0.5). "
    "Checkpoints record this setting. Turn it on with "
    "jax.config.update('jax_threefry_partitionable', True) before drawing; rngstate does "
    "not change it for you."
)

# Once per process: the warning is about the run, not about each draw. Until it fires, the
# flag is read on every draw (a plain attribute read), so turning it off later is caught.
_warned = False
# Set while rngstate's own checks draw (golden values, `rngstate doctor`): those draws are not
# the user's, and some turn the flag off on purpose.
_internal = contextvars.ContextVar("rngstate_internal_draws", default=False)


def warn_if_off() -> None:
    """Warn once per process, on the first draw made with the flag off.

    >>> import jax
    >>> jax.config.jax_threefry_partitionable
    True
    >>> warn_if_off()  # the flag is on: nothing to say
    """
    global _warned
    if _warned or jax.config.jax_threefry_partitionable or _internal.get():
        return
    _warned = True
    warnings.warn(MESSAGE, UserWarning, stacklevel=first_frame_outside_rngstate())


@contextlib.contextmanager
def internal_draws() -> Iterator[None]:
    """Draws inside are rngstate's own checks: no warning, and the once is kept for the user.

    >>> import jax
    >>> with jax.threefry_partitionable(False), internal_draws():
    ...     warn_if_off()  # silent
    """
    token = _internal.set(True)
    try:
        yield
    finally:
        _internal.reset(token)


def first_frame_outside_rngstate() -> int:
    """The ``stacklevel`` of a warning, issued by this function's caller, that points at the
    user's line, however many rngstate frames (op, method, dispatch) lie in between."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("rngstate"):
        frame, level = frame.f_back, level + 1
    return level
