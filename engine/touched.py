"""`python -m engine.touched --base <ref>`: the stacks a change touches, as the CI matrix of pull
request previews and deploys (docs/operations.md#pull-requests-deploys-and-drift).

- A change confined to team folders: the stacks of the teams engine/diff/involved.py finds, in
  every environment, previewed normally.
- Any other change (a platform change): every platform stack, and every team stack of every
  environment with `expectNoChanges` (a platform change that rewrites a team's services is a
  finding, not a side effect).

Prints `{"include": [{"stack", "dir", "environment", "expectNoChanges"}, ...]}`, the platform
stacks first, for `strategy.matrix` (fromJSON); `--kind team` or `--kind platform` keeps only those.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .diff.cli import DiffError, resolve
from .diff.involved import involved_teams
from .project import PROJECT_ROOT
from .stacks import environments


def matrix(root: Path, base: str) -> list[dict[str, object]]:
    from components.spec.team_files import SERVICES_DIR

    teams = involved_teams(root, resolve(root, base))
    every = sorted(p.name for p in (root / SERVICES_DIR).iterdir() if p.is_dir() and not p.is_symlink())
    rows: list[dict[str, object]] = []
    for env in environments(root):
        if teams is None:
            rows.append({"stack": env, "dir": ".", "environment": env, "expectNoChanges": False})
        rows += [
            {"stack": f"{team}-{env}", "dir": "teams", "environment": env, "expectNoChanges": teams is None}
            for team in (every if teams is None else teams)
            if (root / SERVICES_DIR / team).is_dir()
        ]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.touched", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git ref the change is compared with")
    parser.add_argument("--kind", choices=["all", "platform", "team"], default="all")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT)
    args = parser.parse_args(argv)
    try:
        rows = matrix(args.root.resolve(), args.base)
    except DiffError as err:
        print(f"engine.touched: {err}", file=sys.stderr)
        return 2
    if args.kind != "all":
        rows = [r for r in rows if (r["dir"] == ".") == (args.kind == "platform")]
    print(json.dumps({"include": rows}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
