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


def trust(service: str, actions: Sequence[str] = ("sts:AssumeRole",)) -> pulumi.Output[str]:
    return document([{"Effect": "Allow", "Principal": {"Service": service}, "Action": list(actions)}])


def role(
    name: str,
    service: str,
    parent: pulumi.Resource,
    managed: Sequence[str] = (),
    inline: Optional[Sequence[dict[str, Any]]] = None,
    actions: Sequence[str] = ("sts:AssumeRole",),
    description: str = "",
) -> aws.iam.Role:
    """A role trusted by one AWS service, with managed policies attached and an optional inline policy."""
    opts = pulumi.ResourceOptions(parent=parent)
    created = aws.iam.Role(name, assume_role_policy=trust(service, actions), description=description or None, opts=opts)
    for policy in managed:
        aws.iam.RolePolicyAttachment(f"{name}-{policy.split('/')[-1]}", role=created.name, policy_arn=MANAGED + policy, opts=opts)
    if inline:
        aws.iam.RolePolicy(f"{name}-inline", role=created.id, policy=document(inline), opts=opts)
    return created


def pod_identity_role(name: str, parent: pulumi.Resource, managed: Sequence[str] = (), inline: Optional[Sequence[dict[str, Any]]] = None, description: str = "") -> aws.iam.Role:
    """EKS Pod Identity is the default for workload identities: no OIDC trust per cluster, and
    session tags let policies scope by cluster and namespace."""
    return role(name, POD_IDENTITY_PRINCIPAL, parent, managed, inline, actions=("sts:AssumeRole", "sts:TagSession"), description=description)
