"""Run every rule offline, over a recorded stack or a set of manifests, and report what they find."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from .rules import RULES, Rule, Subject
from .rules.base import describe
from .settings import DISABLED, MANDATORY, StackPolicy


@dataclass(frozen=True)
class Violation:
    rule: str
    enforcement: str
    severity: str
    category: str
    resource: str
    urn: str
    message: str
    remediation: str


@dataclass(frozen=True)
class Report:
    environment: str
    rules: int
    resources: int
    violations: tuple[Violation, ...]

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.enforcement == MANDATORY]

    @property
    def blocking(self) -> bool:
        return bool(self.mandatory)

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "rules": self.rules,
            "resources": self.resources,
            "mandatory": len(self.mandatory),
            "advisory": len(self.violations) - len(self.mandatory),
            "violations": [asdict(v) for v in self.violations],
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    def text(self) -> str:
        advisory = len(self.violations) - len(self.mandatory)
        lines = [
            f"policy: {len(self.mandatory)} mandatory and {advisory} advisory violation(s) "
            f"({self.rules} rules over {self.resources} resources, environment {self.environment})"
        ]
        for v in self.violations:
            lines += [f"  {v.enforcement.upper()} {v.rule} [{v.severity}] {v.resource}", f"      {v.message}", f"      fix: {v.remediation}"]
        return "\n".join(lines)


def evaluate(subjects: Sequence[Subject], policy: StackPolicy, rules: Iterable[Rule] = RULES) -> Report:
    settings = policy.settings
    rules = [r for r in rules if policy.level(r) != DISABLED]
    found: list[Violation] = []
    for rule in rules:
        hits = rule.stack_violations(subjects, settings) if rule.stack else [(s, text) for s in subjects for text in rule.resource_violations(s, settings)]
        found += [Violation(rule.id, policy.level(rule), rule.severity, rule.category, describe(s), s.urn, text, rule.remediation) for s, text in hits]
    return Report(settings.environment, len(rules), len(subjects), tuple(found))


def recorded_subjects(recording: Iterable[Any]) -> list[Subject]:
    """Subjects from the offline engine's records (type, urn, inputs and dependencies, as Pulumi passes them)."""
    return [Subject(r.type, r.urn, r.inputs, dependencies=tuple(r.dependencies)) for r in recording]


def evaluate_recording(recording: Any, spec: Any) -> Report:
    """Every rule over one offline run of a stack, configured from its declarations
    (what `make preview` and `make diff` report)."""
    from . import settings

    return evaluate(recorded_subjects(recording), settings.from_spec(spec))
