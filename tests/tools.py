"""Tools the tests run for real: Debian's promtool and amtool, and the engine tools that
`make engine-tools` builds (kube-apiserver, etcd, pulumi, ...) into .engine-tools/bin/.

Missing locally: the test is skipped with the reason shown. Under PLATFORM_REQUIRE_TOOLS=1 (which
`.ci/run` sets after installing them) a missing tool fails the test, so CI never skips silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGES = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path:
        return path
    reason = f"{tool} is not installed (Debian: apt-get install --no-install-recommends {PACKAGES[tool]})"
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
