"""docs/runbooks/restore.md names what the platform really creates: buckets, keys, schedules, jobs,
namespaces, Vault roles. A renamed schedule or bucket fails here until the runbook follows."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

from components.addons import prometheus, sealed_secrets, vault, velero
from components.aws import seal
from components.backup import data_mover, vault_snapshot
from components.backup.alerts import rules
from components.spec import load
from components.spec.backup import BackupSpec, RestoreSource

RUNBOOK = ROOT / "docs" / "runbooks" / "restore.md"
TEXT = RUNBOOK.read_text()


def rendered(rec) -> dict[str, set[str]]:
    objects = rec.kubernetes_objects()
    return {
        "Schedule": {o.metadata["name"] for o in objects if o.kind == "Schedule" and o.inputs["apiVersion"] == "velero.io/v1"},
        "CronJob": {o.metadata["name"] for o in objects if o.kind == "CronJob"},
        "Namespace": {o.metadata["name"] for o in objects if o.kind == "Namespace"},
        "BackupStorageLocation": {o.metadata["name"] for o in objects if o.kind == "BackupStorageLocation"},
        "bucket": {b.inputs["bucket"] for b in rec.of_type("aws:s3/bucket:Bucket") if b.name.startswith("velero-")},
    }


@pytest.fixture(scope="module")
def prod_names(prod):
    return rendered(prod)


def found(pattern: str) -> set[str]:
    return set(re.findall(pattern, TEXT))


def test_every_schedule_the_runbook_restores_from_exists_and_every_schedule_is_in_it(prod_names):
    named = found(r"--from-schedule ([a-z-]+)") | found(r"schedule-name=([a-z-]+)") | found(r"Velero Schedule `([a-z-]+)`")
    assert named == prod_names["Schedule"] == {"teams", "platform", "sealing-keys"}


def test_buckets_and_prefixes_are_the_rendered_ones(prod, dev, prod_names):
    buckets = found(r"s3://([a-z0-9-]+)/") | found(r"`(shop-[a-z]+-backup-[a-z0-9-]+)`") | found(r"arn:aws:s3:::([a-z0-9-]+)")
    assert buckets == prod_names["bucket"] == {"shop-prod-backup-eu-west-1", "shop-prod-backup-eu-central-1"}
    assert rendered(dev)["bucket"] == {b.replace("shop-prod", "shop-dev") for b in buckets if b.endswith("eu-west-1")}
    prefixes = found(r"s3://[a-z0-9-]+/([a-z-]+)/") | found(r"--prefix ([a-z-]+)")
    assert prefixes == {vault_snapshot.SNAPSHOT_PREFIX, velero.VELERO_PREFIX}
    keys = found(r"`alias/(shop-prod-backup-[a-z0-9-]+)`")
    assert keys == {a.inputs["name"].removeprefix("alias/") for a in prod.of_type("aws:kms/alias:Alias") if a.name.startswith("velero-")}
    # Vault's seal key: the alias the stack's key and its copy-region replica carry, and the setting a recovery stack sets.
    seal_aliases = {(a.inputs.get("region", "eu-west-1"), a.inputs["name"]) for a in prod.of_type("aws:kms/alias:Alias") if a.name.startswith("vault-seal")}
    assert seal_aliases == {("eu-west-1", seal.seal_alias("shop-prod")), ("eu-central-1", seal.seal_alias("shop-prod"))}
    assert f"`{seal.seal_alias('shop-prod')}`" in TEXT and f"`{seal.legacy_alias('shop-prod')}`" in TEXT
    assert f"aws kms describe-key --region eu-central-1 --key-id {seal.seal_alias('shop-prod')} " in TEXT
    assert "unsealKeyArn: arn:aws:kms:eu-central-1:444455556666:key/mrk-" in TEXT and "unsealKeyArn" in vault.VaultSettings.model_json_schema()["properties"]


def test_namespaces_jobs_and_locations_exist(prod_names):
    namespaces = found(r"-n ([a-z-]+) ") | found(r"--include-namespaces ([a-z,-]+)")
    namespaces = {n for entry in namespaces for n in entry.split(",")}
    # `checkout` is the example team namespace.
    assert namespaces <= prod_names["Namespace"] and "checkout" in prod_names["Namespace"]
    assert found(r"cronjob/([a-z-]+)") == prod_names["CronJob"] == {vault_snapshot.NAME}
    assert found(r"storage location is `([a-z]+)`") == prod_names["BackupStorageLocation"]
    platform = found(r"Platform state: namespaces (.*?) \|")
    assert {n.strip("`, ") for n in platform.pop().split(", ")} == set(velero.namespaces(load("prod", ROOT))["platform"])


def test_the_snapshot_role_is_no_manual_step_and_the_checks_match_the_render(prod):
    # Declared by the program: the runbook writes no Vault policy or role by hand.
    assert "vault policy write" not in TEXT and not re.search(r"vault write auth/[a-z-]+/role", TEXT)
    [role] = [r.inputs for r in prod.of_type("vault:kubernetes/authBackendRole:AuthBackendRole") if r.inputs["roleName"] == vault_snapshot.VAULT_ROLE]
    assert f"vault read auth/{role['backend']}/role/{role['roleName']} " in TEXT
    assert f"vault policy read {role['tokenPolicies'][0]} " in TEXT
    [policy] = [r.inputs["policy"] for r in prod.of_type("vault:index/policy:Policy") if r.inputs["name"] == role["tokenPolicies"][0]]
    assert f'path "{vault_snapshot.SNAPSHOT_PATH}" {{ capabilities = ["read"] }}' in TEXT and vault_snapshot.SNAPSHOT_PATH in policy
    bindings = f"bound_service_account_names [{role['boundServiceAccountNames'][0]}], namespaces [{role['boundServiceAccountNamespaces'][0]}]"
    assert bindings in TEXT and f"audience `{role['audience']}`" in TEXT
    assert f"svc/{vault.ACTIVE_SERVICE}" in TEXT
    assert "vault operator raft snapshot restore -force" in TEXT


def test_sealing_key_and_controller_names_match():
    assert f"-l {velero.SEALING_KEY_LABEL}" in TEXT
    assert f"deployment/{sealed_secrets.CONTROLLER_NAME}" in TEXT
    assert f"prometheus {prometheus.RELEASE}-prometheus " in TEXT


def test_alerts_named_in_the_runbook_exist(prod):
    stack = load("prod", ROOT).spec
    alerts = {r["alert"] for r in rules(stack.backup, velero.NAMESPACE, velero.SCHEDULES, vault=True, alerting=stack.alerting)}
    assert found(r"`((?:Velero|Vault)[A-Za-z]+)`") == alerts


def test_restore_order_is_vault_keys_platform_teams():
    section = TEXT.split("## A lost cluster")[1].split("### The region")[0]
    steps = [section.index(f"**{step}**") for step in ("Vault", "Sealing keys", "Platform state", "Teams")]
    assert steps == sorted(steps)


def test_the_region_loss_procedure_matches_the_data_mover():
    backup = load("prod", ROOT).spec.backup
    key = backup.repository_password.config
    copy = backup.copy_to.bucket_name or f"shop-prod-backup-{backup.copy_to.region}"
    assert backup.moves_data and f"Secret `velero/{data_mover.REPO_SECRET}`" in TEXT
    assert f"(prod: `{key}`)" in TEXT and f"repositoryPassword: {{config: {key}}}" in TEXT
    assert re.search(rf"for key in [^;]*\b{key}\b[^;]*; do pulumi config set --secret ", TEXT)
    assert f"`{velero.VELERO_PREFIX}/{data_mover.KOPIA_DIR}/<namespace>/`" in TEXT
    # The new stack reads the copy through the typed setting, whose keys are the model's.
    # The recovery stack's one block (tests/test_recovery_stack.py builds and renders it).
    [stack] = [b for b in re.findall(r"```yaml\n(.*?)```", TEXT, re.S) if "restoreFrom:" in b]
    block = re.search(r"^   backup:\n((?:    .*\n)+)", stack, re.M).group(1)
    declared = set(re.findall(r"^     ([a-zA-Z]+):", block, re.M)) | set(re.findall(r"^       ([a-zA-Z]+):", block, re.M))
    fields = {f.alias for f in BackupSpec.model_fields.values()} | {f.alias for f in RestoreSource.model_fields.values()}
    assert {"restoreFrom", "kmsKeyArn", "moveData"} <= declared <= fields
    assert f"       bucketName: {copy}\n       region: {backup.copy_to.region}\n" in block
    assert f"--storage-location {velero.RESTORE_LOCATION}" in TEXT and f"backup-location get {velero.RESTORE_LOCATION}" in TEXT
    assert "moveData: true" in block and "kubectl -n velero get datadownloads" in TEXT
