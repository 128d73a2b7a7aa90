"""Mistakes that would only fail at `pulumi up` or at run time are declaration errors: exit 2 from
the preview, the file and key named. Every stack is checked on every run, derived names are checked
before anything registers, and one broken file causes one error."""

from __future__ import annotations

import base64
from datetime import date

import pytest
from conftest import ROOT

from components.spec import SpecError, load, names
from components.spec import limits
from components.versions import ISTIOD
from components.workloads.pod import tracing_env
from components.addons import discover
from components.versions import CHARTS
from engine.chart_values import charts_of, defaults, override_problems

ORDERS, PAYMENT, STOREFRONT = "stacks/services/checkout/orders.yaml", "stacks/services/checkout/payment.yaml", "stacks/services/web/storefront.yaml"
IMAGE = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/extra:1.0.0"


def problems(scratch, stack: str = "dev") -> str:
    with pytest.raises(SpecError) as caught:
        load(stack, scratch.root)
    return str(caught.value)


def service(scratch, name: str, team: str, **extra) -> None:
    pins = {"staging": {"image": IMAGE}, "prod": {"image": IMAGE}}
    scratch.add_service({"name": name, "team": team, "image": IMAGE, "port": 8080, "envs": pins, **extra})


# -- every stack, every run ---------------------------------------------------------------------


def test_a_prod_only_mistake_fails_the_dev_preview(scratch, capsys):
    scratch.edit(STOREFRONT, lambda d: d["envs"]["prod"].update(replicas={"min": "two", "max": 3}))
    err = scratch.rejected(capsys, "dev")
    assert f"{STOREFRONT}: envs.prod.replicas.min: in stack 'prod': Input should be a valid integer" in err


def test_a_mistake_in_the_other_stack_file_fails_this_preview(scratch):
    scratch.edit("stacks/prod.yaml", lambda d: d["cluster"].update(name="Shop"))
    assert "stacks/prod.yaml: cluster.name: String should match pattern" in problems(scratch, "dev")


def test_a_mistake_every_stack_sees_is_reported_once(scratch):
    scratch.edit(PAYMENT, lambda d: d.update(port="http"))
    msg = problems(scratch, "prod")
    assert msg == f"{PAYMENT}: port: Input should be a valid integer, unable to parse string as an integer (got 'http')"


def test_all_stacks_are_kept_on_the_declarations():
    decl = load("dev", ROOT)
    assert sorted(decl.stacks) == ["dev", "prod", "staging"] and decl.stacks["dev"] is decl.spec


# -- one error per root cause -------------------------------------------------------------------


@pytest.mark.parametrize("broken", ["name: payment\nport: [8080\n", "name: payment\ntier: gold\n"])
def test_a_broken_file_causes_no_follow_on_errors(scratch, broken):
    scratch.write(PAYMENT, broken)
    msg = problems(scratch)
    assert "unknown service" not in msg and all(line.startswith(PAYMENT) for line in msg.splitlines())


def test_a_file_that_cannot_be_parsed_is_known_by_its_file_name(scratch):
    scratch.path(PAYMENT).write_bytes(b"\xff\xfe")
    msg = problems(scratch)
    assert msg.splitlines() == [f"{PAYMENT}: byte 0: not UTF-8 text; save the file as UTF-8"]


def test_an_unknown_dependency_is_still_reported(scratch):
    scratch.write(PAYMENT, "name: payment\nport: [8080\n")
    scratch.edit(STOREFRONT, lambda d: d.update(dependsOn=["orders", "invntory"]))
    assert f"{STOREFRONT}: dependsOn[1]: unknown service 'invntory'" in problems(scratch)


# -- derived names ------------------------------------------------------------------------------


def test_two_declarations_deriving_one_kubernetes_name(scratch, capsys):
    service(scratch, "orders-metrics", "checkout")
    err = scratch.rejected(capsys)
    assert (
        f"{ORDERS}: name: the metrics Service of service orders and the Service of service orders-metrics, declared in "
        "stacks/services/checkout/orders-metrics.yaml (name), would both be the Service 'orders-metrics' in namespace checkout; rename one of them"
    ) in err


