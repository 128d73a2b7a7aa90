"""Progressive delivery: the Flagger Canary for a service (flagger.app/v1beta1).

Flagger owns what a canary needs at run time: the `<name>-primary` Deployment, the
`<name>`, `<name>-primary` and `<name>-canary` Services, the VirtualService, and the replica
count. Pulumi creates none of those and never sets `replicas` on the target, so neither side
overwrites the other; the target Deployment is marked so `pulumi up` does not wait on a rollout
that Flagger drives.

Canary pods and node consolidation: Karpenter must not evict a canary in the middle of its analysis.
The `karpenter.sh/do-not-disrupt` annotation cannot go on the target's pod template: Flagger copies
that template's annotations verbatim to `<name>-primary` when it creates and when it promotes (its
DeploymentController: makeAnnotations(canary.Spec.Template.Annotations)), so every primary pod would
block consolidation and drift for good. What stays on the canary pods alone is Flagger's selector
label, `app.kubernetes.io/name: <name>` (the primary's is `<name>-primary`): a PodDisruptionBudget on
it with maxUnavailable 0 makes them unevictable, which Karpenter honours for every voluntary
disruption (consolidation, drift) exactly like the annotation, and which lapses when Flagger scales the
canary to zero. The primary keeps its per-tier budget on its own label.
"""

from __future__ import annotations

from typing import Any, Optional

from components.spec import Service
from components.spec.shellsafe import command

from .pod import SERVICE_LABEL, selector

# Flagger's selector label: the canary's pods keep `<name>`, the primary's get `<name>-primary`.
FLAGGER_SELECTOR = "app.kubernetes.io/name"
# Pulumi waits for a Deployment to become ready; a canary target is scaled to zero by Flagger.
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


def canary_spec(svc: Service, autoscaler: Optional[dict[str, str]], loadtester_url: str, gateway: Optional[str]) -> dict[str, Any]:
    c = svc.canary
    interval, window = f"{c.interval_seconds}s", f"{c.metric_window_seconds}s"
    service: dict[str, Any] = {
        "port": svc.port,
        "targetPort": svc.port,
        "portName": "http",
        # Flagger copies every container port (metrics too) to the Services it generates.
        "portDiscovery": True,
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
    }
    if svc.expose and gateway:
        service.update(gateways=[gateway, "mesh"], hosts=[svc.expose.host, svc.name])
    target = f"http://{svc.name}-canary.{svc.team}:{svc.port}"
    return {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": svc.name},
        "autoscalerRef": autoscaler,
        "progressDeadlineSeconds": c.progress_deadline_seconds,
        "service": service,
        "analysis": {
            "interval": interval,
            "threshold": c.threshold,
            "maxWeight": c.max_weight,
            "stepWeight": c.step_weight,
            # Flagger's built-in Istio metrics over a window of two scrapes: a check judges the step it ends.
            "metrics": [
                {"name": "request-success-rate", "thresholdRange": {"min": c.success_rate}, "interval": window},
                {"name": "request-duration", "thresholdRange": {"max": c.max_latency_ms}, "interval": window},
            ],
            "webhooks": [
                {
                    "name": "smoke",
                    "type": "pre-rollout",
                    "url": loadtester_url,
                    "timeout": "15s",
                    # The load tester runs `cmd` with `sh -c` in a pod every team's canaries use: every word
                    # is grammar-checked and quoted (components/spec/shellsafe.py), and no bash is asked for.
                    "metadata": {"type": "cmd", "cmd": command(["curl", "-sf", "--max-time", "10", f"{target}{svc.probes.path}"])},
                },
                {
                    "name": "load-test",
                    "type": "rollout",
                    "url": loadtester_url,
                    "timeout": "5s",
                    "metadata": {"type": "cmd", "cmd": command(["hey", "-z", f"{c.interval_seconds * 2}s", "-q", "10", "-c", "2", f"{target}/"])},
                },
            ],
        },
    }


def disruption_budgets(svc: Service, canary: bool) -> list[tuple[str, str, dict[str, Any]]]:
    """(resource suffix, object name, spec) of the service's PodDisruptionBudgets."""
    budget: dict[str, Any] = {"maxUnavailable": 1} if svc.tier == "critical" else {"maxUnavailable": "50%"}
    if not canary:
        return [("pdb", svc.name, {"selector": {"matchLabels": {SERVICE_LABEL: svc.name}}, **budget})] if svc.replicas.max > 1 else []
    primary = {"selector": {"matchLabels": {FLAGGER_SELECTOR: f"{svc.name}-primary"}}, **budget}
    pinned = {"selector": {"matchLabels": selector(svc)}, "maxUnavailable": 0}
    found = [("pdb", svc.name, primary)] if svc.replicas.max > 1 else []
    return found + [("pdb-canary", f"{svc.name}-canary", pinned)]
