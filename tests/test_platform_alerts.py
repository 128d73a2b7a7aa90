"""Alerts that can fire, run by promtool on series shaped like the exporters': Karpenter's interruption
counter born at 1 after a restart (and its own consolidation, which must stay silent), a crash loop under
the kubelet's back-off, and backups that never succeeded."""

from __future__ import annotations

import re

from conftest import ROOT, recorded
from monitoring import KARPENTER, config_file, ksm, only, promtool_rules_test, routes_to, series

from components.backup.alerts import max_age_seconds
from components.spec import load


def rules_of(stack: str, name: str, namespace: str = "monitoring") -> list[dict]:
    return recorded(stack).manifest("PrometheusRule", name, namespace)["spec"]["groups"]


def rule(groups: list[dict], alert: str) -> dict:
    return next(r for g in groups for r in g["rules"] if r.get("alert") == alert)


def firing(groups: list[dict], alert: str, labels: dict[str, str]) -> dict:
    r = rule(groups, alert)
    fill = lambda text: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m[1]], text)
    return {"exp_labels": {**labels, **r["labels"]}, "exp_annotations": {k: fill(v) for k, v in r["annotations"].items()}}


def karpenter(replica: int, values: str, **labels: str) -> dict:
    target = {**KARPENTER, "instance": f"10.0.9.{replica}:8080", "pod": f"karpenter-5d8c7b{replica}-q2w3e"}
    return series("karpenter_nodeclaims_disrupted_total", {**target, **labels}, values)


def test_karpenter_interruptions_fire_on_the_first_interruption_after_a_restart_not_on_consolidation(tmp_path):
    groups = only(rules_of("dev", "platform"), "KarpenterInterruptions")
    pool = {"nodepool": "general", "capacity_type": "spot"}
    input_series = [
        # Karpenter (replica 1) consolidates all along: its own decisions, never an interruption.
        karpenter(1, "_x5 1+1x24 stale", reason="underutilized", **pool),
        karpenter(1, "_x10 1x19 stale", reason="empty", **pool),
        # EC2 reports the instances Karpenter itself terminates to the interruption queue (the old rule's metric).
        series(
            "karpenter_interruption_received_messages_total",
            {**KARPENTER, "instance": "10.0.9.1:8080", "message_type": "instance_terminated"},
            "_x5 1+1x24 stale",
        ),
        # It restarts at minute 30; the new Karpenter creates the interruption counter at 1 on the first spot interruption.
        karpenter(2, "_x31 1+1x18", reason="underutilized", **pool),
        karpenter(2, "_x40 1x19", reason="spot_interrupted", **pool),
    ]
    labels = {"reason": "spot_interrupted", "nodepool": "general"}
    tests = [
        {
            "interval": "1m",
            "input_series": input_series,
            "alert_rule_test": [
                {"eval_time": "35m", "alertname": "KarpenterInterruptions", "exp_alerts": []},
                {"eval_time": "41m", "alertname": "KarpenterInterruptions", "exp_alerts": [firing(groups, "KarpenterInterruptions", labels)]},
                {"eval_time": "58m", "alertname": "KarpenterInterruptions", "exp_alerts": []},
            ],
        }
    ]
    promtool_rules_test(tmp_path, groups, tests)


def crash_loop(start_min: int, minutes: int, crash_after: int = 5) -> tuple[str, str]:
    """The kubelet's back-off for a container that exits `crash_after` s after each start: restarts after
    10 s, doubling to 5 minutes. Sampled every 30 s: the restart count, and the CrashLoopBackOff wait."""
    restarts, waiting, t, delay, count = [], [], start_min * 60.0, 10.0, 0
    events = []  # (crash time, restart time)
    while t < (start_min + minutes) * 60:
        crash = t + crash_after
        events.append((crash, crash + delay))
        t, delay = crash + delay, min(delay * 2, 300)
    for i in range(minutes * 2 + start_min * 2 + 1):
        now = i * 30
        count = sum(1 for _, r in events if r <= now)
        restarts.append(str(count))
        waiting.append("1" if any(c <= now < r for c, r in events) else "_")
    return " ".join(restarts), " ".join(waiting)


