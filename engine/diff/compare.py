"""The comparison of two `engine.record` documents by URN, the way `pulumi preview --diff` does:
resources, rendered manifests, policy violations, stack outputs and the services they touch."""

from __future__ import annotations

import difflib
from collections import Counter
from typing import Any, Optional

import yaml

from .paths import path_text, property_changes
from .replacement import kubernetes_api, replacement_reasons

EXIT_OK, EXIT_BLOCKING, EXIT_ERROR = 0, 1, 2

# --- Services ------------------------------------------------------------------------------------

SERVICE_COMPONENT = "platform:workloads:Microservice"


def services_of(resources: list[dict[str, Any]]) -> dict[str, str]:
    """urn -> the service a resource belongs to: its enclosing Microservice component, else the
    `platform.io/service` label of a Kubernetes object."""
    by_urn = {r["urn"]: r for r in resources}
    found = {}
    for r in resources:
        node: Optional[dict[str, Any]] = r
        while node is not None and node["type"] != SERVICE_COMPONENT:
            node = by_urn.get(node.get("parent") or "")
        if node is not None:
            found[r["urn"]] = node["name"]
            continue
        labels = ((r.get("inputs") or {}).get("metadata") or {}).get("labels") if kubernetes_api(r["type"]) else None
        if isinstance(labels, dict) and isinstance(labels.get("platform.io/service"), str):
            found[r["urn"]] = labels["platform.io/service"]
    return found


# --- Policy --------------------------------------------------------------------------------------


def compare_violations(base: list[dict[str, Any]], head: list[dict[str, Any]]) -> tuple[list, list, list]:
    """(introduced, fixed, unchanged). A violation is the same one on both sides when rule, resource
    and message match; failing that, when rule and resource match (a reworded message)."""
    head_left, base_left, unchanged = list(head), list(base), []
    for key in (lambda v: (v["rule"], v["urn"], v["message"]), lambda v: (v["rule"], v["urn"])):
        pool = Counter(key(v) for v in base_left)
        still = []
        for v in head_left:
            if pool[key(v)] > 0:
                pool[key(v)] -= 1
                unchanged.append(v)
            else:
                still.append(v)
        matched = Counter(key(v) for v in head_left) - Counter(key(v) for v in still)
        remaining = []
        for v in base_left:
            if matched[key(v)] > 0:
                matched[key(v)] -= 1
            else:
                remaining.append(v)
        head_left, base_left = still, remaining
    return head_left, base_left, unchanged


# --- The comparison ------------------------------------------------------------------------------

OPS = ("create", "update", "replace", "delete")
SYMBOL = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}


def moves(base_res: dict[str, Any], head_res: dict[str, Any]) -> dict[str, str]:
    """old URN -> new URN: a resource whose aliases name a URN only the base has is moved by Pulumi
    (same state and ID), not deleted and created."""
    return {alias: r["urn"] for r in head_res.values() for alias in r.get("aliases") or () if alias in base_res and alias not in head_res}


def _provider_urn(reference: Optional[str]) -> str:
    return (reference or "").rsplit("::", 1)[0]


