"""Delivery: reproducible Helm installs, and canaries that roll back fast enough.

Which Deployments need a canary is read from two labels on the Deployment's metadata, set by the
Microservice component: `platform.io/tier` (critical | standard | batch) and `platform.io/exposed`
("true" when the ingress gateway routes to it).
"""

from __future__ import annotations

import re
from typing import Iterator, Optional, Sequence

from .base import HELM_TYPES, Rule, Settings, Subject, as_map, dig, duration_seconds, num, show

CERT_MANAGER = "kubernetes-cert-manager:index:CertManager"
CANARY = "flagger.app/Canary"
TIER_LABEL = "platform.io/tier"
EXPOSED_LABEL = "platform.io/exposed"
EXACT_SEMVER = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def _chart_version(s: Subject, settings: Settings) -> Iterator[str]:
    version = dig(s.props, "helmOptions", "version") if s.type == CERT_MANAGER else s.props.get("version")
    if not version:
        yield "no chart version: Helm installs whatever is newest when it runs"
    elif not EXACT_SEMVER.match(str(version)):
        yield f"chart version {version!r} is not an exact version (no ranges, wildcards or tags)"


# Flagger's default when a Canary does not set progressDeadlineSeconds, and the shortest deadline that
# covers a canary pod waiting for a new Karpenter node and its image (components/spec/service_parts.py).
FLAGGER_PROGRESS_DEADLINE = 600
MIN_PROGRESS_DEADLINE = 180


def rollback_seconds(canary: Subject) -> Optional[float]:
    """From the first failed check to all traffic on the primary: interval x (threshold + 1). The
    progress deadline is not part of it: an unready canary gets no traffic. None when not computable."""
    analysis = as_map(dig(canary.props, "spec", "analysis"))
    interval, threshold = duration_seconds(analysis.get("interval")), num(analysis.get("threshold"))
    if interval is None or threshold is None:
        return None
    return interval * (threshold + 1)


def _rollback_time(s: Subject, settings: Settings) -> Iterator[str]:
    analysis = as_map(dig(s.props, "spec", "analysis"))
    worst = rollback_seconds(s)
    if worst is None:
        yield f"analysis.interval ({analysis.get('interval')!r}) and analysis.threshold ({analysis.get('threshold')!r}) must both be set to compute the rollback time"
    elif worst > settings.max_rollback_seconds:
        yield (
            f"rollback takes up to {show(worst)}s (interval {analysis.get('interval')} x (threshold {show(analysis.get('threshold'))} + 1)), "
            f"more than the {settings.max_rollback_seconds}s allowed"
        )
    deadline = num(dig(s.props, "spec", "progressDeadlineSeconds"))
    if deadline is not None and deadline < MIN_PROGRESS_DEADLINE:
        yield (
            f"progressDeadlineSeconds {show(deadline)} is under {MIN_PROGRESS_DEADLINE}s: a canary pod waiting for a new node and its image "
            "would be rolled back while healthy, and the rollback pages"
        )


def needs_canary(deployment: Subject) -> bool:
    labels = as_map(deployment.metadata.get("labels"))
    return labels.get(TIER_LABEL) == "critical" or labels.get(EXPOSED_LABEL) == "true"


def _canary_required(subjects: Sequence[Subject], settings: Settings) -> Iterator[tuple[Subject, str]]:
    targets = {
        (c.namespace, dig(c.props, "spec", "targetRef", "name"))
        for c in subjects
        if c.kind == "Canary" and dig(c.props, "spec", "targetRef", "kind") == "Deployment"
    }
    for d in subjects:
        if d.kind == "Deployment" and needs_canary(d) and (d.namespace, d.name) not in targets:
            yield d, "a critical or exposed prod service has no Flagger Canary targeting its Deployment"


RULES = [
    Rule(
        "helm-version-pinned",
        "Helm charts are pinned to an exact version.",
        "high",
        "security",
        "Set the chart version to an exact release (e.g. 1.14.1), never a range, wildcard or omitted version.",
        HELM_TYPES + (CERT_MANAGER,),
        _chart_version,
    ),
    Rule(
        "canary-required",
        f'Prod Deployments labelled {TIER_LABEL}: critical or {EXPOSED_LABEL}: "true" have a Flagger Canary.',
        "high",
        "availability",
        "Enable canary for the service (canary: {enabled: true}); a Flagger Canary must target its Deployment.",
        ("apps/Deployment", CANARY),
        _canary_required,
        stack=True,
        prod_only=True,
    ),
    Rule(
        "canary-rollback-time",
        f"A Canary's rollback, from the first failed check to all traffic on the primary (interval x (threshold + 1)), is within maxRollbackSeconds (default 60); its progressDeadlineSeconds, when set, is at least {MIN_PROGRESS_DEADLINE}s (Flagger's default is {FLAGGER_PROGRESS_DEADLINE}s).",
        "high",
        "availability",
        "Shorten analysis.interval or lower analysis.threshold (canary.intervalSeconds and canary.threshold in the service declaration); give spec.progressDeadlineSeconds room for a new node (canary.progressDeadlineSeconds).",
        (CANARY,),
        _rollback_time,
        config=("maxRollbackSeconds",),
    ),
]
