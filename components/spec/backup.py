"""The `backup:` section of a stack: what Velero and the snapshot jobs back up, how often, for how long,
and where the second copy lives.

Schedules are cron expressions of five fields (minute hour day-of-month month day-of-week), the
syntax both Kubernetes CronJobs and Velero Schedules take. Both parse it with robfig/cron v3's standard
parser, which is stricter than most crons (no L, W, #, no 7 for Sunday, no ranges that wrap), so this
module reads schedules the way that parser does: a schedule it would refuse is refused here rather than
by the API server or Velero after `pulumi up`, and the gaps between runs are the ones that really occur.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Optional

from croniter import croniter
from pydantic import AfterValidator, model_validator

from .alerting import SecretConfig
from .base import Spec, field

DURATION = r"^[1-9][0-9]*(h|d)$"
REGION = r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$"
BUCKET = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"
# The Sealed Secrets controller makes a new key this often (its chart's keyrenewperiod, set explicitly
# by components/addons/sealed_secrets.py); the keys must be backed up more often than that.
SEALING_KEY_RENEWAL = timedelta(days=30)
_START = datetime(2026, 1, 1, tzinfo=timezone.utc)
# How far ahead a schedule's gaps are measured: long enough to see every month and weekday once.
_HORIZON = timedelta(days=400)
# The longest a valid schedule waits for its next run (February 29th: eight years across 2100).
_SEARCH = timedelta(days=366 * 9)

# robfig/cron v3's fields: name, lowest, highest, names. Its day-of-week ends at 6 (7 is not Sunday there).
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, {name: number for number, name in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}),
    ("day-of-week", 0, 6, {name: number for number, name in enumerate("sun mon tue wed thu fri sat".split())}),
)
# One item of a field's comma-separated list: `*` or `?`, or a value or range a-b, each with an optional step /n.
_ITEM = re.compile(r"(?:(?P<star>[*?])|(?P<low>[0-9]+|[a-z]+)(?:-(?P<high>[0-9]+|[a-z]+))?)(?:/(?P<step>[0-9]+))?")
_QUARTZ = re.compile(r"[0-9]*[lw]|l-?[0-9]*|lw|.*#.*")


def _refused(expression: str, name: str, item: str, low: int, high: int, names: dict[str, int]) -> ValueError:
    if _QUARTZ.fullmatch(item.lower()):
        why = "L, W and # (last, nearest weekday, nth weekday) are Quartz extensions it does not know"
    else:
        spelled = f"{low}-{high}" + (f" or {min(names, key=names.__getitem__)}-{max(names, key=names.__getitem__)}" if names else "")
        why = f"it takes *, ?, values {spelled}, ranges a-b (not wrapping), steps */n, a-b/n, a/n, and lists of those"
    return ValueError(
        f"{expression!r} is not a cron expression Kubernetes CronJobs and Velero Schedules accept "
        f"(their parser is robfig/cron's standard one): {name} {item!r}: {why}"
    )


def _value(token: Optional[str], names: dict[str, int]) -> Optional[int]:
    return None if token is None else names.get(token, int(token) if token.isdigit() else None)


def _parse(expression: str) -> tuple[list[frozenset[int]], bool]:
    """The minutes, hours, days, months and weekdays a schedule allows, read as robfig/cron v3 reads them,
    and whether a day must match both day fields (when either is a star: `*` or `?` unstepped, so `*/2`
    is none) rather than either."""
    values, stars = [], []
    for text, (name, low, high, names) in zip(expression.split(), _FIELDS, strict=True):
        allowed: set[int] = set()
        star = False
        for item in text.split(","):
            match = _ITEM.fullmatch(item.lower())
            if match is None:
                raise _refused(expression, name, item, low, high, names)
            step = int(match["step"] or 1)
            star = star or bool(match["star"]) and step == 1
            first: Optional[int] = low if match["star"] else _value(match["low"], names)
            # "a/n" is a-highest/n.
            last = high if match["star"] or match["step"] and not match["high"] else _value(match["high"] or match["low"], names)
            if step == 0 or first is None or last is None or not low <= first <= last <= high:
                raise _refused(expression, name, item, low, high, names)
            allowed.update(range(first, last + 1, step))
        values.append(frozenset(allowed))
        stars.append(star)
    return values, stars[2] or stars[4]


def _cron(expression: str) -> str:
    if len(expression.split()) != 5:
        raise ValueError(f'{expression!r} is not a cron expression of five fields (minute hour day-of-month month day-of-week), e.g. "0 2 * * *"')
    _parse(expression)
    # croniter, the common reading in Python, must agree too: it refuses the odd forms robfig takes but nobody
    # means (`?` in the minute, hour or month field).
    if not croniter.is_valid(expression):
        raise ValueError(f'{expression!r} is not a cron expression (minute hour day-of-month month day-of-week), e.g. "0 2 * * *"')
    longest_gap(expression)
    return expression


Cron = Annotated[str, AfterValidator(_cron)]


@functools.lru_cache(maxsize=256)
def longest_gap(expression: str) -> timedelta:
    """The longest time between two runs of a cron schedule, as Kubernetes and Velero run it, over the next
    year, or up to its second run if it runs less often (February 29th: four years). Exact and quick: every
    run day has the same times of day, so the longest gap is either between two of those times or from one
    run day's last run to the next run day's first."""
    (minutes, hours_, days, months, weekdays), both = _parse(expression)
    times = sorted(timedelta(hours=h, minutes=m) for h in hours_ for m in minutes)
    longest = max((later - earlier for earlier, later in zip(times, times[1:], strict=False)), default=timedelta(0))

    def runs_on(day: datetime) -> bool:
        by_date, by_weekday = day.day in days, (day.weekday() + 1) % 7 in weekdays
        return day.month in months and ((by_date and by_weekday) if both else (by_date or by_weekday))

    run_days = (day for day in (_START + timedelta(days=n) for n in range(_SEARCH.days)) if runs_on(day))
    previous = next(run_days, None)
    while previous is not None:
        current = next(run_days, None)
        if current is None:
            break
        longest = max(longest, current + times[0] - (previous + times[-1]))
        if current - _START >= _HORIZON:
            return longest
        previous = current
    raise ValueError(f"{expression!r} never runs (no such date, e.g. February 31st); give a schedule that is due")


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
