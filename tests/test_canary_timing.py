"""Canary timing.

Rollback time and canary exposure, from Flagger's gauges as it sets them (scraped every 15 s), by promtool.
Rollback time is, for a canary whose last run failed, the time from its first failed check to all traffic
back on the primary; exposure, that run's time carrying traffic. Neither may add up earlier runs or other
canaries in the hour, as the old rule (seconds with weight above 0 in the hour) did, nor take the failing
value an earlier run left in Flagger's analysis gauge for a failure of this run.

The canary timing model (docs/delivery.md): the rollback bound users feel, a progress deadline that
covers a canary pod on a new node, metric windows that judge one step; the pins and parity across
environments; canary pods kept off Karpenter's disruption path; deploy-window budgets."""

from __future__ import annotations

import math

import pytest
from conftest import ROOT, recorded
from monitoring import flagger, only, promtool_rules_test
from test_declarations import refused

from components.spec import load
from components.spec.service_parts import DEADLINE_MARGIN_SECONDS, NEW_NODE_SECONDS, Canary

STEP = 15  # seconds between samples: Flagger's PodMonitor interval
LAST = 200  # samples: 50 minutes
ROLLBACK, EXPOSURE = "platform:canary_rollback:seconds1h", "platform:canary_exposure:seconds1h"
PAYMENT, ORDERS, INVENTORY = "stacks/services/checkout/payment.yaml", "stacks/services/checkout/orders.yaml", "stacks/services/catalog/inventory.yaml"


def values(points: dict[range, float]) -> str:
    """promtool values, one per sample, `_` where the gauge is not set."""
    out = ["_"] * (LAST + 1)
    for span, value in points.items():
        for k in span:
            out[k] = f"{value:g}"
    return " ".join(out)


def canary(name: str, status: dict[range, float], weight: dict[range, float], success: dict[range, float], duration: float, first_check: int) -> list[dict]:
    ns = {"namespace": "checkout"}
    primary = {span: 100 - w for span, w in weight.items()}
    return [
        flagger("flagger_canary_status", 1, values(status), **ns, name=name),
        flagger("flagger_canary_weight", 1, values(weight), **ns, workload=name),
        flagger("flagger_canary_weight", 1, values(primary), **ns, workload=f"{name}-primary"),
        flagger("flagger_canary_metric_analysis", 1, values(success), **ns, name=name, metric="request-success-rate"),
        flagger("flagger_canary_metric_analysis", 1, values({range(first_check, LAST + 1): duration}), **ns, name=name, metric="request-duration"),
    ]


def groups() -> list[dict]:
    rec = recorded("prod")
    delivery = only(
        rec.manifest("PrometheusRule", "platform-delivery", "monitoring")["spec"]["groups"], "platform:canary_run:start_timestamp", ROLLBACK, EXPOSURE
    )
    services = [rec.manifest("PrometheusRule", s, "checkout")["spec"]["groups"] for s in ("orders", "payment")]
    return delivery + [g for gs in services for g in gs if g["name"].endswith("-canary-analysis")]


