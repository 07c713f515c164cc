"""An Equinox MLP trained with Optax, its randomness from rngstate, checkpointed with Orbax.

Three rngstate streams of one seed: ``init`` (the keys Equinox's layers are built with),
``dropout`` (a Generator passed through the jitted step) and ``shuffle`` (one permutation of
the data per epoch). An Orbax ``CheckpointManager`` saves the model's arrays, the Optax state,
both Generators and the losses so far after every epoch.

``python examples/equinox.py`` shows that nothing is lost when training is killed (SIGKILL)
halfway and resumed in a new process, on 1 and then 4 host CPU devices (``--tiny`` for CI);
``python examples/equinox.py train --dir D`` runs one training process.
That driver, shared with flax_nnx.py, is resumable_run.py.
"""

from __future__ import annotations

import os
import sys

# From this file's folder, first on sys.path when run as a script: import it before the folder
# is taken off sys.path below.
import resumable_run

# This file is named like the library: take its folder off sys.path so that `import equinox`
# finds Equinox.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def make_model(init, features: int, hidden: int) -> resumable_run.Model:
    import equinox as eqx
    import jax

    import rngstate as rs

    class MLP(eqx.Module):
        hidden: eqx.nn.Linear
        out: eqx.nn.Linear

        def __init__(self, gen: rs.Generator):
            # One key per layer, each used once: the init stream at offsets 0 and 1.
            self.hidden = eqx.nn.Linear(features, hidden, key=gen.key())
            self.out = eqx.nn.Linear(hidden, 1, key=gen.construct(1).key())

        def __call__(self, x, gen: rs.Generator):
            h = jax.nn.relu(x @ self.hidden.weight.T + self.hidden.bias)
            h, gen = rs.random.dropout(gen, h, 0.1)  # the mask follows h's sharding
            return (h @ self.out.weight.T + self.out.bias)[:, 0], gen

    params0, static = eqx.partition(MLP(init), eqx.is_array)

    def apply(params, x, gen):
        return eqx.combine(params, static)(x, gen)

    return resumable_run.Model(lambda: params0, apply, eqx.apply_updates)


if __name__ == "__main__":
    resumable_run.main(__doc__, __file__, make_model)
