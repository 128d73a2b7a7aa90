"""Every rule of the policy pack, grouped by module (the grouping docs/policy-rules.md shows)."""

from __future__ import annotations

from . import availability, aws, delivery, iam, karpenter, network, pss_baseline, pss_restricted, tenancy, workload
from .base import Rule, Settings, Subject

MODULES = (pss_baseline, pss_restricted, workload, tenancy, availability, network, aws, iam, karpenter, delivery)
# (title, rules): the title is the first sentence of the module docstring, up to its colon.
GROUPS = [((m.__doc__ or "").split(":")[0].strip(), m.RULES) for m in MODULES]
RULES: list[Rule] = [rule for _, rules in GROUPS for rule in rules]
BY_ID = {rule.id: rule for rule in RULES}

if len(BY_ID) != len(RULES):
    raise ValueError(f"duplicate rule ids: {sorted({r.id for r in RULES if [x.id for x in RULES].count(r.id) > 1})}")

__all__ = ["BY_ID", "GROUPS", "RULES", "Rule", "Settings", "Subject"]
