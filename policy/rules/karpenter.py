"""Karpenter: spot interruption handling, bounded pools, deliberate disruption, pinned AMIs.

Rules read karpenter.sh/v1 NodePools and karpenter.k8s.aws/v1 EC2NodeClasses, and the values of
the Helm release of the `karpenter` chart.
"""

from __future__ import annotations

from typing import Iterator, Sequence

from .base import HELM_TYPES, Rule, Settings, Subject, as_list, as_map, dig
from .network import chart_name

NODE_POOL = "karpenter.sh/NodePool"
NODE_CLASS = "karpenter.k8s.aws/EC2NodeClass"
CAPACITY_TYPE = "karpenter.sh/capacity-type"


def allows_spot(pool: Subject) -> bool:
    """Karpenter launches only on-demand capacity unless a requirement lets it use spot."""
    for req in as_list(dig(pool.props, "spec", "template", "spec", "requirements")):
        req = as_map(req)
        if req.get("key") != CAPACITY_TYPE:
            continue
        values, op = as_list(req.get("values")), req.get("operator")
        if (op == "In" and "spot" in values) or (op == "NotIn" and "spot" not in values) or op == "Exists":
            return True
    return False


def _interruption_queue(subjects: Sequence[Subject], settings: Settings) -> Iterator[tuple[Subject, str]]:
    spot = [p.name for p in subjects if p.kind == "NodePool" and allows_spot(p)]
    if not spot:
        return
    for release in (s for s in subjects if s.type in HELM_TYPES and chart_name(s) == "karpenter"):
        if not dig(release.props, "values", "settings", "interruptionQueue"):
            yield (
                release,
                f"NodePools {', '.join(spot)} allow spot but the release sets no settings.interruptionQueue, so spot interruptions are not drained ahead of time",
            )


def _limits(s: Subject, settings: Settings) -> Iterator[str]:
    limits = as_map(dig(s.props, "spec", "limits"))
    missing = [k for k in ("cpu", "memory") if not limits.get(k)]
    if missing:
        yield f"spec.limits has no {' and no '.join(missing)}: the pool can grow without bound"


def _budgets(s: Subject, settings: Settings) -> Iterator[str]:
    if not as_list(dig(s.props, "spec", "disruption", "budgets")):
        yield "spec.disruption.budgets is empty: Karpenter's implicit default (10% of nodes) applies"


def _expiry(s: Subject, settings: Settings) -> Iterator[str]:
    template = as_map(dig(s.props, "spec", "template", "spec"))
    expire, grace = template.get("expireAfter"), template.get("terminationGracePeriod")
    if not expire or expire == "Never":
        yield f"spec.template.spec.expireAfter is {expire or 'unset'}: nodes are never replaced with patched images"
    if not grace:
        yield "spec.template.spec.terminationGracePeriod is unset: an expiring node can be blocked from draining forever"


def _pinned_ami(s: Subject, settings: Settings) -> Iterator[str]:
    terms = [as_map(t) for t in as_list(dig(s.props, "spec", "amiSelectorTerms"))]
    if not terms:
        yield "spec.amiSelectorTerms is empty"
    for term in terms:
        alias, name = str(term.get("alias") or ""), str(term.get("name") or "")
        if alias.endswith("@latest"):
            yield f"amiSelectorTerms alias {alias} follows the latest AMI"
        elif not alias and not term.get("id") and (not name or "*" in name):
            yield f"amiSelectorTerms term {dict(term)} can match newer AMIs; pin an alias version (al2023@vYYYYMMDD) or an id"


RULES = [
    Rule(
        "karpenter-interruption-queue",
        "When a NodePool allows spot, the Karpenter release sets settings.interruptionQueue.",
        "high",
        "availability",
        "Create the SQS interruption queue with its EventBridge rules and pass its name as settings.interruptionQueue to the karpenter chart.",
        (NODE_POOL,) + HELM_TYPES,
        _interruption_queue,
        stack=True,
    ),
    Rule(
        "karpenter-nodepool-limits",
        "NodePools set CPU and memory limits.",
        "medium",
        "availability",
        "Set spec.limits.cpu and spec.limits.memory (cpuLimit/memoryLimit in stacks/<stack>.yaml).",
        (NODE_POOL,),
        _limits,
    ),
    Rule(
        "karpenter-disruption-budgets",
        "NodePools declare explicit disruption budgets.",
        "medium",
        "availability",
        'Set spec.disruption.budgets (budgets in stacks/<stack>.yaml), e.g. [{nodes: "10%"}].',
        (NODE_POOL,),
        _budgets,
    ),
    Rule(
        "karpenter-node-expiry",
        "NodePools set expireAfter together with terminationGracePeriod.",
        "medium",
        "availability",
        "Set spec.template.spec.expireAfter (e.g. 720h) and spec.template.spec.terminationGracePeriod (e.g. 24h).",
        (NODE_POOL,),
        _expiry,
    ),
    Rule(
        "karpenter-pinned-ami",
        "Prod EC2NodeClasses pin their AMI (a dated alias or an id, never @latest).",
        "high",
        "availability",
        "Set karpenter.amiAlias to a dated version such as al2023@v20261110 in stacks/prod.yaml.",
        (NODE_CLASS,),
        _pinned_ami,
        prod_only=True,
    ),
]
