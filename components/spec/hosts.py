"""Public hosts across stacks: which stack a host belongs to, which hosts are the platform's, one owner each.

A service's `expose.host` gets a DNS record and a certificate answered by DNS-01 in its stack's zone.
Checked within one stack (tenancy.py) that is not enough:
- stacks share a domain tree (prod serves acme-shop.com, dev's zone is dev.acme-shop.com, delegated
  out of it), so a prod host under dev.acme-shop.com passes prod's own `ingress.domains` but can never
  pass DNS-01 in prod's zone, and breaks the shared certificate for every host on it. A host belongs to
  the stack whose domain is the most specific one it lies under;
- the platform has hosts of its own (Argo CD, Grafana, the dead man's switch, the alert receivers):
  found by reading every host-, URL- and address-valued setting of the enabled addons and of
  `alerting`, so a new addon setting is covered without a list kept here;
- a host has one owner across all stacks: the same service file may claim it in several stacks (a
  recovery stack serves prod's hosts), two different files never.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from .domains import host_of
from .tenancy import under

ALERTING = "the alert receivers"
# Setting names whose values are host names or carry one (URLs, addresses, host:port).
HOST_KEYS = ("host", "url", "address", "smarthost", "endpoint")


def _walk(value: Any, key: str = "") -> Iterator[str]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _walk(v, str(k))
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _walk(v, key)
    elif isinstance(value, str) and key.lower().endswith(HOST_KEYS) and value:
        host = host_of(value)
        if host:
            yield host


def platform_hosts(spec: Any, addons: Mapping[str, Any]) -> dict[str, str]:
    """host -> what uses it, for one stack: its addons' settings (defaults included) and alerting."""
    found: dict[str, str] = {}
    for name, addon in spec.addons.items():
        if not addon.enabled or name not in addons:
            continue
        try:
            settings = addons[name].settings.model_validate(addon.settings, context={"environment": spec.environment}).model_dump(by_alias=True)
        except ValueError:
            settings = addon.settings  # its own error is reported by the loader
        for host in _walk(settings):
            found.setdefault(host, f"the {name} addon")
    if spec.alerting is not None:
        for host in _walk(spec.alerting.model_dump(by_alias=True)):
            found.setdefault(host, ALERTING)
    return found


def _zones(specs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(domain, stack) for every domain a stack serves or holds the zone of."""
    out = []
    for name, spec in specs.items():
        domains = set(spec.ingress.domains) | ({spec.dns.zone} if spec.dns else set())
        out += [(d, name) for d in sorted(domains)]
    return out


def cross_stack_problems(specs: Mapping[str, Any], claims: Mapping[str, Iterable[tuple[Any, str]]], addons: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(file, key path, message) for each host in another stack's zone, each platform host claimed,
    and each host claimed by two files."""
    zones = _zones(specs)
    platform = {host: (what, stack) for stack, spec in specs.items() for host, what in platform_hosts(spec, addons).items()}
    owners: dict[str, tuple[str, str]] = {}
    problems = []
    for stack, loaded in claims.items():
        for svc, rel in loaded:
            if svc.expose is None:
                continue
            host = svc.expose.host
            where = f"in stack {stack!r}: host {host!r}"
            matches = [(d, s) for d, s in zones if under(host, d)]
            if matches:
                longest = max(len(d) for d, _ in matches)
                holders = sorted({s for d, s in matches if len(d) == longest})
                zone = next(d for d, _ in matches if len(d) == longest)
                if stack not in holders:
                    problems.append(
                        (
                            rel,
                            "expose.host",
                            f"{where} lies in {zone}, the zone of stack {', '.join(holders)}; this stack's DNS-01 challenge and record "
                            "cannot be made there, and the shared certificate would fail for every host: use a host in this stack's own zone",
                        )
                    )
            if host in platform:
                what, owner = platform[host]
                problems.append((rel, "expose.host", f"{where} is a host of the platform ({what} in stack {owner!r}); a service may not claim it"))
            first = owners.setdefault(host, (rel, stack))
            if first[0] != rel:
                problems.append(
                    (rel, "expose.host", f"{where} is already claimed by {first[0]} (in stack {first[1]!r}); a public host has one owner across all stacks")
                )
    # Egress to what this platform serves (a service's exposed host, an addon's) would leave the mesh to come
    # back in: in-mesh services are reached with dependsOn. What the platform only calls (the receivers, the
    # SMTP relay, the Git host) is not served here and stays a possible destination.
    served = {host: what for host, (what, _) in platform.items() if what != ALERTING}
    for stack, loaded in claims.items():
        for svc, rel in loaded:
            for i, entry in enumerate(svc.egress):
                if entry.host and (entry.host in owners or entry.host in served):
                    by = f"service file {owners[entry.host][0]}" if entry.host in owners else served[entry.host]
                    problems.append(
                        (rel, f"egress[{i}].host", f"in stack {stack!r}: {entry.host!r} is served by this platform ({by}), not an external destination")
                    )
    return problems
