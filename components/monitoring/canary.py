"""A canaried service's release alerts: what happened to the release, said once, to the right people.

Flagger's `flagger_canary_status{name, namespace}` is 0 while an analysis runs (phase Progressing),
2 once it failed (rolled back) and 1 otherwise (initialised, promoted, waiting); the series keeps its
last value until the next run. `flagger_canary_weight{workload}` is the canary's share of traffic.

- CanaryRolledBack (warning: a ticket). The release missed its analysis and traffic is back on the
  primary: nothing is down. It stays open through the next run and is resolved by the next
  successful analysis (a status of 1), not by the next run starting: while a new run is in progress
  (status 0) the alert keeps itself firing through its own ALERTS series.
- CanaryStuck (critical: pages). An analysis neither promoted nor rolled back by the longest a run
  may take (progress deadline + every step with `threshold` failed checks; Canary.run_seconds):
  the release is frozen half-way, a share of users may still be on the canary.
- CanaryPrimaryNotReady (critical: pages). After a rollback, the primary (which now takes all the
  traffic) has fewer available replicas than it wants for 5 minutes: the rollback did not bring
  the service back.
"""

from __future__ import annotations

import math
from typing import Any

from components.spec import Service
from components.spec.alerting import AlertingSpec

from .rules import alert

ROLLED_BACK, STUCK, PRIMARY_NOT_READY = "CanaryRolledBack", "CanaryStuck", "CanaryPrimaryNotReady"
# Flagger's status values (pkg/metrics/recorder.go SetStatus).
RUNNING, FAILED = 0, 2
PRIMARY_GRACE = "5m"


def labels(svc: Service) -> dict[str, str]:
    return {"team": svc.team, "namespace": svc.team, "service": svc.name}


def status(svc: Service) -> str:
    return f'max by (namespace, name) (flagger_canary_status{{namespace="{svc.team}", name="{svc.name}"}})'


def stuck_for(svc: Service) -> str:
    """The longest a run may take, rounded up to whole minutes, plus one minute for the status scrape."""
    return f"{math.ceil(svc.canary.run_seconds / 60) + 1}m"


def alerts(svc: Service, alerting: AlertingSpec) -> list[dict[str, Any]]:
    own = f'alertname="{ROLLED_BACK}", alertstate="firing", namespace="{svc.team}", name="{svc.name}"'
    primary = f'namespace="{svc.team}", deployment="{svc.name}-primary"'
    c = svc.canary
    return [
        alert(
            alerting,
            ROLLED_BACK,
            f"{status(svc)} == {FAILED} or ({status(svc)} == {RUNNING} and on (namespace, name) max by (namespace, name) (ALERTS{{{own}}}))",
            "1m",
            "warning",
            f"{svc.team}/{svc.name}: the release was rolled back by its canary analysis",
            f"Flagger rolled {svc.name}'s new version back: it missed the analysis (success rate {c.success_rate}%, P99 "
            f"{c.max_latency_ms}ms, the smoke test, or readiness within {c.progress_deadline_seconds}s). Traffic is on the previous "
            "version. This ticket stays open until a release passes its analysis.",
            labels=labels(svc),
        ),
        alert(
            alerting,
            STUCK,
            f"{status(svc)} == {RUNNING}",
            stuck_for(svc),
            "critical",
            f"{svc.team}/{svc.name}: a canary analysis is stuck, neither promoted nor rolled back",
            f"{svc.name}'s analysis has run longer than any run can ({c.run_seconds}s: a {c.progress_deadline_seconds}s deadline and "
            f"{c.steps} steps of {c.interval_seconds}s with up to {c.threshold} failed checks). Part of the traffic may still reach the "
            "canary; Flagger is not acting on it.",
            labels=labels(svc),
        ),
        alert(
            alerting,
            PRIMARY_NOT_READY,
            f"(max by (namespace) (kube_deployment_spec_replicas{{{primary}}}) > max by (namespace) (kube_deployment_status_replicas_available{{{primary}}})) "
            f"and on (namespace) ({status(svc)} == {FAILED})",
            PRIMARY_GRACE,
            "critical",
            f"{svc.team}/{svc.name}: the primary is not ready after a rollback",
            f"Flagger rolled {svc.name} back, but {svc.name}-primary, which now takes all its traffic, has had fewer available "
            f"replicas than it wants for {PRIMARY_GRACE}: the rollback did not restore the service.",
            labels=labels(svc),
        ),
    ]


def rule_groups(svc: Service, alerting: AlertingSpec) -> list[dict[str, Any]]:
    return [{"name": f"{svc.name}-canary", "rules": alerts(svc, alerting)}]
