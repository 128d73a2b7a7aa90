"""Run one program (the platform's __main__.py, or the floor) on the engine, for `make bench`.

usage: python -m bench.program STACK ROOT RECORD_OUT|- [PROGRAM]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.stacks import run


def main() -> int:
    stack, root, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    program = Path(sys.argv[4]) if len(sys.argv) > 4 else None
    recording = run(stack, root, program=program)
    if out != "-":
        Path(out).write_text(json.dumps([r.to_json() for r in recording]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
