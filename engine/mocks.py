"""Deterministic stand-ins for what AWS and Kubernetes would return.

Outputs have the real shapes (ARNs, IDs, endpoints, OIDC issuers, certificate data), so every
downstream `apply` and every piece of wiring runs just as it would against a real account.
Values derive from a hash of the resource name: the same program always yields the same state,
which keeps `make diff` free of noise.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Callable, Optional

import pulumi

ACCOUNT = "123456789012"
PARTITION = "aws"


def _hex(seed: str, n: int = 17) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def _arn(service: str, region: str, resource: str, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


class PlatformMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str, served: Optional[dict[str, dict]] = None):
        self.region = region
        # The recorded outputs of the stacks a program may reference, by StackReference name.
        self.served = served or {}

    # -- resources ---------------------------------------------------------------------------
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-provider-id", inputs
        if args.typ == "pulumi:pulumi:StackReference":
            return self._stack_reference(str(inputs.get("name") or args.name))
        if args.typ.startswith("kubernetes:"):
            return self._kubernetes(args.name, inputs)
        if args.typ.startswith("aws:"):
            return self._aws(args.typ, args.name, inputs)
        return f"{args.name}-id", inputs

    def _stack_reference(self, name: str) -> tuple[str, dict]:
        """What the real engine reads from the backend: the referenced stack's outputs, and which are secret.
        engine/stacks.py checks the contract before a team program runs, so an unknown stack is a bug."""
        outputs = self.served[name]
        return name, {"name": name, "outputs": outputs, "secretOutputNames": sorted(k for k, v in outputs.items() if v == "[secret]")}

    def _kubernetes(self, name: str, inputs: dict) -> tuple[str, dict]:
        meta = dict(inputs.get("metadata") or {})
        # The provider auto-names objects that have no explicit name.
        meta.setdefault("name", f"{name}-{_hex(name, 8)}")
        meta.setdefault("uid", _hex("uid" + name, 32))
        inputs["metadata"] = meta
        ns = meta.get("namespace")
        return (f"{ns}/{meta['name']}" if ns else meta["name"]), inputs

    def _aws(self, typ: str, name: str, inputs: dict) -> tuple[str, dict]:
        module = typ.split(":")[1].split("/")[0]
        handler = AWS_TYPES.get(typ)
        physical = inputs.get("name") or f"{name}-{_hex(name, 7)}"
        state = {**inputs, "arn": _arn(module, self.region, f"{typ.split(':')[-1].lower()}/{physical}")}
        if "name" in inputs or handler is None:
            state.setdefault("name", physical)
        if handler is not None:
            ident, extra = handler(self, name, physical, inputs)
            state.update(extra)
            return ident, state
        return f"{physical}", state

    # -- invokes -----------------------------------------------------------------------------
    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        handler = CALLS.get(args.token)
        if handler is None:
            raise NotImplementedError(f"the offline engine has no mock for invoke {args.token}; add one to engine/mocks.py")
        return handler(self, args.args), []


# Per-type state, keyed by Pulumi type token: (self, logical name, physical name, inputs) -> (id, extra state).
def _vpc(m, name, phys, inputs):
    vid = f"vpc-{_hex(name)}"
    return vid, {
        "id": vid,
        "arn": _arn("ec2", m.region, f"vpc/{vid}"),
        "defaultSecurityGroupId": f"sg-{_hex(name + 'default')}",
        "mainRouteTableId": f"rtb-{_hex(name + 'main')}",
    }


def _prefixed(prefix: str, service: str = "ec2", kind: str = "") -> Callable:
    def handler(m, name, phys, inputs):
        ident = f"{prefix}-{_hex(name)}"
        return ident, {"arn": _arn(service, m.region, f"{kind or prefix}/{ident}")}

    return handler


def _iam(kind: str) -> Callable:
    def handler(m, name, phys, inputs):
        path = inputs.get("path", "/")
        return phys, {"name": phys, "arn": f"arn:{PARTITION}:iam::{ACCOUNT}:{kind}{path}{phys}", "uniqueId": "AROA" + _hex(name, 17).upper()}

    return handler


def _kms_key(m, name, phys, inputs):
    # A multi-Region key's ID is mrk- and 32 hex digits; a replica shares its primary's ID, in its own region.
    key_id = "-".join(_hex(name, 32)[i:j] for i, j in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32)))
    if inputs.get("multiRegion"):
        key_id = "mrk-" + _hex(name, 32)
    return key_id, {"keyId": key_id, "arn": _arn("kms", inputs.get("region") or m.region, f"key/{key_id}")}


def _kms_replica_key(m, name, phys, inputs):
    key_id = str(inputs.get("primaryKeyArn", "")).rsplit("/", 1)[-1] or "mrk-" + _hex(name, 32)
    return key_id, {"keyId": key_id, "arn": _arn("kms", inputs.get("region") or m.region, f"key/{key_id}")}


def _eks_cluster(m, name, phys, inputs):
    token = _hex(name, 32).upper()
    cert = base64.b64encode(f"-----BEGIN CERTIFICATE-----\nMOCK{token}\n-----END CERTIFICATE-----\n".encode()).decode()
    vpc = dict(inputs.get("vpcConfig") or {})
    vpc.update({"clusterSecurityGroupId": f"sg-{_hex(name + 'cluster')}", "vpcId": f"vpc-{_hex('vpc')}"})
    return phys, {
        "name": phys,
        "arn": _arn("eks", m.region, f"cluster/{phys}"),
        "endpoint": f"https://{token}.gr7.{m.region}.eks.amazonaws.com",
        "certificateAuthority": {"data": cert},
        "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{m.region}.amazonaws.com/id/{token}"}]}],
        "vpcConfig": vpc,
        "platformVersion": "eks.1",
        "status": "ACTIVE",
        "version": inputs.get("version"),
    }


def _oidc_provider(m, name, phys, inputs):
    url = str(inputs.get("url", "")).removeprefix("https://")
    return url, {"arn": f"arn:{PARTITION}:iam::{ACCOUNT}:oidc-provider/{url}"}


def _sqs_queue(m, name, phys, inputs):
    url = f"https://sqs.{m.region}.amazonaws.com/{ACCOUNT}/{phys}"
    return url, {"name": phys, "url": url, "arn": _arn("sqs", m.region, phys)}


def _log_group(m, name, phys, inputs):
    return phys, {"name": phys, "arn": _arn("logs", m.region, f"log-group:{phys}")}


def _eks_child(kind: str) -> Callable:
    def handler(m, name, phys, inputs):
        cluster = inputs.get("clusterName", "cluster")
        return f"{cluster}:{phys}", {"arn": _arn("eks", m.region, f"{kind}/{cluster}/{phys}/{_hex(name, 8)}"), "status": "ACTIVE"}

    return handler


def _route53_zone(m, name, phys, inputs):
    zone_id = "Z" + _hex(name, 20).upper()
    servers = [f"ns-{int(_hex(name + str(i), 3), 16) % 2048}.awsdns-{i:02d}.{tld}" for i, tld in enumerate(("com", "net", "org", "co.uk"))]
    return zone_id, {"zoneId": zone_id, "nameServers": servers, "arn": f"arn:{PARTITION}:route53:::hostedzone/{zone_id}"}


def _event_rule(m, name, phys, inputs):
    return phys, {"name": phys, "arn": _arn("events", m.region, f"rule/{phys}")}


AWS_TYPES: dict[str, Callable] = {
    "aws:route53/zone:Zone": _route53_zone,
    "aws:ec2/vpc:Vpc": _vpc,
    "aws:ec2/subnet:Subnet": _prefixed("subnet"),
    "aws:ec2/internetGateway:InternetGateway": _prefixed("igw", kind="internet-gateway"),
    "aws:ec2/natGateway:NatGateway": _prefixed("nat", kind="natgateway"),
    "aws:ec2/eip:Eip": _prefixed("eipalloc", kind="elastic-ip"),
    "aws:ec2/routeTable:RouteTable": _prefixed("rtb", kind="route-table"),
    "aws:ec2/securityGroup:SecurityGroup": _prefixed("sg", kind="security-group"),
    "aws:ec2/launchTemplate:LaunchTemplate": _prefixed("lt", kind="launch-template"),
    "aws:ec2/flowLog:FlowLog": _prefixed("fl", kind="vpc-flow-log"),
    "aws:iam/role:Role": _iam("role"),
    "aws:iam/policy:Policy": _iam("policy"),
    "aws:iam/instanceProfile:InstanceProfile": _iam("instance-profile"),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": _oidc_provider,
    "aws:kms/key:Key": _kms_key,
    "aws:kms/replicaKey:ReplicaKey": _kms_replica_key,
    "aws:eks/cluster:Cluster": _eks_cluster,
    "aws:eks/nodeGroup:NodeGroup": _eks_child("nodegroup"),
    "aws:eks/addon:Addon": _eks_child("addon"),
    "aws:eks/accessEntry:AccessEntry": _eks_child("access-entry"),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": _eks_child("podidentityassociation"),
    "aws:sqs/queue:Queue": _sqs_queue,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:cloudwatch/eventRule:EventRule": _event_rule,
}


def _caller_identity(m, args):
    return {"accountId": ACCOUNT, "arn": f"arn:{PARTITION}:iam::{ACCOUNT}:user/offline", "userId": "AIDAOFFLINE", "id": ACCOUNT}


def _region(m, args):
    return {"name": m.region, "region": m.region, "id": m.region, "endpoint": f"ec2.{m.region}.amazonaws.com", "description": m.region}


def _partition(m, args):
    return {"partition": PARTITION, "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws", "id": PARTITION}


def _zones(m, args):
    names = [f"{m.region}{s}" for s in "abc"]
    return {"names": names, "zoneIds": [f"euw1-az{i}" for i in (1, 2, 3)], "id": m.region, "state": "available"}


# Real build strings have this shape; the number only has to be stable.
ADDON_VERSIONS = {
    "vpc-cni": "v1.20.4-eksbuild.2",
    "coredns": "v1.12.4-eksbuild.1",
    "kube-proxy": "v1.35.0-eksbuild.2",
    "aws-ebs-csi-driver": "v1.52.1-eksbuild.1",
    "eks-pod-identity-agent": "v1.3.9-eksbuild.3",
    "metrics-server": "v0.8.0-eksbuild.2",
    "snapshot-controller": "v8.3.0-eksbuild.1",
}


def _addon_version(m, args):
    name = args["addonName"]
    if name not in ADDON_VERSIONS:
        raise ValueError(f"no EKS addon named {name!r}")
    return {"addonName": name, "kubernetesVersion": args["kubernetesVersion"], "version": ADDON_VERSIONS[name], "id": name}


def _prefix_list(m, args):
    # The shape of AWS's managed prefix lists for S3 and DynamoDB (a few public ranges per region).
    name = args.get("name") or "com.amazonaws.eu-west-1.s3"
    seed = int(_hex(name, 4), 16) % 200 + 16
    return {"id": f"pl-{_hex(name, 8)}", "name": name, "cidrBlocks": [f"52.{seed}.0.0/17", f"3.5.{seed}.0/24"], "filters": [], "tags": {}}


CALLS: dict[str, Callable] = {
    "aws:ec2/getPrefixList:getPrefixList": _prefix_list,
    "aws:index/getCallerIdentity:getCallerIdentity": _caller_identity,
    "aws:index/getRegion:getRegion": _region,
    "aws:index/getPartition:getPartition": _partition,
    "aws:index/getAvailabilityZones:getAvailabilityZones": _zones,
    "aws:eks/getAddonVersion:getAddonVersion": _addon_version,
}
