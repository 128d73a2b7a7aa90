"""Who owns what a team's file names outside itself: the team, or the platform's offer.

A service file is untrusted input, and every field that names something outside the file (an ARN
in `awsPermissions`, the queue of `scaling.sqs`, a Vault path of `secrets`) must answer "who owns
that?". The answer is an ownership model, not a list of forbidden things:

- the team owns, in the stack's account and region, the resources named `<team>-*` (the name is the
  first variable of the resource's ARN format in the IAM catalogue: the bucket, queue, table,
  topic, stream...), and with `tagged: true` the resources carrying the tag `team=<team>`, which the
  rendered statement enforces with an `aws:ResourceTag/team` condition; in Vault, `<team>/...`;
- the platform offers more by listing it in the stack file (`offers`), per team or to every team;
- the platform owns `<cluster>` and `<cluster>-*` (Karpenter's interruption queue, Loki's and
  Velero's buckets, the aliases of the seal, backup and EKS-secrets keys) and the bucket names a
  stack sets for its addons: never referenceable by a team, and never offered.

Anything else is refused. Platform keys are referenced by key ID, which no name rule can judge:
their key policies name their users, so an IAM grant to any other role does nothing
(docs/security-model.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from pydantic import field_validator

from . import arns, iam_actions
from .base import DNS_LABEL, Spec, field

TEAM_TAG = "team"
VAULT_PATH = r"^[a-z0-9][a-z0-9_\-]*(/[a-z0-9][a-z0-9_\-]*)*$"


class AwsOffer(Spec):
    arn: str = field("An ARN the platform offers; a resource part ending in `*` offers everything it starts with.", pattern=r"^arn:")
    teams: list[str] = field("The teams it is offered to; empty: every team.", default_factory=list)
    why: str = field("What it is and why teams may use it (shown in refusals).", min_length=1)

    @field_validator("arn")
    @classmethod
    def _arn(cls, arn: str) -> str:
        if arns.resource_name(arn) is None:
            raise ValueError(f"{arn!r} names no resource of the IAM catalogue (arn:partition:service:region:account:<resource>)")
        if "*" in arn[:-1] or "?" in arn:
            raise ValueError(f"{arn!r}: an offer names one resource, or a prefix ending in `*`; no other wildcard")
        return arn


class VaultOffer(Spec):
    path: str = field("A Vault KV path prefix the platform offers for reading (`shared/tls` offers `shared/tls/...`).", pattern=VAULT_PATH)
    teams: list[str] = field("The teams it is offered to; empty: every team.", default_factory=list)
    why: str = field("What it holds and why teams may read it (shown in refusals).", min_length=1)


class Offers(Spec):
    aws: list[AwsOffer] = field("AWS resources teams may name in awsPermissions and scaling.sqs besides their own (`<team>-*`).", default_factory=list)
    vault: list[VaultOffer] = field("Vault paths teams may read besides their own (`<team>/...`).", default_factory=list)

    @field_validator("aws", "vault")
    @classmethod
    def _teams(cls, offers: list[Any]) -> list[Any]:
        for offer in offers:
            for team in offer.teams:
                if not re.match(DNS_LABEL, team):
                    raise ValueError(f"teams: {team!r} is not a team name")
        return offers

    def for_team(self, team: str) -> tuple[list[AwsOffer], list[VaultOffer]]:
        return ([o for o in self.aws if not o.teams or team in o.teams], [o for o in self.vault if not o.teams or team in o.teams])


@dataclass(frozen=True)
class Ownership:
    """What the validation context carries for the ownership rules of one stack."""

    platform: tuple[tuple[str, str, str], ...]  # (service prefix or "*", name pattern, what it is)
    offers: Offers
    teams: tuple[str, ...] = ()


def platform_names(cluster: str, buckets: Iterable[tuple[str, str]]) -> tuple[tuple[str, str, str], ...]:
    """The AWS names the platform keeps for itself in a stack: its cluster's, and the buckets it is told to use."""
    return (
        ("sqs", cluster, "Karpenter's interruption queue"),
        ("*", f"{cluster}-*", f"the platform's (names starting {cluster}-: Loki's and Velero's buckets, the seal, backup and EKS-secrets key aliases)"),
        *(("s3", name, what) for name, what in buckets),
    )


def of_stack(spec: Any) -> Ownership:
    """Who owns what in a stack (a StackSpec): the platform's AWS names (its cluster's, and the buckets it is told to use) and its offers."""
    backup, logging = spec.backup, spec.addons.get("logging")
    buckets = [(logging.settings.get("bucketName"), "Loki's bucket")] if logging else []
    if backup:
        buckets += [(backup.bucket_name, "Velero's bucket"), (backup.copy_to and backup.copy_to.bucket_name, "the backup copy's bucket")]
        buckets += [(backup.restore_from and backup.restore_from.bucket_name, "the bucket backups are restored from")]
    if spec.team_deploy:
        buckets.append((spec.team_deploy.state_bucket, "the Pulumi state bucket"))
    platform = platform_names(spec.cluster.name, [(name, what) for name, what in buckets if isinstance(name, str)])
    return Ownership(platform=platform, offers=spec.offers, teams=tuple(spec.teams))


def _platform_owner(arn: str, name: str, ownership: Ownership) -> Optional[str]:
    service = arn.split(":")[2] if arn.count(":") >= 2 else ""
    for where, pattern, what in ownership.platform:
        if where in ("*", service) and iam_actions.globs_meet(name.replace("?", "*"), pattern):
            return f"{'may name' if '*' in name else 'is'} {what}"
    return None


