"""The platform's contract, published into each team's own state (engine/contract.py, contract/).

Offline: what a team's backend receives (exactly the contract, only the team's room) and every
refusal. With the real Pulumi CLI and YAML language host (`make engine-tools`): a team stack logged
into the team's backend, with a passphrase of its own, reads the published contract through a
StackReference, and the contract is published again from a clone that never had its config file.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest
import yaml
from tools import require_engine, team_stand_in

from components import stack_contract
from engine.contract import CONFIG_KEY, main, published
from engine.real.up_local import cli_env
from engine.stacks import platform_of

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "contract"


@pytest.fixture(scope="module")
def outputs() -> dict:
    """The dev platform stack's recorded outputs, as `pulumi stack output --json` prints them."""
    return json.loads(json.dumps(platform_of("dev", ROOT).outputs))


def publish(tmp_path: Path, outputs: dict, team: str, env: str = "dev") -> tuple[int, Path]:
    source = tmp_path / "outputs.json"
    source.write_text(json.dumps(outputs))
    project = tmp_path / "contract"
    project.mkdir(exist_ok=True)
    code = main(["--env", env, "--outputs", str(source), "--team", team, "--project", str(project)])
    return code, project / f"Pulumi.{env}.yaml"


def test_a_team_receives_exactly_the_contract_with_only_its_room(outputs, tmp_path):
    assert len(outputs["teamRooms"]) > 1 and "kubeconfig" in outputs, "the sample has other teams and non-contract outputs"
    contract = published(outputs, "checkout")
    assert tuple(contract) == stack_contract.OUTPUTS
    assert contract["teamRooms"] == {"checkout": outputs["teamRooms"]["checkout"]}
    assert all(contract[name] == outputs[name] for name in stack_contract.OUTPUTS if name != "teamRooms")
    code, config = publish(tmp_path, outputs, "checkout")
    assert code == 0
    written = yaml.safe_load(config.read_text())
    assert list(written) == ["config"] and list(written["config"]) == [CONFIG_KEY] == ["platform:contract"]
    assert written["config"][CONFIG_KEY] == contract
    assert "catalog" not in config.read_text() and "[secret]" not in config.read_text()


def _without(outputs: dict, name: str) -> dict:
    changed = copy.deepcopy(outputs)
    del changed[name]
    return changed


def _with(outputs: dict, path: tuple[str, ...], value: object) -> dict:
    changed = copy.deepcopy(outputs)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    "edit, team, message",
    [
        (lambda o: _without(o, "clusterEndpoint"), "checkout", "no output 'clusterEndpoint'"),
        (lambda o: _without(o, "teamRooms"), "checkout", "no output 'teamRooms'"),
        (lambda o: _with(o, ("clusterCertificateAuthority",), "[secret]"), "checkout", "'clusterCertificateAuthority' is a secret"),
        (lambda o: _with(o, ("teamRooms", "checkout", "namespace"), "[secret]"), "checkout", "'teamRooms' is a secret"),
        (lambda o: _with(o, ("contractVersion",), 2), "checkout", "contract version 2"),
        (lambda o: o, "nobody", "no room for team 'nobody'"),
    ],
)
def test_what_cannot_be_published_is_refused_by_name(outputs, tmp_path, capsys, edit, team, message):
    code, config = publish(tmp_path, edit(outputs), team)
    assert code == 2 and not config.exists()
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]"])
def test_outputs_that_are_not_a_stacks_outputs_are_refused(tmp_path, capsys, text):
    source = tmp_path / "outputs.json"
    source.write_text(text)
    assert main(["--env", "dev", "--outputs", str(source), "--list"]) == 2
    assert "pulumi stack output --json" in capsys.readouterr().err


def test_an_unknown_environment_is_refused(outputs, tmp_path, capsys):
    code, config = publish(tmp_path, outputs, "checkout", env="qa")
    assert code == 2 and not config.exists() and "no stacks/qa.yaml" in capsys.readouterr().err


def test_the_list_names_each_room_and_its_state_from_the_stack_file(outputs, tmp_path, capsys):
    source = tmp_path / "outputs.json"
    source.write_text(json.dumps(outputs))
    assert main(["--env", "dev", "--outputs", str(source), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    bucket = yaml.safe_load((ROOT / "stacks/dev.yaml").read_text())["teamDeploy"]["stateBucket"]
    assert lines == [f"{team} s3://{bucket}/teams/{team}" for team in sorted(outputs["teamRooms"])]


def test_rooms_without_a_state_bucket_are_refused(outputs, scratch, capsys):
    scratch.edit("stacks/dev.yaml", lambda d: d.pop("teamDeploy"))
    source = scratch.root / "outputs.json"
    source.write_text(json.dumps(outputs))
    assert main(["--env", "dev", "--outputs", str(source), "--list", "--root", str(scratch.root)]) == 2
    assert "stacks/dev.yaml: teamDeploy is not set" in capsys.readouterr().err


def test_the_publisher_outputs_exactly_the_contract():
    project = yaml.safe_load((CONTRACT / "Pulumi.yaml").read_text())
    assert project["name"] == stack_contract.PLATFORM_PROJECT and project["runtime"] == "yaml"
    assert CONFIG_KEY == f"{project['name']}:contract" and project["config"]["contract"]["type"] == "object"
    assert project["outputs"] == {name: f"${{contract.{name}}}" for name in stack_contract.OUTPUTS}
    assert "resources" not in project, "the publisher owns nothing"


def test_the_generated_config_is_never_committed():
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "contract/Pulumi.dev.yaml"])
    assert ignored.returncode == 0


