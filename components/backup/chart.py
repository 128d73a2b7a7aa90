"""Velero's chart values: the server with the AWS plugin under Pod Identity, and with the data mover
(components/backup/data_mover.py) the node agent and repository maintenance on top."""

from __future__ import annotations

from typing import Any

from components.security import RESTRICTED_CONTAINER, restricted_pod
from components.spec import Declarations, deep_merge
from components.versions import VELERO_PLUGIN_FOR_AWS

from . import data_mover

SERVICE_ACCOUNT = "velero"
SNAPSHOT_CLASS = "ebs-csi-velero"
CSI_DRIVER = "ebs.csi.aws.com"
# The chart's pods run as this user; the image's files are world-readable.
RUN_AS = 65532
# A writable home on a read-only root filesystem: the chart mounts an emptyDir here (see server_values).
HOME = "/tmp"


def values(decl: Declarations, move_data: bool) -> dict[str, Any]:
    server = server_values()
    return deep_merge(server, data_mover.chart_values(decl, RUN_AS)) if move_data else server


def server_values() -> dict[str, Any]:
    return {
        "initContainers": [
            {
                "name": "velero-plugin-for-aws",
                "image": VELERO_PLUGIN_FOR_AWS,
                "imagePullPolicy": "IfNotPresent",
                "volumeMounts": [{"mountPath": "/target", "name": "plugins"}],
                "securityContext": RESTRICTED_CONTAINER,
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
            }
        ],
        "podSecurityContext": restricted_pod(RUN_AS),
        # readOnlyRootFilesystem makes the chart mount an emptyDir at /tmp.
        "containerSecurityContext": RESTRICTED_CONTAINER,
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "serviceAccount": {"server": {"create": True, "name": SERVICE_ACCOUNT}},
        # Pod Identity: the plugin's AWS SDK finds the container credentials EKS injects.
        "credentials": {"useSecret": False},
        # The locations and schedules are Pulumi-managed velero.io objects (validated against the CRDs).
        "configuration": {
            "backupStorageLocation": [],
            "volumeSnapshotLocation": [],
            "features": "EnableCSI",
            "logFormat": "json",
            # Kopia writes its repository config and cache under $HOME (udmrepo/, .cache/), which the read-only
            # root would refuse: the chart's /tmp emptyDir instead. The node agent and the maintenance Jobs
            # (which copy the server's env and volumes) get it too.
            "extraEnvVars": [{"name": "HOME", "value": HOME}],
        },
        "snapshotsEnabled": True,
        "deployNodeAgent": False,
        # Its ServiceMonitor comes with `Velero.metrics`.
        "metrics": {"enabled": True},
        "extraObjects": [
            {
                "apiVersion": "snapshot.storage.k8s.io/v1",
                "kind": "VolumeSnapshotClass",
                "metadata": {"name": SNAPSHOT_CLASS, "labels": {"velero.io/csi-volumesnapshot-class": "true"}},
                # Velero deletes a backup's snapshots when the backup expires.
                "driver": CSI_DRIVER,
                "deletionPolicy": "Delete",
            }
        ],
    }
