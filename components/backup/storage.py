"""Where backups live: a private, KMS-encrypted, versioned S3 bucket per stack, and optionally a
replicated copy in another region (and account).

Every bucket here (the shape of components/aws/s3.py): public access blocked, ACLs off (bucket-owner-enforced ownership), a policy that
denies any request not made over TLS, default encryption with its own customer-managed KMS key
(rotated yearly; S3 Bucket Keys keep the KMS request rate low), versioning, and a lifecycle that
expires objects one day after the retention (Velero deletes expired backups itself; the lifecycle is
the backstop for what a failed garbage collection or a snapshot job leaves) and old versions after
`noncurrentVersionDays`.

Without the data mover, Velero stores only manifests and metadata here; volume data is in EBS
snapshots taken through the CSI driver. With it (components/backup/data_mover.py), volume data is
also here, in Kopia repositories: Kopia deduplicates, so a blob written months ago can hold today's
data, and expiring its objects by age would corrupt every snapshot. Age-based expiry then covers only
the prefixes the caller names (Velero's backups and restores, the Vault snapshots); Kopia's own
maintenance deletes what no retained backup references, and versioning keeps a deleted object for
`noncurrentVersionDays`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.aws import iam, kms, s3
from components.spec.backup import BackupSpec, CopyTarget

KMS_USE = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]


@dataclass
class Bucket:
    name: str
    arn: str
    bucket: aws.s3.Bucket
    key: aws.kms.Key
    # The bucket's guard rails: what must exist before anything writes to it.
    guards: list[pulumi.Resource]

    @property
    def objects(self) -> str:
        return f"{self.arn}/*"


def expiry_days(spec: BackupSpec) -> int:
    """Objects expire one day after the retention, so the lifecycle never races Velero's own expiry."""
    return math.ceil(spec.retention_hours / 24) + 1


def lifecycle_rules(spec: BackupSpec, expiring: Sequence[str]) -> list[dict[str, Any]]:
    """Old versions and failed uploads go everywhere; current objects expire only under `expiring`."""
    housekeeping = {
        "noncurrent_version_expiration": {"noncurrent_days": spec.noncurrent_version_days},
        "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
    }
    expiration = {"expiration": {"days": expiry_days(spec)}}
    if tuple(expiring) == ("",):
        return [{"id": "expire-after-retention", "status": "Enabled", "filter": {"prefix": ""}, **expiration, **housekeeping}]
    return [{"id": "old-versions", "status": "Enabled", "filter": {"prefix": ""}, **housekeeping}] + [
        {"id": f"expire-{prefix.strip('/').replace('/', '-')}", "status": "Enabled", "filter": {"prefix": prefix}, **expiration} for prefix in expiring
    ]


def private_bucket(
    resource: str,
    name: str,
    spec: BackupSpec,
    parent: pulumi.Resource,
    protect: bool,
    provider: Optional[aws.Provider] = None,
    region: Optional[str] = None,
    key_policy: Optional[pulumi.Input[str]] = None,
    statements: Sequence[dict[str, Any]] = (),
    expiring: Sequence[str] = ("",),
    principals: Optional[pulumi.Input[Sequence[pulumi.Input[str]]]] = None,
) -> Bucket:
    """An encrypted, versioned, TLS-only bucket with its own key; `statements` are added to its policy.
    `region` places it outside the provider's region (pulumi-aws 7 takes a region per resource);
    objects under the `expiring` prefixes expire after the retention (default: all of them); with
    `principals`, no one else may read or write its data (s3.guarded_bucket)."""
    where = {"region": region} if region else {}
    # Losing the key loses every backup: protected wherever the cluster is.
    kept = pulumi.ResourceOptions(parent=parent, provider=provider, protect=protect)
    key = aws.kms.Key(
        resource, **where, description=f"Backups in s3://{name}", enable_key_rotation=True, deletion_window_in_days=30, policy=key_policy, opts=kept
    )
    aws.kms.Alias(resource, **where, name=f"alias/{name}", target_key_id=key.key_id, opts=pulumi.ResourceOptions(parent=parent, provider=provider))
    # S3 Bucket Keys keep the KMS request rate (and cost) low.
    encryption = [{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key.arn}, "bucket_key_enabled": True}]
    made = s3.guarded_bucket(
        resource,
        name,
        parent,
        protect,
        encryption,
        lifecycle_rules(spec, expiring),
        statements=statements,
        provider=provider,
        region=region,
        principals=principals,
    )
    return Bucket(name, made.arn, made.bucket, key, made.guards)


