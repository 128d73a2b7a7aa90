"""External Secrets: one ClusterSecretStore on Vault KV v2 with Kubernetes auth, for the team namespaces only."""

from __future__ import annotations

import pytest
from conftest import ROOT

from components.addons import external_secrets as eso
from components.addons.vault import VAULT_ADDR
from components.contracts import Pods, VaultContract
from components.spec import SpecError, load
from components.versions import EXTERNAL_SECRETS

RELEASE = "kubernetes:helm.sh/v3:Release"


def test_store_reads_vault_kv2_with_kubernetes_auth_as_the_operator(stack):
    release = stack.named("external-secrets-external-secrets", RELEASE)
    assert release.inputs["version"] == EXTERNAL_SECRETS.version and release.inputs["namespace"] == eso.NAMESPACE
    store = stack.manifest("ClusterSecretStore", "vault")
    assert store["apiVersion"] == "external-secrets.io/v1"
    provider = store["spec"]["provider"]["vault"]
    assert (provider["server"], provider["path"], provider["version"]) == (VAULT_ADDR, "secret", "v2")
    auth = provider["auth"]["kubernetes"]
    assert (auth["mountPath"], auth["role"]) == ("kubernetes", "external-secrets")
    # The account the chart actually creates, in the operator's namespace, with tokens only Vault accepts.
    assert auth["serviceAccountRef"] == {"name": release.inputs["values"]["serviceAccount"]["name"], "namespace": eso.NAMESPACE, "audiences": ["vault"]}


def test_store_is_created_after_vault_and_the_operators_webhook(stack):
    store = next(r for r in stack.kubernetes_objects() if r.kind == "ClusterSecretStore")
    assert stack.named("vault-vault", RELEASE).urn in store.dependencies
    assert stack.named("external-secrets-external-secrets", RELEASE).urn in store.dependencies


def test_store_serves_team_namespaces_only(stack):
    teams = sorted({s.team for s in load(stack.stack, ROOT).services})
    assert teams and stack.manifest("ClusterSecretStore", "vault")["spec"]["conditions"] == [{"namespaces": teams}]
    assert "external-secrets" not in teams and "vault" not in teams


def test_store_spec_for_no_services_matches_no_namespace():
    vault = VaultContract(address=VAULT_ADDR, active_address=VAULT_ADDR, server=Pods("vault", {"app.kubernetes.io/name": "vault"}), port=8200, tls_secret="vault-tls", ca_key="ca.crt")
    assert eso.store_spec([], vault)["conditions"] == [{"namespaces": []}]


def test_every_external_secret_uses_the_store(stack):
    found = [r.inputs for r in stack.kubernetes_objects() if r.kind == "ExternalSecret"]
    declared = {s.name for s in load(stack.stack, ROOT).services if s.secrets}
    assert declared, "the sample services declare secrets"
    assert found and all(obj["spec"]["secretStoreRef"] == eso.STORE_REF for obj in found)


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


@pytest.mark.parametrize("settings, message", [
    ({"replicas": 0}, "addons.external-secrets.settings.replicas: Input should be greater than or equal to 1"),
    ({"kvMount": "kv"}, "addons.external-secrets.settings.kvMount: unknown key 'kvMount'; allowed keys: replicas"),
])
def test_bad_settings_are_refused(scratch, settings, message):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["external-secrets"].update(settings=settings))
    with pytest.raises(SpecError) as err:
        load("dev", scratch.root)
    assert f"stacks/dev.yaml: {message}" in str(err.value)
