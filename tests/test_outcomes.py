"""The four outcomes' recording rules, run by promtool on series shaped the way the exporters emit them:
the target labels (`job`, `instance`, `pod`), exporter restarts (new `instance` and `pod`, old series
stale), Flagger's counters born at 1, canaries with one kind of outcome or none, native sidecars,
finished and unscheduled pods. Each case also fails the rule it replaced (noted where it does)."""

from __future__ import annotations

from conftest import recorded
from monitoring import flagger, ksm, only, promtool_rules_test, series

MINUTE = 60


def delivery_groups(stack: str = "dev") -> list[dict]:
    return recorded(stack).manifest("PrometheusRule", "platform-delivery", "monitoring")["spec"]["groups"]


def sample(record: str, value: float, **labels: str) -> dict:
    return {"labels": record + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}", "value": value}


def team(ns: str) -> dict[str, str]:
    return {"namespace": ns, "team": ns}


def restarted(name: str, values: tuple[str, str], **labels: str) -> list[dict]:
    """The same object reported by kube-state-metrics before (replica 1) and after (replica 2) a restart."""
    return [ksm(name, 1, values[0], **labels), ksm(name, 2, values[1], **labels)]


# -- deploys per day -------------------------------------------------------------------------------
def test_deploys_are_counted_once_across_a_kube_state_metrics_restart(tmp_path):
    """kube-state-metrics restarts at minute 700: every ReplicaSet reappears with a new instance and pod.
    Counting series per namespace (the old rule) counts each of them twice."""
    rs = lambda ns, name, created: restarted("kube_replicaset_created", (f"{created}x700 stale", f"_x701 {created}x798"), namespace=ns, replicaset=name)
    owner = lambda ns, name, deployment: restarted(
        "kube_replicaset_owner",
        ("1x700 stale", "_x701 1x798"),
        namespace=ns,
        replicaset=name,
        owner_kind="Deployment",
        owner_name=deployment,
        owner_is_controller="true",
    )
    series_ = [
        *rs("checkout", "orders-5c8f7d9b6", 80000),
        *rs("checkout", "orders-6d9f8c7a1", 85000),
        # Flagger's promotion of the release to orders-primary: the same release, not counted again.
        *rs("checkout", "orders-primary-7b6c5d4e3", 86000),
        *owner("checkout", "orders-primary-7b6c5d4e3", "orders-primary"),
        # Deleted at minute 1000 (revision history limit): created within the day, counted.
        ksm("kube_replicaset_created", 2, "_x701 80500x298 stale", namespace="checkout", replicaset="orders-4a3b2c1d0"),
        *rs("web", "storefront-8e7f6a5b4", 88000),
        # Older than a day; and outside the team namespaces.
        *rs("catalog", "inventory-1a2b3c4d5", 1000),
        *rs("kube-system", "coredns-5d78c9869d", 89000),
    ]
    # Evaluated at minute 1500 (time() = 90000 s): the day starts at 3600 s.
    check = {
        "expr": "platform:deployments:count1d",
        "eval_time": "1500m",
        "exp_samples": [sample("platform:deployments:count1d", 3, **team("checkout")), sample("platform:deployments:count1d", 1, **team("web"))],
    }
    promtool_rules_test(
        tmp_path, only(delivery_groups(), "platform:deployments:count1d"), [{"interval": "1m", "input_series": series_, "promql_expr_test": [check]}]
    )


# -- failed deploys: canary rollbacks / runs ---------------------------------------------------------
def canary_counter(outcome: str, replica: int, values: str, ns: str, name: str, status: str = "completed") -> dict:
    return flagger(f"flagger_canary_{outcome}_total", replica, values, namespace=ns, name=name, deployment_strategy="canary", analysis_status=status)


def test_canary_rates_count_the_first_event_after_a_flagger_restart_and_every_namespace(tmp_path):
    """Flagger (replica 1) counts two promotions of orders, then restarts at minute 60; the new Flagger
    creates orders' failure counter at 1 on the first rollback (increase() sees nothing of it). web has only
    promotions, catalog has a canary and no run this week; a skipped analysis is no run."""
    series_ = [
        canary_counter("successes", 1, "_x10 1x19 2x29 stale", "checkout", "orders"),
        canary_counter("successes", 1, "_x20 1x39 stale", "checkout", "payment", status="skipped"),
        canary_counter("failures", 2, "_x70 1x59", "checkout", "orders"),
        canary_counter("successes", 2, "_x80 1x49", "web", "storefront"),
        *(flagger("flagger_canary_total", 2, "_x61 1x68", namespace=ns) for ns in ("checkout", "web", "catalog")),
    ]
    runs, rollbacks, ratio = "platform:canary_runs:increase7d", "platform:canary_rollbacks:increase7d", "platform:change_failure:ratio7d"
    checks = [
        {
            "expr": runs,
            "eval_time": "129m",
            "exp_samples": [sample(runs, 3, **team("checkout")), sample(runs, 1, **team("web")), sample(runs, 0, **team("catalog"))],
        },
        {
            "expr": rollbacks,
            "eval_time": "129m",
            "exp_samples": [sample(rollbacks, 1, **team("checkout")), sample(rollbacks, 0, **team("web")), sample(rollbacks, 0, **team("catalog"))],
        },
        # catalog ran nothing: no rate at all, rather than NaN.
        {"expr": ratio, "eval_time": "129m", "exp_samples": [sample(ratio, 1 / 3, **team("checkout")), sample(ratio, 0, **team("web"))]},
    ]
    promtool_rules_test(tmp_path, only(delivery_groups(), runs, rollbacks, ratio), [{"interval": "1m", "input_series": series_, "promql_expr_test": checks}])


