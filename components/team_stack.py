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
from typing import Any

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


def parse_stack(stack: str, root: Path) -> tuple[str, str]:
    """(team, environment) of a team stack name `<team>-<env>`."""
    envs = known_stacks(root)
    for env in envs:
        team = stack.removesuffix(f"-{env}")
        if team != stack and team:
            if not (root / "stacks" / "services" / team).is_dir():
                raise ValueError(f"stack {stack!r}: team {team!r} has no folder stacks/services/{team}/")
            return team, env
    raise ValueError(f"stack {stack!r} is not <team>-<env>; environments: {', '.join(envs)}")


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
        contract = _checked(platform, team if own else None, expected)
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
        boundary = contract.apply(lambda c: c["teamRooms"].get(team, {}).get("boundaryArn"))
        mesh = workload_mesh(decl, own, contracts, decl.spec.cluster.name, region, boundary, None)
        self.services = build_services(decl, own, mesh, contracts, k8s_provider, {}, pulumi.ResourceOptions(providers={"aws": aws_provider}))


def _checked(platform: pulumi.StackReference, team: str | None, expected: dict[str, Any]) -> pulumi.Output[dict[str, Any]]:
    """The contract's outputs, once they pass the contract's checks; otherwise the deploy stops with them."""
    values = {name: platform.get_output(name) for name in stack_contract.OUTPUTS}

    def check(args: dict[str, Any]) -> dict[str, Any]:
        secret = set(args.pop("_secret") or ())
        outputs = {k: ("[secret]" if k in secret else v) for k, v in args.items() if v is not None}
        problems = stack_contract.problems(outputs, team or "", expected["mesh"], expected["telemetry"]) if team else []
        if not team:
            problems = [p for p in stack_contract.problems(outputs, "") if "no room" not in p]
        if problems:
            raise ValueError("; ".join(problems))
        return outputs

    return pulumi.Output.all(_secret=platform.secret_output_names, **values).apply(check)
