"""One Grafana dashboard per service: provisioned as a ConfigMap the sidecar picks up, with the four
golden signals queried for exactly that service's pods."""

from __future__ import annotations

import json
import re

import pytest
from conftest import ROOT

from components.spec import load
from components.versions import KUBE_PROMETHEUS_STACK
from components.monitoring import slo
from components.workloads import dashboard
from engine import chart_values

SIGNALS = {
    "Requests per second": "istio_requests_total",
    "Errors (5xx share)": "istio_requests_total",
    "Latency": "istio_request_duration_milliseconds_bucket",
    "CPU (cores)": "container_cpu_usage_seconds_total",
    "Memory (working set)": "container_memory_working_set_bytes",
}


def services(rec):
    return load(rec.stack, ROOT).services


def provisioned(rec, svc) -> dict:
    config = rec.manifest("ConfigMap", f"{svc.name}-dashboard", svc.team)
    [(key, text)] = config["data"].items()
    assert key == f"{svc.team}-{svc.name}.json"
    return {"labels": config["metadata"]["labels"], "dashboard": json.loads(text)}


def expressions(board: dict) -> dict[str, list[str]]:
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in board["panels"]}


def budget_panels(svc) -> list[str]:
    return [t for o in slo.OBJECTIVES for t in (f"Error budget left, {o} (30d)", f"Burn rate, {o}")]


def test_every_service_has_a_dashboard_the_sidecar_loads(stack):
    sidecar = chart_values.defaults(KUBE_PROMETHEUS_STACK)["grafana"]["sidecar"]["dashboards"]
    # Team namespaces hold the dashboards: the sidecar must search every namespace.
    assert sidecar["enabled"] and sidecar["searchNamespace"] == "ALL"
    uids = set()
    for svc in services(stack):
        found = provisioned(stack, svc)
        assert found["labels"][sidecar["label"]] == sidecar["labelValue"]
        assert found["labels"]["platform.io/service"] == svc.name
        board = found["dashboard"]
        assert board["title"] == f"{svc.team} / {svc.name}" and board["uid"] == dashboard.uid(svc)
        uids.add(board["uid"])
    assert len(uids) == len(services(stack))


def test_the_four_golden_signals_for_that_service_only(stack):
    for svc in services(stack):
        board = provisioned(stack, svc)["dashboard"]
        queries = expressions(board)
        # Predictive services also get the forecast's panels, last (tests/test_predictive_scaling.py).
        assert list(queries) == list(SIGNALS) + budget_panels(svc) + [t for t in queries if svc.scaling.predictive and t.startswith("Forecast")]
        for title, metric in SIGNALS.items():
            for expr in queries[title]:
                assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
            assert any(metric in expr for expr in queries[title]), title
        for expr in queries["Requests per second"] + queries["Errors (5xx share)"] + queries["Latency"]:
            assert f'destination_workload_namespace="{svc.team}"' in expr and 'reporter="destination"' in expr
            assert f'destination_workload=~"{svc.name}(-primary)?"' in expr
        for expr in queries["CPU (cores)"] + queries["Memory (working set)"]:
            assert f'namespace="{svc.team}", container="{svc.name}"' in expr
        # Every query goes to the chart's own Prometheus datasource.
        uid = chart_values.defaults(KUBE_PROMETHEUS_STACK)["grafana"]["sidecar"]["datasources"]["uid"]
        assert {t["datasource"]["uid"] for p in board["panels"] for t in p["targets"]} == {uid}


def test_slo_lines_come_from_the_declaration(stack):
    for svc in services(stack):
        panels = {p["title"]: p for p in provisioned(stack, svc)["dashboard"]["panels"]}
        steps = lambda title: panels[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps("Errors (5xx share)")[-1]["value"] == pytest.approx(1 - svc.canary.success_rate / 100)
        assert steps("Latency")[-1]["value"] == svc.canary.max_latency_ms
        assert "thresholds" not in panels["Requests per second"]["fieldConfig"]["defaults"]


def test_error_budget_panels_read_the_services_slo_records(stack):
    for svc in services(stack):
        panels = {p["title"]: p for p in provisioned(stack, svc)["dashboard"]["panels"]}
        for objective in slo.OBJECTIVES:
            budget = svc.slo.budget(objective)
            [left] = panels[f"Error budget left, {objective} (30d)"]["targets"]
            assert left["expr"] == f"1 - {slo.record(objective, '30d')}{{{slo.selector(svc, objective)}}} / {budget}"
            burn = panels[f"Burn rate, {objective}"]
            assert [t["expr"] for t in burn["targets"]] == [
                f"{slo.record(objective, w)}{{{slo.selector(svc, objective)}}} / {budget}" for w in ("1h", "6h", "3d")
            ]
            # Red from the lowest burn rate that pages.
            assert burn["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 6


@pytest.mark.parametrize(
    "workload, counted",
    [
        ("orders", True),
        ("orders-primary", True),  # a canary's two Deployments
        ("orders-history", False),
        ("orders-primary-2", False),
        ("my-orders", False),  # other services
    ],
)
def test_workload_matcher_counts_canary_and_primary_but_no_other_service(workload, counted):
    # PromQL anchors regex matchers at both ends, like re.fullmatch.
    svc = next(s for s in load("dev", ROOT).services if s.name == "orders")
    requests, _ = dashboard.selectors(svc)
    pattern = re.search(r'destination_workload=~"([^"]+)"', requests).group(1)
    assert bool(re.fullmatch(pattern, workload)) is counted


def test_panels_do_not_overlap(stack):
    for svc in services(stack):
        cells = set()
        for p in provisioned(stack, svc)["dashboard"]["panels"]:
            g = p["gridPos"]
            area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not area & cells and g["x"] + g["w"] <= 24, p["title"]
            cells |= area


def test_uid_fits_grafanas_limit():
    svc = load("dev", ROOT).services[0]
    long = svc.model_copy(update={"team": "a-team-with-a-very-long-name", "name": "and-a-service-named-at-length"})
    assert len(dashboard.uid(long)) == dashboard.UID_MAX
    assert dashboard.uid(svc) == f"svc-{svc.team}-{svc.name}"
