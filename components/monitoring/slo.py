"""A service's objectives compiled into recording rules and burn-rate alerts (Google SRE workbook,
"Alerting on SLOs": multiwindow, multi-burn-rate).

Two SLIs from the Envoy sidecars, as the destination reports them: the share of requests answered
with a 5xx (availability) and the share slower than the objective's threshold (latency, counted
from the histogram bucket at that bound). Each is recorded over the windows the alerts need, with
`team`, `namespace`, `service` and `slo` as labels of the recorded series, so every alert built on
them carries them. Budget = 1 - objective over 30 days.

- Page (critical, whatever the tier): 2% of the month's budget in 1 hour (burn 14.4, 1h and 5m
  windows) or 5% in 6 hours (burn 6, 6h and 30m).
- Ticket (warning): 10% in 3 days (burn 1, 3d and 6h) or 10% in a day at burn 3 (1d and 2h).
The short window makes the alert stop soon after the burn does.
"""

from __future__ import annotations

from typing import Any

from components.spec import Service
from components.spec.alerting import AlertingSpec

from .rules import Severity, alert

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# The SLO period: the budget left is the 5-minute ratio averaged over it (no 30-day rate on raw series).
BUDGET_WINDOW = "30d"
# (burn rate, long window, short window); each alert is (severity, its burns, for).
PAGE = ((14.4, "1h", "5m"), (6, "6h", "30m"))
TICKET = ((3, "1d", "2h"), (1, "3d", "6h"))
BURNS: tuple[tuple[Severity, Any, str], ...] = (("critical", PAGE, "2m"), ("warning", TICKET, "15m"))
# A fast burn pages, a slow burn opens a ticket: two alerts, so each has its own runbook and is tested on its own.
ALERTS = {
    "availability": {"critical": "ServiceErrorBudgetFastBurn", "warning": "ServiceErrorBudgetSlowBurn"},
    "latency": {"critical": "ServiceLatencyBudgetFastBurn", "warning": "ServiceLatencyBudgetSlowBurn"},
}
OBJECTIVES = tuple(ALERTS)


def workload(svc: Service) -> str:
    """The service's requests as their destination reports them: with a canary, Flagger's primary and
    canary Deployments (`<name>-primary`, `<name>`) serve the traffic."""
    return f'reporter="destination", destination_workload_namespace="{svc.team}", destination_workload=~"{svc.name}(-primary)?"'


def record(objective: str, window: str) -> str:
    return f"slo:sli_error:ratio_rate{window}" if objective == "availability" else f"slo:sli_latency_error:ratio_rate{window}"


def sli(svc: Service, objective: str, window: str) -> str:
    sel = workload(svc)
    # No traffic in the window gives no ratio (not NaN, which would poison the 30-day average);
    # no 5xx series yet (Envoy creates one at the first 5xx) gives 0.
    if objective == "availability":
        return (
            f'(sum(rate(istio_requests_total{{{sel}, response_code=~"5.."}}[{window}])) or vector(0)) '
            f"/ (sum(rate(istio_requests_total{{{sel}}}[{window}])) > 0)"
        )
    # Prometheus 3 writes bucket bounds as floats ("500.0"); older servers and exporters as "500".
    le = f'le=~"{svc.slo.latency_ms}(\\\\.0)?"'
    return (
        f"1 - sum(rate(istio_request_duration_milliseconds_bucket{{{sel}, {le}}}[{window}])) "
        f"/ (sum(rate(istio_request_duration_milliseconds_count{{{sel}}}[{window}])) > 0)"
    )


def labels(svc: Service, objective: str) -> dict[str, str]:
    return {"team": svc.team, "namespace": svc.team, "service": svc.name, "slo": objective}


def selector(svc: Service, objective: str) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in labels(svc, objective).items())


def burn_alerts(svc: Service, objective: str, alerting: AlertingSpec) -> list[dict[str, Any]]:
    budget = svc.slo.budget(objective)
    target = svc.slo.availability if objective == "availability" else svc.slo.latency_percent
    what = "requests fail (5xx)" if objective == "availability" else f"requests take longer than {svc.slo.latency_ms}ms"
    sel = selector(svc, objective)
    rules = []
    for severity, burns, for_ in BURNS:
        expr = " or ".join(
            f"({record(objective, long)}{{{sel}}} > {rate} * {budget} and {record(objective, short)}{{{sel}}} > {rate} * {budget})"
            for rate, long, short in burns
        )
        pace = "pages: the month's budget is gone in days at this rate" if severity == "critical" else "opens a ticket: the budget will not last the month"
        rules.append(
            alert(
                alerting,
                ALERTS[objective][severity],
                expr,
                for_,
                severity,
                f"{svc.team}/{svc.name}: {objective} error budget burning (objective {target}%)",
                f"Too many of {svc.name}'s {what}, against a budget of {budget:.4%} "
                f"(burn rates {', '.join(str(b[0]) for b in burns)} over {', '.join(f'{b[1]}/{b[2]}' for b in burns)}); this {pace}.",
                labels=labels(svc, objective),
            )
        )
    return rules


def rule_groups(svc: Service, alerting: AlertingSpec) -> list[dict[str, Any]]:
    recording = [{"record": record(o, w), "expr": sli(svc, o, w), "labels": labels(svc, o)} for o in OBJECTIVES for w in WINDOWS]
    recording += [{"record": record(o, BUDGET_WINDOW), "expr": f"avg_over_time({record(o, '5m')}{{{selector(svc, o)}}}[{BUDGET_WINDOW}])"} for o in OBJECTIVES]
    alerts = [a for o in OBJECTIVES for a in burn_alerts(svc, o, alerting)]
    return [{"name": f"{svc.name}-slo-sli", "rules": recording}, {"name": f"{svc.name}-slo-burn", "rules": alerts}]
