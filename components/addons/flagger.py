"""Flagger (progressive delivery on Istio) and its load tester.

helm.v3.Release for both: Helm 3 installs Flagger's CRDs from the chart's `crds/` directory before
anything else. `crd.create` stays off: it is meant for Helm 2 and would template the same CRDs a
second time. Helm never upgrades or deletes `crds/` (deleting them would garbage-collect every
Canary and, through owner references, the primary Deployments serving traffic), so a chart bump
that changes the CRDs is applied with the chart's crd.yaml first.

Flagger runs in its own namespace, not istio-system as Flagger's Istio guide has it, and in the
mesh: under STRICT mTLS a client without a sidecar cannot call the load tester's webhook (Flagger
issue #239), and an out-of-mesh Flagger would need mTLS turned off for the load tester, a service
that runs the commands it is sent. Instead the load tester accepts only Flagger's identity.
Prometheus, outside the mesh, scrapes Flagger's metrics port, which is excluded from the sidecar.

Both namespaces are labelled for sidecar injection and enforce the restricted Pod Security level:
with the istio-cni addon the injected init container needs no capabilities, istiod gives injected
containers the RuntimeDefault seccomp profile, and both charts' containers get the restricted
security context here (the charts' own contexts only set the user and a read-only root).
"""

from __future__ import annotations

from typing import Any

import pulumi_kubernetes as k8s

from components.contracts import FlaggerContract, IstioContract, MonitoringContract, Pods
from components.monitoring.scrape import Metrics
from components.security import RESTRICTED_CONTAINER
from components.spec import Declarations
from components.spec.base import Spec, field
from components.versions import FLAGGER, LOADTESTER

from . import flows as net
from .base import Addon

NAMESPACE = "flagger-system"
RELEASE = "flagger"
# The chart names the Deployment and service account after the release (it contains the chart name).
SERVICE_ACCOUNT = RELEASE
POD_LABELS = {"app.kubernetes.io/name": "flagger", "app.kubernetes.io/instance": RELEASE}
PRINCIPAL = f"cluster.local/ns/{NAMESPACE}/sa/{SERVICE_ACCOUNT}"
METRICS_PORT = 8080

LOADTESTER_NAMESPACE = "flagger-loadtester"
LOADTESTER_RELEASE = "flagger-loadtester"
# The release name contains the chart name, so the chart's Service is named after the release
# (port 80 -> 8080); its pods carry app=<chart name>.
LOADTESTER_URL = f"http://{LOADTESTER_RELEASE}.{LOADTESTER_NAMESPACE}/"
LOADTESTER_POD_LABELS = {"app": "loadtester"}
LOADTESTER_PORT = 8080
# Ours, without an API token: the load tester only sends traffic.
LOADTESTER_SERVICE_ACCOUNT = LOADTESTER_RELEASE
# The identity the canaries' AuthorizationPolicies allow for load-test traffic.
LOADTESTER_PRINCIPAL = f"cluster.local/ns/{LOADTESTER_NAMESPACE}/sa/{LOADTESTER_SERVICE_ACCOUNT}"


class FlaggerSettings(Spec):
    replicas: int = field("Flagger replicas; more than one runs with leader election.", default=1, ge=1, le=3)
    loadtester_replicas: int = field("Load tester replicas.", default=1, ge=1, le=5)


