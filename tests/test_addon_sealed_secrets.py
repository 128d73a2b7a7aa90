"""Sealed Secrets: the controller where kubeseal finds it, and declared ciphertexts as SealedSecrets."""

from __future__ import annotations

import base64

import pytest
from conftest import ROOT, recorded

from components.addons import sealed_secrets
from components.spec import SpecError, load
from components.versions import SEALED_SECRETS
from engine import chart_values
from engine.conformance import errors
from engine.stacks import run

RELEASE = "kubernetes:helm.sh/v3:Release"
NOTIFICATIONS = "stacks/services/messaging/notifications.yaml"


def ciphertext(plaintext_bytes: int = 40, rsa_bytes: int = 512) -> str:
    """Shaped like kubeseal's output: 2-byte length, RSA-encrypted session key, AES-GCM data and tag."""
    return base64.b64encode(rsa_bytes.to_bytes(2, "big") + bytes(range(256)) * (rsa_bytes // 256) + b"\x01" * (plaintext_bytes + 16)).decode()


def sealed(rec):
    return [r.inputs for r in rec.kubernetes_objects() if r.kind == "SealedSecret"]


def declared_webhook_token(root, stack: str) -> str:
    svc = next(s for s in load(stack, root).services if s.name == "notifications")
    return svc.sealed_secrets[0].encrypted_data["WEBHOOK_TOKEN"]


def test_controller_is_where_kubeseal_looks(stack):
    release = stack.named("sealed-secrets-sealed-secrets", RELEASE)
    assert (release.inputs["version"], release.inputs["namespace"]) == (SEALED_SECRETS.version, "sealed-secrets")
    values = release.inputs["values"]
    # kubeseal's default --controller-name; the namespace is passed as --controller-namespace.
    assert values["fullnameOverride"] == sealed_secrets.CONTROLLER_NAME == "sealed-secrets-controller"
    assert chart_values.unknown_keys(SEALED_SECRETS, values) == []
    assert stack.manifest("Namespace", sealed_secrets.NAMESPACE)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# Stacks whose notifications service takes its webhook token sealed; staging reads its own from Vault.
SEALED_STACKS = ("dev", "prod")


def test_staging_takes_the_token_from_vault_not_from_a_ciphertext(staging):
    assert sealed(staging) == []
    assert staging.manifest("ExternalSecret", "notifications-webhook", "messaging")["spec"]["data"] == [
        {"secretKey": "WEBHOOK_TOKEN", "remoteRef": {"key": "messaging/notifications/webhook", "property": "WEBHOOK_TOKEN"}}
    ]
    container = staging.manifest("Deployment", "notifications", "messaging")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "WEBHOOK_TOKEN", "valueFrom": {"secretKeyRef": {"name": "notifications-webhook", "key": "WEBHOOK_TOKEN"}}} in container["env"]


@pytest.mark.parametrize("name", SEALED_STACKS)
def test_declared_ciphertext_becomes_a_sealed_secret_in_the_team_namespace(name):
    stack = recorded(name)
    obj = stack.manifest("SealedSecret", "notifications-webhook", "messaging")
    assert obj["apiVersion"] == "bitnami.com/v1alpha1"
    assert obj["spec"]["encryptedData"] == {"WEBHOOK_TOKEN": declared_webhook_token(ROOT, stack.stack)}
    assert obj["spec"]["template"]["metadata"]["name"] == "notifications-webhook"
    assert obj["spec"]["template"]["metadata"]["namespace"] == "messaging"
    assert errors(obj, "1.35") == []
    assert len(sealed(stack)) == 1


def test_ciphertexts_are_per_cluster():
    assert declared_webhook_token(ROOT, "dev") != declared_webhook_token(ROOT, "prod")


@pytest.mark.parametrize("name", SEALED_STACKS)
def test_unsealed_secret_reaches_the_container_by_reference(name):
    stack = recorded(name)
    container = stack.manifest("Deployment", "notifications", "messaging")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "WEBHOOK_TOKEN", "valueFrom": {"secretKeyRef": {"name": "notifications-webhook", "key": "WEBHOOK_TOKEN"}}} in container["env"]
    deployment = next(r for r in stack.kubernetes_objects() if r.kind == "Deployment" and r.metadata["name"] == "notifications")
    secret = next(r for r in stack.kubernetes_objects() if r.kind == "SealedSecret")
    assert secret.urn in deployment.dependencies


