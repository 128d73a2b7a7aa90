"""External Secrets Operator, with one SecretStore per team namespace reading only that team's Vault paths.

Services declare secrets by Vault path (`secrets[].vaultPath` in a service file, always under
`<team>/`, which the loader enforces); their ExternalSecrets point at the `vault` SecretStore of
their own namespace with `remoteRef.key` = that path (relative to the KV mount) and
`remoteRef.property` = the key, and the operator writes the Kubernetes Secret. No secret value
passes through Pulumi.

Isolation is Vault's, not only ours: each team namespace's store logs in with Vault's Kubernetes
auth method as the namespace's `vault-secrets` service account (a token with audience "vault",
useless against the Kubernetes API if it leaks), to the Vault role `team-<team>`, which is bound to
that account in that namespace only and carries the policy `team-<team>`: read on
`secret/data/<team>/*` and nothing else. A namespaced SecretStore can only name a service account
of its own namespace, so a team's store can never log in as another team, and the role's policy
refuses every path outside the team's prefix even if a declaration slipped past the loader.

The Vault side is declared with pulumi-vault, so adding a team is a pull request, not a manual step:
the vault addon owns Vault's provider, the KV v2 mount and the Kubernetes auth method, and each team's
policy and role are declared here through its one helper (components/vault_access.py), the same way
as every other Vault role. pulumi-vault rather than a templated policy on the service account's
namespace: the policy then names each team's prefix literally (readable in review and in the diff),
and no wildcard role spans all namespaces. Each team store trusts Vault's CA through a Secret in its
own namespace (a namespaced store reads no other), issued there by cert-manager from Vault's issuer.

helm.v3.Release: the chart installs its CRDs and a validating webhook, and the release waits for
the webhook to be ready before any SecretStore (in the team namespaces) is created.
"""

from __future__ import annotations

from typing import Any

import pulumi_vault as vault

from components.contracts import ExternalSecretsContract, VaultContract
from components.monitoring.scrape import Metrics
from components.spec import Declarations, names
from components.spec.base import Spec, field
from components.vault_access import TOKEN_AUDIENCE, VaultRole
from components.versions import EXTERNAL_SECRETS

from . import flows as net
from .base import Addon

