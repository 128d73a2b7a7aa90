"""Cluster and AWS: the EKS control plane, node metadata and disks, KMS and the interruption queue.

These rules read the inputs of pulumi_aws resources (camelCase, as registered).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Iterator, Mapping, Sequence

from .base import Rule, Settings, Subject, as_list, as_map, dig, is_true

CLUSTER = "aws:eks/cluster:Cluster"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NODE_CLASS = "karpenter.k8s.aws/EC2NodeClass"
KMS_KEY = "aws:kms/key:Key"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")


def covers_the_internet(cidrs: list[str]) -> bool:
    """True when the CIDRs together span all of IPv4 or IPv6 (0.0.0.0/0, or e.g. 0.0.0.0/1 + 128.0.0.0/1)."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if isinstance(network, ipaddress.IPv4Network):
            v4.append(network)
        else:
            v6.append(network)
    return any(n.prefixlen == 0 for n in ipaddress.collapse_addresses(v4)) or any(n.prefixlen == 0 for n in ipaddress.collapse_addresses(v6))


def _endpoint(s: Subject, settings: Settings) -> Iterator[str]:
    vpc = as_map(s.props.get("vpcConfig"))
    # EKS makes the endpoint public, open to 0.0.0.0/0, unless told otherwise.
    if vpc.get("endpointPublicAccess") is False:
        return
    cidrs = [str(c) for c in as_list(vpc.get("publicAccessCidrs"))]
    if not cidrs:
        yield "the API endpoint is public and, with no publicAccessCidrs, open to 0.0.0.0/0"
    elif covers_the_internet(cidrs):
        yield f"the API endpoint is public and publicAccessCidrs {', '.join(cidrs)} cover the whole internet"


