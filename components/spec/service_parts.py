"""The parts a service declaration is made of: replicas, resources and canary analysis."""

from __future__ import annotations

from typing import Optional
from pydantic import ValidationInfo, model_validator
from .base import CpuQuantity, MemoryQuantity, Spec, cpu_millis, field, memory_bytes
from .egress import AWS_ENDPOINTS, Egress  # noqa: F401  (AWS_ENDPOINTS: where the endpoint kinds are looked up)


class Replicas(Spec):
    min: int = field("Fewest replicas (HPA minReplicas).", ge=1)
    max: int = field("Most replicas (HPA maxReplicas).", ge=1)

    @model_validator(mode="after")
    def _check(self) -> "Replicas":
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class ResourceList(Spec):
    cpu: Optional[CpuQuantity] = field('CPU, e.g. "250m".', default=None)
    memory: Optional[MemoryQuantity] = field('Memory, e.g. "256Mi".', default=None)


class Resources(Spec):
    requests: ResourceList = field(
        "What the scheduler reserves; cpu and memory are both required.", default_factory=lambda: ResourceList(cpu="100m", memory="128Mi")
    )
    limits: ResourceList = field("Hard caps; memory is required, cpu is left unset to avoid throttling.", default_factory=lambda: ResourceList(memory="256Mi"))

    @model_validator(mode="after")
    def _check(self) -> "Resources":
        if self.requests.cpu is None or self.requests.memory is None:
            raise ValueError("requests needs both cpu and memory")
        if self.limits.memory is None:
            raise ValueError("limits.memory is required (an unbounded container can take the node down)")
        # Zero requests defeat the team's quota and the scheduler's placement; the API server refuses a
        # request above its limit ("must be less than or equal to ... limit").
        for key, value, amount in (
            ("requests.cpu", self.requests.cpu, cpu_millis(self.requests.cpu)),
            ("requests.memory", self.requests.memory, memory_bytes(self.requests.memory)),
            ("limits.memory", self.limits.memory, memory_bytes(self.limits.memory)),
            *((("limits.cpu", self.limits.cpu, cpu_millis(self.limits.cpu)),) if self.limits.cpu else ()),
        ):
            if amount <= 0:
                raise ValueError(f"{key}: {value!r} is zero; a container must request (and may use) more than nothing")
        if memory_bytes(self.requests.memory) > memory_bytes(self.limits.memory):
            raise ValueError(f"requests.memory {self.requests.memory} is above limits.memory {self.limits.memory}; a request must fit its limit")
        if self.limits.cpu and cpu_millis(self.requests.cpu) > cpu_millis(self.limits.cpu):
            raise ValueError(f"requests.cpu {self.requests.cpu} is above limits.cpu {self.limits.cpu}; a request must fit its limit")
        return self


class Canary(Spec):
    enabled: Optional[bool] = field("Progressive delivery with Flagger; by default on in prod for exposed and critical services.", default=None)
    interval_seconds: int = field("Seconds between canary analysis runs.", default=10, ge=5)
    threshold: int = field("Failed checks before rollback.", default=3, ge=1)
    step_weight: int = field("Traffic percentage added per successful step.", default=10, ge=1, le=50)
    max_weight: int = field("Traffic percentage at which the canary is promoted.", default=50, ge=1, le=100)
    success_rate: float = field("Minimum request success rate, in percent.", default=99.0, gt=0, le=100)
    max_latency_ms: int = field("Maximum P99 request duration, in milliseconds.", default=500, ge=1)
    progress_deadline_seconds: int = field("Seconds the canary Deployment may take to become ready before Flagger rolls back.", default=50, ge=10)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> "Canary":
        if self.step_weight > self.max_weight:
            raise ValueError(f"stepWeight ({self.step_weight}) must not exceed maxWeight ({self.max_weight})")
        bound = (info.context or {}).get("max_rollback_seconds")
        if bound is not None and self.enabled is not False and self.rollback_seconds > bound:
            raise ValueError(
                f"worst-case rollback takes {self.rollback_seconds}s, over the stack's bound of {bound}s "
                f"(max of intervalSeconds x (threshold + 1) = {self.interval_seconds * (self.threshold + 1)}s and "
                f"progressDeadlineSeconds + intervalSeconds = {self.progress_deadline_seconds + self.interval_seconds}s); "
                "lower intervalSeconds, threshold or progressDeadlineSeconds"
            )
        return self

    @property
    def rollback_seconds(self) -> int:
        """Worst case from a bad canary to traffic back on the primary: Flagger needs `threshold`
        failed checks, one per interval, after the interval that starts the analysis; a canary that
        never gets ready is rolled back at the progress deadline, noticed on the next interval."""
        return max(self.interval_seconds * (self.threshold + 1), self.progress_deadline_seconds + self.interval_seconds)

    @property
    def promotion_seconds(self) -> int:
        """Best-case time to full promotion: one interval to start, one per weight step, one to promote."""
        steps = -(-self.max_weight // self.step_weight)
        return self.interval_seconds * (steps + 2)
