#!/usr/bin/env bash
# Prints the path of the newest Python >= the version asked for (e.g. 3.12) that runs on this
# machine: python3.1x on PATH first, then pyenv's installed versions. Exits 1 with a message
# naming what was tried when there is none (`make test-newest` needs one).
set -uo pipefail
want=${1:-3.12}
want_minor=${want#3.}
tried=()
runs() { "$1" -c "import sys; sys.exit(sys.version_info < (3, $want_minor))" >/dev/null 2>&1; }
for minor in 14 13 12; do
    [ "$minor" -lt "$want_minor" ] && continue
    candidates=("python3.$minor")
    if command -v pyenv >/dev/null 2>&1; then
        root=$(pyenv root 2>/dev/null)
        for dir in "$root"/versions/3."$minor".*; do
            [ -x "$dir/bin/python3.$minor" ] && candidates+=("$dir/bin/python3.$minor")
        done
    fi
    for candidate in "${candidates[@]}"; do
        tried+=("$candidate")
        if runs "$candidate"; then
            command -v "$candidate"
            exit 0
        fi
    done
done
echo "no Python >= $want found (tried: ${tried[*]:-nothing}); install one (pyenv install 3.13)" \
    "or name it: make test-newest NEWEST_PYTHON=/path/to/python3.13" >&2
exit 1
