"""Velero's CSI snapshot data mover: volume data out of the region's EBS snapshots into the backup
bucket, so the bucket's replica in the copy region (`backup.copyTo`) holds volumes too.

How Velero 1.18 moves data (a Schedule's `snapshotMoveData: true`):
- the server takes the CSI snapshot as before, then creates a DataUpload per volume;
- the node agent (DaemonSet `node-agent`, the chart's `deployNodeAgent`) exposes the snapshot as a
  temporary PVC and starts a data mover pod for it in the velero namespace: the node agent's image,
  service account (`velero`, so the server's Pod Identity association covers it), env and volumes,
  `velero data-mover backup`, labels `velero.io/data-upload` and `velero.io/exposer-pod-group` plus
  the node agent config's `podLabels`; the pod runs as root (runAsUser 0) with no container
  securityContext, which Pod Security baseline admits and restricted does not (`Velero.pod_security`);
- the data mover pod writes the volume with Kopia into `<prefix>/kopia/<namespace>/` of the bucket,
  encrypted with the password in Secret `velero-repo-credentials` (Velero creates it with a static,
  public default when it is missing, so it is created here first, from a Pulumi secret);
- restores run the same way (DataDownload, `velero data-mover restore`), and the server starts
  repository maintenance Jobs (Kopia's garbage collection) with the server's image, service account
  and securityContext, labelled from the chart's repository maintenance `global.podLabels`.

`nodeAgent.disableHostPath`: the data mover reads the exposed PVC, never the host's pod directories
(those serve file-system backups, which this platform does not use), so the node agent mounts no
hostPath and runs as the chart's server does, non-root under a restricted securityContext.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.security import RESTRICTED_CONTAINER, restricted_pod
from components.spec import Declarations
from components.spec.alerting import SecretConfig
from components.spec.placement import pool_tolerations

REPO_SECRET = "velero-repo-credentials"
REPO_PASSWORD_KEY = "repository-password"
NODE_AGENT_CONFIG = "node-agent-config"
# Under Velero's prefix of the bucket: one Kopia repository per backed-up namespace.
KOPIA_DIR = "kopia"
# Data mover pods and maintenance Jobs: the clients of the Kopia repositories (S3, KMS, Pod Identity).
KOPIA_CLIENTS = {"app.kubernetes.io/component": "kopia"}
DATA_MOVER_LABELS = {"app.kubernetes.io/name": "velero-data-mover", **KOPIA_CLIENTS}
MAINTENANCE_LABELS = {"app.kubernetes.io/name": "velero-repo-maintenance", **KOPIA_CLIENTS}
# A DaemonSet pod must fit on every node, full ones included, or volumes there are never moved; the
# agent is small (the data path runs in the data mover pods). The log agent does the same.
NODE_AGENT_PRIORITY = "system-node-critical"
# Backups are no batch work to evict first, nor outrank the critical services.
DATA_MOVER_PRIORITY = "standard"
# Velero parses all four (a missing one voids the section); Kopia's memory grows with the volume's file count.
DATA_MOVER_RESOURCES = {"cpuRequest": "250m", "cpuLimit": "2", "memoryRequest": "512Mi", "memoryLimit": "2Gi"}
MAINTENANCE_RESOURCES = {"cpuRequest": "100m", "cpuLimit": "1", "memoryRequest": "256Mi", "memoryLimit": "1Gi"}
# Karpenter does not consolidate a node away under a running upload, download or maintenance (which
# would fail that volume's backup); it still replaces the node once the pod is done.
DO_NOT_DISRUPT = {"karpenter.sh/do-not-disrupt": "true"}


def repository_secret(name: str, namespace: str, password: SecretConfig, opts: pulumi.ResourceOptions) -> k8s.core.v1.Secret:
    """Secret velero-repo-credentials from the stack's Pulumi secret config: the engine keeps it secret
    in state and output, and the same password opens the repositories from another cluster."""
    value = pulumi.Config("platform").require_secret(password.config)
    return k8s.core.v1.Secret(
        name,
        metadata={"name": REPO_SECRET, "namespace": namespace, "labels": {"app.kubernetes.io/name": "velero"}},
        type="Opaque",
        string_data={REPO_PASSWORD_KEY: value},
        opts=opts,
    )


def node_agent_config(name: str, namespace: str, opts: pulumi.ResourceOptions) -> k8s.core.v1.ConfigMap:
    """The node agent's ConfigMap (`--node-agent-configmap`, exactly one JSON key): what its data mover pods get."""
    config = {"podLabels": DATA_MOVER_LABELS, "podAnnotations": DO_NOT_DISRUPT, "podResources": DATA_MOVER_RESOURCES, "priorityClassName": DATA_MOVER_PRIORITY}
    return k8s.core.v1.ConfigMap(
        name,
        metadata={"name": NODE_AGENT_CONFIG, "namespace": namespace, "labels": {"app.kubernetes.io/name": "velero"}},
        data={"node-agent-config.json": json.dumps(config, sort_keys=True)},
        opts=opts,
    )


def chart_values(decl: Declarations, run_as: int) -> dict[str, Any]:
    """Chart values that deploy the node agent and configure the maintenance Jobs."""
    return {
        "deployNodeAgent": True,
        "nodeAgent": {
            "disableHostPath": True,
            "podSecurityContext": restricted_pod(run_as),
            "containerSecurityContext": RESTRICTED_CONTAINER,
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "priorityClassName": NODE_AGENT_PRIORITY,
            # Every Karpenter pool's nodes, tainted ones included, so the agent serves whatever node a
            # data mover pod lands on. Those pods themselves get only Velero's fixed tolerations, so they
            # run on untainted nodes of the volume's zone (the stack model keeps one untainted pool).
            "tolerations": pool_tolerations(decl.spec.karpenter.node_pools),
            "extraArgs": [f"--node-agent-configmap={NODE_AGENT_CONFIG}"],
            # A read-only root filesystem: scratch space is the chart's emptyDir, temporary files this one.
            "extraVolumes": [{"name": "tmp", "emptyDir": {}}],
            "extraVolumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        },
        "configuration": {
            "repositoryMaintenanceJob": {
                "repositoryConfigData": {
                    "global": {
                        "keepLatestMaintenanceJobs": 3,
                        "podLabels": MAINTENANCE_LABELS,
                        "podAnnotations": DO_NOT_DISRUPT,
                        "podResources": MAINTENANCE_RESOURCES,
                    }
                }
            }
        },
        "metrics": {"nodeAgentPodMonitor": {"enabled": True, "autodetect": False}},
    }
