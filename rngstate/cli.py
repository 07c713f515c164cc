"""The ``rngstate`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    import jax

    import rngstate as rs

    gen = rs.Generator(seed=2**40 + 5)
    print(f"start:            {gen}")
    x, gen = rs.random.normal(gen, (3, 4))
    print(f"normal (3, 4):    mean {float(x.mean()):+.4f}, now {gen}")
    y, gen = gen.uniform((8,), minval=-1.0)
    print(f"uniform [-1, 1):  {[round(v, 3) for v in y.tolist()]}")
    state = gen.get_state()
    resumed = rs.Generator().set_state(state)
    again, _ = resumed.uniform((8,), minval=-1.0)
    expected, _ = gen.uniform((8,), minval=-1.0)
    same = bool((again == expected).all())
    print(f"state bytes:      {state.tolist()}")
    print(f"resumed draws the same values: {same}")
    kids, gen = gen.spawn(4)
    draws = jax.vmap(lambda g: g.normal(())[0])(kids)
    print(f"4 spawned streams under vmap: {[round(v, 3) for v in draws.tolist()]}")
    return 0 if same else 1


_BLOCK_WORDS = 2**20  # words per generator offset in `rngstate bits`


def _bits(args: argparse.Namespace) -> int:
    import rngstate as rs

    base = rs.Generator(seed=args.seed, offset=args.offset)
    draw = _jitted_block()
    remaining = args.count
    out = sys.stdout.buffer
    step = 0
    try:
        while remaining is None or remaining > 0:
            words = np.asarray(draw(base.construct(step)), dtype="<u4")
            if remaining is not None:
                words = words[:remaining]
                remaining -= words.size
            out.write(words.tobytes())
            step += 1
        out.flush()
    except BrokenPipeError:
        # The reader (dieharder, head) closed the pipe: stop quietly, as `yes | head` does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


def _jitted_block():
    """The jitted block of ``rngstate bits``: 2**20 uint32 words of one generator."""
    import jax
    import jax.numpy as jnp

    import rngstate as rs

    return jax.jit(lambda g: rs.random.bits(g, (_BLOCK_WORDS,), jnp.uint32)[0])


def _non_negative_int(limit: int):
    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not 0 <= value < limit:
            raise argparse.ArgumentTypeError(f"must be in [0, {limit}), got {value}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rngstate`` command; returns the exit status.

    >>> main(["--help"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    SystemExit: 0
    """
    parser = argparse.ArgumentParser(prog="rngstate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="a short tour of the engine")
    demo.set_defaults(run=_demo)
    bits = commands.add_parser(
        "bits",
        help="raw little-endian uint32 words to stdout, for test batteries such as dieharder",
        description="Write the words of rngstate.random.bits(Generator(SEED, OFFSET + i), "
        "(2**20,), uint32) for i = 0, 1, 2, ... to stdout, little-endian, cut at COUNT words "
        "(endless without --count). Exits quietly when the reader closes the pipe.",
    )
    bits.add_argument("--seed", type=_non_negative_int(2**64), required=True)
    bits.add_argument("--offset", type=_non_negative_int(2**64), default=0)
    bits.add_argument("--count", type=_non_negative_int(2**64), default=None)
    bits.set_defaults(run=_bits)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
