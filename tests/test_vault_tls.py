"""Vault serves TLS only: a cert-manager certificate on its listener, clients that verify it."""

from __future__ import annotations

import json
import re

import pytest

from components.addons import external_secrets as eso
from components.addons import vault
from components.addons.cert_manager import CA_ISSUER
from components.spec import load
from components.vault_access import provider_address
from engine.render import manifest_files

RELEASE = "kubernetes:helm.sh/v3:Release"
PLAIN_HTTP_VAULT = re.compile(r"http://vault[-.a-z0-9]*(:8200)?|tls_disable\s*=\s*(1|true)", re.I)


def vault_values(stack):
    return next(r for r in stack.of_type(RELEASE) if r.inputs.get("name") == "vault").inputs["values"]


def test_the_listener_certificate_comes_from_the_internal_ca(stack):
    cert = stack.manifest("Certificate", vault.TLS_SECRET, vault.NAMESPACE)["spec"]
    assert cert["issuerRef"] == {"name": CA_ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"}
    assert cert["secretName"] == vault.TLS_SECRET
    for name in ("vault.vault.svc", "*.vault-internal", "vault-active.vault.svc"):
        assert name in cert["dnsNames"]
    assert {"server auth", "client auth"} <= set(cert["usages"])
    # The internal CA exists in every environment, prod included.
    assert stack.manifest("ClusterIssuer", CA_ISSUER)["spec"] == {"ca": {"secretName": "platform-ca"}}


def test_the_release_waits_for_the_certificate(stack):
    release = next(r for r in stack.of_type(RELEASE) if r.inputs.get("name") == "vault")
    cert = stack.named(f"vault-certificate-{vault.TLS_SECRET}", "kubernetes:cert-manager.io/v1:Certificate")
    assert cert.urn in release.dependencies


def test_the_server_listens_with_the_certificate(stack):
    values = vault_values(stack)
    assert values["global"]["tlsDisable"] is False
    config = values["server"]["ha"]["raft"]["config"]
    assert f'tls_cert_file = "{vault.TLS_DIR}/tls.crt"' in config and f'tls_key_file = "{vault.TLS_DIR}/tls.key"' in config
    assert f'leader_ca_cert_file = "{vault.TLS_DIR}/ca.crt"' in config
    assert values["server"]["volumes"][0]["secret"]["secretName"] == vault.TLS_SECRET
    assert values["server"]["volumeMounts"][0]["mountPath"] == vault.TLS_DIR
    assert values["server"]["extraEnvironmentVars"]["VAULT_CACERT"] == f"{vault.TLS_DIR}/ca.crt"


def test_every_team_store_verifies_vault_with_its_ca(stack):
    stores = [r for r in stack.kubernetes_objects() if r.kind == "SecretStore"]
    assert stores, "the sample teams have stores"
    for store in stores:
        team = store.inputs["metadata"]["namespace"]
        provider = store.inputs["spec"]["provider"]["vault"]
        assert provider["server"].startswith("https://")
        # A namespaced store reads its CA from its own namespace: a certificate of Vault's issuer there.
        assert provider["caProvider"] == {"type": "Secret", "name": eso.TEAM_CA_SECRET, "key": "ca.crt"}
        cert = stack.manifest("Certificate", eso.TEAM_CA_SECRET, team)["spec"]
        assert cert["secretName"] == eso.TEAM_CA_SECRET
        assert cert["issuerRef"] == {"name": CA_ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"}
        assert stack.named(f"{team}-vault-ca", "kubernetes:cert-manager.io/v1:Certificate").urn in store.dependencies


def test_pulumi_vault_talks_to_vault_over_tls(stack):
    # One provider for the whole program, the vault addon's.
    [provider] = stack.of_type("pulumi:providers:vault")
    assert provider.name == "vault-provider"
    assert provider.inputs["address"] == vault.VAULT_ADDR and provider.inputs["address"].startswith("https://")
    assert provider.inputs.get("skipTlsVerify") in (False, "false")
    # Everything pulumi-vault declares goes through that provider, none through an ambient default one.
    declared = [r for r in stack.resources if r.type.startswith("vault:")]
    assert declared and all(r.provider_urn == provider.urn for r in declared)


def test_a_plain_http_vault_provider_address_is_refused():
    with pytest.raises(ValueError, match="https"):
        provider_address("http://vault.vault.svc:8200")
    assert provider_address("https://vault.vault.svc:8200") == "https://vault.vault.svc:8200"


@pytest.mark.parametrize("address", ["http://vault.deploy.internal:8200", "https://", "vault.deploy.internal:8200", 8200])
def test_a_plain_http_vault_address_in_stack_config_is_a_declaration_error(scratch, capsys, address):
    config = scratch.read("Pulumi.prod.yaml")
    config["config"]["platform:vaultAddress"] = address
    scratch.write("Pulumi.prod.yaml", config)
    err = scratch.rejected(capsys, "prod")
    assert "Pulumi.prod.yaml: config.platform:vaultAddress: " in err and "is not an https:// address" in err


def test_an_https_vault_address_in_stack_config_is_used(scratch):
    config = scratch.read("Pulumi.prod.yaml")
    config["config"]["platform:vaultAddress"] = "https://vault.deploy.internal:8200"
    scratch.write("Pulumi.prod.yaml", config)
    assert load("prod", scratch.root).stack == "prod"


def test_no_plain_http_vault_address_remains(stack):
    rendered = [json.dumps(obj) for obj in manifest_files(stack).values()]
    rendered += [json.dumps(r.inputs) for r in stack.of_type(RELEASE)]
    found = [m.group(0) for text in rendered for m in PLAIN_HTTP_VAULT.finditer(text)]
    assert found == []


def test_the_grep_finds_a_plain_address():
    assert PLAIN_HTTP_VAULT.search('{"server": "http://vault.vault.svc:8200"}')
    assert PLAIN_HTTP_VAULT.search('listener "tcp" {\n  tls_disable = 1\n}')
    assert not PLAIN_HTTP_VAULT.search('{"server": "https://vault.vault.svc:8200"}')
