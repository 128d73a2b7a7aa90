"""The `backup:` section: typed, validated schedules and retention, and no prod stack without backups."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

import pytest
from conftest import ROOT
from croniter import CroniterBadDateError, croniter
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


# What Kubernetes CronJobs and Velero Schedules refuse (robfig/cron v3's standard parser) is refused here,
# through the model, with the key named; croniter would take most of these.
@pytest.mark.parametrize(
    "value, message",
    [
        ("0 0 1W * *", "day-of-month '1W': L, W and # (last, nearest weekday, nth weekday) are Quartz extensions"),
        ("0 0 31W * *", "day-of-month '31W': L, W and #"),
        ("0 0 L * *", "day-of-month 'L': L, W and #"),
        ("0 0 * * 5L", "day-of-week '5L': L, W and #"),
        ("0 0 * * 1#2", "day-of-week '1#2': L, W and #"),
        ("0 0 * * MON#1", "day-of-week 'MON#1': L, W and #"),
        ("0 0 * * 7", "day-of-week '7': it takes *, ?, values 0-6 or sun-sat"),
        ("0 0 * * 5-7", "day-of-week '5-7': it takes"),
        ("0 0 * * FRI-MON", "day-of-week 'FRI-MON': it takes *, ?, values 0-6 or sun-sat, ranges a-b (not wrapping)"),
        ("0 0 JAN * *", "day-of-month 'JAN': it takes *, ?, values 1-31,"),
        ("*/0 * * * *", "minute '*/0': it takes"),
    ],
)
def test_schedules_the_cronjob_and_velero_parser_refuses_are_refused(scratch, value, message):
    prefix = f"backup.schedules.teams: {value!r} is not a cron expression Kubernetes CronJobs and Velero Schedules accept (their parser is robfig/cron's standard one): "
    refused(scratch, "dev", lambda d: d["backup"]["schedules"].update(teams=value), prefix + message)


def test_a_schedule_that_never_runs_is_refused(scratch):
    refused(scratch, "dev", lambda d: d["backup"]["schedules"].update(teams="0 0 30 2 *"), "backup.schedules.teams: '0 0 30 2 *' never runs")


@pytest.mark.parametrize(
    "expression, gap",
    [
        # Rarer than the year measured: from one February 29th to the next.
        ("0 0 29 2 *", timedelta(days=1461)),
        # Thousands of runs in January, then nothing until the next: from January 2nd 23:59 to January 1st.
        ("* * 1,2 1 *", timedelta(days=363, minutes=1)),
        ("* * 1 1,7 *", timedelta(days=183, minutes=1)),
        # Both day fields restricted: either may match (1st of the month or Monday)...
        ("0 0 1 * 1", timedelta(days=7)),
        ("0 0 */2 * 1", timedelta(days=2)),
        ("0 0 1-31 * MON", timedelta(days=1)),
        # ...but a star (`*` or `?`, unstepped) makes both match, even beside a restricted field.
        ("0 0 ? * 1", timedelta(days=7)),
        ("0 0 */1 * 1", timedelta(days=7)),
        ("30 4 1 JAN,jul ?", timedelta(days=184)),
        # A range of one value is that value (croniter would read 5-5 as every day).
        ("0 0 5-5 * *", timedelta(days=31)),
        ("0 0 5-5/2 * *", timedelta(days=31)),
    ],
)
def test_gaps_are_exact_however_rare_or_dense_the_runs(expression, gap):
    assert longest_gap.__wrapped__(expression) == gap


# Cron fields as robfig/cron writes them: a star or `?` (day fields), steps */n, a-b/n and a/n, ranges,
# lists, single values, and names (any case) for months and weekdays.
def _field(low: int, high: int, names: tuple[str, ...] = (), question: bool = False):
    def spell(number: int, how) -> str:
        return str(number) if how is str else how(names[number - low])

    value, how, step = st.integers(low, high), st.sampled_from([str, str.upper, str.lower] if names else [str]), st.integers(1, high - low)
    # Ranges of two values at least: croniter reads 5-5 as a star (robfig as 5; see the exact cases above).
    ranged = st.tuples(st.integers(low, high - 1), step, how).map(lambda r: f"{spell(r[0], r[2])}-{spell(min(high, r[0] + r[1]), r[2])}")
    item = st.one_of(
        st.tuples(value, how).map(lambda r: spell(*r)),
        ranged,
        st.tuples(ranged, step).map(lambda r: f"{r[0]}/{r[1]}"),
        st.tuples(value, how, step).map(lambda r: f"{spell(r[0], r[1])}/{r[2]}"),
        st.integers(2, high - low).map(lambda n: f"*/{n}"),
    )
    stars = ["*", "*/1"] + (["?"] if question else [])
    return st.one_of(st.sampled_from(stars), st.lists(item, min_size=1, max_size=3).map(",".join))


MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class NeverRuns(Exception):
    """croniter finds no run of the schedule at all (February 30th)."""


def _gap_by_croniter(minute: str, hour: str, days: str, month: str, weekdays: str) -> timedelta:
    """The longest gap as croniter finds it, run day by run day: each run day's first run is the next
    after the previous midnight, its last the one before the next midnight, and the gaps within a day
    come from stepping through one run day's runs. Day fields combine as robfig/cron combines them (a
    day matches both when either field is `*` or `?` unstepped, else either), so croniter gets each day
    field on its own when either may match."""

    def star(text: str) -> bool:
        return any(item in ("*", "?", "*/1", "?/1") for item in text.split(","))

    both = star(days) or star(weekdays)
    schedules = [f"{minute} {hour} {days} {month} {weekdays}"] if both else [f"{minute} {hour} {days} {month} *", f"{minute} {hour} * {month} {weekdays}"]
    second, day = timedelta(seconds=1), timedelta(days=1)

    iterators = [croniter(expression, backup._START, day_or=False) for expression in schedules]

    def runs_after(at: datetime) -> list[Optional[datetime]]:
        found: list[Optional[datetime]] = []
        for runs in iterators:
            runs.set_current(at, force=True)
            try:
                found.append(runs.get_next(datetime))
            except CroniterBadDateError:
                found.append(None)
        return found

    def first_run(at: datetime) -> datetime:
        found = [run for run in runs_after(at - second) if run is not None]
        if not found:
            raise NeverRuns
        return min(found)

    def last_run(run_day: datetime) -> datetime:
        found = []
        for runs in iterators:
            runs.set_current(run_day + day, force=True)
            try:
                found.append(runs.get_prev(datetime))
            except CroniterBadDateError:
                pass  # this half of an either-day schedule never ran before: the other half's run counts
        return max(found)

    first = first_run(backup._START)
    run_day = first.replace(hour=0, minute=0)
    last = last_run(run_day)
    # The first run day's runs, one by one, from whichever day field made it a run day.
    stepping = next(runs for runs, found in zip(iterators, runs_after(first - second), strict=True) if found == first)
    within = [first]
    while within[-1] < last:
        within.append(stepping.get_next(datetime))
    longest = max((b - a for a, b in zip(within, within[1:], strict=False)), default=timedelta(0))
    while True:
        following = first_run(run_day + day)
        longest = max(longest, following - last)
        run_day = following.replace(hour=0, minute=0)
        if run_day - backup._START >= backup._HORIZON:
            return longest
        last = last_run(run_day)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(_field(0, 59), _field(0, 23), _field(1, 31, question=True), _field(1, 12, MONTHS), _field(0, 6, WEEKDAYS, question=True)))
def test_gaps_are_croniters_run_day_by_run_day(fields):
    """Every form Kubernetes and Velero accept is accepted, and its longest gap is the one croniter,
    an independent implementation, finds (or both find it never runs)."""
    expression = " ".join(fields)
    if not croniter.is_valid(expression):
        return  # croniter cannot be the reference for what it refuses (e.g. `?` outside the day fields)
    try:
        expected = _gap_by_croniter(*fields)
    except NeverRuns:
        with pytest.raises(ValueError, match="never runs"):
            backup._cron(expression)
        return
    assert backup._cron(expression) == expression
    assert longest_gap.__wrapped__(expression) == expected, expression
