"""Every IAM policy the program renders, through the public analysers (parliament, cloudsplaining)
and the catalogue: nothing unexpected, each action on resources it can apply to, and service trust
policies guarded against the confused deputy."""

from __future__ import annotations

import copy
import json
from typing import Any, Iterator

import pytest
from cloudsplaining.scan.policy_document import PolicyDocument
from parliament import analyze_policy_string

from components.spec.iam_actions import applies_to, expand

POLICY_TYPES = ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy")
# Findings accepted on purpose, keyed per statement (its Sid) and action: (policy resource name,
# Sid, finding) -> (the actions that may carry it, why). An action added to one of these statements,
# or a statement added beside them, is a new finding and fails the test (see the widening tests).
KARPENTER = "upstream Karpenter (its CloudFormation template, mirrored in components/karpenter/permissions.py and tested against it)"
ALLOWED: dict[tuple[str, str, str], tuple[frozenset[str], str]] = {
    # RunInstances/CreateFleet share statements over every resource type either may touch.
    ("platform-karpenter-KarpenterControllerNodeLifecyclePolicy", "AllowScopedEC2InstanceAccessActions", "RESOURCE_MISMATCH"): (
        frozenset({"ec2:RunInstances", "ec2:CreateFleet"}),
        KARPENTER,
    ),
    ("platform-karpenter-KarpenterControllerNodeLifecyclePolicy", "AllowScopedEC2LaunchTemplateAccessActions", "RESOURCE_MISMATCH"): (
        frozenset({"ec2:RunInstances", "ec2:CreateFleet"}),
        KARPENTER,
    ),
    ("platform-karpenter-KarpenterControllerNodeLifecyclePolicy", "AllowScopedEC2InstanceActionsWithTags", "RESOURCE_MISMATCH"): (
        frozenset({"ec2:RunInstances"}),
        KARPENTER,
    ),
    # SSM's public AMI parameters carry no account in their ARN.
    ("platform-karpenter-KarpenterControllerResourceDiscoveryPolicy", "AllowSSMReadActions", "RESOURCE_MISMATCH"): (frozenset({"ssm:GetParameter"}), KARPENTER),
    # arc-zonal-shift:GetManagedResource takes no resource-level restriction.
    ("platform-karpenter-KarpenterControllerZonalShiftPolicy", "AllowZonalShiftStatusReadOnly", "RESOURCE_STAR"): (
        frozenset({"arc-zonal-shift:GetManagedResource"}),
        KARPENTER,
    ),
}
# Resources a statement names that none of its actions applies to, per (policy, resource ARN).
ALLOWED_RESOURCES = {
    ("platform-karpenter-KarpenterControllerNodeLifecyclePolicy", "arn:aws:ec2:eu-west-1:*:spot-instances-request/*"): KARPENTER,
    ("platform-karpenter-KarpenterControllerResourceDiscoveryPolicy", "arn:aws:ssm:eu-west-1::parameter/aws/service/*"): KARPENTER,
}
# The workload boundary is a ceiling on "<service>:*" for the stack's boundary services, narrowed by
# aws:ResourceAccount, not a grant: its actions come from the stack file, not from this list.
BOUNDARY = ("platform-workloads-boundary", "WorkloadServices", "RESOURCE_STAR")


def allowed_findings(stack_name: str) -> dict[tuple[str, str, str], frozenset[str]]:
    from components.spec import load
    from conftest import ROOT

    services = load(stack_name, ROOT).spec.policy.workload_boundary.services
    return {**{k: actions for k, (actions, _) in ALLOWED.items()}, BOUNDARY: frozenset(f"{s}:*" for s in services)}


