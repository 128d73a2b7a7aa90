"""Vault's own configuration as code, and the one way an addon gets a Vault role.

The vault addon connects a `VaultAccess` once per program (`connect`): one explicit pulumi-vault
provider, the KV v2 mount of the team secrets, and one Kubernetes auth method with its config. Every
addon whose pods log in to Vault (External Secrets' team stores, the raft snapshot job) declares its
roles through `VaultAccess.role`: a policy and a Kubernetes-auth role bound to one service account in
one namespace, for tokens with the audience "vault" (useless against the Kubernetes API if they
leak), living minutes. The access travels in the vault addon's contract (components/contracts.py),
so no addon imports another, and the registry installs Vault's consumers after the vault addon.

The provider talks TLS only: Vault's https address (or the stack config's platform:vaultAddress,
https as well), verified with VAULT_CACERT, logged in with VAULT_TOKEN from the deploy pipeline's
environment. `vault operator init` stays a one-time step outside Pulumi (its output is the root token
and recovery keys). Vault checks login tokens with the TokenReview API as its own service account,
which the Vault chart binds to system:auth-delegator (server.authDelegator, on by default).

The provider, mount and auth method were declared by the External Secrets addon before they moved
here: their aliases keep the same Pulumi identities, so moving them never unmounts `secret/` (which
would delete every team's secrets) nor re-creates the auth method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_vault as vault

KV_MOUNT = "secret"
AUTH_MOUNT = "kubernetes"
TOKEN_AUDIENCE = "vault"
KUBERNETES_HOST = "https://kubernetes.default.svc"
# Where these resources lived before (the External Secrets addon's component): see the module docstring.
_PREVIOUS_PARENT = "platform:addons:ExternalSecrets::external-secrets"
_PREVIOUS_NAMES = {"provider": "external-secrets-vault", "kv": "external-secrets-kv", "auth": "external-secrets-kubernetes-auth"}


@dataclass(frozen=True)
class VaultRole:
    """A Vault policy and the Kubernetes-auth role carrying it (both named `name`), bound to one service account."""

    name: str
    policy: str
    service_account: str
    namespace: str
    ttl_seconds: int


def provider_address(address: str) -> str:
    """Where pulumi-vault reaches Vault: the stack config's platform:vaultAddress, else the listener's address; https only."""
    address = pulumi.Config("platform").get("vaultAddress") or address
    if not address.startswith("https://"):
        raise ValueError(f"platform:vaultAddress {address!r}: Vault serves TLS only; give an https:// address")
    return address


class VaultAccess:
    """Vault's provider and auth method, connected once by the vault addon; `role()` for every consumer."""

    def __init__(self, address: str):
        self.address = address
        self.provider: Optional[vault.Provider] = None
        self.auth: Optional[vault.AuthBackend] = None
        self.config: Optional[vault.kubernetes.AuthBackendConfig] = None
        self.mounts: list[vault.Mount] = []

    def connect(self, parent: pulumi.Resource, name: str, after: Sequence[pulumi.Resource]) -> None:
        """The provider, the KV mount and the auth method (`<name>-provider`, ...), after `after` (the Vault release)."""
        if self.provider is not None:
            raise RuntimeError("Vault's provider and auth method are declared once per program")
        previous = parent.urn.apply(lambda urn: urn.rsplit("$", 1)[0] + "$" + _PREVIOUS_PARENT)

        def moved(what: str) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=parent, aliases=[pulumi.Alias(name=_PREVIOUS_NAMES[what], parent=previous)])

        self.provider = vault.Provider(f"{name}-provider", address=provider_address(self.address), skip_tls_verify=False, opts=moved("provider"))
        opts = pulumi.ResourceOptions(provider=self.provider, depends_on=list(after))
        kv = vault.Mount(
            f"{name}-kv",
            path=KV_MOUNT,
            type="kv",
            options={"version": "2"},
            description="Team secrets, one prefix per team",
            opts=pulumi.ResourceOptions.merge(moved("kv"), opts),
        )
        self.mounts = [kv]
        self.auth = vault.AuthBackend(f"{name}-kubernetes-auth", type="kubernetes", path=AUTH_MOUNT, opts=pulumi.ResourceOptions.merge(moved("auth"), opts))
        self.config = vault.kubernetes.AuthBackendConfig(
            f"{name}-kubernetes-auth", backend=self.auth.path, kubernetes_host=KUBERNETES_HOST, opts=pulumi.ResourceOptions.merge(moved("auth"), opts)
        )

    def role(self, parent: pulumi.Resource, resource: str, role: VaultRole) -> vault.kubernetes.AuthBackendRole:
        """A consumer's policy and role, children of `parent`, after the mounts and the auth method's config."""
        if self.provider is None or self.auth is None or self.config is None:
            raise RuntimeError(f"Vault role {role.name!r}: the vault addon has not connected Vault's provider yet (it installs before its consumers)")
        opts = pulumi.ResourceOptions(parent=parent, provider=self.provider)
        policy = vault.Policy(
            resource, name=role.name, policy=role.policy, opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=self.mounts))
        )
        return vault.kubernetes.AuthBackendRole(
            resource,
            backend=self.auth.path,
            role_name=role.name,
            bound_service_account_names=[role.service_account],
            bound_service_account_namespaces=[role.namespace],
            # Vault's `default` policy stays attached: it grants only the token's own lookup and renewal,
            # which External Secrets uses to check a cached login.
            audience=TOKEN_AUDIENCE,
            token_policies=[policy.name],
            token_ttl=role.ttl_seconds,
            token_max_ttl=role.ttl_seconds,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.config])),
        )
