"""cert-manager: the pinned CertManager component, its checked values, and the ClusterIssuers per environment."""

from __future__ import annotations

import pytest

from components.addons.cert_manager import (
    ACME_PROD_ISSUER,
    ACME_STAGING_ISSUER,
    CA_ISSUER,
    CA_SECRET,
    COMPONENT_TYPE,
    SELF_SIGNED_ISSUER,
    CertManager,
    chart_values,
    issuer_for,
)
from components.spec import SpecError, load
from components.versions import CERT_MANAGER
from engine import chart_values as checker
from engine import runtime, stacks

ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer"


def component(rec):
    [found] = rec.of_type(COMPONENT_TYPE)
    return found


def issuers(rec) -> dict[str, dict]:
    return {r.metadata["name"]: r.inputs for r in rec.of_type(ISSUER)}


# -- the component ----------------------------------------------------------------------------


def test_component_is_pinned_to_the_reference_chart(stack):
    cm = component(stack)
    assert cm.remote
    helm = cm.inputs["helmOptions"]
    assert (helm["chart"], helm["version"], helm["repositoryOpts"], helm["namespace"], helm["name"]) == (
        "cert-manager",
        "v1.21.1",
        {"repo": "https://charts.jetstack.io"},
        "cert-manager",
        "cert-manager",
    )
    assert helm["version"] == CERT_MANAGER.version


def test_crds_are_installed_and_kept_on_uninstall(stack):
    values = chart_values(component(stack).inputs)
    assert values["crds"] == {"enabled": True, "keep": True}
    # The deprecated switch is not used.
    assert "installCRDs" not in values


def test_every_value_exists_in_the_chart_defaults(stack):
    assert checker.unknown_keys(CERT_MANAGER, chart_values(component(stack).inputs)) == []


def test_a_misspelt_value_is_caught():
    inputs = {"helmOptions": {"values": {"crds": {"enabld": True}}}, "replicaCont": 2}
    assert sorted(checker.unknown_keys(CERT_MANAGER, chart_values(inputs))) == ["crds.enabld", "replicaCont"]


def test_chart_values_lays_typed_arguments_over_helm_options_values():
    inputs = {"helmOptions": {"version": "v1", "values": {"webhook": {"replicaCount": 1, "timeoutSeconds": 10}}}, "webhook": {"replicaCount": 3}}
    assert chart_values(inputs) == {"webhook": {"replicaCount": 3, "timeoutSeconds": 10}}


def test_high_availability_follows_the_settings(dev, prod):
    for rec, replicas in ((dev, 1), (prod, 2)):
        values = chart_values(component(rec).inputs)
        for part in (values, values["webhook"], values["cainjector"]):
            assert part["replicaCount"] == replicas
            assert part["podDisruptionBudget"] == {"enabled": replicas > 1}


def test_component_gets_the_clusters_kubernetes_provider(monkeypatch):
    # A remote component receives its providers as a map; the recording keeps only `provider`.
    seen = {}
    register = runtime.RecordingMonitor.RegisterResource

    def spy(self, request):
        if request.type == COMPONENT_TYPE:
            seen.update(request.providers)
        return register(self, request)

    monkeypatch.setattr(runtime.RecordingMonitor, "RegisterResource", spy)
    rec = stacks.run("dev")
    [k8s_provider] = [r for r in rec.of_type("pulumi:providers:kubernetes") if "cluster" in r.name]
    assert seen["kubernetes"].rsplit("::", 1)[0] == k8s_provider.urn


def test_namespace_enforces_restricted_pod_security(stack):
    ns = stack.manifest("Namespace", "cert-manager")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# -- issuers ----------------------------------------------------------------------------------


