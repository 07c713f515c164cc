"""MkDocs hook: show the package's reStructuredText-flavoured docstrings well in Markdown.

The docstrings are written for ``help()`` and doctest: examples are bare ``>>>`` blocks and
cross-references are Sphinx roles (``:func:`load```). Markdown would render ``>>>`` as nested
quotes and print the role names, so this hook adds a Markdown preprocessor (used for the pages
and for mkdocstrings' docstrings alike) that fences each doctest block as ``pycon`` and keeps
only the code span of a role. Fenced code in the pages is left untouched.
"""

from __future__ import annotations

import re

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor
from mkdocs.plugins import event_priority

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|math):`~?([^`]+)`")
_FENCE = re.compile(r"^\s*(```|~~~)")


class _DocstringMarkup(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        in_fence = in_doctest = False
        indent = ""
        for line in lines:
            if in_doctest and not line.strip():
                out.append(f"{indent}```")
                in_doctest = False
            if _FENCE.match(line) and not in_doctest:
                in_fence = not in_fence
            elif not in_fence and not in_doctest and line.lstrip().startswith(">>>"):
                indent = line[: len(line) - len(line.lstrip())]
                out.extend(["", f"{indent}```pycon"])
                in_doctest = True
            if not in_fence and not in_doctest:
                line = _ROLE.sub(r"`\1`", line)
            out.append(line)
        if in_doctest:
            out.append(f"{indent}```")
        return out


class DocstringMarkup(Extension):
    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 (Markdown's API name)
        # Before the fenced-code preprocessors (priority 25), which then render the fences.
        md.preprocessors.register(_DocstringMarkup(md), "rngstate_docstring_markup", 40)


@event_priority(100)  # before mkdocstrings reads the extensions for its own Markdown
def on_config(config):
    config.markdown_extensions.append(DocstringMarkup())
    return config
