"""Draw eagerly after draws made under ``jax.set_mesh``; print one JSON report on stdout.

test_dispatch.py runs this in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``. Each step is a call a user makes;
the report says, per step, whether it raised, whether its values equal raw ``jax.random``
with the same arguments bit for bit, and on how many devices the values lie.
"""

from __future__ import annotations

import json

import jax
import numpy as np

import rngstate as rs

GEN = rs.Generator(seed=2**40 + 5, offset=7)
EXPLICIT = {"minval": 0.5, "maxval": 2.0}


def _step(name: str, draw, reference) -> dict:
    try:
        values = draw()
        same = np.asarray(values).tobytes() == np.asarray(reference()).tobytes()
        return {"step": name, "error": None, "same": same, "devices": len(values.devices())}
    except Exception as error:  # noqa: BLE001 - the report says what failed
        return {"step": name, "error": f"{type(error).__name__}: {error}"}


def main() -> None:
    mesh = jax.make_mesh((4,), ("data",))
    key = GEN.key()
    steps = []
    for kwargs in ({}, EXPLICIT):  # the defaults (maxval=1.0), then explicit scalars
        label = "explicit" if kwargs else "defaults"
        with jax.set_mesh(mesh):
            steps.append(
                _step(
                    f"jit under mesh, {label}",
                    lambda kw=kwargs: jax.jit(lambda g: rs.random.uniform(g, (8,), **kw)[0])(GEN),
                    lambda kw=kwargs: jax.jit(lambda k: jax.random.uniform(k, (8,), **kw))(key),
                )
            )
            steps.append(
                _step(
                    f"eager under mesh, {label}",
                    lambda kw=kwargs: rs.random.uniform(GEN, (8,), **kw)[0],
                    lambda kw=kwargs: jax.random.uniform(key, (8,), **kw),
                )
            )
        steps.append(
            _step(
                f"eager after the mesh, {label}",
                lambda kw=kwargs: rs.random.uniform(GEN, (8,), **kw)[0],
                lambda kw=kwargs: jax.random.uniform(key, (8,), **kw),
            )
        )
        steps.append(
            _step(
                f"method after the mesh, {label}",
                lambda kw=kwargs: GEN.uniform((8,), **kw)[0],
                lambda kw=kwargs: jax.random.uniform(key, (8,), **kw),
            )
        )
        steps.append(
            _step(
                f"jit after the mesh, {label}",
                lambda kw=kwargs: jax.jit(lambda g: rs.random.uniform(g, (8,), **kw)[0])(GEN),
                lambda kw=kwargs: jax.jit(lambda k: jax.random.uniform(k, (8,), **kw))(key),
            )
        )
    print(json.dumps({"device_count": jax.device_count(), "steps": steps}))


if __name__ == "__main__":
    main()
