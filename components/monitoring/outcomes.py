"""The four outcomes as recording rules, on series as kube-state-metrics, Flagger, cAdvisor and Prometheus emit them.

- Deploys per day (`platform:deployments:count1d`): ReplicaSets created in a team namespace in the last
  day, each counted once whichever kube-state-metrics instance reported it (it restarts on spot nodes),
  less Flagger's promotions (`<name>-primary`: the same release again). Deleted ReplicaSets still count.
- Failed deploys, two rates:
  - canary rollbacks / canary runs over 7 days (`platform:change_failure:ratio7d`), from Flagger's
    counters, which are created at 1 on their first event and start again after a Flagger restart; a
    namespace with only successes, or only failures, keeps its rate; one with canaries and no run in the
    week has runs 0 and no rate (not NaN);
  - the true change failure rate (`platform:change_failure_revert:ratio7d`): serving changes (new
    ReplicaSets of a `-primary` or of a Deployment without canary) reverted within 24 h, by a revert or a
    redeploy of the previous image. Either way the Deployment goes back to its previous ReplicaSet (same
    pod template, same ReplicaSet): the newest ReplicaSet stands at 0 replicas while an older one serves.
- Rollback time (`platform:canary_rollback:seconds1h`): for each canary whose last run failed in the
  last hour, from its first failed check to all traffic back on the primary. The run is the canary's
  last stretch with traffic (weight > 0); a check fails when Flagger's last analysis value breaks the
  threshold the service declares (`platform:canary_analysis:*`, recorded by each service's rules); the
  value left from an earlier run is ignored until the run's first check has run. Canary exposure
  (`platform:canary_exposure:seconds1h`) is that run's time carrying traffic.
- Utilisation: CPU and memory in use, and requested, against what the nodes can allocate. A pod's
  request is what the scheduler reserves: its containers plus its native sidecars (init containers with
  `restartPolicy: Always`, Istio's proxy on Kubernetes 1.29+), or its largest other init container if
  that is more; only pods bound to a node and not finished (Pending or Running) count.
"""

from __future__ import annotations

from typing import Any

from components.spec import Service

from .promql import by_team, counted, deduplicated, stamp

DAY, WEEK = 86400, 7 * 86400
# A reverted change was replaced within this long; a newest ReplicaSet younger than SETTLE may still be scaling up.
REVERT_WITHIN, SETTLE = DAY, 600
# Subqueries over Flagger's gauges: the window and the step (Flagger's PodMonitor scrapes every 15s).
CANARY_WINDOW, CANARY_STEP = "1h", "5s"
FLAGGER_SCRAPE_SECONDS = 15
CANARY = "namespace, name"


def deployment_rules(ns: str) -> list[dict[str, Any]]:
    created_1d = deduplicated(f"max_over_time(kube_replicaset_created{{{ns}}}[1d])", "namespace, replicaset")
    promotions = deduplicated(f'max_over_time(kube_replicaset_owner{{{ns}, owner_kind="Deployment", owner_name=~".+-primary"}}[1d])', "namespace, replicaset")
    return [
        {
            "record": "platform:deployments:count1d",
            "expr": by_team(f"count by (namespace) (({created_1d} > time() - {DAY}) unless on (namespace, replicaset) {promotions})"),
        }
    ]


def serving(ns: str, window: str = "") -> str:
    """(namespace, replicaset, owner_name) of ReplicaSets owned by serving Deployments: primaries and
    Deployments without a canary (a canary's target `<name>` has a `<name>-primary`)."""
    over = (lambda s: f"max_over_time({s}[{window}])") if window else (lambda s: s)
    owners = deduplicated(over(f'kube_replicaset_owner{{{ns}, owner_kind="Deployment"}}'), "namespace, replicaset, owner_name")
    primaries = deduplicated(over(f'kube_deployment_created{{{ns}, deployment=~".+-primary"}}'), "namespace, deployment")
    targets = f'label_replace({primaries}, "owner_name", "$1", "deployment", "(.+)-primary")'
    return f"({owners} unless on (namespace, owner_name) {targets})"


