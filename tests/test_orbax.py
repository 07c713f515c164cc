"""Orbax checkpoints of a train state holding Generators (NNX params, Optax state).

Saved with ``ocp.StandardCheckpointer`` and ``ocp.CheckpointManager`` on one device,
restored with an abstract target from ``jax.eval_shape`` (Generators come back as
Generators), without one (``rs.restore_generators``), and onto 4 host devices in a
subprocess, replicated and with the per-worker generators sharded over ``data``: every
restored run draws what the uninterrupted run draws.
"""

from __future__ import annotations

import pathlib

import jax
import numpy as np
import pytest

ocp = pytest.importorskip("orbax.checkpoint")
pytest.importorskip("flax.nnx")
pytest.importorskip("optax")

from host_devices import run_on_host_devices  # noqa: E402
from orbax_state import draws, make_state  # noqa: E402

import rngstate as rs  # noqa: E402

WORKER = pathlib.Path(__file__).with_name("orbax_worker.py")


def _hex(tree) -> dict:
    return {k: np.asarray(v).tobytes().hex() for k, v in tree.items()}


def _assert_same_tree(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("orbax") / "state"
    state = make_state()
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, state)
    return path, state


def test_restore_with_an_eval_shape_target_gives_generators_that_draw_the_same(saved):
    path, state = saved
    abstract = jax.eval_shape(make_state)
    assert repr(abstract["rng"]) == "Generator(seed=abstract uint32[2], offset=abstract uint32[2])"
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(path, abstract)
    assert isinstance(restored["rng"], rs.Generator) and restored["rng"] == state["rng"]
    assert restored["workers"] == state["workers"]
    _assert_same_tree(restored, state)
    _assert_same_tree(draws(restored), draws(state))


def test_restore_without_a_target_then_restore_generators(saved):
    path, state = saved
    with ocp.StandardCheckpointer() as checkpointer:
        raw = checkpointer.restore(path)
    assert isinstance(raw["rng"], dict) and set(raw["rng"]) == {"seed", "offset"}
    restored = rs.restore_generators(raw)
    assert restored["rng"] == state["rng"] and restored["workers"] == state["workers"]
    _assert_same_tree(draws(restored), draws(state))


def test_checkpoint_manager_round_trip_every_step(tmp_path):
    state = make_state()
    abstract = jax.eval_shape(make_state)
    options = ocp.CheckpointManagerOptions(max_to_keep=2)
    with ocp.CheckpointManager(tmp_path / "run", options=options) as manager:
        for step in range(3):
            manager.save(step, args=ocp.args.StandardSave(state))
            state = {**state, "rng": state["rng"].normal(())[1]}
        manager.wait_until_finished()
        assert manager.all_steps() == [1, 2]
        restored = manager.restore(2, args=ocp.args.StandardRestore(abstract))
    assert restored["rng"] == make_state()["rng"].construct(2)


@pytest.mark.parametrize("layout", ["replicated", "data"])
def test_restore_onto_4_devices_draws_what_the_uninterrupted_run_draws(saved, layout):
    path, state = saved
    report = run_on_host_devices(4, WORKER, path, layout, timeout=900)
    assert report["device_count"] == 4
    if layout == "data":
        assert report["workers_sharding"] == "P('data',)" and report["workers_devices"] == 4
    else:
        assert report["workers_sharding"] == "P()"
    assert report["draws"] == _hex(draws(state))
