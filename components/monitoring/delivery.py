"""The platform's promised outcomes, measured: recording rules and the "Delivery and efficiency" dashboard.

- Deployments per day and team: ReplicaSets created in team namespaces in the last day. Each new
  version of a Deployment creates one; with a canary, Flagger's promotion also creates one for
  `<name>-primary`, which is left out so a release counts once. Series of ReplicaSets deleted since
  (revisionHistoryLimit) still count: the rule reads the whole day's samples.
- Change failure rate: canary rollbacks / canary runs (Flagger's failure and success counters), 7 days.
- Rollback duration: how long a canary that failed carried traffic (its weight above 0), which
  bounds detection plus rollback; the stack's policy caps the declared worst case (policy.maxRollbackSeconds).
- Time to detect: from a service alert's condition first holding to it firing, and Alertmanager's
  notification latency on top.
- Utilisation: CPU and memory in use, and requested, against what the nodes can allocate; the
  design's target band is 65-80%.
Every series carries `team` where it is about a team (the team's namespace is named after it).
"""

from __future__ import annotations

from typing import Any

from components.spec.stack import StackSpec

from .grafana import GREEN, RED, YELLOW, dashboard, panel, steps

UID = "platform-delivery"
TITLE = "Delivery and efficiency"
TARGET_DEPLOYS_PER_DAY = 20
TARGET_CHANGE_FAILURE = 0.02
UTILISATION_BAND = (0.65, 0.80)
DAY = 86400


def teams(spec: StackSpec) -> str:
    assert spec.alerting is not None  # the stack model requires it with the prometheus addon
    return "|".join(sorted(t for t in spec.teams if t != spec.alerting.platform_team))


def by_team(expr: str) -> str:
    return f'label_replace({expr}, "team", "$1", "namespace", "(.*)")'


def rules(spec: StackSpec) -> list[dict[str, Any]]:
    ns = f'namespace=~"{teams(spec)}"'
    created = f"max_over_time(kube_replicaset_created{{{ns}}}[1d]) > time() - {DAY}"
    promotions = f'max_over_time(kube_replicaset_owner{{{ns}, owner_kind="Deployment", owner_name=~".+-primary"}}[1d])'
    canary = lambda outcome, window: f"sum by (namespace) (increase(flagger_canary_{outcome}_total{{{ns}}}[{window}]))"
    usage = {
        "cpu": 'sum(rate(container_cpu_usage_seconds_total{container!="", image!=""}[5m]))',
        "memory": 'sum(container_memory_working_set_bytes{container!="", image!=""})',
    }
    recorded = [
        {"record": "platform:deployments:count1d", "expr": by_team(f"count by (namespace) (({created}) unless on (namespace, replicaset) {promotions})")},
        {"record": "platform:canary_runs:increase7d", "expr": by_team(f"{canary('successes', '7d')} + {canary('failures', '7d')}")},
        {"record": "platform:canary_rollbacks:increase7d", "expr": by_team(canary("failures", "7d"))},
        {"record": "platform:change_failure:ratio7d", "expr": "platform:canary_rollbacks:increase7d / platform:canary_runs:increase7d"},
        # Seconds in the last hour a canary carried traffic, kept for canaries whose last analysis failed.
        {
            "record": "platform:canary_rollback:seconds1h",
            "expr": by_team(
                'label_replace(sum_over_time((max by (namespace, workload) (flagger_canary_weight{workload!~".+-primary"}) > bool 0)[1h:10s]) * 10, '
                '"name", "$1", "workload", "(.*)") and on (namespace, name) (max by (namespace, name) (flagger_canary_status) == 2)'
            ),
        },
        # While a service alert fires: how long since its condition first held (ALERTS_FOR_STATE is that time).
        {
            "record": "platform:alert_detection:seconds",
            "expr": '(time() - max by (alertname, namespace, service, team) (ALERTS_FOR_STATE{service!=""})) '
            'and on (alertname, namespace, service, team) max by (alertname, namespace, service, team) (ALERTS{alertstate="firing", service!=""})',
        },
        {
            "record": "platform:alertmanager_notification_latency:p99",
            "expr": "histogram_quantile(0.99, sum by (le, integration) (rate(alertmanager_notification_latency_seconds_bucket[1h])))",
        },
    ]
    for resource, used in usage.items():
        allocatable = f'sum(kube_node_status_allocatable{{resource="{resource}"}})'
        recorded += [
            {"record": f"platform:cluster_{resource}_usage:ratio", "expr": f"{used} / {allocatable}"},
            {
                "record": f"platform:cluster_{resource}_requests:ratio",
                "expr": f'sum(kube_pod_container_resource_requests{{resource="{resource}"}}) / {allocatable}',
            },
        ]
    return [{"name": "platform-delivery", "interval": "1m", "rules": recorded}]


def panels(spec: StackSpec, source: str) -> list[dict[str, Any]]:
    low, high = UTILISATION_BAND
    band = steps((YELLOW, None), (GREEN, low), (RED, high))
    return [
        panel(
            "Deployments per day",
            "short",
            source,
            [("sum(platform:deployments:count1d)", "all teams")],
            kind="stat",
            thresholds=steps((YELLOW, None), (GREEN, TARGET_DEPLOYS_PER_DAY)),
        ),
        panel("Deployments per day, by team", "short", source, [("sum by (team) (platform:deployments:count1d)", "{{team}}")]),
        panel(
            "Change failure rate (7d)",
            "percentunit",
            source,
            [("sum(platform:canary_rollbacks:increase7d) / sum(platform:canary_runs:increase7d)", "all teams")],
            kind="stat",
            thresholds=steps((GREEN, None), (RED, TARGET_CHANGE_FAILURE)),
        ),
        panel("Change failure rate by team (7d)", "percentunit", source, [("platform:change_failure:ratio7d", "{{team}}")], threshold=TARGET_CHANGE_FAILURE),
        panel(
            "Rollback duration (failed canaries, seconds carrying traffic)",
            "s",
            source,
            [("max by (team, name) (platform:canary_rollback:seconds1h)", "{{team}}/{{name}}")],
            threshold=spec.policy.max_rollback_seconds,
        ),
        panel(
            "Time to detect",
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
