"""Every ```python block of README.md and of each docs/ page runs as written.

The blocks of one page run in order in one namespace, as a reader would type them, in a
temporary working directory, with the process-wide random state put back afterwards. A block
that cannot run here (several processes, say) is opted out by an HTML comment on the line just
before its fence: ``<!-- example: no-run (the reason) -->``; docs/index.md documents it. Pages
added to docs/ are picked up without a change here.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re

import pytest

import rngstate as rs

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

NO_RUN = re.compile(r"<!--\s*example:\s*no-run\s*\((?P<reason>[^)]+)\)\s*-->")
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


def python_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """``(line, code, no_run_reason)`` for each top-level ```python fence of a page.

    Fences nest by length (a ```` block may show a ``` example), and only the outermost
    ``python`` fences count.
    """
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        fence, info = opened["fence"], opened["info"].strip()
        start = i
        i += 1
        body = []
        while i < len(lines):
            closed = _FENCE.match(lines[i])
            if closed and closed["fence"].startswith(fence) and not closed["info"].strip():
                break
            body.append(lines[i][len(opened["indent"]) :])
            i += 1
        i += 1
        if info.split()[:1] == ["python"]:
            before = lines[start - 1] if start else ""
            marker = NO_RUN.search(before)
            if not marker and "example:" in before:
                raise ValueError(f"line {start}: write the marker as {NO_RUN.pattern!r}")
            blocks.append((start + 1, "\n".join(body) + "\n", marker["reason"] if marker else None))
    return blocks


def test_the_marker_and_nested_fences_are_read():
    page = (
        "```python\nrun = 1\n```\n"
        "<!-- example: no-run (needs two hosts) -->\n```python\nskip = 1\n```\n"
        "````markdown\n```python\nshown_only = 1\n```\n````\n"
        "```sh\nmake test\n```\n"
    )
    assert python_blocks(page) == [(1, "run = 1\n", None), (5, "skip = 1\n", "needs two hosts")]
    with pytest.raises(ValueError, match="marker"):  # a marker without its reason
        python_blocks("<!-- example: no-run -->\n```python\nx = 1\n```\n")


def _runnable(page: pathlib.Path) -> list[tuple[int, str]]:
    return [(line, code) for line, code, reason in python_blocks(page.read_text()) if not reason]


def test_the_readme_and_the_site_have_examples():
    assert _runnable(ROOT / "README.md")
    assert _runnable(ROOT / "docs" / "index.md")


@pytest.mark.parametrize(
    "page", [p for p in PAGES if _runnable(p)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples may write files (checkpoints)
    xla_flags = os.environ.get("XLA_FLAGS")  # set_random_seed(deterministic=True) edits it
    namespace: dict = {"__name__": "__docs_example__"}
    try:
        with rs.fork_rng():  # seeding examples must not leak into other tests
            for line, code in _runnable(page):
                exec(compile(code, f"{page.relative_to(ROOT)}:{line}", "exec"), namespace)
    finally:
        if xla_flags is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = xla_flags


# Pages whose examples are training code, checked for generator reuse: every jitted function
# with check_reuse; eager draws with reuse_checking where the page never replays a state on
# purpose (training-loops.md redraws a spawned child to show it is the same; common-mistakes.md
# plants reuse; other pages compare restored or replayed states with the originals).
REUSE_CHECKED = {"README.md": True, "docs/training-loops.md": False}


@pytest.mark.parametrize("name", REUSE_CHECKED)
def test_training_examples_have_no_generator_reuse(name, tmp_path, monkeypatch):
    """Each jitted function of the examples passes check_reuse (and eager draws, see above)."""
    import jax

    real_jit = jax.jit
    checked = []

    def checked_jit(fun=None, **options):
        if fun is None:
            return lambda f: checked_jit(f, **options)
        jitted = real_jit(fun, **options)

        def call(*args, **kwargs):
            checked.append(getattr(fun, "__name__", "?"))
            return rs.check_reuse(jitted)(*args, **kwargs)

        return call

    page = ROOT / name
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(jax, "jit", checked_jit)
    namespace: dict = {"__name__": "__docs_example__"}
    eager = rs.reuse_checking() if REUSE_CHECKED[name] else contextlib.nullcontext()
    with rs.fork_rng(), eager:
        for line, code in _runnable(page):
            exec(compile(code, f"{name}:{line}", "exec"), namespace)
    monkeypatch.undo()
    if name == "docs/training-loops.md":
        assert checked  # the loops' jitted steps went through the checker
