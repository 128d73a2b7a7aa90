"""The network flows an addon's pods need, and the NetworkPolicies that allow exactly those.

Every namespace an addon creates starts from default-deny, ingress and egress (the addon base
renders it). The addon lists in `flows()` what its pods must reach and be reached by: the API
server, admission webhooks the control plane calls, Prometheus scraping, the internet for cloud
APIs, and its peers. The base renders one NetworkPolicy per flow, and DNS for every namespace.

A flow between two platform namespaces needs an allow on both ends (each is default-deny): a flow
declared `both_ends` is also rendered, mirrored, in the peer's namespace. The addon installed later
declares it (its peer's namespace exists by then).

Addresses: EKS runs the API server outside the pod network. Pods reach it through the
`kubernetes` Service, whose endpoints are the control plane's network interfaces in the VPC, and
the control plane calls webhooks from those interfaces: both are the VPC's CIDR on one port.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Literal, Optional

from components.contracts import IstioContract, MonitoringContract, Pods, TracingContract, VaultContract

NS_LABEL = "kubernetes.io/metadata.name"
WORLD = "0.0.0.0/0"
# Link-local: the instance metadata service (pods use Pod Identity, never the node's credentials)
# and the Pod Identity agent, which only `pod_identity()` opens.
LINK_LOCAL = "169.254.0.0/16"
# Beyond the VPC means beyond every private range too: peered networks are reached by declaration.
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
# The EKS Pod Identity agent on every node (link-local), where the SDKs fetch credentials.
POD_IDENTITY_AGENT = "169.254.170.23/32"
TEAM_LABEL = "platform.io/team"


@dataclass(frozen=True)
class Peer:
    """The other end of a flow: pods (by namespace and labels), or addresses outside the cluster."""

    namespace: Optional[str] = None
    pods: Optional[tuple[tuple[str, str], ...]] = None
    # Namespaces carrying this label key (team namespaces); with no namespace at all, every namespace.
    namespace_key: Optional[str] = None
    cidr: Optional[str] = None
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(cls, namespace: Optional[str] = None, pods: Optional[dict[str, str]] = None, **kwargs: Any) -> "Peer":
        return cls(namespace=namespace, pods=tuple(sorted(pods.items())) if pods else None, **kwargs)

    @classmethod
    def to(cls, pods: Pods) -> "Peer":
        """Pods another addon publishes in its contract (components/contracts.py)."""
        return cls.of(pods.namespace, dict(pods.labels))

    def render(self) -> dict[str, Any]:
        if self.cidr:
            return {"ipBlock": {"cidr": self.cidr, **({"except": list(self.exclude)} if self.exclude else {})}}
        if self.namespace:
            peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": {NS_LABEL: self.namespace}}}
        elif self.namespace_key:
            peer = {"namespaceSelector": {"matchExpressions": [{"key": self.namespace_key, "operator": "Exists"}]}}
        else:
            peer = {"namespaceSelector": {}}
        if self.pods:
            peer["podSelector"] = {"matchLabels": dict(self.pods)}
        return peer


@dataclass(frozen=True)
class Flow:
    """One allowed kind of connection of an addon's pods, rendered as NetworkPolicy `allow-<name>`."""

    name: str
    direction: Literal["ingress", "egress"]
    peers: tuple[Peer, ...]
    reason: str
    # Empty: every port (a peer whose own policies pick the ports, e.g. the gateway to services).
    ports: tuple[int, ...] = ()
    protocols: tuple[str, ...] = ("TCP",)
    # Which of the addon's pods; None: all of them.
    pods: Optional[tuple[tuple[str, str], ...]] = None
    # Which of the addon's namespaces; None: its own.
    namespace: Optional[str] = None
    # Also allow the mirrored flow in the (single) peer's namespace.
    both_ends: bool = False

    def spec(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"from" if self.direction == "ingress" else "to": [p.render() for p in self.peers]}
        if self.ports:
            rule["ports"] = [{"port": port, "protocol": proto} for port in self.ports for proto in self.protocols]
        return {
            "podSelector": {"matchLabels": dict(self.pods)} if self.pods else {},
            "policyTypes": ["Ingress" if self.direction == "ingress" else "Egress"],
            self.direction: [rule],
        }

    def mirrored(self, own_namespace: str) -> "Flow":
        """The same flow seen from the peer's namespace: its pods, this addon's pods as the peer."""
        (peer,) = self.peers
        if not peer.namespace:
            raise ValueError(f"flow {self.name}: both_ends needs a peer in one namespace")
        return Flow(
            name=self.name,
            direction="egress" if self.direction == "ingress" else "ingress",
            peers=(Peer(namespace=self.namespace or own_namespace, pods=self.pods),),
            reason=self.reason,
            ports=self.ports,
            protocols=self.protocols,
            pods=peer.pods,
            namespace=peer.namespace,
        )


