"""`python -m engine.touched --base <ref>`: the stacks a change touches, as the CI matrix of pull
request previews and deploys (docs/operations.md#pull-requests-deploys-and-drift).

- A change confined to team folders: the stacks of the teams engine/diff/involved.py finds, in
  every environment, previewed normally.
- Any other change (a platform change): every platform stack, and every team stack of every
  environment with `expectNoChanges` (a platform change that rewrites a team's services is a
  finding, not a side effect). A change that removes the room of a team whose stack still holds
  services is refused (exit 2): the team's services go first, in their own merge.

`--all` instead of `--base` lists every stack that exists, each expecting no changes (the daily
drift check, .github/workflows/drift.yml): each environment's platform stack, and one team stack
per team with a room in it (engine/stacks.py:teams_in, the stacks the engine runs and the
migration creates): a room's stack exists from the team's onboarding on, services or not yet.

Prints `{"include": [{"stack", "dir", "environment", "expectNoChanges"}, ...]}`, each environment's
platform stack before its team stacks, for `strategy.matrix` (fromJSON); `--kind team` or
`--kind platform` keeps only those. A team stack's row also has `state`, the team's own backend
(`s3://<teamDeploy.stateBucket>/teams/<team>`, engine/contract.py), which CI logs into.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


from components.spec import SpecError

from .contract import ContractError, team_state
from .diff.cli import DiffError, resolve
from .diff.involved import involved_teams, raw_mapping
from .project import PROJECT_ROOT
from .stacks import environments, teams_in


class OffboardingError(Exception):
    """A change removes the room of a team whose stack still holds services (exit 2)."""


def rooms_at(root: Path, commit: str, env: str) -> set[str]:
    """The teams with a room in `env` at `commit`: a budget (`cpu`) under `teams:` of its stack file,
    as StackSpec.rooms() reads it (tests/test_workflows.py keeps the two the same)."""
    shown = subprocess.run(["git", "-C", str(root), "show", f"{commit}:stacks/{env}.yaml"], capture_output=True, text=True)
    teams = raw_mapping(shown.stdout if shown.returncode == 0 else None).get("teams")
    return {t for t, entry in teams.items() if isinstance(entry, dict) and entry.get("cpu") is not None} if isinstance(teams, dict) else set()


def offboarding_problems(root: Path, commit: str) -> list[str]:
    """Rooms the change removes while the team's stack still holds services at `commit`: without a
    room the team stack is no longer deployed, and what it made in AWS would be left behind."""
    from components.spec.team_files import SERVICES_DIR

    found = []
    for env in environments(root):
        for team in sorted(rooms_at(root, commit, env) - set(teams_in(env, root))):
            files = subprocess.run(
                ["git", "-C", str(root), "ls-tree", "-r", "--name-only", commit, "--", f"{SERVICES_DIR}/{team}/"], capture_output=True, text=True
            )
            if files.stdout.strip():
                found.append(
                    f"stacks/{env}.yaml: teams.{team}: the change removes team {team!r}'s room while its stack {team}-{env} still holds services; "
                    f"delete the team's service files first (that merge's deploy deletes its workloads and AWS roles), then its budget "
                    f"(docs/operations.md#onboarding-a-team)"
                )
    return found


def matrix(root: Path, base: str) -> list[dict[str, object]]:
    commit = resolve(root, base)
    teams = involved_teams(root, commit)
    problems = offboarding_problems(root, commit) if teams is None else []
    if problems:
        raise OffboardingError("\n".join(problems))
    rows: list[dict[str, object]] = []
    for env in environments(root):
        if teams is None:
            rows.append({"stack": env, "dir": ".", "environment": env, "expectNoChanges": False})
        # A team's stack is there while its room is, folder or not: the deploy after a team's last
        # service file is deleted is the one that deletes the service.
        rooms = teams_in(env, root)
        rows += [_team_row(team, env, root, expect_no_changes=teams is None) for team in (rooms if teams is None else teams) if team in rooms]
    return rows


def every_stack(root: Path) -> list[dict[str, object]]:
    """Every stack that exists, expecting no changes: per environment, its platform stack, then its team stacks."""
    rows: list[dict[str, object]] = []
    for env in environments(root):
        rows.append({"stack": env, "dir": ".", "environment": env, "expectNoChanges": True})
        rows += [_team_row(team, env, root, expect_no_changes=True) for team in teams_in(env, root)]
    return rows


def _team_row(team: str, env: str, root: Path, expect_no_changes: bool) -> dict[str, object]:
    return {"stack": f"{team}-{env}", "dir": "teams", "environment": env, "expectNoChanges": expect_no_changes, "state": team_state(env, team, root)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.touched", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--base", help="git ref the change is compared with")
    which.add_argument("--all", action="store_true", help="every stack that exists (the drift check), each expecting no changes")
    parser.add_argument("--kind", choices=["all", "platform", "team"], default="all")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT)
    args = parser.parse_args(argv)
    try:
        rows = every_stack(args.root.resolve()) if args.all else matrix(args.root.resolve(), args.base)
    except (DiffError, SpecError, ContractError, OffboardingError) as err:
        print(f"engine.touched: {err}", file=sys.stderr)
        return 2
    if args.kind != "all":
        rows = [r for r in rows if (r["dir"] == ".") == (args.kind == "platform")]
    print(json.dumps({"include": rows}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
