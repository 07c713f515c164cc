"""rngstate: a purely functional, checkpointable random-number engine on JAX.

>>> import rngstate as rs
>>> g = rs.Generator(seed=2**40 + 5)
>>> x, g = rs.random.normal(g, (3, 4))
>>> x.shape, g
((3, 4), Generator(seed=1099511627781, offset=1))
"""

from rngstate import data, fast, init, ops, random
from rngstate.checkpoint import CheckpointError, load, save
from rngstate.distributed import process_generator
from rngstate.facade import (
    capture,
    default_generator,
    fork_rng,
    get_rng_state,
    get_seed,
    initial_seed,
    manual_seed,
    restore,
    seed,
    set_rng_state,
    set_seed,
)
from rngstate.generator import Generator, derive_key
from rngstate.pytrees import restore_generators
from rngstate.reuse import GeneratorReuseError, check_reuse, reuse_checking
from rngstate.seeding import (
    seed_worker,
    set_random_seed,
    worker_generator,
    worker_init_fn,
    worker_seed,
)

__all__ = [
    "Generator",
    "derive_key",
    "random",
    "data",
    "manual_seed",
    "seed",
    "initial_seed",
    "get_rng_state",
    "set_rng_state",
    "default_generator",
    "fork_rng",
    "set_seed",
    "get_seed",
    "set_random_seed",
    "capture",
    "restore",
    "ops",
    "fast",
    "worker_seed",
    "worker_generator",
    "seed_worker",
    "worker_init_fn",
    "init",
    "save",
    "load",
    "CheckpointError",
    "process_generator",
    "restore_generators",
    "check_reuse",
    "reuse_checking",
    "GeneratorReuseError",
]
__version__ = "0.1.0"
