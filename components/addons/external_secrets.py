"""External Secrets Operator with one ClusterSecretStore, "vault", reading Vault's KV v2 engine.

Services declare secrets by Vault path (`secrets[].vaultPath` in a service file); their
ExternalSecrets point at CLUSTER_SECRET_STORE with `remoteRef.key` = that path (relative to the
KV mount) and `remoteRef.property` = the key, and the operator writes the Kubernetes Secret. No
secret value passes through Pulumi.

The store authenticates with Vault's Kubernetes auth method as the operator's own service account,
with a token whose audience is "vault" (useless against the Kubernetes API if it leaks). The store
only serves the team namespaces (`conditions`), not the platform's.

What must exist inside Vault (Vault-internal state, set once by an operator with a Vault token;
this program does not hold one):
  vault secrets enable -path=secret kv-v2
  vault auth enable kubernetes
  vault write auth/kubernetes/config kubernetes_host=https://kubernetes.default.svc
  vault policy write external-secrets - <<EOF
  path "secret/data/*" { capabilities = ["read"] }
  path "secret/metadata/*" { capabilities = ["read", "list"] }
  EOF
  vault write auth/kubernetes/role/external-secrets bound_service_account_names=external-secrets \\
    bound_service_account_namespaces=external-secrets audience=vault policies=external-secrets ttl=15m
Vault checks the tokens with the TokenReview API as its own service account, which the Vault
chart binds to system:auth-delegator (server.authDelegator, on by default).

helm.v3.Release: the chart installs its CRDs and a validating webhook, and the release waits for
the webhook to be ready before the ClusterSecretStore is created.
"""

from __future__ import annotations

from typing import Any

from components.contracts import ExternalSecretsContract, VaultContract
from components.monitoring.scrape import Metrics
from components.spec import Declarations
from components.spec.base import Spec, field
from components.versions import EXTERNAL_SECRETS

from .base import Addon

NAMESPACE = "external-secrets"
RELEASE = "external-secrets"
SERVICE_ACCOUNT = "external-secrets"
CLUSTER_SECRET_STORE = "vault"
# What an ExternalSecret's spec.secretStoreRef is set to.
STORE_REF = {"kind": "ClusterSecretStore", "name": CLUSTER_SECRET_STORE}
# Vault's KV v2 mount: a service's vaultPath "checkout/orders/db" is secret/data/checkout/orders/db in Vault.
KV_MOUNT = "secret"
KV_VERSION = "v2"
# Vault's Kubernetes auth method and the role the store logs in with (see the module docstring).
VAULT_AUTH_MOUNT = "kubernetes"
VAULT_ROLE = "external-secrets"
TOKEN_AUDIENCE = "vault"


class ExternalSecretsSettings(Spec):
    replicas: int = field("Controller replicas; more than one runs with leader election.", default=1, ge=1, le=3)


class ExternalSecrets(Addon):
    name = "external-secrets"
    namespace = NAMESPACE
    # Sync errors and provider calls of the controller (its metrics Service and ServiceMonitor).
    metrics = Metrics(charts={EXTERNAL_SECRETS.name: {"metrics": {"service": {"enabled": True}}, "serviceMonitor": {"enabled": True}}})
    requires = ("vault",)
    Settings = ExternalSecretsSettings
    # The chart's pods (controller, webhook, cert controller) meet the restricted standard by default.
    pod_security = "restricted"

    @classmethod
    def contract(cls, settings: Any, decl: Declarations) -> ExternalSecretsContract:
        return ExternalSecretsContract(cluster_secret_store=CLUSTER_SECRET_STORE)

    def install(self) -> None:
        s: ExternalSecretsSettings = self.settings
        self.release = self.helm(EXTERNAL_SECRETS, {
            "replicaCount": s.replicas,
            "leaderElect": s.replicas > 1,
            "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
            "podDisruptionBudget": {"enabled": s.replicas > 1},
        }, release=RELEASE)
        teams = sorted({service.team for service in self.ctx.decl.services})
        self.store = self.manifest("external-secrets.io/v1", "ClusterSecretStore", CLUSTER_SECRET_STORE, spec=store_spec(teams, self.ctx.contracts.require(VaultContract).address))

    def outputs(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "serviceAccount": SERVICE_ACCOUNT, "clusterSecretStore": CLUSTER_SECRET_STORE, "kvMount": KV_MOUNT}


def store_spec(teams: list[str], vault_address: str) -> dict[str, Any]:
    """The ClusterSecretStore: Vault KV v2 at KV_MOUNT, Kubernetes auth as the operator, team namespaces only."""
    return {
        "provider": {"vault": {
            "server": vault_address,
            "path": KV_MOUNT,
            "version": KV_VERSION,
            "auth": {"kubernetes": {
                "mountPath": VAULT_AUTH_MOUNT,
                "role": VAULT_ROLE,
                "serviceAccountRef": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE, "audiences": [TOKEN_AUDIENCE]},
            }},
        }},
        # Team namespaces are named after the team (components/workloads). An empty list matches
        # no namespace, so a stack without services exposes nothing.
        "conditions": [{"namespaces": teams}],
    }
