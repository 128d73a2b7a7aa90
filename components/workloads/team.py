"""A team's namespace: mesh injection, Pod Security labels, and default-deny networking."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

# Istio's init container needs NET_ADMIN and NET_RAW, which Pod Security admission would refuse
# without the Istio CNI plugin; the restricted profile is therefore audited and warned here, and
# enforced before merge by the policy pack on what teams declare.
POD_SECURITY = {"pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted"}


class TeamNamespace(pulumi.ComponentResource):
    namespace: k8s.core.v1.Namespace

    def __init__(self, team: str, provider: k8s.Provider, mesh: bool, istio_namespace: Optional[str], opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("platform:workloads:TeamNamespace", team, None, opts)
        labels = {**POD_SECURITY, "platform.io/team": team}
        if mesh:
            labels["istio-injection"] = "enabled"
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        self.namespace = k8s.core.v1.Namespace(f"{team}-namespace", metadata={"name": team, "labels": labels}, opts=child)
        in_ns = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.namespace])
        k8s.networking.v1.NetworkPolicy(
            f"{team}-default-deny", metadata={"name": "default-deny", "namespace": team},
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, opts=in_ns,
        )
        egress = [{
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
        }]
        if mesh and istio_namespace:
            # Sidecars fetch configuration and certificates from istiod.
            egress.append({
                "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": istio_namespace}}, "podSelector": {"matchLabels": {"app": "istiod"}}}],
                "ports": [{"port": 15012, "protocol": "TCP"}],
            })
        k8s.networking.v1.NetworkPolicy(
            f"{team}-platform-egress", metadata={"name": "platform-egress", "namespace": team},
            spec={"podSelector": {}, "policyTypes": ["Egress"], "egress": egress}, opts=in_ns,
        )
        self.register_outputs({"namespace": team})