def test_canary_runs_before_the_week_are_not_counted(tmp_path):
    """A counter that existed before the week counts only its growth inside it (here hourly samples over 8 days)."""
    series_ = [canary_counter("successes", 1, "5x99 6x69 7x10 stale", "checkout", "orders"), canary_counter("successes", 2, "_x185 1x4", "checkout", "orders")]
    runs = "platform:canary_runs:increase7d"
    check = {"expr": runs, "eval_time": "189h", "exp_samples": [sample(runs, 3, **team("checkout"))]}
    promtool_rules_test(tmp_path, only(delivery_groups(), runs), [{"interval": "1h", "input_series": series_, "promql_expr_test": [check]}], "1h")


# -- failed deploys: reverts ---------------------------------------------------------------------------
def replicaset(ns: str, name: str, deployment: str, created: int, replicas: str, born: int = 0) -> list[dict]:
    """A ReplicaSet's series from minute `born`; its spec replicas as promtool values from then."""
    before = f"_x{born} " if born else ""
    return [
        ksm("kube_replicaset_created", 1, f"{before}{created}x{400 - born}", namespace=ns, replicaset=name),
        ksm(
            "kube_replicaset_owner",
            1,
            f"{before}1x{400 - born}",
            namespace=ns,
            replicaset=name,
            owner_kind="Deployment",
            owner_name=deployment,
            owner_is_controller="true",
        ),
        ksm("kube_replicaset_spec_replicas", 1, before + replicas, namespace=ns, replicaset=name),
    ]


def test_a_change_reverted_within_a_day_is_a_failed_change(tmp_path):
    """checkout/orders (a canary) is released at minute 100 and reverted at minute 300: the primary goes back
    to its previous ReplicaSet. catalog/inventory (no canary) rolls out normally; web/storefront is scaled to
    zero and back, which is no revert. The canary target's own ReplicaSets (orders-*) are not serving changes."""
    series_ = [
        *replicaset("checkout", "orders-primary-7b6c5d4e3", "orders-primary", 60, "3x100 0x199 3x100"),
        *replicaset("checkout", "orders-primary-9f8e7d6c5", "orders-primary", 6000, "3x199 0x100", born=100),
        *replicaset("checkout", "orders-5c8f7d9b6", "orders", 60, "0x290 3x9 0x100"),
        *replicaset("checkout", "orders-6d9f8c7a1", "orders", 6000, "3x20 0x279", born=100),
        *replicaset("catalog", "inventory-1a2b3c4d5", "inventory", 60, "2x100 0x299"),
        *replicaset("catalog", "inventory-2b3c4d5e6", "inventory", 6000, "2x299", born=100),
        *replicaset("web", "storefront-8e7f6a5b4", "storefront", 60, "2x200 0x49 2x150"),
        *(ksm("kube_deployment_created", 1, "60x400", namespace=ns, deployment=d) for ns, d in (("checkout", "orders"), ("checkout", "orders-primary"))),
        *(ksm("kube_deployment_created", 1, "60x400", namespace=ns, deployment=d) for ns, d in (("catalog", "inventory"), ("web", "storefront"))),
    ]
    reverts, changes, ratio = "platform:deployment_reverts:count7d", "platform:deployment_changes:count7d", "platform:change_failure_revert:ratio7d"
    checks = [
        {"expr": "platform:deployment_reverts:active", "eval_time": "250m", "exp_samples": []},
        {
            "expr": "platform:deployment_reverts:active",
            "eval_time": "320m",
            "exp_samples": [
                sample("platform:deployment_reverts:active", 1, namespace="checkout", replicaset="orders-primary-9f8e7d6c5", owner_name="orders-primary")
            ],
        },
        {"expr": reverts, "eval_time": "399m", "exp_samples": [sample(reverts, n, **team(ns)) for ns, n in (("checkout", 1), ("catalog", 0), ("web", 0))]},
        {"expr": changes, "eval_time": "399m", "exp_samples": [sample(changes, n, **team(ns)) for ns, n in (("checkout", 2), ("catalog", 2), ("web", 1))]},
        {"expr": ratio, "eval_time": "399m", "exp_samples": [sample(ratio, r, **team(ns)) for ns, r in (("checkout", 0.5), ("catalog", 0), ("web", 0))]},
    ]
    groups = only(delivery_groups(), "platform:serving_replicasets:created_timestamp", "platform:deployment_reverts:active", reverts, changes, ratio)
    promtool_rules_test(tmp_path, groups, [{"interval": "1m", "input_series": series_, "promql_expr_test": checks}])


