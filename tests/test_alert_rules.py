"""Every alert rule the program renders: actionable (labels, annotations, a runbook in the repo),
valid for Prometheus (`promtool check rules`), and firing when it should (`promtool test rules`)."""

from __future__ import annotations

import math
import re

import pytest
import yaml
from conftest import ROOT, recorded
from monitoring import config_file, routes_to
from tools import run

from components.monitoring import slo
from components.spec import load
from components.versions import KUBE_PROMETHEUS_STACK
from engine import chart_values

STACKS = ("dev", "staging", "prod")
RESTART_EXPR = "sum(rate(kube_pod_container_status_restarts_total[5m])) by (namespace, pod) > 0.5"


def prometheus_rules(rec) -> dict[str, dict]:
    """namespace/name -> spec of every PrometheusRule the program registers."""
    return {f"{r.metadata.get('namespace')}/{r.metadata['name']}": r.inputs["spec"] for r in rec.kubernetes_objects() if r.kind == "PrometheusRule"}


def alerts(rec) -> list[tuple[str, dict]]:
    return [(where, rule) for where, spec in prometheus_rules(rec).items() for g in spec["groups"] for rule in g["rules"] if "alert" in rule]


def write_rules(tmp_path, name: str, spec: dict):
    path = tmp_path / f"{name.replace('/', '-')}.yaml"
    path.write_text(yaml.safe_dump({"groups": spec["groups"]}, sort_keys=False))
    return path


# -- actionable -----------------------------------------------------------------------------------
def test_every_alert_is_actionable(stack):
    alerting = load(stack.stack, ROOT).spec.alerting
    teams = set(load(stack.stack, ROOT).spec.teams)
    found = alerts(stack)
    assert len(found) >= 3 + 4 * len(load(stack.stack, ROOT).services)
    for where, rule in found:
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), (where, name)
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), (where, name)
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(f"{alerting.repository_url}/docs/runbooks/") and url.endswith(".md"), (where, name, url)
        runbook = ROOT / "docs" / "runbooks" / url.rsplit("/", 1)[1]
        assert runbook.is_file(), f"{name} has no runbook at {runbook.relative_to(ROOT)}"
        # Its own page (titled after it), or a shared one that names it (the restore runbook covers every backup alert).
        assert f"# {name}" in runbook.read_text() if runbook.stem == name else f"`{name}`" in runbook.read_text(), (name, url)
        if where.split("/")[0] in teams:
            # A service's alert: routed by team, grouped by namespace and service.
            assert {"team", "namespace", "service"} <= set(rule["labels"]), (where, name)
            assert rule["labels"]["namespace"] == rule["labels"]["team"] == where.split("/")[0]


def test_service_alerts_keep_their_labels_through_aggregation(stack):
    """The burn alerts compare recorded series that carry team, namespace, service and slo themselves."""
    for svc in load(stack.stack, ROOT).services:
        spec = prometheus_rules(stack)[f"{svc.team}/{svc.name}"]
        records = {r["record"]: r for g in spec["groups"] for r in g["rules"] if "record" in r}
        for objective in slo.OBJECTIVES:
            for window in slo.WINDOWS:
                assert records[slo.record(objective, window)]["labels"] == {"team": svc.team, "namespace": svc.team, "service": svc.name, "slo": objective}


def test_the_restart_alert_is_the_designs_verbatim(stack):
    [(where, rule)] = [(w, r) for w, r in alerts(stack) if r["alert"] == "HighPodRestartRate"]
    assert where == "monitoring/platform"
    assert rule["expr"] == RESTART_EXPR and rule["for"] == "10m" and rule["labels"]["severity"] == "critical"
    assert "{{ $labels.pod }}" in rule["annotations"]["summary"]


def test_the_charts_crash_loop_alerts_stay_on(stack):
    [release] = [r for r in stack.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "kube-prometheus-stack"]
    defaults = chart_values.defaults(KUBE_PROMETHEUS_STACK)["defaultRules"]
    ours = release.inputs["values"].get("defaultRules", {})
    assert defaults["create"] and defaults["rules"]["kubernetesApps"]
    assert ours.get("create", True) and ours.get("rules", {}).get("kubernetesApps", True)
    assert "KubePodCrashLooping" not in ours.get("disabled", {})
    runbook = (ROOT / "docs" / "runbooks" / "HighPodRestartRate.md").read_text()
    assert "KubePodCrashLooping" in runbook and "KubeContainerWaiting" in runbook


