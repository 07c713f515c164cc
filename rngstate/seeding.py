"""Seeding a whole run (MMEngine's ``randomness``) and seeds for data-loader workers.

:func:`set_random_seed` is what a training script calls first: one seed for every process
of the run (or one per process), and optionally XLA's deterministic GPU kernels. The worker
helpers give each (rank, worker) of a data loader a stream of its own, so that no two
workers ever draw the same numbers (the classic PyTorch ``worker_init_fn`` problem).
Everything stateful goes through :mod:`rngstate.facade`.
"""

from __future__ import annotations

import os
import secrets
import warnings

import jax
import numpy as np

from rngstate import _jax_compat, _u64, facade
from rngstate.generator import Generator
from rngstate.threefry import hash_u64

__all__ = [
    "DETERMINISTIC_XLA_FLAGS",
    "set_random_seed",
    "worker_seed",
    "worker_generator",
    "seed_worker",
    "worker_init_fn",
]

DETERMINISTIC_XLA_FLAGS: tuple[str, ...] = (
    "--xla_gpu_deterministic_ops=true",
    "--xla_gpu_exclude_nondeterministic_ops=true",
)
"""What ``set_random_seed(deterministic=True)`` adds to ``XLA_FLAGS``: deterministic GPU
kernels for scatter, GEMM, convolution and the like (slower; CPU results are deterministic
already). XLA reads ``XLA_FLAGS`` once, when the first JAX backend starts."""

_WORD = 2**32


def set_random_seed(
    seed: int | None = None, deterministic: bool = False, diff_rank_seed: bool = False
) -> int:
    """Seed the run: the facade, NumPy and ``random`` (see :func:`rngstate.set_seed`).

    MMEngine's ``randomness=dict(seed=..., deterministic=..., diff_rank_seed=...)``:

    * ``seed=None`` draws a 64-bit seed from OS entropy on JAX process 0 and broadcasts it
      to every process (``jax.experimental.multihost_utils.broadcast_one_to_all``), so all
      processes share it; otherwise ``seed`` must be an integer in ``[0, 2**64)``.
    * ``diff_rank_seed=True`` adds ``jax.process_index()`` (mod 2**64): one seed per process.
    * ``deterministic=True`` adds :data:`DETERMINISTIC_XLA_FLAGS` to ``XLA_FLAGS``. XLA reads
      them only when a backend starts, so call this before any JAX computation; if a backend
      is already running, a ``RuntimeWarning`` names the flags that could not apply.

    Returns the seed it set.

    >>> import rngstate as rs
    >>> with rs.fork_rng():
    ...     rs.set_random_seed(2024), rs.get_seed()
    (2024, 2024)
    """
    facade.require_eager("rngstate.set_random_seed")
    if deterministic:
        _add_deterministic_flags()  # before anything below can start a backend
    if seed is None:
        value = _seed_shared_by_all_processes()
    else:
        value = _u64.to_int(seed, "seed", allow_negative=False)
    if diff_rank_seed:
        value = (value + jax.process_index()) % _u64.U64_MOD
    facade.set_seed(value)
    return value


