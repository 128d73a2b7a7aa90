"""One Grafana dashboard per service, generated from its declaration: the four golden signals and
its error budgets.

Traffic, errors and latency come from the Envoy sidecars (istio_requests_total and
istio_request_duration_milliseconds_bucket, reported by the destination); saturation from the
kubelet's cAdvisor (container CPU and memory) against the declared requests and limits
(kube-state-metrics). Requests are selected by workload, `<name>` or `<name>-primary`, so a
Flagger canary's primary and canary pods are both counted; containers by their name, which is
the service's. The error budgets read the SLO recording rules (components/monitoring/slo.py).

The dashboard is a ConfigMap in the team's namespace labelled for Grafana's dashboard sidecar
(kube-prometheus-stack searches every namespace), created with the service's other objects.
"""

from __future__ import annotations

from typing import Any

from components.monitoring import forecast, grafana, slo
from components.monitoring.grafana import GREEN, RED, YELLOW, panel, steps
from components.spec import Service

from . import scaling

UID_MAX = grafana.UID_MAX


def uid(svc: Service) -> str:
    return f"svc-{svc.team}-{svc.name}"[:UID_MAX]


def selectors(svc: Service) -> tuple[str, str]:
    """PromQL label matchers for the service's requests (as their destination) and its containers."""
    return slo.workload(svc), f'namespace="{svc.team}", container="{svc.name}"'


def golden_signals(svc: Service, source: str) -> list[dict[str, Any]]:
    requests, containers = selectors(svc)
    rate = lambda extra="": f"sum(rate(istio_requests_total{{{requests}{extra}}}[$__rate_interval]))"
    latency = lambda q: (
        f"histogram_quantile({q}, sum by (le) (rate(istio_request_duration_milliseconds_bucket{{{requests}}}[$__rate_interval])))",
        f"p{round(q * 100)}",
    )
    resource = lambda kind, name: f'max(kube_pod_container_resource_{kind}{{{containers}, resource="{name}"}})'
    errors = rate(', response_code=~"5.."')
    return [
        panel(
            "Requests per second",
            "reqps",
            source,
            [(f"sum by (response_code) (rate(istio_requests_total{{{requests}}}[$__rate_interval]))", "{{response_code}}")],
        ),
        panel("Errors (5xx share)", "percentunit", source, [(f"{errors} / {rate()}", "5xx")], threshold=round(1 - svc.canary.success_rate / 100, 6)),
        panel("Latency", "ms", source, [latency(0.5), latency(0.95), latency(0.99)], threshold=svc.canary.max_latency_ms),
        panel(
            "CPU (cores)",
            "short",
            source,
            [
                (f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{containers}}}[$__rate_interval]))", "{{pod}}"),
                (resource("requests", "cpu"), "request"),
            ],
        ),
        panel(
            "Memory (working set)",
            "bytes",
            source,
            [
                (f"sum by (pod) (container_memory_working_set_bytes{{{containers}}})", "{{pod}}"),
                (resource("requests", "memory"), "request"),
                (resource("limits", "memory"), "limit"),
            ],
        ),
    ]


def error_budgets(svc: Service, source: str) -> list[dict[str, Any]]:
    """Per objective: what is left of the 30-day budget, and how fast it burns (1 = exactly on budget)."""
    panels = []
    for objective in slo.OBJECTIVES:
        sel, budget = slo.selector(svc, objective), svc.slo.budget(objective)
        panels.append(
            panel(
                f"Error budget left, {objective} (30d)",
                "percentunit",
                source,
                [(f"1 - {slo.record(objective, slo.BUDGET_WINDOW)}{{{sel}}} / {budget}", "left")],
                kind="stat",
                thresholds=steps((RED, None), (YELLOW, 0), (GREEN, 0.25)),
            )
        )
        panels.append(
            panel(
                f"Burn rate, {objective}",
                "short",
                source,
                [(f"{slo.record(objective, w)}{{{sel}}} / {budget}", w) for w in ("1h", "6h", "3d")],
                thresholds=steps((GREEN, None), (YELLOW, 1), (RED, min(burn for burn, _, _ in slo.PAGE))),
            )
        )
    return panels


def predictive(svc: Service, source: str) -> list[dict[str, Any]]:
    """Forecast against actual (docs/predictive-scaling.md): the forecast drawn `lookahead` late, so
    each point sits at the time it was for; its error (above 0: scaled early or too far); and the
    capacity the running replicas have at the scaling target."""
    p = svc.scaling.predictive
    if p is None:
        return []
    sel = forecast.selector(svc)
    actual, made = f"{forecast.SIGNAL}{{{sel}}}", f"{forecast.FORECAST}{{{sel}}} offset {p.lookahead}"
    unit = "queue depth (messages)" if svc.scaling.sqs else "CPU (cores)"
    replicas = f'sum(kube_deployment_status_replicas_available{{namespace="{svc.team}", deployment=~"{svc.name}(-primary)?"}})'
    capacity = f"{replicas} * {scaling.target(svc) / forecast.unit_scale(svc):g}"
    return [
        panel(
            f"Forecast vs actual, {unit}",
            "short",
            source,
            [
                (actual, "actual"),
                (made, f"forecast made {p.lookahead} earlier"),
                (f"{forecast.FORECAST}{{{sel}}}", f"forecast for +{p.lookahead} (scaling on it now)"),
                (capacity, "capacity at target"),
            ],
        ),
        panel(f"Forecast error, {unit}", "short", source, [(f"{made} - {actual}", "forecast - actual")]),
        panel(
            "Forecast error, last day (weighted absolute %)",
            "percentunit",
            source,
            [(f"sum_over_time(abs({made} - {actual})[1d:1m]) / sum_over_time({actual}[1d:1m])", "error")],
            kind="stat",
            thresholds=steps((GREEN, None), (YELLOW, 0.25), (RED, 0.5)),
        ),
    ]


def dashboard(svc: Service, datasource_uid: str) -> dict[str, Any]:
    """The dashboard, its queries on the Prometheus datasource `datasource_uid`."""
    return grafana.dashboard(
        uid(svc),
        f"{svc.team} / {svc.name}",
        ["platform", "service", svc.team, svc.tier],
        golden_signals(svc, datasource_uid) + error_budgets(svc, datasource_uid) + predictive(svc, datasource_uid),
    )
