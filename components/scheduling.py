"""PriorityClasses: what gets evicted last when the cluster is short of room.

Critical services outrank everything of ours but stay below the system classes
(system-cluster-critical is 2000000000), so CoreDNS and Karpenter still win.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

# tier -> (class name, value, preemption policy, description)
PRIORITY_CLASSES = {
    "critical": ("mission-critical", 1_000_000, "PreemptLowerPriority", "Critical-tier services: scheduled first, evicted last."),
    "standard": ("standard", 100_000, "PreemptLowerPriority", "Standard-tier services."),
    "batch": ("batch", 1_000, "Never", "Batch workers: never preempt others, first to be evicted."),
}


def priority_class_name(tier: str) -> str:
    return PRIORITY_CLASSES[tier][0]


class PriorityClasses(pulumi.ComponentResource):
    names: dict[str, str]

    def __init__(self, name: str, provider: k8s.Provider, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:scheduling:PriorityClasses", name, None, opts)
        self.names = {}
        for tier, (class_name, value, preemption, description) in PRIORITY_CLASSES.items():
            k8s.scheduling.v1.PriorityClass(
                f"{name}-{class_name}",
                metadata={"name": class_name},
                value=value,
                preemption_policy=preemption,
                global_default=False,
                description=description,
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
            self.names[tier] = class_name
        self.register_outputs({"names": self.names})
