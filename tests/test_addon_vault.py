"""Vault: HA raft per stack, auto-unseal through the addon's own KMS key by Pod Identity, no agent injector, UI internal."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from components.addons import vault
from components.addons.external_secrets import SECRET_STORE
from components.spec import SpecError, load
from components.versions import VAULT

RELEASE = "kubernetes:helm.sh/v3:Release"


def values(rec) -> dict:
    release = rec.named("vault-vault", RELEASE)
    assert release.inputs["version"] == VAULT.version and release.inputs["namespace"] == "vault"
    return release.inputs["values"]


def test_raft_ha_with_three_voters_in_prod_and_one_in_dev(dev, prod):
    for rec, replicas in ((dev, 1), (prod, 3)):
        server = values(rec)["server"]
        assert server["ha"]["enabled"] and server["ha"]["raft"]["enabled"] and server["ha"]["raft"]["setNodeId"]
        assert server["ha"]["replicas"] == replicas
        config = server["ha"]["raft"]["config"]
        assert 'storage "raft"' in config and 'path = "/vault/data"' in config
        # Every voter can find the others by their stable pod names.
        assert config.count("retry_join") == replicas
        assert [f"https://vault-{i}.vault-internal:8200" in config for i in range(replicas)] == [True] * replicas
    # A budget of floor((n-1)/2) would be 0 for a single pod and block every node drain.
    assert values(dev)["server"]["ha"]["disruptionBudget"] == {"enabled": False}
    assert values(prod)["server"]["ha"]["disruptionBudget"] == {"enabled": True}


def test_seal_names_the_addons_own_kms_key(stack):
    config = values(stack)["server"]["ha"]["raft"]["config"]
    alias = stack.named("vault-unseal", "aws:kms/alias:Alias")
    key = stack.named("vault-unseal", "aws:kms/key:Key")
    assert f'seal "awskms" {{\n  region = "eu-west-1"\n  kms_key_id = "{alias.inputs["name"]}"\n}}' in config
    assert alias.inputs["name"] == f"alias/{load(stack.stack, ROOT).spec.cluster.name}-vault-unseal"
    assert key.urn in alias.dependencies
    assert key.inputs["enableKeyRotation"] is True
    # Losing the key loses Vault: protected wherever the cluster is.
    assert key.protect == (stack.stack == "prod")


def test_unseal_role_may_use_that_key_only(stack):
    policy = stack.named("vault-unseal-kms", "aws:iam/rolePolicy:RolePolicy")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert len(statements) == 1
    assert statements[0]["Action"] == ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]
    assert statements[0]["Resource"].startswith("arn:aws:kms:eu-west-1:") and ":key/" in statements[0]["Resource"]
    assert stack.named("vault-unseal", "aws:kms/key:Key").urn in policy.dependencies


def test_server_service_account_gets_the_role_by_pod_identity(stack):
    role = stack.named("vault-unseal", "aws:iam/role:Role")
    assert "pods.eks.amazonaws.com" in role.inputs["assumeRolePolicy"]
    association = stack.named("vault-server", "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert association.inputs["namespace"] == vault.NAMESPACE
    assert association.inputs["serviceAccount"] == vault.SERVICE_ACCOUNT == values(stack)["server"]["serviceAccount"]["name"]
    assert role.urn in association.dependencies
    # Pods that start before their credentials, key alias or permissions exist cannot unseal.
    release = stack.named("vault-vault", RELEASE)
    for name, type_ in (("vault-server", association.type), ("vault-unseal-kms", "aws:iam/rolePolicy:RolePolicy"), ("vault-unseal", "aws:kms/alias:Alias")):
        assert stack.named(name, type_).urn in release.dependencies


def test_injector_off_and_ui_only_inside_the_cluster(stack):
    v = values(stack)
    # External Secrets is the one way into Vault; an injector's agents could not verify Vault's listener.
    assert v["injector"] == {"enabled": False}
    assert v["ui"] == {"enabled": True, "serviceType": "ClusterIP", "activeVaultPodOnly": True}
    assert "ingress" not in v["server"] and "route" not in v["server"]
    exposed = [r for r in stack.kubernetes_objects() if r.metadata.get("namespace") == "vault" and r.kind in ("Ingress", "Gateway", "VirtualService")]
    assert exposed == []


def test_external_secrets_reaches_the_chart_service():
    assert vault.VAULT_ADDR == "https://vault.vault.svc:8200"


def test_store_points_at_vault_addr(stack):
    stores = [r.inputs for r in stack.kubernetes_objects() if r.kind == "SecretStore" and r.metadata["name"] == SECRET_STORE]
    assert stores and all(store["spec"]["provider"]["vault"]["server"] == vault.VAULT_ADDR for store in stores)


def test_raft_config_lists_every_peer():
    config = vault.raft_config(5, "us-east-1", "alias/k")
    assert config.count("leader_api_addr") == 5 and "vault-4.vault-internal" in config
    assert 'region = "us-east-1"' in config and 'kms_key_id = "alias/k"' in config
    assert "disable_mlock = true" in config and 'service_registration "kubernetes" {}' in config


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"replicas": 2}, "addons.vault.settings.replicas: 2 replicas: raft needs an odd number of voters"),
        ({"replicas": 7}, "addons.vault.settings.replicas: Input should be less than or equal to 5"),
        ({"replica": 3}, "addons.vault.settings.replica: unknown key 'replica'; allowed keys: replicas, storageGib"),
    ],
)
def test_bad_settings_are_refused(scratch, settings, message):
    scratch.edit("stacks/prod.yaml", lambda d: d["addons"]["vault"].update(settings=settings))
    with pytest.raises(SpecError) as err:
        load("prod", scratch.root)
    assert f"stacks/prod.yaml: {message}" in str(err.value)
