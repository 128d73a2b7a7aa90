"""The platform's own alert rules, and the one shape every alert the program renders takes.

Every alert is actionable: a `severity` label (critical pages, warning opens a ticket), a
`summary`, a `description` and a `runbook_url` to docs/runbooks/<alert>.md in this repository,
addressed through the stack's `alerting.repositoryUrl`. Alerts about a service keep `team`,
`namespace` and `service` through their aggregations, so Alertmanager routes them as they fire.

The chart's own alerts (defaultRules) stay on, crash-loop detection (KubePodCrashLooping) included;
they link to the upstream runbooks the chart sets. That one is a warning; a crash loop of a critical-tier
service pages its team through ServiceCrashLooping.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from components.spec import Service
from components.spec.alerting import AlertingSpec

from .promql import counted

Severity = Literal["critical", "warning"]
# What Karpenter records in karpenter_nodeclaims_disrupted_total{reason} when it deletes a NodeClaim on an
# interruption message (the message's kind). A NodeClaim Karpenter is already deleting (its own consolidation,
# drift, expiry: reasons underutilized, empty, drifted, expired) is not counted again when EC2 then reports
# the instance terminated.
INTERRUPTION_REASONS = (
    "spot_interrupted",
    "scheduled_change",
    "instance_stopped",
    "instance_terminated",
    "capacity_reservation_interrupted",
    "instance_status",
    "system_status",
    "event_status",
)
# A crash loop under the kubelet's back-off (10 s doubling to 5 min): at least this many restarts in the
# window, which the 5-minute cap still gives, while the container waits in CrashLoopBackOff.
CRASH_LOOP_RESTARTS, CRASH_LOOP_WINDOW = 3, "20m"


def alert(
    alerting: AlertingSpec,
    name: str,
    expr: str,
    for_: str,
    severity: Severity,
    summary: str,
    description: str,
    labels: Optional[dict[str, str]] = None,
    runbook: Optional[str] = None,
) -> dict[str, Any]:
    """An alert whose runbook is docs/runbooks/<runbook or the alert's name>.md (a page may serve several alerts)."""
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, **(labels or {})},
        "annotations": {"summary": summary, "description": description, "runbook_url": alerting.runbook(runbook or name)},
    }


def zero_trust_rules(alerting: AlertingSpec, external_dns: bool, istio_cni: bool) -> list[dict[str, Any]]:
    """The alerts of the networking addons, when they are on: stale public records, and nodes where
    meshed pods cannot start because the CNI agent is missing."""
    platform = {"team": alerting.platform_team}
    found = []
    if external_dns:
        found.append(
            alert(
                alerting,
                "ExternalDnsSyncStale",
                "time() - max(external_dns_controller_last_sync_timestamp_seconds) > 900",
                "5m",
                "warning",
                "ExternalDNS has not synced the public records for over 15 minutes",
                "The exposed hosts' Route 53 records are no longer reconciled: a new or moved host gets no record "
                "until ExternalDNS syncs again (Route 53 errors, its Pod Identity role, or its Pod is down).",
                labels=platform,
            )
        )
    if istio_cni:
        found.append(
            alert(
                alerting,
                "IstioCniAgentUnavailable",
                'max(kube_daemonset_status_number_unavailable{namespace="istio-cni", daemonset="istio-cni-node"}) > 0',
                "15m",
                "critical",
                "The Istio CNI agent is unavailable on {{ $value }} node(s)",
                "Meshed pods scheduled on a node without the CNI agent fail their istio-validation init container and cannot start there.",
                labels=platform,
            )
        )
    return found


def platform_rules(alerting: AlertingSpec) -> list[dict[str, Any]]:
    interruptions = f'karpenter_nodeclaims_disrupted_total{{reason=~"{"|".join(INTERRUPTION_REASONS)}"}}'
    return [
        # The design document's restart alert, verbatim. No team label: the namespace routes it to the team that owns the pod.
        alert(
            alerting,
            "HighPodRestartRate",
            "sum(rate(kube_pod_container_status_restarts_total[5m])) by (namespace, pod) > 0.5",
            "10m",
            "critical",
            "Pod {{ $labels.namespace }}/{{ $labels.pod }} is restarting too often",
            "The containers of {{ $labels.pod }} in {{ $labels.namespace }} together restarted more than 0.5 times per second "
            "over 5 minutes, for 10 minutes. The kubelet's crash-loop back-off keeps one container well below that rate, so "
            "this is a storm across many containers; single crash loops are KubePodCrashLooping's (see the runbook).",
        ),
        alert(
            alerting,
            "KarpenterInterruptions",
            # counted(): the counter is created at 1 by the first interruption after a Karpenter restart.
            f"sum by (reason, nodepool) ({counted(interruptions, '10m')}) > 0",
            "0m",
            "warning",
            "Karpenter replaced NodeClaims of pool {{ $labels.nodepool }} on {{ $labels.reason }} interruptions",
            "In the last 10 minutes EC2 reported {{ $labels.reason }} for instances of NodePool {{ $labels.nodepool }}, and "
            "Karpenter drained and replaced them. Many at once mean spot capacity is scarce in the pool's instance types.",
            labels={"team": alerting.platform_team},
        ),
    ]


def crash_loop_alert(svc: Service, alerting: AlertingSpec) -> dict[str, Any]:
    """A critical-tier service's container in a crash loop pages its team. The restart count comes from
    kube-state-metrics (one series per instance; a restart of it starts new series at the same count), so
    the restarts in the window are the highest count seen less the lowest, over every instance."""
    where = f'namespace="{svc.team}", container="{svc.name}"'
    by = "namespace, pod, container"
    restarts = f"kube_pod_container_status_restarts_total{{{where}}}"
    window = CRASH_LOOP_WINDOW
    waiting = f'max by ({by}) (max_over_time(kube_pod_container_status_waiting_reason{{{where}, reason="CrashLoopBackOff"}}[10m])) == 1'
    return alert(
        alerting,
        "ServiceCrashLooping",
        f"(max by ({by}) (max_over_time({restarts}[{window}])) - min by ({by}) (min_over_time({restarts}[{window}])) >= {CRASH_LOOP_RESTARTS}) "
        f"and on ({by}) ({waiting})",
        "5m",
        "critical",
        f"{svc.name} is crash looping in pod {{{{ $labels.pod }}}}",
        f"Container {svc.name} of pod {{{{ $labels.pod }}}} restarted at least {CRASH_LOOP_RESTARTS} times in {window} and waits in "
        f"CrashLoopBackOff: the critical-tier service {svc.name} runs short of replicas.",
        labels={"team": svc.team, "namespace": svc.team, "service": svc.name},
    )
