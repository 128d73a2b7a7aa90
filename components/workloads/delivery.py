"""Progressive delivery: the Flagger Canary for a service (flagger.app/v1beta1).

Flagger owns what a canary needs at run time: the `<name>-primary` Deployment, the
`<name>`, `<name>-primary` and `<name>-canary` Services, the VirtualService, and the replica
count. Pulumi creates none of those and never sets `replicas` on the target, so neither side
overwrites the other; the target Deployment is marked so `pulumi up` does not wait on a rollout
that Flagger drives.
"""

from __future__ import annotations

from typing import Any, Optional

from components.spec import Service
from components.spec.shellsafe import command

# Pulumi waits for a Deployment to become ready; a canary target is scaled to zero by Flagger.
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


def canary_spec(svc: Service, autoscaler: Optional[dict[str, str]], loadtester_url: str, gateway: Optional[str]) -> dict[str, Any]:
    c = svc.canary
    interval = f"{c.interval_seconds}s"
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
            # Flagger's built-in Istio metrics; a one-minute window keeps a few failed requests from flapping.
            "metrics": [
                {"name": "request-success-rate", "thresholdRange": {"min": c.success_rate}, "interval": "1m"},
                {"name": "request-duration", "thresholdRange": {"max": c.max_latency_ms}, "interval": "1m"},
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
