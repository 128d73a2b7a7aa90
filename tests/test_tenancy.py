"""Tenant boundaries in the declarations: team names, public hosts, where critical pods run."""

from __future__ import annotations

import copy

import pytest
from conftest import ROOT
from test_declarations import refused

from components.addons import discover
from components.spec import catalog, load
from components.spec.tenancy import reserved_namespaces
from engine.preview import main as preview


def preview_refuses(scratch, capsys, *needles: str) -> str:
    """`make preview` exits 2, names the file and key, and writes nothing."""
    assert preview(["dev", "--root", str(scratch.root), "--out", str(scratch.root / "out")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err
    assert not (scratch.root / "out").exists()
    return err


# -- 1. team names ------------------------------------------------------------------------------


def test_reserved_namespaces_come_from_the_addon_registry():
    reserved = reserved_namespaces(catalog.discover().values())
    assert "default" in reserved
    # Every addon's own namespace and the extra ones it creates, enabled or not.
    for addon in discover().values():
        assert set(addon.namespaces()) <= set(reserved)
    assert {"istio-ingress", "flagger-loadtester", "vault", "argocd", "chaos-mesh"} <= set(reserved)


def test_an_addon_cannot_create_an_undeclared_namespace(monkeypatch):
    """The reserved list is complete because creating an undeclared namespace fails."""
    from components.addons.istio import Istio

    monkeypatch.setattr(Istio, "extra_namespaces", ())
    from engine.runtime import ProgramError
    from engine.stacks import run

    with pytest.raises((TypeError, ProgramError), match="istio-ingress"):
        run("dev", ROOT)


@pytest.mark.parametrize(
    "team", ["kube-system", "kube-anything", "default", "istio-system", "istio-ingress", "vault", "argocd", "flagger-loadtester", "monitoring"]
)
def test_reserved_team_names_are_refused(scratch, capsys, team):
    rel = scratch.move_service("inventory", team)
    msg = refused(scratch)
    assert f"{rel}: team: team {team!r} is a reserved namespace" in msg
    # The error says what is reserved.
    assert "kube-*" in msg and "default" in msg and "istio-system" in msg and "external-secrets" in msg
    preview_refuses(scratch, capsys, f"{rel}: team:")


def test_reserved_team_budget_is_refused(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["teams"].update({"cert-manager": {"cpu": "1", "memory": "1Gi", "pods": 2}}))
    assert "stacks/dev.yaml: teams.cert-manager: team 'cert-manager' is a reserved namespace" in refused(scratch)


@pytest.mark.parametrize("team", ["Checkout", "check_out", "-web", "a" * 41])
def test_team_must_be_a_dns_label(scratch, team):
    rel = scratch.move_service("inventory", team)
    assert f"{rel}: team: String should match pattern" in refused(scratch)


def test_ordinary_team_name_loads(scratch):
    scratch.move_service("inventory", "kubernetes-fans")
    for stack in ("dev", "staging", "prod"):
        # The budget and alert routes of an existing team, under the new name (not its networks: each has one owner).
        scratch.edit(f"stacks/{stack}.yaml", lambda d: d["teams"].update({"kubernetes-fans": {**copy.deepcopy(d["teams"]["checkout"]), "egress": {}}}))
    assert {s.team for s in load("dev", scratch.root).services} >= {"kubernetes-fans"}


# -- 4. hosts -----------------------------------------------------------------------------------


def test_sample_hosts_are_under_the_stacks_domains():
    for stack in ("dev", "staging", "prod"):
        decl = load(stack, ROOT)
        hosts = [s.expose.host for s in decl.services if s.expose]
        assert hosts and all(any(h == d or h.endswith("." + d) for d in decl.spec.ingress.domains) for h in hosts)


def test_second_claim_on_a_host_names_both_files(scratch, capsys):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(expose={"host": "shop.dev.acme-shop.com"}))
    msg = refused(scratch)
    assert (
        "stacks/services/web/storefront.yaml: expose.host: host 'shop.dev.acme-shop.com' is already routed to service 'inventory' (stacks/services/catalog/inventory.yaml)"
    ) in msg
    preview_refuses(scratch, capsys, "stacks/services/web/storefront.yaml: expose.host:", "stacks/services/catalog/inventory.yaml")


def test_distinct_hosts_under_the_domain_load(scratch):
    # Each stack's host in its own zone: a prod host under dev.acme-shop.com is refused (test_hosts_and_names.py).
    def hosts(d):
        d["expose"] = {"host": "api.acme-shop.com"}
        d["envs"].setdefault("dev", {}).update(expose={"host": "api.dev.acme-shop.com"})
        d["envs"].setdefault("staging", {}).update(expose={"host": "api.staging.acme-shop.com"})

    scratch.edit("stacks/services/catalog/inventory.yaml", hosts)
    hosts = {s.name: s.expose.host for s in load("dev", scratch.root).services if s.expose}
    assert hosts == {"inventory": "api.dev.acme-shop.com", "storefront": "shop.dev.acme-shop.com"}


def test_host_outside_the_stacks_domains_is_refused(scratch, capsys):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(expose={"host": "login.bank.example.org"}))
    msg = refused(scratch)
    assert (
        "stacks/services/catalog/inventory.yaml: expose.host: host 'login.bank.example.org' is not under a domain this stack serves; ingress.domains: dev.acme-shop.com"
        in msg
    )
    preview_refuses(scratch, capsys, "stacks/services/catalog/inventory.yaml: expose.host:")


