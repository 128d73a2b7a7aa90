"""The `backup:` section: typed, validated schedules and retention, and no prod stack without backups."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import ROOT
from croniter import CroniterError, croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.spec import SpecError, load
from components.spec import backup
from components.spec.backup import BackupSpec, hours, longest_gap


def refused(scratch, stack: str, edit, message: str) -> None:
    scratch.edit(f"stacks/{stack}.yaml", edit)
    with pytest.raises(SpecError) as err:
        load(stack, scratch.root)
    assert f"stacks/{stack}.yaml: {message}" in str(err.value)


def test_both_stacks_declare_backups():
    for stack, retention, copy in (("dev", 168, None), ("prod", 720, "eu-central-1")):
        backup = load(stack, ROOT).spec.backup
        assert backup.retention_hours == retention
        assert (backup.copy_to.region if backup.copy_to else None) == copy


def test_prod_without_backups_is_refused(scratch):
    def drop(d):
        d.pop("backup")
        d["addons"].pop("velero")

    refused(scratch, "prod", drop, "backup: a prod stack must declare backups")


def test_dev_may_go_without_backups(scratch):
    def drop(d):
        d.pop("backup")
        d["addons"].pop("velero")

    scratch.edit("stacks/dev.yaml", drop)
    assert load("dev", scratch.root).spec.backup is None


def test_backup_and_velero_come_together(scratch):
    refused(scratch, "dev", lambda d: d["addons"].pop("velero"), "backup: declared, but the velero addon is not enabled")


def test_velero_without_backup_settings_is_refused(scratch):
    refused(scratch, "dev", lambda d: d.pop("backup"), "addons.velero: enabled without a `backup:` section")


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("teams", "0 2 * *", "backup.schedules.teams: '0 2 * *' is not a cron expression of five fields"),
        ("platform", "0 25 * * *", "backup.schedules.platform: '0 25 * * *' is not a cron expression"),
        ("vaultSnapshot", "@hourly", "backup.schedules.vaultSnapshot: '@hourly' is not a cron expression of five fields"),
        ("sealingKeys", "0 0 1 */2 *", "backup.schedules: sealingKeys: '0 0 1 */2 *' leaves"),
    ],
)
def test_bad_schedules_are_refused(scratch, key, value, message):
    refused(scratch, "dev", lambda d: d["backup"]["schedules"].update({key: value}), message)


def test_retention_must_outlive_two_runs(scratch):
    refused(
        scratch,
        "dev",
        lambda d: d["backup"].update(retention="36h"),
        "backup: retention 36h is shorter than two runs of schedules.teams ('0 2 * * *', up to 1d apart); keep backups at least 2d",
    )


@pytest.mark.parametrize("retention", ["30", "1w", "0d", "-3d"])
def test_retention_is_a_duration(scratch, retention):
    refused(scratch, "dev", lambda d: d["backup"].update(retention=retention), "backup.retention: String should match pattern")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["backup"].update(copyTo={"region": "Europe"}), "backup.copyTo.region: String should match pattern"),
        (
            lambda d: d["backup"].update(copyTo={"region": "eu-central-1", "roleArn": "arn:aws:iam::12:role/x"}),
            "backup.copyTo.roleArn: String should match pattern",
        ),
        (lambda d: d["backup"].update(copyto={"region": "eu-central-1"}), "backup.copyto: unknown key 'copyto'"),
        (
            lambda d: d["backup"].update(imageMirror="registry.example.com/mirror/"),
            "backup.imageMirror: 'registry.example.com/mirror/' is not under policy.allowedRegistries",
        ),
    ],
)
def test_bad_copy_targets_and_mirrors_are_refused(scratch, edit, message):
    refused(scratch, "dev", edit, message)


def test_cron_gaps_and_durations():
    assert longest_gap("0 2 * * *") == timedelta(days=1)
    assert longest_gap("0 */4 * * *") == timedelta(hours=4)
    assert longest_gap("0 0 * * 1") == timedelta(days=7)
    # Months differ: the longest gap of a monthly schedule is 31 days.
    assert longest_gap("0 0 1 * *") == timedelta(days=31)
    assert (hours("30d"), hours("36h")) == (720, 36)
    with pytest.raises(ValueError):
        hours("30m")


def test_cross_account_copy_names_its_account():
    spec = BackupSpec.model_validate(
        {
            "retention": "30d",
            "copyTo": {"region": "us-east-1", "roleArn": "arn:aws:iam::999988887777:role/backup-copy"},
            "repositoryPassword": {"config": "backupRepositoryPassword"},
        }
    )
    assert spec.copy_to.account == "999988887777"
    password = {"config": "backupRepositoryPassword"}
    assert BackupSpec.model_validate({"retention": "30d", "copyTo": {"region": "us-east-1"}, "repositoryPassword": password}).copy_to.account is None


def test_the_key_renewal_checked_is_the_one_the_controller_uses(stack):
    from components.spec.backup import SEALING_KEY_RENEWAL

    values = stack.named("sealed-secrets-sealed-secrets", "kubernetes:helm.sh/v3:Release").inputs["values"]
    assert values["keyrenewperiod"] == f"{int(SEALING_KEY_RENEWAL.total_seconds()) // 3600}h" == "720h"


def test_a_copy_in_the_stacks_own_region_is_refused_before_anything_is_created(scratch):
    from engine.runtime import ProgramError
    from engine.stacks import run

    scratch.edit("stacks/prod.yaml", lambda d: d["backup"]["copyTo"].update(region="eu-west-1"))
    with pytest.raises(ProgramError) as err:
        run("prod", scratch.root)
    assert "stacks/prod.yaml: backup.copyTo.region: eu-west-1 is the stack's own region" in str(err.value)
    assert err.value.registered == [] or all(r.type == "pulumi:pulumi:Stack" for r in err.value.registered)


# Cron fields as people write them: a star, a step, a range, a list, a single value.
def _field(low: int, high: int):
    value = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        st.integers(2, max(2, (high - low) // 2)).map(lambda n: f"*/{n}"),
        st.tuples(value, value).map(lambda p: f"{min(p)}-{max(p)}"),
        st.lists(value, min_size=1, max_size=3, unique=True).map(lambda v: ",".join(map(str, sorted(v)))),
        value.map(str),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(_field(0, 59), _field(0, 23), _field(1, 31), _field(1, 12), _field(0, 6)))
def test_the_day_by_day_gap_is_croniters(fields):
    """longest_gap computes plain schedules day by day; croniter, stepping run by run, is the
    reference: both give the same longest gap, or both find the schedule never runs."""
    expression = " ".join(fields)
    if not croniter.is_valid(expression):
        return

    def by_croniter() -> timedelta:
        runs = backup._croniter_runs(expression)
        previous, longest = next(runs), timedelta(0)
        for _ in range(2000):
            if previous - backup._START >= backup._HORIZON:
                break
            current = next(runs)
            longest, previous = max(longest, current - previous), current
        return longest

    try:
        expected = by_croniter()
    except CroniterError:
        with pytest.raises((CroniterError, ValueError, StopIteration)):
            longest_gap.__wrapped__(expression)
        return
    assert longest_gap.__wrapped__(expression) == expected, expression


def test_plain_schedules_skip_croniter(monkeypatch):
    """The day-by-day path really serves the plain forms (the ones every stack uses), and the
    forms whose day rules differ between implementations still go to croniter."""
    calls = []
    monkeypatch.setattr(backup, "_croniter_runs", lambda e: calls.append(e) or iter(()))
    for expression in ("0 2 * * *", "0 */6 * * *", "15 * * * *", "30 3 * * 0", "0 4 1 * *"):
        longest_gap.__wrapped__(expression)
    assert calls == []
    for expression in ("0 0 L * *", "0 0 1,15 * 1", "0 0 * * 1#2"):
        with pytest.raises(StopIteration):
            longest_gap.__wrapped__(expression)
    assert calls == ["0 0 L * *", "0 0 1,15 * 1", "0 0 * * 1#2"]
