"""What the stack exports per addon for GitOps (the gitops-bridge convention)."""

from __future__ import annotations

from typing import Any

# What the gitops metadata carries per addon (the gitops-bridge convention).
METADATA_KEYS = ("namespace", "serviceAccount", "iamRoleArn")


def gitops_metadata(addon: Any) -> dict[str, Any]:
    """An addon's namespace, service account and IAM role, as ApplicationSets select them."""
    outputs = addon.outputs()
    return {k: outputs[k] for k in METADATA_KEYS if k in outputs}
