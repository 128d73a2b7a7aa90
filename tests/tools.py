"""Debian tools the tests run for real (promtool, amtool, and Prometheus itself).

Missing locally: the test is skipped with the reason shown. Under PLATFORM_REQUIRE_TOOLS=1 (which
`.ci/run` sets after installing them) a missing tool fails the test, so CI never skips silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGES = {"promtool": "prometheus", "prometheus": "prometheus", "amtool": "prometheus-alertmanager"}


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
