"""The stack's public DNS zone in Route 53: the one declared (`dns.zoneId`) or one created here.

ExternalDNS writes the exposed hosts' records into it and cert-manager answers ACME DNS-01
challenges in it; both get Pod Identity roles limited to this zone (components/addons). A created
zone exports its name servers, which the parent domain's owner delegates to.
"""

from __future__ import annotations

from typing import Any, Sequence

import pulumi
import pulumi_aws as aws

from components.spec.stack import DnsSpec

from . import iam


class DnsZone(pulumi.ComponentResource):
    name: str
    zone_id: pulumi.Output[str]
    name_servers: pulumi.Output[Sequence[str]]

    def __init__(self, resource_name: str, spec: DnsSpec, cluster_name: str, protect: bool, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:aws:DnsZone", resource_name, None, opts)
        self.name = spec.zone
        if spec.zone_id:
            self.zone_id = pulumi.Output.from_input(spec.zone_id)
            self.name_servers = pulumi.Output.from_input([])
        else:
            # Losing the zone loses every record and its delegation: protected wherever the cluster is.
            zone = aws.route53.Zone(
                resource_name,
                name=spec.zone,
                comment=f"Public hosts of {cluster_name}",
                force_destroy=False,
                opts=pulumi.ResourceOptions(parent=self, protect=protect),
            )
            self.zone_id = zone.zone_id
            self.name_servers = zone.name_servers
        self.register_outputs({"zone": self.name, "zoneId": self.zone_id, "nameServers": self.name_servers})

    @property
    def arn(self) -> pulumi.Output[str]:
        return pulumi.Output.concat(f"arn:{iam.PARTITION}:route53:::hostedzone/", self.zone_id)


def zone_statements(zone_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """Records in one hosted zone: change and list there, find the zone by name."""
    return [
        {
            "Effect": "Allow",
            "Action": ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets", "route53:ListTagsForResources"],
            "Resource": [zone_arn],
        },
        {"Effect": "Allow", "Action": ["route53:ListHostedZones", "route53:ListHostedZonesByName"], "Resource": ["*"]},
        # A change's status (DNS-01 waits for INSYNC): its own resource type, change/<id>.
        {"Effect": "Allow", "Action": ["route53:GetChange"], "Resource": [f"arn:{iam.PARTITION}:route53:::change/*"]},
    ]
