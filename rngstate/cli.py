"""The ``rngstate`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


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
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