def compare(base: dict[str, Any], head: dict[str, Any], base_label: str = "base", head_label: str = "working tree") -> dict[str, Any]:
    """Diff two `engine.record` documents of one stack. Returns the JSON-ready result."""
    head_res = {r["urn"]: r for r in head["resources"]}
    moved = moves({r["urn"]: r for r in base["resources"]}, head_res)
    base_res = {moved.get(r["urn"], r["urn"]): {**r, "movedFrom": r["urn"]} if r["urn"] in moved else r for r in base["resources"]}
    providers = {r["urn"]: r["inputs"] for r in head["resources"] if r["type"].startswith("pulumi:providers:")}
    base_services, head_services = services_of(base["resources"]), services_of(head["resources"])

    resources = []
    for urn in sorted(set(base_res) | set(head_res)):
        old, new = base_res.get(urn), head_res.get(urn)
        current = new or old
        assert current is not None  # the urn comes from one side or the other
        entry: dict[str, Any] = {"urn": urn, "type": current["type"], "name": current["name"], "service": head_services.get(urn) or base_services.get(urn)}
        if old is None:
            entry.update(op="create", inputs=current["inputs"])
        elif new is None:
            entry.update(op="delete", inputs=old["inputs"], protect=old.get("protect", False))
        else:
            changes = property_changes(old["inputs"], new["inputs"])
            if old.get("movedFrom"):
                changes.append({"tokens": ("(moved)",), "kind": "update", "old": old["movedFrom"], "new": urn})
            for option in ("protect", "provider"):
                before = old.get(option)
                # A provider moved by its aliases keeps its state and ID: the same provider.
                if option == "provider" and moved.get(_provider_urn(before)) == _provider_urn(new.get(option)):
                    before = new.get(option)
                if before != new.get(option):
                    changes.append({"tokens": (f"({option})",), "kind": "update", "old": before, "new": new.get(option)})
            if not changes:
                continue
            for change in changes:
                change["replace"] = False
            # Components cannot be replaced; a remote (multi-language) component's table entry stands
            # for the resource it wraps (cert-manager's Helm release).
            reasons = replacement_reasons(old, new, changes, providers) if new.get("custom") or new.get("remote") else []
            entry.update(op="replace" if reasons else "update", replaceReasons=reasons, protect=new.get("protect", False))
            entry["changes"] = [{"path": path_text(c["tokens"]), **{k: v for k, v in c.items() if k != "tokens"}} for c in changes]
        resources.append(entry)

    base_manifests, head_manifests = base.get("manifests", {}), head.get("manifests", {})
    manifests = {
        "added": sorted(set(head_manifests) - set(base_manifests)),
        "removed": sorted(set(base_manifests) - set(head_manifests)),
        "changed": [
            {"path": p, "diff": _yaml_diff(p, base_manifests[p], head_manifests[p])}
            for p in sorted(set(base_manifests) & set(head_manifests))
            if base_manifests[p] != head_manifests[p]
        ],
    }

    introduced, fixed, unchanged = compare_violations(base["policy"]["violations"], head["policy"]["violations"])
    policy = {
        "environment": head["policy"].get("environment"),
        "introduced": introduced,
        "fixed": fixed,
        "unchanged": len(unchanged),
        "unchangedMandatory": sum(v["enforcement"] == "mandatory" for v in unchanged),
    }

    outputs = [
        {"path": path_text(c["tokens"]), **{k: v for k, v in c.items() if k != "tokens"}}
        for c in property_changes(base.get("outputs", {}), head.get("outputs", {}))
    ]

    services = _changed_services(base.get("services", {}), head.get("services", {}), resources)
    blocking = any(v["enforcement"] == "mandatory" for v in introduced)
    counts = Counter(r["op"] for r in resources)
    return {
        "stack": head.get("stack") or base.get("stack"),
        "base": base_label,
        "head": head_label,
        "summary": {
            **{op: counts.get(op, 0) for op in OPS},
            "manifests": {k: len(v) for k, v in manifests.items()},
            "policy": {"introduced": len(introduced), "introducedMandatory": sum(v["enforcement"] == "mandatory" for v in introduced), "fixed": len(fixed)},
            "outputs": len(outputs),
            "services": len(services["changed"]),
        },
        "blocking": blocking,
        "resources": resources,
        "manifests": manifests,
        "policy": policy,
        "outputs": outputs,
        "services": services,
    }


def exit_status(result: dict[str, Any]) -> int:
    return EXIT_BLOCKING if result["blocking"] else EXIT_OK


def _yaml_diff(path: str, old: Any, new: Any) -> str:
    dump = lambda obj: yaml.safe_dump(obj, sort_keys=False, default_flow_style=False).splitlines()  # noqa: E731
    return "\n".join(difflib.unified_diff(dump(old), dump(new), f"a/{path}", f"b/{path}", lineterm="", n=2))


def _changed_services(base: dict[str, Any], head: dict[str, Any], resources: list[dict[str, Any]]) -> dict[str, Any]:
    changed: dict[str, str] = {}
    for name in set(base) | set(head):
        if name not in base:
            changed[name] = "added"
        elif name not in head:
            changed[name] = "removed"
        elif base[name] != head[name]:
            changed[name] = "changed"
    for r in resources:
        if r["service"] and r["service"] not in changed:
            changed[r["service"]] = "changed"

    def deps(name: str, side: dict[str, Any]) -> list[str]:
        return list((side.get(name) or {}).get("dependsOn") or [])

    nodes = set(changed)
    for name in changed:
        nodes.update(deps(name, head) + deps(name, base))
        nodes.update(n for side in (base, head) for n in side if name in deps(n, side))
    edges = []
    for a in sorted(nodes):
        now, before = set(deps(a, head)), set(deps(a, base))
        for b in sorted(now | before):
            if b in nodes:
                state = "kept" if b in now and b in before else "added" if b in now else "removed"
                edges.append({"from": a, "to": b, "state": state})
    return {"changed": dict(sorted(changed.items())), "nodes": sorted(nodes), "edges": edges}
