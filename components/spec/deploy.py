"""How CI deploys a team's stack: the team-scoped identity and the state, set by the platform in the stack file."""

from __future__ import annotations

from typing import Literal

from .backup import BUCKET
from .base import Spec, field

# EKS access policies a team's deploy identity may hold in its own namespace (never a cluster-wide one).
NamespacePolicy = Literal["AmazonEKSEditPolicy", "AmazonEKSViewPolicy"]
STATE_PREFIX = "teams"


class TeamDeploySpec(Spec):
    repository: str = field(
        "The GitHub repository (org/name) whose workflow runs deploy the team stacks: the deploy role of team T trusts only "
        "OIDC tokens of its GitHub environment `<T>-<env>`, named like its stack (sub repo:<repository>:environment:<T>-<env>).",
        pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
    )
    state_bucket: str = field(
        f"The S3 bucket of the Pulumi state; each team's stacks keep theirs under {STATE_PREFIX}/<team>/ "
        f"(`pulumi login s3://<bucket>/{STATE_PREFIX}/<team>`), the only part its deploy role may read or write.",
        pattern=BUCKET,
    )
    access_policy: NamespacePolicy = field("The EKS access policy of each team's deploy role, scoped to the team's namespace.", default="AmazonEKSEditPolicy")


def state_url(bucket: str, team: str) -> str:
    """The Pulumi backend of `team`'s stacks: the only part of the state its deploy role may touch."""
    return f"s3://{bucket}/{STATE_PREFIX}/{team}"
