"""Shared fixtures: the contract's reference key built from raw jax.random."""

from __future__ import annotations

import pathlib

import jax
import pytest
from hypothesis import settings

# Tests never depend on timing: the machine is shared and JAX compiles on first use.
settings.register_profile("rngstate", deadline=None, max_examples=60)
settings.load_profile("rngstate")

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"


def reference_key(seed: int, offset: int) -> jax.Array:
    """Contract §2 via raw jax.random, valid for seed < 2**31 and offset < 2**32."""
    assert seed < 2**31 and offset < 2**32
    return jax.random.fold_in(jax.random.key(seed), offset)


@pytest.fixture
def shared_dir() -> pathlib.Path:
    return SHARED
