"""Vault: HA raft per stack, auto-unseal through the addon's own KMS key by Pod Identity, no agent injector, UI internal."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from components.addons import vault
from components.addons.external_secrets import SECRET_STORE
from components.spec import SpecError, load
from components.versions import VAULT
from engine.stacks import run

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


KEY, ALIAS, REPLICA = "aws:kms/key:Key", "aws:kms/alias:Alias", "aws:kms/replicaKey:ReplicaKey"
MRK = "arn:aws:kms:eu-west-1:444455556666:key/mrk-0123456789abcdef0123456789abcdef"


def seal_config(rec) -> str:
    return values(rec)["server"]["ha"]["raft"]["config"]


def unseal_statements(rec) -> list[dict]:
    return json.loads(rec.named("vault-unseal-kms", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])["Statement"]


def without_legacy(scratch, stack: str, **settings) -> None:
    def edit(d):
        d["addons"]["vault"]["settings"].pop("legacyUnsealKey")
        d["addons"]["vault"]["settings"].update(settings)

    scratch.edit(f"stacks/{stack}.yaml", edit)


@pytest.fixture(scope="module")
def built_since(tmp_path_factory):
    """prod as a stack built since the seal key became multi-Region (no legacy key)."""
    from scratch import Scratch

    scratch = Scratch(tmp_path_factory.mktemp("seal"))
    without_legacy(scratch, "prod")
    return run("prod", scratch.root)


def test_the_seal_key_is_multi_region_and_protected_like_the_cluster(stack):
    key = stack.named("vault-seal", KEY)
    alias = stack.named("vault-seal", ALIAS)
    assert key.inputs["multiRegion"] is True and key.inputs["enableKeyRotation"] is True
    assert key.urn in alias.dependencies and alias.inputs["name"] == f"alias/{load(stack.stack, ROOT).spec.cluster.name}-vault-seal"
    # Losing the key loses Vault: protected wherever the cluster is.
    assert key.protect == (stack.stack == "prod")


def test_a_new_stack_seals_with_the_multi_region_key_only(built_since):
    config = seal_config(built_since)
    assert 'seal "awskms" {\n  region = "eu-west-1"\n  kms_key_id = "alias/shop-prod-vault-seal"\n}' in config
    assert config.count('seal "awskms"') == 1 and "disabled" not in config
    assert not [r for r in built_since if r.type == KEY and r.name == "vault-unseal"]
    [statement] = unseal_statements(built_since)
    assert statement["Resource"].startswith("arn:aws:kms:eu-west-1:") and ":key/mrk-" in statement["Resource"]
    assert built_since.named("vault-seal", KEY).urn in built_since.named("vault-unseal-kms", "aws:iam/rolePolicy:RolePolicy").dependencies


def test_the_replica_is_in_the_copy_region_with_the_stacks_provider_only_with_a_copy(prod, dev, built_since):
    for rec in (prod, built_since):
        replica = rec.named("vault-seal-replica", REPLICA)
        key = rec.named("vault-seal", KEY)
        assert replica.inputs["region"] == "eu-central-1" and key.urn in replica.dependencies
        assert replica.inputs["primaryKeyArn"].startswith("arn:aws:kms:eu-west-1:") and ":key/mrk-" in replica.inputs["primaryKeyArn"]
        # KMS replicates only within the account: the stack's own provider, not the copy bucket's.
        assert replica.provider_urn == key.provider_urn and replica.protect
        alias = rec.named("vault-seal-replica", ALIAS)
        assert (alias.inputs["region"], alias.inputs["name"]) == ("eu-central-1", "alias/shop-prod-vault-seal") and replica.urn in alias.dependencies
        policy = json.loads(replica.inputs["policy"])["Statement"]
        assert [s["Sid"] for s in policy] == ["AccountAdministers"] and policy[0]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert not dev.of_type(REPLICA)


def test_a_copy_account_may_unseal_with_the_replica(scratch):
    scratch.edit("stacks/prod.yaml", lambda d: d["backup"]["copyTo"].update(roleArn="arn:aws:iam::999988887777:role/backup-copy"))
    rec = run("prod", scratch.root)
    replica = rec.named("vault-seal-replica", REPLICA)
    assert replica.provider_urn == rec.named("vault-seal", KEY).provider_urn != rec.named("velero-copy", "aws:s3/bucket:Bucket").provider_urn
    [admin, recovery] = json.loads(replica.inputs["policy"])["Statement"]
    assert recovery["Principal"] == {"AWS": "arn:aws:iam::999988887777:root"} and recovery["Action"] == ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]


def test_a_recovery_stack_unseals_with_the_given_key_and_creates_none(scratch):
    without_legacy(scratch, "prod", unsealKeyArn=MRK)
    # Without copyTo: another stack's key gets no replica here (test_recovery_stack.py).
    scratch.edit("stacks/prod.yaml", lambda d: d["backup"].pop("copyTo"))
    rec = run("prod", scratch.root)
    assert not [r for r in rec.of_type(KEY) if r.name.startswith("vault-")]
    assert not [r for r in rec.of_type(ALIAS) if r.name.startswith("vault-")] and not rec.of_type(REPLICA)
    assert f'kms_key_id = "{MRK}"' in seal_config(rec) and seal_config(rec).count('seal "awskms"') == 1
    # The server's role may use that key and nothing else.
    assert unseal_statements(rec) == [{"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": MRK}]


def test_an_existing_stack_keeps_its_old_key_through_the_migration(prod, scratch):
    """legacyUnsealKey: the single-Region key keeps its name (never replaced); Vault's seal moves only when told."""
    old = prod.named("vault-unseal", KEY)
    assert "multiRegion" not in old.inputs and old.protect and prod.named("vault-unseal", ALIAS).inputs["name"] == "alias/shop-prod-vault-unseal"
    # active: Vault still seals with the old key only.
    assert 'kms_key_id = "alias/shop-prod-vault-unseal"' in seal_config(prod) and seal_config(prod).count('seal "awskms"') == 1
    [statement] = unseal_statements(prod)
    assert statement["Resource"].startswith("arn:aws:kms:eu-west-1:") and ":key/mrk-" not in statement["Resource"]
    assert old.urn in prod.named("vault-unseal-kms", "aws:iam/rolePolicy:RolePolicy").dependencies
    scratch.edit("stacks/prod.yaml", lambda d: d["addons"]["vault"]["settings"].update(legacyUnsealKey="migrating"))
    migrating = run("prod", scratch.root)
    config = seal_config(migrating)
    new, previous = config.split('seal "awskms"')[1:]
    assert 'kms_key_id = "alias/shop-prod-vault-seal"' in new and "disabled" not in new
    assert 'kms_key_id = "alias/shop-prod-vault-unseal"' in previous and 'disabled = "true"' in previous
    assert [":key/mrk-" in s["Resource"] for s in unseal_statements(migrating)] == [True, False]
    scratch.edit("stacks/prod.yaml", lambda d: d["addons"]["vault"]["settings"].update(legacyUnsealKey="retired"))
    retired = run("prod", scratch.root)
    assert retired.named("vault-unseal", KEY).protect and "alias/shop-prod-vault-unseal" not in seal_config(retired)
    assert [":key/mrk-" in s["Resource"] for s in unseal_statements(retired)] == [True]


