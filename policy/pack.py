"""The rules as pulumi_policy policies: what the Pulumi CLI runs with `--policy-pack policy`.

Enforcement levels are not set here: the pack's default is mandatory and the per-stack
`policy/config/<stack>.json` sets each rule's level, so a pack run without configuration blocks.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from .rules import RULES, Rule, Subject
from .settings import CONFIG_SCHEMA, from_config


def config_schema(rule: Rule) -> PolicyConfigSchema | None:
    if not rule.config_keys:
        return None
    required = [k for k in rule.config_keys if "default" not in CONFIG_SCHEMA[k]]
    return PolicyConfigSchema(properties={k: CONFIG_SCHEMA[k] for k in rule.config_keys}, required=required or None)


def message(rule: Rule, text: str) -> str:
    return f"{text}\nFix: {rule.remediation}"


def to_policy(rule: Rule) -> Policy:
    common: dict[str, Any] = dict(
        name=rule.id,
        description=rule.description,
        config_schema=config_schema(rule),
        severity=Severity(rule.severity),
        tags=[rule.category],
        remediation_steps=rule.remediation,
    )
    if rule.stack:

        def validate_stack(args: StackValidationArgs, report: ReportViolation) -> None:
            subjects = [Subject(r.resource_type, r.urn, r.props, dependencies=tuple(d.urn for d in r.dependencies)) for r in args.resources]
            for subject, text in rule.stack_violations(subjects, from_config(args.get_config())):
                report(message(rule, text), subject.urn)

        return StackValidationPolicy(validate=validate_stack, **common)

    def validate_resource(args: ResourceValidationArgs, report: ReportViolation) -> None:
        subject = Subject(args.resource_type, args.urn, args.props)
        for text in rule.resource_violations(subject, from_config(args.get_config())):
            report(message(rule, text), None)

    return ResourceValidationPolicy(validate=validate_resource, **common)


def policies(rules: list[Rule] = RULES) -> list[Policy]:
    return [to_policy(rule) for rule in rules]