# -- utilisation -------------------------------------------------------------------------------------
def test_requested_utilisation_counts_native_sidecars_and_not_finished_or_unscheduled_pods(tmp_path):
    """Two 4-CPU nodes. storefront: 2 CPU plus Istio's native sidecar (0.5) and its validation init (0.1);
    orders: 1.5 plus its sidecar; a migration pod whose init container (1.5) outweighs its container (0.5);
    a finished Job pod (2) and an unscheduled pod (1) count for nothing: 6 of 8 CPUs, 0.75. Summing the
    containers' requests (the old rule) misses the sidecars and the init container and counts the other two: 0.875."""
    pods = [
        ("web", "storefront-8e7f6a5b4-x2k4p", "a", "Running", {"storefront": 2}, {"istio-validation": (0.1, ""), "istio-proxy": (0.5, "Always")}),
        ("checkout", "orders-primary-7b6c5d4e3-q9w8e", "b", "Running", {"orders": 1.5}, {"istio-proxy": (0.5, "Always")}),
        ("checkout", "orders-migrate-j7k8l", "b", "Running", {"migrate": 0.5}, {"schema": (1.5, "")}),
        ("catalog", "reindex-28391040-b4n5m", "a", "Succeeded", {"reindex": 2}, {}),
        ("catalog", "inventory-1a2b3c4d5-z1x2c", "", "Pending", {"inventory": 1}, {}),
    ]
    series_ = [ksm("kube_node_status_allocatable", 1, "4x20", node=n, resource="cpu", unit="core") for n in ("a", "b")]
    for ns, pod, node, phase, containers, inits in pods:
        ids = {"namespace": ns, "pod": pod, "uid": f"uid-{pod}"}
        series_ += [ksm("kube_pod_status_phase", 1, f"{int(p == phase)}x20", **ids, phase=p) for p in ("Pending", "Running", "Succeeded", "Failed", "Unknown")]
        for c, cpu in containers.items():
            series_.append(ksm("kube_pod_container_resource_requests", 1, f"{cpu}x20", **ids, container=c, node=node, resource="cpu", unit="core"))
        for c, (cpu, policy) in inits.items():
            series_.append(ksm("kube_pod_init_container_resource_requests", 1, f"{cpu}x20", **ids, container=c, node=node, resource="cpu", unit="core"))
            info = {
                "image_spec": "docker.io/istio/proxyv2:1.30.3",
                "image": "docker.io/istio/proxyv2:1.30.3",
                "image_id": "",
                "container_id": "",
                "restart_policy": policy,
            }
            series_.append(ksm("kube_pod_init_container_info", 1, "1x20", **ids, container=c, **info))
    series_.append(
        series(
            "container_cpu_usage_seconds_total",
            {"namespace": "web", "pod": "p", "container": "c", "image": "i", "job": "kubelet", "instance": "10.0.1.5:10250"},
            "0+312x20",
        )
    )
    record = "platform:cluster_cpu_requests:ratio"
    checks = [
        {"expr": record, "eval_time": "10m", "exp_samples": [sample(record, 0.75)]},
        {"expr": "platform:cluster_cpu_usage:ratio", "eval_time": "10m", "exp_samples": [sample("platform:cluster_cpu_usage:ratio", 0.65)]},
    ]
    promtool_rules_test(
        tmp_path, only(delivery_groups(), record, "platform:cluster_cpu_usage:ratio"), [{"interval": "1m", "input_series": series_, "promql_expr_test": checks}]
    )


# -- time to detect -------------------------------------------------------------------------------------
def test_time_to_detect_is_condition_to_firing_not_the_alerts_age(tmp_path):
    """The condition holds from minute 10, the alert fires at minute 12 (its `for`); at minute 30 the time to
    detect is 120 s, where the old rule showed the alert's age (1200 s)."""
    labels = {
        "alertname": "ServiceErrorBudgetFastBurn",
        "namespace": "checkout",
        "service": "orders",
        "team": "checkout",
        "severity": "critical",
        "slo": "availability",
    }
    series_ = [
        series("ALERTS_FOR_STATE", labels, "_x10 600x30"),
        series("ALERTS", {**labels, "alertstate": "pending"}, "_x10 1x1 stale"),
        series("ALERTS", {**labels, "alertstate": "firing"}, "_x12 1x28"),
    ]
    record = "platform:alert_detection:seconds"
    keys = {k: labels[k] for k in ("alertname", "namespace", "service", "team")}
    checks = [{"expr": record, "eval_time": "11m", "exp_samples": []}, {"expr": record, "eval_time": "30m", "exp_samples": [sample(record, 120, **keys)]}]
    promtool_rules_test(tmp_path, only(delivery_groups(), record), [{"interval": "1m", "input_series": series_, "promql_expr_test": checks}])
