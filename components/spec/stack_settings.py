"""The stack's addon, DNS and policy settings (the parts of stacks/<stack>.yaml that are not infrastructure)."""

from __future__ import annotations

from typing import Annotated, Any, Optional
from pydantic import StringConstraints, ValidationInfo, field_validator
from components.versions import POD_SECURITY_LATEST, POD_SECURITY_OLDEST
from .base import Spec, field
from .domains import refuse_placeholder
from .iam_actions import WorkloadBoundary


class AddonSpec(Spec):
    enabled: bool = field("Install this addon in the stack.", default=True)
    settings: dict[str, Any] = field("The addon's typed settings (see its Settings model in components/addons/).", default_factory=dict)
    values: dict[str, Any] = field(
        "Helm value overrides, deep-merged over the addon's values; keyed by chart name for addons with several charts.", default_factory=dict
    )


# An image registry prefix: host[:port]/ and optional path segments, ending in "/".
RegistryPrefix = Annotated[str, StringConstraints(pattern=r"^[a-z0-9.-]+(:[0-9]+)?/([a-z0-9._-]+/)*$")]


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


class PolicySpec(Spec):
    allowed_registries: list[str] = field("Image registry prefixes workloads may pull from.", min_length=1)
    max_rollback_seconds: int = field("Worst-case canary rollback time allowed, in seconds.", default=60, ge=10)
    aws_account_id: Optional[str] = field(
        "The AWS account the stack deploys into; services' awsPermissions may only name its resources.", default=None, pattern=r"^[0-9]{12}$"
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