def test_rollback_time_runs_from_the_first_failed_check_of_the_last_run_to_traffic_on_the_primary(tmp_path):
    orders = {s.name: s for s in load("prod", ROOT).services}["orders"]
    assert orders.canary.interval_seconds == 15 and orders.canary.success_rate == 99.9
    # orders: a promoted run (minutes 5-10), a failed run (20-25: failing from 22:30, back on the primary at
    # 25:00), and at 40:00 a new run: the gauge still shows the earlier run's 80% until this run's first
    # check (100%, seen at 40:15); it fails from 41:00; traffic is back on the primary at 42:00.
    series = canary(
        "orders",
        status={range(0, 20): 1, range(20, 41): 0, range(41, 80): 1, range(80, 100): 0, range(100, 160): 2, range(160, 168): 0, range(168, LAST + 1): 2},
        weight={
            range(0, 20): 0,
            range(20, 41): 10,
            range(41, 80): 0,
            range(80, 100): 20,
            range(100, 160): 0,
            range(160, 162): 10,
            range(162, 168): 20,
            range(168, LAST + 1): 0,
        },
        success={range(21, 90): 100, range(90, 161): 80, range(161, 164): 100, range(164, LAST + 1): 80},
        duration=0.2,
        first_check=21,
    )
    # payment, in the same namespace and hour: a run from 43:00, failing from 44:30, rolled back at 45:00.
    series += canary(
        "payment",
        status={range(0, 172): 1, range(172, 180): 0, range(180, LAST + 1): 2},
        weight={range(0, 172): 0, range(172, 180): 10, range(180, LAST + 1): 0},
        success={range(173, 178): 100, range(178, LAST + 1): 95},
        duration=0.1,
        first_check=173,
    )
    labels = lambda name: {"namespace": "checkout", "name": name, "team": "checkout"}
    sample = lambda record, name, value: {"labels": record + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels(name).items())) + "}", "value": value}
    checks = [
        # The first failed run, at 30:00: failing from 22:30 (1350 s), on the primary at 25:00 (1500 s).
        {"expr": ROLLBACK, "eval_time": "30m", "exp_samples": [sample(ROLLBACK, "orders", 150)]},
        {"expr": EXPOSURE, "eval_time": "30m", "exp_samples": [sample(EXPOSURE, "orders", 300)]},
        # While a run is in progress there is no rollback to report.
        {"expr": ROLLBACK, "eval_time": "41m", "exp_samples": []},
        {"expr": ROLLBACK, "eval_time": "50m", "exp_samples": [sample(ROLLBACK, "orders", 60), sample(ROLLBACK, "payment", 30)]},
        {"expr": EXPOSURE, "eval_time": "50m", "exp_samples": [sample(EXPOSURE, "orders", 120), sample(EXPOSURE, "payment", 120)]},
    ]
    promtool_rules_test(tmp_path, groups(), [{"interval": f"{STEP}s", "input_series": series, "promql_expr_test": checks}])


def test_every_canaried_service_records_its_analysis_thresholds(prod):
    for svc in load("prod", ROOT).services:
        spec = prod.manifest("PrometheusRule", svc.name, svc.team)["spec"]
        found = {r["record"]: r for g in spec["groups"] if g["name"] == f"{svc.name}-canary-analysis" for r in g["rules"]}
        if not svc.canary_enabled("prod"):
            assert not found, svc.name
            continue
        assert found["platform:canary_analysis:min_success_rate"]["expr"] == f"vector({svc.canary.success_rate:g})"
        assert found["platform:canary_analysis:max_duration_seconds"]["expr"] == f"vector({svc.canary.max_latency_ms / 1000:g})"
        assert found["platform:canary_analysis:interval_seconds"]["expr"] == f"vector({svc.canary.interval_seconds})"
        assert {r["labels"]["name"] for r in found.values()} == {svc.name}


# -- the timing model -------------------------------------------------------------------------------
def flagger_run(canary: Canary, ready_after: float, first_bad_check: int | None = None) -> tuple[str, float]:
    """Flagger's control loop for one release, as its source behaves (pkg/controller/scheduler.go,
    pkg/canary/deployment_ready.go): a tick every `interval`; while the canary Deployment is not
    available the tick checks the deadline, measured from when it became unavailable (scale-up), and
    rolls back past it; once ready, each tick runs the checks: a failed one holds the weight and
    counts, and the tick that finds `threshold` failures sets the weight to 0. Returns the outcome and
    the time it happened (for a rollback after bad checks: from the first failed check)."""
    interval, failed, step, t = canary.interval_seconds, 0, 0, 0.0
    first_failure = None
    while True:
        t += interval
        if t < ready_after:
            if t > canary.progress_deadline_seconds:
                return "rolled back (deadline)", t
            continue
        if failed >= canary.threshold:
            return "rolled back", t - (first_failure or t)
        if first_bad_check is not None and step >= first_bad_check:
            failed += 1
            first_failure = t if first_failure is None else first_failure
            continue
        step += 1
        if step > canary.steps:
            return "promoted", t


