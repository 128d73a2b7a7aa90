"""Public hosts end to end: a Route 53 zone per stack, ExternalDNS records in it, DNS-01 certificates through it."""

from __future__ import annotations

import json

import pytest

from components.spec import SpecError, load
from conftest import ROOT
from engine.stacks import run

RELEASE = "kubernetes:helm.sh/v3:Release"
ZONE = {"dev": "dev.acme-shop.com", "staging": "staging.acme-shop.com", "prod": "acme-shop.com"}


def release(rec, name):
    return next(r for r in rec.of_type(RELEASE) if r.inputs.get("name") == name)


def inline_policy(rec, role_name):
    doc = rec.named(f"{role_name}-inline", "aws:iam/rolePolicy:RolePolicy").inputs["policy"]
    return json.loads(doc)["Statement"]


def zone_of(rec):
    [zone] = rec.of_type("aws:route53/zone:Zone")
    return zone


def test_each_stack_has_its_zone(stack):
    zone = zone_of(stack)
    assert zone.inputs["name"] == ZONE[stack.stack]
    assert zone.protect == load(stack.stack, ROOT).spec.cluster.protect


def test_an_existing_zone_is_referenced_not_created(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["dns"].update(zoneId="Z0123456789ABCDEFGHIJ"))
    rec = run("dev", scratch.root)
    assert rec.of_type("aws:route53/zone:Zone") == []
    statements = inline_policy(rec, "external-dns-route53")
    assert statements[0]["Resource"] == ["arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"]


def test_external_dns_writes_the_gateways_hosts_into_the_zone(stack):
    values = release(stack, "external-dns").inputs["values"]
    assert values["provider"] == {"name": "aws"}
    assert values["sources"] == ["istio-gateway"]
    assert values["domainFilters"] == [ZONE[stack.stack]]
    assert values["txtOwnerId"] == load(stack.stack, ROOT).spec.cluster.name
    assert values["policy"] == "upsert-only"
    identity = stack.named("external-dns-identity", "aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs
    assert (identity["namespace"], identity["serviceAccount"]) == ("external-dns", "external-dns")


@pytest.mark.parametrize("role", ["external-dns-route53", "cert-manager-route53"])
def test_pod_identity_changes_only_the_stacks_zone(prod, role):
    zone_id = zone_of(prod).inputs.get("zoneId") or next(iter(prod.of_type("aws:route53/zone:Zone"))).name
    statements = inline_policy(prod, role)
    changes = [s for s in statements if "route53:ChangeResourceRecordSets" in s["Action"]]
    assert len(changes) == 1 and len(changes[0]["Resource"]) == 1
    assert changes[0]["Resource"][0].startswith("arn:aws:route53:::hostedzone/Z")
    # Wildcards only for the calls that have no resource-level permission.
    for s in statements:
        if s["Resource"] == ["*"]:
            assert set(s["Action"]) <= {"route53:ListHostedZones", "route53:ListHostedZonesByName"}
        if "route53:GetChange" in s["Action"]:
            assert s["Resource"] == ["arn:aws:route53:::change/*"]
    assert zone_id


def test_the_gateway_certificate_issues_by_dns01_in_the_zone(prod):
    certificate = prod.manifest("Certificate", "public", "istio-ingress")["spec"]
    assert certificate["issuerRef"]["name"] == "letsencrypt-prod"
    issuer = prod.manifest("ClusterIssuer", "letsencrypt-prod")["spec"]["acme"]
    [solver] = issuer["solvers"]
    assert solver["selector"] == {"dnsZones": ["acme-shop.com"]}
    assert solver["dns01"]["route53"]["hostedZoneID"].startswith("Z")
    assert all(h == "acme-shop.com" or h.endswith(".acme-shop.com") for h in certificate["dnsNames"])


def test_an_exposed_host_outside_the_zone_is_refused(scratch):
    # Even under a domain the stack serves (ingress.domains), a host outside the zone gets no record.
    scratch.edit("stacks/dev.yaml", lambda d: d["ingress"]["domains"].append("elsewhere.org"))
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d["envs"]["dev"]["expose"].update(host="shop.elsewhere.org"))
    with pytest.raises(SpecError, match=r"storefront.yaml: expose.host: 'shop.elsewhere.org' is outside the stack's DNS zone 'dev.acme-shop.com'"):
        load("dev", scratch.root)


def test_external_dns_needs_a_zone(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d.pop("dns"))
    with pytest.raises(SpecError, match="dns: the external-dns addon needs the stack's zone"):
        load("dev", scratch.root)


@pytest.mark.parametrize("email", ["platform@example.com", "ops@sub.example.org", "me@acme.test", "x@corp.invalid"])
def test_prod_acme_email_is_not_a_placeholder(scratch, email):
    scratch.edit("stacks/prod.yaml", lambda d: d["addons"]["cert-manager"]["settings"].update(acmeEmail=email))
    with pytest.raises(SpecError, match=r"stacks/prod.yaml: addons.cert-manager.settings.acmeEmail: .* is a placeholder"):
        load("prod", scratch.root)


def test_a_real_acme_email_passes_and_dev_may_use_any(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["cert-manager"].update(settings={"acmeEmail": "me@example.com"}))
    assert load("dev", scratch.root).spec.addons["cert-manager"].settings["acmeEmail"] == "me@example.com"
    assert load("prod", ROOT).spec.addons["cert-manager"].settings["acmeEmail"] == "platform-team@acme-shop.com"
