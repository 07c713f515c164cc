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