def _encryption_configs(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    # One object in pulumi-aws 7; a list in older providers.
    value = props.get("encryptionConfig")
    return [as_map(v) for v in as_list(value)] if as_list(value) else ([as_map(value)] if value else [])


def _secrets_encryption(s: Subject, settings: Settings) -> Iterator[str]:
    configs = _encryption_configs(s.props)
    if not any("secrets" in as_list(c.get("resources")) and dig(c, "provider", "keyArn") for c in configs):
        yield "encryptionConfig does not envelope-encrypt secrets with a KMS key (resources: [secrets], provider.keyArn)"


def _key_rotation(s: Subject, settings: Settings) -> Iterator[str]:
    spec = s.props.get("customerMasterKeySpec") or s.props.get("keySpec") or "SYMMETRIC_DEFAULT"
    # Only symmetric encryption keys can rotate automatically.
    if spec == "SYMMETRIC_DEFAULT" and s.props.get("enableKeyRotation") is not True:
        yield "enableKeyRotation is not true"


def _control_plane_logs(s: Subject, settings: Settings) -> Iterator[str]:
    missing = [t for t in LOG_TYPES if t not in as_list(s.props.get("enabledClusterLogTypes"))]
    if missing:
        yield f"control-plane log types not enabled: {', '.join(missing)}"


def _access_entries(s: Subject, settings: Settings) -> Iterator[str]:
    mode = dig(s.props, "accessConfig", "authenticationMode")
    if mode != "API":
        yield f"accessConfig.authenticationMode is {mode or 'unset (CONFIG_MAP)'}; it must be API (access entries, no aws-auth ConfigMap)"


def _imdsv2(s: Subject, settings: Settings) -> Iterator[str]:
    if s.type == NODE_GROUP:
        if not s.props.get("launchTemplate"):
            yield "the node group has no launch template, so its nodes accept IMDSv1"
        return
    options = dig(s.props, "spec", "metadataOptions") if s.kind == "EC2NodeClass" else s.props.get("metadataOptions")
    tokens = dig(options, "httpTokens")
    if tokens != "required":
        yield f"metadataOptions.httpTokens is {tokens or 'unset'}; it must be required (IMDSv1 lets any pod with host network steal node credentials)"


def _encrypted_volumes(s: Subject, settings: Settings) -> Iterator[str]:
    mappings = as_list(dig(s.props, "spec", "blockDeviceMappings") if s.kind == "EC2NodeClass" else s.props.get("blockDeviceMappings"))
    if not mappings:
        yield "no blockDeviceMappings: the root volume falls back to the AMI default, which may be unencrypted"
    for m in mappings:
        m = as_map(m)
        if not is_true(dig(m, "ebs", "encrypted")):
            yield f"volume {m.get('deviceName', '?')} is not encrypted (ebs.encrypted)"


def _queue_encryption(s: Subject, settings: Settings) -> Iterator[str]:
    if s.props.get("sqsManagedSseEnabled") is not True and not s.props.get("kmsMasterKeyId"):
        yield "the queue has no server-side encryption (sqsManagedSseEnabled or kmsMasterKeyId)"


def denies_insecure_transport(policy: Any) -> bool:
    """A policy document (JSON text or object) with a Deny on aws:SecureTransport = false."""
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return False
    statements = as_map(policy).get("Statement")
    for st in as_list(statements) or [statements]:
        st = as_map(st)
        for operator, conditions in as_map(st.get("Condition")).items():
            for key, value in as_map(conditions).items():
                values = [str(v).lower() for v in (as_list(value) or [value])]
                if st.get("Effect") == "Deny" and operator == "Bool" and key.lower() == "aws:securetransport" and values == ["false"]:
                    return True
    return False


def _queue_tls(subjects: Sequence[Subject], settings: Settings) -> Iterator[tuple[Subject, str]]:
    policies = [s for s in subjects if s.type == QUEUE_POLICY]
    for queue in (s for s in subjects if s.type == QUEUE):
        name = str(queue.props.get("name") or "")
        documents = [queue.props.get("policy")] + [
            p.props.get("policy") for p in policies if queue.urn in p.dependencies or (name and str(p.props.get("queueUrl") or "").endswith("/" + name))
        ]
        if not any(denies_insecure_transport(d) for d in documents):
            yield queue, "no queue policy denies access without TLS (Deny with Bool aws:SecureTransport = false)"


RULES = [
    Rule(
        "eks-endpoint-not-world-open",
        "Prod EKS API endpoints are private, or public only to listed CIDRs (never 0.0.0.0/0).",
        "critical",
        "security",
        "Set cluster.endpoint.publicAccess: false in stacks/<stack>.yaml, or list your VPN/office CIDRs in publicAccessCidrs.",
        (CLUSTER,),
        _endpoint,
        prod_only=True,
    ),
    Rule(
        "eks-secrets-encryption",
        "EKS envelope-encrypts Kubernetes secrets with a KMS key.",
        "high",
        "security",
        "Set encryptionConfig {resources: [secrets], provider: {keyArn: <customer-managed key>}} on the cluster.",
        (CLUSTER,),
        _secrets_encryption,
    ),
    Rule(
        "kms-key-rotation",
        "Symmetric KMS keys (the cluster's secrets key among them) rotate automatically.",
        "medium",
        "security",
        "Set enableKeyRotation: true on the aws.kms.Key.",
        (KMS_KEY,),
        _key_rotation,
    ),
    Rule(
        "eks-control-plane-logs",
        "EKS sends all five control-plane log types to CloudWatch.",
        "medium",
        "security",
        f"Set enabledClusterLogTypes to {list(LOG_TYPES)}.",
        (CLUSTER,),
        _control_plane_logs,
    ),
    Rule(
        "eks-access-entries",
        "EKS authenticates with access entries only (authenticationMode API).",
        "medium",
        "security",
        "Set accessConfig.authenticationMode: API and grant access with aws.eks.AccessEntry, not the aws-auth ConfigMap.",
        (CLUSTER,),
        _access_entries,
    ),
    Rule(
        "imdsv2-required",
        "Nodes require IMDSv2 (launch templates, managed node groups, EC2NodeClasses).",
        "high",
        "security",
        "Set metadataOptions.httpTokens: required (hop limit 1) on the launch template or EC2NodeClass; give managed node groups a launch template.",
        (LAUNCH_TEMPLATE, NODE_GROUP, NODE_CLASS),
        _imdsv2,
    ),
    Rule(
        "ebs-encrypted",
        "Node volumes are encrypted (launch templates and EC2NodeClasses declare encrypted EBS volumes).",
        "high",
        "security",
        "Declare the root volume in blockDeviceMappings with ebs.encrypted: true.",
        (LAUNCH_TEMPLATE, NODE_CLASS),
        _encrypted_volumes,
    ),
    Rule(
        "sqs-encrypted",
        "SQS queues (the Karpenter interruption queue among them) use server-side encryption.",
        "medium",
        "security",
        "Set sqsManagedSseEnabled: true (or kmsMasterKeyId) on the queue.",
        (QUEUE,),
        _queue_encryption,
    ),
    Rule(
        "sqs-tls-only",
        "SQS queue policies deny any access that is not over TLS.",
        "medium",
        "security",
        "Add a statement {Effect: Deny, Principal: *, Action: sqs:*, Resource: <queue arn>, Condition: {Bool: {aws:SecureTransport: false}}}.",
        (QUEUE, QUEUE_POLICY),
        _queue_tls,
        stack=True,
    ),
]
