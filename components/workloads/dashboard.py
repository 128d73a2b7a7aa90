"""One Grafana dashboard per service, generated from its declaration: the four golden signals.

Traffic, errors and latency come from the Envoy sidecars (istio_requests_total and
istio_request_duration_milliseconds_bucket, reported by the destination); saturation from the
kubelet's cAdvisor (container CPU and memory) against the declared requests and limits
(kube-state-metrics). Requests are selected by workload, `<name>` or `<name>-primary`, so a
Flagger canary's primary and canary pods are both counted; containers by their name, which is
the service's.

The dashboard is a ConfigMap in the team's namespace labelled for Grafana's dashboard sidecar
(kube-prometheus-stack searches every namespace), created with the service's other objects.
"""

from __future__ import annotations

from typing import Any, Optional

from components.spec import Service

# Grafana's dashboard uid limit.
UID_MAX = 40


def uid(svc: Service) -> str:
    return f"svc-{svc.team}-{svc.name}"[:UID_MAX]


def selectors(svc: Service) -> tuple[str, str]:
    """PromQL label matchers for the service's requests (as their destination) and its containers."""
    requests = f'reporter="destination", destination_workload_namespace="{svc.team}", destination_workload=~"{svc.name}(-primary)?"'
    containers = f'namespace="{svc.team}", container="{svc.name}"'
    return requests, containers


def dashboard(svc: Service, datasource_uid: str) -> dict[str, Any]:
    """The dashboard, its queries on the Prometheus datasource `datasource_uid`."""
    requests, containers = selectors(svc)
    source = {"type": "prometheus", "uid": datasource_uid}
    rate = lambda extra="": f"sum(rate(istio_requests_total{{{requests}{extra}}}[$__rate_interval]))"
    latency = lambda q: (f"histogram_quantile({q}, sum by (le) (rate(istio_request_duration_milliseconds_bucket{{{requests}}}[$__rate_interval])))", f"p{round(q * 100)}")
    resource = lambda kind, name: f'max(kube_pod_container_resource_{kind}{{{containers}, resource="{name}"}})'
    errors = rate(', response_code=~"5.."')
    error_budget = round(1 - svc.canary.success_rate / 100, 6)
    panels = [
        panel("Requests per second", "reqps", source, [(f"sum by (response_code) (rate(istio_requests_total{{{requests}}}[$__rate_interval]))", "{{response_code}}")]),
        panel("Errors (5xx share)", "percentunit", source, [(f"{errors} / {rate()}", "5xx")], threshold=error_budget),
        panel("Latency", "ms", source, [latency(0.5), latency(0.95), latency(0.99)], threshold=svc.canary.max_latency_ms),
        panel("CPU (cores)", "short", source, [
            (f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{containers}}}[$__rate_interval]))", "{{pod}}"),
            (resource("requests", "cpu"), "request"),
        ]),
        panel("Memory (working set)", "bytes", source, [
            (f"sum by (pod) (container_memory_working_set_bytes{{{containers}}})", "{{pod}}"),
            (resource("requests", "memory"), "request"),
            (resource("limits", "memory"), "limit"),
        ]),
    ]
    for i, p in enumerate(panels):
        p["id"] = i + 1
        p["gridPos"] = {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8}
    return {
        "uid": uid(svc),
        "title": f"{svc.team} / {svc.name}",
        "tags": ["platform", "service", svc.team, svc.tier],
        "timezone": "utc",
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "schemaVersion": 39,
        "panels": panels,
    }


def panel(title: str, unit: str, source: dict[str, str], queries: list[tuple[str, str]], threshold: Optional[float] = None) -> dict[str, Any]:
    """A time series panel; `threshold` draws the service's SLO line (red above it)."""
    defaults: dict[str, Any] = {"unit": unit}
    if threshold is not None:
        defaults["thresholds"] = {"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "red", "value": threshold}]}
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return {
        "type": "timeseries",
        "title": title,
        "datasource": source,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "datasource": source, "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(queries)],
    }
