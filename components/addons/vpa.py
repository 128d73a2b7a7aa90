"""Vertical Pod Autoscaler, recommendation-only: the recommender and nothing else.

Every service has a VerticalPodAutoscaler with `updateMode: Off` (components/workloads); the
recommender fills in its `status.recommendation` (target, lower and upper bounds per container)
from observed usage, so teams can right-size `resources` from data. The updater (which evicts pods
to apply recommendations) and the admission controller (which rewrites pod requests) are not
installed: the services' HPAs already scale on CPU utilisation, which is relative to the requests,
and a VPA changing those requests would fight the HPA over the same pods.

Read a recommendation with
  kubectl get vpa <service> -n <team> -o jsonpath='{.status.recommendation.containerRecommendations}'

helm.v3.Release: the chart installs the VerticalPodAutoscaler CRD (crds/), which the services'
objects need, and the release waits for the recommender.
"""

from __future__ import annotations

from typing import Any

from components.security import RESTRICTED_CONTAINER
from components.spec.base import Spec, field
from components.versions import VPA

from . import flows as net
from .base import Addon

NAMESPACE = "vpa"
RELEASE = "vpa"
# The chart names each component <fullname>-<component>; fullnameOverride pins <fullname>.
RECOMMENDER_SERVICE_ACCOUNT = f"{RELEASE}-recommender"


class VpaSettings(Spec):
    recommender_replicas: int = field("Recommender replicas; more than one runs with leader election (the chart turns it on).", default=1, ge=1, le=3)


class Vpa(Addon):
    name = "vpa"
    namespace = NAMESPACE
    # The chart neither declares the recommender's metrics port nor offers a monitor; its recommendations are
    # read from the VerticalPodAutoscaler objects, not from metrics.
    metrics = None
    Settings = VpaSettings
    pod_security = "restricted"

    def install(self) -> None:
        s: VpaSettings = self.settings
        self.release = self.helm(
            VPA,
            {
                "fullnameOverride": RELEASE,
                # The chart runs its containers as 65534; this completes the restricted profile.
                "containerSecurityContext": RESTRICTED_CONTAINER,
                "recommender": {
                    "enabled": True,
                    "replicas": s.recommender_replicas,
                    "podDisruptionBudget": {"enabled": s.recommender_replicas > 1},
                    # The chart's suggested sizing; memory grows with the number of tracked containers.
                    "resources": {"requests": {"cpu": "50m", "memory": "500Mi"}, "limits": {"memory": "1000Mi"}},
                },
                # Recommendation only: nothing may evict pods or rewrite their requests behind the HPA.
                "updater": {"enabled": False},
                "admissionController": {"enabled": False},
            },
            release=RELEASE,
        )

    def flows(self) -> list[net.Flow]:
        # The recommender reads usage from the metrics API, through the API server.
        return [net.api_server(self.vpc_cidr)]

    def outputs(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "serviceAccount": RECOMMENDER_SERVICE_ACCOUNT, "updateMode": "Off"}
