"""A canaried service's release alerts (components/monitoring/canary.py), run by promtool on series
shaped like Flagger's and kube-state-metrics' exports, and routed by amtool."""

from __future__ import annotations

import pytest
from conftest import ROOT, recorded
from monitoring import config_file, routes_to
from test_alert_rules import expected, promtool_test, prometheus_rules, rule_named, write_rules

from components.monitoring import canary
from components.spec import load

# Flagger's PodMonitor scrapes with honorLabels: the canary's own namespace survives; the scrape adds its target labels.
FLAGGER = 'container="flagger", endpoint="http", instance="10.10.3.17:8080", job="flagger-system/flagger", pod="flagger-6f9c7d8b5-x2k4q"'
KSM = 'container="kube-state-metrics", instance="10.10.1.9:8080", job="kube-state-metrics", pod="kube-prometheus-stack-kube-state-metrics-5d8f9-qp7rn"'
ORDERS = {"namespace": "checkout", "name": "orders", "team": "checkout", "service": "orders"}


def status(name: str, values: str) -> dict:
    return {"series": f'flagger_canary_status{{{FLAGGER}, namespace="checkout", name="{name}"}}', "values": values}


def deployment(metric: str, name: str, values: str) -> dict:
    return {"series": f'kube_deployment_{metric}{{{KSM}, namespace="checkout", deployment="{name}"}}', "values": values}


@pytest.fixture
def orders_rules(tmp_path):
    spec = prometheus_rules(recorded("prod"))["checkout/orders"]
    return spec, write_rules(tmp_path, "orders", spec)


def check(tmp_path, rules_file, series: list[dict], checks: list[dict]) -> None:
    promtool_test(tmp_path, rules_file, [{"interval": "1m", "input_series": series, "alert_rule_test": checks}])


def test_only_canaried_services_get_release_alerts(stack):
    for svc in load(stack.stack, ROOT).services:
        names = {r["alert"] for g in prometheus_rules(stack)[f"{svc.team}/{svc.name}"]["groups"] for r in g["rules"] if "alert" in r}
        release = {canary.ROLLED_BACK, canary.STUCK, canary.PRIMARY_NOT_READY}
        assert (release <= names) if svc.canary_enabled(stack.stack) else not (release & names), svc.name


def test_a_rollback_is_one_ticket_until_a_release_passes(orders_rules, tmp_path):
    spec, rules_file = orders_rules
    ticket = rule_named(spec, canary.ROLLED_BACK)
    assert ticket["labels"]["severity"] == "warning"
    # A run (0), rolled back (2), the next run (0), which passes (1); payment promotes and stays silent.
    series = [status("orders", "0x3 2x10 0x3 1x10"), status("payment", "0x3 1x20")]
    firing = [expected(ticket, ORDERS)]
    check(
        tmp_path,
        rules_file,
        series,
        [
            {"eval_time": "3m", "alertname": canary.ROLLED_BACK, "exp_alerts": []},
            {"eval_time": "6m", "alertname": canary.ROLLED_BACK, "exp_alerts": firing},
            # The next run starting does not resolve it: only its success does.
            {"eval_time": "16m", "alertname": canary.ROLLED_BACK, "exp_alerts": firing},
            {"eval_time": "20m", "alertname": canary.ROLLED_BACK, "exp_alerts": []},
            # A rollback is not a page.
            {"eval_time": "6m", "alertname": canary.STUCK, "exp_alerts": []},
            {"eval_time": "6m", "alertname": canary.PRIMARY_NOT_READY, "exp_alerts": []},
        ],
    )
    assert routes_to(config_file(recorded("prod"), tmp_path), alertname=canary.ROLLED_BACK, severity="warning", **ORDERS) == "checkout-slack"


def test_a_retried_release_that_fails_again_stays_one_ticket(orders_rules, tmp_path):
    spec, rules_file = orders_rules
    firing = [expected(rule_named(spec, canary.ROLLED_BACK), ORDERS)]
    check(
        tmp_path,
        rules_file,
        [status("orders", "2x5 0x3 2x10")],
        [{"eval_time": f"{m}m", "alertname": canary.ROLLED_BACK, "exp_alerts": firing} for m in (3, 7, 12)],
    )


def test_an_analysis_that_never_ends_pages(orders_rules, tmp_path):
    spec, rules_file = orders_rules
    page = rule_named(spec, canary.STUCK)
    svc = next(s for s in load("prod", ROOT).services if s.name == "orders")
    minutes = int(page["for"].rstrip("m"))
    # The longest legitimate run (deadline for a new node, every step, every allowed failure) fits under the alert's wait.
    assert page["labels"]["severity"] == "critical" and minutes * 60 > svc.canary.run_seconds
    check(
        tmp_path,
        rules_file,
        # orders never leaves Progressing; payment's slowest legitimate run ends just in time.
        [status("orders", f"0x{minutes + 5}"), status("payment", f"0x{minutes - 1} 1x5")],
        [
            {"eval_time": f"{minutes - 1}m", "alertname": canary.STUCK, "exp_alerts": []},
            {"eval_time": f"{minutes + 1}m", "alertname": canary.STUCK, "exp_alerts": [expected(page, ORDERS)]},
        ],
    )
    assert routes_to(config_file(recorded("prod"), tmp_path), alertname=canary.STUCK, severity="critical", **ORDERS) == "checkout-pager"


def test_a_primary_not_ready_after_a_rollback_pages(orders_rules, tmp_path):
    spec, rules_file = orders_rules
    page = rule_named(spec, canary.PRIMARY_NOT_READY)
    labels = {"namespace": "checkout", "team": "checkout", "service": "orders"}
    check(
        tmp_path,
        rules_file,
        [
            status("orders", "1x5 2x20"),
            deployment("spec_replicas", "orders-primary", "3x25"),
            # The rollback at minute 6 leaves the primary short of replicas.
            deployment("status_replicas_available", "orders-primary", "3x5 1x20"),
            # payment rolls back to a healthy primary: silent.
            status("payment", "1x5 2x20"),
            deployment("spec_replicas", "payment-primary", "3x25"),
            deployment("status_replicas_available", "payment-primary", "3x25"),
        ],
        [
            {"eval_time": "9m", "alertname": canary.PRIMARY_NOT_READY, "exp_alerts": []},
            {"eval_time": "12m", "alertname": canary.PRIMARY_NOT_READY, "exp_alerts": [expected(page, labels)]},
        ],
    )


def test_a_short_primary_without_a_rollback_is_not_this_alert(orders_rules, tmp_path):
    """A primary scaling up (HPA) while its last release was promoted is the SLO alerts' business."""
    spec, rules_file = orders_rules
    check(
        tmp_path,
        rules_file,
        [
            status("orders", "1x25"),
            deployment("spec_replicas", "orders-primary", "3x5 6x20"),
            deployment("status_replicas_available", "orders-primary", "3x25"),
        ],
        [{"eval_time": "15m", "alertname": canary.PRIMARY_NOT_READY, "exp_alerts": []}],
    )
