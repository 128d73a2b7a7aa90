"""Service workloads: one team namespace per team, one Microservice per declared service."""

from __future__ import annotations

import dataclasses
from typing import Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.spec import Declarations

from .microservice import Mesh, Microservice
from .team import TeamNamespace
from .traffic import Graph, Peer, Platform


def offered(decl: Declarations, cluster_name: str, region: str) -> Mesh:
    """What the enabled addons give services; the addon modules own the names."""
    from components.addons import external_secrets, flagger, istio, prometheus, tracing

    on = decl.spec.addon_enabled
    return Mesh(
        environment=decl.environment,
        cluster_name=cluster_name,
        region=region,
        peers=Platform(
            ingress=Peer(istio.INGRESS_NAMESPACE, istio.INGRESS_POD_LABELS, istio.INGRESS_SERVICE_ACCOUNT) if on("istio") else None,
            prometheus=Peer(prometheus.NAMESPACE, prometheus.PROMETHEUS_POD_LABELS, prometheus.PROMETHEUS_SERVICE_ACCOUNT) if on("prometheus") else None,
            loadtester=Peer(flagger.LOADTESTER_NAMESPACE, flagger.LOADTESTER_POD_LABELS, flagger.LOADTESTER_SERVICE_ACCOUNT) if on("flagger") else None,
            collector=Peer(tracing.NAMESPACE, tracing.COLLECTOR_POD_LABELS, ports=tracing.OTLP_PORTS) if on("tracing") else None,
        ),
        gateway=istio.GATEWAY if on("istio") else None,
        loadtester_url=flagger.LOADTESTER_URL if on("flagger") else None,
        secret_store=external_secrets.CLUSTER_SECRET_STORE if on("external-secrets") else None,
        monitoring=on("prometheus"),
        mesh=on("istio"),
        vpa=on("vpa"),
        otlp_endpoint=tracing.OTLP_ENDPOINT if on("tracing") else None,
        alerting=decl.spec.alerting,
    )


class Workloads(pulumi.ComponentResource):
    services: dict[str, Microservice]

    def __init__(self, name: str, decl: Declarations, cluster_name: str, region: str, provider: k8s.Provider,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("platform:workloads:Workloads", name, None, opts)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self)).account_id
        mesh = dataclasses.replace(offered(decl, cluster_name, region), account_id=account)
        from components.addons import chaos_mesh, istio

        # Scheduled experiments (non-prod, chaos-mesh on): only annotated namespaces may be injected.
        chaos = chaos_mesh.experiments(decl)
        teams = {
            team: TeamNamespace(team, provider, mesh.mesh, istio.SYSTEM_NAMESPACE if mesh.mesh else None, opts=pulumi.ResourceOptions(parent=self),
                                budget=decl.spec.budget(team), defaults=decl.spec.service_defaults.resources,
                                annotations=chaos_mesh.INJECT_ANNOTATION if chaos else None)
            for team in sorted({s.team for s in decl.services})
        }
        graph = Graph.of(decl.services)
        self.services = {
            s.name: Microservice(s, graph, mesh, provider, teams[s.team].namespace, opts=pulumi.ResourceOptions(parent=self))
            for s in decl.services
        }
        if chaos:
            from .chaos import ChaosSchedules

            for s in decl.services:
                if s.tier == "critical":
                    ChaosSchedules(s, graph.services, chaos, decl.environment, provider, teams[s.team].namespace, opts=pulumi.ResourceOptions(parent=self.services[s.name]))
        self.register_outputs({"services": sorted(self.services)})
