"""Migration that loses nothing (issue 23, item 7): the platform stack and the team stacks render
exactly what the single stack rendered, each object in one stack, and `pulumi state move` lands
every moved resource on a URN the team program declares."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import ROOT

from engine.migrate import commands, main, moved_urn, plan

# What a split adds by design: each team stack's own providers (they take over the moved copies).
PROVIDERS = "pulumi:providers:"


@pytest.fixture(scope="module", params=["dev", "prod"])
def planned(request):
    return request.param, *plan(request.param, ROOT)


def identity(rec):
    return Counter((r.type, r.name) for r in rec if not r.type.startswith(PROVIDERS))


def test_the_split_renders_exactly_what_the_single_stack_rendered(planned):
    env, _, single, split = planned
    assert identity(split) == identity(single)
    before = {(r.type, r.name): r.inputs for r in single if not r.type.startswith(PROVIDERS)}
    after = {(r.type, r.name): r.inputs for r in split if not r.type.startswith(PROVIDERS)}
    changed = [key for key in before if before[key] != after[key]]
    assert changed == []
    assert single.outputs["canaries"] == split.outputs["canaries"]


def test_no_object_is_in_two_stacks(planned):
    env, _, _, split = planned
    seen = Counter((r.type, r.name) for rec in split.stacks.values() for r in rec if not r.type.startswith(PROVIDERS))
    assert [key for key, n in seen.items() if n > 1] == []
    objects = Counter((r.kind, r.metadata.get("namespace"), r.metadata.get("name")) for rec in split.stacks.values() for r in rec.kubernetes_objects())
    assert [key for key, n in objects.items() if n > 1] == []


def test_the_platform_keeps_its_urns_and_every_moved_urn_is_declared_by_its_team(planned):
    env, moves, single, split = planned
    platform = {r.urn for r in split.stacks[env]}
    assert platform - {r.urn for r in single} == {r.urn for r in split.stacks[env] if r.type.startswith(PROVIDERS)} - {r.urn for r in single}
    moved = [r for r in single if r.urn not in platform]
    team_urns = {r.urn: name for name, rec in split.stacks.items() if name != env for r in rec}
    landed = {moved_urn(r.urn, name) for r in moved for name in split.stacks if moved_urn(r.urn, name) in team_urns}
    assert len(landed) == len(moved)
    # Every team stack resource is accounted for: a moved one, or its own provider.
    assert set(team_urns) - landed == {u for u in team_urns if "::pulumi:providers:" in u}
    assert {m.team for m in moves} == {"catalog", "checkout", "messaging", "web"}
    assert all("platform:workloads:Microservice::" in urn for m in moves for urn in m.urns)


def test_moved_urn():
    old = (
        "urn:pulumi:prod::platform::platform:index:Platform$platform:workloads:Workloads$platform:workloads:Microservice$kubernetes:apps/v1:Deployment::orders"
    )
    assert moved_urn(old, "checkout-prod") == "urn:pulumi:checkout-prod::platform-teams::platform:workloads:Microservice$kubernetes:apps/v1:Deployment::orders"


def test_make_migrate_prints_the_commands(capsys, planned):
    env, moves, _, _ = planned
    text = "\n".join(commands(env, moves, "acme-shop"))
    assert f"pulumi state move --source acme-shop/platform/{env} --dest acme-shop/platform-teams/checkout-{env} --yes" in text
    assert f"'urn:pulumi:{env}::platform::platform:index:Platform$platform:workloads:Workloads$platform:workloads:Microservice::orders'" in text


def test_make_migrate_refuses_an_unknown_stack(capsys):
    assert main(["staging-nope"]) == 2
    assert "no declaration for stack 'staging-nope'" in capsys.readouterr().err
