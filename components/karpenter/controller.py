"""Karpenter's AWS side and controller, as the v1.14 getting-started template sets them up.

Ordering (why each depends_on is there):
- the controller release waits for its Pod Identity association, the node role's access entry,
  the interruption queue and its CRDs: started earlier, it crash-loops without credentials or
  launches nodes that cannot join;
- NodePools and EC2NodeClasses (components/karpenter/pools.py) depend on the controller release,
  so on destroy Pulumi deletes them first, while the controller still runs to drain and
  terminate their nodes through its finalizers. Destroying the controller first would orphan
  the EC2 instances.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws import iam
from components.aws.cluster import SYSTEM_NODE_LABEL
from components.monitoring.scrape import Metrics, Monitor
from components.spec import names
from components.versions import KARPENTER, KARPENTER_CRD

from .permissions import INTERRUPTION_EVENTS, NODE_POLICIES, QUEUE_RETENTION_SECONDS, controller_policies, queue_policy

NAMESPACE = "kube-system"
# The controller's metrics Service (the chart's <fullname>, port http-metrics): provisioning, disruption and
# interruption-queue metrics. Karpenter is installed before Prometheus, so the prometheus addon creates the monitor.
METRICS = Metrics(
    monitors=(
        Monitor(
            "ServiceMonitor",
            "karpenter",
            {
                "namespaceSelector": {"matchNames": [NAMESPACE]},
                "selector": {"matchLabels": {"app.kubernetes.io/name": "karpenter", "app.kubernetes.io/instance": "karpenter"}},
                "endpoints": [{"port": "http-metrics", "interval": "30s"}],
            },
        ),
    )
)
SERVICE_ACCOUNT = "karpenter"


class KarpenterController(pulumi.ComponentResource):
    node_role_name: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    queue_name: pulumi.Output[str]
    release: k8s.helm.v3.Release

    def __init__(self, name: str, cluster_name: pulumi.Input[str], provider: k8s.Provider, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:karpenter:KarpenterController", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        partition = aws.get_partition_output(opts=invoke).partition
        region = aws.get_region_output(opts=invoke).region
        account = aws.get_caller_identity_output(opts=invoke).account_id
        cluster = pulumi.Output.from_input(cluster_name)

        node_role = aws.iam.Role(f"{name}-node", name=cluster.apply(names.karpenter_node_role), assume_role_policy=iam.trust("ec2.amazonaws.com"), opts=child)
        for managed in NODE_POLICIES:
            aws.iam.RolePolicyAttachment(f"{name}-node-{managed}", role=node_role.name, policy_arn=iam.MANAGED + managed, opts=child)
        # Nodes join through an access entry (API authentication mode), not aws-auth.
        node_access = aws.eks.AccessEntry(f"{name}-node", cluster_name=cluster, principal_arn=node_role.arn, type="EC2_LINUX", opts=child)

        # The queue's name is the cluster's, as upstream: the chart is given the name, not the ARN.
        queue = aws.sqs.Queue(f"{name}-interruption", name=cluster, message_retention_seconds=QUEUE_RETENTION_SECONDS, sqs_managed_sse_enabled=True, opts=child)
        # No Version key upstream; adding 2012-10-17 changes nothing for these statements.
        aws.sqs.QueuePolicy(f"{name}-interruption", queue_url=queue.url, policy=queue.arn.apply(lambda arn: json.dumps(queue_policy(arn))), opts=child)
        for rule_name, pattern in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(f"{name}-{rule_name}", event_pattern=pulumi.Output.json_dumps(pattern), opts=child)
            aws.cloudwatch.EventTarget(f"{name}-{rule_name}", rule=rule.name, arn=queue.arn, target_id="KarpenterInterruptionQueueTarget", opts=child)

        controller_role = iam.pod_identity_role(
            f"{name}-controller",
            self,
            description="Karpenter controller (Pod Identity)",
            conditions=iam.pod_identity_conditions(cluster, NAMESPACE, SERVICE_ACCOUNT),
        )
        documents = pulumi.Output.all(partition, region, account, cluster, node_role.arn, queue.arn).apply(lambda a: controller_policies(*a))
        attachments = []
        for policy_name in controller_policies("p", "r", "a", "c", "n", "q"):
            policy = aws.iam.Policy(
                f"{name}-{policy_name}",
                name=pulumi.Output.concat(f"{policy_name}-", cluster),
                policy=documents.apply(functools.partial(document_json, policy_name)),
                opts=child,
            )
            attachments.append(aws.iam.RolePolicyAttachment(f"{name}-{policy_name}", role=controller_role.name, policy_arn=policy.arn, opts=child))
        identity = aws.eks.PodIdentityAssociation(
            f"{name}-controller", cluster_name=cluster, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, role_arn=controller_role.arn, opts=child
        )

        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider)
        crds = k8s.helm.v3.Release(
            f"{name}-crd", name="karpenter-crd", chart=KARPENTER_CRD.chart_ref, version=KARPENTER_CRD.version, namespace=NAMESPACE, opts=k8s_opts
        )
        self.release = k8s.helm.v3.Release(
            name,
            name="karpenter",
            chart=KARPENTER.chart_ref,
            version=KARPENTER.version,
            namespace=NAMESPACE,
            # CRDs come from the karpenter-crd release, which (unlike a chart's crds/ folder) upgrades them.
            skip_crds=True,
            values=controller_values(cluster, queue.name),
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[crds, identity, node_access, queue, *attachments]),
        )
        self.node_role_name = node_role.name
        self.node_role_arn = node_role.arn
        self.queue_name = queue.name
        self.register_outputs({"nodeRoleName": self.node_role_name, "nodeRoleArn": self.node_role_arn, "queueName": self.queue_name})


def controller_values(cluster: pulumi.Input[str], queue_name: pulumi.Input[str]) -> dict:
    return {
        "settings": {"clusterName": cluster, "interruptionQueue": queue_name},
        # Two replicas on the system node group: Karpenter must never run on nodes it manages.
        "replicas": 2,
        "nodeSelector": {"kubernetes.io/os": "linux", **SYSTEM_NODE_LABEL},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "controller": {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
    }


def document_json(policy_name: str, documents: dict[str, Any]) -> str:
    """One controller policy document, by name, out of all of them."""
    return json.dumps(documents[policy_name])
