"""No placeholder domains in prod: one rule (components/spec/domains.py) on every setting production uses."""

from __future__ import annotations

import pytest
from email_validator import SPECIAL_USE_DOMAIN_NAMES

from components.spec import SpecError, load
from components.spec.domains import RESERVED_DOMAINS, host_of, placeholder_problem, refuse_placeholder, reserved_domain
from conftest import ROOT

PROD = "stacks/prod.yaml"
DEV = "stacks/dev.yaml"
PAYMENT = "stacks/services/checkout/payment.yaml"


def receivers(d):
    return d["alerting"]["receivers"]


def settings(d, addon):
    return d["addons"][addon].setdefault("settings", {})


# (file, key path, value, reserved domain, edit): each key the rule covers, refused in prod.
CASES = [
    (PROD, "ingress.domains", "shop.example.com", "example.com", lambda d, v: d["ingress"]["domains"].append(v)),
    (PROD, "dns.zone", "shop.example.org", "example.org", lambda d, v: d["dns"].update(zone=v)),
    (
        PROD,
        "alerting.receivers.platform-email.email.to",
        "oncall@example.net",
        "example.net",
        lambda d, v: receivers(d)["platform-email"]["email"].update(to=v),
    ),
    (
        PROD,
        "alerting.receivers.platform-email.email.sender",
        "alertmanager@mail.test",
        "test",
        lambda d, v: receivers(d)["platform-email"]["email"].update(sender=v),
    ),
    (
        PROD,
        "alerting.receivers.platform-email.email.smarthost",
        "smtp.example.com:587",
        "example.com",
        lambda d, v: receivers(d)["platform-email"]["email"].update(smarthost=v),
    ),
    (
        PROD,
        "alerting.receivers.heartbeat.webhook.url",
        "https://heartbeat.example/v1/shop-prod",
        "example",
        lambda d, v: receivers(d)["heartbeat"]["webhook"].update(url=v),
    ),
    (PROD, "alerting.repositoryUrl", "https://git.invalid/acme-shop/platform/blob/main", "invalid", lambda d, v: d["alerting"].update(repositoryUrl=v)),
    (PROD, "addons.cert-manager.settings.acmeEmail", "platform@example.com", "example.com", lambda d, v: settings(d, "cert-manager").update(acmeEmail=v)),
    (
        PROD,
        "addons.argocd.settings.repoUrlTemplate",
        "git@git.home.arpa:acme-shop/{team}-deploy.git",
        "arpa",
        lambda d, v: settings(d, "argocd").update(repoUrlTemplate=v),
    ),
    (PAYMENT, "egress[0].host", "api.payments.local", "local", lambda d, v: d["egress"][0].update(host=v)),
]


@pytest.mark.parametrize("rel, key, value, domain, edit", CASES, ids=[c[1] for c in CASES])
def test_each_prod_setting_refuses_a_reserved_domain(scratch, rel, key, value, domain, edit):
    scratch.edit(rel, lambda d: edit(d, value))
    with pytest.raises(SpecError) as err:
        load("prod", scratch.root)
    expected = f"{rel}: {key}: {value!r} is a placeholder: {domain} is reserved for documentation or special use (RFC 2606, RFC 6761)"
    assert any(str(p).startswith(expected) for p in err.value.problems), str(err.value)
    # The message says what is allowed.
    assert "prod needs a real, registered domain here (none under arpa, example, example.com" in str(err.value)


def test_prod_preview_exits_2_naming_the_file_and_key(scratch, capsys):
    scratch.edit(PROD, lambda d: d["dns"].update(zone="example.com"))
    err = scratch.rejected(capsys, "prod")
    assert "stacks/prod.yaml: dns.zone: 'example.com' is a placeholder" in err


def test_a_prod_stack_reports_every_placeholder_at_once(scratch):
    def old_sample(d):
        d["ingress"]["domains"] = ["example.com"]
        d["dns"]["zone"] = "example.com"
        receivers(d)["heartbeat"]["webhook"]["url"] = "https://heartbeat.example.com/v1/shop-prod"

    scratch.edit(PROD, old_sample)
    with pytest.raises(SpecError) as err:
        load("prod", scratch.root)
    paths = [p.path for p in err.value.problems if "is a placeholder" in p.message]
    assert paths == ["ingress.domains", "dns.zone", "alerting.receivers.heartbeat.webhook.url"]


