"""The stack's addon, DNS and policy settings (the parts of stacks/<stack>.yaml that are not infrastructure)."""

from __future__ import annotations

from typing import Annotated, Any, Optional
from pydantic import StringConstraints, ValidationInfo, field_validator
from components.versions import POD_SECURITY_LATEST, POD_SECURITY_OLDEST
from .base import Spec, field
from .domains import refuse_placeholder
from .egress import EgressGrant
from .iam_actions import WorkloadBoundary


class AddonSpec(Spec):
    enabled: bool = field("Install this addon in the stack.", default=True)
    settings: dict[str, Any] = field("The addon's typed settings (see its Settings model in components/addons/).", default_factory=dict)
    values: dict[str, Any] = field(
        "Helm value overrides, deep-merged over the addon's values; keyed by chart name for addons with several charts.", default_factory=dict
    )


# An image registry prefix: host[:port]/ and optional path segments, ending in "/".
RegistryPrefix = Annotated[str, StringConstraints(pattern=r"^[a-z0-9.-]+(:[0-9]+)?/([a-z0-9._-]+/)*$")]


def from_registry(image: str, prefix: str) -> bool:
    """`image` lies under `prefix` at a path boundary: `reg.io/` and `reg.io` admit `reg.io/x:1`, never
    `reg.io.evil.io/x:1`; `reg.io/team` admits `reg.io/team/x:1`, never `reg.io/team-evil/x:1`.
    The loader and the policy pack's image-registry rule both match with it."""
    return bool(prefix) and image.startswith(prefix if prefix.endswith("/") else prefix + "/")


def rewritten(image: str, rewrites: dict[str, str]) -> str:
    """The image a stack pulls: the longest declared prefix of the service file's image replaced."""
    prefix = max((p for p in rewrites if image.startswith(p)), key=len, default=None)
    return image if prefix is None else rewrites[prefix] + image[len(prefix) :]


class DnsSpec(Spec):
    zone: str = field(
        "The public Route 53 zone of this stack's hosts, e.g. shop.acme-shop.com; every exposed host lies in it.",
        pattern=r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
    )
    zone_id: Optional[str] = field(
        "ID of an existing hosted zone for `zone`; unset: the zone is created (delegate it to the exported name servers).",
        default=None,
        pattern=r"^Z[A-Z0-9]{1,32}$",
    )

    @field_validator("zone")
    @classmethod
    def _zone(cls, zone: str, info: ValidationInfo) -> str:
        return refuse_placeholder(zone, info.context, "no one can delegate it to the stack's name servers and no DNS-01 challenge can succeed")


class SoakMinutes(Spec):
    """How long an image must have run in staging, per tier, before `make promote` moves it to prod."""

    critical: int = field("Minutes a critical service's image soaks in staging.", default=120, ge=0)
    standard: int = field("Minutes a standard service's image soaks in staging.", default=60, ge=0)
    batch: int = field("Minutes a batch service's image soaks in staging.", default=30, ge=0)


class PolicySpec(Spec):
    allowed_registries: list[RegistryPrefix] = field(
        "Image registry prefixes workloads may pull from, each ending in `/` so it matches at a path boundary (`reg.io/` never admits `reg.io.evil.io/...`).",
        min_length=1,
    )
    max_rollback_seconds: int = field(
        "Longest rollback allowed, in seconds: from a canary's first failed check to all traffic on the primary (intervalSeconds x (threshold + 1)).",
        default=60,
        ge=10,
    )
    soak_minutes: SoakMinutes = field(
        "Promotion gate: how long an image soaks in this (staging) stack per tier before it may go to prod.", default_factory=SoakMinutes
    )
    aws_account_id: Optional[str] = field(
        "The AWS account the stack deploys into; services' awsPermissions may only name its resources.", default=None, pattern=r"^[0-9]{12}$"
    )
    shared_egress: EgressGrant = field(
        "Destinations outside the mesh the platform offers every team's services (a shared cache's network, a public API all may call).",
        default_factory=EgressGrant,
    )
    workload_boundary: WorkloadBoundary = field("The permissions boundary every workload role carries.", default_factory=WorkloadBoundary)
    pod_security_version: Optional[str] = field(
        'The Pod Security Standards version the pss-* policy rules apply, as a Kubernetes minor ("1.33"), '
        f"from {'.'.join(map(str, POD_SECURITY_OLDEST))} up to the cluster's version. Default: the newest the "
        f"cluster runs, which is what its Pod Security Admission enforces (newest known: {'.'.join(map(str, POD_SECURITY_LATEST))}).",
        default=None,
        pattern=r"^1\.[0-9]{1,2}$",
    )

    @field_validator("pod_security_version")
    @classmethod
    def _known_pod_security_version(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        minor = int(value.split(".")[1])
        if not POD_SECURITY_OLDEST[1] <= minor <= POD_SECURITY_LATEST[1]:
            raise ValueError(f"Pod Security Standards version {value} is not known: use 1.{POD_SECURITY_OLDEST[1]} to 1.{POD_SECURITY_LATEST[1]}")
        return value
