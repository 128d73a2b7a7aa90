"""What one part of the platform needs from an addon, as a small typed contract the addon publishes.

An addon's internals (release names, chart values, its own objects) stay in its module. What others
rely on (a namespace, a service address, a Grafana datasource id, a CRD API version, a label) is a
frozen dataclass defined here and filled in by the addon's `contract()`. The addon registry
publishes the contract of every *enabled* addon before it installs any of them, so a consumer can
read a contract whatever the install order (Istio reads the tracing provider although tracing
installs after it). Consumers, other addons and the workloads alike, read contracts from
`Contracts` and never import an addon module: an absent contract means the addon is off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, TypeVar

from components.vault_access import VaultAccess


@dataclass(frozen=True)
class Pods:
    """A set of pods others talk to or hear from: namespace, pod labels and mTLS service account."""

    namespace: str
    labels: Mapping[str, str]
    service_account: Optional[str] = None


@dataclass(frozen=True)
class CertManagerContract:
    # The ClusterIssuer that signs the environment's public certificates.
    public_issuer: str
    # The IngressClass cert-manager's HTTP-01 solver uses; the mesh's gateway must serve it.
    solver_ingress_class: str
    # The ClusterIssuer of the platform's internal CA (in-cluster TLS, e.g. Vault's listener).
    internal_issuer: str
    # The labels and port of the HTTP-01 solver pods cert-manager starts in the gateway's namespace.
    solver_pod_labels: Mapping[str, str]
    solver_port: int


@dataclass(frozen=True)
class IstioContract:
    # The mesh's root namespace: mesh-wide PeerAuthentication and Telemetry live here.
    system_namespace: str
    # The label that turns sidecar injection on for a namespace.
    injection_label: Mapping[str, str]
    ingress: Pods
    # What services' VirtualServices put in `gateways` (namespace/name).
    gateway: str
    # istiod, where every proxy fetches config and certificates (xDS) on `xds_port`.
    istiod: Pods
    xds_port: int
    # Envoy's stats port on every proxy (scraped by Prometheus).
    envoy_stats_port: int
    # The egress gateway every declared external host is reached through: its pods, host and port.
    egress: Pods
    egress_host: str
    egress_port: int


@dataclass(frozen=True)
class MonitoringContract:
    """Prometheus and Grafana (kube-prometheus-stack)."""

    prometheus: Pods
    prometheus_url: str
    prometheus_port: int
    grafana: Pods
    # Grafana's sidecars load datasources from ConfigMaps with this label in `grafana_namespace`, and
    # dashboards from ConfigMaps with `dashboard_label` in any namespace.
    grafana_namespace: str
    datasource_label: Mapping[str, str]
    dashboard_label: Mapping[str, str]
    prometheus_datasource_uid: str


@dataclass(frozen=True)
class FlaggerContract:
    loadtester: Pods
    loadtester_url: str


@dataclass(frozen=True)
class TracingContract:
    collector: Pods
    # The OTLP ports services and sidecars send spans to.
    otlp_ports: tuple[int, ...]
    # What services' OpenTelemetry SDKs are given (OTLP/HTTP).
    otlp_endpoint: str
    # istiod's meshConfig for the mesh to report spans to the collector.
    mesh_config: Mapping[str, Any]
    datasource_uid: str


@dataclass(frozen=True)
class LoggingContract:
    datasource_uid: str
    # The Loki index label that carries a log line's service.name.
    service_label: str


@dataclass(frozen=True)
class VaultContract:
    address: str
    # The raft leader only (the chart's active service): where snapshots are taken.
    active_address: str
    # The server pods and their TLS API port (NetworkPolicies of Vault's clients).
    server: Pods
    port: int
    # The Secret (in the server's namespace) holding the listener's key pair and, under `ca_key`,
    # the CA it chains to: what Vault's clients trust.
    tls_secret: str
    ca_key: str
    # Vault's provider, auth method and mounts, connected by the vault addon when it installs (before
    # its consumers): every Vault role is declared through `access.role` (components/vault_access.py).
    access: VaultAccess
    # The KV v2 mount of the team secrets and the path of the Kubernetes auth method.
    kv_mount: str
    auth_mount: str


@dataclass(frozen=True)
class ExternalSecretsContract:
    # The SecretStore in every team namespace (what ExternalSecrets reference), and the service
    # account it logs in to Vault as, in that namespace.
    secret_store: str
    team_service_account: str
    # The Secret in every team namespace that holds Vault's CA (key `ca.crt`), which the store trusts;
    # a cert-manager Certificate from the internal issuer writes it there.
    team_ca_secret: str
    # The store's spec for one team namespace, given Vault's contract: the team's own Vault role,
    # whose policy reads only the team's prefix, over TLS to Vault's address.
    team_store_spec: Callable[[str, VaultContract], Mapping[str, Any]]


@dataclass(frozen=True)
class SealedSecretsContract:
    api_version: str
    kind: str


@dataclass(frozen=True)
class ChaosExperiments:
    every_hours: int
    latency_ms: int
    latency_minutes: int


@dataclass(frozen=True)
class ChaosMeshContract:
    api_version: str
    # Chaos Mesh only injects faults into namespaces annotated like this.
    inject_annotation: Mapping[str, str]
    # Scheduled experiments: None where the stack runs none (prod).
    experiments: Optional[ChaosExperiments] = None


C = TypeVar("C")


@dataclass
class Contracts:
    """The contracts of the enabled addons, one per contract type."""

    published: dict[type, object] = field(default_factory=dict)

    def publish(self, contract: object) -> None:
        kind = type(contract)
        if kind in self.published:
            raise TypeError(f"two addons publish a {kind.__name__}")
        self.published[kind] = contract

    def get(self, kind: type[C]) -> Optional[C]:
        """The contract of this type, or None when no enabled addon publishes it."""
        found = self.published.get(kind)
        return found if isinstance(found, kind) else None

    def require(self, kind: type[C]) -> C:
        """The contract of an addon the caller requires (the registry has checked it is enabled)."""
        found = self.get(kind)
        if found is None:
            raise LookupError(f"no enabled addon publishes a {kind.__name__}")
        return found
