"""The Vault raft snapshot job and the backup alerts."""

from __future__ import annotations

import json
import re

import pytest
from conftest import ROOT

from components.backup import alerts, vault_snapshot
from components.spec import load
from components.spec.backup import BackupSpec
from components.versions import AWS_CLI_IMAGE, VAULT, VAULT_IMAGE
from engine import chart_values
from engine.conformance import errors
from engine.stacks import run

POLICY = "aws:iam/rolePolicy:RolePolicy"
VAULT_ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
VAULT_POLICY = "vault:index/policy:Policy"
ALERTING = load("prod", ROOT).spec.alerting


def job(rec) -> dict:
    return rec.manifest("CronJob", vault_snapshot.NAME, "velero")


def pod(rec) -> dict:
    return job(rec)["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def bucket(rec) -> str:
    return rec.named("velero-backups", "aws:s3/bucket:Bucket").inputs["bucket"]


def test_job_runs_on_the_stacks_schedule_one_at_a_time(stack):
    spec = load(stack.stack, ROOT).spec.backup
    cron = job(stack)["spec"]
    assert cron["schedule"] == spec.schedules.vault_snapshot and cron["concurrencyPolicy"] == "Forbid"
    assert job(stack)["metadata"]["labels"][vault_snapshot.BACKS_UP] == "vault"
    assert errors(job(stack), "1.35") == []


def test_snapshot_is_taken_with_a_short_lived_vault_audience_token(stack):
    spec = pod(stack)
    assert spec["serviceAccountName"] == vault_snapshot.SERVICE_ACCOUNT and spec["automountServiceAccountToken"] is False
    [snapshot] = spec["initContainers"]
    script = snapshot["command"][-1]
    assert "auth/kubernetes/login role=vault-snapshot jwt=@/var/run/secrets/vault/token" in script
    assert script.endswith("vault operator raft snapshot save /snapshot/vault.snap")
    assert {"name": "VAULT_ADDR", "value": "https://vault-active.vault.svc:8200"} in snapshot["env"]
    [token] = [v for v in spec["volumes"] if v["name"] == "vault-token"]
    source = token["projected"]["sources"][0]["serviceAccountToken"]
    assert source["audience"] == "vault" and source["expirationSeconds"] <= 600


def test_job_logs_in_with_its_own_vault_role_that_may_only_read_snapshots(stack):
    role = stack.named(vault_snapshot.NAME, VAULT_ROLE)
    assert role.inputs["roleName"] == vault_snapshot.VAULT_ROLE
    assert role.inputs["boundServiceAccountNames"] == [vault_snapshot.SERVICE_ACCOUNT] and role.inputs["boundServiceAccountNamespaces"] == ["velero"]
    assert role.inputs["audience"] == "vault" and role.inputs["tokenTtl"] == role.inputs["tokenMaxTtl"] == 600
    policy = stack.named(vault_snapshot.NAME, VAULT_POLICY)
    assert role.inputs["tokenPolicies"] == [policy.inputs["name"]] == [vault_snapshot.VAULT_ROLE] and policy.urn in role.dependencies
    # One path, read only: `vault operator raft snapshot save` and nothing else.
    assert re.findall(r'path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]\s*\}', policy.inputs["policy"]) == [("sys/storage/raft/snapshot", '"read"')]
    assert policy.inputs["policy"].count("path ") == 1


def test_snapshot_role_goes_the_teams_way_and_exists_before_the_job(stack):
    """One provider and one auth method for every Vault role; the role after the method's config, the job after the role."""
    [provider] = stack.of_type("pulumi:providers:vault")
    [auth] = stack.of_type("vault:index/authBackend:AuthBackend")
    [config] = stack.of_type("vault:kubernetes/authBackendConfig:AuthBackendConfig")
    roles = stack.of_type(VAULT_ROLE)
    assert {r.inputs["roleName"] for r in roles} >= {vault_snapshot.VAULT_ROLE, "team-checkout"}
    for role in roles:
        assert role.provider_urn == provider.urn and role.inputs["backend"] == auth.inputs["path"] and config.urn in role.dependencies
    cronjob = next(r for r in stack.kubernetes_objects() if r.kind == "CronJob" and r.metadata["name"] == vault_snapshot.NAME)
    assert stack.named(vault_snapshot.NAME, VAULT_ROLE).urn in cronjob.dependencies
    assert vault_snapshot.vault_role("velero").namespace == "velero"


def test_velero_without_vault_declares_no_vault_role(scratch):
    def off(d):
        d["addons"]["vault"] = {"enabled": False}
        d["addons"]["external-secrets"] = {"enabled": False}

    scratch.edit("stacks/dev.yaml", off)
    for service in scratch.service_files():
        scratch.edit(service, lambda d: d.pop("secrets", None))
    rec = run("dev", scratch.root)
    assert not [r for r in rec if r.type.startswith("vault:") or r.type == "pulumi:providers:vault"]
    assert not [r for r in rec.kubernetes_objects() if r.kind == "CronJob"]
    assert [r for r in rec.kubernetes_objects() if r.kind == "Schedule"]


def test_velero_declared_before_vault_still_installs_after_it(scratch):
    # Declaration order is the install order's tie-break: Velero first would find Vault's access unconnected.
    scratch.edit("stacks/dev.yaml", lambda d: d.update(addons={"velero": d["addons"].pop("velero"), **d["addons"]}))
    assert next(iter(scratch.read("stacks/dev.yaml")["addons"])) == "velero"
    rec = run("dev", scratch.root)
    assert rec.named(vault_snapshot.NAME, VAULT_ROLE)


def test_snapshot_talks_tls_to_vault_and_trusts_only_its_ca(stack):
    """Vault listens on TLS only: the job verifies it against the CA of the issuer that signs Vault's
    listener, carried (ca.crt) by a certificate from that issuer in the job's own namespace."""
    spec = pod(stack)
    [snapshot] = spec["initContainers"]
    env = {e["name"]: e["value"] for e in snapshot["env"]}
    assert env["VAULT_ADDR"].startswith("https://") and env["VAULT_CACERT"] == f"{vault_snapshot.CA_DIR}/ca.crt"
    assert {"name": "vault-ca", "mountPath": vault_snapshot.CA_DIR, "readOnly": True} in snapshot["volumeMounts"]
    [ca] = [v for v in spec["volumes"] if v["name"] == "vault-ca"]
    # Only the CA enters the pod, never the certificate's private key.
    assert ca["secret"]["secretName"] == vault_snapshot.CA_SECRET and ca["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    cert = stack.manifest("Certificate", vault_snapshot.CA_SECRET, "velero")["spec"]
    listener = stack.manifest("Certificate", "vault-tls", "vault")["spec"]
    assert cert["secretName"] == vault_snapshot.CA_SECRET and cert["issuerRef"] == listener["issuerRef"]
    assert errors(stack.manifest("Certificate", vault_snapshot.CA_SECRET, "velero"), "1.35") == []
    # The job's pod starts after the certificate exists (its Secret is a volume).
    cronjob = next(r for r in stack.kubernetes_objects() if r.kind == "CronJob" and r.inputs["metadata"]["name"] == vault_snapshot.NAME)
    certificate = next(r for r in stack.kubernetes_objects() if r.kind == "Certificate" and r.inputs["metadata"]["name"] == vault_snapshot.CA_SECRET)
    assert certificate.urn in cronjob.dependencies


def test_snapshot_goes_to_the_backup_bucket_under_its_key(stack):
    [upload] = pod(stack)["containers"]
    env = {e["name"]: e["value"] for e in upload["env"]}
    assert env["BUCKET"] == bucket(stack) and env["KMS_KEY_ARN"].startswith("arn:aws:kms:eu-west-1:")
    script = upload["command"][-1]
    assert "s3://${BUCKET}/vault-snapshots/" in script and '--sse aws:kms --sse-kms-key-id "${KMS_KEY_ARN}"' in script


def test_pods_are_restricted(stack):
    spec = pod(stack)
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["initContainers"] + spec["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["limits"]["memory"]


def test_images_are_pinned_and_pulled_through_the_mirror(stack):
    mirror = load(stack.stack, ROOT).spec.backup.image_mirror
    images = [c["image"] for c in pod(stack)["initContainers"] + pod(stack)["containers"]]
    assert images == [mirror + "hashicorp/vault:2.0.4", mirror + "aws-cli/aws-cli:2.36.15"]
    # The CLI is the server version the Vault chart installs.
    assert VAULT_IMAGE.rsplit(":", 1)[1] == chart_values.defaults(VAULT)["server"]["image"]["tag"]
    assert vault_snapshot.image("", AWS_CLI_IMAGE) == AWS_CLI_IMAGE


def test_role_may_only_put_snapshots_with_the_backup_key(stack):
    [put, kms] = json.loads(stack.named(vault_snapshot.NAME, POLICY).inputs["policy"])["Statement"]
    assert put == {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": f"arn:aws:s3:::{bucket(stack)}/vault-snapshots/*"}
    assert kms["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"] and kms["Resource"].startswith("arn:aws:kms:")
    identity = stack.named(vault_snapshot.NAME, "aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs
    assert (identity["namespace"], identity["serviceAccount"]) == ("velero", vault_snapshot.SERVICE_ACCOUNT)
    cron = next(r for r in stack.kubernetes_objects() if r.kind == "CronJob")
    assert stack.named(vault_snapshot.NAME, "aws:eks/podIdentityAssociation:PodIdentityAssociation").urn in cron.dependencies


def test_no_vault_no_snapshot_alerts():
    spec = BackupSpec.model_validate({"retention": "30d"})
    assert not [r for r in alerts.rules(spec, "velero", {}, vault=False, alerting=ALERTING) if r["alert"].startswith("Vault")]
    assert len([r for r in alerts.rules(spec, "velero", {}, vault=True, alerting=ALERTING) if r["alert"].startswith("Vault")]) == 2


# -- alerts -------------------------------------------------------------------------------------


def rules(rec) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for rule in rec.manifest("PrometheusRule", "backup", "monitoring")["spec"]["groups"][0]["rules"]:
        found.setdefault(rule["alert"], []).append(rule)
    return found


def test_alerts_cover_failed_old_and_failing_backups(stack):
    found = rules(stack)
    assert set(found) == {
        "VeleroBackupFailed",
        "VeleroBackupPartiallyFailed",
        "VeleroDown",
        "VeleroBackupTooOld",
        "VaultSnapshotTooOld",
        "VaultSnapshotJobFailing",
    }
    for rule in (r for group in found.values() for r in group):
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        # Routed to the platform team; one runbook, the restore runbook, covers every backup alert.
        assert rule["labels"]["team"] == ALERTING.platform_team
        assert rule["annotations"]["runbook_url"] == f"{ALERTING.repository_url}/docs/runbooks/restore.md"
    assert "velero_backup_failure_total" in found["VeleroBackupFailed"][0]["expr"]
    assert 'kube_job_status_failed{namespace="velero", job_name=~"vault-snapshot-.*"}' in found["VaultSnapshotJobFailing"][0]["expr"]
    assert errors(stack.manifest("PrometheusRule", "backup", "monitoring"), "1.35") == []


def test_too_old_means_two_missed_runs(stack):
    spec = load(stack.stack, ROOT).spec.backup
    ages = {r["labels"]["schedule"]: int(re.search(r"\) > (\d+)\)", r["expr"])[1]) for r in rules(stack)["VeleroBackupTooOld"]}
    assert ages == {"teams": 2 * 86400, "platform": 2 * {"dev": 6, "staging": 6, "prod": 4}[stack.stack] * 3600, "sealing-keys": 2 * 3600}
    [vault] = rules(stack)["VaultSnapshotTooOld"]
    assert 'kube_cronjob_status_last_successful_time{namespace="velero", cronjob="vault-snapshot"}' in vault["expr"]
    assert f"> {alerts.max_age_seconds(spec.schedules.vault_snapshot)})" in vault["expr"]
    assert alerts.max_age_seconds(spec.schedules.vault_snapshot) == {"dev": 12, "staging": 12, "prod": 2}[stack.stack] * 3600


@pytest.mark.parametrize("schedule, seconds", [("0 * * * *", 7200), ("30 1 * * 1", 14 * 86400)])
def test_thresholds_follow_the_schedule(schedule, seconds):
    spec = BackupSpec.model_validate({"retention": "30d", "schedules": {"vaultSnapshot": schedule}})
    [rule] = [r for r in alerts.rules(spec, "velero", {}, vault=True, alerting=ALERTING) if r["alert"] == "VaultSnapshotTooOld"]
    assert f"> {seconds})" in rule["expr"] and f"< time() - {seconds})" in rule["expr"]
