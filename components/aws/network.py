"""The VPC the cluster lives in, or an existing one brought by the stack.

VPC endpoints are made on demand for the AWS APIs the services declare (`egress: [{aws: [...]}]`):
an interface endpoint with private DNS per API (the API's usual name resolves to addresses in the
private subnets, so pods reach it on the VPC's CIDR and their NetworkPolicy never opens the
internet), and a gateway endpoint for S3 and DynamoDB (routes in the private route tables to the
API's prefix list). A brought-in VPC is not modified: its owner provides the endpoints.
"""

from __future__ import annotations

import ipaddress
import operator

import pulumi
import pulumi_aws as aws

from components.spec.service import AWS_ENDPOINTS
from components.spec.stack import NetworkSpec

from . import iam


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        spec: NetworkSpec,
        cluster_name: str,
        protect: bool,
        opts: pulumi.ResourceOptions | None = None,
        aws_apis: tuple[str, ...] = (),
        region: str = "",
    ):
        super().__init__("platform:aws:Network", name, None, opts)
        self.endpoints: dict[str, aws.ec2.VpcEndpoint] = {}
        self._apis, self._region = tuple(sorted(set(aws_apis))), region
        if spec.existing is not None:
            # Brought-in networks are referenced, never modified: their tags are the owner's job.
            self.vpc_id = pulumi.Output.from_input(spec.existing.vpc_id)
            self.private_subnet_ids = pulumi.Output.from_input(list(spec.existing.private_subnet_ids))
            self.public_subnet_ids = pulumi.Output.from_input(list(spec.existing.public_subnet_ids))
        else:
            self._create(name, spec, cluster_name, protect)
        self.register_outputs({"vpcId": self.vpc_id, "privateSubnetIds": self.private_subnet_ids, "publicSubnetIds": self.public_subnet_ids})

    def _create(self, name: str, spec: NetworkSpec, cluster: str, protect: bool) -> None:
        child = pulumi.ResourceOptions(parent=self)
        # An IPv4 network: the model refuses anything else.
        net = ipaddress.IPv4Network(spec.cidr)
        # Eight equal blocks: one per AZ for private subnets (nodes and pods need the room),
        # and the last block split into small public subnets that only hold load balancers and NAT.
        blocks = list(net.subnets(prefixlen_diff=3))
        public_blocks = list(blocks[-1].subnets(prefixlen_diff=2))
        zones = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOptions(parent=self))

        vpc = aws.ec2.Vpc(
            name,
            cidr_block=spec.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": cluster},
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        # CIS 5.4: the default security group must allow nothing.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[], tags={"Name": f"{cluster}-default-deny"}, opts=child)
        igw = aws.ec2.InternetGateway(name, vpc_id=vpc.id, tags={"Name": cluster}, opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public", vpc_id=vpc.id, routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}], tags={"Name": f"{cluster}-public"}, opts=child
        )

        public, private, nats, private_tables = [], [], [], []
        for i in range(spec.availability_zones):
            az = zones.names.apply(operator.itemgetter(i))
            pub = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=vpc.id,
                availability_zone=az,
                cidr_block=str(public_blocks[i]),
                map_public_ip_on_launch=False,
                tags={"Name": f"{cluster}-public-{i}", "kubernetes.io/role/elb": "1"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(f"{name}-public-{i}", subnet_id=pub.id, route_table_id=public_rt.id, opts=child)
            public.append(pub)
            if spec.nat_gateways == "perAz" or i == 0:
                eip = aws.ec2.Eip(f"{name}-nat-{i}", domain="vpc", tags={"Name": f"{cluster}-nat-{i}"}, opts=child)
                nats.append(
                    aws.ec2.NatGateway(
                        f"{name}-{i}",
                        allocation_id=eip.id,
                        subnet_id=pub.id,
                        tags={"Name": f"{cluster}-{i}"},
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                    )
                )
            priv = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                availability_zone=az,
                cidr_block=str(blocks[i]),
                map_public_ip_on_launch=False,
                tags={"Name": f"{cluster}-private-{i}", "kubernetes.io/role/internal-elb": "1", "karpenter.sh/discovery": cluster},
                opts=child,
            )
            # Each AZ egresses through its own NAT when there is one, so an AZ outage stays contained.
            nat = nats[i] if spec.nat_gateways == "perAz" else nats[0]
            rt = aws.ec2.RouteTable(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                tags={"Name": f"{cluster}-private-{i}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(f"{name}-private-{i}", subnet_id=priv.id, route_table_id=rt.id, opts=child)
            private.append(priv)
            private_tables.append(rt)

        if spec.flow_logs:
            self._flow_logs(name, cluster, vpc, spec.flow_log_retention_days)
        if self._apis:
            self._endpoints(name, cluster, vpc, spec.cidr, private, private_tables)
        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])

    def _flow_logs(self, name: str, cluster: str, vpc: aws.ec2.Vpc, retention: int) -> None:
        child = pulumi.ResourceOptions(parent=self)
        group = aws.cloudwatch.LogGroup(f"{name}-flow-logs", name=f"/aws/vpc/{cluster}/flow-logs", retention_in_days=retention, opts=child)
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self))
        region = aws.get_region_output(opts=pulumi.InvokeOptions(parent=self)).region
        flow_log_arns = pulumi.Output.concat("arn:", iam.PARTITION, ":ec2:", region, ":", identity.account_id, ":vpc-flow-log/*")
        writer = iam.role(
            f"{name}-flow-logs",
            "vpc-flow-logs.amazonaws.com",
            self,
            inline=[
                # Stream actions on the group's streams; DescribeLogGroups applies to no resource, so it
                # has a statement of its own on "*" rather than riding on an ARN it cannot apply to.
                {
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    "Resource": [pulumi.Output.concat(group.arn, ":*")],
                },
                {"Effect": "Allow", "Action": ["logs:DescribeLogGroups"], "Resource": "*"},
            ],
            description=f"VPC flow logs of {cluster} to CloudWatch Logs",
            # Only this account's flow logs may use the role (confused deputy).
            conditions=iam.source_conditions(identity.account_id, flow_log_arns),
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=writer.arn,
            max_aggregation_interval=60,
            opts=child,
        )

    def _endpoints(self, name: str, cluster: str, vpc: aws.ec2.Vpc, cidr: str, subnets: list, tables: list) -> None:
        child = pulumi.ResourceOptions(parent=self)
        interface = [api for api in self._apis if AWS_ENDPOINTS[api] == "Interface"]
        group = None
        if interface:
            # HTTPS from the VPC (nodes and pods: the VPC CNI gives pods VPC addresses) and nothing else.
            group = aws.ec2.SecurityGroup(
                f"{name}-endpoints",
                vpc_id=vpc.id,
                description=f"VPC endpoints of {cluster}: HTTPS from the VPC",
                ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": [cidr], "description": "HTTPS from the VPC"}],
                egress=[],
                tags={"Name": f"{cluster}-endpoints"},
                opts=child,
            )
        for api in self._apis:
            service = f"com.amazonaws.{self._region}.{api}"
            if AWS_ENDPOINTS[api] == "Gateway":
                self.endpoints[api] = aws.ec2.VpcEndpoint(
                    f"{name}-{api}",
                    vpc_id=vpc.id,
                    service_name=service,
                    vpc_endpoint_type="Gateway",
                    route_table_ids=[t.id for t in tables],
                    tags={"Name": f"{cluster}-{api}"},
                    opts=child,
                )
            else:
                self.endpoints[api] = aws.ec2.VpcEndpoint(
                    f"{name}-{api}",
                    vpc_id=vpc.id,
                    service_name=service,
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[s.id for s in subnets],
                    security_group_ids=[group.id] if group else [],
                    tags={"Name": f"{cluster}-{api}"},
                    opts=child,
                )
