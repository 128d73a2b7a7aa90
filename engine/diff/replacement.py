"""Which changed properties force the provider to replace a resource (delete and create it again)."""

from __future__ import annotations

from typing import Any, Optional

from ..recording import NOT_OBJECTS
from .paths import Token, parse_pattern


# Paths are input paths (camelCase, as registered); `[*]` matches any list index. A change at or
# below a listed path forces the provider to delete and re-create the resource.
#
# AWS: pulumi-aws 7.x bridges terraform-provider-aws 6.x, where these arguments are `ForceNew`.
# Checked against the provider's schemas for aws_eks_cluster (note: vpcConfig.subnetIds and
# securityGroupIds are *not* here: EKS updates them in place since UpdateClusterConfig learned them,
# and the provider followed), aws_eks_node_group and aws_subnet; the others follow the provider's
# documented `ForceNew` arguments.
REPLACE_ON_CHANGE: dict[str, tuple[str, ...]] = {
    "aws:eks/cluster:Cluster": (
        "name",
        "roleArn",
        "bootstrapSelfManagedAddons",
        "accessConfig.bootstrapClusterCreatorAdminPermissions",
        "kubernetesNetworkConfig.ipFamily",
        "kubernetesNetworkConfig.serviceIpv4Cidr",
        "outpostConfig.controlPlaneInstanceType",
        "outpostConfig.controlPlanePlacement.groupName",
        "remoteNetworkConfig",
    ),
    "aws:eks/nodeGroup:NodeGroup": (
        "amiType",
        "capacityType",
        "clusterName",
        "diskSize",
        "instanceTypes",
        "launchTemplate.id",
        "launchTemplate.name",
        "nodeGroupName",
        "nodeGroupNamePrefix",
        "nodeRoleArn",
        "remoteAccess",
        "subnetIds",
    ),
    "aws:eks/addon:Addon": ("clusterName", "addonName"),
    "aws:eks/accessEntry:AccessEntry": ("clusterName", "principalArn", "type"),
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": ("clusterName", "principalArn", "policyArn", "accessScope"),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": ("clusterName", "namespace", "serviceAccount"),
    "aws:ec2/vpc:Vpc": ("cidrBlock", "ipv4IpamPoolId", "ipv4NetmaskLength"),
    "aws:ec2/subnet:Subnet": (
        "availabilityZone",
        "availabilityZoneId",
        "cidrBlock",
        "vpcId",
        "ipv4IpamPoolId",
        "ipv4NetmaskLength",
        "ipv6IpamPoolId",
        "ipv6Native",
        "ipv6NetmaskLength",
        "outpostArn",
    ),
    "aws:ec2/natGateway:NatGateway": ("allocationId", "connectivityType", "privateIp", "subnetId"),
    "aws:ec2/eip:Eip": ("address", "customerOwnedIpv4Pool", "domain", "networkBorderGroup", "publicIpv4Pool"),
    "aws:ec2/routeTable:RouteTable": ("vpcId",),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("subnetId", "gatewayId"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("vpcId",),
    "aws:ec2/flowLog:FlowLog": (
        "vpcId",
        "subnetId",
        "eniId",
        "transitGatewayId",
        "trafficType",
        "logDestination",
        "logDestinationType",
        "iamRoleArn",
        "logFormat",
        "maxAggregationInterval",
        "destinationOptions",
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": ("name", "namePrefix"),
    "aws:ec2/tag:Tag": ("resourceId", "key"),
    "aws:iam/role:Role": ("name", "namePrefix", "path"),
    "aws:iam/policy:Policy": ("name", "namePrefix", "path", "description"),
    "aws:iam/rolePolicy:RolePolicy": ("name", "namePrefix", "role"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("role", "policyArn"),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ("url",),
    "aws:kms/key:Key": ("customerMasterKeySpec", "keyUsage", "multiRegion", "customKeyStoreId", "xksKeyId"),
    "aws:kms/alias:Alias": ("name", "namePrefix"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "namePrefix", "logGroupClass"),
    "aws:cloudwatch/eventRule:EventRule": ("name", "namePrefix", "eventBusName"),
    "aws:cloudwatch/eventTarget:EventTarget": ("rule", "targetId", "eventBusName"),
    "aws:sqs/queue:Queue": ("name", "namePrefix", "fifoQueue"),
    "aws:sqs/queuePolicy:QueuePolicy": ("queueUrl",),
    # pulumi-kubernetes replaces a Helm release whose name or namespace changes.
    "kubernetes:helm.sh/v3:Release": ("name", "namespace"),
    "kubernetes-cert-manager:index:CertManager": ("helmOptions.name", "helmOptions.namespace"),
}

# Kubernetes: pulumi-kubernetes 4.x (provider/pkg/provider/diff.go `forceNew`). Every object is
# replaced when metadata.name or metadata.namespace changes; these kinds have more immutable fields.
# Note Service: only spec.clusterIP; a changed spec.selector is an in-place update.
_SELECTOR = ("spec.selector",)
_CONTAINER_FIELDS = (
    "args",
    "command",
    "env",
    "image",
    "imagePullPolicy",
    "lifecycle",
    "livenessProbe",
    "ports",
    "readinessProbe",
    "resources",
    "securityContext",
    "stdin",
    "stdinOnce",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "tty",
    "volumeDevices",
    "volumeMounts",
    "workingDir",
)
KUBERNETES_REPLACE_ON_CHANGE: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "Deployment"): _SELECTOR,
    ("apps", "DaemonSet"): _SELECTOR,
    ("apps", "StatefulSet"): _SELECTOR + ("spec.podManagementPolicy", "spec.revisionHistoryLimit", "spec.serviceName", "spec.volumeClaimTemplates"),
    ("batch", "Job"): _SELECTOR + ("spec.completions", "spec.parallelism", "spec.template"),
    ("core", "Service"): ("spec.clusterIP",),
    ("core", "PersistentVolumeClaim"): _SELECTOR + ("spec.accessModes", "spec.storageClassName", "spec.volumeName"),
    ("core", "ResourceQuota"): ("spec.scopes",),
    ("core", "Pod"): (
        "spec.affinity",
        "spec.automountServiceAccountToken",
        "spec.dnsConfig",
        "spec.dnsPolicy",
        "spec.enableServiceLinks",
        "spec.hostAliases",
        "spec.hostIPC",
        "spec.hostNetwork",
        "spec.hostPID",
        "spec.hostname",
        "spec.imagePullSecrets",
        "spec.nodeName",
        "spec.nodeSelector",
        "spec.overhead",
        "spec.preemptionPolicy",
        "spec.priority",
        "spec.priorityClassName",
        "spec.readinessGates",
        "spec.restartPolicy",
        "spec.runtimeClassName",
        "spec.schedulerName",
        "spec.securityContext",
        "spec.serviceAccount",
        "spec.serviceAccountName",
        "spec.shareProcessNamespace",
        "spec.subdomain",
        "spec.terminationGracePeriodSeconds",
        "spec.volumes",
    )
    + tuple(f"spec.{c}[*].{f}" for c in ("containers", "initContainers") for f in _CONTAINER_FIELDS),
    ("core", "PersistentVolume"): tuple(
        f"spec.{s}"
        for s in (
            "awsElasticBlockStore",
            "azureDisk",
            "azureFile",
            "cephfs",
            "cinder",
            "csi",
            "fc",
            "flexVolume",
            "flocker",
            "gcePersistentDisk",
            "glusterfs",
            "hostPath",
            "iscsi",
            "local",
            "nfs",
            "photonPersistentDisk",
            "portworxVolume",
            "quobyte",
            "rbd",
            "scaleIO",
            "storageos",
            "vsphereVolume",
        )
    ),
    ("rbac.authorization.k8s.io", "RoleBinding"): ("roleRef",),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ("roleRef",),
    ("storage.k8s.io", "StorageClass"): ("parameters", "provisioner"),
    ("policy", "PodDisruptionBudget@v1beta1"): ("spec",),
}
KUBERNETES_ALWAYS = ("metadata.name", "metadata.namespace")


def _values_at(obj: Any, pattern: tuple[Token, ...]) -> dict[tuple[Token, ...], Any]:
    """Every concrete path matching `pattern` in obj, with its value (wildcards expanded)."""
    found: dict[tuple[Token, ...], Any] = {}

    def walk(value: Any, rest: tuple[Token, ...], path: tuple[Token, ...]) -> None:
        if not rest:
            found[path] = value
        elif rest[0] == "*" and isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, rest[1:], path + (i,))
        elif isinstance(value, dict) and rest[0] in value:
            walk(value[rest[0]], rest[1:], path + (rest[0],))

    walk(obj, pattern, ())
    return found


