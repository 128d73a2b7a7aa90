"""What in a rendered stack holds state, and what backs it up: the restore promise, checked.

Stateful, found in the render (not declared by the addons, so a new addon cannot opt out):
- StatefulSets, PersistentVolumeClaims and pod templates with volumeClaimTemplates;
- Helm releases whose values, merged over the chart's defaults, turn on persistent storage
  (`persistence`, `dataStorage`, `storageSpec`, `volumeClaimTemplate`, `persistentVolume`, ...);
- Vault (its raft data needs a raft snapshot, not only a volume snapshot);
- the Sealed Secrets controller's keys, once the stack has a sealed-secrets release.
Covered by: Velero Schedules (their includedNamespaces), and CronJobs labelled
platform.io/backs-up=<what> for Vault.
"""

from __future__ import annotations

from typing import Any, Iterator

from components.addons.sealed_secrets import NAMESPACE as SEALED_SECRETS
from components.addons.vault import NAMESPACE as VAULT
from components.addons.velero import SEALING_KEY_LABEL
from components.backup.vault_snapshot import BACKS_UP
from components.spec import deep_merge
from components.versions import CHARTS
from engine import chart_values

RELEASE = "kubernetes:helm.sh/v3:Release"
STORAGE_KEYS = {"persistence", "dataStorage", "auditStorage", "storageSpec", "volumeClaimTemplate", "volumeClaimTemplates", "persistentVolume"}


def _storage_paths(values: Any, path: str = "") -> Iterator[str]:
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        here = f"{path}.{key}" if path else key
        if key in STORAGE_KEYS and isinstance(value, dict) and value and value.get("enabled", True) is not False:
            yield here
        elif isinstance(value, dict) and value.get("enabled", True) is not False:
            yield from _storage_paths(value, here)


def stateful(rec) -> dict[str, list[str]]:
    """namespace -> what holds state there."""
    found: dict[str, list[str]] = {}
    for obj in rec.kubernetes_objects():
        spec = obj.inputs.get("spec") or {}
        if obj.kind in ("StatefulSet", "PersistentVolumeClaim") or spec.get("volumeClaimTemplates"):
            found.setdefault(obj.metadata.get("namespace", "default"), []).append(f"{obj.kind} {obj.metadata['name']}")
    for release in rec.of_type(RELEASE):
        chart = CHARTS.get(release.inputs["chart"].rsplit("/", 1)[-1])
        values = deep_merge(chart_values.defaults(chart), release.inputs.get("values") or {}) if chart else release.inputs.get("values") or {}
        for path in _storage_paths(values):
            found.setdefault(release.inputs["namespace"], []).append(f"release {release.inputs['name']}: {path}")
        if chart is not None and chart.name == "vault":
            found.setdefault(VAULT, []).append("vault raft storage")
        if chart is not None and chart.name == "sealed-secrets":
            found.setdefault(SEALED_SECRETS, []).append("sealing keys")
    return found


def schedules(rec) -> list[dict[str, Any]]:
    return [o.inputs for o in rec.kubernetes_objects() if o.kind == "Schedule" and o.inputs["apiVersion"] == "velero.io/v1"]


def uncovered(rec) -> dict[str, list[str]]:
    """Stateful things no schedule or snapshot job covers; empty when every one is backed up."""
    templates = [s["spec"]["template"] for s in schedules(rec)]
    in_schedules = {ns for t in templates for ns in t.get("includedNamespaces", [])}
    jobs = {o.metadata.get("labels", {}).get(BACKS_UP) for o in rec.kubernetes_objects() if o.kind == "CronJob"}
    keys = [
        t
        for t in templates
        if SEALED_SECRETS in t.get("includedNamespaces", [])
        and "secrets" in t.get("includedResources", ["secrets"])
        and any(e.get("key") == SEALING_KEY_LABEL for e in (t.get("labelSelector") or {}).get("matchExpressions", []))
    ]
    missing: dict[str, list[str]] = {}
    for namespace, what in stateful(rec).items():
        for item in what:
            if item == "vault raft storage":
                ok = "vault" in jobs and namespace in in_schedules
            elif item == "sealing keys":
                ok = bool(keys)
            else:
                ok = namespace in in_schedules
            if not ok:
                missing.setdefault(namespace, []).append(item)
    return missing