def test_a_team_named_like_an_addon_namespace(scratch, capsys):
    service(scratch, "reports", "monitoring")
    err = scratch.rejected(capsys)
    # The reserved-name rule refuses it in the service file itself, so no collision is reported on top.
    assert "stacks/services/monitoring/reports.yaml: team: team 'monitoring' is a reserved namespace" in err
    assert "would both be the Namespace" not in err


def test_a_team_named_like_a_namespace_kubernetes_reserves(scratch):
    service(scratch, "reports", "kube-system")
    assert "team: team 'kube-system' is a reserved namespace; a team may not be named kube-*" in problems(scratch)


def test_one_secret_name_from_two_services(scratch):
    scratch.edit(ORDERS, lambda d: d["secrets"].append({"name": "payment-provider", "vaultPath": "checkout/orders/x", "keys": ["X_KEY"]}))
    assert f"{PAYMENT}: secrets[0].name: a Secret of service payment and a Secret of service orders, declared in {ORDERS} (secrets[1].name)" in problems(
        scratch
    )


def test_a_name_only_prod_derives_fails_the_dev_preview(scratch):
    # payment is critical, so it runs a canary in prod: Flagger makes payment-primary there (not in dev, here).
    scratch.edit(PAYMENT, lambda d: d["envs"].update(dev={"canary": {"enabled": False}}))
    service(scratch, "payment-primary", "checkout", replicas={"min": 2, "max": 2})
    msg = problems(scratch, "dev")
    assert f"{PAYMENT}: canary: in stack 'prod': the canary of service payment (objects made by Flagger) and the Deployment of service payment-primary" in msg


def test_length_limits_name_the_declaration():
    derived = [
        names.Derived("aws", "IAM role", names.karpenter_node_role("c" * 50), names.IAM_ROLE_LIMIT, "stacks/dev.yaml", "cluster.name", "Karpenter's node role")
    ]
    assert [str(p) for p in names.problems(derived)] == [
        "stacks/dev.yaml: cluster.name: Karpenter's node role would be named 'KarpenterNodeRole-"
        + "c" * 50
        + "', 68 characters; the limit for a IAM role name is 64; shorten the name"
    ]
    assert names.problems(derived[:0]) == []


def test_the_components_use_the_derived_names(prod):
    assert prod.named("platform-karpenter-node", "aws:iam/role:Role").inputs["name"] == names.karpenter_node_role("shop-prod")
    assert prod.manifest("ConfigMap", names.config_map("orders"), "checkout")
    assert prod.named(names.workload_role("notifications"), "aws:iam/role:Role")
    assert [e["name"] for e in tracing_env(load("dev", ROOT).services[0], "http://x")] == list(limits.PLATFORM_ENV)


# -- deploy-time limits -------------------------------------------------------------------------


@pytest.mark.parametrize("key, port", [("port", 15001), ("metricsPort", 15090), ("port", 15021)])
def test_ports_the_sidecar_reserves(scratch, capsys, key, port):
    scratch.edit(ORDERS, lambda d: d.update({key: port}))
    assert f"{ORDERS}: {key}: {port} is in 15000-15090, the ports Istio's sidecar and istiod use" in scratch.rejected(capsys)


def test_ports_outside_the_sidecar_range(scratch):
    scratch.edit(ORDERS, lambda d: d.update(port=14999, metricsPort=15091))
    load("dev", scratch.root)


def test_config_map_over_the_object_size_limit(scratch, capsys):
    scratch.edit(ORDERS, lambda d: d["env"].update(BLOB="x" * (limits.OBJECT_DATA_MAX_BYTES + 1)))
    assert f"{ORDERS}: env: the environment ConfigMap would hold" in scratch.rejected(capsys)
    scratch.edit(ORDERS, lambda d: d["env"].update(BLOB="x" * 100_000))
    load("dev", scratch.root)


