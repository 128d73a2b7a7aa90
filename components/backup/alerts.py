"""Backup alerts: a failed backup, a backup older than its schedule allows, a failing snapshot job.

They take the shape of every platform alert (components/monitoring/rules.py): `severity`, the
platform team's `team` label (Alertmanager routes them to it), a summary, a description and a
`runbook_url` to docs/runbooks/restore.md, which covers them all. "Older than expected" is twice the longest gap between two
runs of the schedule: one missed run is tolerated, two are not.
"""

from __future__ import annotations

from typing import Any

from components.monitoring.rules import Severity, alert
from components.spec.alerting import AlertingSpec
from components.spec.backup import BackupSpec, longest_gap

from . import vault_snapshot

# docs/runbooks/restore.md: how to check, and restore from, every backup these alerts watch.
RUNBOOK = "restore"
# Velero labels its backup metrics with the Schedule's name; the chart names its Service (the
# ServiceMonitor's job) after the release.
VELERO_JOB = "velero"


def _rule(
    alerting: AlertingSpec, name: str, expr: str, severity: Severity, summary: str, description: str, wait: str = "0m", labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return alert(alerting, name, expr, wait, severity, summary, description, labels={"team": alerting.platform_team, **(labels or {})}, runbook=RUNBOOK)


def too_old(schedule: str, limit: int) -> str:
    """No successful backup of `schedule` for `limit` seconds. Velero sets the last-success gauge only at a
    success, so after a Velero restart, and before the first success, the series is missing: the last
    success is the latest value within the limit, and a schedule Velero has known (its attempt counter is
    created at 0 with it) since the limit began, without one, fires too."""
    selector = f'{{schedule="{schedule}"}}'
    last = f"max by (schedule) (max_over_time(velero_backup_last_successful_timestamp{selector}[{limit}s]))"
    known = f"max by (schedule) (max_over_time(velero_backup_attempt_total{selector}[1h] offset {limit}s))"
    return f"(time() - {last} > {limit}) or ({known} unless on (schedule) {last})"


def max_age_seconds(expression: str) -> int:
    return int(2 * longest_gap(expression).total_seconds())


def rules(spec: BackupSpec, namespace: str, schedules: dict[str, str], vault: bool, alerting: AlertingSpec) -> list[dict[str, Any]]:
    """The rules for Velero in `namespace`, its `schedules` (settings key -> Schedule name), and the Vault snapshot job."""
    found = [
        _rule(
            alerting,
            "VeleroBackupFailed",
            'sum by (schedule) (increase(velero_backup_failure_total{schedule!=""}[2h])) > 0',
            "critical",
            "Velero backup of schedule {{ $labels.schedule }} failed",
            "A backup of schedule {{ $labels.schedule }} ended Failed: its namespaces have no new restore point. "
            "Inspect it with `velero backup describe --details` and `velero backup logs`.",
        ),
        _rule(
            alerting,
            "VeleroBackupPartiallyFailed",
            'sum by (schedule) (increase(velero_backup_partial_failure_total{schedule!=""}[2h])) > 0',
            "warning",
            "Velero backup of schedule {{ $labels.schedule }} partially failed",
            "Some items or volume snapshots of schedule {{ $labels.schedule }} were not backed up; `velero backup describe --details` lists them.",
        ),
        _rule(
            alerting,
            "VeleroDown",
            f'absent(up{{namespace="{namespace}", job="{VELERO_JOB}"}} == 1)',
            "critical",
            "Velero is not running or not scraped",
            "No backup runs and no backup metric is reported while Velero is down.",
            wait="15m",
        ),
    ]
    for key, name in schedules.items():
        limit = max_age_seconds(getattr(spec.schedules, key))
        found.append(
            _rule(
                alerting,
                "VeleroBackupTooOld",
                too_old(name, limit),
                "critical",
                f"The last successful backup of schedule {name} is older than {limit // 3600}h",
                f"Schedule {name} ({getattr(spec.schedules, key)}) has not completed a backup for two of its runs, or none ever since it was created.",
                labels={"schedule": name},
            )
        )
    if vault:
        job = vault_snapshot.NAME
        limit = max_age_seconds(spec.schedules.vault_snapshot)
        cronjob = f'namespace="{namespace}", cronjob="{job}"'
        succeeded = f"max by (namespace, cronjob) (kube_cronjob_status_last_successful_time{{{cronjob}}})"
        found += [
            _rule(
                alerting,
                "VaultSnapshotTooOld",
                # kube-state-metrics reports the last success only once there was one: a CronJob older than
                # the limit without any success fires too.
                f"(time() - {succeeded} > {limit}) or "
                f"((max by (namespace, cronjob) (kube_cronjob_created{{{cronjob}}}) < time() - {limit}) unless on (namespace, cronjob) {succeeded})",
                "critical",
                f"The last Vault raft snapshot is older than {limit // 3600}h",
                f"CronJob {namespace}/{job} ({spec.schedules.vault_snapshot}) has not succeeded for two of its runs, or never since it was "
                "created; a lost Vault would lose every secret written since.",
                labels={"schedule": job},
            ),
            _rule(
                alerting,
                "VaultSnapshotJobFailing",
                f'max by (job_name) (kube_job_status_failed{{namespace="{namespace}", job_name=~"{job}-.*"}}) > 0',
                "warning",
                "Vault snapshot job {{ $labels.job_name }} failed",
                f"A run of CronJob {namespace}/{job} failed: `kubectl -n {namespace} logs job/{{{{ $labels.job_name }}}} --all-containers`.",
            ),
        ]
    return found