NAMESPACE = "external-secrets"
# The chart's controller and its webhook (port 10250, called by the API server).
CONTROLLER_POD_LABELS = {"app.kubernetes.io/name": "external-secrets"}
WEBHOOK_POD_LABELS = {"app.kubernetes.io/name": "external-secrets-webhook"}
WEBHOOK_PORT = 10250
RELEASE = "external-secrets"
SERVICE_ACCOUNT = "external-secrets"
# The SecretStore in every team namespace, and what an ExternalSecret's spec.secretStoreRef is set to.
SECRET_STORE = names.SECRET_STORE
STORE_REF = {"kind": "SecretStore", "name": SECRET_STORE}
# The account a team's store authenticates to Vault as, in the team's namespace.
TEAM_SERVICE_ACCOUNT = names.TEAM_SERVICE_ACCOUNT
# The Secret in every team namespace holding Vault's CA (cert-manager writes it from the internal issuer).
TEAM_CA_SECRET = names.TEAM_CA_SECRET
# The controller's metrics port (chart: metrics.listen.port).
METRICS_PORT = 8080
# Vault's KV v2 mount (Vault's contract): a service's vaultPath "checkout/orders/db" is secret/data/checkout/orders/db in Vault.
KV_VERSION = "v2"
# Vault tokens of a store live 15 minutes; the operator logs in again as needed.
TOKEN_TTL_SECONDS = 900


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
        return ExternalSecretsContract(
            secret_store=SECRET_STORE, team_service_account=TEAM_SERVICE_ACCOUNT, team_ca_secret=TEAM_CA_SECRET, team_store_spec=team_store_spec
        )

    def install(self) -> None:
        s: ExternalSecretsSettings = self.settings
        self.release = self.helm(
            EXTERNAL_SECRETS,
            {
                "replicaCount": s.replicas,
                "leaderElect": s.replicas > 1,
                "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
                "podDisruptionBudget": {"enabled": s.replicas > 1},
            },
            release=RELEASE,
        )
        # Every room has its Vault role, services or not yet (docs/platform.md#a-room-for-every-declared-team).
        self.vault_roles = self.declare_vault(list(self.ctx.decl.spec.rooms()))

    def declare_vault(self, teams: list[str]) -> dict[str, vault.kubernetes.AuthBackendRole]:
        """Per team a policy and a role, through Vault's one access (the vault addon has connected it)."""
        server = self.ctx.contracts.require(VaultContract)
        offers = self.ctx.decl.spec.offers
        return {
            team: server.access.role(self, f"{self.name}-{team}", team_vault_role(team, server.kv_mount, tuple(o.path for o in offers.for_team(team)[1])))
            for team in teams
        }

    def flows(self) -> list[net.Flow]:
        server = self.ctx.contracts.require(VaultContract)
        return [
            net.api_server(self.vpc_cidr),
            net.webhook("webhook", self.vpc_cidr, (WEBHOOK_PORT,), "the API server calls the ExternalSecret webhook", selector=WEBHOOK_POD_LABELS),
            # Every team's SecretStore is served by this controller: the team namespaces need no path to Vault.
            net.vault_client(server, "the operator reads secrets from Vault", selector=CONTROLLER_POD_LABELS),
            *self.scraped((METRICS_PORT,), selector=CONTROLLER_POD_LABELS),
        ]

    def outputs(self) -> dict[str, Any]:
        return {
            "namespace": NAMESPACE,
            "serviceAccount": SERVICE_ACCOUNT,
            "secretStore": SECRET_STORE,
            "kvMount": self.ctx.contracts.require(VaultContract).kv_mount,
        }


def team_role(team: str) -> str:
    """The Vault role and policy name of a team."""
    return f"team-{team}"


def team_policy(team: str, kv_mount: str, offered: tuple[str, ...] = ()) -> str:
    """Vault policy: read the team's KV v2 prefix and the prefixes the platform offers it (the stack's
    offers.vault), list their metadata; nothing else."""
    return "".join(
        f'path "{kv_mount}/data/{prefix}/*" {{\n  capabilities = ["read"]\n}}\npath "{kv_mount}/metadata/{prefix}/*" {{\n  capabilities = ["read", "list"]\n}}\n'
        for prefix in (team, *offered)
    )


def team_vault_role(team: str, kv_mount: str, offered: tuple[str, ...] = ()) -> VaultRole:
    """A team's Vault role: its namespace's `vault-secrets` account, reading only the team's prefix and what it is offered."""
    return VaultRole(
        name=team_role(team), policy=team_policy(team, kv_mount, offered), service_account=TEAM_SERVICE_ACCOUNT, namespace=team, ttl_seconds=TOKEN_TTL_SECONDS
    )


def team_store_spec(team: str, server: VaultContract) -> dict[str, Any]:
    """A team namespace's SecretStore: Vault KV v2 at Vault's KV mount over TLS, logged in as the namespace's own account and role."""
    return {
        "provider": {
            "vault": {
                "server": server.address,
                # Vault's listener certificate chains to the platform's internal CA; a namespaced store reads
                # the CA from its own namespace (TEAM_CA_SECRET, issued there by the same issuer).
                "caProvider": {"type": "Secret", "name": TEAM_CA_SECRET, "key": server.ca_key},
                "path": server.kv_mount,
                "version": KV_VERSION,
                "auth": {
                    "kubernetes": {
                        "mountPath": server.auth_mount,
                        "role": team_role(team),
                        # A SecretStore's account is always in the store's own namespace.
                        "serviceAccountRef": {"name": TEAM_SERVICE_ACCOUNT, "audiences": [TOKEN_AUDIENCE]},
                    }
                },
            }
        }
    }