def revert_rules(ns: str) -> list[dict[str, Any]]:
    created = deduplicated(f"kube_replicaset_created{{{ns}}}", "namespace, replicaset")
    replicas = deduplicated(f"kube_replicaset_spec_replicas{{{ns}}}", "namespace, replicaset")
    rs = "platform:serving_replicasets:created_timestamp"
    newest = f"({rs} == on (namespace, owner_name) group_left () max by (namespace, owner_name) ({rs}))"
    failed = f"((({newest} > time() - {REVERT_WITHIN}) < time() - {SETTLE}) and on (namespace, replicaset) ({replicas} == 0))"
    older_serving = f"(({rs} unless on (namespace, replicaset) {newest}) and on (namespace, replicaset) ({replicas} > 0))"
    created_7d = deduplicated(f"max_over_time(kube_replicaset_created{{{ns}}}[7d])", "namespace, replicaset")
    changes = f"count by (namespace) (({created_7d} > time() - {WEEK}) and on (namespace, replicaset) {serving(ns, '7d')})"
    reverts = "count by (namespace) (max by (namespace, replicaset) (max_over_time(platform:deployment_reverts:active[7d])))"
    return [
        # The creation time of each serving ReplicaSet, with its Deployment (owner_name).
        {"record": rs, "expr": f"{created} * on (namespace, replicaset) group_left (owner_name) {serving(ns)}"},
        # 1 per reverted ReplicaSet (the change that failed), while the previous one serves in its place.
        {"record": "platform:deployment_reverts:active", "expr": f"({failed} and on (namespace, owner_name) {older_serving}) * 0 + 1"},
        {"record": "platform:deployment_changes:count7d", "expr": by_team(changes)},
        {"record": "platform:deployment_reverts:count7d", "expr": by_team(reverts) + " or platform:deployment_changes:count7d * 0"},
        {"record": "platform:change_failure_revert:ratio7d", "expr": "platform:deployment_reverts:count7d / (platform:deployment_changes:count7d > 0)"},
    ]


def canary_count_rules(ns: str) -> list[dict[str, Any]]:
    successes = counted(f'flagger_canary_successes_total{{{ns}, analysis_status="completed"}}', "7d")
    failures = counted(f"flagger_canary_failures_total{{{ns}}}", "7d")
    # Both outcomes in one sum: a namespace with only one kind of outcome keeps its runs.
    outcomes = f'label_replace({successes}, "outcome", "success", "", "") or label_replace({failures}, "outcome", "failure", "", "")'
    # Namespaces with canaries (Flagger's gauge of canaries per namespace) and no run this week: 0 runs.
    idle = by_team(f"max by (namespace) (flagger_canary_total{{{ns}}}) * 0")
    return [
        {"record": "platform:canary_runs:increase7d", "expr": f"{by_team(f'sum by (namespace) ({outcomes})')} or {idle}"},
        {"record": "platform:canary_rollbacks:increase7d", "expr": f"{by_team(f'sum by (namespace) ({failures})')} or platform:canary_runs:increase7d * 0"},
        {"record": "platform:change_failure:ratio7d", "expr": "platform:canary_rollbacks:increase7d / (platform:canary_runs:increase7d > 0)"},
    ]


def _over(func: str, expr: str, at_end: bool = False) -> str:
    return f"{func}(({expr})[{CANARY_WINDOW}:{CANARY_STEP}]{' @ end()' if at_end else ''})"


def canary_timing_rules(ns: str) -> list[dict[str, Any]]:
    weight = deduplicated(f'label_replace(flagger_canary_weight{{{ns}, workload!~".+-primary"}}, "name", "$1", "workload", "(.+)")', CANARY)
    analysis = lambda metric: deduplicated(f'flagger_canary_metric_analysis{{{ns}, metric="{metric}"}}', f"{CANARY}, metric")
    failing = (
        f"({analysis('request-success-rate')} < on ({CANARY}) group_left () platform:canary_analysis:min_success_rate) "
        f"or ({analysis('request-duration')} > on ({CANARY}) group_left () platform:canary_analysis:max_duration_seconds)"
    )
    # The run: the canary's last stretch with traffic, between the last steps at weight 0 before and after it.
    # Its start is recorded first: a subquery may read a value fixed at the evaluation time (`@ end()`) only one level deep.
    last_exposed = _over("max_over_time", stamp(f"{weight} > 0"), at_end=True)
    start = "platform:canary_run:start_timestamp"
    back_on_primary = _over("min_over_time", f"{stamp(f'{weight} == 0')} > on ({CANARY}) {last_exposed}")
    # A check counts once the run's first analysis has had time to replace the value an earlier run left.
    first_check = f"(({start} @ end()) + on ({CANARY}) (platform:canary_analysis:interval_seconds @ end()) + {FLAGGER_SCRAPE_SECONDS})"
    first_failed = _over("min_over_time", f"{stamp(f'max by ({CANARY}) ({failing})')} > on ({CANARY}) {first_check}")
    failed = f"(max by ({CANARY}) (flagger_canary_status{{{ns}}}) == 2)"
    return [
        {"record": start, "expr": _over("max_over_time", f"{stamp(f'{weight} == 0')} < on ({CANARY}) {last_exposed}")},
        {"record": "platform:canary_rollback:seconds1h", "expr": by_team(f"(({back_on_primary} - on ({CANARY}) {first_failed}) and on ({CANARY}) {failed})")},
        {
            "record": "platform:canary_exposure:seconds1h",
            "expr": by_team(f"(({_over('max_over_time', stamp(f'{weight} > 0'))} - on ({CANARY}) {start}) and on ({CANARY}) {failed})"),
        },
    ]


