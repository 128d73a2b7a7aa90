"""Per-stack policy settings and enforcement, and the pack configuration files made from them.

The one source is `stacks/<stack>.yaml` (environment and its `policy:` block) plus the enforcement
table below. `make preview` reads them from the declarations it has just validated; the Pulumi
CLI and `make check` read the same values from `policy/config/<stack>.json`, which
`python -m policy.settings` writes and a test keeps current.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .rules import RULES, Rule, Settings
from .rules.base import POD_SECURITY_LATEST

CONFIG_DIR = Path(__file__).resolve().parent / "config"
MANDATORY, ADVISORY, DISABLED = "mandatory", "advisory", "disabled"
# environment -> rule category -> enforcement level. Dev keeps security blocking but only reports
# availability findings: an outage there costs little, and the prod-only rules are off anyway.
ENFORCEMENT = {
    "dev": {"security": MANDATORY, "availability": ADVISORY},
    "staging": {"security": MANDATORY, "availability": MANDATORY},
    "prod": {"security": MANDATORY, "availability": MANDATORY},
}
# Pack configuration keys, with the JSON schema the Pulumi CLI validates them against. Defaults
# are the strict choice, so a pack run without configuration judges as prod.
CONFIG_SCHEMA: dict[str, dict[str, Any]] = {
    "environment": {
        "type": "string",
        "enum": sorted(ENFORCEMENT),
        "default": "prod",
        "description": "The stack's environment; prod turns on the prod-only rules.",
    },
    "allowedRegistries": {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "Image reference prefixes workloads may pull from."},
    "maxRollbackSeconds": {"type": "integer", "minimum": 10, "default": 60, "description": "Longest worst-case canary rollback allowed, in seconds."},
    "podSecurityVersion": {
        "type": "string",
        "pattern": r"^1\.[0-9]+$",
        "default": "{}.{}".format(*POD_SECURITY_LATEST),
        "description": "The Pod Security Standards version the pss-* rules apply (the cluster's Kubernetes minor).",
    },
    "teamRooms": {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "description": "The teams' namespaces the platform stack builds with their default-deny; a team stack deploys into them.",
    },
}


@dataclass(frozen=True)
class StackPolicy:
    """What one stack's policy run needs: the values rules read and each rule's enforcement level."""

    settings: Settings
    levels: Mapping[str, str]

    def level(self, rule: Rule) -> str:
        return self.levels.get(rule.id, MANDATORY)


def from_spec(spec: Any) -> StackPolicy:
    """The policy of a validated stack declaration (components.spec.StackSpec)."""
    settings = Settings(
        environment=spec.environment,
        allowed_registries=tuple(spec.policy.allowed_registries),
        max_rollback_seconds=spec.policy.max_rollback_seconds,
        pod_security_version=spec.pod_security_version,
        team_rooms=spec.rooms(),
    )
    table = ENFORCEMENT.get(spec.environment, ENFORCEMENT["prod"])
    return StackPolicy(settings, {rule.id: table[rule.category] for rule in RULES})


def parse_version(text: str) -> tuple[int, int]:
    """ "1.35" -> (1, 35); the schema and the stack model have already checked the shape."""
    major, minor = str(text).split(".")
    return int(major), int(minor)


def format_version(version: tuple[int, int]) -> str:
    return "{}.{}".format(*version)


def from_config(config: Mapping[str, Any]) -> Settings:
    """Settings from one policy's configuration as the Pulumi CLI hands it over (defaults filled in)."""
    return Settings(
        environment=str(config.get("environment") or "prod"),
        allowed_registries=tuple(str(r) for r in config.get("allowedRegistries") or ()),
        max_rollback_seconds=int(config.get("maxRollbackSeconds") or 60),
        pod_security_version=parse_version(config.get("podSecurityVersion") or format_version(POD_SECURITY_LATEST)),
        team_rooms=tuple(str(t) for t in config.get("teamRooms") or ()),
    )


def from_pack_config(document: Mapping[str, Any]) -> StackPolicy:
    """Read a --policy-pack-config document as the CLI does: `all` sets every level, a rule's own
    entry (a level, or an object with enforcementLevel and values) overrides it."""
    values: dict[str, Any] = {}
    levels = {}
    for rule in RULES:
        entry = document.get(rule.id, {})
        entry = {"enforcementLevel": entry} if isinstance(entry, str) else dict(entry)
        levels[rule.id] = entry.pop("enforcementLevel", None) or document.get("all") or MANDATORY
        values.update(entry)
    return StackPolicy(from_config(values), levels)


def for_stack(stack: str) -> StackPolicy:
    """A stack's policy from policy/config/<stack>.json, the file the Pulumi CLI reads."""
    path = CONFIG_DIR / f"{stack}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.json"))) or "none"
        raise FileNotFoundError(f"no policy configuration for stack {stack!r} ({path.name}); known stacks: {known}")
    return from_pack_config(json.loads(path.read_text()))


def pack_config(policy: StackPolicy) -> dict[str, Any]:
    """The --policy-pack-config document: each rule's enforcement level and the values it reads."""
    s = policy.settings
    values = {
        "environment": s.environment,
        "allowedRegistries": list(s.allowed_registries),
        "maxRollbackSeconds": s.max_rollback_seconds,
        "podSecurityVersion": format_version(s.pod_security_version),
        "teamRooms": list(s.team_rooms),
    }
    return {rule.id: {"enforcementLevel": policy.level(rule), **{k: values[k] for k in rule.config_keys}} for rule in RULES}


def render(policy: StackPolicy) -> str:
    return json.dumps(pack_config(policy), indent=2) + "\n"


def main(root: Path = CONFIG_DIR.parent.parent) -> int:
    """Write policy/config/<stack>.json for every stacks/<stack>.yaml."""
    from components.spec import load  # the declarations only exist in the project, not in the pack

    for path in sorted((root / "stacks").glob("*.yaml")):
        target = CONFIG_DIR / f"{path.stem}.json"
        target.write_text(render(from_spec(load(path.stem, root).spec)))
        print(f"wrote {target.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