def unexpected_findings(docs: list[tuple[str, dict[str, Any]]], allowed: dict[tuple[str, str, str], frozenset[str]]) -> list[str]:
    """Parliament's findings on each (statement, action) of every document, less those allowed for that statement and action."""
    unexpected = []
    for name, doc in docs:
        for i, st in enumerate(statements(doc)):
            for action in as_list(st.get("Action", [])) or [None]:
                one = {"Version": "2012-10-17", "Statement": [st if action is None else {**st, "Action": action}]}
                for finding in analyze_policy_string(json.dumps(one), include_community_auditors=False).findings:
                    # Parliament reads every document as an identity policy; a trust policy has no Resource by design.
                    if name.endswith("(trust)") and finding.issue == "MALFORMED" and "Resource" in str(finding.detail):
                        continue
                    # GitHub Actions' OIDC provider (the team deploy roles, docs/ci-setup.md) is not in parliament's list of federation sources.
                    if (
                        name.endswith("(trust)")
                        and finding.issue == "UNKNOWN_FEDERATION_SOURCE"
                        and str(finding.detail).endswith("/token.actions.githubusercontent.com")
                    ):
                        continue
                    if action not in allowed.get((name, str(st.get("Sid", i)), finding.issue), frozenset()):
                        unexpected.append(f"{name}: statement {st.get('Sid', i)}: {action}: {finding.issue} {finding.detail}")
    return unexpected