def test_lookalike_suffix_is_not_under_the_domain(scratch):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(expose={"host": "shop.evildev.acme-shop.com.attacker.io"}))
    assert "is not under a domain this stack serves" in refused(scratch)
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(expose={"host": "xdev.acme-shop.com"}))
    assert "is not under a domain this stack serves" in refused(scratch)


@pytest.mark.parametrize(
    "host, why",
    [
        ("*.dev.acme-shop.com", "String should match pattern"),
        ("shop..dev.acme-shop.com", "is not a DNS label"),
        ("-shop.dev.acme-shop.com", "String should match pattern"),
        ("shop-.dev.acme-shop.com", "is not a DNS label"),
        ("a" * 64 + ".dev.acme-shop.com", "is not a DNS label"),
        ("localhost", "is not a fully qualified host name"),
    ],
)
def test_malformed_hosts_are_refused(scratch, host, why):
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d["envs"]["dev"].update(expose={"host": host}))
    msg = refused(scratch)
    assert "stacks/services/web/storefront.yaml: envs.dev.expose.host:" in msg and why in msg


def test_exposing_without_declared_domains_is_refused(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d.pop("ingress"))
    assert "ingress.domains: none (the stack file declares no ingress.domains)" in refused(scratch)


def test_wildcard_domain_in_the_stack_is_refused(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["ingress"].update(domains=["*.example.com"]))
    assert "stacks/dev.yaml: ingress.domains: '*.example.com' is a wildcard" in refused(scratch)


# -- 6. scheduling follows the pools --------------------------------------------------------------


def _critical_pool(data: dict) -> dict:
    return next(p for p in data["karpenter"]["nodePools"] if p.get("labels", {}).get("service-tier") == "critical")


def test_critical_pods_take_the_pools_labels_and_taints(scratch):
    from engine.stacks import run

    def retaint(d):
        pool = _critical_pool(d)
        pool["labels"] = {"service-tier": "critical", "hardware": "fast"}
        pool["taints"] = ["tier=critical:NoSchedule", "flaky=yes:NoExecute"]

    scratch.edit("stacks/dev.yaml", retaint)
    recording = run("dev", scratch.root)
    spec = recording.manifest("Deployment", "payment", "checkout")["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"hardware": "fast", "service-tier": "critical"}
    assert spec["tolerations"] == [
        {"key": "tier", "operator": "Equal", "value": "critical", "effect": "NoSchedule"},
        {"key": "flaky", "operator": "Equal", "value": "yes", "effect": "NoExecute"},
    ]


def test_critical_services_without_a_critical_pool_are_refused(scratch, capsys):
    scratch.edit("stacks/dev.yaml", lambda d: _critical_pool(d).update(labels={"hardware": "fast"}))
    msg = refused(scratch)
    assert (
        "stacks/dev.yaml: karpenter.nodePools: services orders, payment are tier critical, but no node pool carries the label service-tier: critical"
    ) in msg
    preview_refuses(scratch, capsys, "stacks/dev.yaml: karpenter.nodePools:", "service-tier: critical")


def test_no_critical_pool_is_fine_without_critical_services(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: _critical_pool(d).update(labels={"hardware": "fast"}))
    for name in ("orders", "payment"):
        scratch.edit(scratch.service_file(name), lambda d: d.update(tier="standard"))
    assert not [s for s in load("dev", scratch.root).services if s.tier == "critical"]


def test_two_critical_pools_are_ambiguous(scratch):
    def second(d):
        d["karpenter"]["nodePools"][0]["labels"] = {"service-tier": "critical"}

    scratch.edit("stacks/dev.yaml", second)
    assert "pools general, critical all carry service-tier: critical; label exactly one pool" in refused(scratch)
