"""`make migrate STACK=<env> [ORG=<organization>]`: the `pulumi state move` commands that split an
environment's single stack into its platform stack and one stack per team, losing nothing.

The plan is computed, not written by hand: the program runs in the single-stack layout
(`singleStack: true`, what the stack's state holds today) and in the split layout, and every
resource only the single layout has in the platform stack moves to the team stack that declares
it. Only top-level resources are named (`pulumi state move` takes their children along); a moved
resource whose parent stays behind is re-parented to the destination's root, which is where the
team program registers each service, so every moved URN is one the team program declares
(`plan` checks it, and tests/test_migration.py checks both layouts render the same objects).

`pulumi state move` works inside one backend, and each team's stacks live in the team's own state
(`s3://<teamDeploy.stateBucket>/teams/<team>`, docs/security-model.md#team-deploy-identity), under
the team stacks' passphrase. So each team stack then moves there whole: exported with its secrets
in plaintext (decrypted with the platform's passphrase), given the new stack's secrets provider
(`--rekey`, since an export names the provider that encrypted it, and importing under another
passphrase fails), imported (re-encrypted with the team stacks' passphrase), the plaintext files
shredded, previewed there, and only then dropped from the platform's backend (`stack rm --force`
forgets a stack's state and leaves its resources alone).
Walkthrough: docs/operations.md#migrating-to-team-stacks.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.spec.deploy import state_url
from components.stack_contract import TEAM_PROJECT, platform_stack_name

from .recording import Recording
from .runtime import ORGANIZATION
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


def commands(env: str, moves: list[Move], organization: str, state_bucket: str) -> list[str]:
    source = platform_stack_name(organization, env)
    lines = [
        f"# Split {source} into its platform stack and {len(moves)} team stack(s). Run logged in to the platform's backend,",
        "# with the platform's deploy role, no deploy running, after `pulumi stack export` of the source (a backup) and after",
        "# `pulumi up` of the source at this commit with `singleStack: true` (it exports the team stacks' contract)",
        "# (docs/operations.md#migrating-to-team-stacks).",
        "# PLATFORM_PASSPHRASE is the platform stacks' passphrase, TEAM_STACKS_PASSPHRASE the team stacks' one.",
        'export PULUMI_CONFIG_PASSPHRASE="$PLATFORM_PASSPHRASE"',
    ]
    for move in moves:
        dest = platform_stack_name(organization, move.stack, TEAM_PROJECT)
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
        f"pulumi stack output --stack {source} --json > platform-outputs.json",
    ]
    # A team's own state is a self-managed backend: its stacks and the contract are `organization/...` there.
    contract = platform_stack_name(ORGANIZATION, env)
    for move in moves:
        dest, team_dest = platform_stack_name(organization, move.stack, TEAM_PROJECT), platform_stack_name(ORGANIZATION, move.stack, TEAM_PROJECT)
        state, files = state_url(state_bucket, move.team), move.stack
        team = f'PULUMI_BACKEND_URL={state} PULUMI_CONFIG_PASSPHRASE="$TEAM_STACKS_PASSPHRASE"'
        lines += [
            "",
            f"# {move.stack} moves into team {move.team}'s own state, re-encrypted under the team stacks' passphrase",
            "# first the contract it reads there, as the deploy workflow publishes it after every platform update",
            f"python -m engine.contract --env {env} --outputs platform-outputs.json --team {move.team}",
            f"{team} pulumi -C contract stack select --create {contract}",
            f"{team} pulumi -C contract up --stack {contract} --yes",
            f"pulumi stack export --stack {dest} --show-secrets --file {files}.plain.json",
            "# the local stack file holds only the salt of the platform backend's copy; the team stack keeps its own in its state",
            f"rm -f teams/Pulumi.{move.stack}.yaml",
            f"{team} pulumi -C teams stack init {team_dest}",
            f"{team} pulumi stack export --stack {team_dest} --file {files}.target.json",
            f"python -m engine.migrate --rekey {files}.plain.json {files}.target.json > {files}.rekeyed.json",
            f"{team} pulumi stack import --stack {team_dest} --file {files}.rekeyed.json",
            f"shred -u {files}.plain.json {files}.rekeyed.json {files}.target.json",
            "# expect no resource created, replaced or deleted; then forget the platform backend's copy (its resources stay)",
            f"{team} pulumi -C teams preview --stack {team_dest} --diff --expect-no-changes",
            f"pulumi stack rm --stack {dest} --force --yes",
        ]
    return lines


def rekey(exported: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """`exported` (a `pulumi stack export --show-secrets`) with the secrets provider of `target` (an
    export of the stack it will be imported into), so the import encrypts under the target's key.
    ValueError when either is not what it should be."""
    for what, doc in (("the export", exported), ("the target", target)):
        if not isinstance(doc, dict) or doc.get("version") != 3 or not isinstance(doc.get("deployment"), dict):
            raise ValueError(f"{what} is not a `pulumi stack export` (version 3 deployment)")
    provider = target["deployment"].get("secrets_providers")
    if not isinstance(provider, dict):
        raise ValueError("the target names no secrets provider; export it after `pulumi stack init` in its backend")
    if '"ciphertext"' in json.dumps(exported["deployment"]):
        raise ValueError("the export holds encrypted secrets; export it with --show-secrets, or the new stack cannot read them")
    return {**exported, "deployment": {**exported["deployment"], "secrets_providers": provider}}


def main(argv: list[str] | None = None) -> int:
    from components.spec import SpecError, load

    parser = argparse.ArgumentParser(prog="make migrate", description=__doc__)
    parser.add_argument("stack", nargs="?", help="environment (stacks/<env>.yaml) whose single stack to split")
    parser.add_argument("--org", default="organization", help="the Pulumi organization of the stacks")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT)
    parser.add_argument("--rekey", nargs=2, metavar=("EXPORT", "TARGET"), help="print EXPORT with the secrets provider of TARGET (a step of the plan)")
    args = parser.parse_args(argv)
    if args.rekey:
        try:
            exported, target = (json.loads(Path(p).read_text()) for p in args.rekey)
            print(json.dumps(rekey(exported, target)))
        except (OSError, ValueError) as err:
            print(f"make migrate --rekey: {err}", file=sys.stderr)
            return 2
        return 0
    if not args.stack:
        parser.error("give the environment whose single stack to split")
    try:
        moves, _, _ = plan(args.stack, args.root.resolve())
        deploy = load(args.stack, args.root.resolve()).spec.team_deploy
    except (SpecError, ProgramError) as err:
        return rejected(err)
    if deploy is None:
        print(f"make migrate: stacks/{args.stack}.yaml has no teamDeploy: team stacks need their state bucket (teamDeploy.stateBucket)", file=sys.stderr)
        return 2
    print("\n".join(commands(args.stack, moves, args.org, deploy.state_bucket)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
