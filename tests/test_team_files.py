"""The file's location is its team, and traffic between teams needs the callee's consent (issue 23, items 2 and 3)."""

from __future__ import annotations

import os

import pytest
from conftest import ROOT
from test_declarations import refused

from components.spec import load
from components.spec.team_files import team_of


def test_the_team_is_the_folder():
    services = {s.name: s.team for s in load("dev", ROOT).services}
    assert services == {"inventory": "catalog", "notifications": "messaging", "orders": "checkout", "payment": "checkout", "storefront": "web"}
    for path in ROOT.glob("stacks/services/*/*.yaml"):
        assert "\nteam:" not in path.read_text(), path


def test_team_of_a_path():
    assert team_of("stacks/services/web/storefront.yaml") == "web"
    assert team_of("stacks/services/storefront.yaml") is None
    assert team_of("stacks/dev.yaml") is None


def test_a_moved_file_belongs_to_its_new_folder(scratch):
    rel = scratch.move_service("payment", "web")
    # Its egress is granted to checkout, not to web: that grant is not the rule under test here.
    scratch.edit(rel, lambda d: d.pop("egress", None))
    # Its Vault path is the checkout team's: refused in its new team.
    assert f"{rel}: secrets[0].vaultPath: 'checkout/payment/provider' is outside what team 'web' may read in Vault" in refused(scratch)
    scratch.edit(rel, lambda d: d.pop("secrets"))
    # Its caller orders (checkout) now calls another team's service, which has not agreed to it.
    assert "stacks/services/checkout/orders.yaml: dependsOn[0]: service 'payment' of team 'web'" in refused(scratch)


def test_a_declared_team_is_refused(scratch, capsys):
    scratch.edit("stacks/services/checkout/payment.yaml", lambda d: d.update(team="checkout"))
    msg = refused(scratch)
    assert "stacks/services/checkout/payment.yaml: team: a service does not declare its team: the folder says it is 'checkout'; remove the key" in msg
    # A file that claims another team is refused the same way: the claim is never read.
    scratch.edit("stacks/services/checkout/payment.yaml", lambda d: d.update(team="web"))
    assert "stacks/services/checkout/payment.yaml: team: a service does not declare its team" in scratch.rejected(capsys)


def test_a_team_in_an_overlay_is_refused(scratch):
    scratch.edit("stacks/services/checkout/payment.yaml", lambda d: d.setdefault("envs", {}).setdefault("prod", {}).update(team="web"))
    assert "stacks/services/checkout/payment.yaml: envs.prod.team: cannot be overridden per stack" in refused(scratch)


def test_a_file_outside_a_team_folder_is_refused(scratch, capsys):
    scratch.write("stacks/services/reviews.yaml", {"name": "reviews", "image": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/reviews:1.0.0", "port": 8080})
    err = scratch.rejected(capsys)
    assert "stacks/services/reviews.yaml: is outside a team folder; move it to stacks/services/<team>/reviews.yaml" in err


def test_a_symlinked_service_file_is_refused(scratch, capsys):
    # A link into another team's folder would let this folder's owners review that team's file.
    os.symlink(scratch.path("stacks/services/checkout/payment.yaml"), scratch.path("stacks/services/web/payment.yaml"))
    err = scratch.rejected(capsys)
    assert "stacks/services/web/payment.yaml: is a symlink; a service file must be a regular file in its team's folder" in err


def test_a_symlinked_team_folder_is_refused(scratch, capsys):
    os.symlink(scratch.path("stacks/services/checkout"), scratch.path("stacks/services/payments"))
    assert "stacks/services/payments: is a symlink; a team folder must be a real folder" in scratch.rejected(capsys)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_without_reading_it(scratch, capsys):
    # Reading a FIFO would block forever: it is refused by its type, before any read.
    os.mkfifo(scratch.path("stacks/services/web/reviews.yaml"))
    assert "stacks/services/web/reviews.yaml: is not a regular file; a team folder holds only service files" in scratch.rejected(capsys)


def test_a_folder_inside_a_team_folder_is_refused(scratch, capsys):
    scratch.write("stacks/services/web/nested/reviews.yaml", {"name": "reviews"})
    assert "stacks/services/web/nested: is a folder; a team folder holds only service files" in scratch.rejected(capsys)


def test_another_file_in_a_team_folder_is_refused(scratch, capsys):
    scratch.write("stacks/services/web/notes.txt", "hello\n")
    assert "stacks/services/web/notes.txt: declaration files end in .yaml; only .yaml service files belong here" in scratch.rejected(capsys)


# -- consent for cross-team traffic -------------------------------------------------------------


def test_a_cross_team_dependency_needs_the_callees_consent(scratch, capsys):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(allowedCallers=["web/storefront"]))
    err = scratch.rejected(capsys)
    # Both files are named: the caller's line, and the callee's file where consent would go.
    assert (
        "stacks/services/checkout/orders.yaml: dependsOn[1]: service 'inventory' of team 'catalog' (stacks/services/catalog/inventory.yaml) "
        "does not allow calls from checkout/orders; its owners must add 'checkout/orders' to allowedCallers in stacks/services/catalog/inventory.yaml"
    ) in err


def test_a_whole_team_may_be_allowed(scratch):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(allowedCallers=["checkout/*", "web/storefront"]))
    assert {s.name for s in load("dev", scratch.root).services} >= {"orders", "inventory"}


