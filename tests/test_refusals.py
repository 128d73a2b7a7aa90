"""Issue 24's classes of refusal, each with several variants a careless or hostile team would try:
egress ranges and names, hosts across stacks and the platform's, reserved object names, quantities,
receivers, registries, credentials in messages. Model-level cases run in milliseconds; one
end-to-end case per class runs `make preview` to see exit 2, the file named, nothing written."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.spec import SpecError, load
from components.spec.alerting import SecretConfig, Webhook
from components.spec.egress import Egress, egress_problems
from components.spec.problems import Problem
from components.spec.service_parts import Resources
from components.spec.stack_settings import from_registry

VPC = [("stack dev's VPC", "10.20.0.0/16"), ("the cluster's Service range", "10.100.0.0/16"), ("stack prod's VPC", "10.10.0.0/16")]


@pytest.mark.parametrize("cidr", ["127.0.0.0/8", "169.254.169.254/32", "169.254.170.23/32", "0.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "8.8.8.8/32"])
def test_egress_ranges_that_are_never_destinations(cidr):
    with pytest.raises(ValidationError):
        Egress(cidr=cidr, port=5432)


@pytest.mark.parametrize("cidr", ["10.20.0.0/16", "10.20.5.0/24", "10.100.0.10/32", "10.10.0.0/20"])
def test_egress_ranges_covering_platform_networks(cidr):
    [problem] = egress_problems([Egress(cidr=cidr, port=5432)], VPC)
    assert "egress[0].cidr" in problem and "owns" in problem


def test_egress_entry_count_is_capped():
    many = [Egress(cidr=f"10.40.{i}.0/24", port=5432) for i in range(21)]
    assert "over the 20" in egress_problems(many, VPC)[0]
    assert egress_problems(many[:20], VPC) == []


@pytest.mark.parametrize(
    "host", ["db.svc", "orders.checkout.svc.cluster.local", "vault.internal", "ip-10-0-0-1.eu-west-1.compute.internal", "printer.local", "x.eks.amazonaws.com"]
)
def test_cluster_internal_names_are_not_external_hosts(host):
    with pytest.raises(ValidationError, match="external DNS name"):
        Egress(host=host, port=443)


@pytest.mark.parametrize("port", [22, 25, 5432, 6379, 80])
def test_the_egress_gateway_opens_only_tls_ports(port):
    with pytest.raises(ValidationError, match="TLS port"):
        Egress(host="api.stripe.com", port=port)


def test_a_prod_host_in_devs_zone_is_refused(scratch, capsys):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(expose={"host": "catalog.dev.acme-shop.com"}))
    err = scratch.rejected(capsys, "dev")
    assert "stacks/services/catalog/inventory.yaml: expose.host: in stack 'prod': host 'catalog.dev.acme-shop.com' lies in dev.acme-shop.com" in err


@pytest.mark.parametrize("host", ["heartbeat.acme-shop.com", "smtp.acme-shop.com"])
def test_platform_hosts_cannot_be_claimed(scratch, host):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.setdefault("envs", {}).setdefault("prod", {}).update(expose={"host": host}))
    with pytest.raises(SpecError, match="is a host of the platform"):
        load("prod", scratch.root)


def test_a_host_has_one_owner_across_stacks(scratch):
    # storefront (stacks/services/web/storefront.yaml) serves shop.acme-shop.com in prod; a second file claims it.
    scratch.edit(
        "stacks/services/catalog/inventory.yaml", lambda d: d.setdefault("envs", {}).setdefault("prod", {}).update(expose={"host": "shop.acme-shop.com"})
    )
    with pytest.raises(SpecError, match="already"):
        load("dev", scratch.root)


@pytest.mark.parametrize(
    "name, secret", [("default-deny", None), ("platform-egress", None), ("vault-secrets", None), ("default", None), ("orders", "vault-ca")]
)
def test_names_the_platform_puts_in_a_team_namespace_are_reserved(scratch, capsys, name, secret):
    def edit(d):
        d["name"] = name
        if secret:
            d["secrets"][0]["name"] = secret

    scratch.edit("stacks/services/checkout/orders.yaml", edit)
    err = scratch.rejected(capsys)
    assert "stacks/services/checkout/orders.yaml:" in err and "reserved" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "resources, needle",
    [
        ({"requests": {"cpu": "0", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}, "requests.cpu"),
        ({"requests": {"cpu": "100m", "memory": "0Mi"}, "limits": {"memory": "256Mi"}}, "requests.memory"),
        ({"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "256Mi"}}, "above limits.memory"),
        ({"requests": {"cpu": "2", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}, "above limits.cpu"),
    ],
)
def test_quantities_the_api_server_would_refuse(resources, needle):
    with pytest.raises(ValidationError, match=needle):
        Resources.model_validate(resources)


def test_limits_must_fit_the_largest_node(scratch, capsys):
    # dev's general pool may launch at most 64 CPUs and 256Gi.
    scratch.edit(
        "stacks/services/checkout/orders.yaml", lambda d: d.update(resources={"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "300Gi"}})
    )
    err = scratch.rejected(capsys)
    assert "stacks/services/checkout/orders.yaml: resources.limits.memory: 300Gi" in err and "largest node" in err


@pytest.mark.parametrize("name", ["OTEL_RESOURCE_ATTRIBUTES", "VAULT_TOKEN", "ISTIO_META_X", "KUBERNETES_SERVICE_HOST", "A" * 254])
def test_environment_names_the_platform_owns_or_the_api_server_refuses(scratch, capsys, name):
    scratch.edit("stacks/services/checkout/orders.yaml", lambda d: d["env"].update({name: "x"}))
    assert "stacks/services/checkout/orders.yaml: env:" in scratch.rejected(capsys)


@pytest.mark.parametrize(
    "url",
    [
        "http://heartbeat.acme-shop.com/x",
        "https://10.0.0.5/hook",
        "https://169.254.169.254/latest",
        "https://[::1]/x",
        "https://alerts.monitoring.svc.cluster.local/x",
        "https://localhost/x",
        "https://relay/x",
    ],
)
def test_webhooks_go_over_https_to_a_public_host(url):
    with pytest.raises(ValidationError, match="https|public host"):
        Webhook(url=url)


SLACK = "https://hooks.slack.com/services/T0A1B2C3D/B0A1B2C3D/abcdefghijklmnopqrstuvwx"
CREDENTIALS = [
    SLACK,
    "https://events.pagerduty.com/integration/0123456789abcdef0123456789abcdef/enqueue",
    "https://alertuser:s3cr3t-Passw0rd@hooks.acme-shop.com/x",
    "https://hooks.acme-shop.com/x?token=s3cr3tT0kenValue",
]


@pytest.mark.parametrize("url", CREDENTIALS)
def test_credential_bearing_urls_are_refused_and_never_printed(scratch, capsys, url):
    with pytest.raises(ValidationError):
        Webhook(url=url)
    scratch.edit("stacks/dev.yaml", lambda d: d["alerting"]["receivers"]["heartbeat"]["webhook"].update(url=url))
    err = scratch.rejected(capsys)
    assert "stacks/dev.yaml: alerting.receivers.heartbeat.webhook" in err
    for part in ("s3cr3t", "abcdefghijklmnopqrstuvwx", "0123456789abcdef0123456789abcdef"):
        assert part not in err


def test_a_routing_key_in_place_of_its_config_name_is_refused_unprinted():
    with pytest.raises(ValidationError) as caught:
        SecretConfig(config="e93facc04764012d7bfb002500d5d1a6")
    assert "e93facc04764012d7bfb002500d5d1a6" not in str(caught.value).split("input_value")[0]


@pytest.mark.parametrize("secret", [SLACK, "AKIAIOSFODNN7EXAMPLE", "xoxb-123456789012-123456789012-abcdefghijklmnopqrstuvwx", "https://u:hunter2hunter2@x.io/"])
def test_no_error_line_ever_prints_a_credential(secret):
    """The last line of defence: whatever a rule quotes, the printed line masks the credential."""
    line = str(Problem("stacks/dev.yaml", "a.b", f"value {secret!r} is wrong"))
    assert secret not in line and "hunter2hunter2" not in line and "[redacted]" in line


@pytest.mark.parametrize(
    "image, admitted",
    [
        ("111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/x:1", True),
        ("111122223333.dkr.ecr.eu-west-1.amazonaws.com.evil.io/shop/x:1", False),
        ("111122223333.dkr.ecr.eu-west-1.amazonaws.comx/shop/x:1", False),
    ],
)
def test_registries_match_at_a_path_boundary(image, admitted):
    for prefix in ("111122223333.dkr.ecr.eu-west-1.amazonaws.com/", "111122223333.dkr.ecr.eu-west-1.amazonaws.com"):
        assert from_registry(image, prefix) is admitted
    assert from_registry("reg.io/team-evil/x:1", "reg.io/team") is False


def test_an_allowed_registry_without_a_trailing_slash_is_refused(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["policy"].update(allowedRegistries=["111122223333.dkr.ecr.eu-west-1.amazonaws.com"]))
    with pytest.raises(SpecError, match="policy.allowedRegistries"):
        load("dev", scratch.root)


def test_a_bad_cron_names_its_key(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["karpenter"]["nodePools"][0]["budgets"].append({"nodes": "0", "schedule": "every day", "duration": "1h"}))
    with pytest.raises(SpecError, match=r"karpenter.nodePools\[0\].budgets\[1\].schedule"):
        load("dev", scratch.root)


def test_two_hosts_with_one_generated_name_name_both_files(scratch):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(egress=[{"host": "api-stripe.com", "port": 443}]))
    scratch.edit("stacks/dev.yaml", lambda d: d["teams"]["catalog"].update(egress={"hosts": ["api-stripe.com"]}))
    scratch.edit("stacks/prod.yaml", lambda d: d["teams"]["catalog"].update(egress={"hosts": ["api-stripe.com"]}))
    with pytest.raises(SpecError) as caught:
        load("dev", scratch.root)
    text = str(caught.value)
    assert "egress-api-stripe-com-443" in text and "payment.yaml" in text and "inventory.yaml" in text


@pytest.mark.parametrize(
    "entry, needle",
    [
        ({"host": "api.paypal.com", "port": 443}, "egress[0].host: 'api.paypal.com' is not granted to team 'catalog'"),
        ({"cidr": "10.40.0.0/24", "port": 5432}, "egress[0].cidr: 10.40.0.0/24 is not a network team 'catalog' owns"),
        ({"cidr": "10.41.0.0/16", "port": 5432}, "is not a network team 'catalog' owns"),
    ],
)
def test_egress_only_to_what_the_team_owns_or_the_platform_offers(scratch, entry, needle):
    """checkout owns 10.40.0.0/16 and may call api.stripe.com; catalog owns nothing outside the mesh."""
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(egress=[entry]))
    with pytest.raises(SpecError, match="inventory.yaml") as caught:
        load("dev", scratch.root)
    assert needle in str(caught.value)


def test_egress_granted_to_every_team_or_by_wildcard(scratch):
    scratch.edit(
        "stacks/services/catalog/inventory.yaml",
        lambda d: d.update(egress=[{"host": "eu.api.paypal.com", "port": 443}, {"cidr": "10.50.1.0/24", "port": 6379}]),
    )
    for stack in ("dev", "staging", "prod"):
        scratch.edit(f"stacks/{stack}.yaml", lambda d: d["policy"].update(sharedEgress={"hosts": ["*.api.paypal.com"], "networks": ["10.50.0.0/16"]}))
    assert load("dev", scratch.root)


def test_a_network_has_one_owning_team(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["teams"]["catalog"].update(egress={"networks": ["10.40.128.0/20"]}))
    with pytest.raises(SpecError, match=r"teams.catalog.egress.networks\[0\]: 10.40.128.0/20 overlaps a network of team 'checkout'"):
        load("dev", scratch.root)


@pytest.mark.parametrize("where", ["backup", "budget"])
@pytest.mark.parametrize("cron", ["61 * * * *", "@daily", "0 0 31 2 *", "every day"])
def test_every_bad_cron_names_its_key(scratch, where, cron):
    if where == "backup":
        scratch.edit("stacks/dev.yaml", lambda d: d["backup"]["schedules"].update(teams=cron))
        key = "backup.schedules.teams"
    else:
        scratch.edit("stacks/dev.yaml", lambda d: d["karpenter"]["nodePools"][0]["budgets"].append({"nodes": "0", "schedule": cron, "duration": "1h"}))
        key = "karpenter.nodePools[0].budgets[1].schedule"
    with pytest.raises(SpecError) as caught:
        load("dev", scratch.root)
    assert f"stacks/dev.yaml: {key}: " in str(caught.value)


@pytest.mark.parametrize("host", ["shop.acme-shop.com", "shop.dev.acme-shop.com"])
def test_egress_to_what_the_platform_serves_is_refused(scratch, host):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(egress=[{"host": host, "port": 443}]))
    for stack in ("dev", "staging", "prod"):
        scratch.edit(f"stacks/{stack}.yaml", lambda d: d["policy"].update(sharedEgress={"hosts": [host]}))
    with pytest.raises(SpecError, match=r"inventory.yaml: egress\[0\].host: in stack '(dev|staging|prod)': '.*' is served by this platform"):
        load("dev", scratch.root)


def test_egress_to_the_ci_and_vpn_networks_is_refused():
    [problem] = egress_problems(
        [Egress(cidr="10.200.0.0/25", port=22)], [("stack dev's cluster.endpoint.privateAccessCidrs (CI runners, VPN)", "10.200.0.0/24")]
    )
    assert "CI runners" in problem


@pytest.mark.parametrize("url", ["https://0x7f.0.0.1/x", "https://127.1/x", "https://2130706433/x"])
def test_webhook_hosts_that_are_addresses_in_disguise(url):
    with pytest.raises(ValidationError, match="public host"):
        Webhook(url=url)


@pytest.mark.parametrize("path", ["/a;b", "/a b", "/$(id)", "//evil.io", "/../x"])
def test_exposed_paths_have_the_same_grammar(scratch, path):
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d["expose"].update(path=path))
    with pytest.raises(SpecError, match="storefront.yaml: expose.path"):
        load("dev", scratch.root)


def test_egress_to_what_the_platform_only_calls_is_allowed(scratch):
    """The SMTP relay and the Git host are used by the platform, not served by it."""
    scratch.edit(
        "stacks/services/catalog/inventory.yaml", lambda d: d.update(egress=[{"host": "smtp.acme-shop.com", "port": 465}, {"host": "github.com", "port": 443}])
    )
    for stack in ("dev", "staging", "prod"):
        scratch.edit(f"stacks/{stack}.yaml", lambda d: d["policy"].update(sharedEgress={"hosts": ["smtp.acme-shop.com", "github.com"]}))
    assert load("dev", scratch.root)
