"""set_random_seed (MMEngine's randomness) and data-loader worker seeds."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import types
import warnings

import jax
import numpy as np
import pytest
from conftest import reference_key, threefry_u64

import rngstate as rs
from rngstate import _jax_compat
from rngstate.threefry import hash_u64

pytestmark = pytest.mark.usefixtures("isolated_rng")

FLAGS = "--xla_gpu_deterministic_ops=true --xla_gpu_exclude_nondeterministic_ops=true"


# -- part 4: set_random_seed --------------------------------------------------------------


def test_set_random_seed_with_a_seed_seeds_everything_and_returns_it():
    assert rs.set_random_seed(2**40 + 7) == 2**40 + 7
    assert rs.get_seed() == 2**40 + 7
    assert rs.default_generator() == rs.Generator(seed=2**40 + 7)
    words = np.array([7, 2**8], dtype=np.uint32)
    assert np.random.rand(2).tolist() == np.random.RandomState(words).rand(2).tolist()


def test_set_random_seed_rejects_bad_seeds():
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*64\)"):
        rs.set_random_seed(-1)
    with pytest.raises(TypeError, match="seed must be an integer"):
        rs.set_random_seed(1.5)


def test_set_random_seed_none_draws_a_fresh_seed_without_broadcast_in_one_process(monkeypatch):
    from jax.experimental import multihost_utils

    def no_broadcast(*args, **kwargs):
        raise AssertionError("a single process needs no broadcast")

    monkeypatch.setattr(multihost_utils, "broadcast_one_to_all", no_broadcast)
    assert jax.process_count() == 1
    seeds = [rs.set_random_seed() for _ in range(3)]
    assert len(set(seeds)) == 3 and all(0 <= s < 2**64 for s in seeds)
    assert rs.get_seed() == seeds[-1] == rs.initial_seed()


def test_set_random_seed_none_takes_process_0s_seed_when_there_are_several(monkeypatch):
    from jax.experimental import multihost_utils

    sent = []

    def broadcast_from_process_0(words):
        sent.append(np.asarray(words))
        return np.array([2**8, 9], dtype=np.uint32)  # what process 0 drew: 2**40 + 9

    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(multihost_utils, "broadcast_one_to_all", broadcast_from_process_0)
    assert rs.set_random_seed() == 2**40 + 9
    assert sent[0].dtype == np.uint32 and sent[0].shape == (2,)
    assert rs.get_seed() == 2**40 + 9


def test_diff_rank_seed_adds_the_process_index(monkeypatch):
    assert rs.set_random_seed(7, diff_rank_seed=True) == 7 + jax.process_index() == 7
    monkeypatch.setattr(jax, "process_index", lambda: 3)
    assert rs.set_random_seed(7, diff_rank_seed=True) == 10
    assert rs.get_seed() == 10
    assert rs.set_random_seed(2**64 - 1, diff_rank_seed=True) == 2  # mod 2**64


def test_deterministic_adds_the_flags_and_warns_when_a_backend_already_runs(monkeypatch):
    jax.numpy.zeros(1).block_until_ready()  # a backend is running in this process
    monkeypatch.setenv(
        "XLA_FLAGS", "--xla_force_host_platform_device_count=1 --xla_gpu_deterministic_ops=false"
    )
    with pytest.warns(
        RuntimeWarning, match="already running.*xla_gpu_deterministic_ops=true"
    ) as caught:
        assert rs.set_random_seed(3, deterministic=True) == 3
    assert "--xla_gpu_exclude_nondeterministic_ops=true" in str(caught[0].message)
    assert os.environ["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=1 {FLAGS}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # already there: nothing to add, nothing to say
        rs.set_random_seed(3, deterministic=True)
    assert os.environ["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=1 {FLAGS}"


def test_deterministic_warns_when_jax_cannot_say_whether_a_backend_runs(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setattr(_jax_compat, "backends_started", lambda: None)
    with pytest.warns(RuntimeWarning, match="cannot say"):
        rs.set_random_seed(3, deterministic=True)


DETERMINISTIC_SCRIPT = r"""
import json, os, warnings
warnings.simplefilter("error")
import rngstate as rs
from jax._src import xla_bridge
seed = rs.set_random_seed(5, deterministic=True)
out = {"seed": seed, "xla_flags": os.environ["XLA_FLAGS"],
       "backend_started": xla_bridge.backends_are_initialized()}