def test_a_crash_loop_of_a_critical_service_pages_its_team_and_a_single_restart_does_not(tmp_path):
    svc = next(s for s in load("prod", ROOT).services if s.name == "orders")
    assert svc.tier == "critical"
    groups = rules_of("prod", svc.name, svc.team)
    pod = "orders-primary-7b6c5d4e3-q9w8e"
    restarts, waiting = crash_loop(0, 40)
    ids = {"namespace": "checkout", "pod": pod, "uid": "uid-1", "container": "orders"}
    calm = {"namespace": "checkout", "pod": "orders-primary-7b6c5d4e3-z1x2c", "uid": "uid-2", "container": "orders"}
    # kube-state-metrics restarts at minute 25: the same counts from a new instance.
    cut = 51
    input_series = [
        ksm("kube_pod_container_status_restarts_total", 1, " ".join(restarts.split()[:cut]) + " stale", **ids),
        ksm("kube_pod_container_status_restarts_total", 2, "_x" + str(cut + 1) + " " + " ".join(restarts.split()[cut + 1 :]), **ids),
        ksm("kube_pod_container_status_waiting_reason", 1, waiting, **ids, reason="CrashLoopBackOff"),
        # An OOM kill once: one restart, a short back-off, then running.
        ksm("kube_pod_container_status_restarts_total", 1, "0x20 1x60", **calm),
        ksm("kube_pod_container_status_waiting_reason", 1, "_x21 1 _x58", **calm, reason="CrashLoopBackOff"),
    ]
    labels = {"namespace": "checkout", "pod": pod, "container": "orders", "team": "checkout", "service": "orders"}
    fired = firing(groups, "ServiceCrashLooping", labels)
    tests = [
        {
            "interval": "30s",
            "input_series": input_series,
            "alert_rule_test": [
                {"eval_time": "3m", "alertname": "ServiceCrashLooping", "exp_alerts": []},
                {"eval_time": "9m", "alertname": "ServiceCrashLooping", "exp_alerts": [fired]},
                # At the back-off's 5-minute cap, and across the kube-state-metrics restart: still paging.
                {"eval_time": "38m", "alertname": "ServiceCrashLooping", "exp_alerts": [fired]},
            ],
        }
    ]
    promtool_rules_test(tmp_path, only(groups, "ServiceCrashLooping"), tests, "30s")
    # The design's restart alert cannot fire on it: the back-off keeps one container far below 0.5 restarts a second.
    platform = only(rules_of("prod", "platform"), "HighPodRestartRate")
    quiet = [
        {"interval": "30s", "input_series": input_series[:2], "alert_rule_test": [{"eval_time": "38m", "alertname": "HighPodRestartRate", "exp_alerts": []}]}
    ]
    promtool_rules_test(tmp_path, platform, quiet, "30s")
    receiver = load("prod", ROOT).spec.teams["checkout"].alerts.critical
    assert routes_to(config_file(recorded("prod"), tmp_path), alertname="ServiceCrashLooping", severity="critical", **labels) == receiver


def test_crash_loop_paging_is_for_critical_services_only(stack):
    for svc in load(stack.stack, ROOT).services:
        names = {r.get("alert") for g in rules_of(stack.stack, svc.name, svc.team) for r in g["rules"]}
        assert ("ServiceCrashLooping" in names) == (svc.tier == "critical"), svc.name


