"""Workload AWS permissions: judged against the IAM catalogue, on the stack's own ARNs, under a boundary."""

from __future__ import annotations

import json

import pytest
from test_declarations import refused
from test_tenancy import preview_refuses

from components.spec import load
from components.spec.iam_actions import DEFAULT_BOUNDARY_SERVICES, expand
from engine.stacks import run

QUEUE = "arn:aws:sqs:eu-west-1:111122223333:catalog-orders"
BUCKET = "arn:aws:s3:::catalog-invoices/*"


def grant(scratch, *permissions: dict, service: str = "inventory") -> None:
    scratch.edit(scratch.service_file(service), lambda d: d.update(awsPermissions=list(permissions)))
    # Every stack judges the file; here both run in the dev account, so one set of ARNs serves both.
    scratch.edit("stacks/prod.yaml", lambda d: d["policy"].update(awsAccountId="111122223333"))


def test_concrete_permissions_on_the_stacks_resources_load(scratch):
    grant(
        scratch,
        {"actions": ["sqs:SendMessage", "sqs:GetQueueAttributes"], "resources": [QUEUE]},
        {"actions": ["s3:GetObject", "s3:PutObject"], "resources": [BUCKET]},
    )
    inventory = {s.name: s for s in load("dev", scratch.root).services}["inventory"]
    assert [p.actions for p in inventory.aws_permissions] == [["sqs:SendMessage", "sqs:GetQueueAttributes"], ["s3:GetObject", "s3:PutObject"]]


@pytest.mark.parametrize(
    "actions, resources, fragment",
    [
        # Escalation and credentials, whatever the spelling.
        (["iam:PassRole"], ["arn:aws:iam::111122223333:role/admin"], "outside the stack's workload permissions boundary"),
        (["sqs:Send*", "kms:CreateGrant"], ["arn:aws:kms:eu-west-1:111122223333:key/abc"], "kms:CreateGrant (permissions management"),
        (["s3:Put*"], ["arn:aws:s3:::catalog-invoices"], "s3:PutBucketPolicy (permissions management"),
        (["s3:*Policy"], ["arn:aws:s3:::catalog-invoices"], "grants refused actions"),
        (["sqs:Nope"], [QUEUE], "matches no IAM action in the catalogue"),
        # Resources: concrete, this stack's.
        (["sqs:SendMessage"], ["*"], "resource '*'"),
        (["sqs:SendMessage"], ["arn:aws:sqs:*:111122223333:catalog-orders"], "wildcard in its region"),
        (["sqs:SendMessage"], ["arn:aws:sqs:eu-west-1:*:catalog-orders"], "wildcard in its account"),
        (["sqs:SendMessage"], ["arn:aws:s*s:eu-west-1:111122223333:catalog-orders"], "is not an ARN"),
        (["sqs:SendMessage"], ["arn:aws-cn:sqs:eu-west-1:111122223333:catalog-orders"], "partition 'aws-cn'"),
        (["sqs:SendMessage"], ["arn:aws:sqs:us-east-1:111122223333:catalog-orders"], "region 'us-east-1'; this stack runs in 'eu-west-1'"),
        (["sqs:SendMessage"], ["arn:aws:sqs:eu-west-1:999999999999:catalog-orders"], "account '999999999999'; this stack's account is '111122223333'"),
        # The action must apply to the resource it is granted on.
        (["sqs:ListQueues"], [QUEUE], "applies to none of the statement's resources"),
        (["sqs:SendMessage"], ["arn:aws:s3:::catalog-invoices"], "applies to none of the statement's resources"),
    ],
)
def test_hostile_permissions_are_refused(scratch, actions, resources, fragment):
    grant(scratch, {"actions": actions, "resources": resources})
    msg = refused(scratch)
    assert "stacks/services/catalog/inventory.yaml: awsPermissions" in msg and fragment in msg, msg


