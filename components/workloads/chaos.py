"""Scheduled chaos experiments for a critical service (non-prod stacks with the chaos-mesh addon).

Two chaos-mesh.org/v1alpha1 Schedules in the service's namespace:
- `<service>-pod-kill`: a PodChaos killing one of its pods (primary or canary alike: both carry
  the platform.io/service label), so its PodDisruptionBudget, readiness and the replacement's
  start-up are exercised;
- `<service>-latency`: a NetworkChaos delaying one pod's traffic *to* the pods of the services it
  depends on (`target`), so its timeouts, retries, latency alert and canary thresholds see slow
  dependencies. A service without dependencies gets the pod kill only.
The schedules are offset by half an interval so the two faults never overlap; concurrencyPolicy
Forbid keeps a slow run from stacking on the next.

In a staging stack the same faults run as one Chaos Mesh Workflow per critical service, scheduled as
`<service>-chaos-gate`, and its success for the running image is a promotion gate (docs/delivery.md):
the faults run in series while a StatusCheck watches the service's SLO, and abortWithStatusCheck
stops the faults as soon as the check fails. Chaos Mesh's HTTP status check judges only the status
code, so the check asks Prometheus a query that returns nothing (200) while the service is within
its page burn rate and fails to evaluate (422: two series end up with one label set) once it is
not; tests/test_promotion_gate.py runs that query on a real Prometheus. Each run is a Workflow
labelled `managed-by: <service>-chaos-gate` (Chaos Mesh's label for what a Schedule spawns).
"""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import quote

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import ChaosExperiments
from components.monitoring import slo
from components.spec import Service

from .pod import SERVICE_LABEL, labels

HISTORY_LIMIT = 5
# A run missed by more than this (controller down) is skipped rather than fired late.
STARTING_DEADLINE_SECONDS = 300


def schedules(svc: Service, services: dict[str, Service], s: ChaosExperiments) -> dict[str, dict[str, Any]]:
    """Schedule name -> spec for one critical service."""
    own = {"namespaces": [svc.team], "labelSelectors": {SERVICE_LABEL: svc.name}}
    common = {"historyLimit": HISTORY_LIMIT, "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": STARTING_DEADLINE_SECONDS}
    found = {
        f"{svc.name}-pod-kill": {
            **common,
            "schedule": f"0 */{s.every_hours} * * *",
            "type": "PodChaos",
            "podChaos": {"action": "pod-kill", "mode": "one", "selector": own},
        }
    }
    deps = [services[d] for d in svc.depends_on]
    if deps:
        found[f"{svc.name}-latency"] = {
            **common,
            "schedule": f"30 */{s.every_hours} * * *",
            "type": "NetworkChaos",
            "networkChaos": {
                "action": "delay",
                "mode": "one",
                "selector": own,
                "direction": "to",
                "target": {
                    "mode": "all",
                    "selector": {
                        "namespaces": sorted({d.team for d in deps}),
                        "expressionSelectors": [{"key": SERVICE_LABEL, "operator": "In", "values": sorted(d.name for d in deps)}],
                    },
                },
                "delay": {"latency": f"{s.latency_ms}ms", "jitter": f"{s.latency_ms // 4}ms", "correlation": "25"},
                "duration": f"{s.latency_minutes}m",
            },
        }
    return found


# The page burn rate (the SLO alerts' fast burn): a service burning faster under fault fails the gate.
GATE_BURN = slo.PAGE[0][0]
CHECK_INTERVAL_SECONDS, CHECK_FAILURES = 15, 2
POD_KILL_MINUTES = 2


def gate_name(svc: Service) -> str:
    return f"{svc.name}-chaos-gate"


def slo_breach_query(svc: Service) -> str:
    """Empty while both 5-minute SLIs are under the page burn rate; an evaluation error otherwise
    (two series relabelled to the same label set), which Prometheus answers with HTTP 422."""
    burning = " or ".join(f"{slo.record(o, '5m')}{{{slo.selector(svc, o)}}} > {GATE_BURN} * {svc.slo.budget(o)}" for o in slo.OBJECTIVES)
    pair = 'label_replace(vector(1), "probe", "a", "", "") or label_replace(vector(1), "probe", "b", "", "")'
    return f'label_replace(({pair}) and on () ({burning}), "probe", "", "", "")'


def gate_workflow(svc: Service, faults: dict[str, dict[str, Any]], s: ChaosExperiments, prometheus_url: str) -> dict[str, Any]:
    """The Workflow spec: the service's faults in series, beside a continuous SLO check that aborts them."""
    minutes = POD_KILL_MINUTES + (s.latency_minutes if len(faults) > 1 else 0)
    steps = []
    for name, schedule in faults.items():
        kind = schedule["type"]
        key = kind[0].lower() + kind[1:]
        # In a workflow a step lasts until its deadline (the experiment's own duration is not used there).
        fault = {k: v for k, v in schedule[key].items() if k != "duration"}
        duration = f"{POD_KILL_MINUTES}m" if kind == "PodChaos" else schedule[key]["duration"]
        steps.append({"name": name, "templateType": kind, "deadline": duration, key: fault})
    check = {
        "name": "slo",
        "templateType": "StatusCheck",
        "deadline": f"{minutes}m",
        "abortWithStatusCheck": True,
        "statusCheck": {
            "mode": "Continuous",
            "type": "HTTP",
            "intervalSeconds": CHECK_INTERVAL_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": CHECK_FAILURES,
            "successThreshold": 1,
            "http": {"url": f"{prometheus_url}/api/v1/query?query={quote(slo_breach_query(svc), safe='')}", "method": "GET", "criteria": {"statusCode": "200"}},
        },
    }
    templates = [
        {"name": "gate", "templateType": "Parallel", "deadline": f"{minutes + 1}m", "children": ["faults", "slo"]},
        {"name": "faults", "templateType": "Serial", "deadline": f"{minutes}m", "children": list(faults)},
        *steps,
        check,
    ]
    return {"entry": "gate", "templates": templates}


class ChaosSchedules(pulumi.ComponentResource):
    """The experiments of one critical service, in its team's namespace."""

    def __init__(
        self,
        svc: Service,
        services: dict[str, Service],
        settings: ChaosExperiments,
        api_version: str,
        environment: str,
        provider: k8s.Provider,
        namespace: Optional[pulumi.Resource],
        opts: Optional[pulumi.ResourceOptions] = None,
        prometheus_url: Optional[str] = None,
    ):
        super().__init__("platform:workloads:ChaosSchedules", svc.name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[namespace] if namespace else [])
        found = schedules(svc, services, settings)
        if environment == "staging" and prometheus_url:
            # Staging: the faults run as the promotion gate's workflow, every few hours.
            found = {
                gate_name(svc): {
                    "historyLimit": HISTORY_LIMIT,
                    "concurrencyPolicy": "Forbid",
                    "startingDeadlineSeconds": STARTING_DEADLINE_SECONDS,
                    "schedule": f"15 */{settings.every_hours} * * *",
                    "type": "Workflow",
                    "workflow": gate_workflow(svc, found, settings, prometheus_url),
                }
            }
        for name, spec in found.items():
            k8s.apiextensions.CustomResource(
                f"{name}-schedule",
                api_version=api_version,
                kind="Schedule",
                metadata={"name": name, "namespace": svc.team, "labels": labels(svc, environment)},
                spec=spec,
                opts=child,
            )
        self.register_outputs({"service": svc.name})
