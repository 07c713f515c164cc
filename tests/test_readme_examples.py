"""The README's "Training loops" and "Checkpoints" examples run as written."""

from __future__ import annotations

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _examples(section: str) -> list[str]:
    text = README.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)


@pytest.mark.parametrize("section", ["Training loops", "Checkpoints"])
def test_readme_examples_run(section, tmp_path, monkeypatch, capsys):
    examples = _examples(section)
    assert examples
    monkeypatch.chdir(tmp_path)  # the checkpoint example writes run.ckpt here
    for code in examples:
        exec(compile(code, f"README {section}", "exec"), {})
    if section == "Training loops":
        assert "offset=24" in capsys.readouterr().out
    else:
        assert (tmp_path / "run.ckpt").exists()


@pytest.mark.parametrize("section", ["Quickstart", "Training loops"])
def test_readme_examples_have_no_generator_reuse(section, monkeypatch, capsys):
    """Each jitted function of the examples passes check_reuse, each eager draw the eager check."""
    import jax

    import rngstate as rs

    real_jit = jax.jit
    checked = []

    def checked_jit(fun=None, **options):
        if fun is None:
            return lambda f: checked_jit(f, **options)
        jitted = real_jit(fun, **options)

        def call(*args, **kwargs):
            checked.append(fun.__name__)
            return rs.check_reuse(jitted)(*args, **kwargs)

        return call

    examples = _examples(section)
    assert examples
    monkeypatch.setattr(jax, "jit", checked_jit)
    namespace: dict = {}  # one script: later blocks use earlier names
    with rs.reuse_checking():
        for code in examples:
            exec(compile(code, f"README {section}", "exec"), namespace)
        if section == "Quickstart":
            params, gen = namespace["jax"].numpy.zeros(3), rs.Generator(1)
            for _ in range(2):
                params, gen = namespace["step"](params, gen)
    monkeypatch.undo()
    if section == "Quickstart":
        assert checked == ["step", "step"]
    if section == "Training loops":
        assert checked.count("epoch") == 3
