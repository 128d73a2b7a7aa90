"""kube-prometheus-stack: Prometheus, Alertmanager, Grafana, and the platform's alert rules.

helm.v3.Release: the chart's admission-webhook certificates are made by Helm hooks.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import MonitoringContract, Pods
from components.karpenter.controller import METRICS as KARPENTER_METRICS
from components.monitoring import alertmanager, delivery, grafana, rules, scrape
from components.monitoring.scrape import Metrics, Monitor
from components.spec import Declarations
from components.spec.base import Spec, field
from components.versions import KUBE_PROMETHEUS_STACK

from . import flows as net
from .base import Addon

RELEASE = "kube-prometheus-stack"
NAMESPACE = "monitoring"
# The chart names its Prometheus service <fullname>-prometheus; fullnameOverride pins <fullname>.
PROMETHEUS_SERVICE = f"{RELEASE}-prometheus"
PROMETHEUS_URL = f"http://{PROMETHEUS_SERVICE}.{NAMESPACE}:9090"
GRAFANA_SECRET = "grafana-admin"
# Labels Prometheus' network policies and the services' allow rules rely on.
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus"}
# The chart names the service account <fullname>-prometheus too; its mTLS identity when meshed.
PROMETHEUS_SERVICE_ACCOUNT = PROMETHEUS_SERVICE
# Grafana's sidecars (values grafana.sidecar.*): datasources from ConfigMaps with this label in Grafana's
# namespace (no searchNamespace is set), dashboards from ConfigMaps in any namespace (searchNamespace ALL).
GRAFANA_DATASOURCE_LABEL = {"grafana_datasource": "1"}
GRAFANA_DASHBOARD_LABEL = grafana.DASHBOARD_LABEL
PROMETHEUS_DATASOURCE_UID = grafana.PROMETHEUS_DATASOURCE_UID
PROMETHEUS_PORT = 9090
GRAFANA_POD_LABELS = {"app.kubernetes.io/name": "grafana"}
ALERTMANAGER_POD_LABELS = {"app.kubernetes.io/name": "alertmanager"}
# What Prometheus scrapes outside the pod network: the kubelets (cAdvisor), node-exporter and the
# Istio CNI agent, all on the nodes' addresses.
NODE_PORTS = (10250, 9100, 15014)
# The node exporters' namespace: the one part of the stack that needs the host.
NODE_NAMESPACE = "monitoring-node"
# The operator's admission webhook for PrometheusRules.
OPERATOR_WEBHOOK_PORT = 10250


class PrometheusSettings(Spec):
    retention: str = field("How long Prometheus keeps samples.", default="15d", pattern=r"^[0-9]+(h|d|w|y)$")
    storage_gib: int = field("Prometheus volume size, in GiB.", default=50, ge=10)
    replicas: int = field("Prometheus and Alertmanager replicas.", default=1, ge=1, le=3)
    grafana_host: str = field("Internal host name Grafana is reached at (not routed publicly).", default="grafana.internal")


class Prometheus(Addon):
    name = "prometheus"
    namespace = NAMESPACE
    # The chart monitors its own components (prometheus.serviceMonitor.selfMonitor and the like), node exporters
    # and kube-state-metrics included; the monitors the other components declare are created here.
    metrics = Metrics()
    Settings = PrometheusSettings
    # node-exporter alone needs the host (its network and PID namespaces, /proc and /sys by hostPath): its
    # DaemonSet goes to a namespace of its own (the subchart's namespaceOverride), and this one stays baseline.
    extra_namespaces = (NODE_NAMESPACE,)
    pod_security = "baseline"
    pod_security_reason = (
        "Grafana's init-chown-data runs as root with CHOWN to own its volume, which baseline admits and restricted does not; "
        "node-exporter (host network, PID namespace, hostPath) runs in monitoring-node, which is privileged for it alone"
    )

    @classmethod
    def contract(cls, settings: Any, decl: Declarations) -> MonitoringContract:
        return MonitoringContract(
            prometheus=Pods(NAMESPACE, PROMETHEUS_POD_LABELS, PROMETHEUS_SERVICE_ACCOUNT),
            prometheus_url=PROMETHEUS_URL,
            prometheus_port=PROMETHEUS_PORT,
            grafana=Pods(NAMESPACE, GRAFANA_POD_LABELS),
            grafana_namespace=NAMESPACE,
            datasource_label=GRAFANA_DATASOURCE_LABEL,
            dashboard_label=GRAFANA_DASHBOARD_LABEL,
            prometheus_datasource_uid=PROMETHEUS_DATASOURCE_UID,
        )

    def install(self) -> None:
        s: PrometheusSettings = self.settings
        password = pulumi.Config("platform").require_secret("grafanaAdminPassword")
        admin = k8s.core.v1.Secret(
            f"{self.name}-grafana-admin",
            metadata={"name": GRAFANA_SECRET, "namespace": NAMESPACE},
            type="Opaque",
            string_data={"admin-user": "admin", "admin-password": password},
            opts=self.k8s,
        )
        alerting = self.ctx.decl.spec.alerting
        assert alerting is not None  # the stack model requires it with this addon
        config = pulumi.Config("platform")
        credentials: dict[str, Any] = {key: config.require_secret(key) for key in alertmanager.credentials(alerting)}
        receivers = k8s.core.v1.Secret(
            f"{self.name}-alertmanager-receivers",
            metadata={"name": alertmanager.SECRET_NAME, "namespace": NAMESPACE},
            type="Opaque",
            string_data=credentials,
            opts=self.k8s,
        )
        values = self.chart_values(s)
        values["alertmanager"].update(config=alertmanager.config(self.ctx.decl.spec))
        values["alertmanager"]["alertmanagerSpec"]["secrets"] = [alertmanager.SECRET_NAME]
        nodes = self.create_namespace(NODE_NAMESPACE, level="privileged")
        self.release = self.helm(KUBE_PROMETHEUS_STACK, values, release=RELEASE, depends_on=(admin, receivers, nodes))
        for monitor in self.monitors():
            self.manifest(scrape.API_VERSION, monitor.kind, monitor.name, namespace=NAMESPACE, spec=monitor.spec)
        enabled = self.ctx.decl.spec.addon_enabled
        self.manifest(
            "monitoring.coreos.com/v1",
            "PrometheusRule",
            "platform",
            namespace=NAMESPACE,
            spec={
                "groups": [
                    {
                        "name": "platform",
                        "rules": rules.platform_rules(alerting) + rules.zero_trust_rules(alerting, enabled("external-dns"), enabled("istio-cni")),
                    }
                ]
            },
        )
        self.manifest(
            "monitoring.coreos.com/v1", "PrometheusRule", "platform-delivery", namespace=NAMESPACE, spec={"groups": delivery.rules(self.ctx.decl.spec)}
        )
        k8s.core.v1.ConfigMap(
            f"{self.name}-delivery-dashboard",
            opts=self.k8s,
            metadata={"name": "platform-delivery-dashboard", "namespace": NAMESPACE, "labels": GRAFANA_DASHBOARD_LABEL},
            data={f"{delivery.UID}.json": json.dumps(delivery.delivery_dashboard(self.ctx.decl.spec, PROMETHEUS_DATASOURCE_UID), indent=1)},
        )
        self.grafana_host = s.grafana_host

    def monitors(self) -> list[Monitor]:
        """What components declare for this addon to create: Karpenter's (installed before any addon) and the enabled addons'."""
        declared = [KARPENTER_METRICS] + [Addon.registry[n].metrics for n, a in self.ctx.decl.spec.addons.items() if a.enabled]
        return [monitor for metrics in declared if metrics is not None for monitor in metrics.monitors]

    def chart_values(self, s: PrometheusSettings) -> dict[str, Any]:
        return {
            "fullnameOverride": RELEASE,
            "alertmanager": {"alertmanagerSpec": {"replicas": s.replicas}},
            "grafana": {"admin": {"existingSecret": GRAFANA_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"}},
            "prometheus-node-exporter": {"namespaceOverride": NODE_NAMESPACE},
            "prometheus": {
                "prometheusSpec": {
                    "replicas": s.replicas,
                    "retention": s.retention,
                    # Pick up every team's ServiceMonitors, PodMonitors and rules, not only the chart's own.
                    "serviceMonitorSelectorNilUsesHelmValues": False,
                    "podMonitorSelectorNilUsesHelmValues": False,
                    "ruleSelectorNilUsesHelmValues": False,
                    "storageSpec": {
                        "volumeClaimTemplate": {
                            "spec": {"storageClassName": "gp3", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{s.storage_gib}Gi"}}}
                        }
                    },
                }
            },
        }

    def flows(self) -> list[net.Flow]:
        return [
            net.api_server(self.vpc_cidr),
            *net.within(NAMESPACE, reason="Prometheus, Alertmanager, Grafana, the operator and kube-state-metrics call each other"),
            net.webhook(
                "webhook",
                self.vpc_cidr,
                (OPERATOR_WEBHOOK_PORT,),
                "the API server calls the operator's PrometheusRule webhook",
                selector={"app": f"{RELEASE}-operator"},
            ),
            net.flow(
                "scrape-pods",
                "egress",
                [net.Peer()],
                "Prometheus scrapes pods in every namespace (their policies pick the ports)",
                selector=PROMETHEUS_POD_LABELS,
            ),
            net.flow(
                "scrape-nodes",
                "egress",
                [net.Peer(cidr=self.vpc_cidr)],
                "kubelet, node-exporter and the CNI agent on the nodes",
                ports=NODE_PORTS,
                selector=PROMETHEUS_POD_LABELS,
            ),
            net.cloud(
                "Alertmanager notifies the receivers (PagerDuty, Slack, webhooks, the dead man's switch, SMTP relays)",
                ports=alertmanager.receiver_ports(self.ctx.decl.spec.alerting),
                selector=ALERTMANAGER_POD_LABELS,
                name="notifications",
            ),
        ]

    def outputs(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "serviceAccount": f"{RELEASE}-prometheus", "prometheusUrl": PROMETHEUS_URL, "grafanaHost": self.grafana_host}
