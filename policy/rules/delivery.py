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


# Flagger's default when a Canary does not set progressDeadlineSeconds.
FLAGGER_PROGRESS_DEADLINE = 600


def rollback_seconds(canary: Subject) -> Optional[float]:
    """Worst case from a bad canary to rollback: `threshold` failed checks, one per interval,
    plus the interval in which the rollback itself is acted on; or, for a canary that never
    becomes ready, the progress deadline plus one interval. None when not computable."""
    analysis = as_map(dig(canary.props, "spec", "analysis"))
    interval, threshold = duration_seconds(analysis.get("interval")), num(analysis.get("threshold"))
    if interval is None or threshold is None:
        return None
    deadline = num(dig(canary.props, "spec", "progressDeadlineSeconds"))
    deadline = FLAGGER_PROGRESS_DEADLINE if deadline is None else deadline
    return max(interval * threshold + interval, deadline + interval)


def _rollback_time(s: Subject, settings: Settings) -> Iterator[str]:
    analysis = as_map(dig(s.props, "spec", "analysis"))
    worst = rollback_seconds(s)
    if worst is None:
        yield f"analysis.interval ({analysis.get('interval')!r}) and analysis.threshold ({analysis.get('threshold')!r}) must both be set to compute the rollback time"
    elif worst > settings.max_rollback_seconds:
        yield (
            f"worst-case rollback takes {show(worst)}s (the larger of interval {analysis.get('interval')} x threshold {show(analysis.get('threshold'))} "
            f"+ one interval, and progressDeadlineSeconds + one interval), more than the {settings.max_rollback_seconds}s allowed"
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
        "A Canary's worst-case rollback (the larger of interval x threshold + interval and progressDeadlineSeconds + interval; Flagger's deadline defaults to 600s) is within maxRollbackSeconds (default 60).",
        "high",
        "availability",
        "Shorten analysis.interval, lower analysis.threshold or set spec.progressDeadlineSeconds (canary.intervalSeconds, canary.threshold and canary.progressDeadlineSeconds in the service declaration).",
        (CANARY,),
        _rollback_time,
        config=("maxRollbackSeconds",),
    ),
]
