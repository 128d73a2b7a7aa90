"""The "Delivery and efficiency" dashboard: the company's four outcomes against their targets, and the
rules that measure them (components/monitoring/outcomes.py says how each is measured).

Targets: 20 deploys a day, under 2% failed deploys, rollback under 60 s (the stack's
`policy.maxRollbackSeconds` bounds the declared worst case), utilisation in the 65-80% band. Each
outcome's panel draws its target as a line. Every series carries `team` where it is about a team (the
team's namespace is named after it).
"""

from __future__ import annotations

from typing import Any

from components.spec.stack import StackSpec

from . import outcomes
from .grafana import GREEN, RED, YELLOW, dashboard, panel, steps

UID = "platform-delivery"
TITLE = "Delivery and efficiency"
TARGET_DEPLOYS_PER_DAY = 20
TARGET_CHANGE_FAILURE = 0.02
TARGET_ROLLBACK_SECONDS = 60
UTILISATION_BAND = (0.65, 0.80)


def teams(spec: StackSpec) -> str:
    assert spec.alerting is not None  # the stack model requires it with the prometheus addon
    return "|".join(sorted(t for t in spec.teams if t != spec.alerting.platform_team))


def rules(spec: StackSpec) -> list[dict[str, Any]]:
    ns = f'namespace=~"{teams(spec)}"'
    recorded = outcomes.deployment_rules(ns) + outcomes.revert_rules(ns) + outcomes.canary_count_rules(ns) + outcomes.canary_timing_rules(ns)
    return [{"name": "platform-delivery", "interval": "1m", "rules": recorded + outcomes.detection_rules() + outcomes.utilisation_rules()}]


def panels(spec: StackSpec, source: str) -> list[dict[str, Any]]:
    low, high = UTILISATION_BAND
    band = steps((YELLOW, None), (GREEN, low), (RED, high))
    ratio = lambda num, den: f"sum({num}) / (sum({den}) > 0)"
    return [
        panel(
            f"Deploys per day (target {TARGET_DEPLOYS_PER_DAY})",
            "short",
            source,
            [("sum(platform:deployments:count1d) or vector(0)", "all teams")],
            thresholds=steps((RED, None), (GREEN, TARGET_DEPLOYS_PER_DAY)),
        ),
        panel("Deploys per day, by team", "short", source, [("sum by (team) (platform:deployments:count1d)", "{{team}}")]),
        panel(
            f"Failed deploys, 7 days (target under {TARGET_CHANGE_FAILURE:.0%})",
            "percentunit",
            source,
            [
                (ratio("platform:canary_rollbacks:increase7d", "platform:canary_runs:increase7d"), "canary rollbacks / canary runs"),
                (ratio("platform:deployment_reverts:count7d", "platform:deployment_changes:count7d"), "changes reverted within 24 h / changes"),
            ],
            threshold=TARGET_CHANGE_FAILURE,
        ),
        panel(
            "Failed deploys by team, 7 days",
            "percentunit",
            source,
            [("platform:change_failure:ratio7d", "{{team}} canary rollbacks"), ("platform:change_failure_revert:ratio7d", "{{team}} reverted")],
            threshold=TARGET_CHANGE_FAILURE,
        ),
        panel(
            f"Rollback time, first failed check to traffic on the primary (target under {TARGET_ROLLBACK_SECONDS} s)",
            "s",
            source,
            [("max by (team, name) (platform:canary_rollback:seconds1h)", "{{team}}/{{name}}")],
            threshold=TARGET_ROLLBACK_SECONDS,
        ),
        panel(
            "Canary exposure (failed canaries, seconds carrying traffic)",
            "s",
            source,
            [("max by (team, name) (platform:canary_exposure:seconds1h)", "{{team}}/{{name}}")],
        ),
        panel(
            "Time to detect (alert condition to firing; notification p99)",
            "s",
            source,
            [
                ("max by (alertname, team, service) (platform:alert_detection:seconds)", "{{team}}/{{service}} {{alertname}}"),
                ("max(platform:alertmanager_notification_latency:p99)", "notification p99"),
            ],
        ),
        panel(
            "CPU utilisation (target 65-80%)",
            "percentunit",
            source,
            [("platform:cluster_cpu_usage:ratio", "used"), ("platform:cluster_cpu_requests:ratio", "requested")],
            thresholds=band,
            style="line+area",
        ),
        panel(
            "Memory utilisation (target 65-80%)",
            "percentunit",
            source,
            [("platform:cluster_memory_usage:ratio", "used"), ("platform:cluster_memory_requests:ratio", "requested")],
            thresholds=band,
            style="line+area",
        ),
    ]


def delivery_dashboard(spec: StackSpec, datasource_uid: str) -> dict[str, Any]:
    """The dashboard, its queries on the Prometheus datasource `datasource_uid`."""
    return dashboard(UID, TITLE, ["platform", "delivery"], panels(spec, datasource_uid), time_from="now-7d")