def canary_analysis_rules(svc: Service) -> dict[str, Any]:
    """A canaried service's analysis thresholds as series (the delivery rules read them): Flagger's analysis
    gauge holds the success rate in percent and the request duration in seconds."""
    c = svc.canary
    labels = {"namespace": svc.team, "name": svc.name, "team": svc.team}
    values = {"min_success_rate": c.success_rate, "max_duration_seconds": c.max_latency_ms / 1000, "interval_seconds": c.interval_seconds}
    return {
        "name": f"{svc.name}-canary-analysis",
        "rules": [{"record": f"platform:canary_analysis:{k}", "expr": f"vector({v:g})", "labels": labels} for k, v in values.items()],
    }


def detection_rules() -> list[dict[str, Any]]:
    keys = "alertname, namespace, service, team"
    firing = f'max by ({keys}) (ALERTS{{alertstate="firing", service!=""}})'
    active_since = f'max by ({keys}) (ALERTS_FOR_STATE{{service!=""}})'
    at_end = f'max by ({keys}) (ALERTS_FOR_STATE{{service!=""}} @ end())'
    first_firing = f"min_over_time(({stamp(firing)} >= on ({keys}) {at_end})[1h:15s])"
    return [
        # While a service alert fires: from its condition first holding (ALERTS_FOR_STATE) to its first firing evaluation.
        {"record": "platform:alert_detection:seconds", "expr": f"({first_firing} - on ({keys}) {active_since}) and on ({keys}) {firing}"},
        {
            "record": "platform:alertmanager_notification_latency:p99",
            "expr": "histogram_quantile(0.99, sum by (le, integration) (rate(alertmanager_notification_latency_seconds_bucket[1h])))",
        },
    ]


def pod_requests(resource: str) -> str:
    """Per (namespace, pod) bound to a node and not finished, what the scheduler reserves for `resource`."""
    pod, ctr = "namespace, pod", "namespace, pod, container"
    bound = f'{{resource="{resource}", node!=""}}'
    app = f"sum by ({pod}) ({deduplicated(f'kube_pod_container_resource_requests{bound}', ctr)})"
    init = deduplicated(f"kube_pod_init_container_resource_requests{bound}", ctr)
    native = deduplicated('kube_pod_init_container_info{restart_policy="Always"}', ctr)
    sidecars = f"sum by ({pod}) ({init} and on ({ctr}) {native})"
    init_max = f"max by ({pod}) ({init} unless on ({ctr}) {native})"
    main = f"(({app} > on ({pod}) {init_max}) or on ({pod}) {init_max} or {app})"
    live = f'(max by ({pod}) (kube_pod_status_phase{{phase=~"Pending|Running"}}) == 1)'
    return f"(({main} + on ({pod}) ({sidecars} or {main} * 0)) and on ({pod}) {live})"


def utilisation_rules() -> list[dict[str, Any]]:
    usage = {
        "cpu": 'sum(rate(container_cpu_usage_seconds_total{container!="", image!=""}[5m]))',
        "memory": 'sum(container_memory_working_set_bytes{container!="", image!=""})',
    }
    found = []
    for resource, used in usage.items():
        node = deduplicated(f'kube_node_status_allocatable{{resource="{resource}"}}', "node")
        allocatable = f"sum({node})"
        found += [
            {"record": f"platform:cluster_{resource}_usage:ratio", "expr": f"{used} / {allocatable}"},
            {"record": f"platform:cluster_{resource}_requests:ratio", "expr": f"sum({pod_requests(resource)}) / {allocatable}"},
        ]
    return found
