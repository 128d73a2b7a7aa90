"""A team stack: one team's services in one environment, deployed on the room the platform built.

It reads the platform only through the contract (components/stack_contract.py), from a
StackReference to `<organization>/platform/<env>`. Kubernetes is reached with a kubeconfig built
from the contract's endpoint and CA, authenticating with `aws eks get-token` as whoever runs the
deploy (the team's own deploy identity in CI): no credential is read from, or written to, a stack.

Each Microservice is registered at the root of the stack, so after `pulumi state move` (which
re-parents a moved resource whose parent stays behind to the destination's root) its URN is the
one this program declares: the migration changes nothing (docs/operations.md#migrating-to-team-stacks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import stack_contract
from components.addons.registry import publish_contracts
from components.aws.cluster import kubeconfig
from components.contracts import Contracts
from components.spec import Declarations, load
from components.spec.loader import known_stacks
from components.spec.pulumi_files import aws_region
from components.workloads import Microservice, build_services, offered, workload_mesh

# The providers the single stack had; `pulumi state move` copies them with the moved resources, so
# the team stack's own providers take them over instead of replacing every resource.
MOVED_PROVIDERS = {"kubernetes": "platform-cluster-k8s", "aws": "platform-aws"}


def split_stack_name(stack: str, envs: list[str]) -> tuple[str, str] | None:
    """(team, environment) when `stack` reads `<team>-<env>` for one of `envs` (an environment's own
    name is never a team stack's)."""
    if stack in envs:
        return None
    for env in envs:
        team = stack.removesuffix(f"-{env}")
        if team != stack and team:
            return team, env
    return None


def parse_stack(stack: str, root: Path) -> tuple[str, str]:
    """(team, environment) of a team stack name `<team>-<env>`: a team with a room in the environment
    (stacks/<env>.yaml declares it with a budget), whether or not it has services there yet."""
    envs = known_stacks(root)
    found = split_stack_name(stack, envs)
    if found is None:
        raise ValueError(f"stack {stack!r} is not <team>-<env>; environments: {', '.join(envs)}")
    team, env = found
    rooms = load(env, root).spec.rooms()
    if team not in rooms:
        raise ValueError(unknown_team(stack, team, env, rooms))
    return found


def unknown_team(stack: str, team: str, env: str, rooms: Sequence[str]) -> str:
    return (
        f"stack {stack!r}: team {team!r} has no room in {env} (stacks/{env}.yaml declares no teams.{team} with cpu, memory and pods); "
        f"teams with a room (and a stack <team>-{env}) in {env}: {', '.join(rooms) or 'none'}"
    )


def expected_addresses(decl: Declarations, region: str) -> tuple[Contracts, Any, dict[str, Any]]:
    """What the platform offers at this commit, derived from the declarations: the addons' contracts,
    the services' Mesh, and the contract's `mesh` and `telemetry` outputs it must match."""
    contracts = publish_contracts(Contracts(), decl, region)
    offer = offered(decl, contracts, decl.spec.cluster.name, region)
    return contracts, offer, {"mesh": stack_contract.mesh_addresses(offer), "telemetry": stack_contract.telemetry_addresses(offer)}


def _aliases(kind: str) -> list[pulumi.Alias]:
    name = MOVED_PROVIDERS[kind]
    return [pulumi.Alias(name=name, parent=pulumi.ROOT_STACK_RESOURCE)]


class TeamStack:
    """Everything a team stack registers; `services` by name."""

    services: dict[str, Microservice]

    def __init__(self, team: str, environment: str, root: Path):
        decl = load(environment, root)
        region = aws_region(environment, root) or "eu-west-1"
        config = pulumi.Config()
        organization = config.get("platformOrganization") or pulumi.get_organization()
        name = config.get("platformStack") or stack_contract.platform_stack_name(organization, environment)
        own = tuple(s for s in decl.services if s.team == team)
        # What the platform offers, derived from this commit's declarations, and checked against
        # what the deployed platform stack says it offers.
        contracts, _, expected = expected_addresses(decl, region)
        platform = pulumi.StackReference(name)
        # Checked for a team without services here too: its room exists from the moment it is declared.
        contract = _checked(platform, team, expected)
        k8s_provider = k8s.Provider(
            f"{team}-k8s",
            kubeconfig=contract.apply(lambda c: kubeconfig(c["clusterName"], c["clusterEndpoint"], c["clusterCertificateAuthority"], c["region"])),
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(aliases=_aliases("kubernetes")),
        )
        aws_provider = aws.Provider(
            f"{team}-aws",
            region=region,
            default_tags={"tags": {"platform/stack": environment, "platform/cluster": decl.spec.cluster.name, "platform/team": team, "managed-by": "pulumi"}},
            opts=pulumi.ResourceOptions(aliases=_aliases("aws")),
        )
        boundary = contract.apply(lambda c: c["teamRooms"][team].get("boundaryArn"))
        # Who deploys this stack: exported, so the stack shows which identity its deploys must run as.
        self.deploy_role_arn: pulumi.Output[str] = contract.apply(lambda c: c["teamRooms"][team]["deployRoleArn"])
        mesh = workload_mesh(decl, own, contracts, decl.spec.cluster.name, region, boundary, None)
        self.services = build_services(decl, own, mesh, contracts, k8s_provider, {}, pulumi.ResourceOptions(providers={"aws": aws_provider}))


def _checked(platform: pulumi.StackReference, team: str, expected: dict[str, Any]) -> pulumi.Output[dict[str, Any]]:
    """The contract's outputs, once they pass the contract's checks; otherwise the deploy stops with them."""
    values = {name: platform.get_output(name) for name in stack_contract.OUTPUTS}

    def check(args: dict[str, Any]) -> dict[str, Any]:
        secret = set(args.pop("_secret") or ())
        outputs = {k: ("[secret]" if k in secret else v) for k, v in args.items() if v is not None}
        problems = stack_contract.problems(outputs, team, expected["mesh"], expected["telemetry"])
        if problems:
            raise ValueError("; ".join(problems))
        return outputs

    return pulumi.Output.all(_secret=platform.secret_output_names, **values).apply(check)
