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
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import ChaosExperiments
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
    ):
        super().__init__("platform:workloads:ChaosSchedules", svc.name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[namespace] if namespace else [])
        for name, spec in schedules(svc, services, settings).items():
            k8s.apiextensions.CustomResource(
                f"{name}-schedule",
                api_version=api_version,
                kind="Schedule",
                metadata={"name": name, "namespace": svc.team, "labels": labels(svc, environment)},
                spec=spec,
                opts=child,
            )
        self.register_outputs({"service": svc.name})
