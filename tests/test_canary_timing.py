"""The canary timing model (docs/delivery.md): the rollback bound users feel, a progress deadline that
covers a canary pod on a new node, metric windows that judge one step; the pins and parity across
environments; canary pods kept off Karpenter's disruption path; deploy-window budgets."""

from __future__ import annotations

import math

import pytest
from test_declarations import refused

from components.spec.service_parts import DEADLINE_MARGIN_SECONDS, NEW_NODE_SECONDS, Canary


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
    scratch.edit("stacks/services/payment.yaml", lambda d: d.update(probes={"startupSeconds": 60}))
    assert "payment.yaml: canary.progressDeadlineSeconds 180s does not cover a canary pod on a new node" in refused(scratch)
    scratch.edit("stacks/services/payment.yaml", lambda d: d["canary"].update(progressDeadlineSeconds=need))
    from engine.runtime import run

    assert run("prod", scratch.root).manifest("Canary", "payment", "checkout")["spec"]["progressDeadlineSeconds"] == need


def test_a_deadline_below_a_new_node_is_refused(scratch):
    scratch.edit("stacks/services/payment.yaml", lambda d: d["canary"].update(progressDeadlineSeconds=50))
    assert "payment.yaml: canary.progressDeadlineSeconds: Input should be greater than or equal to 180" in refused(scratch)


@pytest.mark.parametrize(
    "canary, fragment",
    [
        ({"metricWindowSeconds": 60}, "metricWindowSeconds (60s) spans more than two analysis intervals (2 x 15s)"),
        ({"metricWindowSeconds": 15}, "metricWindowSeconds: Input should be greater than or equal to 30"),
        ({"intervalSeconds": 20}, "rollback takes up to 80s"),
        # Two 15s scrapes do not fit in two 10s steps: the sidecars' scrape interval is the analysis' floor.
        ({"intervalSeconds": 10}, "metricWindowSeconds (30s) spans more than two analysis intervals (2 x 10s)"),
    ],
)
def test_metric_windows_judge_one_step_and_the_bound_holds(scratch, canary, fragment):
    scratch.edit("stacks/services/orders.yaml", lambda d: d["canary"].update(canary))
    assert fragment in refused(scratch)


def test_staging_canaries_whatever_prod_canaries(scratch):
    scratch.edit("stacks/services/orders.yaml", lambda d: d["envs"]["staging"].update(canary={"enabled": False}))
    message = refused(scratch)
    assert "orders.yaml: envs.staging.canary.enabled: orders canaries in stack 'prod', so it must canary in staging stack 'staging' too" in message
    # Off in dev is a choice dev may make.
    scratch.edit("stacks/services/orders.yaml", lambda d: d["envs"]["staging"].pop("canary"))
    scratch.edit("stacks/services/orders.yaml", lambda d: d["envs"].update(dev={"canary": {"enabled": False}}))
    from components.spec import load

    assert not next(s for s in load("dev", scratch.root).services if s.name == "orders").canary_enabled("dev")


def test_staging_and_prod_run_only_pinned_images(scratch):
    scratch.edit("stacks/services/inventory.yaml", lambda d: d["envs"]["prod"].pop("image"))
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
