"""The whole platform for one stack: network, cluster, and everything that runs on it."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.addons import AddonContext
from components.addons import install as install_addons
from components.aws.cluster import Cluster
from components.aws.dns import DnsZone
from components.aws.network import Network
from components.aws.team_deploy import TeamDeployIdentities
from components.karpenter import KarpenterController, NodePools
from components.scheduling import PriorityClasses
from components.spec import Declarations
from components.workloads import Workloads


class Platform(pulumi.ComponentResource):
    network: Network
    cluster: Cluster
    karpenter: KarpenterController
    node_pools: NodePools
    priorities: PriorityClasses
    addons: dict
    workloads: Workloads
    team_deploy: TeamDeployIdentities | None

    def __init__(self, name: str, decl: Declarations, region: str, opts: pulumi.ResourceOptions | None = None, single_stack: bool = False):
        super().__init__("platform:index:Platform", name, None, opts)
        spec = decl.spec
        # One explicit AWS provider, inherited by every child, so default tags reach every resource.
        aws_provider = aws.Provider(
            f"{name}-aws",
            region=region,
            default_tags={"tags": {"platform/stack": decl.stack, "platform/cluster": spec.cluster.name, "managed-by": "pulumi"}},
            opts=pulumi.ResourceOptions(parent=self),
        )
        scoped = pulumi.ResourceOptions(parent=self, providers={"aws": aws_provider})
        aws_apis = tuple(sorted({api for svc in decl.services for api in svc.aws_apis}))
        self.network = Network(f"{name}-network", spec.network, spec.cluster.name, protect=spec.cluster.protect, opts=scoped, aws_apis=aws_apis, region=region)
        self.cluster = Cluster(f"{name}-cluster", spec.cluster, region, self.network.private_subnet_ids, opts=scoped)
        provider = self.cluster.provider
        self.karpenter = KarpenterController(f"{name}-karpenter", self.cluster.name, provider, opts=scoped)
        self.node_pools = NodePools(
            f"{name}-node-pools", spec.karpenter, spec.cluster.name, self.karpenter.node_role_name, provider, self.karpenter.release, opts=scoped
        )
        self.priorities = PriorityClasses(f"{name}-priorities", provider, opts=scoped)
        zone = DnsZone(f"{name}-dns", spec.dns, spec.cluster.name, protect=spec.cluster.protect, opts=scoped) if spec.dns else None
        ctx = AddonContext(
            decl=decl, region=region, cluster_name=spec.cluster.name, provider=provider, oidc_provider_arn=self.cluster.oidc_provider_arn, dns_zone=zone
        )
        # Addons go after the node pools: their pods need nodes to land on.
        self.addons = install_addons(ctx, spec, pulumi.ResourceOptions(parent=self, providers={"aws": aws_provider}, depends_on=[self.node_pools]))
        self.contracts = ctx.contracts
        # The teams' rooms (and, in the single-stack layout, the services) start once the addons they
        # use (CRDs, mesh, secret store) are installed. Services normally live in the team stacks.
        self.workloads = Workloads(
            f"{name}-workloads",
            decl,
            ctx.contracts,
            spec.cluster.name,
            region,
            provider,
            opts=pulumi.ResourceOptions(parent=self, providers={"aws": aws_provider}, depends_on=[self.priorities, *self.addons.values()]),
            with_services=single_stack,
        )
        # Each team's stack is deployed by its own identity, scoped to its namespace and its own AWS resources.
        # One per room: the contract names it (`teamRooms.<team>.deployRoleArn`, room_contract).
        self.team_deploy = None
        if spec.team_deploy and spec.rooms():
            self.team_deploy = TeamDeployIdentities(
                f"{name}-team-deploy", spec.team_deploy, decl.stack, spec.rooms(), self.cluster.name, self.cluster.arn, self.workloads.boundary_arn, opts=scoped
            )
        self.register_outputs(
            {"clusterName": self.cluster.name, "vpcId": self.network.vpc_id, "karpenterQueue": self.karpenter.queue_name, "addons": list(self.addons)}
        )

    def room_contract(self) -> dict[str, object]:
        """The contract's `teamRooms`: each room, with the ARN of the deploy role made for its team here."""
        roles = {team: role.arn for team, role in self.team_deploy.roles.items()} if self.team_deploy else {}
        return self.workloads.room_contract(roles)
