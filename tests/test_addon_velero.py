"""Velero: its bucket, key and identity, the AWS plugin, CSI snapshots, the schedules, the second copy."""

from __future__ import annotations

import json

from conftest import ROOT

from components.addons import velero
from components.addons.base import Addon
from components.security import RESTRICTED_CONTAINER
from components.spec import load
from components.versions import VELERO, VELERO_PLUGIN_FOR_AWS
from engine import chart_values
from engine.conformance import errors
from engine.stacks import run

RELEASE = "kubernetes:helm.sh/v3:Release"
S3 = "aws:s3/"
POLICY = "aws:iam/rolePolicy:RolePolicy"
IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"


def release(rec):
    return rec.named("velero-velero", RELEASE)


def values(rec) -> dict:
    return release(rec).inputs["values"]


def guard(rec, kind: str, name: str = "velero-backups") -> dict:
    return rec.named(name, f"{S3}{kind}").inputs


def bucket_name(rec) -> str:
    return rec.named("velero-backups", f"{S3}bucket:Bucket").inputs["bucket"]


def statements(rec, name: str) -> list[dict]:
    return json.loads(rec.named(name, POLICY).inputs["policy"])["Statement"]


def test_chart_is_pinned_and_every_value_is_a_chart_key(stack):
    r = release(stack)
    assert (r.inputs["chart"], r.inputs["version"], r.inputs["namespace"]) == ("velero", VELERO.version, "velero")
    assert r.inputs["repositoryOpts"] == {"repo": "https://vmware-tanzu.github.io/helm-charts"}
    assert chart_values.unknown_keys(VELERO, values(stack)) == []