def test_dev_accepts_placeholder_domains_everywhere(scratch):
    """The same settings on documentation names load in dev: sandboxes and tests use them on purpose."""

    def placeholders(d):
        d["ingress"]["domains"] = ["dev.example.com"]
        d["dns"]["zone"] = "dev.example.com"
        receivers(d)["platform-email"]["email"].update(to="ops@example.net", sender="am@mail.test", smarthost="smtp.example.com:587")
        receivers(d)["heartbeat"]["webhook"]["url"] = "https://heartbeat.example/v1"
        d["alerting"]["repositoryUrl"] = "https://git.invalid/acme-shop/platform/blob/main"
        settings(d, "cert-manager").update(acmeEmail="me@example.com")
        settings(d, "argocd").update(repoUrlTemplate="git@git.home.arpa:acme-shop/{team}-deploy.git")

    scratch.edit(DEV, placeholders)
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d["envs"]["dev"]["expose"].update(host="shop.dev.example.com"))
    scratch.edit(PAYMENT, lambda d: d.setdefault("envs", {}).setdefault("dev", {}).update(egress=[{"host": "api.payments.test", "port": 443}]))
    scratch.edit(DEV, lambda d: d["teams"]["checkout"]["egress"]["hosts"].append("api.payments.test"))
    decl = load("dev", scratch.root)
    assert decl.spec.dns.zone == "dev.example.com" and decl.spec.ingress.domains == ["dev.example.com"]
    assert next(s for s in decl.services if s.name == "payment").egress[0].host == "api.payments.test"


def test_the_sample_stacks_serve_the_sample_company_domain():
    prod, dev = load("prod", ROOT).spec, load("dev", ROOT).spec
    assert prod.ingress.domains == ["acme-shop.com"] and prod.dns.zone == "acme-shop.com"
    # dev's zone is delegated from prod's.
    assert dev.ingress.domains == ["dev.acme-shop.com"] and dev.dns.zone.endswith("." + prod.dns.zone)
    for spec in (prod, dev):
        email = spec.alerting.receivers["platform-email"].email
        addresses = [email.to, email.sender, email.smarthost, spec.alerting.receivers["heartbeat"].webhook.url, spec.alerting.repository_url]
        assert all(reserved_domain(host_of(a)) is None for a in addresses), addresses


@pytest.mark.parametrize(
    "value, host",
    [
        ("ops@acme-shop.com", "acme-shop.com"),
        ("https://Heartbeat.Example.com:8443/v1?x", "heartbeat.example.com"),
        ("smtp.example.com:587", "smtp.example.com"),
        ("git@github.com:acme-shop/{team}-deploy.git", "github.com"),
        ("ssh://git@git.example.org/acme/{team}.git", "git.example.org"),
        ("example.com.", "example.com"),
    ],
)
def test_host_of_finds_the_dns_name(value, host):
    assert host_of(value) == host


@pytest.mark.parametrize(
    "name, reserved",
    [
        ("example.com", "example.com"),
        ("a.b.EXAMPLE.org", "example.org"),
        ("shop.example", "example"),
        ("corp.test", "test"),
        ("printer.local", "local"),
        ("router.home.arpa", "arpa"),
        ("localhost", "localhost"),
        ("x.onion", "onion"),
        ("acme-shop.com", None),
        ("myexample.com", None),
        ("example.com.au", None),
        ("testing.io", None),
    ],
)
def test_reserved_domains_match_whole_labels(name, reserved):
    assert reserved_domain(name) == reserved


def test_the_list_is_the_special_use_registry_plus_the_documentation_names():
    assert set(SPECIAL_USE_DOMAIN_NAMES) <= set(RESERVED_DOMAINS)
    assert {"example", "example.com", "example.net", "example.org"} <= set(RESERVED_DOMAINS)


@pytest.mark.parametrize("environment", ["dev", "staging", None])
def test_only_prod_refuses(environment):
    assert refuse_placeholder("ops@example.com", {"environment": environment}, "x") == "ops@example.com"
    assert refuse_placeholder("ops@example.com", None, "x") == "ops@example.com"
    with pytest.raises(ValueError, match="is a placeholder: example.com is reserved"):
        refuse_placeholder("ops@example.com", {"environment": "prod"}, "mail reaches nobody")
    assert placeholder_problem("ops@acme-shop.com", "x") is None
