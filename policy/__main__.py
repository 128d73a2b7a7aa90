"""The Pulumi policy pack: `pulumi preview --policy-pack policy --policy-pack-config policy/config/<stack>.json`.

This file only builds the pack; the rules live in `policy.rules` and their adapter in `policy.pack`.
"""

import sys
from pathlib import Path

# The CLI runs this file from inside policy/, while the rules import as the `policy` package from
# the project root (as the offline engine and the tests import them).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy.pack import policies  # noqa: E402

PolicyPack(
    name="platform-policies",
    description="EKS, Kubernetes and delivery guardrails of the platform (see docs/policy.md).",
    policies=policies(),
    enforcement_level=EnforcementLevel.MANDATORY,
)
