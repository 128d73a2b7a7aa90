"""Every scrape target is reachable: each ServiceMonitor and PodMonitor, joined with the NetworkPolicies.

A monitor whose pods' policies do not let Prometheus in on the metrics port is a permanent TargetDown.
The targets are written out here, independent of the addons' flows: for the monitors the charts create,
the pods the chart labels and the port its values give (read from the chart's defaults merged with the
release's values); for the monitors the program renders, the port names resolved to numbers through the
rendered Services and Deployments, or the pods' known ports. Each target must be allowed by
tests/reachability.py's evaluation of every rendered NetworkPolicy.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import pytest
from conftest import ROOT
from reachability import Endpoint, Network
from test_scraping import addon_releases

from components.addons import discover
from components.spec import deep_merge, load
from components.versions import CHARTS
from engine import chart_values

PROMETHEUS = Endpoint.pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack-prometheus"})
Port = Union[int, tuple[str, ...]]
# (chart, component) -> the pods the chart's monitor scrapes and their metrics port (a number, or where the chart's values give it).
CHART_TARGETS: dict[tuple[str, Optional[str]], tuple[dict[str, str], Port]] = {
    ("argo-cd", "controller"): ({"app.kubernetes.io/name": "argocd-application-controller"}, ("controller", "containerPorts", "metrics")),
    ("argo-cd", "server"): ({"app.kubernetes.io/name": "argocd-server"}, ("server", "containerPorts", "metrics")),
    ("argo-cd", "repoServer"): ({"app.kubernetes.io/name": "argocd-repo-server"}, ("repoServer", "containerPorts", "metrics")),
    ("argo-cd", "applicationSet"): ({"app.kubernetes.io/name": "argocd-applicationset-controller"}, ("applicationSet", "containerPorts", "metrics")),
    ("keda", "operator"): ({"app": "keda-operator"}, ("prometheus", "operator", "port")),
    ("keda", "metricServer"): ({"app": "keda-operator-metrics-apiserver"}, ("prometheus", "metricServer", "port")),
    ("keda", "webhooks"): ({"app": "keda-admission-webhooks"}, ("prometheus", "webhooks", "port")),
    # The API listener serves /v1/sys/metrics.
    ("vault", None): ({"app.kubernetes.io/name": "vault", "component": "server"}, ("server", "service", "targetPort")),
    ("sealed-secrets", None): ({"app.kubernetes.io/name": "sealed-secrets"}, ("containerPorts", "metrics")),
    # The controller's metrics port is fixed in the chart's templates.
    ("cert-manager", None): ({"app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/component": "controller"}, 9402),
    ("external-dns", None): ({"app.kubernetes.io/name": "external-dns"}, ("service", "port")),
    ("external-secrets", None): ({"app.kubernetes.io/name": "external-secrets"}, ("metrics", "listen", "port")),
    ("flagger", None): ({"app.kubernetes.io/name": "flagger"}, ("podAnnotations", "prometheus.io/port")),
    ("cost-analyzer", None): ({"app": "cost-analyzer"}, 9003),
    ("loki", None): ({"app.kubernetes.io/name": "loki"}, 3100),
    ("opentelemetry-collector", None): ({"app.kubernetes.io/name": "opentelemetry-collector"}, ("ports", "metrics", "containerPort")),
    ("velero", None): ({"app.kubernetes.io/name": "velero"}, ("metrics", "podAnnotations", "prometheus.io/port")),
}
# Charts whose values turn on one monitor per component.
PER_COMPONENT = {"argo-cd": lambda values: list(values), "keda": lambda values: list(values["prometheus"])}
# Ports the monitors the program renders name, on pods the charts create (Karpenter runs in kube-system, which no policy governs).
NAMED_PORTS = {
    ("karpenter", "http-metrics"): 8080,
    ("istiod", "http-monitoring"): 15014,
    ("envoy-stats", "http-envoy-prom"): 15090,
    ("istio-cni", "metrics"): 15014,
}


def chart_targets(rec) -> list[tuple[str, Endpoint, int]]:
    spec = load(rec.stack, ROOT).spec
    found = []
    for name, cls in discover().items():
        if not (spec.addon_enabled(name) and cls.metrics):
            continue
        releases = addon_releases(rec, name)
        instances = release_names(rec, name)
        namespaces = release_namespaces(rec, name)
        for chart, wanted in cls.metrics.charts.items():
            values = deep_merge(chart_values.defaults(CHARTS[chart]), releases[chart].values)
            for component in PER_COMPONENT.get(chart, lambda _: [None])(wanted):
                assert (chart, component) in CHART_TARGETS, f"{name}: the {chart} monitor {component or ''} has no target here; add what it scrapes"
                labels, port = CHART_TARGETS[(chart, component)]
                # Charts label their pods with the release, as Helm's conventions ask.
                labels = {**labels, "app.kubernetes.io/instance": instances.get(chart, "")}
                found.append((f"{name}/{chart}/{component or ''}", Endpoint.pod(name, namespaces.get(chart, cls.namespace), labels), resolve(values, port)))
    return found


def release_names(rec, addon: str) -> dict[str, str]:
    """chart name -> release name, of the addon's Helm releases (cert-manager's release is named after its chart)."""
    [component] = [r for r in rec if r.name == addon and r.type.startswith("platform:addons:")]
    by_ref = {c.chart_ref: c.name for c in CHARTS.values()}
    found = {r.inputs["chart"]: r.inputs["name"] for r in rec.children(component, recursive=True) if r.type == "kubernetes:helm.sh/v3:Release"}
    return {by_ref[ref]: name for ref, name in found.items()} | ({"cert-manager": "cert-manager"} if addon == "cert-manager" else {})


def release_namespaces(rec, addon: str) -> dict[str, str]:
    """chart name -> the namespace its release installs into (an addon may install a chart outside its own namespace)."""
    [component] = [r for r in rec if r.name == addon and r.type.startswith("platform:addons:")]
    by_ref = {c.chart_ref: c.name for c in CHARTS.values()}
    releases = [r for r in rec.children(component, recursive=True) if r.type == "kubernetes:helm.sh/v3:Release"]
    return {by_ref[r.inputs["chart"]]: r.inputs["namespace"] for r in releases if r.inputs.get("namespace")}


def resolve(values: dict[str, Any], port: Port) -> int:
    if isinstance(port, int):
        return port
    for key in port:
        values = values[key]
    return int(values)  # type: ignore[call-overload]


def rendered_targets(rec) -> list[tuple[str, Endpoint, int]]:
    objects = [o.inputs for o in rec.kubernetes_objects()]
    by_kind = lambda kind: [o for o in objects if o["kind"] == kind]
    found = []
    for monitor in by_kind("ServiceMonitor") + by_kind("PodMonitor"):
        name, ns = monitor["metadata"]["name"], monitor["metadata"]["namespace"]
        spec = monitor["spec"]
        namespaces = spec.get("namespaceSelector", {}).get("matchNames", [ns])
        endpoints = spec.get("endpoints") or spec.get("podMetricsEndpoints")
        for endpoint in endpoints:
            if (name, endpoint["port"]) in NAMED_PORTS:
                port = NAMED_PORTS[(name, endpoint["port"])]
                pods = [(n, spec["selector"].get("matchLabels", {})) for n in namespaces] if spec.get("namespaceSelector", {}).get("matchNames") else []
                if name == "envoy-stats":  # every meshed pod: the services' and the gateways'
                    pods = [(d["metadata"]["namespace"], d["spec"]["template"]["metadata"]["labels"]) for d in by_kind("Deployment")]
                found += [(f"{ns}/{name}", Endpoint.pod(name, n, labels), port) for n, labels in pods if n != "kube-system"]
                continue
            # A monitor of a rendered Service: its port's target, a named container port of the Deployment behind it.
            services = [
                s
                for s in by_kind("Service")
                if s["metadata"]["namespace"] in namespaces and spec["selector"]["matchLabels"].items() <= s["metadata"].get("labels", {}).items()
            ]
            assert services, f"{ns}/{name}: selects no rendered Service"
            for service in services:
                [target] = [p["targetPort"] for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
                selector = service["spec"]["selector"]
                [deployment] = [
                    d
                    for d in by_kind("Deployment")
                    if d["metadata"]["namespace"] == service["metadata"]["namespace"]
                    and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
                ]
                ports = {p["name"]: p["containerPort"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
                labels = deployment["spec"]["template"]["metadata"]["labels"]
                found.append(
                    (f"{ns}/{name}", Endpoint.pod(name, service["metadata"]["namespace"], labels), ports[target] if isinstance(target, str) else target)
                )
    return found


def unreachable(rec) -> list[str]:
    network = Network.of(o.inputs for o in rec.kubernetes_objects())
    return [
        f"{what}: {pod.namespace} port {port}" for what, pod, port in chart_targets(rec) + rendered_targets(rec) if not network.allowed(PROMETHEUS, pod, port)
    ]


def test_prometheus_reaches_every_scrape_target(stack):
    targets = chart_targets(stack) + rendered_targets(stack)
    assert {"argocd", "keda", "vault", "sealed-secrets"} <= {t[1].name for t in targets}
    assert len({t[1].namespace for t in targets}) >= 10
    assert unreachable(stack) == []


@pytest.mark.parametrize("addon", ["argocd", "keda", "vault", "sealed-secrets"])
def test_without_the_scrape_flow_the_target_is_down(addon, stack):
    """Drop the addon's scrape policy and the join finds its targets unreachable."""
    namespace = discover()[addon].namespace
    kept = [
        o.inputs
        for o in stack.kubernetes_objects()
        if not (o.kind == "NetworkPolicy" and o.metadata.get("namespace") == namespace and "scrape" in o.metadata["name"])
    ]
    network = Network.of(kept)
    down = [what for what, pod, port in chart_targets(stack) if pod.namespace == namespace and not network.allowed(PROMETHEUS, pod, port)]
    assert down, f"{addon}: its targets stay reachable without its scrape policy"