def test_sealed_secret_over_the_object_size_limit(scratch, capsys):
    def sealed(payload: int) -> str:
        return base64.b64encode((512).to_bytes(2, "big") + bytes(512 + payload + 16)).decode()

    notifications = "stacks/services/messaging/notifications.yaml"
    scratch.edit(notifications, lambda d: d["envs"]["dev"]["sealedSecrets"][0]["encryptedData"].update(WEBHOOK_TOKEN=sealed(limits.OBJECT_DATA_MAX_BYTES)))
    err = scratch.rejected(capsys)
    assert f"{notifications}: envs.dev.sealedSecrets[0].encryptedData: the unsealed Secret would hold {limits.OBJECT_DATA_MAX_BYTES + 13} bytes" in err
    scratch.edit(notifications, lambda d: d["envs"]["dev"]["sealedSecrets"][0]["encryptedData"].update(WEBHOOK_TOKEN=sealed(1000)))
    load("dev", scratch.root)


@pytest.mark.parametrize(
    "version, policy, today, ok",
    [
        ("1.35", "STANDARD", date(2026, 11, 30), True),
        ("1.28", "STANDARD", date(2026, 11, 30), False),
        ("1.31", "EXTENDED", date(2026, 11, 30), False),
        ("1.31", "STANDARD", date(2026, 1, 1), False),
        ("1.31", "EXTENDED", date(2026, 1, 1), True),
        ("1.36", "STANDARD", date(2026, 11, 30), False),
    ],
)
def test_kubernetes_versions_eks_offers(scratch, monkeypatch, version, policy, today, ok):
    monkeypatch.setattr(limits, "today", lambda: today)
    scratch.edit("stacks/dev.yaml", lambda d: d["cluster"].update(kubernetesVersion=version, upgradePolicy=policy))
    if ok:
        load("dev", scratch.root)
    else:
        assert "stacks/dev.yaml: cluster: kubernetesVersion: Kubernetes " + version in problems(scratch)


@pytest.mark.parametrize(
    "arn, fragment",
    [
        ("arn:aws:iam::1234:role/admin", "the account '1234' is not a 12-digit AWS account ID"),
        ("arn:aws-moon:iam::111122223333:role/admin", "unknown partition 'aws-moon'"),
        ("arn:aws:sts::111122223333:assumed-role/admin/me", "is not an IAM role or user ARN"),
        ("arn:aws:iam::111122223333:role/", "is not an IAM role or user ARN"),
    ],
)
def test_malformed_admin_arns(scratch, capsys, arn, fragment):
    scratch.edit("stacks/dev.yaml", lambda d: d["cluster"]["access"].update(admins=[arn]))
    err = scratch.rejected(capsys)
    assert "stacks/dev.yaml: cluster.access: admins[0]: " in err and fragment in err


def test_well_formed_principal_arns(scratch):
    good = ["arn:aws:iam::111122223333:role/teams/platform/admin", "arn:aws-cn:iam::111122223333:user/ci@example.com"]
    scratch.edit("stacks/dev.yaml", lambda d: d["cluster"]["access"].update(admins=good))
    load("dev", scratch.root)
    scratch.edit("stacks/dev.yaml", lambda d: d["cluster"]["access"].update(admins=[good[0], good[0]]))
    assert "listed twice" in problems(scratch)


def test_permission_resources_are_arns(scratch):
    perm = {"actions": ["s3:GetObject", "sqs:SendMessage"], "resources": ["arn:aws:s3:::checkout-orders/*", "arn:aws:sqs:eu-west-1:111122223333:checkout-q"]}
    scratch.edit(ORDERS, lambda d: d.update(awsPermissions=[perm]))
    scratch.edit("stacks/prod.yaml", lambda d: d["policy"].update(awsAccountId="111122223333"))
    load("dev", scratch.root)
    perm["resources"] = ["arn:aws:sqs:eu-west-1:42:q"]
    scratch.edit(ORDERS, lambda d: d.update(awsPermissions=[perm]))
    assert f"{ORDERS}: awsPermissions[0]: resources: 'arn:aws:sqs:eu-west-1:42:q': the account '42' is not a 12-digit" in problems(scratch)


