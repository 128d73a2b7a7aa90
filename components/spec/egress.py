"""Egress a service declares (`egress:` in its file): external hosts, private networks, AWS APIs."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal, Optional

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
        if self.host is not None and (not HOST.match(self.host) or self.host.endswith((".cluster.local", ".internal"))):
            raise ValueError(f"host {self.host!r} must be an external DNS name (no wildcard, no IP, not a cluster name)")
        if self.cidr is not None:
            try:
                net = ipaddress.ip_network(self.cidr, strict=True)
            except ValueError:
                raise ValueError(f"cidr {self.cidr!r} is not a network address with a prefix (e.g. 10.40.0.0/16)") from None
            if not isinstance(net, ipaddress.IPv4Network) or not any(net.subnet_of(p) for p in PRIVATE):
                raise ValueError(
                    f"cidr {self.cidr!r} must be a private IPv4 network (10/8, 172.16/12, 192.168/16, 100.64/10); "
                    "public destinations are declared by host, through the egress gateway"
                )
        return self