def pods(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def flow(
    name: str,
    direction: Literal["ingress", "egress"],
    peers: list[Peer],
    reason: str,
    ports: tuple[int, ...] = (),
    selector: Optional[dict[str, str]] = None,
    **kwargs: Any,
) -> Flow:
    return Flow(name=name, direction=direction, peers=tuple(peers), reason=reason, ports=ports, pods=pods(selector) if selector else None, **kwargs)


# -- the flows most addons need ---------------------------------------------------------------------


def vault_client(vault: VaultContract, reason: str, selector: dict[str, str]) -> Flow:
    """A client of Vault's API (TLS); mirrored in Vault's namespace, which denies everything else."""
    return flow("vault", "egress", [Peer.to(vault.server)], reason, ports=(vault.port,), selector=selector, both_ends=True)


def prometheus_queries(monitoring: MonitoringContract, reason: str, selector: Optional[dict[str, str]] = None) -> Flow:
    """Queries to Prometheus's API; mirrored in Prometheus's namespace, which denies everything else."""
    return flow("prometheus", "egress", [Peer.to(monitoring.prometheus)], reason, ports=(monitoring.prometheus_port,), selector=selector, both_ends=True)


def dns(namespace: Optional[str] = None) -> Flow:
    return Flow(
        "dns",
        "egress",
        (Peer.of("kube-system", {"k8s-app": "kube-dns"}),),
        "name resolution (CoreDNS)",
        ports=(53,),
        protocols=("UDP", "TCP"),
        namespace=namespace,
    )


def kubernetes_service_ip(vpc_cidr: str) -> str:
    """The `kubernetes` Service's ClusterIP: EKS picks 172.20.0.0/16 for Services when the VPC is in
    10.0.0.0/8, 10.100.0.0/16 otherwise, and the API server's Service takes the first address."""
    in_ten = ipaddress.IPv4Network(vpc_cidr).subnet_of(ipaddress.IPv4Network("10.0.0.0/8"))
    return "172.20.0.1/32" if in_ten else "10.100.0.1/32"


def api_server(vpc_cidr: str, namespace: Optional[str] = None, selector: Optional[dict[str, str]] = None) -> Flow:
    return flow(
        "api-server",
        "egress",
        [Peer(cidr=kubernetes_service_ip(vpc_cidr)), Peer(cidr=vpc_cidr)],
        "the Kubernetes API (its Service address and the control plane's interfaces in the VPC)",
        ports=(443,),
        selector=selector,
        namespace=namespace,
    )


def webhook(name: str, vpc_cidr: str, ports: tuple[int, ...], reason: str, selector: Optional[dict[str, str]] = None, namespace: Optional[str] = None) -> Flow:
    """Calls from the control plane (admission webhooks, aggregated APIs), from its interfaces in the VPC."""
    return flow(name, "ingress", [Peer(cidr=vpc_cidr)], reason, ports=ports, selector=selector, namespace=namespace)


def scraped(prometheus: Pods, ports: tuple[int, ...], selector: Optional[dict[str, str]] = None, namespace: Optional[str] = None, name: str = "scrape") -> Flow:
    """Prometheus (the monitoring contract's pods) scrapes these ports."""
    return flow(name, "ingress", [Peer.to(prometheus)], "Prometheus scrapes the metrics", ports=ports, selector=selector, namespace=namespace)


def cloud(reason: str, ports: tuple[int, ...] = (443,), selector: Optional[dict[str, str]] = None, name: str = "cloud-apis") -> Flow:
    """HTTPS beyond the VPC (AWS APIs, ACME, Git hosts), never the node's metadata service."""
    return flow(name, "egress", [Peer(cidr=WORLD, exclude=(*PRIVATE, LINK_LOCAL))], reason, ports=ports, selector=selector)


def pod_identity(selector: Optional[dict[str, str]] = None, name: str = "pod-identity") -> Flow:
    return flow(name, "egress", [Peer(cidr=POD_IDENTITY_AGENT)], "AWS credentials from the EKS Pod Identity agent", ports=(80,), selector=selector)


def within(namespace: str, ports: tuple[int, ...] = (), reason: str = "the addon's components call each other") -> list[Flow]:
    """Every pod of the namespace may reach every other (one addon's own components)."""
    peer = (Peer(namespace=namespace),)
    return [
        Flow("within-in", "ingress", peer, reason, ports=ports, namespace=namespace),
        Flow("within-out", "egress", peer, reason, ports=ports, namespace=namespace),
    ]


def sidecar(namespace: Optional[str], istio: IstioContract, prometheus: Optional[Pods], tracing: Optional[TracingContract]) -> list[Flow]:
    """A meshed namespace: proxies fetch config and certificates from istiod, Prometheus (when on) scrapes
    Envoy, and with the tracing addon the proxies send spans to its collector."""
    found = [
        Flow("istiod", "egress", (Peer.to(istio.istiod),), "proxies fetch config and certificates (xDS, CA)", ports=(istio.xds_port,), namespace=namespace)
    ]
    if prometheus is not None:
        found.append(scraped(prometheus, (istio.envoy_stats_port,), namespace=namespace, name="scrape-envoy"))
    if tracing is not None:
        found.append(Flow("traces", "egress", (Peer.to(tracing.collector),), "the proxies' spans", ports=tracing.otlp_ports, namespace=namespace))
    return found


def default_deny() -> dict[str, Any]:
    return {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
