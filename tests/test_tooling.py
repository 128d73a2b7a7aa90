"""The habits: one pyproject.toml for tool settings, pinned lint and type tools, run by make lint and CI."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if match:
            found[match[1].lower()] = match[2]
    return found


def test_tool_settings_live_in_pyproject_only():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert {"pytest", "ruff", "mypy"} <= set(config)
    assert config["pytest"]["ini_options"]["testpaths"] == ["tests"]
    assert set(config["mypy"]["files"]) == {"components", "engine", "policy"}
    for other in ("pytest.ini", "setup.cfg", "tox.ini", "mypy.ini", ".mypy.ini", "ruff.toml", ".ruff.toml"):
        assert not (ROOT / other).exists(), f"{other}: tool settings belong in pyproject.toml"


def test_lint_tools_are_pinned_and_installed_at_the_pins():
    pinned = pins()
    for tool in ("ruff", "mypy"):
        assert tool in pinned, f"{tool} is not pinned in requirements.txt"
        assert version(tool) == pinned[tool]


def test_pre_commit_runs_the_pinned_venv_tools():
    hooks = {h["id"]: h for repo in yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"] for h in repo["hooks"]}
    assert set(hooks) == {"ruff-check", "ruff-format", "mypy"}
    pinned = pins()
    for hook in hooks.values():
        tool = hook["entry"].split()[0]
        assert tool.startswith(".venv/bin/") and hook["language"] == "system"
        name = tool.removeprefix(".venv/bin/")
        assert f"{name}=={pinned[name]}" in hook["name"], "the hook names the version requirements.txt pins"


def test_make_lint_runs_ruff_and_mypy_and_ci_lints_before_testing():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    for command in ("-m ruff check .", "-m ruff format --check .", "-m mypy"):
        assert command in recipe
    steps = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert steps.index("make lint") < steps.index("make test")
