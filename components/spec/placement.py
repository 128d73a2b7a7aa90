"""Where critical services run: taken from the node pool the stack declares for them.

A critical pod selects the pool's labels and tolerates the pool's taints, both read from
`karpenter.nodePools`, so a pod can always land where the pool's nodes are (a hard-coded toleration
that does not match the pool's taint leaves the pod Pending forever).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

# The label that marks the pool for critical-tier services.
TIER_LABEL = "service-tier"
CRITICAL = "critical"


@dataclass(frozen=True)
class Placement:
    """A pod's nodeSelector and tolerations for one node pool."""

    pool: str
    node_selector: dict[str, str]
    tolerations: tuple[dict[str, str], ...]


def parse_taint(taint: str) -> dict[str, str]:
    """key=value:Effect (validated by the stack model) as a Kubernetes taint."""
    key, _, rest = taint.partition("=")
    value, _, effect = rest.partition(":")
    return {"key": key, "value": value, "effect": effect}


def toleration(taint: str) -> dict[str, str]:
    parsed = parse_taint(taint)
    return {"key": parsed["key"], "operator": "Equal", "value": parsed["value"], "effect": parsed["effect"]}


def pool_tolerations(pools: Iterable[Any]) -> list[dict[str, str]]:
    """Tolerations for every taint of the stack's Karpenter pools: a DaemonSet that must run on every
    node that can host pods (and so their volumes) carries these."""
    found: list[dict[str, str]] = []
    for pool in pools:
        for taint in pool.taints:
            if toleration(taint) not in found:
                found.append(toleration(taint))
    return found


def critical_pools(pools: Iterable[Any]) -> list[Any]:
    return [p for p in pools if p.labels.get(TIER_LABEL) == CRITICAL]


def placement_of(pool: Any) -> Placement:
    return Placement(pool.name, dict(sorted(pool.labels.items())), tuple(toleration(t) for t in pool.taints))


def critical_placement(pools: Iterable[Any]) -> Optional[Placement]:
    """The one pool labelled service-tier: critical, or None (the loader refuses critical services then)."""
    found = critical_pools(pools)
    return placement_of(found[0]) if len(found) == 1 else None


def problems(pools: Iterable[Any], critical_services: Iterable[str]) -> list[tuple[str, str]]:
    """(key path, message) when critical services have no single pool to run on."""
    pools, names = list(pools), sorted(critical_services)
    found = critical_pools(pools)
    if len(found) > 1:
        return [
            (
                "karpenter.nodePools",
                f"pools {', '.join(p.name for p in found)} all carry {TIER_LABEL}: {CRITICAL}; label exactly one pool for critical services",
            )
        ]
    if names and not found:
        return [
            (
                "karpenter.nodePools",
                f"services {', '.join(names)} are tier critical, but no node pool carries the label "
                f"{TIER_LABEL}: {CRITICAL}; add a pool with labels {{{TIER_LABEL}: {CRITICAL}}} "
                "(and the taints that keep other pods off it)",
            )
        ]
    return []
