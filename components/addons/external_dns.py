"""ExternalDNS: the exposed hosts' records in the stack's Route 53 zone, from Istio's Gateways.

The `istio-gateway` source reads the hosts of every networking.istio.io Gateway and points them at
the load balancer of the gateway pods' Service (the ingress gateway's NLB), so a host declared in
a service's `expose` gets its record without anyone touching DNS. Only the stack's zone is managed
(`domainFilters`, public zones only, and a role that can change no other zone), records carry TXT ownership marks with the cluster's
name, and with `policy: upsert-only` (the default here) nothing is ever deleted.

AWS access is EKS Pod Identity, limited to the zone: records changed and listed in that hosted zone
only (ListHostedZones has no resource-level permission, and reveals only zone names).

helm.v3.Release: the release waits for the controller, which needs its role from its first start.
"""

from __future__ import annotations

from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.aws import iam
from components.aws.dns import zone_statements
from components.monitoring.scrape import Metrics
from components.spec.base import Spec, field
from components.versions import EXTERNAL_DNS

from . import flows as net
from .base import Addon

NAMESPACE = "external-dns"
RELEASE = "external-dns"
SERVICE_ACCOUNT = "external-dns"
POD_LABELS = {"app.kubernetes.io/name": "external-dns"}
METRICS_PORT = 7979


class ExternalDnsSettings(Spec):
    policy: Literal["upsert-only", "sync"] = field(
        "upsert-only never deletes records; sync also removes records of hosts no longer exposed.", default="upsert-only"
    )
    interval: str = field("How often the records are reconciled.", default="1m", pattern=r"^[0-9]+(s|m|h)$")


class ExternalDns(Addon):
    name = "external-dns"
    namespace = NAMESPACE
    # Record changes and Route 53 errors (chart: serviceMonitor, on the metrics port).
    metrics = Metrics(charts={EXTERNAL_DNS.name: {"serviceMonitor": {"enabled": True}}})
    # Istio's Gateways are the source of the hosts.
    requires = ("istio",)
    Settings = ExternalDnsSettings

    def install(self) -> None:
        s: ExternalDnsSettings = self.settings
        zone = self.ctx.dns_zone
        child = pulumi.ResourceOptions(parent=self)
        self.role = iam.pod_identity_role(
            f"{self.name}-route53", self, inline=zone_statements(zone.arn), description=f"ExternalDNS: records of {zone.name} only (Pod Identity)"
        )
        identity = aws.eks.PodIdentityAssociation(
            f"{self.name}-identity",
            cluster_name=self.ctx.cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            role_arn=self.role.arn,
            opts=child,
        )
        self.release = self.helm(
            EXTERNAL_DNS,
            {
                "fullnameOverride": RELEASE,
                "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
                "provider": {"name": "aws"},
                "sources": ["istio-gateway"],
                "domainFilters": [zone.name],
                # The zone by name, public only; the role can change no other zone anyway.
                "extraArgs": ["--aws-zone-type=public"],
                "policy": s.policy,
                "registry": "txt",
                "txtOwnerId": self.ctx.cluster_name,
                "interval": s.interval,
                "env": [{"name": "AWS_DEFAULT_REGION", "value": self.ctx.region}],
                "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            },
            release=RELEASE,
            depends_on=(identity,),
        )

    def flows(self) -> list[net.Flow]:
        return [net.api_server(self.vpc_cidr), net.cloud("the Route 53 API"), net.pod_identity(), *self.scraped((METRICS_PORT,))]

    def outputs(self) -> dict[str, Any]:
        zone = self.ctx.dns_zone
        return {"namespace": NAMESPACE, "serviceAccount": SERVICE_ACCOUNT, "iamRoleArn": self.role.arn, "zone": zone.name, "zoneId": zone.zone_id}
