"""Istio: CRDs (base), control plane (istiod), the public ingress gateway, STRICT mTLS mesh-wide.

helm.v3.Release for all three charts: each install waits until the release is ready, which gives the
order the charts need (CRDs and the validating webhook's service before istiod, istiod before the
gateway, whose pods are injected by istiod's webhook), and `base` relies on Helm to keep its CRDs.

Public traffic: an internet-facing NLB in front of the gateway pods. The Gateway `public` serves
HTTPS on 443 for every exposed service's host, with a certificate cert-manager issues into the
gateway's namespace. Plain HTTP on 80 lives on a second Gateway, `public-http`, where a catch-all
VirtualService redirects to HTTPS. It is not `tls.httpsRedirect` on the Gateway: that makes Envoy
redirect every request for the host, the ACME HTTP-01 challenge included, while a redirect *route*
is sorted after the solver's exact-path route (Istio orders catch-all routes last). Keeping port 80
off `public` also keeps the services' VirtualServices, which bind `public`, from serving plain HTTP.

The NLB is made by the EKS cloud provider's service controller (`aws-load-balancer-type: nlb`,
internet-facing unless marked internal): this platform runs no AWS Load Balancer Controller, which
would ignore that annotation value and need `external` instead.
"""

from __future__ import annotations

import functools
from typing import Any

import pulumi_kubernetes as k8s
from pydantic import model_validator

from components.contracts import CertManagerContract, IstioContract, Pods, TracingContract
from components.monitoring.scrape import Metrics, Monitor
from components.spec import Declarations
from components.spec.base import Spec, field
from components.versions import ISTIO_BASE, ISTIO_GATEWAY, ISTIOD

from . import flows as net
from .base import Addon

SYSTEM_NAMESPACE = "istio-system"
INGRESS_NAMESPACE = "istio-ingress"
INJECTION_LABEL = {"istio-injection": "enabled"}
INGRESS_RELEASE = "istio-ingressgateway"
# The gateway chart names the service account, Deployment and Service after the release, and labels
# the pods app=<release> and istio=<release without its "istio-" prefix>.
INGRESS_SERVICE_ACCOUNT = INGRESS_RELEASE
INGRESS_SERVICE = INGRESS_RELEASE
INGRESS_SELECTOR = INGRESS_RELEASE.removeprefix("istio-")
INGRESS_POD_LABELS = {"app": INGRESS_RELEASE, "istio": INGRESS_SELECTOR}
# The gateway's mTLS identity, for AuthorizationPolicy `principals`.
INGRESS_PRINCIPAL = f"cluster.local/ns/{INGRESS_NAMESPACE}/sa/{INGRESS_SERVICE_ACCOUNT}"
# What services' VirtualServices put in `gateways` (HTTPS only).
GATEWAY_NAME = "public"
GATEWAY = f"{INGRESS_NAMESPACE}/{GATEWAY_NAME}"
HTTP_GATEWAY = f"{INGRESS_NAMESPACE}/public-http"
TLS_SECRET = "public-tls"
RUNTIME_DEFAULT = {"type": "RuntimeDefault"}
ISTIOD_POD_LABELS = {"app": "istiod"}
# The gateway chart's own pod default (the sysctl that lets Envoy bind 80 and 443 as UID 1337) plus
# the seccomp profile the restricted level requires.
GATEWAY_POD_CONTEXT = {"sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}], "seccompProfile": RUNTIME_DEFAULT}
# istiod: xDS and certificates for proxies (TLS), the injection and validation webhooks, its metrics.
XDS_PORT = 15012
WEBHOOK_PORT = 15017
MONITORING_PORT = 15014
# Envoy's stats, scraped by the prometheus addon's PodMonitor on every proxy.
ENVOY_STATS_PORT = 15090
# The gateway chart's container ports behind the Service's 80 and 443 (bound unprivileged by sysctl).
GATEWAY_PORTS = (80, 443)
# The egress gateway: every call from the mesh to a declared external host leaves through it
# (components/workloads/egress.py), mTLS from the sidecar, so it knows the caller's identity.
EGRESS_NAMESPACE = "istio-egress"
EGRESS_RELEASE = "istio-egressgateway"
EGRESS_SERVICE = EGRESS_RELEASE
EGRESS_HOST = f"{EGRESS_SERVICE}.{EGRESS_NAMESPACE}.svc.cluster.local"
EGRESS_POD_LABELS = {"app": EGRESS_RELEASE, "istio": EGRESS_RELEASE.removeprefix("istio-")}
EGRESS_PORT = 443
# Handled by the EKS cloud provider: an NLB spreading each connection over all zones' targets.
NLB_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
    "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": "true",
}