def test_a_new_ciphertext_rolls_the_pods(scratch, dev):
    before = dev.manifest("Deployment", "notifications", "messaging")["spec"]["template"]["metadata"]["annotations"]["platform.io/config-checksum"]
    scratch.edit(NOTIFICATIONS, lambda d: d["envs"]["dev"]["sealedSecrets"][0]["encryptedData"].update(WEBHOOK_TOKEN=ciphertext(41)))
    after = run("dev", scratch.root).manifest("Deployment", "notifications", "messaging")["spec"]["template"]["metadata"]["annotations"][
        "platform.io/config-checksum"
    ]
    assert before != after


def test_sealed_secret_needs_the_addon(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"].update({"sealed-secrets": {"enabled": False}}))
    with pytest.raises(SpecError) as err:
        load("dev", scratch.root)
    assert f"{NOTIFICATIONS}: sealedSecrets: needs the sealed-secrets addon, which is not enabled in this stack" in str(err.value)


def test_without_sealed_secrets_the_addon_can_be_off(scratch):
    scratch.edit(NOTIFICATIONS, lambda d: [overlay.pop("sealedSecrets", None) for overlay in d["envs"].values()])
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"].update({"sealed-secrets": {"enabled": False}}))
    rec = run("dev", scratch.root)
    assert sealed(rec) == [] and not [r for r in rec.of_type(RELEASE) if r.inputs["chart"] == "sealed-secrets"]


@pytest.mark.parametrize(
    "value, problem",
    [
        ("hunter2-plain-token", "WEBHOOK_TOKEN: not base64"),
        (base64.b64encode(b"a-plain-token-base64-encoded").decode(), "WEBHOOK_TOKEN: 28 bytes that are not a sealed value"),
        (ciphertext(rsa_bytes=512)[:400], "WEBHOOK_TOKEN: 300 bytes that are not a sealed value"),
    ],
)
def test_plain_values_are_refused(scratch, value, problem):
    scratch.edit(NOTIFICATIONS, lambda d: d["envs"]["dev"]["sealedSecrets"][0]["encryptedData"].update(WEBHOOK_TOKEN=value))
    with pytest.raises(SpecError) as err:
        load("dev", scratch.root)
    msg = str(err.value)
    assert f"{NOTIFICATIONS}: envs.dev.sealedSecrets[0].encryptedData: {problem}" in msg and "never the plain value" in msg


def test_keys_are_environment_variable_names(scratch):
    scratch.edit(NOTIFICATIONS, lambda d: d["envs"]["dev"]["sealedSecrets"][0].update(encryptedData={"webhook-token": ciphertext()}))
    with pytest.raises(SpecError, match="'webhook-token' is not a valid environment variable name"):
        load("dev", scratch.root)


def test_a_variable_comes_from_one_place(scratch):
    scratch.edit(NOTIFICATIONS, lambda d: d.update(env={"WEBHOOK_TOKEN": "x"}))
    with pytest.raises(SpecError, match=r"sealedSecrets\[0\]: \['WEBHOOK_TOKEN'\] already come from env"):
        load("dev", scratch.root)


def test_a_secret_name_has_one_source(scratch):
    def edit(d):
        d["envs"]["dev"]["sealedSecrets"].append({"name": "notifications-webhook", "encryptedData": {"OTHER_TOKEN": ciphertext()}})

    scratch.edit(NOTIFICATIONS, edit)
    with pytest.raises(SpecError, match=r"Secret name\(s\) \['notifications-webhook'\] used twice"):
        load("dev", scratch.root)


def test_kubeseal_output_of_any_key_size_is_accepted(scratch):
    scratch.edit(NOTIFICATIONS, lambda d: d["envs"]["dev"]["sealedSecrets"][0].update(encryptedData={"WEBHOOK_TOKEN": ciphertext(rsa_bytes=256)}))
    svc = next(s for s in load("dev", scratch.root).services if s.name == "notifications")
    assert list(svc.sealed_secrets[0].encrypted_data) == ["WEBHOOK_TOKEN"]