out["draw"] = rs.ops.bits((2,)).tolist()  # the backend starts here, with the flags
print(json.dumps(out))
"""


def test_deterministic_before_any_jax_computation_applies_silently():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run(
        [sys.executable, "-c", DETERMINISTIC_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr  # no warning, and XLA accepts the flags
    out = json.loads(proc.stdout)
    assert out["seed"] == 5 and out["xla_flags"] == FLAGS and out["backend_started"] is False
    assert out["draw"] == np.asarray(jax.random.bits(reference_key(5, 0), (2,))).tolist()


# -- part 6: data-loader workers ----------------------------------------------------------


def test_worker_seed_is_the_contract_key_of_rank_and_worker():
    for worker in range(4):  # rank 0, small base: fold_in of raw jax.random
        key_data = jax.random.key_data(jax.random.fold_in(jax.random.key(1234), worker)).tolist()
        assert rs.worker_seed(1234, 0, worker) == (key_data[0] << 32) | key_data[1]
    base = 2**63 + 99
    for rank, worker in [(1, 0), (7, 3), (2**32 - 1, 2**32 - 1)]:
        assert rs.worker_seed(base, rank, worker) == threefry_u64(base, (rank << 32) | worker)


def test_no_two_workers_share_a_seed():
    seeds = {rs.worker_seed(42, rank, worker) for rank in range(16) for worker in range(64)}
    assert len(seeds) == 16 * 64
    assert rs.worker_seed(42, 1, 0) != rs.worker_seed(43, 1, 0)
    assert rs.worker_generator(42, 1, 2) == rs.Generator(seed=rs.worker_seed(42, 1, 2))


def test_worker_seed_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\*\*32\)"):
        rs.worker_seed(1, 2**32, 0)
    with pytest.raises(ValueError, match=r"worker_id must be in \[0, 2\*\*32\), got -1"):
        rs.worker_seed(1, 0, -1)
    with pytest.raises(TypeError, match="worker_id must be an integer"):
        rs.worker_seed(1, 0, 1.0)
    with pytest.raises(ValueError, match=r"base_seed must be in \[0, 2\*\*64\)"):
        rs.worker_seed(2**64, 0, 0)


def test_seed_worker_gives_each_worker_its_own_replayable_streams():
    def worker_draws(worker):
        assert rs.seed_worker(42, 0, worker) == rs.get_seed() == rs.worker_seed(42, 0, worker)
        return rs.ops.bits((4,)).tolist(), rs.ops.bits((4,), seed=1).tolist(), np.random.rand()

    first, second = worker_draws(0), worker_draws(1)
    assert all(a != b for a, b in zip(first, second, strict=True))
    assert worker_draws(0) == first


@pytest.fixture
def fake_torch_worker(monkeypatch):
    """torch.utils.data as a DataLoader worker sees it: get_worker_info() with a seed."""
    info = types.SimpleNamespace(id=3, num_workers=4, seed=2**62 + 3)
    data = types.ModuleType("torch.utils.data")
    data.get_worker_info = lambda: info
    utils = types.ModuleType("torch.utils")
    utils.data = data
    torch = types.ModuleType("torch")
    torch.utils = utils
    for name, module in {"torch": torch, "torch.utils": utils, "torch.utils.data": data}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return data, info


def test_worker_init_fn_seeds_the_worker_from_torchs_worker_seed(fake_torch_worker):
    _, info = fake_torch_worker
    rs.worker_init_fn(3)
    assert rs.get_seed() == rs.worker_seed(info.seed, 0, 3)
    functools.partial(rs.worker_init_fn, rank=2)(3)  # how a multi-process run binds its rank
    assert rs.get_seed() == rs.worker_seed(info.seed, 2, 3)


def test_worker_init_fn_outside_a_worker_says_so(fake_torch_worker):
    data, _ = fake_torch_worker
    data.get_worker_info = lambda: None
    with pytest.raises(RuntimeError, match="inside a torch DataLoader worker"):
        rs.worker_init_fn(0)


def test_host_hash_is_jaxs_threefry_without_overflow_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for key, counter in [(0, 0), (2**64 - 1, 2**64 - 1), (2**40 + 5, 2**33 + 1)]:
            assert hash_u64(key, counter) == threefry_u64(key, counter)
