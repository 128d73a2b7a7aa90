"""The tools the tests run for real (promtool, amtool, and Prometheus itself), at the versions production runs.

`make tools` builds them from the Go module proxy at the kube-prometheus-stack chart's Prometheus and
Alertmanager versions (tests/build_tools.py), cached under .tools/. A tool on PATH is used only when it
reports that same version: Prometheus 2.x and 3.x differ at window edges and in functions, so a test
passing on another version proves nothing about production.
The engine tools that `make engine-tools` builds (kube-apiserver, etcd, pulumi, ...) are found in
.engine-tools/bin/.

Missing locally: the test is skipped with the reason shown. Under PLATFORM_REQUIRE_TOOLS=1 (which
`.ci/run` and the workflows set after `make tools`) a missing tool fails the test, so CI never skips silently.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import pytest
from build_tools import TOOLS

from engine.recording import Resource


@functools.lru_cache(maxsize=None)
def reported_version(path: str) -> Optional[str]:
    proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    found = re.search(r"version (\d+\.\d+\.\d+)", proc.stdout + proc.stderr)
    return f"v{found[1]}" if found else None


def find(tool: str) -> tuple[Optional[str], str]:
    """The binary to run, or None and why not."""
    wanted = TOOLS[tool]
    if wanted.binary.is_file():
        return str(wanted.binary), ""
    on_path = shutil.which(tool)
    if on_path is None:
        return None, f"{tool} {wanted.version} is not built (run `make tools`)"
    version = reported_version(on_path)
    if version != wanted.version:
        return None, f"{tool} on PATH is {version or 'of unknown version'}, production runs {wanted.version} (run `make tools`)"
    return on_path, ""


def require(tool: str) -> str:
    path, reason = find(tool)
    if path:
        return path
    if os.environ.get("PLATFORM_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{reason}; PLATFORM_REQUIRE_TOOLS=1 forbids skipping")
    pytest.skip(reason)


def run(tool: str, *args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([require(tool), *map(str, args)], capture_output=True, text=True, timeout=120)


ENGINE_TOOLS = Path(os.environ.get("ENGINE_TOOLS_BIN", Path(__file__).resolve().parent.parent / ".engine-tools" / "bin"))


def require_engine(*tools: str) -> Path:
    """The folder of the engine tools, or a visible skip (a failure in CI) naming what is missing."""
    missing = [t for t in tools if not os.access(ENGINE_TOOLS / t, os.X_OK)]
    if not missing:
        return ENGINE_TOOLS
    reason = f"{', '.join(missing)} not built in {ENGINE_TOOLS} (run `make engine-tools`)"
    if os.environ.get("PLATFORM_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{reason}; PLATFORM_REQUIRE_TOOLS=1 forbids skipping")
    pytest.skip(reason)


def team_stand_in(outputs: str) -> str:
    """A Pulumi YAML stand-in for the team program, which the real CLI cannot run here (no Python
    language host is served): project platform-teams, reading dev's platform stack through its
    StackReference (`platform`), exporting `outputs` (the YAML lines under `outputs:`)."""
    return (
        "name: platform-teams\n"
        "runtime: yaml\n"
        "resources:\n"
        "  platform:\n"
        "    type: pulumi:pulumi:StackReference\n"
        "    properties:\n"
        "      name: organization/platform/dev\n"
        "outputs:\n" + outputs
    )


def custom_resource(urn: str, type_: str, inputs: dict) -> Resource:
    """A recorded custom resource with no parent, provider or dependencies (named by its URN)."""
    return Resource(urn=urn, type=type_, name=urn, parent=None, provider=None, custom=True, remote=False, protect=False, dependencies=[], inputs=inputs)
