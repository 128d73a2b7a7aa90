"""The "Delivery and efficiency" dashboard (its numbers are tested in tests/test_outcomes.py and test_canary_timing.py);
and every generated dashboard validated: layout, datasource, and each query parsed by promtool."""

from __future__ import annotations

import json

import yaml
from conftest import ROOT
from tools import run

from components.monitoring import delivery, grafana
from components.spec import load
from components.versions import KUBE_PROMETHEUS_STACK
from engine import chart_values

PANELS = [
    "Deploys per day (target 20)",
    "Deploys per day, by team",
    "Failed deploys, 7 days (target under 2%)",
    "Failed deploys by team, 7 days",
    "Rollback time, first failed check to traffic on the primary (target under 60 s)",
    "Canary exposure (failed canaries, seconds carrying traffic)",
    "Time to detect (alert condition to firing; notification p99)",
    "CPU utilisation (target 65-80%)",
    "Memory utilisation (target 65-80%)",
]
# The names dashboards and external checks read: kept whatever the rules compute.
KEPT = {
    "platform:deployments:count1d",
    "platform:canary_runs:increase7d",
    "platform:canary_rollbacks:increase7d",
    "platform:change_failure:ratio7d",
    "platform:canary_rollback:seconds1h",
    "platform:cluster_cpu_requests:ratio",
    "platform:cluster_cpu_usage:ratio",
    "platform:cluster_memory_requests:ratio",
    "platform:cluster_memory_usage:ratio",
}


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
    # The four outcomes, each against its target drawn as a line.
    targets = {
        PANELS[0]: [None, delivery.TARGET_DEPLOYS_PER_DAY],
        PANELS[2]: [None, delivery.TARGET_CHANGE_FAILURE],
        PANELS[4]: [None, delivery.TARGET_ROLLBACK_SECONDS],
        PANELS[7]: [None, 0.65, 0.8],
        PANELS[8]: [None, 0.65, 0.8],
    }
    for title, values in targets.items():
        defaults = panels[title]["fieldConfig"]["defaults"]
        assert panels[title]["type"] == "timeseries" and [s["value"] for s in defaults["thresholds"]["steps"]] == values, title
        assert defaults["custom"]["thresholdsStyle"]["mode"] in ("line", "line+area"), title
    assert (delivery.TARGET_DEPLOYS_PER_DAY, delivery.TARGET_CHANGE_FAILURE, delivery.TARGET_ROLLBACK_SECONDS) == (20, 0.02, 60)
    assert load(stack.stack, ROOT).spec.policy.max_rollback_seconds <= delivery.TARGET_ROLLBACK_SECONDS
    # Both failure rates: canary rollbacks and changes reverted.
    assert {t["expr"].split("(")[1].split(")")[0] for t in panels[PANELS[2]]["targets"]} == {
        "platform:canary_rollbacks:increase7d",
        "platform:deployment_reverts:count7d",
    }
    # Every series the panels read is recorded by the delivery rules (or is Prometheus' own).
    recorded = {r["record"] for g in delivery_rules(stack)["groups"] for r in g["rules"]}
    used = {
        word for p in board["panels"] for t in p["targets"] for word in t["expr"].replace("(", " ").replace(")", " ").split() if word.startswith("platform:")
    }
    assert used and used <= recorded and KEPT <= recorded


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
