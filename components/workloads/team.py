"""A team's namespace: mesh injection, Pod Security labels, default-deny networking, and its budget.

The budget (`teams.<team>` in the stack file) becomes a ResourceQuota on what the team's pods may
request in total, and a LimitRange that gives any container declared without resources (a debug
pod, a Job from the team's repository) the stack's service defaults, so the quota can admit it.
The loader has already checked that the declared services fit the quota at their worst case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.security import ca_certificate
from components.spec import names
from components.spec.service import Resources
from components.spec.stack import TeamBudget

# Enforced: with the istio-cni addon (which istio requires) the injected init container is the
# unprivileged istio-validation, so every pod here, sidecar included, passes the restricted level.
POD_SECURITY = {level: "restricted" for level in ("pod-security.kubernetes.io/enforce", "pod-security.kubernetes.io/warn", "pod-security.kubernetes.io/audit")}


@dataclass(frozen=True)
class SecretStore:
    """A team namespace's External Secrets store: its name, the account it logs in as, its spec, and
    the Secret holding Vault's CA (key ca.crt) that the spec trusts, issued by `ca_issuer`."""

    name: str
    service_account: str
    spec: dict[str, Any]
    ca_secret: str
    ca_issuer: str


class TeamNamespace(pulumi.ComponentResource):
    namespace: k8s.core.v1.Namespace

    def __init__(
        self,
        team: str,
        provider: k8s.Provider,
        mesh: bool,
        istio_namespace: Optional[str],
        opts: Optional[pulumi.ResourceOptions] = None,
        budget: Optional[TeamBudget] = None,
        defaults: Optional[Resources] = None,
        annotations: Optional[dict[str, str]] = None,
        secret_store: Optional["SecretStore"] = None,
        pod_security_version: Optional[str] = None,
    ):
        super().__init__("platform:workloads:TeamNamespace", team, None, opts)
        labels = {**POD_SECURITY, "platform.io/team": team}
        if pod_security_version:
            # Admission enforces the standard at the version the policy pack judges (not the server's "latest").
            labels["pod-security.kubernetes.io/enforce-version"] = pod_security_version
        if mesh:
            labels["istio-injection"] = "enabled"
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        metadata: dict[str, Any] = {"name": team, "labels": labels, **({"annotations": annotations} if annotations else {})}
        self.namespace = k8s.core.v1.Namespace(f"{team}-namespace", metadata=metadata, opts=child)
        in_ns = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.namespace])
        k8s.networking.v1.NetworkPolicy(
            f"{team}-default-deny",
            metadata={"name": names.DEFAULT_DENY, "namespace": team},
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            opts=in_ns,
        )
        egress = [
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            }
        ]
        if mesh and istio_namespace:
            # Sidecars fetch configuration and certificates from istiod.
            egress.append(
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": istio_namespace}},
                            "podSelector": {"matchLabels": {"app": "istiod"}},
                        }
                    ],
                    "ports": [{"port": 15012, "protocol": "TCP"}],
                }
            )
        k8s.networking.v1.NetworkPolicy(
            f"{team}-platform-egress",
            metadata={"name": names.PLATFORM_EGRESS, "namespace": team},
            spec={"podSelector": {}, "policyTypes": ["Egress"], "egress": egress},
            opts=in_ns,
        )
        if budget is not None:
            k8s.core.v1.ResourceQuota(f"{team}-quota", metadata={"name": names.TEAM_QUOTA, "namespace": team}, spec=quota_spec(budget), opts=in_ns)
        if defaults is not None:
            k8s.core.v1.LimitRange(
                f"{team}-limits", metadata={"name": names.CONTAINER_DEFAULTS, "namespace": team}, spec=limit_range_spec(defaults), opts=in_ns
            )
        if secret_store is not None:
            # The team's own door into Vault: its store logs in as this account, bound to this namespace.
            account = k8s.core.v1.ServiceAccount(
                f"{team}-vault-secrets", metadata={"name": secret_store.service_account, "namespace": team}, automount_service_account_token=False, opts=in_ns
            )
            # Vault's CA in this namespace: a namespaced store reads its caProvider Secret from its own namespace.
            ca = k8s.apiextensions.CustomResource(
                f"{team}-vault-ca",
                api_version="cert-manager.io/v1",
                kind="Certificate",
                metadata={"name": secret_store.ca_secret, "namespace": team, "labels": {"platform.io/team": team}},
                spec=ca_certificate(secret_store.ca_secret, f"{team}-vault-ca", secret_store.ca_issuer),
                opts=in_ns,
            )
            k8s.apiextensions.CustomResource(
                f"{team}-secret-store",
                api_version="external-secrets.io/v1",
                kind="SecretStore",
                metadata={"name": secret_store.name, "namespace": team, "labels": {"platform.io/team": team}},
                spec=secret_store.spec,
                opts=pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(depends_on=[account, ca])),
            )
        self.register_outputs({"namespace": team})


def quota_spec(budget: TeamBudget) -> dict[str, Any]:
    # Requests, not limits: a quota on limits.cpu would force CPU limits, which the services leave unset.
    return {"hard": {"requests.cpu": budget.cpu, "requests.memory": budget.memory, "pods": str(budget.pods)}}


def limit_range_spec(defaults: Resources) -> dict[str, Any]:
    limits = {k: v for k, v in (("cpu", defaults.limits.cpu), ("memory", defaults.limits.memory)) if v}
    return {"limits": [{"type": "Container", "defaultRequest": {"cpu": defaults.requests.cpu, "memory": defaults.requests.memory}, "default": limits}]}