def test_backups_that_never_succeeded_are_too_old_with_one_alert_per_schedule(tmp_path):
    """dev's schedules: Velero knows them from hour 0 (its attempt counters are created at 0). platform
    succeeds at hour 2 and Velero restarts at hour 8 (the last-success gauge is gone until the next success);
    teams and sealing-keys never succeed; nor does the Vault snapshot CronJob, created at hour 0."""
    spec = load("dev", ROOT).spec.backup
    groups = only(rules_of("dev", "backup"), "VeleroBackupTooOld", "VaultSnapshotTooOld")
    schedules = {"teams": spec.schedules.teams, "platform": spec.schedules.platform, "sealing-keys": spec.schedules.sealing_keys}
    limits = {name: max_age_seconds(expr) // 3600 for name, expr in schedules.items()}
    vault_limit = max_age_seconds(spec.schedules.vault_snapshot) // 3600
    hours = max(*limits.values(), vault_limit) + 3
    velero = lambda name, replica, values, **labels: series(
        name,
        {"job": "velero", "namespace": "velero", "service": "velero", "instance": f"10.0.7.{replica}:8085", "pod": f"velero-6c5d{replica}-m4n5b", **labels},
        values,
    )
    input_series = [
        *(velero("velero_backup_attempt_total", 1, "0x8 stale", schedule=s) for s in schedules),
        *(velero("velero_backup_attempt_total", 2, f"_x9 0x{hours - 9}", schedule=s) for s in schedules),
        velero("velero_backup_last_successful_timestamp", 1, "_x2 7200x6 stale", schedule="platform"),
        ksm("kube_cronjob_created", 1, f"0x{hours}", namespace="velero", cronjob="vault-snapshot"),
    ]
    # Never succeeded: fires once Velero has known the schedule for its limit; platform: once its last success is older.
    due = lambda s, at: at > limits[s] + 2 if s == "platform" else at >= limits[s]
    expect = lambda at: [
        {"exp_labels": {"schedule": s, **rule_for(groups, s)["labels"]}, "exp_annotations": rule_for(groups, s)["annotations"]}
        for s in sorted(limits)
        if due(s, at)
    ]
    times = sorted({1, *(t for limit in limits.values() for t in (limit - 1, limit, limit + 3))} - {0})
    vault_fired = firing(groups, "VaultSnapshotTooOld", {"namespace": "velero", "cronjob": "vault-snapshot"})
    tests = [
        {
            "interval": "1h",
            "input_series": input_series,
            "alert_rule_test": [{"eval_time": f"{h}h", "alertname": "VeleroBackupTooOld", "exp_alerts": expect(h)} for h in times]
            + [
                {"eval_time": f"{vault_limit - 1}h", "alertname": "VaultSnapshotTooOld", "exp_alerts": []},
                {"eval_time": f"{vault_limit + 1}h", "alertname": "VaultSnapshotTooOld", "exp_alerts": [vault_fired]},
            ],
        }
    ]
    promtool_rules_test(tmp_path, groups, tests, "1h")


def rule_for(groups: list[dict], schedule: str) -> dict:
    return next(r for g in groups for r in g["rules"] if r.get("alert") == "VeleroBackupTooOld" and r["labels"]["schedule"] == schedule)


def test_a_failed_backup_fires_across_a_velero_restart_and_velero_down_fires(tmp_path):
    """Velero creates each schedule's counters at 0 when it starts (its own metrics' InitSchedule); a restart
    starts new series at 0. teams fails at minute 40, just before a restart at minute 45; platform partially
    fails at minute 70, after it. Velero then goes away at minute 130: its target stays `up` 0 for 15 minutes.
    A snapshot job of the CronJob fails at minute 50."""
    groups = only(rules_of("dev", "backup"), "VeleroBackupFailed", "VeleroBackupPartiallyFailed", "VeleroDown", "VaultSnapshotJobFailing")
    target = lambda replica: {
        "job": "velero",
        "namespace": "velero",
        "service": "velero",
        "instance": f"10.0.7.{replica}:8085",
        "pod": f"velero-6c5d{replica}-m4n5b",
    }
    input_series = [
        series("velero_backup_failure_total", {**target(1), "schedule": "teams"}, "0x39 1x5 stale"),
        series("velero_backup_failure_total", {**target(2), "schedule": "teams"}, "_x46 0x83"),
        series("velero_backup_partial_failure_total", {**target(2), "schedule": "platform"}, "_x46 0x23 1x60"),
        series("up", target(1), "1x45 stale"),
        series("up", target(2), "_x46 1x83 0x30"),
        ksm("kube_job_status_failed", 1, "_x50 1x100", namespace="velero", job_name="vault-snapshot-29412345"),
    ]
    failed = firing(groups, "VeleroBackupFailed", {"schedule": "teams"})
    partial = firing(groups, "VeleroBackupPartiallyFailed", {"schedule": "platform"})
    job = firing(groups, "VaultSnapshotJobFailing", {"job_name": "vault-snapshot-29412345"})
    down = firing(groups, "VeleroDown", {})
    tests = [
        {
            "interval": "1m",
            "input_series": input_series,
            "alert_rule_test": [
                {"eval_time": "30m", "alertname": "VeleroBackupFailed", "exp_alerts": []},
                {"eval_time": "60m", "alertname": "VeleroBackupFailed", "exp_alerts": [failed]},
                {"eval_time": "80m", "alertname": "VeleroBackupPartiallyFailed", "exp_alerts": [partial]},
                {"eval_time": "55m", "alertname": "VaultSnapshotJobFailing", "exp_alerts": [job]},
                {"eval_time": "120m", "alertname": "VeleroDown", "exp_alerts": []},
                {"eval_time": "150m", "alertname": "VeleroDown", "exp_alerts": [down]},
            ],
        }
    ]
    promtool_rules_test(tmp_path, groups, tests)
