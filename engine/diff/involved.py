"""Which stacks of an environment a change can touch, so `make diff` previews only those.

A team stack renders its own services, and each service's policies name the services it calls
and the services that call it (components/workloads/traffic.py, chaos.py): of another service
they read only its interface (INTERFACE: its name, port, dependsOn, whether it is enabled, and
its team, the folder). So a change confined to service files touches the stacks of the teams
whose files changed, and, when a changed file's interface changed, the stacks of the teams of
every service connected to it by `dependsOn` (callee or caller, before or after the change).
tests/test_diff_involved.py checks the neighbours' stacks indeed stay the same otherwise. The
platform stack is always part of the diff: it reads the services' views (hosts, queues, egress,
AWS APIs), and it is what every team stack is wired from; where its inputs are those of a recorded
state, that state is served instead of a run (engine/platform_state.py). Any change outside
stacks/services/ (code, stack files, Pulumi files) may touch every stack: then all are previewed (None).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Optional

import yaml

from components.spec.team_files import SERVICES_DIR, team_of


def changed_files(root: Path, commit: str) -> list[str]:
    """Files that differ between `commit` and the working tree, untracked ones included."""
    diff = subprocess.run(["git", "-C", str(root), "diff", "--name-only", commit, "--"], capture_output=True, text=True, check=True).stdout
    untracked = subprocess.run(
        ["git", "-C", str(root), "ls-files", "--others", "--exclude-standard", "--", SERVICES_DIR], capture_output=True, text=True, check=True
    ).stdout
    return sorted({line for line in (diff + untracked).splitlines() if line})


def raw_mapping(text: Optional[str]) -> dict[str, Any]:
    """A YAML text's top-level map, as written (empty when it is no map, or no YAML)."""
    try:
        data = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


# What a service's neighbours read of it (besides its team, which is its folder).
INTERFACE = ("name", "port", "dependsOn", "enabled")


def interface(raw: dict[str, Any]) -> Any:
    envs = raw["envs"] if isinstance(raw.get("envs"), dict) else {}
    own = {k: raw.get(k) for k in INTERFACE}
    return own, {env: {k: o.get(k) for k in INTERFACE} if isinstance(o, dict) else o for env, o in sorted(envs.items())}


def _deps(raw: dict[str, Any]) -> set[str]:
    found = set()
    for overlay in [raw, *((raw.get("envs") or {}).values() if isinstance(raw.get("envs"), dict) else [])]:
        deps = overlay.get("dependsOn") if isinstance(overlay, dict) else None
        found |= {d for d in deps if isinstance(d, str)} if isinstance(deps, list) else set()
    return found


def involved_teams(root: Path, commit: str) -> Optional[list[str]]:
    """The teams whose stacks the change between `commit` and the working tree can touch, or None for all."""
    files = changed_files(root, commit)
    if any(team_of(f) is None or not f.endswith(".yaml") for f in files):
        return None
    teams: set[str] = set()
    names: set[str] = set()
    callees: set[str] = set()
    for rel in files:
        teams.add(team_of(rel) or "")
        base = subprocess.run(["git", "-C", str(root), "show", f"{commit}:{rel}"], capture_output=True, text=True).stdout
        path = root / rel
        versions = (raw_mapping(base), raw_mapping(path.read_text() if path.is_file() else None))
        if base and path.is_file() and interface(versions[0]) == interface(versions[1]):
            continue  # same file, same interface: only its own team's stack sees the change
        for raw in versions:
            names.add(str(raw.get("name") or Path(rel).stem))
            callees |= _deps(raw)
    if not names and not callees:
        return sorted(teams)  # no interface changed: no neighbour's stack can see the change
    # Every service of the working tree: its team (the folder), and whether it calls a changed one.
    for path in sorted(root.glob(f"{SERVICES_DIR}/*/*.yaml")):
        raw = raw_mapping(path.read_text())
        name = str(raw.get("name") or path.stem)
        if name in callees or _deps(raw) & names:
            teams.add(path.parent.name)
    return sorted(teams)
