"""The `backup:` section of a stack: what Velero and the snapshot jobs back up, how often, for how long,
and where the second copy lives.

Schedules are cron expressions of five fields (minute hour day-of-month month day-of-week), the
syntax both Kubernetes CronJobs and Velero Schedules take; they are parsed with croniter, so a
typo is refused here rather than by the API server after `pulumi up`.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Iterator, Optional

from croniter import CroniterError, croniter
from pydantic import AfterValidator, model_validator

from .alerting import SecretConfig
from .base import Spec, field

DURATION = r"^[1-9][0-9]*(h|d)$"
REGION = r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$"
BUCKET = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"
# The Sealed Secrets controller makes a new key this often (its chart's keyrenewperiod, set explicitly
# by components/addons/sealed_secrets.py); the keys must be backed up more often than that.
SEALING_KEY_RENEWAL = timedelta(days=30)
# How far ahead a schedule's gaps are measured: long enough to see every month and weekday once.
_HORIZON = timedelta(days=400)


def _cron(expression: str) -> str:
    fields = expression.split()
    if len(fields) != 5 or not croniter.is_valid(expression):
        raise ValueError(f'{expression!r} is not a cron expression of five fields (minute hour day-of-month month day-of-week), e.g. "0 2 * * *"')
    try:
        # Well-formed but never due (February 31st): the gap rules below could not measure it.
        croniter(expression, datetime(2026, 1, 1, tzinfo=timezone.utc)).get_next(datetime)
        longest_gap(expression)
    except (CroniterError, ValueError):
        raise ValueError(f"{expression!r} never runs (no such date, e.g. February 31st); give a schedule that is due") from None
    return expression


Cron = Annotated[str, AfterValidator(_cron)]


@functools.lru_cache(maxsize=256)
def longest_gap(expression: str) -> timedelta:
    """The longest time between two runs of a cron schedule over the next year (or its next
    2,000 runs, for schedules that run more often than every few hours)."""
    runs = _plain_runs(expression)
    if runs is None:
        runs = _croniter_runs(expression)
    previous, longest = next(runs), timedelta(0)
    for _ in range(2000):
        if previous - _START >= _HORIZON:
            break
        current = next(runs, None)
        if current is None:
            raise ValueError(f"{expression!r} stops running")
        longest = max(longest, current - previous)
        previous = current
    return longest


_START = datetime(2026, 1, 1, tzinfo=timezone.utc)
# The longest a valid schedule waits for its next run (February 29th: eight years across 2100).
_SEARCH = timedelta(days=366 * 9)


def _croniter_runs(expression: str) -> Iterator[datetime]:
    runs = croniter(expression, _START)
    while True:
        yield runs.get_next(datetime)


def _plain_runs(expression: str) -> Optional[Iterator[datetime]]:
    """The runs after _START of a schedule that lists its minutes, hours, days, months and weekdays
    plainly, computed day by day (croniter steps minute fields one run at a time, and a year of an
    hourly schedule is 2,000 steps per stack loaded). None for the forms whose day rules differ
    between cron implementations (day-of-month and weekday both set, L, #): croniter decides those.
    tests/test_backup_settings.py checks both ways agree."""
    (minutes, hours_, days, months, weekdays), nth = croniter.expand(expression)
    if nth or "l" in days or (days != ["*"] and weekdays != ["*"]):
        return None
    times = sorted(timedelta(hours=h, minutes=m) for h in (range(24) if hours_ == ["*"] else hours_) for m in (range(60) if minutes == ["*"] else minutes))

    def runs() -> Iterator[datetime]:
        day = _START
        while day - _START < _SEARCH:
            if (months == ["*"] or day.month in months) and (days == ["*"] or day.day in days) and (weekdays == ["*"] or (day.weekday() + 1) % 7 in weekdays):
                yield from (day + t for t in times if day + t > _START)
            day += timedelta(days=1)

    return runs()


def hours(duration: str) -> int:
    """ "30d" -> 720, "36h" -> 36."""
    match = re.match(DURATION, duration)
    if match is None:
        raise ValueError(f"{duration!r} is not a duration in hours or days, e.g. 720h or 30d")
    return int(duration[:-1]) * (24 if duration.endswith("d") else 1)


class BackupSchedules(Spec):
    teams: Cron = field("When every team namespace is backed up (Velero Schedule `teams`: objects and CSI volume snapshots).", default="0 2 * * *")
    platform: Cron = field(
        "When the platform namespaces that hold state (Vault, Argo CD, Sealed Secrets, monitoring, logs, traces, costs) are backed up (Velero Schedule `platform`).",
        default="0 */6 * * *",
    )
    sealing_keys: Cron = field(
        "When the Sealed Secrets controller's keys are backed up (Velero Schedule `sealing-keys`); must run more often than the controller renews its key (30 days).",
        default="0 * * * *",
    )
    vault_snapshot: Cron = field("When the CronJob `vault-snapshot` saves a Vault raft snapshot to the backup bucket.", default="15 * * * *")

    @model_validator(mode="after")
    def _keys_before_renewal(self) -> "BackupSchedules":
        if longest_gap(self.sealing_keys) >= SEALING_KEY_RENEWAL:
            raise ValueError(
                f"sealingKeys: {self.sealing_keys!r} leaves {longest_gap(self.sealing_keys).days} days between runs; "
                f"it must run more often than the controller renews its key ({SEALING_KEY_RENEWAL.days} days), or a new key could be lost"
            )
        return self


class CopyTarget(Spec):
    region: str = field("AWS region of the second copy (S3 replication from the primary bucket); must differ from the stack's region.", pattern=REGION)
    role_arn: Optional[str] = field(
        "IAM role Pulumi assumes to create the copy in another AWS account; omit to keep the copy in the stack's account.",
        default=None,
        pattern=r"^arn:aws:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$",
    )
    bucket_name: Optional[str] = field("Name of the copy's bucket (global across AWS); default <cluster>-backup-<region>.", default=None, pattern=BUCKET)

    @property
    def account(self) -> Optional[str]:
        return self.role_arn.split(":")[4] if self.role_arn else None


class RestoreSource(Spec):
    bucket_name: str = field("The bucket with the backups to restore, e.g. the lost region's copy (the old stack's backup.copyTo bucket).", pattern=BUCKET)
    region: str = field("AWS region of that bucket.", pattern=REGION)
    kms_key_arn: str = field(
        "ARN of the KMS key its objects are encrypted with (the copy's own key: `aws kms describe-key --key-id alias/<bucket>`).",
        pattern=r"^arn:(aws|aws-cn|aws-us-gov):kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$",
    )

    @model_validator(mode="after")
    def _key_beside_bucket(self) -> "RestoreSource":
        # S3 encrypts objects only with a key of the bucket's own region.
        key_region = self.kms_key_arn.split(":")[3]
        if key_region != self.region:
            raise ValueError(
                f"kmsKeyArn is a key in {key_region}, the bucket is in {self.region}; give the key of the bucket's region (alias/{self.bucket_name})"
            )
        return self


class BackupSpec(Spec):
    retention: str = field(
        "How long backups and snapshots are kept, in hours or days (e.g. 30d, 720h); the bucket expires objects one day later.", pattern=DURATION
    )
    schedules: BackupSchedules = field("When each backup runs (cron expressions, UTC).", default_factory=BackupSchedules)
    bucket_name: Optional[str] = field("Name of the backup bucket (global across AWS); default <cluster>-backup-<region>.", default=None, pattern=BUCKET)
    noncurrent_version_days: int = field(
        "Days an overwritten or deleted object version is kept in the backup buckets (versioning), for recovery.", default=7, ge=1
    )
    image_mirror: str = field(
        "Registry prefix the snapshot job pulls its public images through, e.g. an ECR pull-through cache of ECR Public "
        "(<account>.dkr.ecr.<region>.amazonaws.com/ecr-public/); empty: straight from ECR Public.",
        default="",
        pattern=r"^$|^[a-z0-9.-]+(:[0-9]+)?/([a-z0-9._-]+/)*$",
    )
    copy_to: Optional[CopyTarget] = field(
        "A second copy of every backup in another region (and optionally account), so losing the region is survivable; "
        "volume data then moves into the bucket too (moveData).",
        default=None,
    )
    move_data: Optional[bool] = field(
        "Copy volume data from the CSI snapshots into the backup bucket (Velero's data mover, Kopia, with the node agent), "
        "so it is replicated with the rest; default: on exactly when copyTo is declared, which requires it. "
        "On without copyTo rehearses the prod restore path in a stack without a second region.",
        default=None,
    )
    repository_password: Optional[SecretConfig] = field(
        "The Pulumi secret config key holding the password that encrypts the Kopia repository of moved volume data "
        "(Secret velero-repo-credentials); required when volume data moves. Keep it outside the cluster: "
        "a restore in another region needs the same password.",
        default=None,
    )

    restore_from: Optional[RestoreSource] = field(
        "Another stack's backups to restore from (after losing its region): a read-only Velero storage location "
        "`restore-source` and read access to that bucket and key; Velero never writes to it nor maintains its repositories.",
        default=None,
    )

    @property
    def retention_hours(self) -> int:
        return hours(self.retention)

    @property
    def moves_data(self) -> bool:
        return self.copy_to is not None if self.move_data is None else self.move_data

    @model_validator(mode="after")
    def _copy_moves_data(self) -> "BackupSpec":
        # Replicating the bucket copies only what is in it: without the data mover, volume data stays
        # in EBS snapshots of this region and a lost region loses every volume.
        if self.copy_to is not None and self.move_data is False:
            raise ValueError(
                "moveData: false with copyTo: volume data would stay in this region's EBS snapshots, so the copy "
                "could not restore any volume; remove moveData (copyTo turns it on) or copyTo"
            )
        if self.moves_data and self.repository_password is None:
            raise ValueError(
                "repositoryPassword: required when volume data moves into the bucket (moveData, or copyTo); "
                "name the Pulumi secret config key, e.g. {config: backupRepositoryPassword}, "
                "set with `pulumi config set --secret backupRepositoryPassword`"
            )
        if self.restore_from is not None and not self.moves_data:
            raise ValueError("restoreFrom: restoring moved volume data needs the node agent and the repository password; set moveData: true")
        return self

    @model_validator(mode="after")
    def _retention_outlives_schedules(self) -> "BackupSpec":
        # With a retention shorter than two runs, a single failed run leaves nothing to restore.
        for name, expression in self.schedules.model_dump(by_alias=True).items():
            gap = longest_gap(expression)
            if timedelta(hours=self.retention_hours) < 2 * gap:
                raise ValueError(
                    f"retention {self.retention} is shorter than two runs of schedules.{name} ({expression!r}, up to {_show(gap)} apart); "
                    f"keep backups at least {_show(2 * gap)}"
                )
        return self


def _show(gap: timedelta) -> str:
    total = int(gap.total_seconds()) // 3600
    return f"{total // 24}d" if total % 24 == 0 else f"{total}h"
