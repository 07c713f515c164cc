"""Shared fixtures: the contract's reference key built from raw jax.random."""

from __future__ import annotations

import os

# Before JAX starts. On a GPU each JAX process reserves 75% of the device's memory at its
# first use; the suite starts JAX subprocesses while this one holds the device.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The fast path's remembered verdicts (rngstate._checkcache) are off: the suite never writes
# to the user's cache folder, and every first-use check runs. Tests of the cache point it at a
# temporary folder of their own.
os.environ["RNGSTATE_CACHE_DIR"] = "off"

import jax
import jax.numpy as jnp
import pytest
from hypothesis import settings

# Tests never depend on timing: the machine is shared and JAX compiles on first use.
settings.register_profile("rngstate", deadline=None, max_examples=60)
settings.load_profile("rngstate")

def reference_key(seed: int, offset: int) -> jax.Array:
    """Contract §2 via raw jax.random, valid for seed < 2**31 and offset < 2**32."""
    assert seed < 2**31 and offset < 2**32
    return jax.random.fold_in(jax.random.key(seed), offset)


def threefry_u64(key: int, counter: int) -> int:
    """One threefry2x32-20 block on u64 [high, low] words, by JAX's own implementation."""
    from jax.extend.random import threefry_2x32

    words = threefry_2x32(
        jnp.array([key >> 32, key & 0xFFFFFFFF], jnp.uint32),
        jnp.array([counter >> 32, counter & 0xFFFFFFFF], jnp.uint32),
    ).tolist()
    return (words[0] << 32) | words[1]


def reference_key_u64(seed: int, offset: int) -> jax.Array:
    """Contract §2 for any 64-bit seed and offset, from JAX's threefry_2x32."""
    value = threefry_u64(seed, offset)
    return jax.random.wrap_key_data(
        jnp.array([value >> 32, value & 0xFFFFFFFF], jnp.uint32), impl="threefry2x32"
    )


@pytest.fixture
def isolated_rng():
    """Run a test on the process-wide random state and put it all back afterwards."""
    import rngstate

    with rngstate.fork_rng():
        yield


def cpu_only_skip(item: pytest.Item, backend: str) -> str | None:
    """Why ``item`` is skipped on ``backend``: None unless it is ``cpu_only`` and off CPU."""
    marker = item.get_closest_marker("cpu_only")
    if marker is None or backend == "cpu":
        return None
    reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
    return f"cpu_only on a {backend} backend: {reason}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip ``cpu_only`` tests, with their reason, where the default backend is not the CPU."""
    if item.get_closest_marker("cpu_only") is not None:
        reason = cpu_only_skip(item, jax.default_backend())
        if reason is not None:
            pytest.skip(reason)