def test_defaults_give_the_headline_numbers():
    c = Canary()
    assert (c.interval_seconds, c.threshold, c.metric_window_seconds, c.progress_deadline_seconds) == (15, 3, 30, 180)
    assert c.rollback_seconds == 60 and c.promotion_seconds == 15 * (5 + 2)
    assert c.run_seconds == 180 + 15 * (5 + 3 + 2)


@pytest.mark.parametrize("interval, threshold", [(15, 3), (20, 2), (30, 1), (15, 1)])
def test_a_bad_release_is_off_user_traffic_within_the_bound(interval, threshold):
    c = Canary(interval_seconds=interval, threshold=threshold)
    outcome, seconds = flagger_run(c, ready_after=20, first_bad_check=1)
    # From the first failed check to weight 0: threshold intervals; the bound keeps one more for jitter and propagation.
    assert outcome == "rolled back" and seconds == interval * threshold <= c.rollback_seconds == interval * (threshold + 1)


@pytest.mark.parametrize("node_seconds", [60, 100, NEW_NODE_SECONDS])
def test_a_healthy_canary_on_a_new_node_is_promoted_not_rolled_back(node_seconds):
    c = Canary()
    startup = 10
    outcome, _ = flagger_run(c, ready_after=node_seconds + startup)
    assert outcome == "promoted"
    # The deadline the platform used to force (50s) rolls the same healthy release back, and that rollback paged.
    old = Canary().model_copy(update={"progress_deadline_seconds": 50})
    assert flagger_run(old, ready_after=node_seconds + startup)[0] == "rolled back (deadline)"


def test_a_canary_that_never_gets_ready_is_rolled_back_at_its_deadline_without_user_traffic():
    c = Canary()
    outcome, at = flagger_run(c, ready_after=math.inf)
    assert outcome == "rolled back (deadline)" and c.progress_deadline_seconds < at <= c.progress_deadline_seconds + c.interval_seconds


def test_the_deadline_must_cover_a_new_node_and_the_services_start_up(scratch):
    # No startup probe: one readiness period; the default deadline fits exactly.
    assert Canary().deadline_problem(10) is None
    need = NEW_NODE_SECONDS + 60 + DEADLINE_MARGIN_SECONDS
    assert f"at least {need}" in Canary().deadline_problem(60)
    assert Canary(progress_deadline_seconds=need).deadline_problem(60) is None
    scratch.edit(PAYMENT, lambda d: d.update(probes={"startupSeconds": 60}))
    assert "payment.yaml: canary.progressDeadlineSeconds 180s does not cover a canary pod on a new node" in refused(scratch)
    scratch.edit(PAYMENT, lambda d: d["canary"].update(progressDeadlineSeconds=need))
    from engine.stacks import run

    assert run("prod", scratch.root).manifest("Canary", "payment", "checkout")["spec"]["progressDeadlineSeconds"] == need


def test_a_deadline_below_a_new_node_is_refused(scratch):
    scratch.edit(PAYMENT, lambda d: d["canary"].update(progressDeadlineSeconds=50))
    assert "payment.yaml: canary.progressDeadlineSeconds: Input should be greater than or equal to 180" in refused(scratch)


@pytest.mark.parametrize(
    "settings, fragment",
    [
        ({"metricWindowSeconds": 60}, "metricWindowSeconds (60s) spans more than two analysis intervals (2 x 15s)"),
        ({"metricWindowSeconds": 15}, "metricWindowSeconds: Input should be greater than or equal to 30"),
        ({"intervalSeconds": 20}, "rollback takes up to 80s"),
        # Two 15s scrapes do not fit in two 10s steps: the sidecars' scrape interval is the analysis' floor.
        ({"intervalSeconds": 10}, "metricWindowSeconds (30s) spans more than two analysis intervals (2 x 10s)"),
    ],
)
def test_metric_windows_judge_one_step_and_the_bound_holds(scratch, settings, fragment):
    scratch.edit(ORDERS, lambda d: d["canary"].update(settings))
    assert fragment in refused(scratch)


