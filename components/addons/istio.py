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

from typing import Any

import pulumi_kubernetes as k8s
from pydantic import model_validator

from components.contracts import CertManagerContract, IstioContract, Pods, TracingContract
from components.monitoring.scrape import Metrics, Monitor
from components.spec import Declarations
from components.spec.base import Spec, field
from components.versions import ISTIO_BASE, ISTIO_GATEWAY, ISTIOD

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
# Handled by the EKS cloud provider: an NLB spreading each connection over all zones' targets.
NLB_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
    "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": "true",
}


class IstioSettings(Spec):
    istiod_replicas: int = field("Minimum istiod replicas (the autoscaler adds more); 2 or more keeps config flowing through a node drain.", default=1, ge=1, le=5)
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
    extra_namespaces = (INGRESS_NAMESPACE,)
    # istiod's own metrics, and every Envoy's (sidecars and gateways): Flagger's analysis and the SLOs read istio_requests_total.
    metrics = Metrics(monitors=(
        Monitor("ServiceMonitor", "istiod", {
            "namespaceSelector": {"matchNames": [SYSTEM_NAMESPACE]},
            "selector": {"matchLabels": {"app": "istiod"}},
            "endpoints": [{"port": "http-monitoring", "interval": "15s"}],
        }),
        Monitor("PodMonitor", "envoy-stats", {
            "namespaceSelector": {"any": True},
            "selector": {"matchExpressions": [{"key": "istio-prometheus-ignore", "operator": "DoesNotExist"}]},
            "podMetricsEndpoints": [{"path": "/stats/prometheus", "port": "http-envoy-prom", "interval": "15s"}],
        }),
    ))
    requires = ("cert-manager",)
    Settings = IstioSettings
    multi_chart = True

    @classmethod
    def contract(cls, settings: Any, decl: Declarations) -> IstioContract:
        return IstioContract(system_namespace=SYSTEM_NAMESPACE, injection_label=INJECTION_LABEL, gateway=GATEWAY,
                             ingress=Pods(INGRESS_NAMESPACE, INGRESS_POD_LABELS, INGRESS_SERVICE_ACCOUNT))

    def install(self) -> None:
        s: IstioSettings = self.settings
        certs = self.ctx.contracts.require(CertManagerContract)
        ingress_ns = self.create_namespace(INGRESS_NAMESPACE, INJECTION_LABEL)
        base = self.helm(ISTIO_BASE, {}, release="istio-base")
        istiod = self.helm(ISTIOD, self.istiod_values(s, certs.solver_ingress_class, self.tracing_mesh_config()), release="istiod", depends_on=(base,))
        self.helm(ISTIO_GATEWAY, self.gateway_values(s), release=INGRESS_RELEASE, namespace=INGRESS_NAMESPACE, depends_on=(istiod, ingress_ns))
        # Istio serves Ingresses of this class on the gateway pods (meshConfig.ingressSelector):
        # how cert-manager's HTTP-01 solver is reached from the internet.
        k8s.networking.v1.IngressClass(
            f"{self.name}-ingressclass", metadata={"name": certs.solver_ingress_class},
            spec={"controller": "istio.io/ingress-controller"}, opts=self.k8s,
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
    def istiod_values(s: IstioSettings, solver_ingress_class: str, tracing: dict[str, Any]) -> dict[str, Any]:
        return {
            "autoscaleMin": s.istiod_replicas,
            # The chart's PDB (minAvailable 1) would block every drain of a single replica's node.
            "global": {"defaultPodDisruptionBudget": {"enabled": s.istiod_replicas > 1}},
            "meshConfig": {
                # Istio's defaults, spelled out because cert-manager's solver depends on them.
                "ingressClass": solver_ingress_class,
                "ingressControllerMode": "STRICT",
                "ingressSelector": INGRESS_SELECTOR,
                # Apps start once their sidecar is ready, so their first calls are not refused.
                "defaultConfig": {"holdApplicationUntilProxyStarts": True},
                **tracing,
            },
        }

    @staticmethod
    def gateway_values(s: IstioSettings) -> dict[str, Any]:
        return {
            # Local keeps the client's source IP; the NLB only targets nodes running a gateway pod.
            "service": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "annotations": NLB_ANNOTATIONS},
            "autoscaling": {"minReplicas": s.gateway_replicas, "maxReplicas": s.gateway_max_replicas},
            "podDisruptionBudget": {"minAvailable": 1} if s.gateway_replicas > 1 else {},
            "topologySpreadConstraints": [{
                "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": INGRESS_POD_LABELS},
            }],
        }

    def public_gateway(self, hosts: list[str], issuer: str) -> None:
        selector = {"istio": INGRESS_SELECTOR}
        certificate = self.manifest("cert-manager.io/v1", "Certificate", GATEWAY_NAME, namespace=INGRESS_NAMESPACE, spec={
            "secretName": TLS_SECRET,
            "dnsNames": hosts,
            "issuerRef": {"name": issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
        })
        self.manifest("networking.istio.io/v1", "Gateway", GATEWAY_NAME, namespace=INGRESS_NAMESPACE, depends_on=(certificate,), spec={
            "selector": selector,
            "servers": [{
                "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                "hosts": hosts,
                "tls": {"mode": "SIMPLE", "credentialName": TLS_SECRET, "minProtocolVersion": "TLSV1_2"},
            }],
        })
        self.manifest("networking.istio.io/v1", "Gateway", HTTP_GATEWAY.split("/")[1], namespace=INGRESS_NAMESPACE, spec={
            "selector": selector,
            "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": hosts}],
        })
        self.manifest("networking.istio.io/v1", "VirtualService", "https-redirect", namespace=INGRESS_NAMESPACE, spec={
            "hosts": hosts,
            "gateways": [HTTP_GATEWAY],
            "http": [{"name": "https-redirect", "redirect": {"scheme": "https", "redirectCode": 301}}],
        })

    def outputs(self) -> dict[str, Any]:
        return {"namespace": SYSTEM_NAMESPACE, "serviceAccount": "istiod", "ingressNamespace": INGRESS_NAMESPACE,
                "gateway": GATEWAY, "hosts": self.hosts}
