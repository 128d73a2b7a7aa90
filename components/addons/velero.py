"""Velero: scheduled backups of the team namespaces and the platform's state, to an S3 bucket per stack.

Settings are the stack's `backup:` section (components/spec/backup.py), not addon settings: the
stack model requires it in prod and ties it to this addon.

- Storage (components/backup/storage.py): a private, TLS-only, KMS-encrypted, versioned bucket that
  expires objects after the retention; with `backup.copyTo`, S3 replication to a bucket in another
  region (and account), re-encrypted with that bucket's own key.
- The AWS plugin (object store and EBS snapshotter) as the chart's init container; Velero reaches S3,
  KMS and EC2 through EKS Pod Identity (`credentials.useSecret: false`): a role limited to the
  bucket and its key (no EC2 actions: volume snapshots are CSI's, made by the EBS CSI driver).
- Volumes: CSI snapshots (built into Velero since 1.14, `--features=EnableCSI`) of the EBS CSI
  driver's volumes, through the VolumeSnapshotClass labelled for Velero (installed with the chart,
  `extraObjects`) and the CSI snapshot controller (EKS addon `snapshot-controller`, which also
  installs the snapshot.storage.k8s.io CRDs). Velero skips its native snapshotter for CSI volumes when
  EnableCSI is on, and no VolumeSnapshotLocation is declared, so nothing needs EC2 on Velero's role.
- Volume data in the second region: with `backup.copyTo` (or `moveData`) the schedules move each
  snapshot's data into the bucket with Kopia, through the node agent and its data mover pods
  (components/backup/data_mover.py); the bucket then expires by age only what is not a Kopia repository.
- Schedules (velero.io/v1 objects, after the chart's CRDs): `teams` (every team namespace),
  `platform` (the addons' namespaces that hold state, PLATFORM_STATE) and `sealing-keys`.
- Sealed Secrets keys: a Velero Schedule of the secrets labelled sealedsecrets.bitnami.com/sealed-secrets-key
  rather than a CronJob exporting them: no second copy of a secret-reading RBAC grant, no extra image,
  the same encryption (the bucket's key), retention, replication, metrics and alerts as every other
  backup, and a restore that is one `velero restore create`. It runs far more often than the
  controller renews its key (the stack model checks), so each new key is in the bucket within a run.
- Vault: a raft snapshot CronJob (components/backup/vault_snapshot.py).
- Metrics: the chart's ServiceMonitor; alerts in components/backup/alerts.py.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, cast

import pulumi
import pulumi_aws as aws

from components.aws import iam, s3
from components.backup import alerts, chart, data_mover, storage, vault_snapshot
from components.contracts import CertManagerContract, MonitoringContract, VaultContract
from components.monitoring.scrape import Metrics
from components.spec import Declarations
from components.spec.alerting import AlertingSpec
from components.spec.backup import BackupSpec, RestoreSource
from components.versions import VELERO

from . import flows as net
from .base import Addon

NAMESPACE = "velero"
RELEASE = "velero"
# The server's; the node agent, its data mover pods and the maintenance Jobs run as it too.
SERVICE_ACCOUNT = chart.SERVICE_ACCOUNT
API = "velero.io/v1"
STORAGE_LOCATION = "default"
# Read-only, on another stack's backups (backup.restoreFrom).
RESTORE_LOCATION = "restore-source"
SNAPSHOT_LOCATION = "default"
# Velero's objects live under this prefix of the bucket; Vault snapshots under their own.
VELERO_PREFIX = "velero"
METRICS_PORT = 8085
SEALING_KEY_LABEL = "sealedsecrets.bitnami.com/sealed-secrets-key"
SCHEDULES = {"teams": "teams", "platform": "platform", "sealing_keys": "sealing-keys"}
# Addons whose namespaces hold state to restore, and what it is. A new stateful addon must be added
# here: tests/test_backup_coverage.py fails for any stateful thing in the render no schedule covers.
PLATFORM_STATE = {
    "vault": "raft storage: every team's secrets (also snapshotted by the vault-snapshot job)",
    "argocd": "Applications, projects, repository and cluster secrets",
    "sealed-secrets": "the controller's key pairs (also in the sealing-keys schedule)",
    "prometheus": "metrics, Alertmanager silences and Grafana's volume",
    "logging": "Loki's index, WAL and single-binary data",
    "tracing": "Jaeger's Badger store (prod)",
    "kubecost": "cost-analyzer's ETL data volume",
}
S3_OBJECT_ACTIONS = ["s3:GetObject", "s3:DeleteObject", "s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
POD_LABELS = {"app.kubernetes.io/name": "velero", "app.kubernetes.io/instance": RELEASE}


class Velero(Addon):
    name = "velero"
    namespace = NAMESPACE
    # Backup and restore counts, durations and the last successful backup per schedule (the backup alerts read them).
    metrics = Metrics(charts={VELERO.name: {"metrics": {"serviceMonitor": {"enabled": True, "autodetect": False}}}})
    # The chart's ServiceMonitor and the backup alerts need the Prometheus Operator CRDs.
    requires = ("prometheus",)
    # With Vault on, its access is connected first: the snapshot job's Vault role is declared through it.
    installs_after = ("vault",)
    pod_security = "baseline"
    pod_security_reason = (
        "with the data mover (backup.copyTo or moveData), the node agent creates a data mover pod per volume from "
        "Velero's code: root (runAsUser 0) and no container securityContext, which baseline admits (no hostPath: "
        "nodeAgent.disableHostPath) and restricted refuses; every pod the chart and this addon render passes restricted"
    )

    @classmethod
    def pod_security_in(cls, decl: Declarations) -> Literal["restricted", "baseline", "privileged"]:
        """The level this stack's namespace enforces: without the data mover every pod here passes restricted."""
        backup = decl.spec.backup
        return cls.pod_security if backup is not None and backup.moves_data else "restricted"

    def namespace_labels(self) -> dict[str, str]:
        # Over the base's `pod_security` label.
        return {"pod-security.kubernetes.io/enforce": self.pod_security_in(self.ctx.decl)}

    def install(self) -> None:
        spec = cast(BackupSpec, self.ctx.decl.spec.backup)  # the stack model requires it with this addon
        cluster, region = self.ctx.cluster_name, self.ctx.region
        protect = self.ctx.decl.spec.cluster.protect
        kept = expiring(spec)
        # The bucket's data and its key are the backup roles' only, named once those exist (end of install).
        users, name_users = storage.deferred_principals()
        name = spec.bucket_name or f"{cluster}-backup-{region}"
        self.bucket = storage.private_bucket(f"{self.name}-backups", name, spec, self, protect, expiring=kept, principals=users)
        self.copy: Optional[storage.Bucket] = None
        replication, snapshot_role = None, None
        if spec.copy_to is not None:
            tags = {"platform/stack": self.ctx.decl.stack, "platform/cluster": cluster, "managed-by": "pulumi"}
            name = spec.copy_to.bucket_name or f"{cluster}-backup-{spec.copy_to.region}"
            self.copy, replication = storage.replicate(f"{self.name}-copy", self.bucket, spec.copy_to, name, spec, self, protect, tags, expiring=kept)
        self.role = iam.pod_identity_role(f"{self.name}-server", self, description="Velero: backups in its bucket, EBS snapshots (Pod Identity)")
        child = pulumi.ResourceOptions(parent=self)
        policy = aws.iam.RolePolicy(f"{self.name}-server", role=self.role.id, opts=child, policy=iam.document(server_policy(self.bucket, spec.restore_from)))
        identity = aws.eks.PodIdentityAssociation(
            f"{self.name}-server", cluster_name=cluster, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, role_arn=self.role.arn, opts=child
        )
        version = aws.eks.get_addon_version_output(
            addon_name="snapshot-controller",
            kubernetes_version=self.ctx.decl.spec.cluster.kubernetes_version,
            most_recent=True,
            opts=pulumi.InvokeOptions(parent=self),
        )
        snapshots = aws.eks.Addon(
            f"{self.name}-snapshot-controller",
            cluster_name=cluster,
            addon_name="snapshot-controller",
            addon_version=version.version,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=child,
        )
        # Velero validates its storage location on start: bucket, key and credentials come first; with the
        # data mover, the repository password (or Velero creates its public default) and the node agent's config.
        mover: tuple[pulumi.Resource, ...] = ()
        if spec.moves_data:
            assert spec.repository_password is not None  # BackupSpec requires it when data moves
            mover = (
                data_mover.repository_secret(f"{self.name}-repo-credentials", NAMESPACE, spec.repository_password, self.k8s),
                data_mover.node_agent_config(f"{self.name}-node-agent-config", NAMESPACE, self.k8s),
            )
        values = chart.values(self.ctx.decl, spec.moves_data)
        self.release = self.helm(VELERO, values, release=RELEASE, depends_on=(policy, identity, snapshots, *self.bucket.guards, *mover))
        self.manifest(API, "BackupStorageLocation", STORAGE_LOCATION, namespace=NAMESPACE, spec=storage_location(self.bucket, region))
        if spec.restore_from is not None:
            self.manifest(API, "BackupStorageLocation", RESTORE_LOCATION, namespace=NAMESPACE, spec=restore_location(spec.restore_from))
        self.manifest(API, "VolumeSnapshotLocation", SNAPSHOT_LOCATION, namespace=NAMESPACE, spec={"provider": "aws", "config": {"region": region}})
        self.schedules = {
            SCHEDULES[key]: self.manifest(API, "Schedule", SCHEDULES[key], namespace=NAMESPACE, spec=body)
            for key, body in schedule_specs(self.ctx.decl, spec).items()
        }
        monitoring = self.ctx.contracts.require(MonitoringContract)
        vault = self.ctx.contracts.get(VaultContract)
        self.snapshot_job = None
        if vault is not None:
            # Vault's listener is TLS from cert-manager's internal CA (vault requires cert-manager).
            certs = self.ctx.contracts.require(CertManagerContract)
            ca = self.manifest(
                "cert-manager.io/v1",
                "Certificate",
                vault_snapshot.CA_SECRET,
                namespace=NAMESPACE,
                spec=vault_snapshot.ca_certificate(certs.internal_issuer),
                depends_on=tuple(self.ctx.installed["cert-manager"].ready),
            )
            # The job's Vault role exists (after Vault's auth method) before the job can run.
            role = vault.access.role(self, vault_snapshot.NAME, vault_snapshot.vault_role(NAMESPACE))
            self.snapshot_job, snapshot_role = vault_snapshot.snapshot_job(
                self, self.opts((ca, role)), NAMESPACE, cluster, spec.schedules.vault_snapshot, self.bucket, spec.image_mirror, vault.active_address
            )
        roles = [self.role.arn, *([snapshot_role.arn] if snapshot_role else []), *([replication.arn] if replication else [])]
        storage.only_for(f"{self.name}-backups", self.bucket, roles, self.ctx.decl.spec.cluster.access.admins, self, name_users)
        alerting = cast(AlertingSpec, self.ctx.decl.spec.alerting)  # the stack model requires it with prometheus
        made = {key: name for key, name in SCHEDULES.items() if name in self.schedules}
        self.manifest(
            "monitoring.coreos.com/v1",
            "PrometheusRule",
            "backup",
            namespace=monitoring.prometheus.namespace,
            spec={"groups": [{"name": "backup", "rules": alerts.rules(spec, NAMESPACE, made, vault=self.snapshot_job is not None, alerting=alerting)}]},
        )

    def flows(self) -> list[net.Flow]:
        found = [
            # Every pod here: the server and the chart's CRD-upgrade hook Job (kubectl) both call the API.
            net.api_server(self.vpc_cidr),
            *self.scraped((METRICS_PORT,), selector=POD_LABELS),
            # S3 (the bucket), KMS (its key) and EC2 (EBS snapshots), with Pod Identity credentials.
            net.cloud("backups in S3, their KMS key and EBS snapshots (EC2)", selector=POD_LABELS),
            net.pod_identity(POD_LABELS),
        ]
        if cast(BackupSpec, self.ctx.decl.spec.backup).moves_data:
            # The node agent carries the server's labels (and flows); the Kopia clients, their own.
            kopia = data_mover.KOPIA_CLIENTS
            found += [
                net.cloud("Kopia repositories in S3 under the bucket's KMS key (data mover pods, maintenance Jobs)", selector=kopia, name="kopia-storage"),
                net.pod_identity(kopia, name="kopia-identity"),
            ]
        vault = self.ctx.contracts.get(VaultContract)
        if vault is not None:
            job = {"app.kubernetes.io/name": vault_snapshot.NAME}
            found += [
                net.vault_client(vault, "the snapshot job saves a raft snapshot from the leader (TLS)", selector=job),
                net.cloud("the snapshot job uploads to S3 under the bucket's KMS key", selector=job, name="snapshot-upload"),
                net.pod_identity(job, name="snapshot-identity"),
            ]
        return found

    def outputs(self) -> dict[str, Any]:
        out = {"namespace": NAMESPACE, "serviceAccount": SERVICE_ACCOUNT, "iamRoleArn": self.role.arn, "bucket": self.bucket.name}
        return out | {"schedules": sorted(self.schedules)} | ({"copyBucket": self.copy.name} if self.copy else {})


