"""Griffe extension: the samplers rngstate makes at import time, in the API reference.

``rngstate.random`` and ``rngstate.ops`` build one function per ``jax.random`` sampler when
they are imported, so reading their source (griffe's static analysis, which keeps attribute
docstrings and everything else exact) finds none of them. This extension adds the ops from
the imported modules to the statically read ones.

Their docstrings are the wrapped ``jax.random`` function's: that text documents ``key``,
which ``gen`` replaces, and follows JAX's own conventions, so griffe would warn about
parameters the signature does not have, and ``mkdocs build --strict`` would fail over text
this project does not write. Those docstrings alone are parsed without warnings.
"""

from __future__ import annotations

import importlib
from typing import Any

import griffe

_DYNAMIC = ("rngstate.random", "rngstate.ops")


class ImportTimeOps(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.name != "rngstate":
            return
        for path in _DYNAMIC:
            static = pkg[path.split(".", 1)[1]]
            inspected = griffe.inspect(
                path,
                docstring_parser=loader.docstring_parser,
                docstring_options=loader.docstring_options,
            )
            module = importlib.import_module(path)
            static.exports = list(module.__all__)  # `*OP_NAMES` in the source, spelled out
            for name in module.OP_NAMES:
                if name in static.members:
                    continue  # defined in the source (dropout): the static reading is exact
                op = inspected[name]
                if op.docstring is not None:
                    op.docstring.parser_options = {**op.docstring.parser_options, "warnings": False}
                static.set_member(name, op)
