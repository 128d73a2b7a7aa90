"""CustomResourceDefinitions for the local API server, rebuilt from reference/crds/.

reference/ keeps, per CRD, its group, kind, plural, scope and the OpenAPI schema of every served
version (descriptions stripped; structure, defaults and CEL rules kept): everything the server needs
to validate and default a custom resource. What reference/ does not keep is chosen here: the storage
version (the most stable served one, as upstream CRDs choose) and the singular/list names (the
lower-case kind and <Kind>List, the convention every pinned CRD follows).
"""

from __future__ import annotations

import re
import time
from typing import Any

from engine import reference

from .kube import Kube

_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(name: str) -> tuple[int, int, int]:
    """Kubernetes' version ordering: GA before beta before alpha, higher numbers first."""
    match = _VERSION.match(name)
    if not match:
        return (-1, 0, 0)
    major, stage, minor = match.groups()
    rank = {None: 2, "beta": 1, "alpha": 0}[stage]
    return (rank, int(major), int(minor or 0))


def crd_object(entry: dict[str, Any]) -> dict[str, Any]:
    versions = sorted(entry["versions"], key=version_priority, reverse=True)
    storage = versions[0]
    kind = entry["kind"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{entry['plural']}.{entry['group']}", **_approval(entry["group"])},
        "spec": {
            "group": entry["group"],
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": entry["plural"], "singular": kind.lower()},
            "scope": entry["scope"],
            "versions": [
                {
                    "name": name,
                    "served": True,
                    "storage": name == storage,
                    "schema": {"openAPIV3Schema": entry["versions"][name]},
                    # Controllers write status through the subresource; the platform never sets it.
                    **({"subresources": {"status": {}}} if "status" in entry["versions"][name].get("properties", {}) else {}),
                }
                for name in versions
            ],
        },
    }


def _approval(group: str) -> dict[str, Any]:
    """Groups under k8s.io and kubernetes.io are protected: the server requires the annotation that
    upstream carries (a link to the approving API review), which reference/ does not keep."""
    if group.endswith((".k8s.io", ".kubernetes.io")) or group in ("k8s.io", "kubernetes.io"):
        return {"annotations": {"api-approved.kubernetes.io": "unapproved, rebuilt from reference/ by engine/real/crds.py"}}
    return {}


def crd_objects() -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for entry in reference.crds():
        obj = crd_object(entry)
        seen.setdefault(obj["metadata"]["name"], obj)
    return list(seen.values())


def install_crds(kube: Kube, timeout: float = 60) -> list[str]:
    """Apply every reference CRD and wait until each is Established; the failures, as messages."""
    failed = []
    pending = []
    for obj in crd_objects():
        resp = kube.apply(obj)
        if resp.ok:
            pending.append(obj)
        else:
            failed.append(f"{obj['metadata']['name']}: {resp.message}")
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        still = []
        for obj in pending:
            conditions = (kube.get(obj).body or {}).get("status", {}).get("conditions", [])
            if not any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
                still.append(obj)
        pending = still
        if pending:
            time.sleep(0.5)
    failed += [f"{obj['metadata']['name']}: not Established after {timeout:.0f}s" for obj in pending]
    for obj in crd_objects():
        for version in obj["spec"]["versions"]:
            kube.forget(f"{obj['spec']['group']}/{version['name']}")
    return failed
