"""Who may talk to a service, derived from `dependsOn` alone.

The same graph yields both layers: Kubernetes NetworkPolicies (L3/L4, enforced by the VPC CNI)
and an Istio AuthorizationPolicy (L7 identity: the callers' mTLS service-account principals).
Each team namespace starts from default-deny (components/workloads/team.py); these allow rules
open exactly the declared edges, plus the ingress gateway, Prometheus and Flagger's load tester.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

from components.spec import Service

from .pod import SERVICE_LABEL

NS_LABEL = "kubernetes.io/metadata.name"
# Envoy's Prometheus endpoint (http-envoy-prom), scraped by the PodMonitor of the prometheus addon.
ENVOY_STATS_PORT = 15090


@dataclass(frozen=True)
class Peer:
    """A set of pods outside the service: namespace, pod labels, and mTLS service account."""

    namespace: str
    pod_labels: dict[str, str]
    service_account: Optional[str] = None
    # The ports the service calls it on, for peers the service sends to.
    ports: tuple[int, ...] = ()

    @property
    def principal(self) -> str:
        return f"cluster.local/ns/{self.namespace}/sa/{self.service_account}"

    def network_peer(self) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {NS_LABEL: self.namespace}}, "podSelector": {"matchLabels": self.pod_labels}}


@dataclass(frozen=True)
class Platform:
    """The platform peers a service may hear from, when their addons are on."""

    ingress: Optional[Peer]
    prometheus: Optional[Peer]
    loadtester: Optional[Peer]
    # Where the app's SDK and its sidecar send spans (OTLP).
    collector: Optional[Peer] = None


def service_peer(svc: Service) -> Peer:
    return Peer(namespace=svc.team, pod_labels={SERVICE_LABEL: svc.name}, service_account=svc.name)


@dataclass(frozen=True)
class Graph:
    """The `dependsOn` graph both ways, built once: who a service calls, and who calls it."""

    services: dict[str, Service]
    callers: dict[str, tuple[Service, ...]]

    @classmethod
    def of(cls, services: Iterable[Service]) -> "Graph":
        by_name = {s.name: s for s in services}
        callers: dict[str, list[Service]] = {name: [] for name in by_name}
        for svc in by_name.values():
            for dep in svc.depends_on:
                callers[dep].append(svc)
        return cls(by_name, {name: tuple(found) for name, found in callers.items()})


def network_policy(svc: Service, graph: Graph, platform: Platform, canary: bool) -> dict[str, Any]:
    """One NetworkPolicy per service with every allowed edge in and out."""
    services = graph.services
    serving = [{"port": svc.port, "protocol": "TCP"}]
    ingress = [{"from": [service_peer(c).network_peer() for c in graph.callers[svc.name]], "ports": serving}]
    if svc.expose and platform.ingress:
        ingress.append({"from": [platform.ingress.network_peer()], "ports": serving})
    if canary and platform.loadtester:
        ingress.append({"from": [platform.loadtester.network_peer()], "ports": serving})
    if platform.prometheus:
        # The app's metrics, and the sidecar's: istio_requests_total, which Flagger's analysis and
        # the SLO alerts read, is served by Envoy itself on its stats port.
        scraped = [svc.metrics_port, ENVOY_STATS_PORT]
        ingress.append({"from": [platform.prometheus.network_peer()], "ports": [{"port": p, "protocol": "TCP"} for p in scraped]})
    ingress = [rule for rule in ingress if rule["from"]]
    egress = [{"to": [service_peer(services[dep]).network_peer()], "ports": [{"port": services[dep].port, "protocol": "TCP"}]} for dep in svc.depends_on]
    # Destinations beyond the mesh (declared `egress`, AWS APIs) are a policy of their own: workloads/egress.py.
    return {"podSelector": {"matchLabels": {SERVICE_LABEL: svc.name}}, "policyTypes": ["Ingress", "Egress"], "ingress": ingress, "egress": egress}


def telemetry_egress(svc: Service, collector: Peer) -> dict[str, Any]:
    """The service's pods (app SDK and sidecar) may send spans to the tracing collector. A policy of its
    own: the service's main policy stays exactly its declared call graph, and policies add up."""
    return {
        "podSelector": {"matchLabels": {SERVICE_LABEL: svc.name}},
        "policyTypes": ["Egress"],
        "egress": [{"to": [collector.network_peer()], "ports": [{"port": port, "protocol": "TCP"} for port in collector.ports]}],
    }


def authorization_policy(svc: Service, graph: Graph, platform: Platform, canary: bool) -> dict[str, Any]:
    """ALLOW only the callers' identities on the service port; metrics are open to the mesh
    boundary (plain text, restricted to Prometheus by the NetworkPolicy)."""
    principals = [service_peer(c).principal for c in graph.callers[svc.name]]
    if svc.expose and platform.ingress:
        principals.append(platform.ingress.principal)
    if canary and platform.loadtester:
        principals.append(platform.loadtester.principal)
    rules: list[dict[str, Any]] = [{"to": [{"operation": {"ports": [str(svc.metrics_port)]}}]}]
    if principals:
        rules.insert(0, {"from": [{"source": {"principals": sorted(principals)}}], "to": [{"operation": {"ports": [str(svc.port)]}}]})
    return {"selector": {"matchLabels": {SERVICE_LABEL: svc.name}}, "action": "ALLOW", "rules": rules}


def metrics_port_mtls(svc: Service) -> dict[str, Any]:
    """Mesh-wide mTLS is STRICT; Prometheus has no sidecar, so only the metrics port accepts plain text."""
    return {
        "selector": {"matchLabels": {SERVICE_LABEL: svc.name}},
        "mtls": {"mode": "STRICT"},
        "portLevelMtls": {str(svc.metrics_port): {"mode": "PERMISSIVE"}},
    }


def virtual_service(svc: Service, gateway: str) -> dict[str, Any]:
    """Public routing for an exposed service without a canary (Flagger writes it for canaries)."""
    expose = svc.expose
    if expose is None:
        raise ValueError(f"service {svc.name} is not exposed: it has no public route")
    return {
        "hosts": [expose.host],
        "gateways": [gateway],
        "http": [
            {
                "match": [{"uri": {"prefix": expose.path}}],
                "route": [{"destination": {"host": f"{svc.name}.{svc.team}.svc.cluster.local", "port": {"number": svc.port}}}],
                "retries": {"attempts": 2, "perTryTimeout": "2s", "retryOn": "gateway-error,connect-failure,refused-stream"},
                "timeout": "10s",
            }
        ],
    }
