"""The platform's own alert rules, and the one shape every alert the program renders takes.

Every alert is actionable: a `severity` label (critical pages, warning opens a ticket), a
`summary`, a `description` and a `runbook_url` to docs/runbooks/<alert>.md in this repository,
addressed through the stack's `alerting.repositoryUrl`. Alerts about a service keep `team`,
`namespace` and `service` through their aggregations, so Alertmanager routes them as they fire.

The chart's own alerts (defaultRules) stay on, crash-loop detection (KubePodCrashLooping) included;
they link to the upstream runbooks the chart sets.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from components.spec.alerting import AlertingSpec

Severity = Literal["critical", "warning"]


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
            "sum(increase(karpenter_interruption_received_messages_total[10m])) by (message_type) > 0",
            "0m",
            "warning",
            "Karpenter received {{ $labels.message_type }} interruption events; nodes are being replaced",
            "EC2 sent {{ $labels.message_type }} messages in the last 10 minutes to the interruption queue; Karpenter "
            "drains and replaces the affected nodes. Many at once mean spot capacity is scarce in the pools' instance types.",
            labels={"team": alerting.platform_team},
        ),
    ]
