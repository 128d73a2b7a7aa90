"""`make migrate STACK=<env> [ORG=<organization>]`: the `pulumi state move` commands that split an
environment's single stack into its platform stack and one stack per team, losing nothing.

The plan is computed, not written by hand: the program runs in the single-stack layout
(`singleStack: true`, what the stack's state holds today) and in the split layout, and every
resource only the single layout has in the platform stack moves to the team stack that declares
it. Only top-level resources are named (`pulumi state move` takes their children along); a moved
resource whose parent stays behind is re-parented to the destination's root, which is where the
team program registers each service, so every moved URN is one the team program declares
(`plan` checks it, and tests/test_migration.py checks both layouts render the same objects).
Walkthrough: docs/operations.md#migrating-to-team-stacks.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from components.stack_contract import PLATFORM_PROJECT, TEAM_PROJECT

from .recording import Recording
from .project import PROJECT_ROOT
from .runtime import ProgramError, rejected
from .stacks import run_environment, run_platform


@dataclass(frozen=True)
class Move:
    team: str
    stack: str
    urns: tuple[str, ...]


def moved_urn(urn: str, stack: str, project: str = TEAM_PROJECT) -> str:
    """Where a resource lands after `pulumi state move` to `project`/`stack` when its top-level
    ancestor's parent stays behind: the platform components drop out of its type chain."""
    _, _, type_chain, name = urn.split("::", 3)
    chain = type_chain.split("$")
    keep = chain[chain.index("platform:workloads:Microservice") :] if "platform:workloads:Microservice" in chain else chain[-1:]
    return f"urn:pulumi:{stack}::{project}::{'$'.join(keep)}::{name}"


def plan(env: str, root: Path) -> tuple[list[Move], Recording, Recording]:
    """The moves of `env`, and the single-stack and split recordings they were computed from."""
    single = run_platform(env, root, single_stack=True)
    split = run_environment(env, root)
    staying = {r.urn for r in split.stacks[env]}
    moving = [r for r in single if r.urn not in staying]
    moving_urns = {r.urn for r in moving}
    owner = {r.urn: name for name, rec in split.stacks.items() if name != env for r in rec}
    moves: dict[str, list[str]] = {}
    for r in moving:
        stack = next((name for name in split.stacks if name != env and moved_urn(r.urn, name) in owner), None)
        if stack is None:
            raise ProgramError(f"{r.urn}: only the single stack declares it; no team stack would take it over")
        if r.parent not in moving_urns:
            moves.setdefault(stack, []).append(r.urn)
    return [Move(s.removesuffix(f"-{env}"), s, tuple(sorted(u))) for s, u in sorted(moves.items())], single, split


def commands(env: str, moves: list[Move], organization: str) -> list[str]:
    source = f"{organization}/{PLATFORM_PROJECT}/{env}"
    lines = [
        f"# Split {source} into its platform stack and {len(moves)} team stack(s). Run with the platform's deploy role, with no",
        "# deploy running, after `pulumi stack export` of the source (a backup) and after `pulumi up` of the source at this",
        "# commit with `singleStack: true` (it publishes the team stacks' contract) (docs/operations.md#migrating-to-team-stacks).",
    ]
    for move in moves:
        dest = f"{organization}/{TEAM_PROJECT}/{move.stack}"
        lines += [
            "",
            f"# team {move.team}: {len(move.urns)} service(s), their children follow",
            f"pulumi -C teams stack init {dest}",
            f"pulumi state move --source {source} --dest {dest} --yes \\",
            *[f"  '{urn}'" + (" \\" if i < len(move.urns) - 1 else "") for i, urn in enumerate(move.urns)],
        ]
    lines += [
        "",
        "# then the platform stack leaves the single-stack layout: expect no resource change (its outputs lose `canaries`)",
        f"pulumi -C . config rm singleStack --stack {source}",
        f"pulumi -C . up --stack {source} --diff",
        "# and each team stack takes its services over: expect no resource created, replaced or deleted",
        *[f"pulumi -C teams preview --stack {organization}/{TEAM_PROJECT}/{m.stack} --diff" for m in moves],
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    from components.spec import SpecError

    parser = argparse.ArgumentParser(prog="make migrate", description=__doc__)
    parser.add_argument("stack", help="environment (stacks/<env>.yaml) whose single stack to split")
    parser.add_argument("--org", default="organization", help="the Pulumi organization of the stacks")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT)
    args = parser.parse_args(argv)
    try:
        moves, _, _ = plan(args.stack, args.root.resolve())
    except (SpecError, ProgramError) as err:
        return rejected(err)
    print("\n".join(commands(args.stack, moves, args.org)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
