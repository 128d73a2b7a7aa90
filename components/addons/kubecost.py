"""Kubecost (cost-analyzer chart): cost per namespace, team and service, from the platform's Prometheus.

Kubecost reads the metrics kube-prometheus-stack already collects (cAdvisor, kube-state-metrics,
node-exporter) instead of running a second Prometheus: `global.prometheus.enabled: false` with
`global.prometheus.fqdn` pointing at the prometheus addon's published URL. The platform's Prometheus scrapes Kubecost's
own cost-model metrics through the chart's ServiceMonitor and evaluates its recording rules through
the chart's PrometheusRule; it selects both without labels (the prometheus addon turns the
Helm-values selectors off), so this addon requires prometheus for the CRDs and the data.
Costs are labelled by namespace, and team namespaces are named after the team, so the "namespace"
aggregation is the per-team view; `platform.io/team` and `platform.io/service` labels refine it.

The chart's bundled Grafana is off (dashboards live in the platform Grafana), and so is reporting
to Kubecost: no analytics, error or values reports leave the cluster.

Pinned to the reference snapshot 2.3.3 (see KUBECOST in components/versions.py for why, and what a
move to 2.9.x or the renamed 3.x `kubecost` chart involves).

helm.v3.Release: the release waits for the cost-model and frontend, and the chart's ServiceMonitor
and PrometheusRule need the Prometheus Operator CRDs installed first (requires prometheus).
"""

from __future__ import annotations

from typing import Any

from components.contracts import MonitoringContract
from components.monitoring.scrape import Metrics
from components.versions import KUBECOST

from . import flows as net
from .base import Addon

NAMESPACE = "kubecost"
RELEASE = "kubecost"
# The chart names its objects <release>-cost-analyzer; the UI and API listen on port 9090.
SERVICE = f"{RELEASE}-cost-analyzer"
URL = f"http://{SERVICE}.{NAMESPACE}:9090"
SERVICE_ACCOUNT = SERVICE
# cost-model's metrics, scraped through the chart's ServiceMonitor.
METRICS_PORT = 9003


class Kubecost(Addon):
    name = "kubecost"
    namespace = NAMESPACE
    # The cost model's own metrics (its recording rules read them through Prometheus).
    metrics = Metrics(charts={KUBECOST.name: {"serviceMonitor": {"enabled": True}}})
    requires = ("prometheus",)
    pod_security = "baseline"
    pod_security_reason = (
        "cost-analyzer 2.3.3 gives its cost-model and frontend containers no seccomp profile, capability drop "
        "or allowPrivilegeEscalation, and its values offer no container security context for them"
    )

    def install(self) -> None:
        self.prometheus_url = self.ctx.contracts.require(MonitoringContract).prometheus_url
        self.release = self.helm(
            KUBECOST,
            {
                "global": {"prometheus": {"enabled": False, "fqdn": self.prometheus_url}, "grafana": {"enabled": False, "proxy": False}},
                # Kubecost reads the cluster's identity from here even with its own Prometheus off.
                "prometheus": {"server": {"global": {"external_labels": {"cluster_id": self.ctx.cluster_name}}}},
                "prometheusRule": {"enabled": True},
                "reporting": {"productAnalytics": False, "errorReporting": False, "valuesReporting": False},
            },
            release=RELEASE,
        )

    def flows(self) -> list[net.Flow]:
        monitoring = self.ctx.contracts.require(MonitoringContract)
        return [
            net.api_server(self.vpc_cidr),
            *net.within(NAMESPACE, reason="the frontend calls cost-model"),
            net.prometheus_queries(monitoring, "costs computed from Prometheus metrics"),
            net.cloud("AWS list prices (the pricing API)"),
            *self.scraped((METRICS_PORT,)),
        ]

    def outputs(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "serviceAccount": SERVICE_ACCOUNT, "url": URL, "prometheusUrl": self.prometheus_url}
