#!/usr/bin/env bash
# The release artefact as a user gets it: build the sdist and, from it, the wheel; install the
# wheel into a fresh virtual environment in a temporary directory (no source tree on sys.path)
# and use it there: `rngstate doctor`, a short draw, and pyright on the typed example.
# Usage: tests/wheel_check.sh   (PYTHON: the interpreter with `build` and `pyright`, default
# .venv/bin/python; the new environment is made with the same Python).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
work="$(mktemp -d "${TMPDIR:-/tmp}/rngstate-wheel.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== build (sdist, then the wheel from it) into $work/dist"
SECONDS=0
"$python" -m build --outdir "$work/dist" "$repo" > "$work/build.log" 2>&1 || {
    cat "$work/build.log"; exit 1; }
ls "$work/dist"; echo "built in ${SECONDS}s"
if grep -n "License classifiers are deprecated\|project.license. as a TOML table" "$work/build.log"; then
    echo "setuptools printed a license deprecation warning"; exit 1
fi

echo "== install the wheel into a fresh venv"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$work"/dist/*.whl
echo "installed in ${SECONDS}s"

cd "$work"  # not the repository: only the installed package can be imported
echo "== rngstate doctor"
"$work/venv/bin/rngstate" doctor
echo "== a short draw"
"$work/venv/bin/python" - "$work/venv" <<'PY'
import pathlib
import sys
from importlib import resources

import jax

import rngstate as rs

venv = pathlib.Path(sys.argv[1]).resolve()
where = pathlib.Path(rs.__file__).resolve()
assert venv in where.parents, f"rngstate imported from {where}, not from the installed wheel"
for name in ("py.typed", "_random_ops.pyi", "_stateful_ops.pyi", "golden.json",
             "threefry2x32_20.txt"):
    assert resources.files("rngstate").joinpath(name).is_file(), f"the wheel lacks {name}"
g = rs.Generator(seed=2**40 + 5)
x, g = g.normal((3,))
assert (x == jax.random.normal(rs.Generator(seed=2**40 + 5).key(), (3,))).all()
print(f"normal((3,)) = {x.tolist()}, then {g}, from {where.parent}")
PY

echo "== pyright on the typed example, against the installed wheel"
mkdir "$work/typing"
cp "$repo/tests/typing/typed_example.py" "$work/typing/"
"$python" - "$repo/tests/typing/pyrightconfig.json" "$work/typing/pyrightconfig.json" <<'PY'
import json
import sys

config = json.load(open(sys.argv[1]))
config.pop("extraPaths")  # the source tree: not here
json.dump(config, open(sys.argv[2], "w"))
PY
(cd "$work/typing" && "$python" -m pyright --pythonpath "$work/venv/bin/python" \
    -p pyrightconfig.json > pyright.txt) || { cat "$work/typing/pyright.txt"; exit 1; }
tail -1 "$work/typing/pyright.txt"
if grep -E 'is "(Any|Unknown)|is "tuple\[Any' "$work/typing/pyright.txt"; then
    echo "the installed wheel's ops are untyped"; exit 1
fi
echo "wheel check passed in ${SECONDS}s"