class IstioSettings(Spec):
    istiod_replicas: int = field(
        "Minimum istiod replicas (the autoscaler adds more); 2 or more keeps config flowing through a node drain.", default=1, ge=1, le=5
    )
    gateway_replicas: int = field("Minimum ingress gateway replicas.", default=1, ge=1, le=20)
    gateway_max_replicas: int = field("Maximum ingress gateway replicas under load.", default=5, ge=1, le=50)

    @model_validator(mode="after")
    def _range(self) -> "IstioSettings":
        if self.gateway_max_replicas < self.gateway_replicas:
            raise ValueError(f"gatewayMaxReplicas {self.gateway_max_replicas} is below gatewayReplicas {self.gateway_replicas}")
        return self


class Istio(Addon):
    name = "istio"
    namespace = SYSTEM_NAMESPACE
    extra_namespaces = (INGRESS_NAMESPACE, EGRESS_NAMESPACE)
    # istio-cni: injected pods need no NET_ADMIN/NET_RAW, so every namespace here and the teams'
    # can enforce the restricted Pod Security level.
    requires = ("cert-manager", "istio-cni")
    # istiod's own metrics, and every Envoy's (sidecars and gateways): Flagger's analysis and the SLOs read istio_requests_total.
    metrics = Metrics(
        monitors=(
            Monitor(
                "ServiceMonitor",
                "istiod",
                {
                    "namespaceSelector": {"matchNames": [SYSTEM_NAMESPACE]},
                    "selector": {"matchLabels": {"app": "istiod"}},
                    "endpoints": [{"port": "http-monitoring", "interval": "15s"}],
                },
            ),
            Monitor(
                "PodMonitor",
                "envoy-stats",
                {
                    "namespaceSelector": {"any": True},
                    "selector": {"matchExpressions": [{"key": "istio-prometheus-ignore", "operator": "DoesNotExist"}]},
                    "podMetricsEndpoints": [{"path": "/stats/prometheus", "port": "http-envoy-prom", "interval": "15s"}],
                },
            ),
        )
    )
    Settings = IstioSettings
    multi_chart = True
    pod_security = "restricted"

    @classmethod
    def contract(cls, settings: Any, decl: Declarations) -> IstioContract:
        return IstioContract(
            system_namespace=SYSTEM_NAMESPACE,
            injection_label=INJECTION_LABEL,
            gateway=GATEWAY,
            ingress=Pods(INGRESS_NAMESPACE, INGRESS_POD_LABELS, INGRESS_SERVICE_ACCOUNT),
            istiod=Pods(SYSTEM_NAMESPACE, ISTIOD_POD_LABELS, "istiod"),
            xds_port=XDS_PORT,
            envoy_stats_port=ENVOY_STATS_PORT,
            egress=Pods(EGRESS_NAMESPACE, EGRESS_POD_LABELS, EGRESS_RELEASE),
            egress_host=EGRESS_HOST,
            egress_port=EGRESS_PORT,
        )

    def install(self) -> None:
        s: IstioSettings = self.settings
        certs = self.ctx.contracts.require(CertManagerContract)
        ingress_ns = self.create_namespace(INGRESS_NAMESPACE, INJECTION_LABEL)
        base = self.helm(ISTIO_BASE, {}, release="istio-base")
        istiod = self.helm(
            ISTIOD, self.istiod_values(s, certs.solver_ingress_class, self.tracing_mesh_config(), self.ctx.prod), release="istiod", depends_on=(base,)
        )
        self.helm(ISTIO_GATEWAY, self.gateway_values(s), release=INGRESS_RELEASE, namespace=INGRESS_NAMESPACE, depends_on=(istiod, ingress_ns))
        egress_ns = self.create_namespace(EGRESS_NAMESPACE, INJECTION_LABEL)
        self.helm(ISTIO_GATEWAY, egress_gateway_values(s), release=EGRESS_RELEASE, namespace=EGRESS_NAMESPACE, depends_on=(istiod, egress_ns))
        # Istio serves Ingresses of this class on the gateway pods (meshConfig.ingressSelector):
        # how cert-manager's HTTP-01 solver is reached from the internet.
        k8s.networking.v1.IngressClass(
            f"{self.name}-ingressclass", metadata={"name": certs.solver_ingress_class}, spec={"controller": "istio.io/ingress-controller"}, opts=self.k8s
        )
        # In the root namespace and without a selector: the whole mesh accepts only mTLS.
        self.manifest("security.istio.io/v1", "PeerAuthentication", "default", {"mtls": {"mode": "STRICT"}}, namespace=SYSTEM_NAMESPACE)
        self.hosts = sorted({svc.expose.host for svc in self.ctx.decl.services if svc.expose is not None})
        if self.hosts:
            self.public_gateway(self.hosts, certs.public_issuer)

    def tracing_mesh_config(self) -> dict[str, Any]:
        """The tracing addon's provider, when the stack enables it: tracing installs after Istio (it
        needs Istio's CRDs), and its published contract tells istiod's meshConfig about the collector."""
        tracing = self.ctx.contracts.get(TracingContract)
        return dict(tracing.mesh_config) if tracing else {}

    @staticmethod
    def istiod_values(s: IstioSettings, solver_ingress_class: str, tracing: dict[str, Any], prod: bool = False) -> dict[str, Any]:
        return {
            "autoscaleMin": s.istiod_replicas,
            # The chart's PDB (minAvailable 1) would block every drain of a single replica's node.
            "global": {
                "defaultPodDisruptionBudget": {"enabled": s.istiod_replicas > 1},
                # Injected containers (istio-validation, istio-proxy) carry the restricted profile's seccomp.
                "proxy": {"seccompProfile": RUNTIME_DEFAULT},
            },
            # The istio-cni addon redirects traffic on the node: the sidecar template then injects the
            # unprivileged istio-validation init container instead of istio-init (NET_ADMIN, NET_RAW).
            "cni": {"enabled": True},
            "seccompProfile": RUNTIME_DEFAULT,
            "gateways": {"seccompProfile": RUNTIME_DEFAULT},
            "meshConfig": {
                # Istio's defaults, spelled out because cert-manager's solver depends on them.
                "ingressClass": solver_ingress_class,
                "ingressControllerMode": "STRICT",
                "ingressSelector": INGRESS_SELECTOR,
                # Apps start once their sidecar is ready, so their first calls are not refused.
                "defaultConfig": {"holdApplicationUntilProxyStarts": True},
                # Prod sidecars send only to what the registry knows (services, declared ServiceEntries).
                "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY" if prod else "ALLOW_ANY"},
                **tracing,
            },
        }

    @staticmethod
    def gateway_values(s: IstioSettings) -> dict[str, Any]:
        return {
            # Local keeps the client's source IP; the NLB only targets nodes running a gateway pod.
            "service": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "annotations": NLB_ANNOTATIONS},
            "securityContext": GATEWAY_POD_CONTEXT,
            "autoscaling": {"minReplicas": s.gateway_replicas, "maxReplicas": s.gateway_max_replicas},
            "podDisruptionBudget": {"minAvailable": 1} if s.gateway_replicas > 1 else {},
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": INGRESS_POD_LABELS},
                }
            ],
        }

    def public_gateway(self, hosts: list[str], issuer: str) -> None:
        selector = {"istio": INGRESS_SELECTOR}
        certificate = self.manifest(
            "cert-manager.io/v1",
            "Certificate",
            GATEWAY_NAME,
            namespace=INGRESS_NAMESPACE,
            spec={"secretName": TLS_SECRET, "dnsNames": hosts, "issuerRef": {"name": issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"}},
        )
        self.manifest(
            "networking.istio.io/v1",
            "Gateway",
            GATEWAY_NAME,
            namespace=INGRESS_NAMESPACE,
            depends_on=(certificate,),
            spec={
                "selector": selector,
                "servers": [
                    {
                        "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                        "hosts": hosts,
                        "tls": {"mode": "SIMPLE", "credentialName": TLS_SECRET, "minProtocolVersion": "TLSV1_2"},
                    }
                ],
            },
        )
        self.manifest(
            "networking.istio.io/v1",
            "Gateway",
            HTTP_GATEWAY.split("/")[1],
            namespace=INGRESS_NAMESPACE,
            spec={"selector": selector, "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": hosts}]},
        )
        self.manifest(
            "networking.istio.io/v1",
            "VirtualService",
            "https-redirect",
            namespace=INGRESS_NAMESPACE,
            spec={"hosts": hosts, "gateways": [HTTP_GATEWAY], "http": [{"name": "https-redirect", "redirect": {"scheme": "https", "redirectCode": 301}}]},
        )

    def flows(self) -> list[net.Flow]:
        gateway, teams = INGRESS_POD_LABELS, [net.Peer(namespace_key=net.TEAM_LABEL)]
        certs = self.ctx.contracts.require(CertManagerContract)
        solver, solver_port = dict(certs.solver_pod_labels), certs.solver_port
        istiod = functools.partial(net.flow, selector=ISTIOD_POD_LABELS)
        ingress = functools.partial(net.flow, namespace=INGRESS_NAMESPACE)
        egress = functools.partial(net.flow, selector=EGRESS_POD_LABELS, namespace=EGRESS_NAMESPACE)
        found = [
            net.api_server(self.vpc_cidr),
            istiod("xds", "ingress", [net.Peer()], "every proxy fetches config and certificates", ports=(XDS_PORT,)),
            net.webhook("webhook", self.vpc_cidr, (WEBHOOK_PORT,), "sidecar injection and config validation", selector=ISTIOD_POD_LABELS),
            *self.scraped((MONITORING_PORT,), selector=ISTIOD_POD_LABELS),
            # The public gateway: the internet in (the NLB keeps client addresses), services and ACME solvers out.
            *self.sidecar(INGRESS_NAMESPACE),
            ingress("public", "ingress", [net.Peer(cidr=net.WORLD)], "public HTTPS and the HTTP redirect", ports=GATEWAY_PORTS, selector=gateway),
            ingress("services", "egress", teams, "routes to the exposed services (their policies pick the port)", selector=gateway),
            ingress("acme-solver-out", "egress", [net.Peer.of(INGRESS_NAMESPACE, solver)], "ACME HTTP-01", ports=(solver_port,), selector=gateway),
            ingress("acme-solver-in", "ingress", [net.Peer.of(INGRESS_NAMESPACE, gateway)], "ACME HTTP-01", ports=(solver_port,), selector=solver),
            # The egress gateway: declaring services' sidecars in (their policies say who), declared hosts out.
            *self.sidecar(EGRESS_NAMESPACE),
            egress("mesh-egress", "ingress", teams, "sidecars of services that declare external hosts", ports=(EGRESS_PORT,)),
        ]
        ports = tuple(sorted({port for svc in self.ctx.decl.services for _, port in svc.external_hosts}))
        if ports:
            world = [net.Peer(cidr=net.WORLD, exclude=(*net.PRIVATE, net.LINK_LOCAL))]
            found.append(egress("external-hosts", "egress", world, "the declared external hosts (AuthorizationPolicies say who)", ports=ports))
        return found

    def outputs(self) -> dict[str, Any]:
        return {"namespace": SYSTEM_NAMESPACE, "serviceAccount": "istiod", "ingressNamespace": INGRESS_NAMESPACE, "gateway": GATEWAY, "hosts": self.hosts}


def egress_gateway_values(s: IstioSettings) -> dict[str, Any]:
    """The egress gateway: in-cluster only (ClusterIP), two replicas where the ingress has more than one."""
    replicas = 2 if s.gateway_replicas > 1 else 1
    return {
        "service": {"type": "ClusterIP"},
        "autoscaling": {"minReplicas": replicas, "maxReplicas": max(replicas, 3)},
        "podDisruptionBudget": {"minAvailable": 1} if replicas > 1 else {},
        "securityContext": GATEWAY_POD_CONTEXT,
    }
