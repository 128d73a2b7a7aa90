"""Ownership: every AWS and Vault name a team's file makes is the team's, or offered to it, never the platform's.

Each refusal is exit 2 naming the file and key path (`make preview` writes nothing); each rule also
has a test that loosens it and shows the hostile input would then get through, so the refusal
tests exercise the rule they are named after.
"""

from __future__ import annotations

import copy
import json

import pytest
from test_declarations import refused

from components.addons import external_secrets as eso
from components.spec import arns, iam_actions, load, ownership
from engine.stacks import run

DEV = "arn:aws:{service}:eu-west-1:111122223333:{name}"
POLICY = "aws:iam/rolePolicy:RolePolicy"


def grant(scratch, service: str, *permissions: dict) -> None:
    """Permissions for `service` in dev only (prod is another account; every stack judges every file)."""
    scratch.edit(scratch.service_file(service), lambda d: d.setdefault("envs", {}).setdefault("dev", {}).update(awsPermissions=list(permissions)))


def queue(scratch, service: str, name: str) -> None:
    scratch.edit(scratch.service_file(service), lambda d: d.update(scaling={"sqs": {"queueName": name}}, replicas={"min": 1, "max": 4}))


def shop_team(scratch) -> None:
    """orders moves into a team called `shop` (the folder is the team), with checkout's budget, not its networks."""
    scratch.move_service("orders", "shop")
    scratch.edit(scratch.service_file("orders"), lambda d: d.update(secrets=[], egress=[], allowedCallers=[], dependsOn=[]))
    scratch.edit(scratch.service_file("storefront"), lambda d: d.update(dependsOn=["inventory"]))
    for stack in ("dev", "staging", "prod"):
        scratch.edit(f"stacks/{stack}.yaml", lambda d: d["teams"].update(shop={**copy.deepcopy(d["teams"]["checkout"]), "egress": {}}))


def offer(scratch, stack: str = "dev", **offers: list) -> None:
    scratch.edit(f"stacks/{stack}.yaml", lambda d: d.update(offers=offers))


def workload_statements(rec, service: str) -> list[dict]:
    return json.loads(rec.named(f"{service}-workload-inline", POLICY).inputs["policy"])["Statement"]


# -- what an ARN names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arn, names",
    [
        ("arn:aws:s3:::checkout-receipts", ("checkout-receipts",)),
        # An object is named by its bucket (and, under the bucket format, by the whole path).
        ("arn:aws:s3:::checkout-receipts/2026/*", ("checkout-receipts", "checkout-receipts/2026/*")),
        ("arn:aws:s3:::acme/checkout-x", ("acme", "acme/checkout-x")),
        ("arn:aws:sqs:eu-west-1:111122223333:shop-dev", ("shop-dev",)),
        ("arn:aws:dynamodb:eu-west-1:111122223333:table/checkout-orders/index/by-day", ("checkout-orders", "checkout-orders/index/by-day")),
        ("arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", ("1234abcd-12ab-34cd-56ef-1234567890ab",)),
        ("arn:aws:kms:eu-west-1:111122223333:alias/shop-dev-vault-seal", ("shop-dev-vault-seal",)),
        # Nothing the catalogue knows: no owner can be found, so it is refused.
        ("arn:aws:dynamodb:eu-west-1:111122223333:*", ()),
        ("arn:aws:sqs:eu-west-1:111122223333", ()),
    ],
)
def test_the_name_of_a_resource_comes_from_the_catalogues_arn_formats(arn, names):
    assert arns.resource_names(arn) == names


# -- AWS: awsPermissions -------------------------------------------------------------------------


def test_a_teams_own_resources_load_and_render(scratch):
    grant(
        scratch,
        "orders",
        {"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::checkout-receipts/*"]},
        {"actions": ["sqs:SendMessage"], "resources": [DEV.format(service="sqs", name="checkout-events")]},
    )
    orders = {s.name: s for s in load("dev", scratch.root).services}["orders"]
    assert [p.resources for p in orders.aws_permissions] == [["arn:aws:s3:::checkout-receipts/*"], [DEV.format(service="sqs", name="checkout-events")]]


