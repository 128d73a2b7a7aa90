"""The infrastructure part of a stack declaration: network, EKS cluster and Karpenter pools."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal, Optional

from pydantic import model_validator

from . import limits
from .backup import Cron
from .base import Quantity, Spec, field
from .problems import short

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
WORLD = {"0.0.0.0/0", "::/0"}


class ExistingNetwork(Spec):
    vpc_id: str = field("ID of an existing VPC to place the cluster in.", pattern=r"^vpc-[0-9a-f]{8,17}$")
    private_subnet_ids: list[str] = field("Existing private subnets (one per AZ) for nodes and internal load balancers.", min_length=2)
    public_subnet_ids: list[str] = field("Existing public subnets for internet-facing load balancers.", default_factory=list)


class NetworkSpec(Spec):
    cidr: str = field("IPv4 CIDR of the VPC; subnets are carved from it.", default="10.0.0.0/16")
    availability_zones: int = field("How many AZs the VPC spans.", default=3, ge=2, le=3)
    nat_gateways: Literal["single", "perAz"] = field("One shared NAT gateway (cheap) or one per AZ (no cross-AZ dependency).", default="perAz")
    flow_logs: bool = field("Send VPC flow logs to CloudWatch Logs.", default=True)
    flow_log_retention_days: int = field("Retention of the flow-log group, in days.", default=90)
    existing: Optional[ExistingNetwork] = field("Bring an existing VPC and subnets instead of creating one.", default=None)

    @model_validator(mode="after")
    def _check(self) -> "NetworkSpec":
        net = ipaddress.ip_network(self.cidr, strict=True) if _is_cidr(self.cidr) else None
        if net is None or net.version != 4 or not 16 <= net.prefixlen <= 20:
            raise ValueError(f"cidr {short(self.cidr)} must be an IPv4 network with a prefix from /16 to /20")
        _check_retention(self.flow_log_retention_days, "flowLogRetentionDays")
        return self


class EndpointSpec(Spec):
    public_access: bool = field("Whether the API server endpoint is reachable from the internet at all.", default=False)
    public_access_cidrs: list[str] = field("CIDRs allowed to reach the public endpoint; required when publicAccess is on.", default_factory=list)
    private_access_cidrs: list[str] = field("Networks routed to the VPC (CI runners, VPN) allowed to reach the private endpoint on 443.", default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> "EndpointSpec":
        for cidr in self.private_access_cidrs:
            if not _is_cidr(cidr) or cidr in WORLD:
                raise ValueError(f"privateAccessCidrs entry {short(cidr)} must be the CIDR of a network routed to the VPC (never 0.0.0.0/0)")
        for cidr in self.public_access_cidrs:
            if not _is_cidr(cidr):
                raise ValueError(f"publicAccessCidrs entry {short(cidr)} is not a CIDR")
        for key, cidrs in (("privateAccessCidrs", self.private_access_cidrs), ("publicAccessCidrs", self.public_access_cidrs)):
            dupes = limits.duplicate(str(ipaddress.ip_network(c)) for c in cidrs)
            if dupes:
                # Each private CIDR becomes a security group rule, and AWS refuses a duplicate rule.
                raise ValueError(f"{key} lists {', '.join(dupes)} more than once; AWS refuses duplicate rules, list each network once")
        if self.public_access and not self.public_access_cidrs:
            raise ValueError("publicAccess is on but publicAccessCidrs is empty; list the CIDRs allowed to reach the API (EKS would default to 0.0.0.0/0)")
        if not self.public_access and self.public_access_cidrs:
            raise ValueError("publicAccessCidrs is set but publicAccess is off; remove the CIDRs or turn publicAccess on")
        return self


class AccessSpec(Spec):
    admins: list[str] = field("IAM principal ARNs granted AmazonEKSClusterAdminPolicy.", default_factory=list)
    viewers: list[str] = field("IAM principal ARNs granted AmazonEKSAdminViewPolicy (read-only).", default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> "AccessSpec":
        for key, arns in (("admins", self.admins), ("viewers", self.viewers)):
            for i, arn in enumerate(arns):
                problem = limits.principal_problem(arn)
                if problem:
                    raise ValueError(f"{key}[{i}]: {problem}")
            dupes = limits.duplicate(arns)
            if dupes:
                raise ValueError(f"{key}: {dupes} listed twice; EKS has one access entry per principal")
        both = set(self.admins) & set(self.viewers)
        if both:
            raise ValueError(f"{sorted(both)} listed as both admin and viewer; an access entry has one principal")
        return self


class SystemNodesSpec(Spec):
    instance_types: list[str] = field("On-demand instance types for the system node group.", min_length=1)
    min_size: int = field("Minimum nodes.", ge=1)
    max_size: int = field("Maximum nodes.", ge=1)
    desired_size: int = field("Initial node count.", ge=1)
    disk_size_gib: int = field("Encrypted gp3 root volume size, in GiB.", default=50, ge=20)

    @property
    def architecture(self) -> str:
        return _architecture(self.instance_types[0])

    @model_validator(mode="after")
    def _check(self) -> "SystemNodesSpec":
        arches = {_architecture(t) for t in self.instance_types}
        if len(arches) > 1:
            raise ValueError(f"instanceTypes {self.instance_types} mix arm64 and amd64; one node group runs one AMI")
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(f"need minSize <= desiredSize <= maxSize, got {self.min_size}, {self.desired_size}, {self.max_size}")
        return self


class ClusterSpec(Spec):
    name: str = field("EKS cluster name; also the Karpenter discovery tag and interruption queue name.", pattern=r"^[a-z][a-z0-9-]{1,38}$")
    kubernetes_version: str = field('Kubernetes minor version, e.g. "1.35".', pattern=r"^1\.\d{2}$")
    upgrade_policy: Literal["STANDARD", "EXTENDED"] = field("EKS support policy once the version leaves standard support.", default="STANDARD")
    log_retention_days: int = field("Retention of the control-plane log group, in days.", default=90)
    protect: bool = field("deletion_protection and Pulumi protect on the cluster, its KMS key and the VPC.", default=False)
    endpoint: EndpointSpec = field("API server endpoint exposure (private access is always on).", default_factory=EndpointSpec)
    access: AccessSpec = field("Access entries for people and automation (no aws-auth ConfigMap).", default_factory=AccessSpec)
    system_nodes: SystemNodesSpec = field("The managed node group for system pods (Karpenter, CoreDNS).")

    @model_validator(mode="after")
    def _check(self) -> "ClusterSpec":
        _check_retention(self.log_retention_days, "logRetentionDays")
        problem = limits.kubernetes_version_problem(self.kubernetes_version, self.upgrade_policy)
        if problem:
            raise ValueError(f"kubernetesVersion: {problem}")
        return self


class DisruptionBudget(Spec):
    """A Karpenter disruption budget. A deploy window is one with `nodes: "0"`, reasons
    [Underutilized, Drifted] and a schedule: no consolidation or drift replacement moves pods while
    releases roll out, and empty nodes are still removed."""

    nodes: str = field("Nodes (count or percentage) that may be disrupted at once.", pattern=r"^((100|[0-9]{1,2})%|[0-9]+)$")
    reasons: list[Literal["Underutilized", "Empty", "Drifted"]] = field(
        "Disruption reasons the budget applies to (e.g. [Underutilized, Drifted] for a deploy window); all when empty.", default_factory=list
    )
    schedule: Optional[Cron] = field('Cron schedule (five fields, UTC) when the budget is active, e.g. "0 8 * * mon-fri"; needs duration.', default=None)
    # Karpenter's CRD pattern: hours and/or minutes, nothing finer.
    duration: Optional[str] = field(
        'How long the budget is active from each schedule hit, in hours and minutes, e.g. "10h" or "1h30m".',
        default=None,
        pattern=r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$",
    )

    @model_validator(mode="after")
    def _check(self) -> "DisruptionBudget":
        if (self.schedule is None) != (self.duration is None):
            raise ValueError("schedule and duration must be set together")
        if len(set(self.reasons)) != len(self.reasons):
            raise ValueError(f"reasons: {self.reasons} lists a reason twice (Karpenter keeps them as a set)")
        return self


class NodePoolSpec(Spec):
    name: str = field("NodePool name.", pattern=r"^[a-z][a-z0-9-]{1,62}$")
    capacity_types: list[Literal["spot", "on-demand"]] = field("Capacity types Karpenter may launch.", min_length=1)
    instance_categories: list[Literal["c", "m", "r", "t", "i", "g", "p"]] = field("EC2 instance categories.", default=["c", "m", "r"])
    min_generation: int = field("Instance generations strictly above this one are allowed.", default=5, ge=1)
    architectures: list[Literal["amd64", "arm64"]] = field("CPU architectures.", default=["amd64"])
    labels: dict[str, str] = field("Labels put on every node of the pool.", default_factory=dict)
    taints: list[str] = field("Taints as key=value:Effect.", default_factory=list)
    cpu_limit: Quantity = field("Total CPU the pool may provision.")
    memory_limit: Quantity = field("Total memory the pool may provision.")
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = field("When Karpenter consolidates nodes.", default="WhenEmptyOrUnderutilized")
    consolidate_after: str = field("How long a node must be consolidatable before Karpenter acts.", default="1m", pattern=r"^([0-9]+(s|m|h))+$")
    budgets: list[DisruptionBudget] = field("Explicit disruption budgets.", min_length=1)
    expire_after: str = field("Maximum node lifetime.", default="720h", pattern=r"^([0-9]+(s|m|h))+$")
    termination_grace_period: str = field("Upper bound on draining a node before it is forcibly terminated.", default="24h", pattern=r"^([0-9]+(s|m|h))+$")
    weight: int = field("Priority among pools; higher is tried first.", default=10, ge=1, le=100)

    @model_validator(mode="after")
    def _check(self) -> "NodePoolSpec":
        for taint in self.taints:
            key, _, rest = taint.partition("=")
            value, _, effect = rest.partition(":")
            if not key or not value or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
                raise ValueError(f"taint {short(taint)} must be key=value:Effect with Effect one of NoSchedule, PreferNoSchedule, NoExecute")
        return self


class KarpenterSpec(Spec):
    ami_alias: str = field("EC2NodeClass AMI alias: al2023@vYYYYMMDD pinned, or al2023@latest (dev only).", pattern=r"^al2023@(latest|v[0-9]{8})$")
    root_volume_gib: int = field("Encrypted gp3 root volume size of Karpenter nodes, in GiB.", default=50, ge=20)
    node_pools: list[NodePoolSpec] = field("NodePools to create.", min_length=1)

    @model_validator(mode="after")
    def _check(self) -> "KarpenterSpec":
        names = [p.name for p in self.node_pools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate node pool names {dupes}")
        return self


def _architecture(instance_type: str) -> str:
    """Graviton families carry a `g` after the generation digit (m7g, c7gn, r8gd); g5 is x86 GPU."""
    match = re.match(r"^[a-z]+[0-9]+([a-z-]*)\.", instance_type)
    if not match:
        raise ValueError(f"{short(instance_type)} is not an EC2 instance type (family.size, e.g. m7i.large)")
    return "arm64" if "g" in match[1] else "amd64"


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        return False
    return True


def _check_retention(days: int, key: str) -> None:
    if days not in LOG_RETENTION_DAYS:
        raise ValueError(f"{key} {days} is not a CloudWatch retention period; allowed: {', '.join(map(str, LOG_RETENTION_DAYS))}")
