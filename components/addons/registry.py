"""Discovers the addons (every module in this package) and installs the enabled ones in order."""

from __future__ import annotations

import pulumi

from components.contracts import Contracts
from components.spec import Declarations, catalog
from components.spec.stack import StackSpec

from .base import Addon, AddonContext


def discover() -> dict[str, type[Addon]]:
    catalog.discover()
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
            cycle = visiting[visiting.index(name) :] + [name]
            raise ValueError(f"addon dependency cycle: {' -> '.join(cycle)}")
        visiting.append(name)
        for required in requires[name]:
            visit(required)
        visiting.pop()
        order.append(name)

    for name in enabled:
        visit(name)
    return order


def _order(spec: StackSpec) -> list[str]:
    addons = discover()
    enabled = [name for name, addon in spec.addons.items() if addon.enabled]
    # Stable sort: declaration order otherwise, but the addons that describe the others come last.
    enabled.sort(key=lambda name: addons[name].describes_others)
    return install_order(enabled, {n: a.after(spec.addon_enabled) + tuple(filter(spec.addon_enabled, a.installs_after)) for n, a in addons.items()})


def publish_contracts(contracts: Contracts, decl: Declarations, region: str) -> Contracts:
    """What the enabled addons offer (components/contracts.py), from the declarations alone: the
    platform stack publishes them before installing, and a team stack derives the same to wire its
    services (and checks them against the platform stack's contract, components/stack_contract.py)."""
    addons = discover()
    for name in _order(decl.spec):
        contract = addons[name].contract(addons[name].validated(decl.spec.addons[name], decl.environment, region), decl)
        if contract is not None:
            contracts.publish(contract)
    return contracts


def install(ctx: AddonContext, spec: StackSpec, opts: pulumi.ResourceOptions) -> dict[str, Addon]:
    addons = discover()
    order = _order(spec)
    # Every contract first: a consumer may install before the addon it reads (Istio before tracing).
    publish_contracts(ctx.contracts, ctx.decl, ctx.region)
    for name in order:
        ctx.installed[name] = addons[name](ctx, spec.addons[name], opts)
    return ctx.installed