@pytest.mark.parametrize(
    "actions, arn, fragment",
    [
        # The platform's: Karpenter's queue, Loki's and Velero's buckets, the seal key's alias.
        (["sqs:ReceiveMessage"], DEV.format(service="sqs", name="shop-dev"), "Karpenter's interruption queue"),
        (["s3:GetObject"], "arn:aws:s3:::shop-dev-loki-eu-west-1/*", "the platform's (names starting shop-dev-"),
        (["s3:GetObject"], "arn:aws:s3:::shop-dev-backup-eu-west-1/*", "the platform's (names starting shop-dev-"),
        (["kms:UpdateAlias"], DEV.format(service="kms", name="alias/shop-dev-vault-seal"), "the platform's"),
        # Another team's, or no one's.
        (["sqs:SendMessage"], DEV.format(service="sqs", name="messaging-notifications"), "is not team checkout's"),
        (["s3:GetObject"], "arn:aws:s3:::checkoutx/*", "is not team checkout's"),
        (["s3:GetObject"], "arn:aws:s3:::*-receipts/*", "may name the platform's"),
        (["kms:Decrypt"], DEV.format(service="kms", name="key/1234abcd-12ab-34cd-56ef-1234567890ab"), "is not team checkout's"),
    ],
)
def test_names_the_team_does_not_own_are_refused(scratch, capsys, actions, arn, fragment):
    grant(scratch, "orders", {"actions": actions, "resources": [arn]})
    msg = refused(scratch)
    assert "stacks/services/checkout/orders.yaml: awsPermissions[0].resources[0]:" in msg and fragment in msg, msg
    assert "stacks/services/checkout/orders.yaml: awsPermissions[0].resources[0]:" in scratch.rejected(capsys)


def test_the_platforms_names_win_over_a_teams_prefix(scratch):
    """A team called `shop` owns shop-*, but never shop-dev-* (the dev cluster's)."""
    shop_team(scratch)
    grant(scratch, "orders", {"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::shop-dev-loki-eu-west-1/*"]})
    assert "is the platform's (names starting shop-dev-" in refused(scratch)
    grant(scratch, "orders", {"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::shop-*"]})
    assert "may name the platform's" in refused(scratch)
    grant(scratch, "orders", {"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::shop-receipts/*"]})
    load("dev", scratch.root)


def test_loosening_the_platform_names_lets_the_hostile_grant_through(scratch, monkeypatch):
    shop_team(scratch)
    grant(scratch, "orders", {"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::shop-dev-loki-eu-west-1/*"]})
    monkeypatch.setattr(ownership, "platform_names", lambda cluster, buckets: ())
    load("dev", scratch.root)


def test_loosening_the_naming_rule_lets_another_teams_queue_through(scratch, monkeypatch):
    grant(scratch, "orders", {"actions": ["sqs:SendMessage"], "resources": [DEV.format(service="sqs", name="messaging-notifications")]})
    assert "is not team checkout's" in refused(scratch)
    monkeypatch.setattr(ownership, "arn_problem", lambda *args, **kwargs: None)
    load("dev", scratch.root)


def test_a_bucket_the_stack_names_for_an_addon_is_the_platforms(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["logging"]["settings"].update(bucketName="checkout-logs"))
    grant(scratch, "orders", {"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::checkout-logs/*"]})
    assert "is Loki's bucket: platform resources are never referenceable" in refused(scratch)


# -- AWS: scaling.sqs ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, fragment", [("shop-dev", "Karpenter's interruption queue"), ("checkout-orders", "is not team messaging's")])
def test_a_queue_the_team_does_not_own_is_refused(scratch, capsys, name, fragment):
    queue(scratch, "notifications", name)
    msg = refused(scratch)
    assert "stacks/services/messaging/notifications.yaml: scaling.sqs.queueName:" in msg and fragment in msg, msg
    assert "scaling.sqs.queueName:" in scratch.rejected(capsys)


# -- offers --------------------------------------------------------------------------------------


def test_an_offered_resource_is_the_named_teams_only(scratch):
    events = DEV.format(service="sqs", name="shop-events")
    offer(scratch, aws=[{"arn": events, "teams": ["messaging"], "why": "order events, published by the platform's outbox"}])
    scratch.edit("stacks/services/messaging/notifications.yaml", lambda d: d["envs"]["dev"].update(scaling={"sqs": {"queueName": "shop-events"}}))
    load("dev", scratch.root)
    grant(scratch, "orders", {"actions": ["sqs:SendMessage"], "resources": [events]})
    assert "offered to checkout: none" in refused(scratch)


def test_a_prefix_offer_covers_what_it_starts_with(scratch):
    offer(scratch, aws=[{"arn": "arn:aws:s3:::acme-public-assets/*", "why": "the shop's public images, read by every team"}])
    grant(scratch, "orders", {"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::acme-public-assets/img/*"]})
    load("dev", scratch.root)
    grant(scratch, "orders", {"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::acme-public-assets-2/*"]})
    assert "is not team checkout's" in refused(scratch)


