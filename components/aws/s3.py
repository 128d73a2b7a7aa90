"""The one shape of an S3 bucket the platform creates: private, owner-only, encrypted, versioned,
housekept and TLS-only, with the guard rails as resources to wait for.

The callers choose the encryption (a customer-managed KMS key for backups, SSE-S3 where only one
role reads the bucket), the lifecycle and extra policy statements; everything else is the same
for every bucket, so a new bucket cannot forget a guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pulumi
import pulumi_aws as aws

from . import iam

SSE_S3 = [{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}]


@dataclass
class GuardedBucket:
    bucket: aws.s3.Bucket
    arn: str
    # What must exist before anything writes to the bucket.
    guards: list[pulumi.Resource]


def bucket_arn(name: str) -> str:
    return f"arn:{iam.PARTITION}:s3:::{name}"


def tls_only(arn: str) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


# What a principal does with the data: every object and listing action, reads and writes; the bucket's
# own configuration (policy, versioning...) stays with IAM, so no policy here can lock its admins out.
DATA_ACTIONS = [
    "s3:GetObject*",
    "s3:PutObject*",
    "s3:DeleteObject*",
    "s3:ListBucket*",
    "s3:ListMultipartUploadParts",
    "s3:AbortMultipartUpload",
    "s3:RestoreObject",
    "s3:Replicate*",
]


def only(arn: str, principals: pulumi.Input[Sequence[pulumi.Input[str]]]) -> dict[str, Any]:
    """Refuse the bucket's data to every principal but these (roles by ARN), whatever their IAM policies say."""
    return {
        "Sid": "OnlyTheBucketsPrincipals",
        "Effect": "Deny",
        "Principal": "*",
        "Action": DATA_ACTIONS,
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": principals}},
    }


def guarded_bucket(
    resource: str,
    name: str,
    parent: pulumi.Resource,
    protect: bool,
    encryption: Sequence[Any],
    lifecycle: Sequence[Any],
    statements: Sequence[dict[str, Any]] = (),
    provider: Optional[aws.Provider] = None,
    region: Optional[str] = None,
    policy_resource: Optional[str] = None,
    principals: Optional[pulumi.Input[Sequence[pulumi.Input[str]]]] = None,
) -> GuardedBucket:
    """The bucket `name` and its guards, all named `resource` (the bucket policy `policy_resource`, where
    an existing stack named it differently). `region` places it outside the provider's region; with
    `principals`, no other principal may read or write its data."""
    where: dict[str, Any] = {"region": region} if region else {}
    child = pulumi.ResourceOptions(parent=parent, provider=provider)
    # Losing the bucket loses what it holds: protected wherever the cluster is.
    bucket = aws.s3.Bucket(resource, **where, bucket=name, force_destroy=False, opts=pulumi.ResourceOptions(parent=parent, provider=provider, protect=protect))
    arn = bucket_arn(name)
    guards: list[pulumi.Resource] = [
        aws.s3.BucketPublicAccessBlock(
            resource,
            **where,
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        ),
        aws.s3.BucketOwnershipControls(resource, **where, bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child),
        aws.s3.BucketServerSideEncryptionConfiguration(resource, **where, bucket=bucket.id, rules=list(encryption), opts=child),
        aws.s3.BucketVersioning(resource, **where, bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=child),
        aws.s3.BucketLifecycleConfiguration(resource, **where, bucket=bucket.id, rules=list(lifecycle), opts=child),
        aws.s3.BucketPolicy(
            policy_resource or resource,
            **where,
            bucket=bucket.id,
            policy=iam.document([tls_only(arn), *statements, *([only(arn, principals)] if principals is not None else [])]),
            opts=child,
        ),
    ]
    return GuardedBucket(bucket, arn, guards)
