"""Run the examples in every public docstring (the README's promise that they run)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import rngstate

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(rngstate.__path__, prefix="rngstate.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", ["rngstate", *MODULES])
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