def test_dev_bootstraps_a_self_signed_ca(dev):
    found = issuers(dev)
    assert set(found) == {SELF_SIGNED_ISSUER, CA_ISSUER}
    assert found[SELF_SIGNED_ISSUER]["spec"] == {"selfSigned": {}}
    ca = dev.manifest("Certificate", CA_SECRET, "cert-manager")["spec"]
    assert ca["isCA"] is True
    assert ca["issuerRef"] == {"name": SELF_SIGNED_ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"}
    # The CA issuer signs with the key pair the bootstrap certificate wrote.
    assert found[CA_ISSUER]["spec"] == {"ca": {"secretName": ca["secretName"]}}


def test_dev_issuers_are_created_in_order_after_cert_manager(dev):
    cm = component(dev).urn
    selfsigned = dev.named(f"cert-manager-clusterissuer-{SELF_SIGNED_ISSUER}", ISSUER)
    certificate = dev.named(f"cert-manager-certificate-{CA_SECRET}", "kubernetes:cert-manager.io/v1:Certificate")
    ca = dev.named(f"cert-manager-clusterissuer-{CA_ISSUER}", ISSUER)
    assert cm in selfsigned.dependencies
    assert selfsigned.urn in certificate.dependencies
    assert certificate.urn in ca.dependencies


def test_prod_uses_lets_encrypt_staging_and_production(prod):
    found = issuers(prod)
    # Let's Encrypt for the public gateway; the internal CA for in-cluster TLS (Vault's listener).
    assert set(found) == {ACME_STAGING_ISSUER, ACME_PROD_ISSUER, SELF_SIGNED_ISSUER, CA_ISSUER}
    found = {name: issuer for name, issuer in found.items() if name.startswith("letsencrypt")}
    servers = {name: spec["spec"]["acme"]["server"] for name, spec in found.items()}
    assert servers == {
        ACME_STAGING_ISSUER: "https://acme-staging-v02.api.letsencrypt.org/directory",
        ACME_PROD_ISSUER: "https://acme-v02.api.letsencrypt.org/directory",
    }
    for name, issuer in found.items():
        acme = issuer["spec"]["acme"]
        assert acme["email"] == "platform-team@acme-shop.com"
        assert acme["privateKeySecretRef"] == {"name": f"{name}-account"}
        assert component(prod).urn in prod.named(f"cert-manager-clusterissuer-{name}", ISSUER).dependencies


def test_http01_is_solved_through_the_istio_ingress_without_a_sidecar():
    # Without a DNS zone in the stack, ACME challenges are answered over HTTP through the gateway.
    for issuer in (CertManager.acme(name, "ops@acme-shop.com") for name in (ACME_STAGING_ISSUER, ACME_PROD_ISSUER)):
        [solver] = issuer["acme"]["solvers"]
        ingress = solver["http01"]["ingress"]
        assert ingress["ingressClassName"] == "istio"
        assert ingress["podTemplate"]["metadata"]["labels"] == {"sidecar.istio.io/inject": "false"}


def test_the_gateway_issuer_per_environment():
    assert issuer_for("prod") == ACME_PROD_ISSUER
    assert issuer_for("dev") == issuer_for("staging") == CA_ISSUER


def test_the_gateway_issuer_exists_in_each_stack(dev, prod):
    assert issuer_for("dev") in issuers(dev)
    assert issuer_for("prod") in issuers(prod)


# -- settings ---------------------------------------------------------------------------------


def test_prod_without_an_acme_email_is_rejected(scratch):
    scratch.edit("stacks/prod.yaml", lambda d: d["addons"]["cert-manager"]["settings"].pop("acmeEmail"))
    with pytest.raises(SpecError, match=r"stacks/prod.yaml: addons.cert-manager.settings: acmeEmail is required in prod"):
        load("prod", scratch.root)


def test_a_malformed_acme_email_is_rejected(scratch):
    scratch.edit("stacks/prod.yaml", lambda d: d["addons"]["cert-manager"]["settings"].update(acmeEmail="platform"))
    with pytest.raises(SpecError, match=r"stacks/prod.yaml: addons.cert-manager.settings.acmeEmail: String should match pattern"):
        load("prod", scratch.root)


def test_dev_needs_no_acme_email(scratch):
    assert load("dev", scratch.root).spec.addons["cert-manager"].settings == {}