def test_staging_canaries_whatever_prod_canaries(scratch):
    scratch.edit(ORDERS, lambda d: d["envs"]["staging"].update(canary={"enabled": False}))
    message = refused(scratch)
    assert "orders.yaml: envs.staging.canary.enabled: orders canaries in stack 'prod', so it must canary in staging stack 'staging' too" in message
    # Off in dev is a choice dev may make.
    scratch.edit(ORDERS, lambda d: d["envs"]["staging"].pop("canary"))
    scratch.edit(ORDERS, lambda d: d["envs"].update(dev={"canary": {"enabled": False}}))
    assert not next(s for s in load("dev", scratch.root).services if s.name == "orders").canary_enabled("dev")


def test_staging_and_prod_run_only_pinned_images(scratch):
    scratch.edit(INVENTORY, lambda d: d["envs"]["prod"].pop("image"))
    assert "inventory.yaml: envs.prod.image: in stack 'prod': a prod stack runs only pinned images" in refused(scratch)


def test_each_stack_runs_its_own_pin(stack):
    from components.workloads.pod import image_version

    image = stack.manifest("Deployment", "orders", "checkout")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image_version(image) == {"dev": "1.13.1", "staging": "1.13.0", "prod": "1.12.0"}[stack.stack]


def test_canary_pods_are_pinned_and_the_primary_keeps_its_tier_budget(stack):
    pdbs = {
        r.metadata["name"]: r.inputs["spec"]
        for r in stack.kubernetes_objects()
        if r.kind == "PodDisruptionBudget" and r.metadata.get("namespace") == "checkout"
    }
    # orders canaries: its primary's pods (Flagger's `<name>-primary` selector value) keep the critical tier's budget,
    assert pdbs["orders"] == {"selector": {"matchLabels": {"app.kubernetes.io/name": "orders-primary"}}, "maxUnavailable": 1}
    # and the canary's pods, which exist only during an analysis, cannot be evicted by Karpenter's consolidation or drift.
    assert pdbs["orders-canary"] == {"selector": {"matchLabels": {"app.kubernetes.io/name": "orders"}}, "maxUnavailable": 0}
    # Never the do-not-disrupt annotation on the target's template: Flagger copies it to every primary pod.
    for r in stack.kubernetes_objects():
        if r.kind == "Deployment":
            assert "karpenter.sh/do-not-disrupt" not in r.inputs["spec"]["template"]["metadata"].get("annotations", {}), r.urn
    catalog = {
        r.metadata["name"]: r.inputs["spec"] for r in stack.kubernetes_objects() if r.kind == "PodDisruptionBudget" and r.metadata.get("namespace") == "catalog"
    }
    # inventory has no canary: one budget over its pods, by the service label.
    assert catalog["inventory"] == {"selector": {"matchLabels": {"platform.io/service": "inventory"}}, "maxUnavailable": "50%"}


def test_deploy_windows_stop_consolidation_and_drift_on_schedule(stack):
    if stack.stack == "dev":
        return
    pools = {r.metadata["name"]: r.inputs["spec"] for r in stack.kubernetes_objects() if r.kind == "NodePool"}
    window = {"nodes": "0", "reasons": ["Underutilized", "Drifted"], "schedule": "0 8 * * mon-fri", "duration": "10h"}
    assert window in pools["general"]["disruption"]["budgets"]
    assert {**window, "reasons": ["Drifted"]} in pools["critical"]["disruption"]["budgets"]


@pytest.mark.parametrize(
    "budget, fragment",
    [
        ({"nodes": "0", "reasons": ["Drifted"], "schedule": "0 8 * * mon-fri", "duration": "30s"}, "duration: String should match pattern"),
        ({"nodes": "0", "reasons": ["Drifted"], "schedule": "weekdays at 8", "duration": "10h"}, "is not a cron expression of five fields"),
        ({"nodes": "0", "reasons": ["Drifted", "Drifted"]}, "lists a reason twice"),
        ({"nodes": "0", "schedule": "0 8 * * *"}, "schedule and duration must be set together"),
    ],
)
def test_bad_deploy_windows_are_refused(scratch, budget, fragment):
    scratch.edit("stacks/staging.yaml", lambda d: d["karpenter"]["nodePools"][0]["budgets"].append(budget))
    assert fragment in refused(scratch, "staging")