@pytest.mark.parametrize(
    "key, cidrs, fragment",
    [
        ("privateAccessCidrs", ["10.200.0.0/24", "10.200.0.0/24"], "privateAccessCidrs lists 10.200.0.0/24 more than once"),
        ("publicAccessCidrs", ["203.0.113.0/24", "198.51.100.0/24", "203.0.113.0/24"], "publicAccessCidrs lists 203.0.113.0/24 more than once"),
        ("privateAccessCidrs", ["10.20.8.0/24"], "10.20.8.0/24 overlap the VPC's own network.cidr 10.20.0.0/16"),
    ],
)
def test_cidr_lists_aws_would_refuse(scratch, capsys, key, cidrs, fragment):
    scratch.edit("stacks/dev.yaml", lambda d: d["cluster"]["endpoint"].update({key: cidrs}))
    err = scratch.rejected(capsys)
    assert "stacks/dev.yaml: cluster" in err and fragment in err


@pytest.mark.parametrize("key, value", [("cpuLimit", "lots"), ("memoryLimit", "1Gb"), ("cpuLimit", "-4"), ("memoryLimit", True)])
def test_karpenter_limits_are_quantities(scratch, capsys, key, value):
    scratch.edit("stacks/dev.yaml", lambda d: d["karpenter"]["nodePools"][0].update({key: value}))
    assert f"stacks/dev.yaml: karpenter.nodePools[0].{key}: " in scratch.rejected(capsys)


def test_numbers_are_quantities_too(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["karpenter"]["nodePools"][0].update(cpuLimit=64, memoryLimit="1.5Ti"))
    pool = load("dev", scratch.root).spec.karpenter.node_pools[0]
    assert (pool.cpu_limit, pool.memory_limit) == ("64", "1.5Ti")
    scratch.edit(ORDERS, lambda d: d.update(resources={"requests": {"cpu": 0.1, "memory": "128Mi"}, "limits": {"memory": "256Mi"}}))
    assert {s.name: s for s in load("dev", scratch.root).services}["orders"].resources.requests.cpu == "0.1"


def test_a_helm_value_the_chart_does_not_have(scratch, capsys):
    scratch.edit("stacks/prod.yaml", lambda d: d["addons"]["prometheus"].update(values={"grafana": {"enabled": True, "adminPasword": "x"}}))
    err = scratch.rejected(capsys, "dev")
    assert "stacks/prod.yaml: addons.prometheus.values.grafana.adminPasword: not a value of chart kube-prometheus-stack" in err


def test_helm_values_of_a_multi_chart_addon(scratch):
    real = next(iter(defaults(ISTIOD)))
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["istio"].update(values={"istiod": {real: defaults(ISTIOD)[real]}}))
    assert override_problems(load("dev", scratch.root)) == []
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["istio"].update(values={"istiodd": {}}))
    assert [str(p) for p in override_problems(load("dev", scratch.root))] == [
        "stacks/dev.yaml: addons.istio.values.istiodd: the istio addon installs the charts base, gateway, istiod; its values are keyed by chart name"
    ]


def test_every_addon_names_the_charts_its_values_are_checked_against():
    for name, addon in discover().items():
        charts = charts_of(addon)
        assert charts and all(CHARTS[c.name] == c for c in charts), name
        assert addon.multi_chart == (len(charts) > 1), name


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda d: d["secrets"][0].update(keys=["db-url"]), "secrets[0].keys: 'db-url' is not a valid environment variable name"),
        (lambda d: d["secrets"][0].update(keys=["DATABASE_URL", "DATABASE_URL"]), "secrets[0].keys: ['DATABASE_URL'] listed twice"),
        (
            lambda d: d["secrets"].append({"name": "orders-db2", "vaultPath": "checkout/x", "keys": ["DATABASE_URL"]}),
            "secrets: ['DATABASE_URL'] come from more than one Vault path",
        ),
        (lambda d: d["env"].update(OTEL_SERVICE_NAME="x"), "env: OTEL_SERVICE_NAME is in a prefix the platform owns"),
        (lambda d: d["env"].update(DATABASE_URL="x"), "env: ['DATABASE_URL'] also come from secrets"),
    ],
)
def test_environment_variable_names_from_every_source(scratch, capsys, edit, fragment):
    scratch.edit(ORDERS, edit)
    assert f"{ORDERS}: " in (err := scratch.rejected(capsys)) and fragment in err
