"""Shared fixtures: each environment is run once per session and handed to tests as a queryable graph.

`dev`, `prod` and `stack` are a whole environment: its platform stack and every team stack,
combined (engine/stacks.py). One stack alone is `dev.stacks["dev"]` (the platform stack) or
`dev.stacks["checkout-dev"]` (a team stack); `engine.stacks.run_platform` / `run_team` run one."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from engine.recording import Recording  # noqa: E402
from engine.stacks import run  # noqa: E402


@functools.lru_cache(maxsize=None)
def recorded(stack: str) -> Recording:
    return run(stack, ROOT)


@pytest.fixture(scope="session")
def dev() -> Recording:
    return recorded("dev")


@pytest.fixture(scope="session")
def staging() -> Recording:
    return recorded("staging")


@pytest.fixture(scope="session")
def prod() -> Recording:
    return recorded("prod")


@pytest.fixture(params=["dev", "staging", "prod"], scope="session")
def stack(request) -> Recording:
    return recorded(request.param)


@pytest.fixture
def scratch(tmp_path):
    from scratch import Scratch

    return Scratch(tmp_path)
