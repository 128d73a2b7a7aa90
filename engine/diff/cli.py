"""`make diff STACK=<stack> BASE=<git ref>`: the offline desired-state diff of a change.

Records BASE in a temporary `git worktree` with *its own* code (`python -m engine.record` in a
subprocess whose working directory is the worktree), records the working tree in-process, compares
the two, and writes `build/<stack>/diff.md` and `diff.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from .compare import EXIT_ERROR, compare, exit_status
from .report import markdown

RECORD_MODULE = "engine/record.py"


class DiffError(Exception):
    """The diff cannot be made; the message says why (exit 2)."""


def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise DiffError(f"git {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def resolve(root: Path, ref: str) -> str:
    if not ref or ref.startswith("-"):
        raise DiffError(f"BASE must be a git ref (a branch, tag or commit), not {ref!r}")
    if _git(root, "rev-parse", "--git-dir", check=False).returncode != 0:
        raise DiffError(f"{root} is not a git checkout; make diff compares git refs")
    proc = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise DiffError(f"BASE={ref}: not a commit in this repository (fetch it first, e.g. `git fetch origin main`)")
    return proc.stdout.strip()


def record_base(
    root: Path, stack: str, ref: str, commit: str, python: str = sys.executable, teams: Optional[list[str]] = None, head: Optional[Callable[[], Any]] = None
) -> tuple[dict[str, Any], Any]:
    """Check out `commit` in a temporary worktree and run its own `python -m engine.record` there
    (for `teams` only, when the base's engine can); `head()` runs meanwhile. Both documents."""
    head_doc = None
    with tempfile.TemporaryDirectory(prefix="platform-diff-") as tmp:
        worktree, out = Path(tmp) / "base", Path(tmp) / "base.json"
        _git(root, "worktree", "add", "--detach", "--quiet", str(worktree), commit)
        try:
            if not (worktree / RECORD_MODULE).is_file():
                raise DiffError(
                    f"BASE={ref} ({commit[:10]}) predates {RECORD_MODULE}, the entry point `make diff` runs the base with; "
                    "diff against a newer base (one that has it), or run `make preview` on both checkouts and compare by hand"
                )
            # The base's own code must run: its checkout is the working directory (first on sys.path
            # with -m), and nothing from this tree may leak in through PYTHONPATH.
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            limit = ["--teams", ",".join(teams)] if teams is not None else []
            # The base runs in its own process while this one records the working tree: two cores, half the wait.
            proc = subprocess.Popen(
                [python, "-m", "engine.record", stack, "--out", str(out), *limit],
                cwd=worktree,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                head_doc = head() if head else None
            finally:
                _, stderr = proc.communicate()
            if proc.returncode != 0:
                raise DiffError(f"BASE={ref} ({commit[:10]}): the engine could not run stack {stack!r} there:\n{stderr.strip()}")
            doc = json.loads(out.read_text())
        finally:
            _git(root, "worktree", "remove", "--force", str(worktree), check=False)
            _git(root, "worktree", "prune", check=False)
    if doc.get("format") != 1:
        raise DiffError(f"BASE={ref}: engine.record wrote format {doc.get('format')!r}; this diff reads format 1")
    return doc, head_doc


def base_can_limit(root: Path, commit: str) -> bool:
    """Whether the base's engine.record takes --teams (bases from before team stacks do not)."""
    proc = _git(root, "show", f"{commit}:{RECORD_MODULE}", check=False)
    return proc.returncode == 0 and '"--teams"' in proc.stdout


def head_label(root: Path) -> str:
    short = _git(root, "rev-parse", "--short", "HEAD", check=False).stdout.strip()
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no", check=False).stdout.strip()
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

    from ..record import record
    from ..project import PROJECT_ROOT
    from ..runtime import ProgramError
    from ..stacks import team_stack
    from .involved import involved_teams

    root = (args.root or PROJECT_ROOT).resolve()
    out = args.out or root / "build" / args.stack

    def record_head() -> Any:
        try:
            return record(args.stack, root, teams)
        except SpecError as err:
            return DiffError(f"working tree: invalid stack declarations:\n{err}")
        except ProgramError as err:
            return DiffError(f"working tree: {err}")

    try:
        commit = resolve(root, args.base)
        # Only the stacks the change can touch (engine/diff/involved.py): the platform's and the involved teams'.
        teams = involved_teams(root, commit) if base_can_limit(root, commit) and team_stack(args.stack, root) is None else None
        base, head = record_base(root, args.stack, args.base, commit, teams=teams, head=record_head)
        if isinstance(head, DiffError):
            raise head
    except DiffError as err:
        print(f"make diff: {err}", file=sys.stderr)
        return EXIT_ERROR
    result = compare(base, head, base_label=f"{args.base} ({commit[:10]})", head_label=head_label(root))
    previewed = "every stack" if teams is None else ", ".join([args.stack, *(f"{t}-{args.stack}" for t in teams)])
    text = f"Stacks previewed: {previewed}\n\n" + markdown(result)
    out.mkdir(parents=True, exist_ok=True)
    (out / "diff.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (out / "diff.md").write_text(text)
    if not args.quiet:
        print(text)
    print(f"wrote {out / 'diff.md'} and {out / 'diff.json'}", file=sys.stderr)
    return exit_status(result)