class Flagger(Addon):
    name = "flagger"
    namespace = NAMESPACE
    extra_namespaces = (LOADTESTER_NAMESPACE,)
    # flagger_canary_status and the canary counters feed the release alerts (monitoring/canary.py) and the delivery dashboard.
    # honorLabels: the canary's own `namespace` label, not the Flagger pod's, reaches the series.
    metrics = Metrics(charts={FLAGGER.name: {"podMonitor": {"enabled": True, "honorLabels": True}}})
    requires = ("istio", "prometheus")
    Settings = FlaggerSettings
    multi_chart = True
    pod_security = "restricted"

    @classmethod
    def contract(cls, settings: Any, decl: Declarations) -> FlaggerContract:
        return FlaggerContract(loadtester=Pods(LOADTESTER_NAMESPACE, LOADTESTER_POD_LABELS, LOADTESTER_SERVICE_ACCOUNT), loadtester_url=LOADTESTER_URL)

    def namespace_labels(self) -> dict[str, str]:
        return dict(self.ctx.contracts.require(IstioContract).injection_label)

    def install(self) -> None:
        s: FlaggerSettings = self.settings
        self.release = self.helm(FLAGGER, self.flagger_values(s, self.ctx.contracts.require(MonitoringContract).prometheus_url), release=RELEASE)
        loadtester_ns = self.create_namespace(LOADTESTER_NAMESPACE, self.namespace_labels())
        account = k8s.core.v1.ServiceAccount(
            f"{self.name}-loadtester",
            metadata={"name": LOADTESTER_SERVICE_ACCOUNT, "namespace": LOADTESTER_NAMESPACE},
            automount_service_account_token=False,
            opts=self.opts((loadtester_ns,)),
        )
        self.helm(LOADTESTER, self.loadtester_values(s), release=LOADTESTER_RELEASE, namespace=LOADTESTER_NAMESPACE, depends_on=(loadtester_ns, account))
        # The load tester executes the commands in its webhook calls: only Flagger may call it.
        self.manifest(
            "security.istio.io/v1",
            "AuthorizationPolicy",
            LOADTESTER_RELEASE,
            namespace=LOADTESTER_NAMESPACE,
            spec={"selector": {"matchLabels": LOADTESTER_POD_LABELS}, "action": "ALLOW", "rules": [{"from": [{"source": {"principals": [PRINCIPAL]}}]}]},
        )

    def flows(self) -> list[net.Flow]:
        monitoring = self.ctx.contracts.require(MonitoringContract)
        return [
            net.api_server(self.vpc_cidr),
            *self.sidecar(NAMESPACE),
            *self.scraped((METRICS_PORT,), selector=POD_LABELS),
            net.prometheus_queries(monitoring, "canary analysis queries Prometheus", selector=POD_LABELS),
            net.flow(
                "loadtester",
                "egress",
                [net.Peer.of(LOADTESTER_NAMESPACE, LOADTESTER_POD_LABELS)],
                "Flagger runs its webhooks on the load tester",
                ports=(LOADTESTER_PORT,),
                selector=POD_LABELS,
                both_ends=True,
            ),
            *self.sidecar(LOADTESTER_NAMESPACE),
            net.flow(
                "canaries",
                "egress",
                [net.Peer(namespace_key=net.TEAM_LABEL)],
                "smoke and load tests call the canaries (their policies pick the port)",
                selector=LOADTESTER_POD_LABELS,
                namespace=LOADTESTER_NAMESPACE,
            ),
        ]

    @staticmethod
    def flagger_values(s: FlaggerSettings, prometheus_url: str) -> dict[str, Any]:
        return {
            "meshProvider": "istio",
            "metricsServer": prometheus_url,
            "crd": {"create": False},
            "leaderElection": {"enabled": s.replicas > 1, "replicaCount": s.replicas},
            "podDisruptionBudget": {"enabled": s.replicas > 1},
            "podAnnotations": {"traffic.sidecar.istio.io/excludeInboundPorts": str(METRICS_PORT)},
            # The chart's user (10001) with the restricted profile.
            "securityContext": {"enabled": True, "context": {**RESTRICTED_CONTAINER, "runAsUser": 10001}},
        }

    @staticmethod
    def loadtester_values(s: FlaggerSettings) -> dict[str, Any]:
        return {
            "replicaCount": s.loadtester_replicas,
            "serviceAccountName": LOADTESTER_SERVICE_ACCOUNT,
            "podDisruptionBudget": {"enabled": s.loadtester_replicas > 1},
            # The chart's user and group (off by default there) with the restricted profile; hey and curl
            # write nothing, so the root filesystem stays read-only.
            "securityContext": {"enabled": True, "context": {**RESTRICTED_CONTAINER, "runAsUser": 100, "runAsGroup": 101}},
            "podSecurityContext": {"enabled": True, "context": {"fsGroup": 101, "seccompProfile": {"type": "RuntimeDefault"}}},
        }

    def outputs(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "serviceAccount": SERVICE_ACCOUNT, "loadtesterNamespace": LOADTESTER_NAMESPACE, "loadtesterUrl": LOADTESTER_URL}
