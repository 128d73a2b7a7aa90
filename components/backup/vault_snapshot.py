"""The Vault snapshot job: `vault operator raft snapshot save`, then the file to the backup bucket.

Velero's CSI snapshots of Vault's volumes are crash-consistent at best; a raft snapshot is Vault's
own consistent, restorable backup (`vault operator raft snapshot restore`). The CronJob logs in to
Vault with the Kubernetes auth method as its own service account, with a token whose audience is
"vault" and which lives ten minutes. Its Vault role `vault-snapshot` and policy `vault-snapshot`
(read on sys/storage/raft/snapshot, nothing else), bound to the job's service account in Velero's
namespace, are declared by Velero through Vault's one access (components/vault_access.py, `vault_role`
below), like the team roles of External Secrets: nothing inside Vault is set up by hand.

Two containers share a memory-backed emptyDir: the Vault CLI (init container) writes the snapshot,
the AWS CLI uploads it with SSE-KMS under the backup key, using the job's Pod Identity role, which
may only put objects under SNAPSHOT_PREFIX and use that key. Neither holds a long-lived credential.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import security
from components.aws import iam
from components.scheduling import priority_class_name
from components.security import RESTRICTED_CONTAINER, restricted_pod
from components.vault_access import AUTH_MOUNT, TOKEN_AUDIENCE, VaultRole
from components.versions import AWS_CLI_IMAGE, VAULT_IMAGE

from .storage import Bucket

NAME = "vault-snapshot"
SERVICE_ACCOUNT = NAME
VAULT_ROLE = NAME
# The path the Vault policy allows, read only: what `vault operator raft snapshot save` calls.
SNAPSHOT_PATH = "sys/storage/raft/snapshot"
SNAPSHOT_PREFIX = "vault-snapshots"
# Vault tokens of the job live ten minutes: one snapshot, never reused.
TOKEN_TTL_SECONDS = 600
# Vault's CA for the job: cert-manager writes the issuing CA into every certificate's Secret (ca.crt), so a
# certificate from the issuer that signs Vault's listener, in the job's namespace, carries the CA the job trusts.
CA_SECRET = f"{NAME}-vault-ca"
CA_DIR = "/vault/ca"
# The label that says which namespace's state a job backs up: what the coverage check reads.
BACKS_UP = "platform.io/backs-up"
# A UID no image assigns: the AWS CLI image would otherwise run as root.
RUN_AS = 65532


def image(mirror: str, reference: str) -> str:
    """An upstream image reference through the stack's mirror: public.ecr.aws/x/y:1 -> <mirror>x/y:1."""
    return mirror + reference.split("/", 1)[1] if mirror else reference


def vault_role(namespace: str) -> VaultRole:
    """The job's Vault role and policy: read on the raft snapshot endpoint only, for the job's account in `namespace`."""
    policy = f'path "{SNAPSHOT_PATH}" {{\n  capabilities = ["read"]\n}}\n'
    return VaultRole(name=VAULT_ROLE, policy=policy, service_account=SERVICE_ACCOUNT, namespace=namespace, ttl_seconds=TOKEN_TTL_SECONDS)


def ca_certificate(issuer: str) -> dict[str, Any]:
    """A client certificate from Vault's issuer, made for the CA cert-manager puts beside it (the key pair is never used)."""
    return security.ca_certificate(CA_SECRET, NAME, issuer)


