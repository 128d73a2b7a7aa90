"""Team deploy identity: CI deploys a team's stack as the team, never as the platform.

Kubernetes: an EKS access entry whose access policy is scoped to the team's namespace. AWS: a role
only the team's GitHub environment can assume, under the platform's team deploy boundary, acting
only on resources tagged with its team. Pulumi: its own part of the state bucket.
"""

from __future__ import annotations

import json
import re

import pytest
from test_declarations import refused

from components.aws import team_deploy

ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
TEAMS = ["catalog", "checkout", "messaging", "web"]


def mocked_arn(kind: str, name: str) -> str:
    """The ARN the offline engine gives an auto-named IAM resource (engine/mocks.py)."""
    from engine.mocks import ACCOUNT, _hex

    return f"arn:aws:iam::{ACCOUNT}:{kind}/{name}-{_hex(name, 7)}"


def deploy_roles(rec) -> dict[str, object]:
    return {r.name.removeprefix("platform-team-deploy-"): r for r in rec.of_type(ROLE) if r.name.startswith("platform-team-deploy-")}


def boundary(rec) -> dict[str, dict]:
    [policy] = [p for p in rec.of_type(POLICY) if p.name == "platform-team-deploy-boundary"]
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def test_every_team_with_a_budget_has_a_deploy_role_and_the_platform_team_none(dev):
    assert sorted(deploy_roles(dev)) == TEAMS