def test_server_service_account_gets_the_role_by_pod_identity(stack):
    role = stack.named("vault-unseal", "aws:iam/role:Role")
    assert "pods.eks.amazonaws.com" in role.inputs["assumeRolePolicy"]
    association = stack.named("vault-server", "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert association.inputs["namespace"] == vault.NAMESPACE
    assert association.inputs["serviceAccount"] == vault.SERVICE_ACCOUNT == values(stack)["server"]["serviceAccount"]["name"]
    assert role.urn in association.dependencies
    # Pods that start before their credentials, key alias or permissions exist cannot unseal.
    release = stack.named("vault-vault", RELEASE)
    for name, type_ in (
        ("vault-server", association.type),
        ("vault-unseal-kms", "aws:iam/rolePolicy:RolePolicy"),
        ("vault-unseal", ALIAS),
        ("vault-seal", ALIAS),
    ):
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
    assert "disabled" not in config and 'disabled = "true"' in vault.raft_config(1, "us-east-1", "alias/new", "alias/old")
    assert "disable_mlock = true" in config and 'service_registration "kubernetes" {}' in config


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"replicas": 2}, "addons.vault.settings.replicas: 2 replicas: raft needs an odd number of voters"),
        ({"replicas": 7}, "addons.vault.settings.replicas: Input should be less than or equal to 5"),
        ({"replica": 3}, "addons.vault.settings.replica: unknown key 'replica'; allowed keys: legacyUnsealKey, replicas, storageGib, unsealKeyArn"),
        (
            {"unsealKeyArn": "alias/shop-prod-vault-seal"},
            "addons.vault.settings: unsealKeyArn: 'alias/shop-prod-vault-seal' is not the key ARN of a multi-Region KMS key",
        ),
        (
            {"unsealKeyArn": "arn:aws:kms:eu-west-1:444455556666:key/0123abcd-0123-4567-89ab-0123456789ab"},
            "addons.vault.settings: unsealKeyArn: 'arn:aws:kms:eu-west-1:444455556666:key/0123abcd-0123-4567-89ab-0123456789ab' is not the key ARN of a multi-Region KMS key",
        ),
        ({"unsealKeyArn": MRK.replace("eu-west-1", "eu-central-1")}, "is in region 'eu-central-1'; this stack runs in 'eu-west-1'"),
        ({"unsealKeyArn": MRK.replace("444455556666", "4444")}, "is not the key ARN of a multi-Region KMS key"),
        ({"unsealKeyArn": MRK, "legacyUnsealKey": "active"}, "addons.vault.settings: legacyUnsealKey: a stack that unseals with another stack's key"),
        ({"legacyUnsealKey": "gone"}, "addons.vault.settings.legacyUnsealKey: Input should be 'active', 'migrating' or 'retired'"),
    ],
)
def test_bad_settings_are_refused(scratch, settings, message):
    scratch.edit("stacks/prod.yaml", lambda d: d["addons"]["vault"].update(settings=settings))
    if "unsealKeyArn" in settings:
        # With another stack's key there is no copy (test_recovery_stack.py): the key's own problems show.
        scratch.edit("stacks/prod.yaml", lambda d: d["backup"].pop("copyTo"))
    with pytest.raises(SpecError) as err:
        load("prod", scratch.root)
    assert "stacks/prod.yaml: addons.vault.settings" in str(err.value) and message in str(err.value)


def test_preview_refuses_a_bad_unseal_key_naming_file_and_key(scratch, capsys):
    from engine.preview import main as preview

    scratch.edit("stacks/prod.yaml", lambda d: d["addons"]["vault"].update(settings={"unsealKeyArn": "arn:aws:kms:eu-west-1:444455556666:alias/x"}))
    scratch.edit("stacks/prod.yaml", lambda d: d["backup"].pop("copyTo"))
    assert preview(["prod", "--root", str(scratch.root), "--out", str(scratch.root / "out")]) == 2
    err = capsys.readouterr().err
    assert "stacks/prod.yaml: addons.vault.settings: unsealKeyArn:" in err and "Traceback" not in err
    assert not (scratch.root / "out").exists() or not any((scratch.root / "out").iterdir())