def policies(rec) -> Iterator[tuple[str, dict[str, Any]]]:
    for r in rec:
        if r.type in POLICY_TYPES:
            yield r.name, json.loads(r.inputs["policy"])


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = doc["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def test_the_program_renders_the_policies_this_test_reads(stack):
    names = {name for name, _ in policies(stack)}
    assert {"platform-karpenter-KarpenterControllerNodeLifecyclePolicy", "vault-unseal-kms", "platform-workloads-boundary"} <= names


def other_policies(rec) -> Iterator[tuple[str, dict[str, Any]]]:
    """Trust policies of roles and resource policies (queues), which parliament reads as well."""
    for r in rec:
        if r.type == "aws:iam/role:Role":
            yield f"{r.name} (trust)", json.loads(r.inputs["assumeRolePolicy"])
        elif r.type == "aws:sqs/queuePolicy:QueuePolicy" or (r.type == "aws:sqs/queue:Queue" and r.inputs.get("policy")):
            yield f"{r.name} (resource policy)", json.loads(r.inputs["policy"])


def test_parliament_finds_nothing_unexpected(stack):
    assert unexpected_findings([*policies(stack), *other_policies(stack)], allowed_findings(stack.stack)) == []
    assert any(name.endswith("(resource policy)") for name, _ in other_policies(stack))


@pytest.mark.parametrize(
    "policy, widen",
    [
        # Another action in an allowlisted statement.
        ("platform-karpenter-KarpenterControllerZonalShiftPolicy", lambda sts: sts[0]["Action"].append("s3:GetObject")),
        # Another statement beside an allowlisted one.
        (
            "platform-karpenter-KarpenterControllerZonalShiftPolicy",
            lambda sts: sts.append({**sts[0], "Sid": "More", "Action": ["arc-zonal-shift:GetManagedResource"]}),
        ),
        # Velero's EC2 snapshot actions back on `Resource: *`.
        ("velero-server", lambda sts: sts.append({"Effect": "Allow", "Action": ["ec2:CreateSnapshot", "ec2:DeleteSnapshot"], "Resource": "*"})),
        # A service outside the stack's boundary services in the boundary.
        ("platform-workloads-boundary", lambda sts: next(st for st in sts if st.get("Sid") == "WorkloadServices")["Action"].append("iam:*")),
    ],
)
def test_widening_an_allowlisted_role_fails(dev, policy, widen):
    doc = copy.deepcopy(dict(policies(dev))[policy])
    doc["Statement"] = statements(doc)
    widen(doc["Statement"])
    assert unexpected_findings([(policy, doc)], allowed_findings("dev")) != []


def test_parliament_would_catch_a_mismatch():
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket"}]}
    assert "RESOURCE_MISMATCH" in {f.issue for f in analyze_policy_string(json.dumps(doc)).findings}


def test_cloudsplaining_finds_no_escalation_credentials_or_unconstrained_permission_changes(stack):
    for name, doc in policies(stack):
        found = PolicyDocument(doc)
        assert found.allows_privilege_escalation == [], name
        assert found.credentials_exposure == [], name
        assert found.permissions_management_without_constraints == [], name
        assert found.contains_statement_using_not_action == [], name


def test_cloudsplaining_would_catch_escalation():
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"}]}
    assert PolicyDocument(doc).allows_privilege_escalation


def test_no_statement_grants_an_action_on_resources_it_cannot_apply_to(stack):
    wrong = []
    for name, doc in policies(stack):
        for st in statements(doc):
            if st.get("Effect") != "Allow":
                continue
            actions = [a for pattern in as_list(st["Action"]) for a in expand(pattern)]
            resources = [r for r in as_list(st["Resource"]) if r != "*"]
            for arn in resources:
                if not any(applies_to(a, arn) for a in actions) and (name, arn) not in ALLOWED_RESOURCES:
                    wrong.append(f"{name}: no action of {st['Action']} applies to {arn}")
            for action in actions:
                if resources and not any(applies_to(action, arn) for arn in resources) and not all((name, arn) in ALLOWED_RESOURCES for arn in resources):
                    wrong.append(f"{name}: {action} applies to none of {resources}")
    assert wrong == []


# Service principals whose trust carries no aws:SourceAccount condition, and why.
TRUST_WITHOUT_SOURCE = {
    "ec2.amazonaws.com": "instance profiles: EC2 passes no source context; who may pass the role is limited instead",
    "eks.amazonaws.com": "the EKS control plane role, trusted as AWS documents it",
    "pods.eks.amazonaws.com": "bound by Pod Identity session tags where the platform owns the service account",
}


def test_service_trust_policies_carry_confused_deputy_conditions(stack):
    for role in stack.of_type("aws:iam/role:Role"):
        for st in statements(json.loads(role.inputs["assumeRolePolicy"])):
            services = as_list(st.get("Principal", {}).get("Service", []))
            for service in services:
                if service in TRUST_WITHOUT_SOURCE:
                    continue
                condition = st.get("Condition", {})
                assert "aws:SourceAccount" in condition.get("StringEquals", {}), f"{role.name}: {service} trust has no aws:SourceAccount"
                assert "aws:SourceArn" in condition.get("ArnLike", {}), f"{role.name}: {service} trust has no aws:SourceArn"


def test_flow_logs_role_is_bound_to_this_accounts_flow_logs(prod):
    trust = statements(json.loads(prod.named("platform-network-flow-logs", "aws:iam/role:Role").inputs["assumeRolePolicy"]))[0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert trust["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:ec2:eu-west-1:123456789012:vpc-flow-log/*"}


def test_workload_roles_are_bound_to_their_service_account(dev):
    trust = statements(json.loads(dev.named("notifications-workload", "aws:iam/role:Role").inputs["assumeRolePolicy"]))[0]
    assert trust["Condition"]["StringEquals"] == {
        "aws:RequestTag/eks-cluster-name": "shop-dev",
        "aws:RequestTag/kubernetes-namespace": "messaging",
        "aws:RequestTag/kubernetes-service-account": "notifications",
    }


@pytest.mark.parametrize(
    "role, namespace, account",
    [
        ("platform-cluster-vpc-cni", "kube-system", "aws-node"),
        ("platform-cluster-ebs-csi", "kube-system", "ebs-csi-controller-sa"),
        ("platform-karpenter-controller", "kube-system", "karpenter"),
    ],
)
def test_platform_pod_identity_roles_are_bound_to_their_service_account(prod, role, namespace, account):
    trust = statements(json.loads(prod.named(role, "aws:iam/role:Role").inputs["assumeRolePolicy"]))[0]
    assert trust["Condition"]["StringEquals"] == {
        "aws:RequestTag/eks-cluster-name": "shop-prod",
        "aws:RequestTag/kubernetes-namespace": namespace,
        "aws:RequestTag/kubernetes-service-account": account,
    }


def test_vpc_cni_runs_on_its_own_pod_identity_role(stack):
    addon = stack.named("platform-cluster-vpc-cni", "aws:eks/addon:Addon")
    [identity] = addon.inputs["podIdentityAssociations"]
    assert identity["serviceAccount"] == "aws-node"
    role = stack.named("platform-cluster-vpc-cni", "aws:iam/role:Role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    attached = {r.inputs["policyArn"].rsplit("/", 1)[-1]: r for r in stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    cni = [r for r in stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if r.inputs["policyArn"].endswith("/AmazonEKS_CNI_Policy")]
    assert [r.name for r in cni] == ["platform-cluster-vpc-cni-AmazonEKS_CNI_Policy"], "no node role carries the CNI policy"
    assert attached
