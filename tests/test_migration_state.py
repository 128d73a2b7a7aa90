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
from tools import require_engine

from engine.migrate import Move, commands

STAND_IN = """\
name: platform-teams
runtime: yaml
outputs:
  kubeconfig:
    fn::secret: exec-auth-kubeconfig-of-web
  namespace: web
"""


def test_a_team_stack_moves_into_its_teams_state_by_the_printed_commands(tmp_path):
    tools = require_engine("pulumi", "pulumi-language-yaml")
    work, platform, states = tmp_path / "work", tmp_path / "platform-state", tmp_path / "states"
    (work / "teams").mkdir(parents=True)
    platform.mkdir()
    (states / "teams" / "web").mkdir(parents=True)
    (work / "teams" / "Pulumi.yaml").write_text(STAND_IN)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")},
        "PATH": f"{tools}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_HOME": str(tmp_path / "home"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_BACKEND_URL": f"file://{platform}",
        "PULUMI_CONFIG_PASSPHRASE": "the-platforms",
        "PLATFORM_PASSPHRASE": "the-platforms",
        "TEAM_STACKS_PASSPHRASE": "the-teams",
        "PYTHONPATH": str(ROOT),
    }

    def sh(script: str, **extra: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(["sh", "-ec", script], cwd=work, env={**env, **extra}, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"
        return proc

    # Where `pulumi state move` left it: web-dev in the platform's backend, under the platform's passphrase.
    sh("pulumi -C teams stack init organization/platform-teams/web-dev --non-interactive && pulumi -C teams up --yes --non-interactive")

    lines = commands("dev", [Move("web", "web-dev", ())], "organization", "BUCKET")
    block = lines[lines.index("# web-dev moves into team web's own state, re-encrypted under the team stacks' passphrase") :]
    script = "\n".join(block).replace("s3://BUCKET", f"file://{states}").replace("python -m", f"{sys.executable} -m")
    sh(script)

    team_state = f"file://{states}/teams/web"
    out = sh(
        "pulumi -C teams stack output --json --show-secrets --stack organization/platform-teams/web-dev",
        PULUMI_BACKEND_URL=team_state,
        PULUMI_CONFIG_PASSPHRASE="the-teams",
    )
    assert json.loads(out.stdout) == {"kubeconfig": "exec-auth-kubeconfig-of-web", "namespace": "web"}
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
    assert not list(work.glob("*.json"))
    listed = sh("pulumi stack ls --all --json").stdout
    assert "web-dev" not in listed