def deferred_principals() -> tuple[pulumi.Output[list[str]], Callable[[pulumi.Output[list[str]]], None]]:
    """The principals of a bucket policy made before its roles: given to only_for once they exist. Only
    roles that do not wait for the bucket may be given (a role that waits for its policy would wait forever)."""
    return pulumi.deferred_output()


def only_for(
    resource: str,
    bucket: Bucket,
    roles: Sequence[pulumi.Input[str]],
    admins: Sequence[str],
    parent: pulumi.Resource,
    name_principals: Callable[[pulumi.Output[list[str]]], None],
) -> aws.kms.KeyPolicy:
    """The bucket's key and data for these roles and the stack's administrators only: the key policy,
    and the principals its bucket policy was made waiting for (pulumi.deferred_output)."""
    name_principals(pulumi.Output.all(*roles, *admins))
    return kms.restrict(resource, bucket.key, roles, admins, parent)


def replicate(
    resource: str,
    source: Bucket,
    copy: CopyTarget,
    name: str,
    spec: BackupSpec,
    parent: pulumi.Resource,
    protect: bool,
    tags: dict[str, str],
    expiring: Sequence[str] = ("",),
) -> tuple[Bucket, aws.iam.Role]:
    """The copy bucket in copy.region (in copy's account when a role is given) and S3 replication of every
    object from the source, re-encrypted there with the copy's own key; with the replication role, which
    the source's key and bucket policies name (never the replication's outputs: it waits for them)."""
    # Same account: the stack's provider, with the copy's region on each resource. Another account:
    # a provider that assumes the declared role there (with the stack's default tags).
    provider = (
        aws.Provider(
            resource,
            region=copy.region,
            default_tags={"tags": tags},
            assume_roles=[aws.ProviderAssumeRoleArgs(role_arn=copy.role_arn, session_name="platform-backup-copy")],
            opts=pulumi.ResourceOptions(parent=parent),
        )
        if copy.role_arn
        else None
    )
    # Confused deputy: S3 may assume the role only to replicate this account's source bucket.
    account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=parent)).account_id
    role = iam.role(
        f"{resource}-replication",
        "s3.amazonaws.com",
        parent,
        description=f"S3 replication of {source.name} to {name}",
        conditions=iam.source_conditions(account, source.arn),
    )
    grants: list[dict[str, Any]] = []
    key_policy = None
    if copy.account:
        # Another account: its bucket and key must name the replication role explicitly.
        owner = f"arn:{iam.PARTITION}:iam::{copy.account}:root"
        key_policy = iam.document(
            [
                {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": owner}, "Action": "kms:*", "Resource": "*"},
                {
                    "Sid": "ReplicationEncrypts",
                    "Effect": "Allow",
                    "Principal": {"AWS": role.arn},
                    "Action": ["kms:Encrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                },
            ]
        )
        grants = [
            {
                "Sid": "ReplicationWrites",
                "Effect": "Allow",
                "Principal": {"AWS": role.arn},
                "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags", "s3:ObjectOwnerOverrideToBucketOwner"],
                "Resource": f"{s3.bucket_arn(name)}/*",
            }
        ]
    target = private_bucket(
        resource,
        name,
        spec,
        parent,
        protect,
        provider=provider,
        region=None if provider else copy.region,
        key_policy=key_policy,
        statements=grants,
        expiring=expiring,
    )
    policy = aws.iam.RolePolicy(
        f"{resource}-replication",
        role=role.id,
        opts=pulumi.ResourceOptions(parent=parent),
        policy=iam.document(
            [
                {"Effect": "Allow", "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": source.arn},
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
                    "Resource": source.objects,
                },
                {
                    "Effect": "Allow",
                    "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags", "s3:ObjectOwnerOverrideToBucketOwner"],
                    "Resource": target.objects,
                },
                {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": source.key.arn},
                {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:GenerateDataKey*"], "Resource": target.key.arn},
            ]
        ),
    )
    destination: dict[str, Any] = {"bucket": target.arn, "encryption_configuration": {"replica_kms_key_id": target.key.arn}}
    if copy.account:
        destination |= {"account": copy.account, "access_control_translation": {"owner": "Destination"}}
    # Replication needs versioning on both sides first (the guards include it).
    aws.s3.BucketReplicationConfig(
        resource,
        bucket=source.bucket.id,
        role=role.arn,
        rules=[
            {
                "id": "copy-everything",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "delete_marker_replication": {"status": "Enabled"},
                "source_selection_criteria": {"sse_kms_encrypted_objects": {"status": "Enabled"}},
                "destination": destination,
            }
        ],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*source.guards, *target.guards, policy]),
    )
    return target, role