def test_every_runbook_belongs_to_an_alert():
    """A page named after an alert (CamelCase) is that alert's, and every alert links a page; the
    other pages (restore, first-deploy, canary-rollback) are procedures, linked from the docs."""
    rendered = [r for stack in STACKS for _, r in alerts(recorded(stack))]
    own = {r["alert"] for r in rendered if r["annotations"]["runbook_url"].endswith(f"/{r['alert']}.md")}
    assert {p.stem for p in (ROOT / "docs" / "runbooks").glob("*.md") if p.stem[0].isupper()} == own
    assert {r["annotations"]["runbook_url"].rsplit("/", 1)[1] for r in rendered} <= {p.name for p in (ROOT / "docs" / "runbooks").glob("*.md")}
    assert {"VeleroBackupFailed", "VaultSnapshotTooOld"} <= {r["alert"] for r in rendered} - own


# -- promtool check rules -------------------------------------------------------------------------
def test_promtool_accepts_every_rendered_rule_group(stack, tmp_path):
    files = [write_rules(tmp_path, where, spec) for where, spec in prometheus_rules(stack).items()]
    assert len(files) >= 1 + len(load(stack.stack, ROOT).services)
    proc = run("promtool", "check", "rules", *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_refuses_a_broken_rule(tmp_path):
    spec = prometheus_rules(recorded("dev"))["monitoring/platform"]
    broken = {"groups": [{**spec["groups"][0], "rules": [{**spec["groups"][0]["rules"][0], "expr": "sum(rate(x[5m]) by (pod)"}]}]}
    assert run("promtool", "check", "rules", write_rules(tmp_path, "broken", broken)).returncode != 0


# -- promtool test rules --------------------------------------------------------------------------
def promtool_test(tmp_path, rules_file, tests: list[dict]) -> None:
    path = tmp_path / "test.yaml"
    path.write_text(yaml.safe_dump({"rule_files": [rules_file.name], "evaluation_interval": "1m", "tests": tests}, sort_keys=False))
    proc = run("promtool", "test", "rules", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def expected(rule: dict, labels: dict[str, str]) -> dict:
    """What promtool reports for a firing alert: its labels, and its annotations with $labels filled in."""
    fill = lambda text: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m[1]], text)
    return {"exp_labels": {**labels, **rule["labels"]}, "exp_annotations": {k: fill(v) for k, v in rule["annotations"].items()}}


def rule_named(spec: dict, name: str) -> dict:
    [rule] = [r for g in spec["groups"] for r in g["rules"] if r.get("alert") == name]
    return rule


def backoff_restarts(minutes: int, containers: int = 1) -> str:
    """kube-state-metrics' restart counter of a pod whose `containers` crash at once, sampled every
    minute, under the kubelet's back-off: restarts after 10 s, then 20, 40, 80, 160 s, then every 300 s."""
    at, delay, times = 0, 10, []
    while at <= minutes * 60:
        at += delay
        times.append(at)
        delay = min(delay * 2, 300)
    return " ".join(str(containers * sum(1 for t in times if t <= m * 60)) for m in range(minutes + 1))


def test_restart_alert_stays_silent_on_crash_loops_the_kubelet_allows(tmp_path):
    """The design's rule (kept verbatim) sums a pod's restarts over 5 minutes against 0.5 a second.
    Under the kubelet's back-off even a pod of 8 containers crashing together stays far below it,
    so a crash loop pages through ServiceCrashLooping (tests/test_platform_alerts.py), not this."""
    spec = prometheus_rules(recorded("dev"))["monitoring/platform"]
    rules_file = write_rules(tmp_path, "platform", spec)
    one = 'kube_pod_container_status_restarts_total{namespace="checkout", pod="orders-7d9f", container="orders", job="kube-state-metrics", instance="10.0.3.7:8080"}'
    many = 'kube_pod_container_status_restarts_total{namespace="web", pod="storefront-5c4b", container="storefront", job="kube-state-metrics", instance="10.0.3.7:8080"}'
    promtool_test(
        tmp_path,
        rules_file,
        [
            {
                "interval": "1m",
                "input_series": [{"series": one, "values": backoff_restarts(40)}, {"series": many, "values": backoff_restarts(40, containers=8)}],
                "alert_rule_test": [{"eval_time": f"{m}m", "alertname": "HighPodRestartRate", "exp_alerts": []} for m in (5, 10, 20, 40)],
            }
        ],
    )


