"""Service workloads: one team namespace per team, one Microservice per declared service."""

from __future__ import annotations

import dataclasses
from typing import Optional

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
from components.spec import Declarations
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


class Workloads(pulumi.ComponentResource):
    services: dict[str, Microservice]

    def __init__(
        self,
        name: str,
        decl: Declarations,
        contracts: Contracts,
        cluster_name: str,
        region: str,
        provider: k8s.Provider,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("platform:workloads:Workloads", name, None, opts)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self)).account_id
        # The addresses of the AWS APIs reached through gateway endpoints (S3, DynamoDB): their prefix lists.
        gateway_apis = sorted({api for s in decl.services for api in s.aws_apis if AWS_ENDPOINTS[api] == "Gateway"})
        prefix_lists = {
            api: aws.ec2.get_prefix_list_output(name=f"com.amazonaws.{region}.{api}", opts=pulumi.InvokeOptions(parent=self)).cidr_blocks
            for api in gateway_apis
        }
        boundary = None
        if any(s.aws_permissions or s.scaling.sqs for s in decl.services):
            # The ceiling of every workload role: even a permission the checks missed cannot exceed it.
            boundary = aws.iam.Policy(
                f"{name}-boundary",
                description=f"Permissions boundary of {cluster_name} workload roles (platform-owned)",
                policy=iam.document(boundary_statements(decl.spec.policy.workload_boundary.services)),
                opts=pulumi.ResourceOptions(parent=self),
            )
        # The team deploy roles may create workload roles only under it (components/aws/team_deploy.py).
        self.boundary_arn = boundary.arn if boundary else None
        mesh = dataclasses.replace(
            offered(decl, contracts, cluster_name, region), account_id=account, prefix_lists=prefix_lists, boundary_arn=boundary.arn if boundary else None
        )
        istio = contracts.get(IstioContract)
        chaos_mesh = contracts.get(ChaosMeshContract)
        secrets, vault = contracts.get(ExternalSecretsContract), contracts.get(VaultContract)
        # Vault's listener certificate is from cert-manager's internal issuer (vault requires cert-manager).
        certs = contracts.get(CertManagerContract)

        def store(team: str) -> Optional[SecretStore]:
            if secrets is None or vault is None or certs is None:
                return None
            return SecretStore(
                secrets.secret_store, secrets.team_service_account, dict(secrets.team_store_spec(team, vault)), secrets.team_ca_secret, certs.internal_issuer
            )

        # Scheduled experiments (non-prod, chaos-mesh on): only annotated namespaces may be injected.
        chaos = chaos_mesh.experiments if chaos_mesh else None
        teams = {
            team: TeamNamespace(
                team,
                provider,
                mesh.mesh,
                istio.system_namespace if istio else None,
                opts=pulumi.ResourceOptions(parent=self),
                budget=decl.spec.budget(team),
                defaults=decl.spec.service_defaults.resources,
                annotations=dict(chaos_mesh.inject_annotation) if chaos_mesh and chaos else None,
                secret_store=store(team),
            )
            for team in sorted({s.team for s in decl.services})
        }
        graph = Graph.of(decl.services)
        self.services = {
            s.name: Microservice(decl.spec.pulled(s), graph, mesh, provider, teams[s.team].namespace, opts=pulumi.ResourceOptions(parent=self))
            for s in decl.services
        }
        if istio and any(s.external_hosts for s in decl.services):
            EgressRoutes(list(decl.services), provider, istio, opts=pulumi.ResourceOptions(parent=self))
        if chaos_mesh and chaos:
            for s in decl.services:
                if s.tier == "critical":
                    ChaosSchedules(
                        s,
                        graph.services,
                        chaos,
                        chaos_mesh.api_version,
                        decl.environment,
                        provider,
                        teams[s.team].namespace,
                        opts=pulumi.ResourceOptions(parent=self.services[s.name]),
                    )
        self.register_outputs({"services": sorted(self.services)})
