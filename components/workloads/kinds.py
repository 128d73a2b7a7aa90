"""The kinds of object the platform creates in a team's namespace (Workloads, TeamNamespace, Microservice).

Argo CD lets a team sync into its namespace only kinds outside this set (components/addons/argocd.py),
so nothing a team's repository holds can replace or prune what the platform manages there; a test
checks this set against every object the program registers in team namespaces.
"""

from __future__ import annotations

# (API group, kind); "" is the core group.
PLATFORM_KINDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "ServiceAccount"),
        ("", "ConfigMap"),
        ("", "Service"),
        ("", "ResourceQuota"),
        ("", "LimitRange"),
        ("apps", "Deployment"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("autoscaling.k8s.io", "VerticalPodAutoscaler"),
        ("policy", "PodDisruptionBudget"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("security.istio.io", "AuthorizationPolicy"),
        ("security.istio.io", "PeerAuthentication"),
        ("networking.istio.io", "VirtualService"),
        ("networking.istio.io", "ServiceEntry"),
        ("cert-manager.io", "Certificate"),
        ("flagger.app", "Canary"),
        ("monitoring.coreos.com", "ServiceMonitor"),
        ("monitoring.coreos.com", "PrometheusRule"),
        ("external-secrets.io", "ExternalSecret"),
        ("external-secrets.io", "SecretStore"),
        ("bitnami.com", "SealedSecret"),
        ("keda.sh", "ScaledObject"),
        ("keda.sh", "TriggerAuthentication"),
        ("chaos-mesh.org", "Schedule"),
    }
)
