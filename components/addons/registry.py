"""Discovers the addons (every module in this package) and installs the enabled ones in order."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pulumi

from components.spec.stack import StackSpec

from .base import Addon, AddonContext

_PACKAGE = Path(__file__).resolve().parent


def discover() -> dict[str, type[Addon]]:
    for module in pkgutil.iter_modules([str(_PACKAGE)]):
        if module.name not in ("base", "registry"):
            importlib.import_module(f"components.addons.{module.name}")
    for addon in Addon.registry.values():
        unknown = [r for r in addon.requires if r not in Addon.registry]
        if unknown:
            raise TypeError(f"addon {addon.name!r} requires unknown addon(s) {unknown}")
    return dict(Addon.registry)


def requirements() -> dict[str, tuple[str, ...]]:
    """name -> required addon names: what the stack model checks declarations against."""
    return {name: cls.requires for name, cls in discover().items()}


def install_order(enabled: list[str], requires: dict[str, tuple[str, ...]]) -> list[str]:
    """Enabled addons, each after what it requires (stable: declaration order breaks ties)."""
    missing = {name: [r for r in requires[name] if r not in enabled] for name in enabled}
    missing = {k: v for k, v in missing.items() if v}
    if missing:
        raise ValueError("; ".join(f"{name} requires {', '.join(v)}, which is not enabled" for name, v in missing.items()))
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise ValueError(f"addon dependency cycle: {' -> '.join(cycle)}")
        visiting.append(name)
        for required in requires[name]:
            visit(required)
        visiting.pop()
        order.append(name)

    for name in enabled:
        visit(name)
    return order


def install(ctx: AddonContext, spec: StackSpec, opts: pulumi.ResourceOptions) -> dict[str, Addon]:
    addons = discover()
    enabled = [name for name, addon in spec.addons.items() if addon.enabled]
    # Stable sort: declaration order otherwise, but the addons that describe the others come last.
    enabled.sort(key=lambda name: addons[name].describes_others)
    for name in install_order(enabled, {n: a.after(spec.addon_enabled) for n, a in addons.items()}):
        ctx.installed[name] = addons[name](ctx, spec.addons[name], opts)
    return ctx.installed
