"""What owns a service's replica count: an HPA on CPU, or a KEDA ScaledObject (keda.sh/v1alpha1).

- CPU (the default): an HPA at CPU_UTILIZATION% of the request.
- `scaling.sqs`: a ScaledObject on the queue's depth (the operator's own AWS identity reads it).
- `scaling.predictive`, on either: a ScaledObject whose `advanced.scalingModifiers` formula scales
  on the larger of the current signal and its forecast (components/monitoring/forecast.py), both
  compared with one target per replica (AverageValue). A CPU service also keeps the HPA's own CPU
  trigger (resource metrics, no Prometheus involved), which the HPA KEDA makes combines with the
  formula's metric by taking the larger proposal.

Fallback (KEDA's `fallback.behavior: scalingModifiers`): a trigger that failed more than
FAILURE_THRESHOLD polls in a row is `nil` in the formula. Prometheus unreachable, or no forecast
(no recent data): `forecast ?? current` scales on the current signal alone. The current signal
gone: the forecast while there is one. Both gone: the formula is `nil` and KEDA asks for
`fallback.replicas`, the minimum (a CPU service
still scales on its CPU trigger; the HPA's scale-down stabilisation window keeps a short outage
from shrinking anything). Replica bounds are the declared ones, as with the HPA.
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi

from components.monitoring import forecast
from components.monitoring.forecast import CPU_UTILIZATION, CURRENT, PREDICTED
from components.spec import Service
from components.spec.quotas import cpu_millis

KEDA_API = "keda.sh/v1alpha1"
# Polls (KEDA's default pollingInterval, 30s) a trigger may fail before the formula treats it as missing.
FAILURE_THRESHOLD = 3
# The current signal, raised to the forecast when the forecast is there; nil when the signal is not.
FORMULA = f"{CURRENT} == nil ? {PREDICTED} : max({CURRENT}, {PREDICTED} ?? {CURRENT})"


# Turning `scaling.predictive` on replaces the HPA with a ScaledObject in one `pulumi up`, which
# creates the ScaledObject before it deletes the HPA; KEDA's admission webhook refuses a
# ScaledObject whose workload an HPA it does not own scales, unless that HPA opts out with this.
# The program never makes both for one Deployment; the overlap lasts until the update deletes the HPA.
HPA_ANNOTATIONS = {"validations.keda.sh/hpa-ownership": "false"}


def target(svc: Service) -> int:
    """The load one replica takes, in the signal's unit (messages, or millicores)."""
    if svc.scaling.sqs is not None:
        return svc.scaling.sqs.messages_per_replica
    assert svc.resources.requests.cpu is not None  # the model requires it
    return max(1, round(cpu_millis(svc.resources.requests.cpu) * CPU_UTILIZATION / 100))


def hpa_spec(svc: Service) -> dict[str, Any]:
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": svc.name},
        "minReplicas": svc.replicas.min,
        "maxReplicas": svc.replicas.max,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": CPU_UTILIZATION}}}],
    }


def sqs_trigger(svc: Service, queue_url: Any, region: str, auth: str) -> dict[str, Any]:
    assert svc.scaling.sqs is not None
    trigger = {
        "type": "aws-sqs-queue",
        "authenticationRef": {"name": auth},
        "metadata": {"queueURL": queue_url, "queueLength": str(svc.scaling.sqs.messages_per_replica), "awsRegion": region},
    }
    return {**trigger, "name": CURRENT} if svc.scaling.predictive else trigger


def prometheus_trigger(svc: Service, name: str, record: str, prometheus_url: str) -> dict[str, Any]:
    return {
        "type": "prometheus",
        "name": name,
        "metadata": {
            "serverAddress": prometheus_url,
            "query": forecast.query(svc, record),
            # Unused under the formula; but Flagger 1.44 copies the ScaledObject for a canary's primary with
            # KEDA types that predate scalingModifiers and fallback.behavior, and that copy scales on each
            # trigger alone, the HPA taking the largest: the same max(current, forecast) at this target.
            "threshold": str(target(svc)),
            # No result is an error, not 0: a missing forecast must count as missing (the fallback), never as no load.
            "ignoreNullValues": "false",
        },
    }


def queries(svc: Service) -> dict[str, str]:
    """The Prometheus triggers' queries by trigger name: service-wide, so the same for Flagger's primary ScaledObject."""
    found = {PREDICTED: forecast.query(svc, forecast.FORECAST)}
    if svc.scaling.sqs is None:
        found[CURRENT] = forecast.query(svc, forecast.SIGNAL)
    return dict(sorted(found.items()))


def scaled_object_spec(svc: Service, sqs: Optional[dict[str, Any]], prometheus_url: Optional[str]) -> dict[str, Any]:
    """`sqs`: the queue's trigger (sqs_trigger), for a queue worker; `prometheus_url`: where the forecast is, for a predictive one."""
    triggers = [sqs] if sqs is not None else []
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": svc.name},
        "minReplicaCount": svc.replicas.min,
        "maxReplicaCount": svc.replicas.max,
    }
    if svc.scaling.predictive is not None:
        if prometheus_url is None:
            raise ValueError(f"service {svc.name} declares scaling.predictive but the prometheus addon is off")
        if sqs is None:
            triggers += [
                {"type": "cpu", "metricType": "Utilization", "metadata": {"value": str(CPU_UTILIZATION)}},
                prometheus_trigger(svc, CURRENT, forecast.SIGNAL, prometheus_url),
            ]
        triggers.append(prometheus_trigger(svc, PREDICTED, forecast.FORECAST, prometheus_url))
        spec["fallback"] = {"failureThreshold": FAILURE_THRESHOLD, "replicas": svc.replicas.min, "behavior": "scalingModifiers"}
        spec["advanced"] = {"scalingModifiers": {"formula": FORMULA, "target": str(target(svc)), "metricType": "AverageValue"}}
    spec["triggers"] = triggers
    return spec


def autoscaler_ref(svc: Service, kind: str) -> dict[str, Any]:
    """Flagger's autoscalerRef. Flagger rewrites the service's name to `<name>-primary` in the queries of the
    primary's ScaledObject unless given them: the forecast is the service's, so they stay as they are."""
    ref: dict[str, Any] = {"apiVersion": "autoscaling/v2" if kind == "HorizontalPodAutoscaler" else KEDA_API, "kind": kind, "name": svc.name}
    if kind == "ScaledObject" and svc.scaling.predictive is not None:
        ref["primaryScalerQueries"] = queries(svc)
    return ref


def queue_url(region: str, account_id: Any, queue: str) -> pulumi.Output[str]:
    return pulumi.Output.concat(f"https://sqs.{region}.amazonaws.com/", account_id, f"/{queue}")
