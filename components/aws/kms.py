"""Key policies of the platform's KMS keys: who administers them, and the roles that use them, by name.

Defence in depth behind the declarations' ownership rules (components/spec/ownership.py): a role
that gets `kms:Decrypt` on a platform key through IAM (a team's, or anyone's) still cannot use it,
because KMS needs the key policy to allow the call as well, and only the named users are allowed.

The policy follows AWS's documented pattern for least privilege without bricking the key:
- the account principal (`:root`) keeps the key administrators' actions, which delegates the
  key's administration to IAM: the account's administrators (and the root user) can always repair
  the policy, and `PutKeyPolicy`'s lockout safety check passes for the identity that deploys it.
  It gets no cryptographic action, and `CreateGrant` only for AWS services acting for a caller
  (`kms:GrantIsForAWSResource`, e.g. EKS setting up envelope encryption), so an IAM grant alone
  never lets a principal encrypt or decrypt;
- the stack's administrators (cluster.access.admins) get the same actions by name;
- the users (the roles of the platform components that need the key) get the cryptographic
  actions, and grants only for AWS resources (EBS, S3 and EKS integrations).
`bypass_policy_lockout_safety_check` stays off.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pulumi
import pulumi_aws as aws

from . import iam

# AWS's "key administrators" actions, less kms:CreateGrant (kms:Create* there), which would let an
# administrator give itself the use of the key without changing the policy.
ADMIN_ACTIONS = [
    "kms:CreateAlias",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
]
USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
GRANT_ACTIONS = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
FOR_AWS_RESOURCES = {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def statements(account: pulumi.Input[str], admins: Sequence[str], users: Sequence[pulumi.Input[str]]) -> list[dict[str, Any]]:
    root = pulumi.Output.concat(f"arn:{iam.PARTITION}:iam::", account, ":root")
    found: list[dict[str, Any]] = [
        {"Sid": "AccountAdministersThroughIam", "Effect": "Allow", "Principal": {"AWS": root}, "Action": ADMIN_ACTIONS, "Resource": "*"},
        {
            "Sid": "AwsServicesGrantForTheAccount",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": FOR_AWS_RESOURCES,
        },
    ]
    if admins:
        found.append({"Sid": "KeyAdministrators", "Effect": "Allow", "Principal": {"AWS": list(admins)}, "Action": ADMIN_ACTIONS, "Resource": "*"})
    found += [
        {"Sid": "KeyUsers", "Effect": "Allow", "Principal": {"AWS": list(users)}, "Action": USE_ACTIONS, "Resource": "*"},
        {
            "Sid": "KeyUsersAttachAwsResources",
            "Effect": "Allow",
            "Principal": {"AWS": list(users)},
            "Action": GRANT_ACTIONS,
            "Resource": "*",
            "Condition": FOR_AWS_RESOURCES,
        },
    ]
    return found


def restrict(
    resource: str, key: aws.kms.Key, users: Sequence[pulumi.Input[str]], admins: Sequence[str], parent: pulumi.Resource, provider: Optional[aws.Provider] = None
) -> aws.kms.KeyPolicy:
    """The key's policy, as its own resource: the users' roles are made after the key (they are allowed on its ARN)."""
    account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=parent, provider=provider)).account_id
    return aws.kms.KeyPolicy(
        resource,
        key_id=key.key_id,
        policy=iam.document(statements(account, admins, users)),
        bypass_policy_lockout_safety_check=False,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )
