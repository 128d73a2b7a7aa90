"""The forecast a predictive service scales on (`scaling.predictive`): recording rules per service.

`service:scaling_signal:value` is the load the service scales on now, in the unit of its target:
- CPU (no `scaling.sqs`): the cores its containers use, from the kubelet's cAdvisor (the same
  containers the dashboard shows; a canary's primary and canary pods both run a container named
  after the service). The target per replica is `CPU_UTILIZATION`% of the declared request, the
  request kube-state-metrics reports.
- a queue (`scaling.sqs`): the depth KEDA's SQS scaler reads, as the KEDA operator exports it
  (`keda_scaler_metrics_value`, trigger `current`). The chart's ServiceMonitor does not honour the
  metric's own `namespace`, so the ScaledObject's namespace is `exported_namespace`; a read that
  failed past the fallback threshold is exported as -1 and is not load.

`service:scaling_signal:forecast` is the load `lookahead` from now: the larger of the linear trend
over `trendWindow` (predict_linear) and last season's load at that time (the signal
`seasonality - lookahead` ago), never below zero. No data last season: the trend alone. The trend
only over a full window (a signal back from a gap has last season alone until then). No current
signal: no forecast at all, so KEDA's trigger finds nothing and scales on the current signal.
Plain PromQL that Prometheus 3 evaluates without feature flags.
"""

from __future__ import annotations

from typing import Any

from .rules import alert

from components.spec import Service
from components.spec.alerting import AlertingSpec
from components.spec.scaling import Predictive, prometheus_duration

SIGNAL = "service:scaling_signal:value"
FORECAST = "service:scaling_signal:forecast"
# The HPA's target (percent of the CPU request per replica), kept by the predictive ScaledObject.
CPU_UTILIZATION = 70
# Enough samples for a rate at the kubelet's 30s scrape interval, short enough to follow a ramp.
CPU_RATE_WINDOW = "2m"
# The ScaledObject's trigger names, also the `scaler` label KEDA exports them with.
CURRENT, PREDICTED = "current", "forecast"
KEY = ("team", "namespace", "service")
DEGRADED_ALERT = "PredictiveScalingDegraded"


def predictive(svc: Service) -> Predictive:
    if svc.scaling.predictive is None:
        raise ValueError(f"service {svc.name} does not declare scaling.predictive")
    return svc.scaling.predictive


def labels(svc: Service) -> dict[str, str]:
    return {"team": svc.team, "namespace": svc.team, "service": svc.name}


def selector(svc: Service) -> str:
    return f'namespace="{svc.team}", service="{svc.name}"'


def signal(svc: Service) -> str:
    """The raw expression of the load the service scales on now (see the module's docstring)."""
    if svc.scaling.sqs is not None:
        so = f'exported_namespace="{svc.team}", scaledObject=~"{svc.name}(-primary)?", scaler="{CURRENT}", type="scaledobject"'
        return f"max(keda_scaler_metrics_value{{{so}}} >= 0)"
    return f'sum(rate(container_cpu_usage_seconds_total{{namespace="{svc.team}", container="{svc.name}"}}[{CPU_RATE_WINDOW}]))'


def forecast(svc: Service) -> str:
    p = predictive(svc)
    current = f"{SIGNAL}{{{selector(svc)}}}"
    by = ", ".join(KEY)
    # A slope from the first few samples after a gap is noise: the trend waits for a full window.
    trend = f"predict_linear({current}[{p.trend_window}], {p.lookahead_seconds}) and on ({by}) {current} offset {p.trend_window}"
    season = f"{current} offset {prometheus_duration(p.seasonality_seconds - p.lookahead_seconds)}"
    # The two parts get a label each so `or` keeps both; max() then picks the larger per service.
    parts = f'label_replace({trend}, "part", "trend", "", "") or label_replace({season}, "part", "season", "", "")'
    return f"clamp_min(max by ({by}) ({parts}), 0) and on ({by}) {current}"


def degraded(svc: Service) -> str:
    """Triggers KEDA has given up on: past the fallback threshold, the operator exports a failed
    trigger's value as -1 (the formula's nil). Errors stop counting then, so the value is the sign.
    With a canary, the primary's ScaledObject scales; the target's is paused by Flagger."""
    so = f'exported_namespace="{svc.team}", scaledObject=~"{svc.name}(-primary)?", scaler=~"{CURRENT}|{PREDICTED}", type="scaledobject"'
    return f"max by (scaler) (keda_scaler_metrics_value{{{so}}}) < 0"


def rule_groups(svc: Service, alerting: AlertingSpec) -> list[dict[str, Any]]:
    return [
        {
            "name": f"{svc.name}-forecast",
            "rules": [
                {"record": SIGNAL, "expr": signal(svc), "labels": labels(svc)},
                {"record": FORECAST, "expr": forecast(svc), "labels": labels(svc)},
                alert(
                    alerting,
                    DEGRADED_ALERT,
                    degraded(svc),
                    "15m",
                    "warning",
                    f"{svc.team}/{svc.name} scales without its {{{{ $labels.scaler }}}} signal",
                    f"KEDA has not read the `{{{{ $labels.scaler }}}}` trigger of {svc.name}'s ScaledObject for 15 minutes and scales "
                    "without it: without `forecast` on the current signal alone (no longer ahead of the load); without `current` on "
                    "the forecast, or at replicas.min when both are gone.",
                    labels=labels(svc),
                ),
            ],
        }
    ]


def unit_scale(svc: Service) -> int:
    """KEDA's composite target must be a whole number: CPU is compared in millicores."""
    return 1 if svc.scaling.sqs is not None else 1000


def query(svc: Service, record: str) -> str:
    """What a Prometheus trigger asks: one value, in the target's unit."""
    scale = unit_scale(svc)
    return f"{scale} * max({record}{{{selector(svc)}}})" if scale != 1 else f"max({record}{{{selector(svc)}}})"