# -- with the real Pulumi CLI (make engine-tools) ----------------------------------------------------

PROBE = team_stand_in("  contract: ${platform.outputs}\n")


def _pulumi(tools: Path, home: Path, passphrase: str, *args: str | Path) -> subprocess.CompletedProcess:
    env = cli_env(home, tools, PULUMI_CONFIG_PASSPHRASE=passphrase)
    proc = subprocess.run([str(tools / "pulumi"), *map(str, args), "--non-interactive"], capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, f"pulumi {' '.join(map(str, args))}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_a_team_stack_reads_the_contract_published_into_its_own_state(outputs, tmp_path):
    tools = require_engine("pulumi", "pulumi-language-yaml")
    home = tmp_path / "home"
    backend = tmp_path / "state" / "teams" / "checkout"
    backend.mkdir(parents=True)
    project = tmp_path / "contract"
    project.mkdir()
    (project / "Pulumi.yaml").write_text((CONTRACT / "Pulumi.yaml").read_text())
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "Pulumi.yaml").write_text(PROBE)
    _pulumi(tools, home, "unused", "login", f"file://{backend}")

    def publish_contract() -> None:
        code, _ = publish(tmp_path, outputs, "checkout")
        assert code == 0
        _pulumi(tools, home, "the-publishers", "-C", project, "stack", "select", "--create", "organization/platform/dev")
        _pulumi(tools, home, "the-publishers", "-C", project, "up", "--yes")

    def read_by_the_team() -> dict:
        _pulumi(tools, home, "the-teams", "-C", probe, "stack", "select", "--create", "organization/platform-teams/checkout-dev")
        _pulumi(tools, home, "the-teams", "-C", probe, "up", "--yes")
        return json.loads(_pulumi(tools, home, "the-teams", "-C", probe, "stack", "output", "contract", "--json").stdout)

    publish_contract()
    expected = published(outputs, "checkout")
    read = read_by_the_team()
    assert read == expected and set(read["teamRooms"]) == {"checkout"}
    # What the team program checks, on what it really reads: nothing to refuse.
    assert stack_contract.problems(read, "checkout") == []
    keys = {str(p.relative_to(backend)) for p in backend.rglob("*") if p.is_file() and not p.name.endswith(".attrs")}
    assert ".pulumi/stacks/platform/dev.json" in keys and ".pulumi/stacks/platform-teams/checkout-dev.json" in keys

    # A fresh clone has no config file: published again, the stack's salt comes from its state.
    (project / "Pulumi.dev.yaml").unlink()
    outputs = _with(outputs, ("clusterEndpoint",), "https://NEW.gr7.eu-west-1.eks.amazonaws.com")
    publish_contract()
    assert read_by_the_team()["clusterEndpoint"] == "https://NEW.gr7.eu-west-1.eks.amazonaws.com"


@pytest.mark.parametrize(
    "config, key",
    [
        ({"platform-teams:token": {"secure": "v1:abc"}}, "config.platform-teams:token"),
        ({"platform-teams:settings": {"nested": [{"secure": "v1:abc"}]}}, "config.platform-teams:settings"),
    ],
)
def test_a_team_stack_holds_no_secret(scratch, capsys, config, key):
    """Its state sits in the team's backend, which its pipelines and the preview and drift roles read."""
    from test_declarations import refused

    scratch.write("teams/Pulumi.checkout-dev.yaml", {"config": config, "encryptionsalt": "v1:salt"})
    assert f"teams/Pulumi.checkout-dev.yaml: {key}" in refused(scratch) and "team stacks hold no secret" in refused(scratch)
    scratch.rejected(capsys)


def test_a_team_stacks_plain_config_is_accepted(scratch):
    from components.spec import load

    scratch.write("teams/Pulumi.checkout-dev.yaml", {"config": {"platform-teams:platformOrganization": "acme"}, "encryptionsalt": "v1:salt"})
    assert load("dev", scratch.root).spec.team_deploy is not None


def test_the_ci_matrix_gives_each_team_stack_its_teams_backend(capsys):
    from engine.touched import main as touched

    assert touched(["--all", "--kind", "team"]) == 0
    rows = json.loads(capsys.readouterr().out)["include"]
    assert rows and all(r["state"] == f"s3://acme-shop-pulumi-state/teams/{r['stack'].removesuffix('-' + r['environment'])}" for r in rows)


def test_team_stacks_without_a_state_bucket_are_refused(scratch, capsys):
    from engine.touched import main as touched

    scratch.edit("stacks/dev.yaml", lambda d: d.pop("teamDeploy"))
    assert touched(["--all", "--root", str(scratch.root)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "stacks/dev.yaml: teamDeploy is not set, but team 'catalog' has a stack in dev" in captured.err