def _matches(tokens: tuple[Token, ...], pattern: tuple[Token, ...]) -> bool:
    return all(p == t or (p == "*" and isinstance(t, int)) for p, t in zip(pattern, tokens, strict=False))


def kubernetes_api(type_: str) -> Optional[tuple[str, str, str]]:
    """(group, version, kind) of a Kubernetes object type token, None for anything else."""
    if not type_.startswith("kubernetes:") or type_.startswith(NOT_OBJECTS):
        return None
    try:
        _, api, kind = type_.split(":")
        group, version = api.rsplit("/", 1)
    except ValueError:
        return None
    return group, version, kind


def replace_patterns(resource: dict[str, Any], providers: dict[str, dict[str, Any]]) -> list[str]:
    """The input paths whose change forces this resource to be replaced."""
    type_ = resource["type"]
    if type_ in REPLACE_ON_CHANGE:
        return list(REPLACE_ON_CHANGE[type_])
    api = kubernetes_api(type_)
    if api is None or not resource.get("custom"):
        return []
    group, version, kind = api
    patterns = list(KUBERNETES_ALWAYS)
    key = (group, f"{kind}@{version}") if (group, f"{kind}@{version}") in KUBERNETES_REPLACE_ON_CHANGE else (group, kind)
    patterns += KUBERNETES_REPLACE_ON_CHANGE.get(key, ())
    if group == "core" and kind in ("ConfigMap", "Secret"):
        # Unless the provider opts in to mutable ConfigMaps/Secrets (and the object is not immutable),
        # pulumi-kubernetes replaces them when their contents change, so pods pick up a new object.
        provider = providers.get((resource.get("provider") or "").rsplit("::", 1)[0], {})
        flag = "enableConfigMapMutable" if kind == "ConfigMap" else "enableSecretMutable"
        mutable = str(provider.get(flag, "false")).lower() == "true" and not resource["inputs"].get("immutable")
        if not mutable:
            patterns += ["binaryData", "data"] if kind == "ConfigMap" else ["type", "stringData", "data"]
        elif kind == "Secret":
            patterns.append("type")
    return patterns


