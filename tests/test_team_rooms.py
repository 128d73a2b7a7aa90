"""The teams' rooms in the contract (issue 23): each room names the deploy role the platform made
for its team, and every team the environment declares with a budget has a room and a team stack,
services or not yet (docs/platform.md#a-room-for-every-declared-team)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT
from test_team_deploy import ENTRY, deploy_roles, mocked_arn

from components import stack_contract
from engine.preview import main as preview
from engine.runtime import ProgramError
from engine.stacks import run_environment, run_platform, run_team, team_stack, teams_in

TEAMS = ["catalog", "checkout", "messaging", "web"]
# A team onboarded in dev: declared by the platform team, no service file (not even a folder) yet.
NEWCOMER = {"cpu": "1", "memory": "1Gi", "pods": 5, "alerts": {"critical": "web-pager", "warning": "web-slack"}, "owners": ["@acme-shop/search"]}


@pytest.fixture(scope="module")
def platform_dev():
    return run_platform("dev", ROOT)


@pytest.mark.parametrize("team", TEAMS)
def test_each_room_names_the_deploy_role_made_for_its_team(dev, team):
    room = dev.outputs["teamRooms"][team]
    role = deploy_roles(dev)[team]
    assert role.inputs["tags"] == {"team": team}
    # The role resource's own ARN (the engine's ARN of that auto-named resource), the one its
    # namespace-scoped access entry names: wired from the resource, not a name guessed by a rule.
    assert room["deployRoleArn"] == mocked_arn("role", role.name)
    [entry] = [e for e in dev.of_type(ENTRY) if e.inputs["principalArn"] == room["deployRoleArn"]]
    assert entry.name == role.name
    assert len({dev.outputs["teamRooms"][t]["deployRoleArn"] for t in TEAMS}) == len(TEAMS)


def test_the_team_stack_exports_its_deploy_role(dev):
    for team in TEAMS:
        assert dev.stacks[f"{team}-dev"].outputs["deployRoleArn"] == dev.outputs["teamRooms"][team]["deployRoleArn"]


def test_the_deploy_role_is_no_secret(stack):
    rooms = stack.stacks[stack.stack].outputs["teamRooms"]
    assert all(room["deployRoleArn"].startswith("arn:aws:iam::") for room in rooms.values())
    assert "[secret]" not in json.dumps(rooms)


def without_role(outputs: dict, team: str, value: object = None) -> dict:
    rooms = json.loads(json.dumps(outputs["teamRooms"]))
    if value is None:
        del rooms[team]["deployRoleArn"]
    else:
        rooms[team]["deployRoleArn"] = value
    return {**outputs, "teamRooms": rooms}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "the platform stack's room for team 'web' has no 'deployRoleArn' (teamRooms.web.deployRoleArn"),
        ("", "the platform stack's room for team 'web' has no 'deployRoleArn'"),
        (
            "arn:aws:iam::123456789012:policy/web-deploy",
            "the platform stack's teamRooms.web.deployRoleArn is 'arn:aws:iam::123456789012:policy/web-deploy', not the ARN of an IAM role",
        ),
        ("[secret]", "the platform stack's output 'teamRooms' is a secret"),
    ],
)
def test_a_room_without_a_deploy_role_is_refused_by_name(platform_dev, value, message):
    outputs = without_role(platform_dev.outputs, "web", value)
    assert any(message in p for p in stack_contract.problems(outputs, "web"))
    # Another team's room is whole: only web's stack is refused (a secret in the output refuses all).
    assert (stack_contract.problems(outputs, "checkout") == []) is (value != "[secret]")
    with pytest.raises(ProgramError) as err:
        run_team("web", "dev", ROOT, type(platform_dev)(stack="dev", resources=[], outputs=outputs))
    assert f"stack web-dev: {message}" in str(err.value)


def test_a_platform_without_the_deploy_role_fails_the_team_preview_with_exit_2(scratch, tmp_path, capsys):
    main = scratch.path("__main__.py")
    main.write_text(
        main.read_text().replace(
            'pulumi.export("teamRooms", platform.room_contract())',
            'pulumi.export("teamRooms", {t: {k: v for k, v in r.items() if k != "deployRoleArn"} for t, r in platform.room_contract().items()})',
        )
    )
    assert preview(["web-dev", "--root", str(scratch.root), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "stack web-dev: the platform stack's room for team 'web' has no 'deployRoleArn'" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_an_environment_without_team_deploy_has_no_team_stack_to_deploy(scratch, tmp_path, capsys):
    # Without teamDeploy nobody but the platform could deploy a team stack: refused, with the fix.
    scratch.edit("stacks/dev.yaml", lambda d: d.pop("teamDeploy"))
    assert preview(["checkout-dev", "--root", str(scratch.root), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "has no 'deployRoleArn'" in err and "when stacks/<env>.yaml has teamDeploy" in err and "Traceback" not in err


def onboarded(scratch) -> None:
    scratch.edit("stacks/dev.yaml", lambda d: d["teams"].update(search=NEWCOMER))


def test_a_declared_team_without_services_has_a_room_and_an_empty_stack(scratch):
    onboarded(scratch)
    assert team_stack("search-dev", scratch.root) == ("search", "dev")
    assert teams_in("dev", scratch.root) == sorted([*TEAMS, "search"])
    env = run_environment("dev", scratch.root)
    platform, stack = env.stacks["dev"], env.stacks["search-dev"]
    # The room: namespace, quota, default-deny, SecretStore, Vault role, AppProject, deploy role.
    room = {(r.kind, r.metadata["name"]) for r in platform.kubernetes_objects() if r.metadata.get("namespace") == "search" or r.metadata["name"] == "search"}
    assert {("Namespace", "search"), ("ResourceQuota", "team-budget"), ("SecretStore", "vault"), ("AppProject", "search")} <= room, room
    assert any(r.kind == "NetworkPolicy" for r in platform.kubernetes_objects() if r.metadata.get("namespace") == "search")
    assert any(r.name.endswith("-search") for r in platform.of_type("vault:kubernetes/authBackendRole:AuthBackendRole"))
    assert env.outputs["teamRooms"]["search"]["deployRoleArn"] == mocked_arn("role", deploy_roles(platform)["search"].name)
    # The team stack: valid, deployed by the team's role, and nothing in it yet.
    assert stack.outputs["services"] == [] and stack.outputs["deployRoleArn"] == env.outputs["teamRooms"]["search"]["deployRoleArn"]
    assert not stack.kubernetes_objects() and not stack.of_type("platform:workloads:Microservice")


def test_a_team_whose_services_are_off_in_an_environment_keeps_its_room_and_stack(scratch):
    # Its stack must survive its last service there: it is the stack that deletes the service.
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d.setdefault("envs", {}).setdefault("dev", {}).update(enabled=False))
    assert team_stack("web-dev", scratch.root) == ("web", "dev")
    env = run_environment("dev", scratch.root)
    assert "web-dev" in env.stacks and env.stacks["web-dev"].outputs["services"] == []
    assert "web" in env.outputs["teamRooms"] and env.stacks["dev"].named("web", "platform:workloads:TeamNamespace")


def test_make_preview_of_a_declared_team_without_services_succeeds(scratch, tmp_path):
    onboarded(scratch)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "engine.preview", "search-dev", "--root", str(scratch.root), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "stack search-dev:" in done.stdout and "0 services" in done.stdout
    outputs = json.loads((out / "outputs.json").read_text())
    assert outputs["team"] == "search" and outputs["services"] == [] and outputs["deployRoleArn"].startswith("arn:aws:iam::")


@pytest.mark.parametrize("stack", ["nobody-dev", "platform-dev"])
def test_make_preview_of_an_undeclared_team_is_refused_naming_the_known_teams(stack, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "engine.preview", stack, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    team = stack.removesuffix("-dev")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"stacks/dev.yaml: teams: stack {stack!r}: team {team!r} has no room in dev" in done.stderr
    assert "in dev: catalog, checkout, messaging, web" in done.stderr
    assert not out.exists()


def test_the_team_program_refuses_an_undeclared_team_and_accepts_a_declared_one(scratch):
    from components.team_stack import parse_stack

    with pytest.raises(ValueError, match="team 'search' has no room in dev"):
        parse_stack("search-dev", scratch.root)
    onboarded(scratch)
    assert parse_stack("search-dev", scratch.root) == ("search", "dev")
