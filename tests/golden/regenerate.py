"""Rewrite rngstate/golden.json from the installed engine.

Run this only when docs/stability.md allows the numbers to change (a JAX upgrade that changes
a sampler, recorded in the changelog); never to make a failing golden test pass otherwise.
The key and ``bits`` columns must come out unchanged: the script refuses to write if they
differ from the current table.

    .venv/bin/python tests/golden/regenerate.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from rngstate import golden

CASES = [
    (0, 0),
    (42, 7),
    (20261121, 2**32 - 1),
    (2**40 + 5, 3),
    (2**63, 2**32),
    (2**64 - 1, 2**64 - 1),
]
PATH = Path(golden.__file__).with_name("golden.json")


def main() -> int:
    table = golden.table_for(CASES)
    if PATH.exists():
        flags = (True, False)
        broken = [m for f in flags for m in golden.mismatches(f, golden.STABLE_FIELDS)]
        if broken:
            print("the key derivation or bits changed; refusing to rewrite:", *broken, sep="\n")
            return 1
    text = json.dumps(table, indent=1)
    # One line per list of values, so a diff of the table shows which values moved.
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + " ".join(m[1].split()) + "]", text)
    PATH.write_text(text + "\n")
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
