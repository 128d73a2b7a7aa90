"""Workload IAM: roles of declared services are bounded, and their policies grant nothing a team may not hold.

The loader judges what a team declares (components/spec/iam_actions.py); these rules judge what the
program renders, with the same catalogue, so `make check` and `pulumi preview --policy-pack` catch a
role or statement that reached the stack another way.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Sequence

from .base import Rule, Settings, Subject, as_list, as_map

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
# Workload identities are the roles registered under a service's component.
WORKLOAD = "platform:workloads:Microservice"


def is_workload(s: Subject) -> bool:
    return WORKLOAD in s.urn


def _document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(as_map(value))


def _boundary(s: Subject, settings: Settings) -> Iterator[str]:
    if is_workload(s) and not s.props.get("permissionsBoundary"):
        yield "the workload role has no permissionsBoundary; attach the platform's workload boundary policy"


def _statements(s: Subject, settings: Settings) -> Iterator[str]:
    if not is_workload(s):
        return
    # Imported here: the catalogue is large and only these rules need it.
    from components.spec.iam_actions import escalation_paths, expand, statement_problems

    doc = _document(s.props.get("policy"))
    statements = as_list(doc.get("Statement")) or ([doc["Statement"]] if doc.get("Statement") else [])
    granted: list[str] = []
    for i, st in enumerate(as_map(x) for x in statements):
        if st.get("Effect") != "Allow":
            continue
        if "NotAction" in st or "NotResource" in st:
            yield f"Statement[{i}] uses NotAction/NotResource, which grants everything not listed"
            continue
        actions = [str(a) for a in (as_list(st.get("Action")) or [st.get("Action")]) if a]
        resources = [str(r) for r in (as_list(st.get("Resource")) or [st.get("Resource")]) if r]
        granted += [a for pattern in actions for a in expand(pattern)]
        for problem in statement_problems(actions, resources, None, None):
            yield f"Statement[{i}]: {problem}"
    for method in escalation_paths(granted):
        yield f"the policy opens the privilege-escalation path {method}"


RULES: Sequence[Rule] = [
    Rule(
        "workload-role-boundary",
        "Every workload role carries the platform's permissions boundary.",
        "high",
        "security",
        "Create workload roles with components.aws.iam.pod_identity_role(..., permissions_boundary=<the workload boundary policy ARN>).",
        (ROLE,),
        _boundary,
    ),
    Rule(
        "workload-iam-least-privilege",
        "Workload policies grant no IAM writes, credentials, policy editing or escalation path, on concrete ARNs only.",
        "critical",
        "security",
        "Declare actions a workload needs on named ARNs (no `*` in partition, service, region or account); IAM writes, iam:PassRole, "
        "sts:AssumeRole*, *:CreateAccessKey and permissions management are refused.",
        (ROLE_POLICY,),
        _statements,
    ),
]
