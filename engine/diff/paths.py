"""Property paths and leaf-level changes between two JSON values (a resource's inputs, stack outputs)."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Iterable, Optional


Token = Any  # str (a key) or int (a list index); "*" in patterns


def parse_pattern(pattern: str) -> tuple[Token, ...]:
    return tuple("*" if t == "[*]" else t for t in re.findall(r"\[\*\]|[^.\[\]]+", pattern))


def path_text(tokens: Iterable[Token]) -> str:
    """`spec.template.spec.containers[0].image`, `metadata.labels["app.kubernetes.io/name"]`."""
    out = ""
    for t in tokens:
        if isinstance(t, int):
            out += f"[{t}]"
        elif re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", t):
            out += f".{t}" if out else t
        else:
            out += f"[{json.dumps(t)}]"
    return out


def value_text(value: Any, limit: Optional[int] = None) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def property_changes(old: Any, new: Any, prefix: tuple[Token, ...] = ()) -> list[dict[str, Any]]:
    """Leaf-level differences between two JSON values: maps by key, lists aligned by content."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            path = prefix + (key,)
            if key not in old:
                found.append({"tokens": path, "kind": "add", "new": new[key]})
            elif key not in new:
                found.append({"tokens": path, "kind": "delete", "old": old[key]})
            else:
                found += property_changes(old[key], new[key], path)
        return found
    if isinstance(old, list) and isinstance(new, list):
        # Align the lists first, so one inserted element reads as one addition rather than as every
        # later element changing. Paired elements are compared in depth, at their new index.
        found = []
        keys = lambda items: [json.dumps(i, sort_keys=True) for i in items]  # noqa: E731
        matcher = difflib.SequenceMatcher(None, keys(old), keys(new), autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                continue
            paired = min(i2 - i1, j2 - j1) if op == "replace" else 0
            for k in range(paired):
                found += property_changes(old[i1 + k], new[j1 + k], prefix + (j1 + k,))
            for i in range(i1 + paired, i2):
                found.append({"tokens": prefix + (i,), "kind": "delete", "old": old[i]})
            for j in range(j1 + paired, j2):
                found.append({"tokens": prefix + (j,), "kind": "add", "new": new[j]})
        return found
    if old == new and type(old) is type(new):
        return []
    return [{"tokens": prefix, "kind": "update", "old": old, "new": new}]


def change_text(change: dict[str, Any], limit: Optional[int] = None) -> str:
    path = change["path"]
    if change["kind"] == "add":
        return f"{path}: + {value_text(change['new'], limit)}"
    if change["kind"] == "delete":
        return f"{path}: - {value_text(change['old'], limit)}"
    return f"{path}: {value_text(change['old'], limit)} -> {value_text(change['new'], limit)}"