@pytest.mark.parametrize("team", TEAMS)
def test_the_access_entry_is_scoped_to_the_teams_namespace(dev, team):
    role = deploy_roles(dev)[team]
    [entry] = [e for e in dev.of_type(ENTRY) if e.inputs["principalArn"] == mocked_arn("role", role.name)]
    assert entry.inputs["type"] == "STANDARD" and not entry.inputs.get("kubernetesGroups")
    [association] = [a for a in dev.of_type(ASSOCIATION) if a.inputs["principalArn"] == mocked_arn("role", role.name)]
    assert association.inputs["accessScope"] == {"type": "namespace", "namespaces": [team]}
    assert association.inputs["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"


def test_only_the_teams_environment_can_assume_its_role(dev):
    role = deploy_roles(dev)["checkout"]
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity", "no sts:TagSession: a token cannot set the team tag"
    assert trust["Condition"]["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        # Its deploys' environment and its drift check's, nothing else of the repository.
        "token.actions.githubusercontent.com:sub": [
            "repo:acme-shop/platform:environment:checkout-dev",
            "repo:acme-shop/platform:environment:checkout-dev-drift",
        ],
    }
    assert role.inputs["tags"] == {"team": "checkout"}
    [policy] = [p for p in dev.of_type(POLICY) if p.name == "platform-team-deploy-boundary"]
    assert role.inputs["permissionsBoundary"] == mocked_arn("policy", policy.name)


def test_the_boundary_allows_only_the_teams_own_resources(dev):
    found = boundary(dev)
    workload_boundary = next(p for p in dev.of_type(POLICY) if p.name == "platform-workloads-boundary")
    for sid, statement in found.items():
        if statement["Effect"] != "Allow" or sid == "DescribeTheCluster":
            continue
        scoped = json.dumps(statement.get("Condition", {})) + json.dumps(statement["Resource"])
        assert "${aws:PrincipalTag/team}" in scoped, sid
    create = found["CreateOwnBoundedRoles"]["Condition"]
    assert create == {
        "StringEquals": {"aws:RequestTag/team": "${aws:PrincipalTag/team}"},
        "ArnEquals": {"iam:PermissionsBoundary": mocked_arn("policy", workload_boundary.name)},
    }
    assert found["TagNewRolesAsOwn"]["Condition"] == {"StringEquals": {"aws:RequestTag/team": "${aws:PrincipalTag/team}"}}
    assert found["OwnState"]["Resource"] == "arn:aws:s3:::acme-shop-pulumi-state/teams/${aws:PrincipalTag/team}/*"
    assert found["PassOwnRolesToPodIdentity"]["Condition"]["StringEquals"]["iam:PassedToService"] == "pods.eks.amazonaws.com"
    assert set(found["NeverRemoveABoundary"]["Action"]) == {"iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary"}
    assert found["NeverRemoveABoundary"]["Effect"] == "Deny" and "Condition" not in found["NeverRemoveABoundary"]
    # Nothing else: no IAM beyond the listed role actions, no wildcard action.
    actions = {a for s in found.values() if s["Effect"] == "Allow" for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert not [a for a in actions if "*" in a]
    assert {a for a in actions if a.startswith("iam:")} <= {*team_deploy.ROLE_ACTIONS, "iam:PassRole", "iam:CreateRole"}


def test_the_workload_roles_and_associations_carry_their_team(dev):
    roles = [r for r in dev.of_type(ROLE) if r.name.endswith("-workload")]
    associations = dev.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert roles and all(r.inputs["tags"] == {"team": r.inputs["description"].split("/")[0]} for r in roles)
    workload = [a for a in associations if a.inputs["namespace"] in TEAMS]
    assert workload and all(a.inputs["tags"] == {"team": a.inputs["namespace"]} for a in workload)


@pytest.mark.parametrize(
    "deploy, fragment",
    [
        ({"repository": "acme-shop", "stateBucket": "acme-shop-pulumi-state"}, "teamDeploy.repository"),
        (
            {"repository": "acme-shop/platform", "stateBucket": "acme-shop-pulumi-state", "accessPolicy": "AmazonEKSClusterAdminPolicy"},
            "teamDeploy.accessPolicy",
        ),
        ({"repository": "acme-shop/platform", "stateBucket": "Bad_Bucket"}, "teamDeploy.stateBucket"),
    ],
)
def test_a_bad_team_deploy_section_is_refused(scratch, capsys, deploy, fragment):
    scratch.edit("stacks/dev.yaml", lambda d: d.update(teamDeploy=deploy))
    assert f"stacks/dev.yaml: {fragment}" in refused(scratch)
    scratch.rejected(capsys)


def test_the_state_bucket_is_the_platforms(scratch):
    scratch.edit(
        "stacks/services/checkout/orders.yaml",
        lambda d: (
            d.setdefault("envs", {})
            .setdefault("dev", {})
            .update(awsPermissions=[{"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::acme-shop-pulumi-state/*"]}])
        ),
    )
    assert "is the Pulumi state bucket: platform resources are never referenceable" in refused(scratch)
    scratch.edit("stacks/dev.yaml", lambda d: d.pop("teamDeploy"))
    # Without the section the bucket is no longer known as the platform's, and it is not checkout's either.
    assert "is not team checkout's" in refused(scratch)


def _iam_match(pattern: str, value: str) -> bool:
    """IAM's wildcards in a Resource: `*` any run of characters (slashes included), `?` one character."""
    return re.fullmatch("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), value) is not None


def _s3_allowed(statements: dict[str, dict], action: str, key: str, team: str) -> bool:
    """Whether the team's role may `action` the state bucket's object `key` (explicit Deny wins)."""

    def matches(statement: dict) -> bool:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        resources = [r.replace("${aws:PrincipalTag/team}", team) for r in resources if isinstance(r, str)]
        return action in actions and any(_iam_match(r, f"arn:aws:s3:::acme-shop-pulumi-state/{key}") for r in resources)

    applicable = [s for s in statements.values() if "Condition" not in s and matches(s)]
    return any(s["Effect"] == "Allow" for s in applicable) and not any(s["Effect"] == "Deny" for s in applicable)


# The keys of a team's backend, as the self-managed backend names them (project-scoped layout).
PUBLISHED_KEYS = [
    ".pulumi/meta.yaml",
    ".pulumi/stacks/platform/dev.json",
    ".pulumi/stacks/platform/dev.json.bak",
    ".pulumi/backups/platform/dev/dev.1796560021132161120.json",
    ".pulumi/history/platform/dev/dev-1796560021131590865.history.json",
    ".pulumi/history/platform/dev/dev-1796560021131590865.checkpoint.json",
    ".pulumi/locks/organization/platform/dev/6c0f7e0a.json",
]
OWN_KEYS = [
    ".pulumi/stacks/platform-teams/checkout-dev.json",
    ".pulumi/stacks/platform-teams/checkout-dev.json.bak",
    ".pulumi/backups/platform-teams/checkout-dev/checkout-dev.1796560021132161120.json",
    ".pulumi/history/platform-teams/checkout-dev/checkout-dev-1796560021131590865.history.json",
    ".pulumi/locks/organization/platform-teams/checkout-dev/6c0f7e0a.json",
]


@pytest.mark.parametrize("key", PUBLISHED_KEYS)
def test_a_team_reads_the_published_contract_and_never_writes_it(dev, key):
    found = boundary(dev)
    assert _s3_allowed(found, "s3:GetObject", f"teams/checkout/{key}", "checkout")
    for action in ("s3:PutObject", "s3:DeleteObject"):
        assert not _s3_allowed(found, action, f"teams/checkout/{key}", "checkout"), f"{action} {key}"
        # Nor another team's copy, nor through a team that is not its own.
        assert not _s3_allowed(found, action, f"teams/web/{key}", "checkout")


@pytest.mark.parametrize("key", OWN_KEYS)
def test_a_team_writes_its_own_stacks_state_and_no_other_teams(dev, key):
    found = boundary(dev)
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert _s3_allowed(found, action, f"teams/checkout/{key}", "checkout"), f"{action} {key}"
        assert not _s3_allowed(found, action, f"teams/web/{key.replace('checkout', 'web')}", "checkout")
        assert not _s3_allowed(found, action, key.replace("platform-teams/checkout-dev", "platform/dev"), "checkout"), "the platform's state"


def test_the_iam_matcher_of_these_tests_follows_iam():
    assert _iam_match("a/*/b/*", "a/x/y/b/c") and _iam_match("a/?.json", "a/1.json")
    assert not _iam_match("a/platform/*", "a/platform-teams/x") and not _iam_match("a/?.json", "a/12.json")
