"""Team budgets: what a team's services may request at worst, against its ResourceQuota."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field as dataclass_field
from typing import Optional

from pydantic import field_validator, model_validator

from .alerting import TeamAlerts
from .egress import EgressGrant

from .base import MEMORY_UNITS, CpuQuantity, MemoryQuantity, Spec, cpu_millis, field, memory_bytes  # noqa: F401 (re-exported)
from .problems import short
from .service import Service

# Istio injects a sidecar into every pod of a meshed namespace with the chart's default requests
# (istiod values global.proxy.resources.requests); a team's quota must admit them too.
SIDECAR_REQUESTS = ("100m", "128Mi")
# A Deployment's rollingUpdate.maxSurge (components/workloads/microservice.py): extra pods during a rollout.
ROLLOUT_SURGE = 0.25


class TeamBudget(Spec):
    cpu: Optional[CpuQuantity] = field(
        'CPU the team\'s pods may request in total (ResourceQuota requests.cpu), e.g. "8"; a team that runs services needs it.', default=None
    )
    memory: Optional[MemoryQuantity] = field('Memory the team\'s pods may request in total (ResourceQuota requests.memory), e.g. "16Gi".', default=None)
    pods: Optional[int] = field("Most pods in the team's namespace at once (ResourceQuota pods).", default=None, ge=1)
    egress: EgressGrant = field(
        "Destinations outside the mesh the team's services may declare (its own networks, the external hosts granted to it).", default_factory=EgressGrant
    )
    alerts: Optional[TeamAlerts] = field("Where the team's alerts go (receivers under alerting.receivers); required when the stack has alerting.", default=None)
    owners: list[str] = field(
        "Who reviews the team's files: GitHub users (@name) or teams (@org/team). The generated .github/CODEOWNERS gives them the team's folder "
        "stacks/services/<team>/ (the platform team: everything else); `make codeowners` writes it.",
        default_factory=list,
    )

    @field_validator("owners")
    @classmethod
    def _owners(cls, owners: list[str]) -> list[str]:
        for owner in owners:
            if not re.fullmatch(r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,99})?", owner):
                raise ValueError(f"{short(owner)} is not a GitHub user (@name) or team (@org/team)")
        if len(set(owners)) != len(owners):
            raise ValueError(f"duplicate entries in {owners}")
        return owners

    @model_validator(mode="after")
    def _check(self) -> "TeamBudget":
        if len({self.cpu is None, self.memory is None, self.pods is None}) > 1:
            raise ValueError("cpu, memory and pods make one budget: set all three or none")
        return self

    @property
    def has_budget(self) -> bool:
        return self.cpu is not None


@dataclass
class TeamUsage:
    """What a team's services may request at worst: every service at max replicas, plus rollout surge,
    plus a second full set for a canary under analysis (Flagger runs primary and canary), with sidecars."""

    cpu_millis: int = 0
    memory_bytes: int = 0
    pods: int = 0
    services: dict[str, tuple[int, int, int]] = dataclass_field(default_factory=dict)

    def add(self, svc: Service, environment: str, mesh: bool) -> None:
        base = svc.replicas.max
        pods = base + math.ceil(base * ROLLOUT_SURGE) + (base if svc.canary_enabled(environment) else 0)
        requests = svc.resources.requests
        assert requests.cpu is not None and requests.memory is not None  # Resources requires both
        cpu = cpu_millis(requests.cpu) + (cpu_millis(SIDECAR_REQUESTS[0]) if mesh else 0)
        memory = memory_bytes(requests.memory) + (memory_bytes(SIDECAR_REQUESTS[1]) if mesh else 0)
        self.services[svc.name] = (pods * cpu, pods * memory, pods)
        self.cpu_millis += pods * cpu
        self.memory_bytes += pods * memory
        self.pods += pods


def format_cpu(millis: int) -> str:
    return f"{millis / 1000:g}"


def format_memory(size: int) -> str:
    if size < 2**30:
        return f"{size / 2**20:g}Mi"
    return f"{size / 2**30:.2f}".rstrip("0").rstrip(".") + "Gi"
