"""Merging declarations: a stack's service defaults, a service file, its per-environment overlay."""

from __future__ import annotations

import copy
from typing import Any


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Maps merge key by key; anything else (lists included) in the overlay replaces the base. The
    result shares nothing with either: a deep copy."""
    merged = _copied(base)
    _merge_into(merged, overlay)
    return merged


def _merge_into(target: dict[str, Any], overlay: dict[str, Any]) -> None:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = _copied(value)


def _copied(value: Any) -> Any:
    # Declarations are maps, lists and scalars: copied by hand (copy.deepcopy's memo costs three
    # times as much on 500 services); anything else (a tuple, an Output in Helm values) as before.
    if type(value) is dict:
        return {k: _copied(v) for k, v in value.items()}
    if type(value) is list:
        return [_copied(v) for v in value]
    if value is None or type(value) in (str, int, float, bool):
        return value
    return copy.deepcopy(value)
