"""Each team's deploy identity: what CI deploys the team's own stack with, and nothing more.

Per team with a budget, the platform stack makes:
- an IAM role, tagged `team=<team>`, that only the team's GitHub environment `<team>-<env>` can
  assume (OIDC `sub`), carrying the platform's team deploy boundary;
- an EKS access entry for it with the stack's access policy (AmazonEKSEditPolicy by default)
  scoped to the team's namespace: no cluster-scoped object, no other namespace.

The boundary (one policy for every team) allows what a team stack registers in AWS and nothing
else, each on the team's own resources by tag: `${aws:PrincipalTag/team}` is the role's own tag,
which the role cannot change. Workload roles: created only tagged with the team and carrying the
workload boundary, then read, changed, passed (to Pod Identity only) and deleted only when tagged
with the team; Pod Identity associations the same way; the cluster described (for `aws eks
get-token`); the team's part of the Pulumi state (`<state bucket>/teams/<team>/`), except the
platform's contract published there (engine/contract.py), which it reads and never writes. Changing
the `team` tag, removing a boundary, or anything else is out of reach.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.spec.deploy import STATE_PREFIX, TeamDeploySpec
from components.stack_contract import TEAM_PROJECT

from . import iam

ACCESS_POLICY = "arn:aws:eks::aws:cluster-access-policy/"
GITHUB_OIDC = "token.actions.githubusercontent.com"
# The GitHub environment of a team stack's drift check: `<team>-<env>-drift`.
DRIFT_SUFFIX = "-drift"
TEAM = "${aws:PrincipalTag/team}"
OWN = {"StringEquals": {"aws:ResourceTag/team": TEAM}}
ROLE_ACTIONS = [
    "iam:GetRole",
    "iam:DeleteRole",
    "iam:UpdateRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePolicy",
    "iam:GetRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRoleTags",
    "iam:TagRole",
    "iam:UntagRole",
]
# The keys a team's own stacks have in its backend, as the self-managed backend lays out stacks of
# the team project (project-scoped layout): checkpoints, backups, history and locks. Nothing else
# there is the team's to write: not the contract the platform publishes (project `platform`), not
# the backend's layout marker (meta.yaml: rewritten, it could switch the backend to the legacy
# layout, where the team would name its own stack like the contract).
OWN_STACK_KEYS = [
    f".pulumi/stacks/{TEAM_PROJECT}/*",
    f".pulumi/backups/{TEAM_PROJECT}/*",
    f".pulumi/history/{TEAM_PROJECT}/*",
    f".pulumi/locks/organization/{TEAM_PROJECT}/*",
]
ASSOCIATION_ACTIONS = ["eks:DescribePodIdentityAssociation", "eks:UpdatePodIdentityAssociation", "eks:DeletePodIdentityAssociation", "eks:TagResource"]


def boundary_statements(
    account: pulumi.Input[str], cluster_arn: pulumi.Input[str], state_bucket: str, workload_boundary: Optional[pulumi.Input[str]]
) -> list[dict[str, Any]]:
    """The team deploy boundary: a team stack's AWS actions, each on the team's own resources."""
    roles = pulumi.Output.concat(f"arn:{iam.PARTITION}:iam::", account, ":role/*")
    associations = pulumi.Output.from_input(cluster_arn).apply(lambda arn: arn.replace(":cluster/", ":podidentityassociation/") + "/*")
    state = f"arn:{iam.PARTITION}:s3:::{state_bucket}"
    found: list[dict[str, Any]] = [
        {"Sid": "DescribeTheCluster", "Effect": "Allow", "Action": ["eks:DescribeCluster", "eks:ListPodIdentityAssociations"], "Resource": cluster_arn},
        {
            "Sid": "AssociateOwnRoles",
            "Effect": "Allow",
            "Action": ["eks:CreatePodIdentityAssociation", "eks:TagResource"],
            "Resource": [cluster_arn, associations],
            "Condition": {"StringEquals": {"aws:RequestTag/team": TEAM}},
        },
        {"Sid": "OwnAssociations", "Effect": "Allow", "Action": ASSOCIATION_ACTIONS, "Resource": associations, "Condition": OWN},
        {"Sid": "OwnRoles", "Effect": "Allow", "Action": ROLE_ACTIONS, "Resource": roles, "Condition": OWN},
        {
            "Sid": "PassOwnRolesToPodIdentity",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": roles,
            "Condition": {"StringEquals": {"aws:ResourceTag/team": TEAM, "iam:PassedToService": iam.POD_IDENTITY_PRINCIPAL}},
        },
        # The team reads its whole backend (its stacks and the contract published for it) and writes
        # only its own stacks. The contract is the platform's word: rewritten, its endpoint would send
        # the EKS token of whoever runs the team's stack (the preview and drift roles, which read
        # every namespace, and the team's own later deploys, after a rotation) to a server of the
        # writer's choosing.
        {"Sid": "OwnState", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{state}/{STATE_PREFIX}/{TEAM}/*"},
        {
            "Sid": "WriteOwnStacks",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Resource": [f"{state}/{STATE_PREFIX}/{TEAM}/{key}" for key in OWN_STACK_KEYS],
        },
        {
            "Sid": "ListOwnState",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": state,
            "Condition": {"StringLike": {"s3:prefix": f"{STATE_PREFIX}/{TEAM}/*"}},
        },
        # The team tag is the ownership: never moved to another team, never removed.
        {
            "Sid": "NeverRetagToAnotherTeam",
            "Effect": "Deny",
            "Action": ["iam:TagRole", "eks:TagResource", "iam:CreateRole", "eks:CreatePodIdentityAssociation"],
            "Resource": "*",
            "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}, "StringNotEquals": {"aws:RequestTag/team": TEAM}},
        },
        {
            "Sid": "NeverUntag",
            "Effect": "Deny",
            "Action": ["iam:UntagRole", "eks:UntagResource"],
            "Resource": "*",
            "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}},
        },
        {"Sid": "NeverRemoveABoundary", "Effect": "Deny", "Action": ["iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary"], "Resource": "*"},
    ]
    if workload_boundary is not None:
        # A new workload role is the team's (tag) and under the platform's workload boundary, or it is not created.
        found.append(
            {
                "Sid": "CreateOwnBoundedRoles",
                "Effect": "Allow",
                "Action": "iam:CreateRole",
                "Resource": roles,
                "Condition": {"StringEquals": {"aws:RequestTag/team": TEAM}, "ArnEquals": {"iam:PermissionsBoundary": workload_boundary}},
            }
        )
        # Creating a tagged role is also tagging it (iam:TagRole), before the role has a tag to match.
        found.append(
            {
                "Sid": "TagNewRolesAsOwn",
                "Effect": "Allow",
                "Action": "iam:TagRole",
                "Resource": roles,
                "Condition": {"StringEquals": {"aws:RequestTag/team": TEAM}},
            }
        )
    return found


class TeamDeployIdentities(pulumi.ComponentResource):
    """The deploy role and namespace-scoped EKS access of each team (`roles` by team)."""

    roles: dict[str, aws.iam.Role]

    def __init__(
        self,
        name: str,
        spec: TeamDeploySpec,
        stack: str,
        teams: Sequence[str],
        cluster_name: pulumi.Input[str],
        cluster_arn: pulumi.Input[str],
        workload_boundary: Optional[pulumi.Input[str]],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("platform:aws:TeamDeployIdentities", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self)).account_id
        boundary = aws.iam.Policy(
            f"{name}-boundary",
            description="Permissions boundary of the team deploy roles (platform-owned): each team's own resources, by its team tag",
            policy=iam.document(boundary_statements(account, cluster_arn, spec.state_bucket, workload_boundary)),
            opts=child,
        )
        self.boundary_arn = boundary.arn
        self.roles = {}
        for team in teams:
            trust = {
                "Effect": "Allow",
                "Principal": {"Federated": pulumi.Output.concat(f"arn:{iam.PARTITION}:iam::", account, f":oidc-provider/{GITHUB_OIDC}")},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_OIDC}:aud": "sts.amazonaws.com",
                        # Its deploys, and its daily drift check (`<team>-<env>-drift`: main only, no
                        # reviewers): the team's state is the team's to write, so only the team's own
                        # identity may refresh it (docs/security-model.md#drift-checks).
                        f"{GITHUB_OIDC}:sub": [f"repo:{spec.repository}:environment:{team}-{stack}{suffix}" for suffix in ("", DRIFT_SUFFIX)],
                    }
                },
            }
            role = aws.iam.Role(
                f"{name}-{team}",
                description=f"Deploys team {team}'s stack {team}-{stack} (CI, under the team deploy boundary)",
                assume_role_policy=iam.document([trust]),
                permissions_boundary=boundary.arn,
                tags={"team": team},
                opts=child,
            )
            # The same document as the boundary: what the role is granted is what it may ever hold.
            aws.iam.RolePolicy(
                f"{name}-{team}", role=role.id, policy=iam.document(boundary_statements(account, cluster_arn, spec.state_bucket, workload_boundary)), opts=child
            )
            entry = aws.eks.AccessEntry(f"{name}-{team}", cluster_name=cluster_name, principal_arn=role.arn, type="STANDARD", opts=child)
            aws.eks.AccessPolicyAssociation(
                f"{name}-{team}",
                cluster_name=cluster_name,
                principal_arn=entry.principal_arn,
                policy_arn=ACCESS_POLICY + spec.access_policy,
                access_scope={"type": "namespace", "namespaces": [team]},
                opts=child,
            )
            self.roles[team] = role
        self.register_outputs({"boundaryArn": boundary.arn, "roles": {team: role.arn for team, role in self.roles.items()}})
