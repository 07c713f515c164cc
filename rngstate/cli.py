"""The ``rngstate`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    from rngstate import demo

    config = dataclasses.replace(demo.FAST if args.fast else demo.FULL, seed=args.seed)
    return demo.run(config, args.workdir)


def _doctor(args: argparse.Namespace) -> int:
    from rngstate import selfcheck

    return selfcheck.main()


def _inspect(args: argparse.Namespace) -> int:
    from rngstate import checkpoint

    try:
        info = checkpoint.summary(args.file)
    except (OSError, checkpoint.CheckpointError) as exc:
        message = f"{args.file}: {exc.strerror}" if isinstance(exc, OSError) else str(exc)
        print(f"rngstate inspect: error: {message}", file=sys.stderr)
        return 2
    try:
        print(json.dumps(info, indent=2) if args.json else checkpoint.format_summary(info))
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()  # the reader (head, less) closed the pipe: stop quietly
    return 0


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit writes no second error."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


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
        _quiet_stdout()
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


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rngstate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="train a small MLP, checkpoint midway, resume in a fresh process, compare bits",
        description="A pure-functional JAX training loop (MLP, dropout, reshuffling, jitted "
        "epoch in lax.scan) that saves a checkpoint midway; a fresh Python process resumes "
        "from it, and the demo checks that the resumed run equals the uninterrupted one bit "
        "for bit. Exit status 1 if it does not.",
    )
    demo.add_argument("--fast", action="store_true", help="a smaller problem (for tests)")
    demo.add_argument("--seed", type=_non_negative_int(2**64), default=0, help="default: 0")
    demo.add_argument(
        "--workdir", default=None, help="keep the checkpoints here (default: a temporary dir)"
    )
    demo.set_defaults(run=_demo)
    doctor = commands.add_parser(
        "doctor",
        help="a reproducibility report for this machine, with a self-check",
        description="Print what the values drawn here depend on (JAX and jaxlib versions, "
        "backend and devices, x64, PRNG implementation, jax_threefry_partitionable, XLA "
        "determinism flags) and run the self-checks (known-answer vectors, pinned values). "
        "Exit status 1 if any check fails.",
    )
    doctor.set_defaults(run=_doctor)
    inspect = commands.add_parser(
        "inspect",
        help="what a checkpoint file holds",
        description="List a checkpoint's generators (seed and offset), arrays and values, "
        "and the settings it was written with.",
    )
    inspect.add_argument("file", help="a file written by rngstate.save")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")
    inspect.set_defaults(run=_inspect)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rngstate`` command; returns the exit status.

    >>> main(["--help"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    SystemExit: 0
    """
    args = _parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
