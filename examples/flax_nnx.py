"""A Flax NNX MLP trained with Optax, its randomness from rngstate, checkpointed with Orbax.

Three rngstate streams of one seed: ``init`` (the parameters, through ``rngstate.flax.rngs``),
``dropout`` (a Generator passed through the jitted step) and ``shuffle`` (one permutation of
the data per epoch). An Orbax ``CheckpointManager`` saves params, the Optax state, both
Generators and the losses so far after every epoch.

``python examples/flax_nnx.py`` shows that nothing is lost when training is killed (SIGKILL)
halfway and resumed in a new process, on 1 and then 4 host CPU devices (``--tiny`` for CI);
``python examples/flax_nnx.py train --dir D`` runs one training process.
That driver, shared with equinox.py, is resumable_run.py.
"""

from __future__ import annotations

import resumable_run  # from this file's folder, first on sys.path when run as a script


def make_model(init, features: int, hidden: int) -> resumable_run.Model:
    import jax
    import optax
    from flax import nnx

    import rngstate as rs
    from rngstate import flax as rsf

    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.hidden = nnx.Linear(features, hidden, rngs=rngs)
            self.out = nnx.Linear(hidden, 1, rngs=rngs)

        def __call__(self, x, gen: rs.Generator):
            h = jax.nn.relu(self.hidden(x))
            h, gen = rs.random.dropout(gen, h, 0.1)  # the mask follows h's sharding
            return self.out(h)[:, 0], gen

    graphdef = nnx.graphdef(MLP(rsf.rngs(init, "params")))

    def init_params():
        return nnx.split(MLP(rsf.rngs(init, "params")))[1]

    def apply(params, x, gen):
        return nnx.merge(graphdef, params)(x, gen)

    return resumable_run.Model(init_params, apply, optax.apply_updates)


if __name__ == "__main__":
    resumable_run.main(__doc__, __file__, make_model)
