"""`python -m engine.record STACK`: one offline run of a stack, as JSON on stdout.

This is the stable seam `make diff` uses to run a *different checkout* of the project (the base of a
pull request) with that checkout's own code: `engine.diff` starts this module in a subprocess whose
working directory is the base worktree, so the base's program, components, renderer and policy
rules decide what the base looked like. It prints one JSON document:

    {"format": 1, "stack": ..., "resources": [...], "outputs": {...},
     "manifests": {"<namespace>/<kind>-<name>.yaml": {...}}, "policy": {...},
     "services": {"<name>": {"team": ..., "tier": ..., "dependsOn": [...]}}, "served": [...]}

`resources` are the records of `build/<stack>/resources.json` (secrets already "[secret]"),
`policy` is the report of `build/<stack>/policy.json`. `--out FILE` writes the document to a file
instead. Exit status: 0 with the document, 2 with a
one-paragraph message on stderr when the declarations or the program are rejected.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

FORMAT = 1


def record(stack: str, root: Path, teams: list[str] | None = None, state: Path | None = None) -> dict[str, Any]:
    """Run `stack` from the project at `root` and return the document described above; with
    `teams`, only the environment's platform stack and those teams' stacks (engine/diff/involved.py);
    with `state`, the platform stack's recorded states kept there are served (engine/platform_state.py).

    Raises components.spec.SpecError or engine.runtime.ProgramError on rejected input."""
    from .stacks import State, load_and_run

    decl, recording = load_and_run(stack, root, teams, State(state) if state else None)
    return document(recording, decl)


def document(recording: Any, decl: Any) -> dict[str, Any]:
    """The document of one recording (engine.recording.Recording) and its declarations."""
    from policy.evaluate import evaluate_recording

    from . import render

    report = evaluate_recording(recording, decl.spec)
    return {
        "format": FORMAT,
        "stack": recording.stack,
        "resources": [r.to_json() for r in recording],
        "outputs": recording.outputs,
        "manifests": render.manifest_files(recording),
        "policy": report.to_json(),
        "services": {s.name: {"team": s.team, "tier": s.tier, "dependsOn": list(s.depends_on)} for s in decl.services},
        # The stacks served from their recorded state rather than run (engine/platform_state.py).
        "served": sorted(name for name, part in recording.stacks.items() if part.served),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.record", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="stack name (stacks/<stack>.yaml)")
    parser.add_argument("--root", type=Path, default=None, help="project root (default: this checkout)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here instead of stdout")
    parser.add_argument("--teams", default=None, help="comma-separated teams: the platform stack and only these team stacks")
    parser.add_argument("--state", type=Path, default=None, help="serve and keep the platform stack's recorded state in this folder")
    args = parser.parse_args(argv)

    from components.spec import SpecError

    from .project import PROJECT_ROOT
    from .runtime import ProgramError, rejected

    try:
        # Anything the program prints goes to stderr: stdout carries only the JSON document.
        with contextlib.redirect_stdout(sys.stderr):
            teams = None if args.teams is None else [t for t in args.teams.split(",") if t]
            doc = record(args.stack, args.root or PROJECT_ROOT, teams, args.state)
    except (SpecError, ProgramError) as err:
        return rejected(err)
    text = json.dumps(doc, sort_keys=True) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