def test_escalation_path_across_statements_is_refused(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["policy"].update(workloadBoundary={"services": [*DEFAULT_BOUNDARY_SERVICES, "lambda"]}))
    grant(scratch, {"actions": ["lambda:UpdateFunctionCode"], "resources": ["arn:aws:lambda:eu-west-1:111122223333:function:billing"]})
    assert "stacks/services/catalog/inventory.yaml: awsPermissions" in (msg := refused(scratch)) and "EditExistingLambdaFunctionWithRole" in msg


def test_wildcards_expand_against_the_catalogue():
    assert "iam:PassRole" in expand("iam:Pass*") and "sts:AssumeRoleWithWebIdentity" in expand("sts:AssumeRole*")
    assert expand("sqs:sendmessage") == ["sqs:SendMessage"] and expand("nope:Nothing") == []


def test_preview_refuses_a_hostile_permission(scratch, capsys):
    grant(scratch, {"actions": ["s3:Put*"], "resources": ["arn:aws:s3:::catalog-invoices"]})
    preview_refuses(scratch, capsys, "stacks/services/catalog/inventory.yaml: awsPermissions[0]:", "grants refused actions")


def test_permissions_need_the_stacks_account(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["policy"].pop("awsAccountId"))
    grant(scratch, {"actions": ["sqs:SendMessage"], "resources": [QUEUE]})
    assert "awsPermissions: the stack must declare its account (policy.awsAccountId" in refused(scratch)


@pytest.mark.parametrize(
    "services, fragment", [(["iam"], "'iam' can never be in a workload boundary"), (["s3", "nosuch"], "'nosuch' is not an IAM service prefix")]
)
def test_boundary_services_are_checked(scratch, services, fragment):
    scratch.edit("stacks/dev.yaml", lambda d: d["policy"].update(workloadBoundary={"services": services}))
    assert f"stacks/dev.yaml: policy.workloadBoundary.services: {fragment}" in refused(scratch)


def test_queue_scaling_needs_sqs_in_the_boundary(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["policy"].update(workloadBoundary={"services": ["s3"]}))
    assert "stacks/services/messaging/notifications.yaml: scaling.sqs: the workload reads its queue, but sqs is outside" in refused(scratch)


def test_every_workload_role_carries_the_platform_boundary(scratch):
    grant(scratch, {"actions": ["sqs:SendMessage"], "resources": [QUEUE]})
    rec = run("dev", scratch.root)
    boundary = rec.named("platform-workloads-boundary", "aws:iam/policy:Policy")
    roles = [r for r in rec.of_type("aws:iam/role:Role") if "platform:workloads:Microservice" in r.urn]
    assert {r.name for r in roles} == {"inventory-workload", "notifications-workload"}
    assert all(":policy/platform-workloads-boundary" in r.inputs["permissionsBoundary"] for r in roles)
    doc = json.loads(boundary.inputs["policy"])
    allow, deny, refused = doc["Statement"]
    assert allow["Effect"] == "Allow" and allow["Action"] == [f"{s}:*" for s in sorted(DEFAULT_BOUNDARY_SERVICES)]
    assert allow["Condition"] == {"StringEqualsIfExists": {"aws:ResourceAccount": "${aws:PrincipalAccount}"}}
    assert deny["Effect"] == "Deny" and {"iam:*", "sts:AssumeRole*"} <= set(deny["Action"])
    # What the loader refuses a team is denied by the boundary too, should a check be missed.
    assert refused["Effect"] == "Deny" and {"kms:CreateGrant", "kms:PutKeyPolicy", "s3:PutBucketPolicy", "sqs:AddPermission"} <= set(refused["Action"])
    # IAM's limit on a managed policy document: 6,144 characters without whitespace.
    assert len(json.dumps(doc, separators=(",", ":"))) < 6144


def test_boundary_is_configurable_per_stack(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["policy"].update(workloadBoundary={"services": ["sqs", "s3"]}))
    rec = run("dev", scratch.root)
    allow = json.loads(rec.named("platform-workloads-boundary", "aws:iam/policy:Policy").inputs["policy"])["Statement"][0]
    assert allow["Action"] == ["s3:*", "sqs:*"]