def snapshot_job(
    parent: pulumi.Resource, opts: pulumi.ResourceOptions, namespace: str, cluster: str, schedule: str, bucket: Bucket, mirror: str, vault_address: str
) -> tuple[k8s.batch.v1.CronJob, aws.iam.Role]:
    child = pulumi.ResourceOptions(parent=parent)
    role = iam.pod_identity_role(f"{NAME}", parent, description="Vault snapshot job: put raft snapshots in the backup bucket (Pod Identity)")
    policy = aws.iam.RolePolicy(
        NAME,
        role=role.id,
        opts=child,
        policy=iam.document(
            [
                {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": f"{bucket.arn}/{SNAPSHOT_PREFIX}/*"},
                # GenerateDataKey to encrypt; Decrypt because the CLI uploads large files in parts.
                {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": bucket.key.arn},
            ]
        ),
    )
    identity = aws.eks.PodIdentityAssociation(NAME, cluster_name=cluster, namespace=namespace, service_account=SERVICE_ACCOUNT, role_arn=role.arn, opts=child)
    account = k8s.core.v1.ServiceAccount(NAME, metadata={"name": SERVICE_ACCOUNT, "namespace": namespace}, automount_service_account_token=False, opts=opts)
    # Plain data, typed Any: mypy cannot match a nested dict against the constructor's TypedDict
    # overloads, and spelling out its failure for CronJob takes it tens of GB.
    spec: Any = {
        "schedule": schedule,
        "timeZone": "Etc/UTC",
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "spec": {
                "backoffLimit": 2,
                "activeDeadlineSeconds": 1800,
                "ttlSecondsAfterFinished": 86400,
                "template": pod_template(namespace, bucket, mirror, vault_address),
            }
        },
    }
    job = k8s.batch.v1.CronJob(
        NAME,
        metadata={"name": NAME, "namespace": namespace, "labels": {"app.kubernetes.io/name": NAME, BACKS_UP: "vault"}},
        spec=spec,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[account, identity, policy, *bucket.guards])),
    )
    return job, role


def pod_template(namespace: str, bucket: Bucket, mirror: str, vault_address: str) -> dict[str, Any]:
    resources = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
    login = (
        f'export VAULT_TOKEN="$(vault write -field=token auth/{AUTH_MOUNT}/login role={VAULT_ROLE} jwt=@/var/run/secrets/vault/token)" '
        "&& vault operator raft snapshot save /snapshot/vault.snap"
    )
    upload = (
        'aws s3 cp /snapshot/vault.snap "s3://${BUCKET}/' + SNAPSHOT_PREFIX + '/$(date -u +%Y%m%dT%H%M%SZ).snap" '
        '--sse aws:kms --sse-kms-key-id "${KMS_KEY_ARN}" --only-show-errors'
    )
    scratch = [{"name": "snapshot", "mountPath": "/snapshot"}, {"name": "tmp", "mountPath": "/tmp"}]
    return {
        "metadata": {"labels": {"app.kubernetes.io/name": NAME}},
        "spec": {
            "serviceAccountName": SERVICE_ACCOUNT,
            "automountServiceAccountToken": False,
            "restartPolicy": "Never",
            "priorityClassName": priority_class_name("standard"),
            "securityContext": restricted_pod(RUN_AS),
            "initContainers": [
                {
                    "name": "snapshot",
                    "image": image(mirror, VAULT_IMAGE),
                    "command": ["/bin/sh", "-ec", login],
                    # TLS to the leader, verified against the platform CA (the Vault CLI reads VAULT_CACERT).
                    "env": [
                        {"name": "VAULT_ADDR", "value": vault_address},
                        {"name": "VAULT_CACERT", "value": f"{CA_DIR}/ca.crt"},
                        {"name": "HOME", "value": "/tmp"},
                    ],
                    "volumeMounts": [
                        *scratch,
                        {"name": "vault-token", "mountPath": "/var/run/secrets/vault", "readOnly": True},
                        {"name": "vault-ca", "mountPath": CA_DIR, "readOnly": True},
                    ],
                    "securityContext": RESTRICTED_CONTAINER,
                    "resources": resources,
                }
            ],
            "containers": [
                {
                    "name": "upload",
                    "image": image(mirror, AWS_CLI_IMAGE),
                    "command": ["/bin/sh", "-ec", upload],
                    "env": [{"name": "BUCKET", "value": bucket.name}, {"name": "KMS_KEY_ARN", "value": bucket.key.arn}, {"name": "HOME", "value": "/tmp"}],
                    "volumeMounts": scratch,
                    "securityContext": RESTRICTED_CONTAINER,
                    "resources": resources,
                }
            ],
            "volumes": [
                # The snapshot's data is encrypted by Vault's barrier (its key sealed by KMS), so a node disk will do.
                {"name": "snapshot", "emptyDir": {"sizeLimit": "2Gi"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                {
                    "name": "vault-token",
                    "projected": {"sources": [{"serviceAccountToken": {"audience": TOKEN_AUDIENCE, "expirationSeconds": 600, "path": "token"}}]},
                },
                # Only the CA: the certificate's key pair stays out of the pod.
                {"name": "vault-ca", "secret": {"secretName": CA_SECRET, "items": [{"key": "ca.crt", "path": "ca.crt"}], "defaultMode": 0o444}},
            ],
        },
    }
