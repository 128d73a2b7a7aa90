"""Where a service file lives is who owns it: `stacks/services/<team>/<name>.yaml`.

A service never declares its team. The folder is the team, because the folder is what review
rules (the generated CODEOWNERS, components/spec/codeowners.py) and the team's deploy pipeline are
keyed on: a file cannot claim a namespace, a Vault prefix or a stack its folder does not grant.
A file that would make the folder ambiguous is refused rather than guessed at:
- anything directly under stacks/services/ (a service file must sit in a team folder);
- a symlink, file or folder (it could point into another team's folder, or outside the clone);
- anything that is not a regular file (a FIFO would hang the reader, a device would be read);
- a `team:` key in the file (the folder says it; two sources of one fact end up disagreeing).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .problems import Problem, SpecError, dotted, short

SERVICES_DIR = "stacks/services"
SUFFIX = ".yaml"


@dataclass(frozen=True)
class TeamFile:
    """A service file that passed the location checks: the team its folder names, and its path."""

    team: str
    path: Path
    rel: str


def team_of(rel: str) -> str | None:
    """The team a repository path belongs to, if it lies in a team folder (`stacks/services/<team>/...`)."""
    parts = Path(rel).parts
    prefix = Path(SERVICES_DIR).parts
    if len(parts) == len(prefix) + 2 and parts[: len(prefix)] == prefix:
        return parts[len(prefix)]
    return None


def scan(root: Path) -> tuple[list[TeamFile], list[Problem]]:
    """Every service file under its team folder, and a problem for each entry that is not one."""
    base = root / SERVICES_DIR
    files: list[TeamFile] = []
    problems: list[Problem] = []
    if base.is_symlink() or (base.exists() and not base.is_dir()):
        return [], [Problem(SERVICES_DIR, "", "must be a folder of team folders, not a symlink or a file")]
    if not base.exists():
        return [], []
    for entry in sorted(base.iterdir()):
        rel = f"{SERVICES_DIR}/{entry.name}"
        mode = entry.lstat().st_mode
        if stat.S_ISLNK(mode):
            problems.append(Problem(rel, "", "is a symlink; a team folder must be a real folder (a link could lend another team's files)"))
        elif stat.S_ISREG(mode):
            problems.append(
                Problem(rel, "", f"is outside a team folder; move it to {SERVICES_DIR}/<team>/{entry.name}: the folder is the team that owns the service")
            )
        elif not stat.S_ISDIR(mode):
            problems.append(Problem(rel, "", "is not a folder; only team folders may sit in stacks/services/"))
        else:
            found, refused = _team_folder(entry, rel)
            files += found
            problems += refused
    return files, problems


def _team_folder(folder: Path, folder_rel: str) -> tuple[list[TeamFile], list[Problem]]:
    files, problems = [], []
    for entry in sorted(folder.iterdir()):
        rel = f"{folder_rel}/{entry.name}"
        mode = entry.lstat().st_mode
        if stat.S_ISLNK(mode):
            problems.append(Problem(rel, "", "is a symlink; a service file must be a regular file in its team's folder"))
        elif not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            problems.append(Problem(rel, "", f"is {what}; a team folder holds only service files (<name>{SUFFIX})"))
        elif entry.suffix != SUFFIX:
            hint = (
                f"rename it to {entry.stem}{SUFFIX} so it is read" if entry.suffix.lower() in (".yml", ".yaml") else f"only {SUFFIX} service files belong here"
            )
            problems.append(Problem(rel, "", f"declaration files end in {SUFFIX}; {hint}"))
        else:
            files.append(TeamFile(folder.name, entry, rel))
    return files, problems


def declared_team(raw: dict, rel: str, team: str) -> list[Problem]:
    """A file may not say its team: the folder does."""
    if "team" not in raw:
        return []
    return [Problem(rel, "team", f"a service does not declare its team: the folder says it is {team!r}; remove the key")]


def check_envs(raw: dict[str, Any], rel: str, stacks: list[str]) -> None:
    envs = raw.get("envs", {})
    if not isinstance(envs, dict):
        raise SpecError([Problem(rel, "envs", f"expected a mapping of stack name to overrides, got {type(envs).__name__}")])
    for name, overlay in envs.items():
        if name not in stacks:
            raise SpecError([Problem(rel, dotted(("envs", name)), f"unknown stack {short(name)}; declared stacks: {', '.join(stacks)}")])
        if not isinstance(overlay, dict):
            raise SpecError([Problem(rel, dotted(("envs", name)), f"expected a mapping of overrides, got {type(overlay).__name__}")])
        fixed = [key for key in ("envs", "name", "team") if key in overlay]
        if fixed:
            key = fixed[0]
            raise SpecError([Problem(rel, f"envs.{name}.{key}", "cannot be overridden per stack")])
