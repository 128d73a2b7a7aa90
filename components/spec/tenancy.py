"""Tenant boundaries a declaration cannot cross: team names and public hosts.

A team name becomes a namespace the platform labels, budgets and polices, so it must never be a
namespace Kubernetes, the platform or an addon already owns. Which namespaces those are comes from
the addon registry (each addon declares the namespaces it creates), never from a list kept here.

A public host is routed by the shared ingress gateway and listed in its shared certificate, so it
must be a well-formed name under a domain the stack says it serves, and belong to one service.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Optional

from pydantic import ValidationInfo, field_validator

from .base import Spec, field
from .domains import refuse_placeholder

# Namespaces every cluster has, and the prefix Kubernetes keeps for itself (EKS addons and Karpenter
# run in kube-system; the prefix also covers namespaces a later Kubernetes adds).
KUBERNETES_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
KUBERNETES_PREFIX = "kube-"
# RFC 1123 host names: labels of letters, digits and hyphens, not starting or ending with a hyphen.
HOST_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MAX_HOST_LENGTH = 253


def reserved_namespaces(addons: Iterable[Any]) -> tuple[str, ...]:
    """Every namespace an addon of the registry creates (whether or not this stack enables it:
    a team must not be able to squat a namespace the platform may need tomorrow)."""
    found = set(KUBERNETES_NAMESPACES)
    for addon in addons:
        found.update(addon.namespaces)
    return tuple(sorted(found))


def team_problem(team: str, reserved: Iterable[str]) -> Optional[str]:
    reserved = tuple(reserved)
    if team.startswith(KUBERNETES_PREFIX) or team in reserved:
        return (
            f"team {team!r} is a reserved namespace; a team may not be named {KUBERNETES_PREFIX}* or any of "
            f"{', '.join(reserved)} (namespaces of Kubernetes, the platform and its addons)"
        )
    return None


def check_team(team: str, context: Optional[Mapping[str, Any]]) -> str:
    """A field validator body: the loader passes the reserved namespaces in the validation context."""
    reserved = (context or {}).get("reserved_namespaces")
    if reserved is not None:
        problem = team_problem(team, reserved)
        if problem:
            raise ValueError(problem)
    return team


def host_problem(host: str) -> Optional[str]:
    """Why `host` is not a DNS name a certificate and a gateway can serve, or None."""
    if "*" in host:
        return f"{host!r} is a wildcard; expose one concrete host name"
    if len(host) > MAX_HOST_LENGTH:
        return f"{host!r} is longer than {MAX_HOST_LENGTH} characters"
    labels = host.split(".")
    if len(labels) < 2:
        return f"{host!r} is not a fully qualified host name (at least name.domain)"
    for label in labels:
        if not HOST_LABEL.match(label):
            return f"{host!r} has the label {label!r}, which is not a DNS label (1-63 of a-z, 0-9 and '-', not starting or ending with '-')"
    if labels[-1].isdigit():
        return f"{host!r} looks like an IP address, not a host name"
    return None


def under(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def check_host(host: str, context: Optional[Mapping[str, Any]]) -> str:
    """A field validator body: the host is well formed and under a domain the stack serves."""
    problem = host_problem(host)
    if problem:
        raise ValueError(problem)
    domains = (context or {}).get("domains")
    if domains is not None and not any(under(host, d) for d in domains):
        served = ", ".join(domains) if domains else "none (the stack file declares no ingress.domains)"
        raise ValueError(f"host {host!r} is not under a domain this stack serves; ingress.domains: {served}")
    return host


def host_claims(claims: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """(file, key path, message) for every host claimed a second time; claims are (host, service, file)."""
    first: dict[str, tuple[str, str]] = {}
    problems = []
    for host, service, rel in claims:
        if host in first:
            owner, owner_rel = first[host]
            problems.append(
                (rel, "expose.host", f"host {host!r} is already routed to service {owner!r} ({owner_rel}); a public host belongs to exactly one service")
            )
        else:
            first[host] = (service, rel)
    return problems


class IngressSpec(Spec):
    domains: list[str] = field(
        "DNS domains this stack serves publicly; every exposed host must be one of them or under one (no wildcards).", default_factory=list
    )

    @field_validator("domains")
    @classmethod
    def _domains(cls, domains: list[str], info: ValidationInfo) -> list[str]:
        for domain in domains:
            problem = host_problem(domain)
            if problem:
                raise ValueError(problem)
            refuse_placeholder(domain, info.context, "no certificate for its hosts can ever issue and no one can reach them")
        return domains