def _seed_shared_by_all_processes() -> int:
    value = secrets.randbits(64)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        words = np.array([value // _WORD, value % _WORD], dtype=np.uint32)
        value = _u64.from_words(multihost_utils.broadcast_one_to_all(words))
    return value


def _add_deterministic_flags() -> None:
    present = os.environ.get("XLA_FLAGS", "").split()
    if all(flag in present for flag in DETERMINISTIC_XLA_FLAGS):
        return
    names = {flag.split("=")[0] for flag in DETERMINISTIC_XLA_FLAGS}
    kept = [flag for flag in present if flag.split("=")[0] not in names]
    os.environ["XLA_FLAGS"] = " ".join([*kept, *DETERMINISTIC_XLA_FLAGS])
    started = _jax_compat.backends_started()
    if started is False:
        return
    when = "a JAX backend is already running" if started else "JAX cannot say if a backend runs"
    warnings.warn(
        f"set_random_seed(deterministic=True): {when}, and XLA reads XLA_FLAGS only when a "
        f"backend starts, so {' '.join(DETERMINISTIC_XLA_FLAGS)} may not apply in this "
        "process. Call set_random_seed before any JAX computation, or set XLA_FLAGS in the "
        "environment before starting Python.",
        RuntimeWarning,
        stacklevel=3,
    )


# -- data-loader workers ------------------------------------------------------------------


def _index(value: int, name: str) -> int:
    try:
        number = _u64.to_int(value, name, allow_negative=False)
    except ValueError:
        number = -1
    if not 0 <= number < _WORD:
        raise ValueError(f"{name} must be in [0, 2**32), got {value}")
    return number


def worker_seed(base_seed: int, rank: int, worker_id: int) -> int:
    """The seed of data-loader worker ``worker_id`` on process ``rank``, from ``base_seed``.

    ``hash_u64(base_seed, rank * 2**32 + worker_id)``: the key data of
    ``Generator(seed=base_seed, offset=rank * 2**32 + worker_id).key()`` read as a u64.
    Threefry permutes the counter for a fixed key, so for one ``base_seed`` every
    ``(rank, worker_id)`` pair gets a different seed. Computed with NumPy on the host: safe
    in a forked worker process, where JAX must not run.

    ``base_seed`` is in ``[0, 2**64)``; ``rank`` and ``worker_id`` in ``[0, 2**32)``.

    >>> len({worker_seed(7, r, w) for r in range(4) for w in range(8)})
    32
    """
    base = _u64.to_int(base_seed, "base_seed", allow_negative=False)
    return hash_u64(base, _index(rank, "rank") * _WORD + _index(worker_id, "worker_id"))


def worker_generator(base_seed: int, rank: int, worker_id: int) -> Generator:
    """A :class:`Generator` for worker ``worker_id`` of process ``rank``: seed :func:`worker_seed`.

    For loaders that pass generators around (a JAX input pipeline, for instance).

    >>> worker_generator(7, 0, 1) == worker_generator(7, 1, 0)
    False
    """
    return Generator(seed=worker_seed(base_seed, rank, worker_id))


def seed_worker(base_seed: int, rank: int, worker_id: int) -> int:
    """Seed this worker process with :func:`rngstate.set_seed` of :func:`worker_seed`.

    The default generator, the op-seed streams, NumPy and ``random`` then all belong to
    this worker alone. Returns the seed. No JAX computation runs (the default generator
    starts as plain ints), so it is safe right after a fork.

    >>> import rngstate as rs
    >>> with rs.fork_rng():
    ...     seed_worker(7, 0, 3) == rs.get_seed() == worker_seed(7, 0, 3)
    True
    """
    value = worker_seed(base_seed, rank, worker_id)
    facade.set_seed(value)
    return value


def worker_init_fn(worker_id: int, rank: int = 0) -> None:
    """A ready ``worker_init_fn`` for ``torch.utils.data.DataLoader``.

    The base seed is the worker's ``torch.utils.data.get_worker_info().seed`` (PyTorch
    draws it in the main process for every worker and every epoch), and the worker is
    seeded with :func:`seed_worker`. With several processes, bind each its rank, as MMEngine
    does, so that ranks whose torch generators agree still get different streams::

        DataLoader(..., worker_init_fn=functools.partial(
            rngstate.worker_init_fn, rank=jax.process_index()))

    torch is imported only when this runs (inside a worker); ``rngstate`` never needs it.

    >>> worker_init_fn(0)
    Traceback (most recent call last):
    ...
    RuntimeError: worker_init_fn runs inside a torch DataLoader worker; ...
    """
    info = None
    try:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
    except ImportError:
        pass
    if info is None:
        raise RuntimeError(
            "worker_init_fn runs inside a torch DataLoader worker; outside one, call "
            "seed_worker(base_seed, rank, worker_id) instead"
        )
    seed_worker(info.seed, rank, worker_id)
