"""Defence in depth: the platform's KMS keys name their users, its buckets refuse other principals.

Whatever IAM a team's role ends up with, KMS also needs the key policy to allow a call, and an
explicit Deny in a bucket policy wins over any Allow; so a platform key or bucket is usable only
by the roles named here. The key policies follow AWS's pattern that keeps a key manageable (the
account's administrators keep the administrative actions through IAM), so none is bricked.
"""

from __future__ import annotations

import json

import pytest

from components.aws import kms, s3

KEY = "aws:kms/key:Key"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ROLE = "aws:iam/role:Role"
ADMINS = {
    "dev": ["arn:aws:iam::111122223333:role/platform-admin", "arn:aws:iam::111122223333:role/platform-deploy"],
    "prod": ["arn:aws:iam::444455556666:role/platform-admin", "arn:aws:iam::444455556666:role/platform-deploy"],
}
CRYPTO = {"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:*", "kms:Create*"}


def statements(resource) -> dict[str, dict]:
    return {s["Sid"]: s for s in json.loads(resource.inputs["policy"])["Statement"]}


def key_policy(rec, key_name: str) -> dict[str, dict]:
    [policy] = [p for p in rec.of_type(KEY_POLICY) if p.name == f"{key_name}-policy" or p.name == key_name]
    return statements(policy)


def role_arn(rec, name: str) -> str:
    """The ARN the offline engine gives the auto-named role (engine/mocks.py)."""
    from engine.mocks import ACCOUNT, _hex

    assert [r for r in rec.of_type(ROLE) if r.name == name]
    return f"arn:aws:iam::{ACCOUNT}:role/{name}-{_hex(name, 7)}"


def test_every_key_the_stack_creates_in_its_region_has_a_key_policy(stack):
    """Replicas and copies in the backup region keep their own policies (their users live in a recovery stack)."""
    keys = {k.name for k in stack.of_type(KEY) if "region" not in k.inputs and not k.inputs.get("policy")}
    restricted = {p.name.removesuffix("-policy") for p in stack.of_type(KEY_POLICY)}
    assert {"platform-cluster-secrets", "vault-seal", "velero-backups"} <= keys
    assert keys <= restricted


@pytest.mark.parametrize(
    "key, users",
    [("platform-cluster-secrets", ["platform-cluster-cluster"]), ("vault-seal", ["vault-unseal"]), ("velero-backups", ["velero-server", "vault-snapshot"])],
)
def test_a_platform_key_is_usable_by_its_named_users_only(dev, key, users):
    found = key_policy(dev, key)
    assert found["KeyUsers"]["Principal"]["AWS"] == [role_arn(dev, u) for u in users]
    assert set(found["KeyUsers"]["Action"]) == set(kms.USE_ACTIONS)
    # Nobody else gets a cryptographic action, nor an ungated grant (a grant is how a principal would give itself the key).
    for sid, statement in found.items():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if sid != "KeyUsers":
            assert not CRYPTO & set(actions), sid
        if "kms:CreateGrant" in actions:
            assert statement["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}, sid
    assert found["KeyAdministrators"]["Principal"]["AWS"] == ADMINS["dev"]


def test_a_key_policy_cannot_brick_its_key(stack):
    """AWS's lockout rule: the account keeps PutKeyPolicy through IAM, and the safety check is never bypassed."""
    for policy in stack.of_type(KEY_POLICY):
        found = statements(policy)
        account = found["AccountAdministersThroughIam"]
        assert account["Principal"]["AWS"].endswith(":root") and "kms:Put*" in account["Action"] and "kms:ScheduleKeyDeletion" in account["Action"]
        assert not policy.inputs.get("bypassPolicyLockoutSafetyCheck")


def test_the_statements_are_what_aws_documents():
    built = {s["Sid"]: s for s in kms.statements("111122223333", [], ["arn:aws:iam::111122223333:role/user"])}
    assert "KeyAdministrators" not in built, "no empty principal list (KMS refuses it)"
    assert "kms:CreateGrant" not in kms.ADMIN_ACTIONS and "kms:Create*" not in kms.ADMIN_ACTIONS


@pytest.mark.parametrize("name, users", [("velero-backups", ["velero-server", "vault-snapshot"]), ("logging-loki-tls-only", ["logging-loki"])])
def test_the_backup_and_loki_buckets_refuse_every_other_principal(prod, name, users):
    [policy] = [p for p in prod.of_type(BUCKET_POLICY) if p.name == name]
    only = statements(policy)["OnlyTheBucketsPrincipals"]
    assert only["Effect"] == "Deny" and only["Principal"] == "*"
    assert only["Action"] == s3.DATA_ACTIONS and "s3:GetObject*" in only["Action"]
    allowed = only["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert [role_arn(prod, u) for u in users] == allowed[: len(users)] and allowed[-2:] == ADMINS["prod"]
    # The bucket's configuration stays with IAM: the policy never locks out those who manage it.
    assert not {"s3:*", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"} & set(only["Action"])


def test_the_replication_role_may_read_the_backups_it_copies(prod):
    [policy] = [p for p in prod.of_type(BUCKET_POLICY) if p.name == "velero-backups"]
    allowed = statements(policy)["OnlyTheBucketsPrincipals"]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert role_arn(prod, "velero-copy-replication") in allowed
    assert role_arn(prod, "velero-copy-replication") in key_policy(prod, "velero-backups")["KeyUsers"]["Principal"]["AWS"]