def replacement_reasons(
    resource_old: dict[str, Any], resource_new: dict[str, Any], changes: list[dict[str, Any]], providers: dict[str, dict[str, Any]]
) -> list[str]:
    """The replace-on-change paths this change touches (empty: an in-place update)."""
    old, new = resource_old["inputs"], resource_new["inputs"]
    reasons = []
    for pattern_text in replace_patterns(resource_new, providers):
        pattern = parse_pattern(pattern_text)
        hit = False
        for change in changes:
            tokens = change["tokens"]
            if len(tokens) >= len(pattern) and _matches(tokens, pattern):
                hit = change["replace"] = True
            elif len(tokens) < len(pattern) and _matches(tokens, pattern[: len(tokens)]):
                # A whole subtree changed (added, removed, changed type): replaced if the field differs.
                if _values_at(old, pattern) != _values_at(new, pattern):
                    hit = change["replace"] = True
        if hit:
            reasons.append(pattern_text)
    # EKS cannot turn envelope encryption off: removing encryptionConfig re-creates the cluster.
    if resource_new["type"] == "aws:eks/cluster:Cluster" and old.get("encryptionConfig") and not new.get("encryptionConfig"):
        reasons.append("encryptionConfig (removed)")
        for change in changes:
            if change["tokens"][:1] == ("encryptionConfig",):
                change["replace"] = True
    return reasons
