"""Vault's auto-unseal key: an AWS KMS multi-Region key, replicated to the backup copy's region.

A raft snapshot restores only into a Vault sealed by the same key material, so a snapshot copied to
`backup.copyTo.region` is useful there only if the seal key is there too. The stack's key is a
multi-Region primary (`vault-seal`, alias/<cluster>-vault-seal); with `backup.copyTo`, a replica of
it (same key ID and material) and the same alias live in the copy region. KMS creates replicas in the
primary's own account only (ReplicateKey has no cross-account form), so the replica is made with the
stack's own provider and a per-resource region, as storage.replicate places a same-account copy;
with a copy account (`copyTo.roleArn`) the replica's key policy lets that account use the key to
unseal, and a recovery stack there names it by ARN. A recovery stack names the replica in
`addons.vault.settings.unsealKeyArn` and creates no key of its own.

Stacks built before the key was multi-Region keep their old single-Region key: `multiRegion` cannot
change on a KMS key (Pulumi would replace it), and a Vault whose seal key changes without `vault
operator unseal -migrate` never unseals again. `addons.vault.settings.legacyUnsealKey` keeps it
declared, unchanged (`vault-unseal`, alias/<cluster>-vault-unseal), through the migration
(docs/operations.md): `active` (Vault still seals with it), `migrating` (the new key is Vault's seal,
the old one its disabled seal, for `unseal -migrate`), `retired` (kept for the snapshots sealed
before the migration until they expire, then removed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import pulumi
import pulumi_aws as aws

from components.spec.backup import CopyTarget

from . import iam

SEAL_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]
# The key ARN of a multi-Region key (its ID starts with mrk-): what a recovery stack unseals with.
MULTI_REGION_KEY_ARN = r"^arn:(aws|aws-cn|aws-us-gov):kms:([a-z]{2}(-gov)?-[a-z]+-[0-9]):([0-9]{12}):key/mrk-[0-9a-f]{32}$"
LegacyStage = Literal["active", "migrating", "retired"]


def seal_alias(cluster: str) -> str:
    return f"alias/{cluster}-vault-seal"


def legacy_alias(cluster: str) -> str:
    return f"alias/{cluster}-vault-unseal"


def key_problem(arn: str, region: Optional[str]) -> Optional[str]:
    """Why `arn` cannot be this stack's unseal key, or None."""
    match = re.match(MULTI_REGION_KEY_ARN, arn)
    if match is None:
        return (
            f"{arn!r} is not the key ARN of a multi-Region KMS key (arn:aws:kms:<region>:<account>:key/mrk-<32 hex>); "
            "give the replica's key ARN, not an alias or a single-Region key"
        )
    if region and match.group(2) != region:
        return f"{arn!r} is in region {match.group(2)!r}; this stack runs in {region!r}, and Vault unseals with the key replica of its own region"
    return None


@dataclass
class Seal:
    """What Vault's config names (known before any key exists) and what its server role may use."""

    # The awskms seal's kms_key_id: an alias of this stack, or the given key ARN.
    key: str
    # The previous seal, written `disabled` while Vault migrates away from it.
    migrating_from: Optional[str] = None
    # The key ARNs the server's role may use, and what the pods wait for.
    arns: list[pulumi.Input[str]] = field(default_factory=list)
    ready: list[pulumi.Resource] = field(default_factory=list)
    replica: Optional[aws.kms.ReplicaKey] = None
    # The keys this stack created, by resource name: their key policies name the server's role (components/aws/kms.py).
    keys: dict[str, aws.kms.Key] = field(default_factory=dict)


def seal(
    name: str, parent: pulumi.Resource, cluster: str, protect: bool, existing: Optional[str], legacy: Optional[LegacyStage], copy: Optional[CopyTarget]
) -> Seal:
    """The stack's seal keys (or the given one) and, with a copy region, the replica there."""
    if existing:
        return Seal(key=existing, arns=[existing])
    # Losing the key loses every secret in Vault: rotation on, a long deletion window, protected
    # wherever the cluster itself is; a replica is protected the same way.
    kept = pulumi.ResourceOptions(parent=parent, protect=protect)
    child = pulumi.ResourceOptions(parent=parent)
    key = aws.kms.Key(
        f"{name}-seal",
        description=f"Vault auto-unseal for {cluster} (multi-Region, replicated to the backup copy's region)",
        multi_region=True,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        opts=kept,
    )
    alias = aws.kms.Alias(f"{name}-seal", name=seal_alias(cluster), target_key_id=key.key_id, opts=child)
    found = Seal(key=seal_alias(cluster), arns=[key.arn], ready=[alias], keys={f"{name}-seal": key})
    if copy is not None:
        found.replica = aws.kms.ReplicaKey(
            f"{name}-seal-replica",
            region=copy.region,
            primary_key_arn=key.arn,
            description=f"Vault auto-unseal for {cluster}: replica for a recovery stack in {copy.region}",
            deletion_window_in_days=30,
            policy=iam.document(replica_policy(parent, copy)),
            opts=kept,
        )
        aws.kms.Alias(f"{name}-seal-replica", region=copy.region, name=seal_alias(cluster), target_key_id=found.replica.key_id, opts=child)
    if legacy is not None:
        # Exactly as the key was declared before it became multi-Region: the same names, nothing replaced.
        old = aws.kms.Key(f"{name}-unseal", description=f"Vault auto-unseal for {cluster}", enable_key_rotation=True, deletion_window_in_days=30, opts=kept)
        old_alias = aws.kms.Alias(f"{name}-unseal", name=legacy_alias(cluster), target_key_id=old.key_id, opts=child)
        found.keys[f"{name}-unseal"] = old
        if legacy == "active":
            return Seal(key=legacy_alias(cluster), arns=[old.arn], ready=[old_alias, alias], replica=found.replica, keys=found.keys)
        if legacy == "migrating":
            found.migrating_from = legacy_alias(cluster)
            found.arns.append(old.arn)
            found.ready.append(old_alias)
    return found


def replica_policy(parent: pulumi.Resource, copy: CopyTarget) -> list[dict[str, Any]]:
    """The replica's key policy: administered by the stack's account; usable for unsealing by the copy's account when it has one."""
    account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=parent)).account_id
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": pulumi.Output.concat(f"arn:{iam.PARTITION}:iam::", account, ":root")},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if copy.account:
        # The copy account's own IAM policies then decide which of its roles (its Vault's) may unseal.
        statements.append(
            {
                "Sid": "RecoveryAccountUnseals",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{iam.PARTITION}:iam::{copy.account}:root"},
                "Action": SEAL_ACTIONS,
                "Resource": "*",
            }
        )
    return statements


def stanzas(region: str, key: str, migrating_from: Optional[str] = None) -> str:
    """Vault's awskms seal (HCL), with the previous seal disabled during a seal migration."""
    active = f'seal "awskms" {{\n  region = "{region}"\n  kms_key_id = "{key}"\n}}\n'
    if migrating_from is None:
        return active
    return (
        active
        + f'\n# Migrating from the previous seal: `vault operator unseal -migrate` on each node.\nseal "awskms" {{\n  region = "{region}"\n  kms_key_id = "{migrating_from}"\n  disabled = "true"\n}}\n'
    )
