"""Service workloads, split between the two programs (docs/platform.md#two-programs):

- the platform stack builds `Workloads`: each team's room (namespace, budget, default-deny,
  SecretStore), the permissions boundary of every workload role, and the mesh's egress routes;
- each team stack (`teams/__main__.py`) builds its services with `build_services`: one
  Microservice per service of the team, wired from the platform's contract.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws import iam
from components.contracts import (
    CertManagerContract,
    ChaosMeshContract,
    Contracts,
    ExternalSecretsContract,
    FlaggerContract,
    IstioContract,
    MonitoringContract,
    Pods,
    SealedSecretsContract,
    TracingContract,
    VaultContract,
)
from components.spec import Declarations, Service
from components.spec.service import AWS_ENDPOINTS
from components.spec.iam_actions import boundary_statements
from components.spec.placement import critical_placement

from .chaos import ChaosSchedules
from .egress import EgressRoutes
from .microservice import Mesh, Microservice
from .team import SecretStore, TeamNamespace
from .traffic import Graph, Peer, Platform


def peer(pods: Pods, ports: tuple[int, ...] = ()) -> Peer:
    return Peer(pods.namespace, dict(pods.labels), pods.service_account, ports)


def offered(decl: Declarations, contracts: Contracts, cluster_name: str, region: str) -> Mesh:
    """What the enabled addons give services, read from the contracts they publish."""
    istio = contracts.get(IstioContract)
    monitoring = contracts.get(MonitoringContract)
    flagger = contracts.get(FlaggerContract)
    tracing = contracts.get(TracingContract)
    secrets = contracts.get(ExternalSecretsContract)
    return Mesh(
        environment=decl.environment,
        cluster_name=cluster_name,
        region=region,
        peers=Platform(
            ingress=peer(istio.ingress) if istio else None,
            prometheus=peer(monitoring.prometheus) if monitoring else None,
            loadtester=peer(flagger.loadtester) if flagger else None,
            collector=peer(tracing.collector, tracing.otlp_ports) if tracing else None,
        ),
        gateway=istio.gateway if istio else None,
        loadtester_url=flagger.loadtester_url if flagger else None,
        secret_store=secrets.secret_store if secrets else None,
        monitoring=monitoring,
        mesh=istio is not None,
        vpa=decl.spec.addon_enabled("vpa"),
        otlp_endpoint=tracing.otlp_endpoint if tracing else None,
        sealed_secrets=contracts.get(SealedSecretsContract),
        vpc_cidr=decl.spec.network.cidr,
        egress_gateway=(istio.egress.namespace, dict(istio.egress.labels), istio.egress_port) if istio else None,
        critical=critical_placement(decl.spec.karpenter.node_pools),
        alerting=decl.spec.alerting,
    )


def workload_mesh(decl: Declarations, services: Sequence[Service], contracts: Contracts, cluster_name: str, region: str, boundary_arn, parent) -> Mesh:
    """The Mesh given to `services`: the addons' offer plus the account and the AWS prefix lists they need."""
    invoke = pulumi.InvokeOptions(parent=parent)
    account = aws.get_caller_identity_output(opts=invoke).account_id
    # The addresses of the AWS APIs reached through gateway endpoints (S3, DynamoDB): their prefix lists.
    gateway_apis = sorted({api for s in services for api in s.aws_apis if AWS_ENDPOINTS[api] == "Gateway"})
    prefix_lists = {api: aws.ec2.get_prefix_list_output(name=f"com.amazonaws.{region}.{api}", opts=invoke).cidr_blocks for api in gateway_apis}
    return dataclasses.replace(offered(decl, contracts, cluster_name, region), account_id=account, prefix_lists=prefix_lists, boundary_arn=boundary_arn)


