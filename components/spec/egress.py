"""Egress a service declares (`egress:` in its file): external hosts, private networks, AWS APIs."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any, Literal, Optional

from pydantic import ValidationInfo, field_validator, model_validator

from .base import Spec, field
from .domains import refuse_placeholder

# AWS APIs a service may reach, and the kind of VPC endpoint each gets (components/aws/network.py):
# S3 and DynamoDB through gateway endpoints (routes to the service's prefix list), the others
# through interface endpoints with private DNS (addresses in the VPC).
AWS_ENDPOINTS = {
    "s3": "Gateway",
    "dynamodb": "Gateway",
    "sqs": "Interface",
    "sns": "Interface",
    "kms": "Interface",
    "secretsmanager": "Interface",
    "ssm": "Interface",
    "sts": "Interface",
    "logs": "Interface",
    "events": "Interface",
    "kinesis-streams": "Interface",
    "ecr.api": "Interface",
}
HOST = re.compile(r"^(?=.{4,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
PRIVATE = [ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")]
# Never a destination, whatever else holds: loopback, link-local (the instance metadata service, the
# Pod Identity agent, which the platform opens itself for services that need it) and "this network".
NEVER = [ipaddress.IPv4Network(n) for n in ("127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/8")]
# The widest network one entry may open: a /16 (65,536 addresses) is a whole VPC; wider is a hole.
MAX_PREFIX_WIDTH = 16
# The ranges EKS takes Service addresses from when the cluster names none (it names none here):
# 10.100.0.0/16, or 172.20.0.0/16 when the VPC overlaps that; both are cluster-internal.
EKS_SERVICE_RANGES = ("10.100.0.0/16", "172.20.0.0/16")
# Names that resolve inside the cluster or the VPC, never on the internet: Kubernetes' cluster domain
# and Service names, mDNS, the VPC's private DNS (ec2.internal, <region>.compute.internal), the API endpoint.
INTERNAL_SUFFIXES = ("svc", "cluster.local", "local", "localhost", "internal", "intranet", "lan", "home.arpa", "eks.amazonaws.com")
# How many destinations one service may declare, and the ports a host may be reached on through the
# shared egress gateway (TLS by SNI: ports that carry TLS; everything else is a private network).
MAX_ENTRIES = 20
HOST_PORTS = (443, 8443, 9243, 993, 465)


class Egress(Spec):
    """One destination outside the mesh: exactly one of `host`, `cidr` or `aws`."""

    host: Optional[str] = field("External DNS name reached over TLS through the mesh's egress gateway, e.g. api.stripe.com.", default=None)
    cidr: Optional[str] = field("A private network reached directly (database, cache), e.g. 10.40.0.0/16.", default=None)
    port: Optional[int] = field("TCP port of `host` or `cidr` (not used with `aws`).", default=None, ge=1, le=65535)
    aws: list[Literal[tuple(AWS_ENDPOINTS)]] = field("AWS APIs reached through VPC endpoints, e.g. [sqs, s3].", default_factory=list)  # type: ignore[valid-type]

    @field_validator("host")
    @classmethod
    def _real_host(cls, host: Optional[str], info: ValidationInfo) -> Optional[str]:
        return refuse_placeholder(host, info.context, "the service's calls to it never leave the mesh")

    @model_validator(mode="after")
    def _one(self) -> "Egress":
        given = [k for k in ("host", "cidr", "aws") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of host, cidr or aws (got {', '.join(given) or 'none'})")
        if self.aws:
            if self.port is not None:
                raise ValueError("port: not used with aws (the endpoints answer on 443)")
            if len(set(self.aws)) != len(self.aws):
                raise ValueError(f"aws: duplicate entries in {self.aws}")
            return self
        if self.port is None:
            raise ValueError(f"port: required with {given[0]}")
        if self.host is not None:
            problem = host_problem(self.host)
            if problem:
                raise ValueError(problem)
            if self.port not in HOST_PORTS:
                raise ValueError(
                    f"port: {self.port} is not a TLS port the shared egress gateway forwards ({', '.join(map(str, HOST_PORTS))}); "
                    "reach other ports of a private network by cidr"
                )
        if self.cidr is not None:
            problem = cidr_problem(self.cidr)
            if problem:
                raise ValueError(problem)
        return self


def host_problem(host: str) -> Optional[str]:
    if not HOST.match(host) or internal_name(host):
        return (
            f"host {host!r} must be an external DNS name (no wildcard, no IP, not a cluster or VPC name under "
            f"{', '.join('.' + s for s in INTERNAL_SUFFIXES)}); services in the mesh are reached with dependsOn"
        )
    return None


def cidr_problem(cidr: str) -> Optional[str]:
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        return f"cidr {cidr!r} is not a network address with a prefix (e.g. 10.40.0.0/16)"
    if not isinstance(net, ipaddress.IPv4Network) or not any(net.subnet_of(p) for p in PRIVATE):
        return (
            f"cidr {cidr!r} must be a private IPv4 network (10/8, 172.16/12, 192.168/16, 100.64/10); "
            "public destinations are declared by host, through the egress gateway"
        )
    never = next((n for n in NEVER if net.overlaps(n)), None)
    if never is not None:
        return f"cidr {cidr!r} covers {never} (loopback, link-local or metadata addresses), which no service may open"
    if net.prefixlen < MAX_PREFIX_WIDTH:
        return f"cidr {cidr!r} is wider than /{MAX_PREFIX_WIDTH}; declare the networks the service reaches, not a supernet"
    return None


class EgressGrant(Spec):
    """Destinations outside the mesh the platform team grants: to one team (`teams.<team>.egress`),
    or to every team (`policy.sharedEgress`). A service's `egress` may name only those."""

    networks: list[str] = field(
        "Private networks (CIDRs) the team owns, e.g. its database's 10.40.0.0/16; a service may open these or parts of them.", default_factory=list
    )
    hosts: list[str] = field("External hosts the team may reach, e.g. api.stripe.com; `*.stripe.com` grants every name under stripe.com.", default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> "EgressGrant":
        for i, cidr in enumerate(self.networks):
            problem = cidr_problem(cidr)
            if problem:
                raise ValueError(f"networks[{i}]: {problem}")
        for i, host in enumerate(self.hosts):
            problem = host_problem(host.removeprefix("*."))
            if problem:
                raise ValueError(f"hosts[{i}]: {problem}")
        return self

    def admits_host(self, host: str) -> bool:
        return any(host == h or (h.startswith("*.") and host.endswith(h[1:])) for h in self.hosts)

    def admits_network(self, cidr: str) -> bool:
        # Both are private IPv4 networks (cidr_problem refuses anything else).
        net = ipaddress.IPv4Network(cidr)
        return any(net.subnet_of(ipaddress.IPv4Network(n)) for n in self.networks)


def grant_problems(egress: list[Egress], team: str, grants: Iterable[EgressGrant]) -> list[str]:
    """Each destination must be granted to the service's team or offered to every team."""
    grants = list(grants)
    found = []
    for i, entry in enumerate(egress):
        if entry.host and not any(g.admits_host(entry.host) for g in grants):
            found.append(
                f"egress[{i}].host: {entry.host!r} is not granted to team {team!r}; the platform team lists it under teams.{team}.egress.hosts (or policy.sharedEgress.hosts) in the stack file"
            )
        if entry.cidr and not any(g.admits_network(entry.cidr) for g in grants):
            found.append(
                f"egress[{i}].cidr: {entry.cidr} is not a network team {team!r} owns; the platform team lists it under teams.{team}.egress.networks (or policy.sharedEgress.networks) in the stack file"
            )
    return found


def shared_network_problems(teams: dict[str, Any]) -> list[tuple[str, str]]:
    """(key path, message) for a network granted to two teams: a network has one owner (shared ones are policy.sharedEgress)."""
    owner: dict[str, str] = {}
    found = []
    for team, entry in teams.items():
        for i, cidr in enumerate(entry.egress.networks):
            net = ipaddress.ip_network(cidr)
            other = next((t for c, t in owner.items() if t != team and net.overlaps(ipaddress.ip_network(c))), None)
            if other is not None:
                found.append(
                    (
                        f"teams.{team}.egress.networks[{i}]",
                        f"{cidr} overlaps a network of team {other!r}; a network has one owner (list shared ones under policy.sharedEgress)",
                    )
                )
            owner.setdefault(cidr, team)
    return found


def internal_name(host: str) -> bool:
    return any(host == s or host.endswith("." + s) for s in INTERNAL_SUFFIXES)


def egress_problems(egress: list[Egress], reserved: Iterable[tuple[str, str]]) -> list[str]:
    """Rules needing the stack: too many entries, a range covering a network the platform owns
    (`reserved`: (what, cidr), e.g. the VPC, pods, Services, another stack's VPC)."""
    found = []
    if len(egress) > MAX_ENTRIES:
        found.append(f"egress: {len(egress)} entries, over the {MAX_ENTRIES} one service may declare; it is an allowlist, not a route table")
    for i, entry in enumerate(egress):
        if entry.cidr:
            net = ipaddress.ip_network(entry.cidr)
            for what, cidr in reserved:
                if net.overlaps(ipaddress.ip_network(cidr)):
                    found.append(f"egress[{i}].cidr: {entry.cidr} overlaps {what} ({cidr}), which the platform owns; declare only the team's own networks")
                    break
    return found


def platform_networks(stack: str, specs: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The address ranges no service of `stack` may open: its VPC (where the VPC CNI also gives pods
    their addresses), the Service ranges EKS picks from, and every other stack's VPC."""
    own = specs[stack].network.cidr
    found = [(f"stack {stack}'s VPC and pod network", own)]
    found += [(f"the cluster's Service range (EKS default {cidr})", cidr) for cidr in EKS_SERVICE_RANGES]
    found += [(f"stack {name}'s VPC", spec.network.cidr) for name, spec in sorted(specs.items()) if name != stack]
    # The networks routed to the clusters' private API endpoints: CI runners and the VPN.
    found += [
        (f"stack {name}'s cluster.endpoint.privateAccessCidrs (CI runners, VPN)", cidr)
        for name, spec in sorted(specs.items())
        for cidr in spec.cluster.endpoint.private_access_cidrs
        if ipaddress.ip_network(cidr).version == 4
    ]
    return tuple(found)
