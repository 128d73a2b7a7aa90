"""The "Delivery and efficiency" dashboard and its recording rules, with promtool unit tests of the numbers it shows;
and every generated dashboard validated: layout, datasource, and each query parsed by promtool."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import ROOT
from tools import run

from components.monitoring import delivery, grafana
from components.spec import load
from components.versions import KUBE_PROMETHEUS_STACK
from engine import chart_values

PANELS = [
    "Deployments per day",
    "Deployments per day, by team",
    "Change failure rate (7d)",
    "Change failure rate by team (7d)",
    "Rollback duration (failed canaries, seconds carrying traffic)",
    "Time to detect",
    "CPU utilisation (target 65-80%)",
    "Memory utilisation (target 65-80%)",
]


def dashboards(rec) -> dict[str, dict]:
    """Every dashboard ConfigMap the program registers: file name -> dashboard."""
    found = {}
    for r in rec.kubernetes_objects():
        if r.kind == "ConfigMap" and r.metadata.get("labels", {}).get("grafana_dashboard") == "1":
            found |= {name: json.loads(text) for name, text in r.inputs["data"].items()}
    return found


def delivery_rules(rec) -> dict:
    return rec.manifest("PrometheusRule", "platform-delivery", "monitoring")["spec"]


def test_the_delivery_dashboard_exists_in_both_stacks(stack):
    board = dashboards(stack)[f"{delivery.UID}.json"]
    assert board["title"] == "Delivery and efficiency" and board["uid"] == delivery.UID
    assert [p["title"] for p in board["panels"]] == PANELS
    panels = {p["title"]: p for p in board["panels"]}
    band = panels["CPU utilisation (target 65-80%)"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in band] == [None, 0.65, 0.8]
    rollback = panels["Rollback duration (failed canaries, seconds carrying traffic)"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert rollback[-1]["value"] == load(stack.stack, ROOT).spec.policy.max_rollback_seconds
    # Every series the panels read is recorded by the delivery rules (or is Prometheus' own).
    recorded = {r["record"] for g in delivery_rules(stack)["groups"] for r in g["rules"]}
    used = {
        word for p in board["panels"] for t in p["targets"] for word in t["expr"].replace("(", " ").replace(")", " ").split() if word.startswith("platform:")
    }
    assert used and used <= recorded


def test_every_dashboard_is_valid(stack, tmp_path):
    """Layout, datasource and units; each query parses (promtool checks it as a recording rule)."""
    uid = chart_values.defaults(KUBE_PROMETHEUS_STACK)["grafana"]["sidecar"]["datasources"]["uid"]
    boards = dashboards(stack)
    assert len(boards) == len(load(stack.stack, ROOT).services) + 1
    queries = []
    for name, board in boards.items():
        assert len(board["uid"]) <= grafana.UID_MAX and board["schemaVersion"] >= 36 and board["editable"] is False
        assert [p["id"] for p in board["panels"]] == list(range(1, len(board["panels"]) + 1))
        cells: set = set()
        for p in board["panels"]:
            g = p["gridPos"]
            area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not area & cells and g["x"] + g["w"] <= 24, (name, p["title"])
            cells |= area
            assert p["type"] in ("timeseries", "stat") and p["fieldConfig"]["defaults"]["unit"] and p["options"]
            if p["type"] == "stat":
                assert p["options"]["reduceOptions"]["calcs"] == ["lastNotNull"]
            assert p["targets"] and {t["datasource"]["uid"] for t in p["targets"]} == {p["datasource"]["uid"]} == {uid}
            queries += [t["expr"].replace("$__rate_interval", "5m") for t in p["targets"]]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": [{"record": "dashboard:query", "expr": q} for q in queries]}]}))
    proc = run("promtool", "check", "rules", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_broken_query_fails_the_dashboard_check(tmp_path):
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": [{"record": "dashboard:query", "expr": "sum(rate(x[5m])"}]}]}))
    assert run("promtool", "check", "rules", path).returncode != 0


# -- the numbers, with promtool test rules ---------------------------------------------------------
def promql_test(tmp_path, rec, series: list[dict], checks: list[dict], eval_interval: str = "1m") -> None:
    rules = tmp_path / "delivery.yaml"
    rules.write_text(yaml.safe_dump(delivery_rules(rec), sort_keys=False))
    test = tmp_path / "test.yaml"
    test.write_text(
        yaml.safe_dump(
            {
                "rule_files": [rules.name],
                "evaluation_interval": eval_interval,
                "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
            },
            sort_keys=False,
        )
    )
    proc = run("promtool", "test", "rules", test)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def dev_rec():
    from conftest import recorded

    return recorded("dev")


def test_deployments_count_new_versions_once(dev_rec, tmp_path):
    # Evaluated at minute 1500 (time() = 90000 s), so "the last day" starts at 3600 s.
    rs = lambda ns, name, created, minutes=1500: {
        "series": f'kube_replicaset_created{{namespace="{ns}", replicaset="{name}"}}',
        "values": f"{created}x{minutes}",
    }
    owner = lambda ns, name, deployment: {
        "series": f'kube_replicaset_owner{{namespace="{ns}", replicaset="{name}", owner_kind="Deployment", owner_name="{deployment}"}}',
        "values": "1x1500",
    }
    series = [
        rs("checkout", "orders-a", 80000),
        rs("checkout", "orders-b", 85000),
        owner("checkout", "orders-a", "orders"),
        # Flagger's promotion of orders-b to orders-primary: the same release, not counted again.
        rs("checkout", "orders-primary-c", 86000),
        owner("checkout", "orders-primary-c", "orders-primary"),
        # Deleted since (revision history limit) but created within the day: counted.
        rs("checkout", "orders-gone", 80500, minutes=1000),
        rs("web", "storefront-a", 88000),
        # Older than a day; and outside the team namespaces.
        rs("catalog", "inventory-old", 1000),
        rs("kube-system", "coredns-a", 89000),
    ]
    promql_test(
        tmp_path,
        dev_rec,
        series,
        [
            {
                "expr": "platform:deployments:count1d",
                "eval_time": "1500m",
                "exp_samples": [
                    {"labels": 'platform:deployments:count1d{namespace="checkout", team="checkout"}', "value": 3},
                    {"labels": 'platform:deployments:count1d{namespace="web", team="web"}', "value": 1},
                ],
            }
        ],
    )


def test_change_failure_rate_is_rollbacks_over_canary_runs(dev_rec, tmp_path):
    flagger = lambda outcome, name, per_minute: {
        "series": f'flagger_canary_{outcome}_total{{namespace="checkout", name="{name}", deployment_strategy="canary", analysis_status="completed"}}',
        "values": f"0+{per_minute}x120",
    }
    series = [flagger("successes", "orders", 3), flagger("failures", "orders", 1)]
    promql_test(
        tmp_path,
        dev_rec,
        series,
        [
            {
                "expr": "platform:change_failure:ratio7d",
                "eval_time": "120m",
                "exp_samples": [{"labels": 'platform:change_failure:ratio7d{namespace="checkout", team="checkout"}', "value": 0.25}],
            }
        ],
    )


def test_utilisation_is_use_and_requests_over_allocatable(dev_rec, tmp_path):
    series = [
        {"series": 'kube_node_status_allocatable{node="a", resource="cpu"}', "values": "4x20"},
        {"series": 'kube_node_status_allocatable{node="b", resource="cpu"}', "values": "4x20"},
        {"series": 'kube_pod_container_resource_requests{namespace="web", pod="p", container="c", resource="cpu"}', "values": "6x20"},
        {"series": 'container_cpu_usage_seconds_total{namespace="web", pod="p", container="c", image="i"}', "values": "0+312x20"},
    ]
    promql_test(
        tmp_path,
        dev_rec,
        series,
        [
            {
                "expr": "platform:cluster_cpu_requests:ratio",
                "eval_time": "10m",
                "exp_samples": [{"labels": "platform:cluster_cpu_requests:ratio", "value": 0.75}],
            },
            {"expr": "platform:cluster_cpu_usage:ratio", "eval_time": "10m", "exp_samples": [{"labels": "platform:cluster_cpu_usage:ratio", "value": 0.65}]},
        ],
    )
