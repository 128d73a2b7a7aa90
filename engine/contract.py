"""`python -m engine.contract`: publish the platform's contract into each team's own Pulumi state.

A team stack keeps its state in its own backend, `s3://<teamDeploy.stateBucket>/teams/<team>`, the
only part of the state its deploy role may read or write (components/aws/team_deploy.py). A
self-managed backend's StackReference sees only the stacks of the backend it is logged into, so the
platform stack itself (stored outside `teams/`) is out of the team's reach, as it must be: its
state holds the platform's secrets. After each `pulumi up` of a platform stack, the platform deploy
job therefore publishes the contract into every team's backend, as a stack
`organization/platform/<env>` of the tiny YAML project in contract/, whose outputs are exactly the
contract's (components/stack_contract.py:OUTPUTS) with `teamRooms` reduced to that team's room: a
team learns nothing about the others. The team deploy boundary lets the team write only its own
stacks there, never this.

- `--list`: one line `<team> <state URL>` per room of the deployed platform stack;
- `--team T`: checks the outputs for T (exit 2 naming what is wrong: a missing output, a secret, a
  contract version, no room for T) and writes contract/Pulumi.<env>.yaml, the publisher's config
  (generated, never committed).

`--outputs` is the platform stack's `pulumi stack output --json` (secrets shown as "[secret]").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from components import stack_contract
from components.spec import SpecError, load
from components.spec.loader import known_stacks
from components.spec.deploy import state_url

from .project import PROJECT_ROOT

CONTRACT_DIR = "contract"
CONFIG_KEY = f"{stack_contract.PLATFORM_PROJECT}:contract"


class ContractError(Exception):
    """The platform stack's outputs cannot be published (exit 2)."""


def published(outputs: dict[str, Any], team: str) -> dict[str, Any]:
    """What team `team`'s backend receives: the contract's outputs, with only the team's room."""
    problems = stack_contract.problems(outputs, team)
    if problems:
        raise ContractError("\n".join(f"team {team!r}: {p}" for p in problems))
    contract = {name: outputs[name] for name in stack_contract.OUTPUTS}
    contract["teamRooms"] = {team: outputs["teamRooms"][team]}
    return contract


def write_config(contract: dict[str, Any], env: str, project: Path) -> Path:
    """contract/Pulumi.<env>.yaml, the publisher's config: the contract as one object."""
    path = project / f"Pulumi.{env}.yaml"
    path.write_text(yaml.safe_dump({"config": {CONFIG_KEY: contract}}, sort_keys=True))
    return path


def rooms(outputs: dict[str, Any], env: str, root: Path) -> list[tuple[str, str]]:
    """(team, state URL) of every room the deployed platform stack lists."""
    listed = outputs.get("teamRooms")
    if not isinstance(listed, dict):
        raise ContractError(f"the platform stack {env} has no output 'teamRooms' (or it is not a map): nothing to publish")
    return [(team, team_state(env, team, root)) for team in sorted(listed)]


def team_state(env: str, team: str, root: Path) -> str:
    """The backend of `team`'s stacks (`pulumi login` URL), from the stack file's teamDeploy.stateBucket."""
    deploy = load(env, root).spec.team_deploy
    if deploy is None:
        raise ContractError(
            f"stacks/{env}.yaml: teamDeploy is not set, but team {team!r} has a stack in {env}: team stacks keep their state, "
            "and read the platform's contract, under the state bucket it names (teamDeploy.stateBucket)"
        )
    return state_url(deploy.state_bucket, team)


def read_outputs(path: Path) -> dict[str, Any]:
    try:
        outputs = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ContractError(f"{path}: not the JSON of `pulumi stack output --json` ({err})") from None
    if not isinstance(outputs, dict):
        raise ContractError(f"{path}: not the JSON of `pulumi stack output --json` (an object of outputs)")
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.contract", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, help="the environment (stacks/<env>.yaml) of the platform stack")
    parser.add_argument("--outputs", required=True, type=Path, help="the platform stack's `pulumi stack output --json`")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--team", help="write contract/Pulumi.<env>.yaml for this team's backend")
    which.add_argument("--list", action="store_true", help="print `<team> <state URL>` per room of the platform stack")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT)
    parser.add_argument("--project", type=Path, help="the publisher's folder (default: contract/ under --root)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    project = args.project or root / CONTRACT_DIR
    try:
        if args.env not in known_stacks(root):
            raise ContractError(f"--env {args.env!r}: no stacks/{args.env}.yaml")
        outputs = read_outputs(args.outputs)
        if args.list:
            print("".join(f"{team} {url}\n" for team, url in rooms(outputs, args.env, root)), end="")
        else:
            path = write_config(published(outputs, args.team), args.env, project)
            print(f"engine.contract: wrote {path} for team {args.team}", file=sys.stderr)
    except (ContractError, SpecError) as err:
        print(f"engine.contract: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
