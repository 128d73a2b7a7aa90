"""`make diff STACK=<stack> BASE=<git ref>`: the offline desired-state diff of a change.

Records BASE in a temporary `git worktree` with *its own* code (engine/diff/base.py), records the
working tree in-process meanwhile, compares the two, and writes `build/<stack>/diff.md` and `diff.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

from .base import DiffError, git, record_base
from .compare import EXIT_ERROR, compare, exit_status
from .report import markdown


def resolve(root: Path, ref: str) -> str:
    if not ref or ref.startswith("-"):
        raise DiffError(f"BASE must be a git ref (a branch, tag or commit), not {ref!r}")
    if git(root, "rev-parse", "--git-dir", check=False).returncode != 0:
        raise DiffError(f"{root} is not a git checkout; make diff compares git refs")
    proc = git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise DiffError(f"BASE={ref}: not a commit in this repository (fetch it first, e.g. `git fetch origin main`)")
    return proc.stdout.strip()


def previewed(stack: str, teams: Optional[list[str]], base: dict[str, Any], head: dict[str, Any]) -> str:
    """Which stacks the diff covers, and which of them were served their recorded state rather than
    run (engine/platform_state.py), on which side."""
    sides = {}
    for name in sorted({*base.get("served", []), *head.get("served", [])}):
        on = [side for side, doc in (("base", base), ("working tree", head)) if name in doc.get("served", [])]
        sides[name] = "both sides" if len(on) == 2 else f"the {on[0]}"
    note = "; ".join(f"{name}: served its recorded state on {where}" for name, where in sides.items())
    covered = "every stack" if teams is None else ", ".join([stack, *(f"{t}-{stack}" for t in teams)])
    return f"{covered} ({note})" if note else covered


def head_label(root: Path) -> str:
    short = git(root, "rev-parse", "--short", "HEAD", check=False).stdout.strip()
    dirty = git(root, "status", "--porcelain", "--untracked-files=no", check=False).stdout.strip()
    return f"working tree ({short}{' + local changes' if dirty else ''})" if short else "working tree"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="make diff", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="stack name (stacks/<stack>.yaml)")
    parser.add_argument("--base", required=True, help="git ref to compare against (branch, tag or commit)")
    parser.add_argument("--root", type=Path, default=None, help="project root, a git checkout (default: this one)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default build/<stack>)")
    parser.add_argument("--quiet", action="store_true", help="do not print the Markdown")
    args = parser.parse_args(argv)

    from components.spec import SpecError

    from ..platform_state import store_of
    from ..project import PROJECT_ROOT
    from ..record import record
    from ..runtime import ProgramError
    from ..stacks import team_stack
    from .involved import involved_teams

    root = (args.root or PROJECT_ROOT).resolve()
    out = args.out or root / "build" / args.stack

    # The platform stack's recorded states (engine/platform_state.py): both sides are served one
    # when their platform inputs are those it was recorded from, and keep what they run.
    state = store_of(root)

    def record_head(teams: Optional[list[str]]) -> Any:
        try:
            return record(args.stack, root, teams, state)
        except SpecError as err:
            return DiffError(f"working tree: invalid stack declarations:\n{err}")
        except ProgramError as err:
            return DiffError(f"working tree: {err}")

    try:
        commit = resolve(root, args.base)
        # Only the stacks the change can touch (engine/diff/involved.py): the platform's and the involved teams'.
        involved = involved_teams(root, commit) if team_stack(args.stack, root) is None else None
        base, head, teams = record_base(root, args.stack, args.base, commit, teams=involved, head=record_head, state=state)
        if isinstance(head, DiffError):
            raise head
    except DiffError as err:
        print(f"make diff: {err}", file=sys.stderr)
        return EXIT_ERROR
    result = compare(base, head, base_label=f"{args.base} ({commit[:10]})", head_label=head_label(root))
    text = f"Stacks previewed: {previewed(args.stack, teams, base, head)}\n\n" + markdown(result)
    out.mkdir(parents=True, exist_ok=True)
    (out / "diff.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (out / "diff.md").write_text(text)
    if not args.quiet:
        print(text)
    print(f"wrote {out / 'diff.md'} and {out / 'diff.json'}", file=sys.stderr)
    return exit_status(result)