def test_the_own_team_needs_no_consent():
    orders = next(s for s in load("dev", ROOT).services if s.name == "orders")
    # orders calls payment (its own team) without payment listing it.
    assert "payment" in orders.depends_on
    assert not next(s for s in load("dev", ROOT).services if s.name == "payment").allowed_callers


@pytest.mark.parametrize(
    ("callers", "message"),
    [
        (["storefront"], "'storefront' is not <team>/<service> or <team>/*"),
        (["web/Storefront"], "is not <team>/<service> or <team>/*"),
        (["catalog/reviews"], "services of the own team need no consent"),
        (["web/storefront", "web/storefront"], "duplicate entries"),
    ],
)
def test_malformed_consent_is_refused(scratch, callers, message):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(allowedCallers=callers))
    msg = refused(scratch)
    assert "stacks/services/catalog/inventory.yaml: allowedCallers" in msg and message in msg


def test_the_callees_policies_admit_exactly_the_consented_callers(dev):
    principals = dev.manifest("AuthorizationPolicy", "inventory", "catalog")["spec"]["rules"][0]["from"][0]["source"]["principals"]
    assert principals[:2] == ["cluster.local/ns/checkout/sa/orders", "cluster.local/ns/web/sa/storefront"]
    policy = dev.manifest("NetworkPolicy", "inventory", "catalog")["spec"]["ingress"][0]["from"]
    assert {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in policy} == {"checkout", "web"}


# -- CODEOWNERS -----------------------------------------------------------------------------------


def test_codeowners_is_current():
    from components.spec import codeowners

    assert (ROOT / codeowners.PATH).read_text() == codeowners.render(ROOT), "run `make codeowners`"


def test_each_team_folder_is_owned_by_the_owners_its_stack_files_list():
    from components.spec import codeowners

    lines = codeowners.render(ROOT).splitlines()
    assert lines[1] == "* @acme-shop/platform"
    assert "/stacks/services/checkout/ @acme-shop/checkout" in lines


def test_a_team_folder_without_owners_is_an_error(scratch):
    from components.spec import SpecError, codeowners

    for env in ("dev", "staging", "prod"):
        scratch.edit(f"stacks/{env}.yaml", lambda d: d["teams"]["web"].pop("owners"))
    with pytest.raises(SpecError) as err:
        codeowners.render(scratch.root)
    assert "stacks/services/web: team 'web' has no owners: add teams.web.owners in every stacks/<env>.yaml" in str(err.value)


def test_owners_from_every_environment_are_merged(scratch):
    from components.spec import codeowners

    scratch.edit("stacks/prod.yaml", lambda d: d["teams"]["web"].update(owners=["@acme-shop/web", "@acme-shop/web-oncall"]))
    assert "/stacks/services/web/ @acme-shop/web @acme-shop/web-oncall" in codeowners.render(scratch.root)


@pytest.mark.parametrize("owner", ["acme-shop/web", "@", "@acme shop", "web@acme-shop.com"])
def test_a_malformed_owner_is_refused(scratch, owner):
    scratch.edit("stacks/dev.yaml", lambda d: d["teams"]["web"].update(owners=[owner]))
    assert "stacks/dev.yaml: teams.web.owners" in refused(scratch)
