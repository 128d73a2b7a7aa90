"""External Secrets: a SecretStore per team namespace on Vault KV v2, each reading only its team's prefix."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

from components.addons import external_secrets as eso
from components.addons.vault import VAULT_ADDR
from components.spec import SpecError, load
from components.versions import EXTERNAL_SECRETS

RELEASE = "kubernetes:helm.sh/v3:Release"


VAULT = "vault:kubernetes/authBackendRole:AuthBackendRole"


def teams_of(stack) -> list[str]:
    return sorted({s.team for s in load(stack.stack, ROOT).services})


def store(stack, team: str) -> dict:
    return stack.manifest("SecretStore", eso.SECRET_STORE, team)


def test_each_team_namespace_has_its_own_store_on_vault_kv2(stack):
    release = stack.named("external-secrets-external-secrets", RELEASE)
    assert release.inputs["version"] == EXTERNAL_SECRETS.version and release.inputs["namespace"] == eso.NAMESPACE
    assert not [r for r in stack.kubernetes_objects() if r.kind == "ClusterSecretStore"], "no store may span namespaces"
    for team in teams_of(stack):
        spec = store(stack, team)
        assert spec["apiVersion"] == "external-secrets.io/v1"
        provider = spec["spec"]["provider"]["vault"]
        assert (provider["server"], provider["path"], provider["version"]) == (VAULT_ADDR, "secret", "v2")
        auth = provider["auth"]["kubernetes"]
        # The team's own role, as the team namespace's own account (a SecretStore cannot name another namespace).
        assert (auth["mountPath"], auth["role"]) == ("kubernetes", f"team-{team}")
        assert auth["serviceAccountRef"] == {"name": eso.TEAM_SERVICE_ACCOUNT, "audiences": ["vault"]}
        account = stack.manifest("ServiceAccount", eso.TEAM_SERVICE_ACCOUNT, team)
        assert account["automountServiceAccountToken"] is False


def test_vault_role_of_a_team_is_bound_to_its_namespace_and_reads_only_its_prefix(stack):
    roles = {r.inputs["roleName"]: r.inputs for r in stack.of_type(VAULT)}
    policies = {r.inputs["name"]: r.inputs["policy"] for r in stack.of_type("vault:index/policy:Policy")}
    assert sorted(r for r in roles if r.startswith("team-")) == [f"team-{t}" for t in teams_of(stack)]
    for team in teams_of(stack):
        role = roles[f"team-{team}"]
        assert role["boundServiceAccountNames"] == [eso.TEAM_SERVICE_ACCOUNT]
        assert role["boundServiceAccountNamespaces"] == [team]
        assert role["audience"] == "vault" and role["tokenPolicies"] == [f"team-{team}"]
        paths = re.findall(r'path "([^"]+)"', policies[f"team-{team}"])
        assert paths == [f"secret/data/{team}/*", f"secret/metadata/{team}/*"]


def test_vault_side_is_declared_once_by_the_vault_addon_after_its_release(stack):
    [mount] = stack.of_type("vault:index/mount:Mount")
    assert mount.name == "vault-kv" and (mount.inputs["path"], mount.inputs["type"], mount.inputs["options"]) == ("secret", "kv", {"version": "2"})
    [auth] = stack.of_type("vault:index/authBackend:AuthBackend")
    assert auth.name == "vault-kubernetes-auth" and auth.inputs["type"] == "kubernetes" and auth.inputs["path"] == "kubernetes"
    [config] = stack.of_type("vault:kubernetes/authBackendConfig:AuthBackendConfig")
    assert config.inputs["kubernetesHost"] == "https://kubernetes.default.svc"
    release = stack.named("vault-vault", RELEASE).urn
    assert release in auth.dependencies and release in mount.dependencies and release in config.dependencies
    # Every role (the teams' and the snapshot job's) comes after the auth method's config, its policy after the mount.
    for role in stack.of_type(VAULT):
        assert config.urn in role.dependencies
    for policy in stack.of_type("vault:index/policy:Policy"):
        assert mount.urn in policy.dependencies


def test_moved_vault_resources_keep_their_identity(stack):
    """The provider, mount and auth method moved from External Secrets to the vault addon: aliases name
    their old URNs, so Pulumi never unmounts secret/ (deleting every team's secrets) to move them."""
    for name, type_, old in (
        ("vault-provider", "pulumi:providers:vault", "external-secrets-vault"),
        ("vault-kv", "vault:index/mount:Mount", "external-secrets-kv"),
        ("vault-kubernetes-auth", "vault:index/authBackend:AuthBackend", "external-secrets-kubernetes-auth"),
        ("vault-kubernetes-auth", "vault:kubernetes/authBackendConfig:AuthBackendConfig", "external-secrets-kubernetes-auth"),
    ):
        resource = stack.named(name, type_)
        assert resource.aliases, name
        assert any(alias.endswith(f"platform:addons:ExternalSecrets${type_}::{old}") for alias in resource.aliases), resource.aliases


def team_can_read(policy: str, path: str) -> bool:
    """Vault's glob match of a policy path against secret/data/<path> (a trailing * is a prefix)."""
    wanted = f"secret/data/{path}"
    return any(wanted.startswith(p[:-1]) if p.endswith("*") else wanted == p for p in re.findall(r'path "([^"]+)"', policy))


def test_team_a_store_cannot_name_team_b_path(stack, scratch):
    # Vault's side: checkout's policy reads checkout's paths, none of web's.
    assert team_can_read(eso.team_policy("checkout", "secret"), "checkout/orders/db")
    assert not team_can_read(eso.team_policy("checkout", "secret"), "web/storefront/session")
    assert not team_can_read(eso.team_policy("checkout", "secret"), "checkout-admin/root")
    # The loader's side: a checkout service naming web's path is refused, naming file and key.
    scratch.edit("stacks/services/checkout/payment.yaml", lambda d: d["secrets"][0].update(vaultPath="web/storefront/session"))
    with pytest.raises(SpecError) as err:
        load("dev", scratch.root)
    assert (
        "stacks/services/checkout/payment.yaml: secrets[0].vaultPath: 'web/storefront/session' is outside what team 'checkout' may read in Vault: "
        "its own prefix checkout/"
    ) in str(err.value)


@pytest.mark.parametrize("path", ["checkout", "checkout-admin/db", "checkoutx/db", "checkout//db", "web/checkout/db"])
def test_paths_outside_the_team_prefix_are_refused(scratch, path):
    scratch.edit("stacks/services/checkout/payment.yaml", lambda d: d["secrets"][0].update(vaultPath=path))
    with pytest.raises(SpecError, match="outside what team 'checkout' may read in Vault"):
        load("dev", scratch.root)


def test_preview_refuses_another_teams_path(scratch, capsys):
    from engine.preview import main as preview

    scratch.edit("stacks/services/checkout/orders.yaml", lambda d: d["secrets"][0].update(vaultPath="messaging/notifications/token"))
    assert preview(["dev", "--root", str(scratch.root), "--out", str(scratch.root / "out")]) == 2
    assert "stacks/services/checkout/orders.yaml: secrets[0].vaultPath:" in capsys.readouterr().err


def test_every_external_secret_uses_its_namespaces_store(stack):
    found = [r.inputs for r in stack.kubernetes_objects() if r.kind == "ExternalSecret"]
    declared = {s.name for s in load(stack.stack, ROOT).services if s.secrets}
    assert declared, "the sample services declare secrets"
    assert found and all(obj["spec"]["secretStoreRef"] == eso.STORE_REF for obj in found)
    for obj in found:
        team = obj["metadata"]["namespace"]
        assert all(d["remoteRef"]["key"].startswith(team + "/") for d in obj["spec"]["data"])
        store(stack, team)


def test_controller_is_ha_in_prod_only(dev, prod):
    d = dev.named("external-secrets-external-secrets", RELEASE).inputs["values"]
    p = prod.named("external-secrets-external-secrets", RELEASE).inputs["values"]
    assert (d["replicaCount"], d["leaderElect"], d["podDisruptionBudget"]) == (1, False, {"enabled": False})
    assert (p["replicaCount"], p["leaderElect"], p["podDisruptionBudget"]) == (2, True, {"enabled": True})


def test_namespace_enforces_restricted_pod_security(stack):
    ns = stack.manifest("Namespace", eso.NAMESPACE)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_requires_vault(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"].update(vault={"enabled": False}))
    with pytest.raises(SpecError) as err:
        load("dev", scratch.root)
    assert "stacks/dev.yaml: addons.external-secrets: requires vault, which is not enabled in this stack" in str(err.value)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"replicas": 0}, "addons.external-secrets.settings.replicas: Input should be greater than or equal to 1"),
        ({"kvMount": "kv"}, "addons.external-secrets.settings.kvMount: unknown key 'kvMount'; allowed keys: replicas"),
    ],
)
def test_bad_settings_are_refused(scratch, settings, message):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["external-secrets"].update(settings=settings))
    with pytest.raises(SpecError) as err:
        load("dev", scratch.root)
    assert f"stacks/dev.yaml: {message}" in str(err.value)
