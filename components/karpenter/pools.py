"""NodePools and EC2NodeClasses from the stack declaration (karpenter.sh/v1, karpenter.k8s.aws/v1)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.spec.stack import KarpenterSpec, NodePoolSpec


class NodePools(pulumi.ComponentResource):
    names: list[str]

    def __init__(
        self,
        name: str,
        spec: KarpenterSpec,
        cluster_name: str,
        node_role_name: pulumi.Input[str],
        provider: k8s.Provider,
        controller: pulumi.Resource,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("platform:karpenter:NodePools", name, None, opts)
        # depends_on the controller: created after it, and destroyed before it so it can drain nodes.
        after_controller = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[controller])
        for pool in spec.node_pools:
            node_class = k8s.apiextensions.CustomResource(
                f"{name}-{pool.name}-class",
                api_version="karpenter.k8s.aws/v1",
                kind="EC2NodeClass",
                metadata={"name": pool.name},
                spec=node_class_spec(spec, pool, cluster_name, node_role_name),
                opts=after_controller,
            )
            k8s.apiextensions.CustomResource(
                f"{name}-{pool.name}",
                api_version="karpenter.sh/v1",
                kind="NodePool",
                metadata={"name": pool.name},
                spec=node_pool_spec(pool),
                opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[controller, node_class]),
            )
        self.names = [p.name for p in spec.node_pools]
        self.register_outputs({"names": self.names})


def node_class_spec(spec: KarpenterSpec, pool: NodePoolSpec, cluster: str, role: pulumi.Input[str]) -> dict:
    discovery = [{"tags": {"karpenter.sh/discovery": cluster}}]
    return {
        "role": role,
        "amiSelectorTerms": [{"alias": spec.ami_alias}],
        "subnetSelectorTerms": discovery,
        "securityGroupSelectorTerms": discovery,
        # Hop limit 1: pods get credentials from Pod Identity, never from the node's instance profile.
        "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled", "httpPutResponseHopLimit": 1, "httpTokens": "required"},
        "blockDeviceMappings": [
            {"deviceName": "/dev/xvda", "ebs": {"volumeSize": f"{spec.root_volume_gib}Gi", "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}}
        ],
        "tags": {"karpenter.sh/discovery": cluster, "platform.io/nodepool": pool.name},
    }


def node_pool_spec(pool: NodePoolSpec) -> dict:
    requirements = [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(pool.capacity_types)},
        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": list(pool.instance_categories)},
        {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": [str(pool.min_generation)]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": list(pool.architectures)},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]
    taints = []
    for taint in pool.taints:
        key, rest = taint.split("=", 1)
        value, effect = rest.split(":", 1)
        taints.append({"key": key, "value": value, "effect": effect})
    template_spec = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": pool.name},
        "requirements": requirements,
        "expireAfter": pool.expire_after,
        "terminationGracePeriod": pool.termination_grace_period,
    }
    if taints:
        template_spec["taints"] = taints
    budgets = []
    for budget in pool.budgets:
        entry: dict[str, Any] = {"nodes": budget.nodes}
        if budget.reasons:
            entry["reasons"] = list(budget.reasons)
        if budget.schedule:
            entry.update(schedule=budget.schedule, duration=budget.duration)
        budgets.append(entry)
    return {
        "template": {"metadata": {"labels": {"platform.io/nodepool": pool.name, **pool.labels}}, "spec": template_spec},
        "disruption": {"consolidationPolicy": pool.consolidation_policy, "consolidateAfter": pool.consolidate_after, "budgets": budgets},
        "limits": {"cpu": pool.cpu_limit, "memory": pool.memory_limit},
        "weight": pool.weight,
    }
