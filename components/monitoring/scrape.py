"""How Prometheus finds what exposes metrics: each addon (and Karpenter, installed before them)
declares it once; the prometheus addon and the Helm releases act on the declarations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

API_VERSION = "monitoring.coreos.com/v1"


@dataclass(frozen=True)
class Monitor:
    """A ServiceMonitor or PodMonitor the prometheus addon creates in its namespace."""

    kind: Literal["ServiceMonitor", "PodMonitor"]
    name: str
    spec: dict[str, Any]

    @property
    def namespaces(self) -> list[str]:
        return self.spec["namespaceSelector"].get("matchNames", [])


@dataclass(frozen=True)
class Metrics:
    """How Prometheus scrapes a component that exposes metrics.

    `charts`: per chart name, the Helm values that turn on the chart's own ServiceMonitors or
    PodMonitors; merged into the release only when the prometheus addon is on, and the release then
    waits for it (the monitor CRDs come with kube-prometheus-stack). `monitors`: monitors the
    prometheus addon creates, for what is installed before it or whose chart ships none."""

    charts: dict[str, dict[str, Any]] = field(default_factory=dict)
    monitors: tuple[Monitor, ...] = ()