def test_the_backoff_series_is_the_kubelets():
    # 10 s, 30 s, 70 s, 150 s, 310 s, then every 300 s: 4 restarts in the first 3 minutes, 1 per 5 minutes after.
    assert backoff_restarts(12).split() == ["0", "2", "3", "4", "4", "4", "5", "5", "5", "5", "5", "6", "6"]
    assert backoff_restarts(3, containers=8).split() == ["0", "16", "24", "32"]


def test_networking_addon_alerts_fire_on_a_stale_sync_and_a_missing_cni_agent(tmp_path):
    spec = prometheus_rules(recorded("dev"))["monitoring/platform"]
    rules_file = write_rules(tmp_path, "platform", spec)
    dns = expected(rule_named(spec, "ExternalDnsSyncStale"), {})
    cni = rule_named(spec, "IstioCniAgentUnavailable")
    cni_firing = {"exp_labels": cni["labels"], "exp_annotations": {**cni["annotations"], "summary": "The Istio CNI agent is unavailable on 1 node(s)"}}
    unavailable = 'kube_daemonset_status_number_unavailable{namespace="istio-cni", daemonset="istio-cni-node"}'
    promtool_test(
        tmp_path,
        rules_file,
        [
            {
                "interval": "1m",
                # The last sync stays at t=0; one node loses its agent at t=0.
                "input_series": [
                    {"series": "external_dns_controller_last_sync_timestamp_seconds", "values": "0x40"},
                    {"series": unavailable, "values": "1x40"},
                ],
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": "ExternalDnsSyncStale", "exp_alerts": []},
                    {"eval_time": "25m", "alertname": "ExternalDnsSyncStale", "exp_alerts": [dns]},
                    {"eval_time": "10m", "alertname": "IstioCniAgentUnavailable", "exp_alerts": []},
                    {"eval_time": "20m", "alertname": "IstioCniAgentUnavailable", "exp_alerts": [cni_firing]},
                ],
            }
        ],
    )


def test_networking_alerts_follow_their_addons(scratch):
    from engine.stacks import run as run_stack

    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["external-dns"].update(enabled=False))
    names = {r["alert"] for _, r in alerts(run_stack("dev", scratch.root))}
    assert "IstioCniAgentUnavailable" in names and "ExternalDnsSyncStale" not in names


def outage_minutes(budget: float, burn: float = 14.4) -> int:
    """Minutes of total failure after which the 1h window burns faster than `burn`, plus the 2m `for` and slack."""
    return math.ceil(60 * burn * budget) + 5


SERVICE_CASES = [(stack, svc.name) for stack in STACKS for svc in load(stack, ROOT).services]


@pytest.mark.parametrize("stack, name", SERVICE_CASES)
def test_a_5xx_burst_pages_the_owning_team_and_healthy_traffic_is_silent(stack, name, tmp_path):
    svc = next(s for s in load(stack, ROOT).services if s.name == name)
    spec = prometheus_rules(recorded(stack))[f"{svc.team}/{svc.name}"]
    rules_file = write_rules(tmp_path, svc.name, spec)
    dest = f'reporter="destination", destination_workload_namespace="{svc.team}", destination_workload="{svc.name}-primary"'
    budget = svc.slo.budget("availability")
    start, outage = 180, outage_minutes(budget)
    labels = {"team": svc.team, "namespace": svc.team, "service": svc.name, "slo": "availability"}
    fast, slow = (rule_named(spec, slo.ALERTS["availability"][s]) for s in ("critical", "warning"))
    promtool_test(
        tmp_path,
        rules_file,
        [
            {  # Healthy: 1000 requests a minute, a fifth of the budget failing.
                "interval": "1m",
                "input_series": [
                    {"series": f'istio_requests_total{{{dest}, response_code="200"}}', "values": "0+1000x400"},
                    {"series": f'istio_requests_total{{{dest}, response_code="503"}}', "values": f"0+{1000 * budget / 5}x400"},
                ],
                "alert_rule_test": [{"eval_time": f"{t}m", "alertname": a, "exp_alerts": []} for t in (60, 200, 400) for a in (fast["alert"], slow["alert"])],
            },
            {  # A total outage from minute `start`: every request a 5xx.
                "interval": "1m",
                "input_series": [
                    {"series": f'istio_requests_total{{{dest}, response_code="200"}}', "values": f"0+1000x{start} {1000 * start}x{outage}"},
                    {"series": f'istio_requests_total{{{dest}, response_code="500"}}', "values": f"0x{start} 1000+1000x{outage}"},
                ],
                "alert_rule_test": [
                    {"eval_time": f"{start - 1}m", "alertname": fast["alert"], "exp_alerts": []},
                    {"eval_time": f"{start + outage}m", "alertname": fast["alert"], "exp_alerts": [expected(fast, labels)]},
                ],
            },
            {  # A slow burn: five times the budget. A ticket after the 2h and 1d windows agree, never a page.
                "interval": "1m",
                "input_series": [
                    {"series": f'istio_requests_total{{{dest}, response_code="200"}}', "values": "0+1000x300"},
                    {"series": f'istio_requests_total{{{dest}, response_code="500"}}', "values": f"0+{round(1000 * budget * 5 / (1 - budget * 5), 6)}x300"},
                ],
                "alert_rule_test": [
                    {"eval_time": "240m", "alertname": fast["alert"], "exp_alerts": []},
                    {"eval_time": "240m", "alertname": slow["alert"], "exp_alerts": [expected(slow, labels)]},
                ],
            },
        ],
    )
    # The alert as it fires, labels and all, reaches the team's pager.
    receiver = load(stack, ROOT).spec.teams[svc.team].alerts.critical
    fired = {**labels, **fast["labels"], "alertname": fast["alert"]}
    assert routes_to(config_file(recorded(stack), tmp_path), **fired) == receiver