@pytest.mark.parametrize(
    "offers, fragment",
    [
        (
            {"aws": [{"arn": DEV.format(service="sqs", name="shop-dev"), "why": "x"}]},
            "offers.aws[0].arn: 'arn:aws:sqs:eu-west-1:111122223333:shop-dev' is Karpenter's",
        ),
        ({"aws": [{"arn": "arn:aws:s3:::shop-dev-backup-eu-west-1/*", "why": "x"}]}, "the platform never offers its own resources"),
        (
            {"aws": [{"arn": "arn:aws:s3:::acme-*-assets", "why": "x"}]},
            "offers.aws[0].arn: 'arn:aws:s3:::acme-*-assets': an offer names one resource, or a prefix ending in `*`",
        ),
        ({"vault": [{"path": "checkout/payment", "why": "x"}]}, "offers.vault[0].path: 'checkout/payment' is under team 'checkout'"),
        ({"vault": [{"path": "shared/tls", "teams": ["nobody"], "why": "x"}]}, "offers.vault[0].teams: ['nobody'] are not teams"),
    ],
)
def test_the_platform_cannot_offer_its_own_or_a_teams_own(scratch, capsys, offers, fragment):
    offer(scratch, **offers)
    msg = refused(scratch)
    assert "stacks/dev.yaml:" in msg and fragment in msg, msg
    scratch.rejected(capsys)


# -- tags ----------------------------------------------------------------------------------------


def test_a_tagged_grant_renders_the_team_tag_condition(scratch):
    keys = DEV.format(service="kms", name="key/*")
    grant(scratch, "orders", {"actions": ["kms:Decrypt"], "resources": [keys], "tagged": True})
    [statement] = workload_statements(run("dev", scratch.root), "orders")
    assert statement["Resource"] == [keys]
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/team": "checkout"}}


def test_an_untagged_grant_on_keys_the_team_cannot_name_is_refused(scratch):
    grant(scratch, "orders", {"actions": ["kms:Decrypt"], "resources": [DEV.format(service="kms", name="key/*")]})
    assert "may name the platform's" in refused(scratch)


def test_a_tagged_grant_needs_actions_that_honour_the_tag(scratch):
    stream = DEV.format(service="dynamodb", name="table/checkout-orders/stream/*")
    grant(scratch, "orders", {"actions": ["dynamodb:GetRecords"], "resources": [stream], "tagged": True})
    assert "does not support the aws:ResourceTag/team condition" in refused(scratch)
    assert iam_actions.expand("dynamodb:GetRecords") and not arns.tag_conditioned("dynamodb:GetRecords", stream)
    assert arns.tag_conditioned("kms:Decrypt", DEV.format(service="kms", name="key/*"))


def test_a_tagged_grant_still_cannot_name_a_platform_resource(scratch):
    grant(scratch, "orders", {"actions": ["sqs:ReceiveMessage"], "resources": [DEV.format(service="sqs", name="shop-dev")], "tagged": True})
    assert "Karpenter's interruption queue" in refused(scratch)


# -- Vault ---------------------------------------------------------------------------------------


def test_an_offered_vault_path_is_readable_and_in_the_teams_vault_policy(scratch):
    for stack in ("dev", "staging", "prod"):
        offer(scratch, stack, vault=[{"path": "shared/tls", "teams": ["checkout"], "why": "the partner CA bundle"}])
    scratch.edit(
        "stacks/services/checkout/payment.yaml", lambda d: d["secrets"].append({"name": "partner-ca", "vaultPath": "shared/tls/partner", "keys": ["CA_PEM"]})
    )
    load("dev", scratch.root)
    policy = eso.team_policy("checkout", "secret", ("shared/tls",))
    assert 'path "secret/data/shared/tls/*"' in policy and 'path "secret/data/checkout/*"' in policy
    rec = run("dev", scratch.root)
    vault_policies = [r.inputs.get("policy", "") for r in rec.resources if r.type == "vault:index/policy:Policy"]
    assert any("shared/tls" in p and "checkout/" in p for p in vault_policies)
    assert not any("shared/tls" in p and "web/" in p for p in vault_policies), "only the teams it is offered to read it"


def test_a_vault_path_offered_to_another_team_is_refused(scratch, capsys):
    for stack in ("dev", "prod"):
        offer(scratch, stack, vault=[{"path": "shared/tls", "teams": ["web"], "why": "the partner CA bundle"}])
    scratch.edit(
        "stacks/services/checkout/payment.yaml", lambda d: d["secrets"].append({"name": "partner-ca", "vaultPath": "shared/tls/partner", "keys": ["CA_PEM"]})
    )
    assert "secrets[1].vaultPath: 'shared/tls/partner' is outside what team 'checkout' may read in Vault" in refused(scratch)
    scratch.rejected(capsys)
