"""The last leg of `make migrate`, on the real Pulumi CLI: a team stack moves out of the platform's
backend into its team's own, exactly by the commands the plan prints (engine/migrate.py).

A Pulumi YAML program stands in for the team program (the Python language host cannot be built
here); what is tested is the state's journey, which does not depend on the program's language:
its secret survives, re-encrypted under the team stacks' passphrase (readable with it, not with the
platform's), no plaintext stays on disk or in the new state, and the platform's backend forgets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT
from tools import require_engine, team_stand_in

from engine.contract import published, write_config
from engine.migrate import Move, commands
from engine.real.up_local import cli_env
from engine.stacks import platform_of

STAND_IN = team_stand_in('  kubeconfig:\n    fn::secret: exec-auth-kubeconfig-of-web\n  namespace: ${platform.outputs["teamRooms"]["web"]["namespace"]}\n')


def test_a_team_stack_moves_into_its_teams_state_by_the_printed_commands(tmp_path):
    tools = require_engine("pulumi", "pulumi-language-yaml")
    work, platform, states = tmp_path / "work", tmp_path / "platform-state", tmp_path / "states"
    (work / "teams").mkdir(parents=True)
    platform.mkdir()
    (states / "teams" / "web").mkdir(parents=True)
    (work / "teams" / "Pulumi.yaml").write_text(STAND_IN)
    (work / "contract").mkdir()
    (work / "contract" / "Pulumi.yaml").write_text((ROOT / "contract" / "Pulumi.yaml").read_text())
    env = cli_env(
        tmp_path / "home",
        tools,
        PULUMI_BACKEND_URL=f"file://{platform}",
        PULUMI_CONFIG_PASSPHRASE="the-platforms",
        PLATFORM_PASSPHRASE="the-platforms",
        TEAM_STACKS_PASSPHRASE="the-teams",
        PYTHONPATH=str(ROOT),
    )
    env["PATH"] = f"{tools}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

    def sh(script: str, **extra: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(["sh", "-ec", script], cwd=work, env={**env, **extra}, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"
        return proc

    # Where the split left it: the platform stack of dev (a stand-in exporting dev's contract) and,
    # by `pulumi state move`, web-dev beside it in the platform's backend, under the platform's passphrase.
    write_config(published(platform_of("dev", ROOT).outputs, "web"), "dev", work / "contract")
    sh("pulumi -C contract stack init organization/platform/dev --non-interactive && pulumi -C contract up --yes --non-interactive")
    (work / "contract" / "Pulumi.dev.yaml").unlink()
    sh("pulumi -C teams stack init organization/platform-teams/web-dev --non-interactive && pulumi -C teams up --yes --non-interactive")

    lines = commands("dev", [Move("web", "web-dev", ())], "organization", "BUCKET")
    block = lines[lines.index("pulumi stack output --stack organization/platform/dev --json > platform-outputs.json") :]
    script = "\n".join(block).replace("s3://BUCKET", f"file://{states}").replace("python -m", f"{sys.executable} -m")
    sh(script.replace("-m engine.contract", "-m engine.contract --project contract"))

    team_state = f"file://{states}/teams/web"
    out = sh(
        "pulumi -C teams stack output --json --show-secrets --stack organization/platform-teams/web-dev",
        PULUMI_BACKEND_URL=team_state,
        PULUMI_CONFIG_PASSPHRASE="the-teams",
    )
    assert json.loads(out.stdout) == {"kubeconfig": "exec-auth-kubeconfig-of-web", "namespace": "web"}
    # It reads the contract published into its own state, not the platform's backend.
    contract = json.loads(sh("pulumi -C contract stack output --json --stack organization/platform/dev", PULUMI_BACKEND_URL=team_state).stdout)
    assert set(contract["teamRooms"]) == {"web"}
    wrong = subprocess.run(
        ["pulumi", "-C", "teams", "stack", "output", "--show-secrets", "--stack", "organization/platform-teams/web-dev", "--non-interactive"],
        cwd=work,
        env={**env, "PULUMI_BACKEND_URL": team_state},
        capture_output=True,
        text=True,
    )
    assert wrong.returncode != 0 and "passphrase" in wrong.stderr
    stored = (states / "teams" / "web" / ".pulumi" / "stacks" / "platform-teams" / "web-dev.json").read_text()
    assert "exec-auth-kubeconfig-of-web" not in stored
    # No plaintext export left behind, and the platform's backend no longer knows the stack.
    assert not list(work.glob("*.plain.json")) and not list(work.glob("*.rekeyed.json"))
    listed = sh("pulumi stack ls --all --json").stdout
    assert [s["name"] for s in json.loads(listed)] == ["organization/platform/dev"]