@pytest.mark.parametrize("stack, name", [c for c in SERVICE_CASES if c[0] == "prod"])
def test_slow_requests_burn_the_latency_budget(stack, name, tmp_path):
    svc = next(s for s in load(stack, ROOT).services if s.name == name)
    spec = prometheus_rules(recorded(stack))[f"{svc.team}/{svc.name}"]
    rules_file = write_rules(tmp_path, svc.name, spec)
    dest = f'reporter="destination", destination_workload_namespace="{svc.team}", destination_workload="{svc.name}"'
    bucket = lambda le: f'istio_request_duration_milliseconds_bucket{{{dest}, le="{le}"}}'
    count = f"istio_request_duration_milliseconds_count{{{dest}}}"
    start, outage = 180, outage_minutes(svc.slo.budget("latency"))
    labels = {"team": svc.team, "namespace": svc.team, "service": svc.name, "slo": "latency"}
    fast = rule_named(spec, slo.ALERTS["latency"]["critical"])
    promtool_test(
        tmp_path,
        rules_file,
        [
            {
                "interval": "1m",
                # Prometheus 3 writes the bound as a float: the rule must match both spellings; this one is the float.
                "input_series": [
                    {"series": bucket(f"{svc.slo.latency_ms}.0"), "values": f"0+1000x{start} {1000 * start}x{outage}"},
                    {"series": count, "values": f"0+1000x{start + outage}"},
                ],
                "alert_rule_test": [
                    {"eval_time": f"{start - 1}m", "alertname": fast["alert"], "exp_alerts": []},
                    {"eval_time": f"{start + outage}m", "alertname": fast["alert"], "exp_alerts": [expected(fast, labels)]},
                ],
            }
        ],
    )


def test_no_5xx_yet_is_a_zero_error_ratio_and_no_traffic_is_none(tmp_path):
    """Envoy creates the 5xx series at the first 5xx: until then the ratio is 0, not missing; an idle
    service has no ratio at all (not NaN, which would poison the 30-day budget)."""
    svc = next(s for s in load("dev", ROOT).services if s.name == "inventory")
    spec = prometheus_rules(recorded("dev"))[f"{svc.team}/{svc.name}"]
    rules_file = write_rules(tmp_path, svc.name, spec)
    dest = f'reporter="destination", destination_workload_namespace="{svc.team}", destination_workload="{svc.name}"'
    labels = 'slo:sli_error:ratio_rate5m{namespace="catalog", service="inventory", slo="availability", team="catalog"}'
    path = tmp_path / "test.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "rule_files": [rules_file.name],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": [{"series": f'istio_requests_total{{{dest}, response_code="200"}}', "values": "0+100x20 2000x20"}],
                        "promql_expr_test": [
                            {"expr": "slo:sli_error:ratio_rate5m", "eval_time": "10m", "exp_samples": [{"labels": labels, "value": 0}]},
                            {"expr": "slo:sli_error:ratio_rate5m", "eval_time": "35m", "exp_samples": []},
                        ],
                    }
                ],
            }
        )
    )
    proc = run("promtool", "test", "rules", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