def build_services(
    decl: Declarations,
    services: Sequence[Service],
    mesh: Mesh,
    contracts: Contracts,
    provider: k8s.Provider,
    namespaces: Mapping[str, Optional[pulumi.Resource]],
    opts: pulumi.ResourceOptions,
) -> dict[str, Microservice]:
    """One Microservice per service in `services`, with `opts` (parent, providers).

    The call graph is the whole environment's: a service's policies admit callers of other teams
    (which consented to, components/spec/consent.py) and its egress reaches callees of other teams."""
    graph = Graph.of(decl.services)
    built = {
        s.name: Microservice(decl.spec.pulled(s), graph, mesh, provider, namespaces.get(s.team), opts=pulumi.ResourceOptions.merge(opts, None))
        for s in services
    }
    chaos_mesh = contracts.get(ChaosMeshContract)
    # Scheduled experiments (non-prod, chaos-mesh on): only annotated namespaces may be injected.
    chaos = chaos_mesh.experiments if chaos_mesh else None
    if chaos_mesh and chaos:
        for s in services:
            if s.tier == "critical":
                ChaosSchedules(
                    s,
                    graph.services,
                    chaos,
                    chaos_mesh.api_version,
                    decl.environment,
                    provider,
                    namespaces.get(s.team),
                    opts=pulumi.ResourceOptions(parent=built[s.name]),
                    prometheus_url=mesh.monitoring.prometheus_url if mesh.monitoring else None,
                )
    return built


class Workloads(pulumi.ComponentResource):
    """The platform's side of the services: every team's room, the workload permissions boundary,
    and the egress routes. With `with_services` (the single-stack layout, components/platform.py)
    the services too, exactly as before the split."""

    services: dict[str, Microservice]
    rooms: dict[str, TeamNamespace]
    boundary_arn: Optional[pulumi.Output[str]]

    def __init__(
        self,
        name: str,
        decl: Declarations,
        contracts: Contracts,
        cluster_name: str,
        region: str,
        provider: k8s.Provider,
        opts: Optional[pulumi.ResourceOptions] = None,
        with_services: bool = False,
    ):
        super().__init__("platform:workloads:Workloads", name, None, opts)
        boundary = None
        if any(s.has_aws_role for s in decl.services):
            # The ceiling of every workload role: even a permission the checks missed cannot exceed it.
            boundary = aws.iam.Policy(
                f"{name}-boundary",
                description=f"Permissions boundary of {cluster_name} workload roles (platform-owned)",
                policy=iam.document(boundary_statements(decl.spec.policy.workload_boundary.services)),
                opts=pulumi.ResourceOptions(parent=self),
            )
        # The team deploy roles may create workload roles only under it (components/aws/team_deploy.py).
        self.boundary_arn = boundary.arn if boundary else None
        istio = contracts.get(IstioContract)
        chaos_mesh = contracts.get(ChaosMeshContract)
        secrets, vault = contracts.get(ExternalSecretsContract), contracts.get(VaultContract)
        # Vault's listener certificate is from cert-manager's internal issuer (vault requires cert-manager).
        certs = contracts.get(CertManagerContract)
        self.secret_store = secrets.secret_store if secrets and vault and certs else None

        def store(team: str) -> Optional[SecretStore]:
            if secrets is None or vault is None or certs is None:
                return None
            return SecretStore(
                secrets.secret_store, secrets.team_service_account, dict(secrets.team_store_spec(team, vault)), secrets.team_ca_secret, certs.internal_issuer
            )

        chaos = chaos_mesh.experiments if chaos_mesh else None
        self.rooms = {
            team: TeamNamespace(
                team,
                provider,
                istio is not None,
                istio.system_namespace if istio else None,
                opts=pulumi.ResourceOptions(parent=self),
                budget=decl.spec.budget(team),
                defaults=decl.spec.service_defaults.resources,
                annotations=dict(chaos_mesh.inject_annotation) if chaos_mesh and chaos else None,
                secret_store=store(team),
                pod_security_version="v{}.{}".format(*decl.spec.pod_security_version),
            )
            for team in decl.spec.rooms()
        }
        self.services = {}
        if with_services:
            mesh = workload_mesh(decl, decl.services, contracts, cluster_name, region, self.boundary_arn, self)
            namespaces = {team: room.namespace for team, room in self.rooms.items()}
            self.services = build_services(decl, decl.services, mesh, contracts, provider, namespaces, pulumi.ResourceOptions(parent=self))
        if istio and any(s.external_hosts for s in decl.services):
            EgressRoutes(list(decl.services), provider, istio, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"teams": sorted(self.rooms), "services": sorted(self.services)})

    def room_contract(self, deploy_roles: Mapping[str, pulumi.Input[str]]) -> dict[str, object]:
        """The contract's `teamRooms` (components/stack_contract.py): per team, what its stack may use,
        and `deployRoleArn`, the ARN of the role its stack is deployed with (`deploy_roles`, by team)."""
        return {
            team: {"namespace": team, "secretStore": self.secret_store, "boundaryArn": self.boundary_arn, "deployRoleArn": deploy_roles.get(team)}
            for team in self.rooms
        }
