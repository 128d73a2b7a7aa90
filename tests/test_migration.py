"""Migration that loses nothing (issue 23, item 7): the platform stack and the team stacks render
exactly what the single stack rendered, each object in one stack, and `pulumi state move` lands
every moved resource on a URN the team program declares."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import ROOT

from engine.migrate import commands, main, moved_urn, plan, rekey

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
    text = "\n".join(commands(env, moves, "acme-shop", "state-bucket"))
    assert f"pulumi state move --source acme-shop/platform/{env} --dest acme-shop/platform-teams/checkout-{env} --yes" in text
    assert f"'urn:pulumi:{env}::platform::platform:index:Platform$platform:workloads:Workloads$platform:workloads:Microservice::orders'" in text


def test_each_team_stack_then_moves_into_its_teams_own_state(planned):
    """`pulumi state move` stays in one backend; each team stack then moves whole into
    s3://<bucket>/teams/<team>, re-encrypted, before the platform backend forgets it."""
    env, moves, _, _ = planned
    lines = commands(env, moves, "acme-shop", "state-bucket")
    for move in moves:
        dest, team = f"acme-shop/platform-teams/{move.stack}", f"PULUMI_BACKEND_URL=s3://state-bucket/teams/{move.team} "
        # In the team's own (self-managed) backend the stack is organization/..., whatever the platform's organization.
        there = f"organization/platform-teams/{move.stack}"
        run = f'{team}PULUMI_CONFIG_PASSPHRASE="$TEAM_STACKS_PASSPHRASE" pulumi'
        steps = [
            f"python -m engine.contract --env {env} --outputs platform-outputs.json --team {move.team}",
            f"{run} -C contract up --stack organization/platform/{env} --yes",
            f"pulumi stack export --stack {dest} --show-secrets --file {move.stack}.plain.json",
            f"rm -f teams/Pulumi.{move.stack}.yaml",
            f"{run} -C teams stack init {there}",
            f"{run} stack import --stack {there} --file {move.stack}.rekeyed.json",
            f"shred -u {move.stack}.plain.json {move.stack}.rekeyed.json {move.stack}.target.json",
            f"{run} -C teams preview --stack {there} --diff --expect-no-changes",
            f"pulumi stack rm --stack {dest} --force --yes",
        ]
        at = [lines.index(step) for step in steps]
        # In this order, after the state moves and the platform's own update, whose outputs are the contract.
        outputs = lines.index(f"pulumi stack output --stack acme-shop/platform/{env} --json > platform-outputs.json")
        assert at == sorted(at) and lines.index(f"pulumi -C . up --stack acme-shop/platform/{env} --diff") < outputs < at[0]
    # The platform's passphrase decrypts the export; nothing of the team stacks' runs under it.
    assert lines.index('export PULUMI_CONFIG_PASSPHRASE="$PLATFORM_PASSPHRASE"') < lines.index(
        f"pulumi -C teams stack init acme-shop/platform-teams/{moves[0].stack}"
    )


def _export(provider: dict, resources: list) -> dict:
    return {"version": 3, "deployment": {"manifest": {}, "secrets_providers": provider, "resources": resources}}


def test_rekey_gives_the_export_the_new_stacks_secrets_provider(tmp_path, capsys):
    old, new = {"type": "passphrase", "state": {"salt": "old"}}, {"type": "passphrase", "state": {"salt": "new"}}
    plain = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "plaintext": '"kubeconfig"'}
    exported = _export(old, [{"urn": "u", "outputs": {"kubeconfig": plain}}])
    assert rekey(exported, _export(new, [])) == _export(new, [{"urn": "u", "outputs": {"kubeconfig": plain}}])
    (tmp_path / "e.json").write_text(json.dumps(exported))
    (tmp_path / "t.json").write_text(json.dumps(_export(new, [])))
    assert main(["--rekey", str(tmp_path / "e.json"), str(tmp_path / "t.json")]) == 0
    assert json.loads(capsys.readouterr().out)["deployment"]["secrets_providers"] == new


@pytest.mark.parametrize(
    "exported, target, message",
    [
        # Still encrypted under the platform's key: the new stack could never decrypt it.
        (_export({}, [{"outputs": {"k": {"ciphertext": "v1:abc"}}}]), _export({"type": "passphrase"}, []), "--show-secrets"),
        (_export({}, []), {"version": 3, "deployment": {}}, "names no secrets provider"),
        ({"resources": []}, _export({"type": "passphrase"}, []), "the export is not a `pulumi stack export`"),
    ],
)
def test_rekey_refuses_what_would_not_import(tmp_path, capsys, exported, target, message):
    (tmp_path / "e.json").write_text(json.dumps(exported))
    (tmp_path / "t.json").write_text(json.dumps(target))
    assert main(["--rekey", str(tmp_path / "e.json"), str(tmp_path / "t.json")]) == 2
    assert message in capsys.readouterr().err
    with pytest.raises(ValueError, match=message.replace("`", ".").replace("-", ".")):
        rekey(exported, target)


def test_make_migrate_refuses_a_stack_without_a_state_bucket(scratch, capsys):
    scratch.edit("stacks/dev.yaml", lambda d: d.pop("teamDeploy"))
    assert main(["dev", "--root", str(scratch.root)]) == 2
    assert "teamDeploy" in capsys.readouterr().err


def test_make_migrate_refuses_an_unknown_stack(capsys):
    assert main(["staging-nope"]) == 2
    assert "no declaration for stack 'staging-nope'" in capsys.readouterr().err
