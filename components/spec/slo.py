"""A service's objectives: availability and latency over 30 days, declared or inherited from its tier.

components/monitoring/slo.py compiles them into recording rules and burn-rate alerts.
"""

from __future__ import annotations

from pydantic import model_validator

from .base import Spec, field

# Istio's default buckets of istio_request_duration_milliseconds: a latency objective is counted from
# one bucket bound, so its threshold must be one of them.
ISTIO_LATENCY_BUCKETS_MS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


class Slo(Spec):
    availability: float = field("Objective: percent of requests answered without a 5xx, over 30 days.", ge=90, lt=100)
    latency_ms: int = field(f"Latency threshold, in milliseconds; one of Istio's histogram bounds {list(ISTIO_LATENCY_BUCKETS_MS)}.")
    latency_percent: float = field("Objective: percent of requests answered within latencyMs, over 30 days.", ge=90, lt=100)

    @model_validator(mode="after")
    def _check(self) -> "Slo":
        if self.latency_ms not in ISTIO_LATENCY_BUCKETS_MS:
            raise ValueError(f"latencyMs {self.latency_ms} is not a bound of Istio's request-duration histogram; use one of {list(ISTIO_LATENCY_BUCKETS_MS)}")
        return self

    def budget(self, objective: str) -> float:
        """The error budget (allowed bad fraction) of 'availability' or 'latency'."""
        return round(1 - (self.availability if objective == "availability" else self.latency_percent) / 100, 6)


class TierSlos(Spec):
    critical: Slo = field("Objectives of critical services.", default_factory=lambda: Slo(availability=99.9, latency_ms=500, latency_percent=99))
    standard: Slo = field("Objectives of standard services.", default_factory=lambda: Slo(availability=99.0, latency_ms=1000, latency_percent=99))
    batch: Slo = field("Objectives of batch services.", default_factory=lambda: Slo(availability=95.0, latency_ms=5000, latency_percent=95))