def server_policy(bucket: storage.Bucket, source: Optional[RestoreSource]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        # No EC2 actions: volumes are snapshotted through CSI (`EnableCSI`, no VolumeSnapshotLocation), so the
        # EBS CSI driver's own role makes and restores the snapshots; the plugin's native EBS snapshotter,
        # which would need ec2:CreateSnapshot and friends on `Resource: *`, is never used.
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": bucket.arn},
        {"Effect": "Allow", "Action": S3_OBJECT_ACTIONS, "Resource": f"{bucket.arn}/{VELERO_PREFIX}/*"},
        {"Effect": "Allow", "Action": storage.KMS_USE, "Resource": bucket.key.arn},
    ]
    if source is None:
        return found
    # Reading is all a restore needs: objects, Kopia repositories, and their key.
    arn = s3.bucket_arn(source.bucket_name)
    return found + [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": arn},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"{arn}/{VELERO_PREFIX}/*"},
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": source.kms_key_arn},
    ]


def expiring(spec: BackupSpec) -> tuple[str, ...]:
    """The bucket prefixes whose objects expire by age: all, unless Kopia repositories live there too."""
    if not spec.moves_data:
        return ("",)
    return (f"{VELERO_PREFIX}/backups/", f"{VELERO_PREFIX}/restores/", f"{vault_snapshot.SNAPSHOT_PREFIX}/")


def storage_location(bucket: storage.Bucket, region: str) -> dict[str, Any]:
    return {
        "provider": "aws",
        "default": True,
        "accessMode": "ReadWrite",
        "objectStorage": {"bucket": bucket.name, "prefix": VELERO_PREFIX},
        # The plugin then uploads with SSE-KMS under this key (the bucket's default too).
        "config": {"region": region, "kmsKeyId": bucket.key.arn},
    }


def restore_location(source: RestoreSource) -> dict[str, Any]:
    return {
        "provider": "aws",
        "default": False,
        "accessMode": "ReadOnly",
        "objectStorage": {"bucket": source.bucket_name, "prefix": VELERO_PREFIX},
        "config": {"region": source.region, "kmsKeyId": source.kms_key_arn},
    }


def namespaces(decl: Declarations) -> dict[str, list[str]]:
    """Which namespaces each Velero schedule covers, from what the stack installs."""
    platform = sorted(Addon.registry[name].namespace for name in PLATFORM_STATE if decl.spec.addon_enabled(name))
    found = {"teams": list(decl.spec.rooms()), "platform": platform}
    if decl.spec.addon_enabled("sealed-secrets"):
        found["sealing_keys"] = [Addon.registry["sealed-secrets"].namespace]
    return found


def schedule_specs(decl: Declarations, spec: BackupSpec) -> dict[str, dict[str, Any]]:
    """The Schedule specs: each backs up its namespaces with their volumes (CSI snapshots), kept for the retention."""
    specs = {}
    for key, included in namespaces(decl).items():
        if not included:
            continue
        template: dict[str, Any] = {
            "includedNamespaces": included,
            "storageLocation": STORAGE_LOCATION,
            "ttl": f"{spec.retention_hours}h0m0s",
            "snapshotVolumes": key != "sealing_keys",
            "includeClusterResources": False,
            "metadata": {"labels": {"platform.io/schedule": SCHEDULES[key]}},
        }
        if key == "sealing_keys":
            template |= {"includedResources": ["secrets"], "labelSelector": {"matchExpressions": [{"key": SEALING_KEY_LABEL, "operator": "Exists"}]}}
        else:
            # Moved data lands in the bucket (and its replica); otherwise it stays in this region's EBS snapshots.
            template |= {"csiSnapshotTimeout": "30m", "snapshotMoveData": spec.moves_data}
        specs[key] = {"schedule": getattr(spec.schedules, key), "useOwnerReferencesInBackup": False, "template": template}
    return specs