def _offered(arn: str, offers: Iterable[AwsOffer]) -> Optional[AwsOffer]:
    return next((o for o in offers if arn == o.arn or o.arn.endswith("*") and arn.startswith(o.arn[:-1])), None)


def arn_problem(arn: str, team: str, ownership: Ownership, tagged: bool = False, tag_hint: bool = True) -> Optional[str]:
    """Why team `team` may not name `arn`, or None: it is the team's (by name, or by tag when
    `tagged`) or offered to it, and never the platform's."""
    names = arns.resource_names(arn)
    if not names:
        return f"{arn!r} names no resource of the IAM catalogue, so no one can be said to own it"
    aws_offers, _ = ownership.offers.for_team(team)
    owner = next((o for n in names if (o := _platform_owner(arn, n, ownership))), None)
    if owner and not (tagged and any("*" in n for n in names)):
        return f"{arn!r} {owner}: platform resources are never referenceable by a team"
    if tagged or _offered(arn, aws_offers) or all(n.startswith(f"{team}-") for n in names):
        return None
    offered = ", ".join(o.arn for o in aws_offers) or "none"
    by_tag = f", those tagged {TEAM_TAG}={team} (`tagged: true`)" if tag_hint else ""
    return (
        f"{arn!r} is not team {team}'s: a team owns the resources named {team}-* (this one is named {names[0]!r}){by_tag} "
        f"and what the platform offers it in the stack file (offers.aws; offered to {team}: {offered})"
    )


def owned_by_tag(team: str) -> dict[str, Any]:
    """The condition of a `tagged` grant: only resources whose `team` tag is the team's."""
    return {"StringEquals": {f"aws:ResourceTag/{TEAM_TAG}": team}}


def tag_problem(actions: Iterable[str], arn: str) -> Optional[str]:
    """A `tagged` grant is only as good as its condition: every action must honour aws:ResourceTag on the resource."""
    for pattern in actions:
        for action in iam_actions.expand(pattern):
            if iam_actions.applies_to(action, arn) and not arns.tag_conditioned(action, arn):
                return (
                    f"{action} on {arn!r} does not support the aws:ResourceTag/{TEAM_TAG} condition, so the resource cannot be owned by tag; "
                    f"name it {{team}}-* or ask the platform to offer it"
                )
    return None


def vault_path_problem(team: str, path: str, ownership: Optional[Ownership]) -> Optional[str]:
    """A team reads `<team>/...` in Vault and the paths the platform offers it; nothing else."""
    segments = path.split("/")
    if segments[0] == team and len(segments) >= 2 and "" not in segments:
        return None
    offers = ownership.offers.for_team(team)[1] if ownership else []
    if any(path.startswith(o.path + "/") for o in offers):
        return None
    offered = "".join(f", {o.path}/" for o in offers)
    return f"{path!r} is outside what team {team!r} may read in Vault: its own prefix {team}/ (e.g. {team}/<service>/<name>){offered}"


def offer_problems(offers: Offers, ownership: Ownership) -> list[tuple[str, str]]:
    """(key path, message) for offers of what the platform keeps for itself or another team's own."""
    found = []
    for i, aws in enumerate(offers.aws):
        owner = next((o for n in arns.resource_names(aws.arn) if (o := _platform_owner(aws.arn, n, ownership))), None)
        if owner:
            found.append((f"offers.aws[{i}].arn", f"{aws.arn!r} {owner}: the platform never offers its own resources"))
    for i, vault in enumerate(offers.vault):
        first = vault.path.split("/")[0]
        if first in ownership.teams:
            found.append((f"offers.vault[{i}].path", f"{vault.path!r} is under team {first!r}'s own prefix; a team's secrets are never offered to others"))
    listed: list[tuple[str, int, list[str]]] = [("aws", i, o.teams) for i, o in enumerate(offers.aws)]
    listed += [("vault", i, o.teams) for i, o in enumerate(offers.vault)]
    for kind, i, teams in listed:
        unknown = [t for t in teams if t not in ownership.teams]
        if unknown:
            found.append((f"offers.{kind}[{i}].teams", f"{unknown} are not teams of this stack (teams: {', '.join(ownership.teams)})"))
    return found


def of_context(context: Optional[Mapping[str, Any]]) -> Optional[Ownership]:
    found = (context or {}).get("ownership")
    return found if isinstance(found, Ownership) else None


def service_problem(svc: Any, context: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The first reference of a service (awsPermissions, scaling.sqs, secrets) its team may not make,
    as `key.path: why`; the team is the service's (`svc.team`), however it was found."""
    ownership = of_context(context)
    for i, secret in enumerate(svc.secrets):
        problem = vault_path_problem(svc.team, secret.vault_path, ownership)
        if problem:
            return f"secrets[{i}].vaultPath: {problem}"
    if ownership is None:
        return None
    for i, permission in enumerate(svc.aws_permissions):
        for j, arn in enumerate(permission.resources):
            problem = arn_problem(arn, svc.team, ownership, permission.tagged) or (tag_problem(permission.actions, arn) if permission.tagged else None)
            if problem:
                return f"awsPermissions[{i}].resources[{j}]: {problem}"
    aws = (context or {}).get("aws") or {}
    if svc.scaling.sqs and aws.get("region") and aws.get("account"):
        problem = arn_problem(queue_arn(aws["region"], aws["account"], svc.scaling.sqs.queue_name), svc.team, ownership, tag_hint=False)
        if problem:
            return f"scaling.sqs.queueName: {problem}"
    return None


def queue_arn(region: str, account: str, queue: str) -> str:
    return f"arn:{iam_actions.partition_of(region)}:sqs:{region}:{account}:{queue}"
