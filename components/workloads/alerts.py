"""Each service's SLO alerts, from its declaration: the error rate and p99 latency its canary is judged by.

Selected by workload, not service: with a canary, Flagger's primary and canary Deployments serve the
traffic, and both count.
"""

from __future__ import annotations

from typing import Any

from components.spec import Service


def slo_rules(svc: Service) -> dict[str, Any]:
    """The PrometheusRule spec: 5xx share above the error budget (critical for critical services),
    p99 latency above the canary's limit."""
    error_budget = round(1 - svc.canary.success_rate / 100, 6)
    workload = f'reporter="destination", destination_workload_namespace="{svc.team}", destination_workload=~"{svc.name}(-primary|-canary)?"'
    requests = f'istio_requests_total{{{workload}'
    return {"groups": [{"name": f"{svc.name}-slo", "rules": [
        {
            "alert": "ServiceErrorRateHigh",
            "expr": f'sum(rate({requests}, response_code=~"5.."}}[5m])) / sum(rate({requests}}}[5m])) > {error_budget}',
            "for": "5m",
            "labels": {"severity": "critical" if svc.tier == "critical" else "warning", "team": svc.team, "service": svc.name},
            "annotations": {"summary": f"{svc.name}: more than {error_budget:.4%} of requests fail (SLO {svc.canary.success_rate}%)"},
        },
        {
            "alert": "ServiceLatencyHigh",
            "expr": f'histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{{{workload}}}[5m])) by (le)) > {svc.canary.max_latency_ms}',
            "for": "10m",
            "labels": {"severity": "warning", "team": svc.team, "service": svc.name},
            "annotations": {"summary": f"{svc.name}: p99 latency above {svc.canary.max_latency_ms}ms"},
        },
    ]}]}