def test_aws_plugin_matches_the_velero_release(stack):
    # The plugin's minor version is Velero's minus four (v1.13 for 1.17, v1.14 for 1.18: the plugin's README).
    velero_tag = chart_values.defaults(VELERO)["image"]["tag"]
    plugin_tag = VELERO_PLUGIN_FOR_AWS.rsplit(":", 1)[1]
    assert int(plugin_tag.split(".")[1]) == int(velero_tag.split(".")[1]) - 4
    [plugin] = values(stack)["initContainers"]
    assert plugin["image"] == VELERO_PLUGIN_FOR_AWS and plugin["volumeMounts"] == [{"mountPath": "/target", "name": "plugins"}]
    assert plugin["securityContext"]["readOnlyRootFilesystem"] and plugin["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_credentials_come_from_pod_identity_only(stack):
    v = values(stack)
    assert v["credentials"] == {"useSecret": False}
    assert v["serviceAccount"]["server"]["name"] == velero.SERVICE_ACCOUNT
    identity = stack.named("velero-server", IDENTITY).inputs
    assert (identity["namespace"], identity["serviceAccount"]) == ("velero", velero.SERVICE_ACCOUNT)
    trust = json.loads(stack.named("velero-server", "aws:iam/role:Role").inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    deps = set(release(stack).dependencies)
    for name, kind in (
        ("velero-server", IDENTITY),
        ("velero-server", POLICY),
        ("velero-snapshot-controller", "aws:eks/addon:Addon"),
        ("velero-backups", f"{S3}bucketPolicy:BucketPolicy"),
    ):
        assert stack.named(name, kind).urn in deps, name


def test_role_is_limited_to_the_bucket_and_its_key(stack):
    bucket = bucket_name(stack)
    found = statements(stack, "velero-server")
    key = stack.named("velero-backups", "aws:kms/key:Key")
    # CSI snapshots: the EBS CSI driver snapshots volumes, so Velero's role has no EC2 action and no `Resource: *`.
    assert not any(a.startswith("ec2:") for st in found for a in st["Action"]) and all(st["Resource"] != "*" for st in found)
    assert found[0] == {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{bucket}"}
    assert found[1]["Resource"] == f"arn:aws:s3:::{bucket}/velero/*" and "s3:PutObject" in found[1]["Action"]
    assert found[2]["Resource"].startswith("arn:aws:kms:") and ":key/" in found[2]["Resource"] and "kms:GenerateDataKey*" in found[2]["Action"]
    assert key.urn in stack.named("velero-server", POLICY).dependencies
    assert len(found) == 3


def test_bucket_is_private_encrypted_versioned_tls_only_and_expires(stack):
    spec = load(stack.stack, ROOT).spec
    bucket = stack.named("velero-backups", f"{S3}bucket:Bucket")
    assert bucket.inputs["bucket"] == f"{spec.cluster.name}-backup-eu-west-1" and not bucket.inputs.get("forceDestroy")
    assert bucket.protect == (stack.stack == "prod")
    assert guard(stack, "bucketPublicAccessBlock:BucketPublicAccessBlock") | {"bucket": None} == {
        "bucket": None,
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    assert guard(stack, "bucketOwnershipControls:BucketOwnershipControls")["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    [rule] = guard(stack, "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms" and rule["bucketKeyEnabled"] is True
    key = stack.named("velero-backups", "aws:kms/key:Key")
    assert (
        key.inputs["enableKeyRotation"] is True
        and key.urn in stack.named("velero-backups", f"{S3}bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").dependencies
    )
    assert guard(stack, "bucketVersioning:BucketVersioning")["versioningConfiguration"] == {"status": "Enabled"}
    days = spec.backup.retention_hours // 24
    assert_expiry(guard(stack, "bucketLifecycleConfiguration:BucketLifecycleConfiguration")["rules"], days + 1, spec.backup.moves_data)
    [deny, only] = json.loads(guard(stack, "bucketPolicy:BucketPolicy")["policy"])["Statement"]
    assert (only["Sid"], only["Effect"], only["Principal"]) == ("OnlyTheBucketsPrincipals", "Deny", "*")
    assert (deny["Effect"], deny["Principal"], deny["Condition"]) == ("Deny", "*", {"Bool": {"aws:SecureTransport": "false"}})


def assert_expiry(rules, days, moves_data):
    """Current objects expire a day after the retention, but never a Kopia repository's (its blobs outlive
    any one backup); old versions and failed uploads everywhere."""
    expiring = {r["filter"]["prefix"] for r in rules if "expiration" in r}
    assert {r["expiration"]["days"] for r in rules if "expiration" in r} == {days}
    assert [r["noncurrentVersionExpiration"] for r in rules if r["filter"]["prefix"] == "" and "noncurrentVersionExpiration" in r] == [{"noncurrentDays": 7}]
    assert all(r["status"] == "Enabled" for r in rules)
    if moves_data:
        assert expiring == {"velero/backups/", "velero/restores/", "vault-snapshots/"}
        assert not any("velero/kopia/checkout/p0123".startswith(prefix) for prefix in expiring)
    else:
        assert expiring == {""}


def test_storage_location_writes_with_the_bucket_key(stack):
    location = stack.manifest("BackupStorageLocation", "default", "velero")
    assert location["spec"]["objectStorage"] == {"bucket": bucket_name(stack), "prefix": "velero"}
    assert location["spec"]["config"]["region"] == "eu-west-1" and location["spec"]["default"] is True
    assert location["spec"]["config"]["kmsKeyId"].startswith("arn:aws:kms:eu-west-1:")
    assert stack.manifest("VolumeSnapshotLocation", "default", "velero")["spec"] == {"provider": "aws", "config": {"region": "eu-west-1"}}
    assert values(stack)["configuration"]["backupStorageLocation"] == [] and values(stack)["configuration"]["volumeSnapshotLocation"] == []


def test_every_velero_object_conforms_to_its_crd(stack):
    objects = [o.inputs for o in stack.kubernetes_objects() if o.inputs["apiVersion"] == "velero.io/v1"]
    assert sorted(o["kind"] for o in objects) == ["BackupStorageLocation", "Schedule", "Schedule", "Schedule", "VolumeSnapshotLocation"]
    for obj in objects:
        assert errors(obj, "1.35") == [], obj["metadata"]["name"]


def test_volumes_are_snapshotted_through_the_csi_driver(stack):
    v = values(stack)
    assert v["configuration"]["features"] == "EnableCSI" and v["snapshotsEnabled"] is True
    assert v["deployNodeAgent"] is load(stack.stack, ROOT).spec.backup.moves_data
    [snapshot_class] = v["extraObjects"]
    assert snapshot_class["kind"] == "VolumeSnapshotClass" and snapshot_class["driver"] == "ebs.csi.aws.com"
    assert snapshot_class["metadata"]["labels"] == {"velero.io/csi-volumesnapshot-class": "true"}
    # The gp3 StorageClass provisions with the same driver.
    assert stack.manifest("StorageClass", "gp3")["provisioner"] == snapshot_class["driver"]
    controller = stack.named("velero-snapshot-controller", "aws:eks/addon:Addon").inputs
    assert controller["addonName"] == "snapshot-controller" and "-eksbuild." in controller["addonVersion"]


def test_schedules_cover_teams_platform_state_and_sealing_keys(stack):
    decl = load(stack.stack, ROOT)
    spec = decl.spec.backup
    teams = stack.manifest("Schedule", "teams", "velero")["spec"]
    assert teams["schedule"] == spec.schedules.teams
    assert teams["template"]["includedNamespaces"] == sorted({s.team for s in decl.services})
    assert teams["template"]["ttl"] == f"{spec.retention_hours}h0m0s" and teams["template"]["snapshotVolumes"] is True
    platform = stack.manifest("Schedule", "platform", "velero")["spec"]
    assert platform["schedule"] == spec.schedules.platform
    assert {"vault", "argocd", "sealed-secrets", "monitoring"} <= set(platform["template"]["includedNamespaces"])
    assert platform["template"]["includedNamespaces"] == sorted(Addon.registry[a].namespace for a in velero.PLATFORM_STATE if decl.spec.addon_enabled(a))
    keys = stack.manifest("Schedule", "sealing-keys", "velero")["spec"]
    assert keys["schedule"] == spec.schedules.sealing_keys
    assert keys["template"]["includedNamespaces"] == ["sealed-secrets"] and keys["template"]["includedResources"] == ["secrets"]
    assert keys["template"]["labelSelector"] == {"matchExpressions": [{"key": "sealedsecrets.bitnami.com/sealed-secrets-key", "operator": "Exists"}]}


def test_metrics_are_scraped_and_only_prometheus_may_reach_velero(stack):
    assert values(stack)["metrics"]["serviceMonitor"] == {"enabled": True, "autodetect": False}
    # The addon base's default-deny (ingress and egress), and the flows velero declares over it.
    deny = stack.manifest("NetworkPolicy", "default-deny", "velero")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    allow = stack.manifest("NetworkPolicy", "allow-scrape", "velero")["spec"]
    assert allow["podSelector"] == {"matchLabels": velero.POD_LABELS}
    assert allow["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                }
            ],
            "ports": [{"port": 8085, "protocol": "TCP"}],
        }
    ]
    policies = {o.inputs["metadata"]["name"] for o in stack.kubernetes_objects() if o.kind == "NetworkPolicy" and o.inputs["metadata"]["namespace"] == "velero"}
    # No hand-made policy of its own any more: only what the base renders.
    assert "allow-prometheus" not in policies
    assert {"default-deny", "allow-dns", "allow-api-server", "allow-cloud-apis", "allow-pod-identity", "allow-vault"} <= policies
    # Restricted unless the data mover's pods (root, created by the node agent) run here: prod's copyTo.
    level = "baseline" if load(stack.stack, ROOT).spec.backup.moves_data else "restricted"
    assert stack.manifest("Namespace", "velero")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == level
    # What the restricted level demands of the chart's pods (server, CRD upgrade job) and the plugin.
    v = values(stack)
    assert v["podSecurityContext"]["runAsNonRoot"] is True and v["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert v["containerSecurityContext"] == RESTRICTED_CONTAINER


def test_prod_replicates_to_a_second_region(prod):
    config = prod.named("velero-copy", f"{S3}bucketReplicationConfig:BucketReplicationConfig")
    [rule] = config.inputs["rules"]
    copy = prod.named("velero-copy", f"{S3}bucket:Bucket").inputs
    assert copy["bucket"] == "shop-prod-backup-eu-central-1" and copy["region"] == "eu-central-1"
    assert rule["destination"]["bucket"] == "arn:aws:s3:::shop-prod-backup-eu-central-1"
    copy_key = prod.named("velero-copy", "aws:kms/key:Key")
    assert copy_key.inputs["region"] == "eu-central-1" and copy_key.inputs["enableKeyRotation"] is True
    assert rule["destination"]["encryptionConfiguration"]["replicaKmsKeyId"].startswith("arn:aws:kms:")
    assert rule["sourceSelectionCriteria"] == {"sseKmsEncryptedObjects": {"status": "Enabled"}} and rule["status"] == "Enabled"
    # Replication needs versioning on both buckets before it is configured.
    for name in ("velero-backups", "velero-copy"):
        assert guard(prod, "bucketVersioning:BucketVersioning", name)["versioningConfiguration"] == {"status": "Enabled"}
        assert prod.named(name, f"{S3}bucketVersioning:BucketVersioning").urn in config.dependencies
    # The copy has the primary's guard rails, in its own region, under its own key.
    assert guard(prod, "bucketPublicAccessBlock:BucketPublicAccessBlock", "velero-copy")["restrictPublicBuckets"] is True
    assert guard(prod, "bucketOwnershipControls:BucketOwnershipControls", "velero-copy")["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    [sse] = guard(prod, "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "velero-copy")["rules"]
    assert sse["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == rule["destination"]["encryptionConfiguration"]["replicaKmsKeyId"]
    assert_expiry(guard(prod, "bucketLifecycleConfiguration:BucketLifecycleConfiguration", "velero-copy")["rules"], 31, moves_data=True)
    [deny] = json.loads(guard(prod, "bucketPolicy:BucketPolicy", "velero-copy")["policy"])["Statement"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {
        guard(prod, kind, "velero-copy").get("region")
        for kind in ("bucketPolicy:BucketPolicy", "bucketVersioning:BucketVersioning", "bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    } == {"eu-central-1"}
    # Deletions by Velero's expiry reach the copy as delete markers; old versions stay there for a week.
    assert rule["deleteMarkerReplication"] == {"status": "Enabled"}
    role = prod.named("velero-copy-replication", "aws:iam/role:Role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "s3.amazonaws.com"}
    granted = {a for s in statements(prod, "velero-copy-replication") for a in s["Action"]}
    assert {"s3:ReplicateObject", "s3:GetObjectVersionForReplication", "kms:Decrypt", "kms:Encrypt"} <= granted


def test_dev_keeps_one_copy(dev):
    assert not [r for r in dev if r.name.startswith("velero-copy")]


def test_a_copy_in_another_account_is_made_there_and_grants_the_replication_role(scratch):
    role_arn = "arn:aws:iam::999988887777:role/backup-copy"
    scratch.edit("stacks/prod.yaml", lambda d: d["backup"]["copyTo"].update(roleArn=role_arn))
    rec = run("prod", scratch.root)
    provider = rec.named("velero-copy", "pulumi:providers:aws")
    assert provider.inputs["region"] == "eu-central-1"
    # Provider configuration reaches the engine JSON-encoded, with the provider's (camelCase) names.
    assert json.loads(provider.inputs["assumeRoles"]) == [{"roleArn": role_arn, "sessionName": "platform-backup-copy"}]
    assert rec.named("velero-copy", f"{S3}bucket:Bucket").provider.startswith(provider.urn)
    [rule] = rec.named("velero-copy", f"{S3}bucketReplicationConfig:BucketReplicationConfig").inputs["rules"]
    assert rule["destination"]["account"] == "999988887777" and rule["destination"]["accessControlTranslation"] == {"owner": "Destination"}
    grants = json.loads(rec.named("velero-copy", f"{S3}bucketPolicy:BucketPolicy").inputs["policy"])["Statement"]
    assert [g["Sid"] for g in grants] == ["DenyInsecureTransport", "ReplicationWrites"]
    key_policy = json.loads(rec.named("velero-copy", "aws:kms/key:Key").inputs["policy"])["Statement"]
    assert key_policy[0]["Principal"] == {"AWS": "arn:aws:iam::999988887777:root"} and key_policy[1]["Sid"] == "ReplicationEncrypts"
