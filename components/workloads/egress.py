"""Egress beyond the mesh, declared per service (`egress:` in its file); nothing else leaves.

- `host` (TLS, e.g. api.stripe.com:443): the sidecar sends it, inside mTLS, to the Istio egress
  gateway, which forwards it to the host. Per (host, port), in the egress gateway's namespace: a
  ServiceEntry (the host joins the registry, which REGISTRY_ONLY prod meshes require), a Gateway
  (ISTIO_MUTUAL on the gateway's 443, for that host), a VirtualService (sidecars' TLS by SNI to the
  gateway, the gateway's TCP on to the host), and an AuthorizationPolicy admitting only the
  declaring services' identities for that SNI. One DestinationRule gives the sidecars the gateway
  subsets with the host as SNI. The service's NetworkPolicy opens the gateway pods on 443 only.
- `cidr` (databases, caches in the VPC or peered networks): a NetworkPolicy ipBlock on the port,
  and a ServiceEntry in the team's namespace so the mesh knows the address range.
- `aws` (sqs, s3, ...): the network component makes VPC endpoints for them. Interface endpoints
  answer on the VPC's CIDR (private DNS), so the policy opens the VPC CIDR on 443; S3 and DynamoDB
  use gateway endpoints, reached at the addresses of the API's AWS prefix list. A service with an
  AWS identity also reaches the Pod Identity agent.
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import IstioContract
from components.spec import Service
from components.spec.names import egress_slug
from components.spec.service import AWS_ENDPOINTS

from .pod import SERVICE_LABEL

NS_LABEL = "kubernetes.io/metadata.name"
POD_IDENTITY_AGENT = "169.254.170.23/32"


slug = egress_slug


def principal(svc: Service) -> str:
    return f"cluster.local/ns/{svc.team}/sa/{svc.name}"


def network_policy(svc: Service, vpc_cidr: str, prefix_lists: dict[str, Any], gateway: Optional[tuple[str, dict[str, str], int]]) -> Optional[dict[str, Any]]:
    """The service's egress beyond the mesh, as one NetworkPolicy spec (None when it declares none)."""
    https = [{"port": 443, "protocol": "TCP"}]
    rules: list[dict[str, Any]] = []
    if svc.external_hosts and gateway:
        namespace, labels, port = gateway
        rules.append(
            {
                "to": [{"namespaceSelector": {"matchLabels": {NS_LABEL: namespace}}, "podSelector": {"matchLabels": labels}}],
                "ports": [{"port": port, "protocol": "TCP"}],
            }
        )
    for cidr, port in svc.private_networks:
        rules.append({"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"port": port, "protocol": "TCP"}]})
    apis = svc.aws_apis
    if any(AWS_ENDPOINTS[api] == "Interface" for api in apis):
        rules.append({"to": [{"ipBlock": {"cidr": vpc_cidr}}], "ports": https})
    for api in apis:
        if AWS_ENDPOINTS[api] == "Gateway":
            rules.append({"to": pulumi.Output.from_input(prefix_lists[api]).apply(lambda cidrs: [{"ipBlock": {"cidr": c}} for c in cidrs]), "ports": https})
    if svc.has_aws_role:
        rules.append({"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"port": 80, "protocol": "TCP"}]})
    if not rules:
        return None
    return {"podSelector": {"matchLabels": {SERVICE_LABEL: svc.name}}, "policyTypes": ["Egress"], "egress": rules}


def private_service_entry(svc: Service, cidr: str, port: int) -> dict[str, Any]:
    """The address range in the mesh's registry (REGISTRY_ONLY lets nothing else out), for this namespace only."""
    return {
        "hosts": [f"{slug(cidr, port)}.{svc.name}.egress"],
        "addresses": [cidr],
        "ports": [{"number": port, "name": f"tcp-{port}", "protocol": "TCP"}],
        "location": "MESH_EXTERNAL",
        "resolution": "NONE",
        "exportTo": ["."],
    }


def host_routes(
    host: str, port: int, callers: list[Service], gateway_namespace: str, gateway_host: str, gateway_labels: dict[str, str], gateway_port: int
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Name -> (kind, spec) of the objects that route one declared host through the egress gateway."""
    name = f"egress-{slug(host, port)}"
    visible = sorted({gateway_namespace, *(s.team for s in callers)})
    return {
        name: (
            "ServiceEntry",
            {
                "hosts": [host],
                "ports": [{"number": port, "name": f"tls-{port}", "protocol": "TLS"}],
                "location": "MESH_EXTERNAL",
                "resolution": "DNS",
                "exportTo": visible,
            },
        ),
        f"{name}-gateway": (
            "Gateway",
            {
                "selector": gateway_labels,
                "servers": [
                    {
                        "port": {"number": gateway_port, "name": f"tls-{slug(host, port)}"[:63], "protocol": "TLS"},
                        "hosts": [host],
                        "tls": {"mode": "ISTIO_MUTUAL"},
                    }
                ],
            },
        ),
        f"{name}-route": (
            "VirtualService",
            {
                "hosts": [host],
                "gateways": ["mesh", f"{gateway_namespace}/{name}-gateway"],
                "exportTo": visible,
                "tls": [
                    {
                        "match": [{"gateways": ["mesh"], "port": port, "sniHosts": [host]}],
                        "route": [{"destination": {"host": gateway_host, "subset": slug(host, port), "port": {"number": gateway_port}}}],
                    }
                ],
                "tcp": [
                    {
                        "match": [{"gateways": [f"{gateway_namespace}/{name}-gateway"], "port": gateway_port}],
                        "route": [{"destination": {"host": host, "port": {"number": port}}}],
                    }
                ],
            },
        ),
        f"{name}-callers": (
            "AuthorizationPolicy",
            {
                "selector": {"matchLabels": gateway_labels},
                "action": "ALLOW",
                "rules": [{"from": [{"source": {"principals": sorted(principal(s) for s in callers)}}], "when": [{"key": "connection.sni", "values": [host]}]}],
            },
        ),
    }


def gateway_subsets(hosts: list[tuple[str, int]], gateway_host: str, gateway_port: int, teams: list[str]) -> dict[str, Any]:
    """Sidecar to egress gateway: mTLS, with the external host as SNI so the gateway picks its server."""
    return {
        "host": gateway_host,
        "exportTo": teams,
        "subsets": [
            {
                "name": slug(host, port),
                "trafficPolicy": {"portLevelSettings": [{"port": {"number": gateway_port}, "tls": {"mode": "ISTIO_MUTUAL", "sni": host}}]},
            }
            for host, port in hosts
        ],
    }


class EgressRoutes(pulumi.ComponentResource):
    """Every declared external host of the stack, routed through the egress gateway."""

    def __init__(self, services: list[Service], provider: k8s.Provider, istio: IstioContract, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("platform:workloads:EgressRoutes", "egress", None, opts)
        ns, gw_host, labels, port = istio.egress.namespace, istio.egress_host, dict(istio.egress.labels), istio.egress_port
        callers: dict[tuple[str, int], list[Service]] = {}
        for svc in services:
            for target in svc.external_hosts:
                callers.setdefault(target, []).append(svc)
        child = pulumi.ResourceOptions(parent=self, provider=provider)

        def custom(kind: str, name: str, spec: dict[str, Any]) -> None:
            group = "security.istio.io/v1" if kind == "AuthorizationPolicy" else "networking.istio.io/v1"
            k8s.apiextensions.CustomResource(
                f"{name}-{kind.lower()}", api_version=group, kind=kind, metadata={"name": name, "namespace": ns}, spec=spec, opts=child
            )

        for (host, target_port), found in sorted(callers.items()):
            for name, (kind, spec) in host_routes(host, target_port, found, ns, gw_host, labels, port).items():
                custom(kind, name, spec)
        if callers:
            teams = sorted({s.team for found in callers.values() for s in found})
            custom("DestinationRule", "egress-gateway", gateway_subsets(sorted(callers), gw_host, port, teams))
        self.hosts = sorted(f"{h}:{p}" for h, p in callers)
        self.register_outputs({"hosts": self.hosts})
