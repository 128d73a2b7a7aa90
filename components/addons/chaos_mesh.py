"""Chaos Mesh: scheduled fault injection for the critical services of non-prod stacks.

The addon installs the controller, the dashboard and the chaos daemon; the workloads component
(components/workloads/chaos.py) gives every critical service two chaos-mesh.org/v1alpha1 Schedules
in its team namespace (in staging, one Workflow of both with an SLO status check: a promotion gate): a PodChaos that kills one of its pods, and a NetworkChaos that delays one
pod's traffic to the services it depends on. Both run every few hours (Settings), so the canary
analysis, PodDisruptionBudgets, retries and SLO alerts are exercised by something other than an
incident.

Never in prod: the stack model rejects this addon in a prod stack (StackSpec, NON_PROD_ADDONS),
and the workloads component creates no experiment in prod even so. A privileged daemon on every
node that can kill pods and rewrite their network is too large a blast radius for a setting;
a production game day is a deliberate, reviewed change.

Guard rails: `controllerManager.enableFilterNamespace` limits injection to namespaces annotated
INJECT_ANNOTATION, which only the team namespaces carry when experiments are on, so the
platform's own namespaces (Istio, Prometheus, Vault, ...) can never be a target, even of a
hand-made experiment. The dashboard keeps its security mode (a Kubernetes token is required) and is
only a ClusterIP service.

EKS nodes run containerd: the daemon reaches it at /run/containerd/containerd.sock (the chart's
default is Docker's socket). It tolerates the Karpenter pools' taints, so it also runs on the
dedicated nodes where critical services live; a NetworkChaos needs the daemon on the target's node.

helm.v3.Release: the chart installs the CRDs (crds/) and generates the webhook and mTLS
certificates at render time; the release waits for the controller and its webhooks, which must be
serving before the services' Schedules are created.
"""

from __future__ import annotations

from typing import Any, Optional

from components.contracts import ChaosExperiments, ChaosMeshContract, MonitoringContract
from components.spec import Declarations
from components.spec.base import Spec, field
from components.spec.placement import pool_tolerations
from components.versions import CHAOS_MESH

from . import flows as net
from .base import Addon

NAMESPACE = "chaos-mesh"
RELEASE = "chaos-mesh"
API_VERSION = "chaos-mesh.org/v1alpha1"
CONTROLLER_SERVICE_ACCOUNT = "chaos-controller-manager"
# With enableFilterNamespace, Chaos Mesh only injects into namespaces annotated like this.
INJECT_ANNOTATION = {"chaos-mesh.org/inject": "enabled"}
# The controller's webhook port (the chart's WEBHOOK_PORT), reachable from the control plane.
WEBHOOK_PORT = 10250
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
# The chart's controller-manager pods, which run workflows and their status checks.
CONTROLLER_POD_LABELS = {"app.kubernetes.io/component": "controller-manager"}
# Where each critical service's chaos workflow is a promotion gate.
GATE_ENVIRONMENT = "staging"


class ChaosMeshSettings(Spec):
    controller_replicas: int = field("chaos-controller-manager replicas (leader election is always on).", default=1, ge=1, le=3)
    every_hours: int = field("Hours between two runs of each service's experiments; pod kills on the hour, latency at half past.", default=4, ge=1, le=24)
    latency_ms: int = field("Latency added to a critical service's calls to its dependencies, in milliseconds.", default=200, ge=10, le=5000)
    latency_minutes: int = field("How long the latency experiment lasts, in minutes.", default=5, ge=1, le=30)


class ChaosMesh(Addon):
    name = "chaos-mesh"
    namespace = NAMESPACE
    # Dev-only fault injection; its chart offers scraping by prometheus.io annotations only, which the
    # Prometheus operator does not read. Experiments are visible as Schedule objects and in the dashboards they disturb.
    metrics = None
    Settings = ChaosMeshSettings
    pod_security = "privileged"
    pod_security_reason = "chaos-daemon is privileged, with hostPath mounts of the container runtime socket and /sys"

    @classmethod
    def contract(cls, settings: Any, decl: Declarations) -> ChaosMeshContract:
        s = experiments(decl)
        scheduled = ChaosExperiments(s.every_hours, s.latency_ms, s.latency_minutes) if s is not None else None
        return ChaosMeshContract(api_version=API_VERSION, inject_annotation=INJECT_ANNOTATION, experiments=scheduled)

    def install(self) -> None:
        s: ChaosMeshSettings = self.settings
        self.release = self.helm(
            CHAOS_MESH,
            {
                "controllerManager": {"replicaCount": s.controller_replicas, "enableFilterNamespace": True},
                "chaosDaemon": {
                    "runtime": "containerd",
                    "socketPath": CONTAINERD_SOCKET,
                    "tolerations": pool_tolerations(self.ctx.decl.spec.karpenter.node_pools),
                },
                "dashboard": {"service": {"type": "ClusterIP"}},
                # DNSChaos is not used; its CoreDNS fork would only be another deployment to run.
                "dnsServer": {"create": False},
            },
            release=RELEASE,
        )

    def flows(self) -> list[net.Flow]:
        found = [
            net.api_server(self.vpc_cidr),
            *net.within(NAMESPACE, reason="the controller drives the daemons (gRPC); the dashboard calls the controller"),
            net.webhook("webhook", self.vpc_cidr, (WEBHOOK_PORT,), "the API server calls the controller's admission webhooks"),
        ]
        monitoring = self.ctx.contracts.get(MonitoringContract)
        if self.ctx.decl.environment == GATE_ENVIRONMENT and monitoring is not None:
            # The promotion gate's workflows (components/workloads/chaos.py) check the services' SLOs on Prometheus.
            found.append(net.prometheus_queries(monitoring, "the chaos gate's status checks query the SLOs", selector=CONTROLLER_POD_LABELS))
        return found

    def outputs(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "serviceAccount": CONTROLLER_SERVICE_ACCOUNT}


def experiments(decl: Declarations) -> Optional[ChaosMeshSettings]:
    """The experiment settings when this stack runs scheduled experiments, else None (addon off, or prod)."""
    spec = decl.spec
    if decl.environment == "prod" or not spec.addon_enabled(ChaosMesh.name):
        return None
    return ChaosMeshSettings.model_validate(spec.addons[ChaosMesh.name].settings, context={"environment": decl.environment})
