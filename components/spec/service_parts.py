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


# The timing model of a canary (docs/delivery.md has the timeline with numbers).
# Envoy sidecars are scraped every 15 s (components/addons/istio.py); rate() needs two samples in its window.
MESH_SCRAPE_SECONDS = 15
# A canary pod that needs a new Karpenter node: launch, join and image pull take 60-140 s; the deadline
# must cover the worst case plus the pod's own start-up, or Flagger rolls back a healthy release.
NEW_NODE_SECONDS = 140
DEADLINE_MARGIN_SECONDS = 30
# A pod without a startup probe is ready at its first readiness probe (periodSeconds, components/workloads/pod.py).
READINESS_PERIOD_SECONDS = 10
# Flagger's own default progressDeadlineSeconds; ours is shorter but never below MIN_PROGRESS_DEADLINE_SECONDS.
FLAGGER_PROGRESS_DEADLINE = 600
MIN_PROGRESS_DEADLINE_SECONDS = 180


class Canary(Spec):
    enabled: Optional[bool] = field(
        "Progressive delivery with Flagger; by default on in every stack for exposed and critical services (dev with the stack's looser defaults).",
        default=None,
    )
    interval_seconds: int = field("Seconds between two analysis checks (Flagger's analysis.interval): one weight step lasts one interval.", default=15, ge=5)
    threshold: int = field("Failed checks before rollback (analysis.threshold).", default=3, ge=1)
    step_weight: int = field("Traffic percentage added per successful step.", default=10, ge=1, le=50)
    max_weight: int = field("Traffic percentage at which the canary is promoted.", default=50, ge=1, le=100)
    success_rate: float = field("Minimum request success rate, in percent.", default=99.0, gt=0, le=100)
    max_latency_ms: int = field("Maximum P99 request duration, in milliseconds.", default=500, ge=1)
    metric_window_seconds: int = field(
        f"Range of each metric query (the metric's `interval`): at least two scrapes ({2 * MESH_SCRAPE_SECONDS}s) and at most two "
        "analysis intervals, so a check judges the current step and not minutes of earlier traffic.",
        default=30,
        ge=2 * MESH_SCRAPE_SECONDS,
    )
    progress_deadline_seconds: int = field(
        f"Seconds the canary Deployment may stay unavailable before Flagger rolls back: a new node plus an image pull "
        f"({NEW_NODE_SECONDS}s) plus the pod's start-up, with margin. Not part of the rollback bound: no user traffic reaches an unready canary.",
        default=MIN_PROGRESS_DEADLINE_SECONDS,
        ge=MIN_PROGRESS_DEADLINE_SECONDS,
    )

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> "Canary":
        if self.step_weight > self.max_weight:
            raise ValueError(f"stepWeight ({self.step_weight}) must not exceed maxWeight ({self.max_weight})")
        if self.metric_window_seconds > 2 * self.interval_seconds:
            raise ValueError(
                f"metricWindowSeconds ({self.metric_window_seconds}s) spans more than two analysis intervals (2 x {self.interval_seconds}s): "
                "a check would judge earlier steps' traffic, and a bad step would keep failing checks after it is gone; shorten the window or lengthen intervalSeconds"
            )
        bound = (info.context or {}).get("max_rollback_seconds")
        if bound is not None and self.enabled is not False and self.rollback_seconds > bound:
            raise ValueError(
                f"rollback takes up to {self.rollback_seconds}s from the first failed check to all traffic on the primary "
                f"(intervalSeconds {self.interval_seconds} x (threshold {self.threshold} + 1)), over the stack's bound of {bound}s "
                "(policy.maxRollbackSeconds); lower intervalSeconds or threshold"
            )
        return self

    @property
    def steps(self) -> int:
        return -(-self.max_weight // self.step_weight)

    @property
    def rollback_seconds(self) -> int:
        """From the first failed check to all traffic back on the primary. Flagger counts one failed check
        per interval and rolls back on the tick that finds `threshold` of them: the first failure at t0,
        the threshold-th at t0 + (threshold - 1) x interval, the rollback (weight 0) on the next tick, and
        one interval of slack for the tick's own jitter and the route reaching every sidecar."""
        return self.interval_seconds * (self.threshold + 1)

    @property
    def promotion_seconds(self) -> int:
        """Best-case time to full promotion once the canary is ready: one interval to start, one per weight step, one to promote."""
        return self.interval_seconds * (self.steps + 2)

    @property
    def run_seconds(self) -> int:
        """The longest a run may take to end either way: the progress deadline, then every step with up to
        `threshold` failed checks in between (a failed check holds the weight), start and promotion."""
        return self.progress_deadline_seconds + self.interval_seconds * (self.steps + self.threshold + 2)

    def deadline_problem(self, startup_seconds: int) -> Optional[str]:
        """The progress deadline against a canary pod on a new node: None when it fits."""
        need = NEW_NODE_SECONDS + startup_seconds + DEADLINE_MARGIN_SECONDS
        if self.progress_deadline_seconds >= need:
            return None
        return (
            f"progressDeadlineSeconds {self.progress_deadline_seconds}s does not cover a canary pod on a new node: {NEW_NODE_SECONDS}s for the node "
            f"and image pull + {startup_seconds}s start-up + {DEADLINE_MARGIN_SECONDS}s margin = {need}s; Flagger would roll back a healthy "
            f"release still starting. Set canary.progressDeadlineSeconds to at least {need}"
        )
