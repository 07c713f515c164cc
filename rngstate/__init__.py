"""rngstate: a purely functional, checkpointable random-number engine on JAX.

>>> import rngstate as rs
>>> g = rs.Generator(seed=2**40 + 5)
>>> x, g = rs.random.normal(g, (3, 4))
>>> x.shape, g
((3, 4), Generator(seed=1099511627781, offset=1))
"""

from rngstate import random
from rngstate.distributed import process_generator
from rngstate.generator import Generator, derive_key

__all__ = ["Generator", "derive_key", "process_generator", "random"]
__version__ = "0.1.0"
