"""IAM documents and the Pod Identity role shape that every workload identity uses."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pulumi
import pulumi_aws as aws

PARTITION = "aws"
MANAGED = f"arn:{PARTITION}:iam::aws:policy/"
POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def document(statements: Sequence[dict[str, Any]]) -> pulumi.Output[str]:
    """An IAM policy document; statements may hold Outputs (ARNs of other resources)."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def trust(service: str, actions: Sequence[str] = ("sts:AssumeRole",), conditions: Optional[dict[str, Any]] = None) -> pulumi.Output[str]:
    """A service's trust; `conditions` bind it to the account and resource it acts for (confused deputy)."""
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": list(actions)}
    if conditions:
        statement["Condition"] = conditions
    return document([statement])


def source_conditions(account: pulumi.Input[str], source_arn: pulumi.Input[str]) -> dict[str, Any]:
    """The confused-deputy guard for a service acting on the account's behalf: only for this account's resource."""
    return {"StringEquals": {"aws:SourceAccount": account}, "ArnLike": {"aws:SourceArn": source_arn}}


def pod_identity_conditions(cluster: pulumi.Input[str], namespace: str, service_account: str) -> dict[str, Any]:
    """Pod Identity's session tags: only this cluster's service account may assume the role, even if
    another association in the account names it."""
    return {
        "StringEquals": {
            "aws:RequestTag/eks-cluster-name": cluster,
            "aws:RequestTag/kubernetes-namespace": namespace,
            "aws:RequestTag/kubernetes-service-account": service_account,
        }
    }


def role(
    name: str,
    service: str,
    parent: pulumi.Resource,
    managed: Sequence[str] = (),
    inline: Optional[Sequence[dict[str, Any]]] = None,
    actions: Sequence[str] = ("sts:AssumeRole",),
    description: str = "",
    permissions_boundary: Optional[pulumi.Input[str]] = None,
    conditions: Optional[dict[str, Any]] = None,
    tags: Optional[dict[str, str]] = None,
) -> aws.iam.Role:
    """A role trusted by one AWS service, with managed policies attached and an optional inline policy."""
    opts = pulumi.ResourceOptions(parent=parent)
    created = aws.iam.Role(
        name,
        assume_role_policy=trust(service, actions, conditions),
        description=description or None,
        permissions_boundary=permissions_boundary,
        tags=tags,
        opts=opts,
    )
    for policy in managed:
        aws.iam.RolePolicyAttachment(f"{name}-{policy.split('/')[-1]}", role=created.name, policy_arn=MANAGED + policy, opts=opts)
    if inline:
        aws.iam.RolePolicy(f"{name}-inline", role=created.id, policy=document(inline), opts=opts)
    return created


def pod_identity_role(
    name: str,
    parent: pulumi.Resource,
    managed: Sequence[str] = (),
    inline: Optional[Sequence[dict[str, Any]]] = None,
    description: str = "",
    permissions_boundary: Optional[pulumi.Input[str]] = None,
    conditions: Optional[dict[str, Any]] = None,
    tags: Optional[dict[str, str]] = None,
) -> aws.iam.Role:
    """EKS Pod Identity is the default for workload identities: no OIDC trust per cluster, and
    session tags let policies scope by cluster and namespace (`conditions`, see pod_identity_conditions)."""
    return role(
        name,
        POD_IDENTITY_PRINCIPAL,
        parent,
        managed,
        inline,
        actions=("sts:AssumeRole", "sts:TagSession"),
        description=description,
        permissions_boundary=permissions_boundary,
        conditions=conditions,
        tags=tags,
    )
