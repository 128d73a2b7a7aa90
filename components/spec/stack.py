"""The shape of one environment: `stacks/<stack>.yaml`."""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field as dataclass_field
from typing import Any, Literal, Optional

from pydantic import ValidationInfo, model_validator

from .alerting import AlertingSpec, TeamAlerts
from .base import Quantity, Spec, field
from .service import DNS_LABEL, Service, ServiceDefaults

Environment = Literal["dev", "staging", "prod"]
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
WORLD = {"0.0.0.0/0", "::/0"}
# Addons that must never run in a prod stack: chaos-mesh's daemon kills pods and rewrites networking.
NON_PROD_ADDONS = ("chaos-mesh",)
# Istio injects a sidecar into every pod of a meshed namespace with the chart's default requests
# (istiod values global.proxy.resources.requests); a team's quota must admit them too.
SIDECAR_REQUESTS = ("100m", "128Mi")
# A Deployment's rollingUpdate.maxSurge (components/workloads/microservice.py): extra pods during a rollout.
ROLLOUT_SURGE = 0.25


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
            raise ValueError(f"cidr {self.cidr!r} must be an IPv4 network with a prefix from /16 to /20")
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
                raise ValueError(f"privateAccessCidrs entry {cidr!r} must be the CIDR of a network routed to the VPC (never 0.0.0.0/0)")
        for cidr in self.public_access_cidrs:
            if not _is_cidr(cidr):
                raise ValueError(f"publicAccessCidrs entry {cidr!r} is not a CIDR")
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
        for arn in [*self.admins, *self.viewers]:
            if not arn.startswith("arn:aws:iam::") or ":role/" not in arn and ":user/" not in arn:
                raise ValueError(f"{arn!r} is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)")
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
    kubernetes_version: str = field("Kubernetes minor version, e.g. \"1.35\".", pattern=r"^1\.\d{2}$")
    upgrade_policy: Literal["STANDARD", "EXTENDED"] = field("EKS support policy once the version leaves standard support.", default="STANDARD")
    log_retention_days: int = field("Retention of the control-plane log group, in days.", default=90)
    protect: bool = field("deletion_protection and Pulumi protect on the cluster, its KMS key and the VPC.", default=False)
    endpoint: EndpointSpec = field("API server endpoint exposure (private access is always on).", default_factory=EndpointSpec)
    access: AccessSpec = field("Access entries for people and automation (no aws-auth ConfigMap).", default_factory=AccessSpec)
    system_nodes: SystemNodesSpec = field("The managed node group for system pods (Karpenter, CoreDNS).")

    @model_validator(mode="after")
    def _check(self) -> "ClusterSpec":
        _check_retention(self.log_retention_days, "logRetentionDays")
        return self


class DisruptionBudget(Spec):
    nodes: str = field("Nodes (count or percentage) that may be disrupted at once.", pattern=r"^((100|[0-9]{1,2})%|[0-9]+)$")
    reasons: list[Literal["Underutilized", "Empty", "Drifted"]] = field("Disruption reasons the budget applies to; all when empty.", default_factory=list)
    schedule: Optional[str] = field("Cron schedule when the budget is active (needs duration).", default=None)
    duration: Optional[str] = field("How long the budget is active from each schedule hit, e.g. \"8h\".", default=None, pattern=r"^([0-9]+(s|m|h))+$")

    @model_validator(mode="after")
    def _check(self) -> "DisruptionBudget":
        if (self.schedule is None) != (self.duration is None):
            raise ValueError("schedule and duration must be set together")
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
                raise ValueError(f"taint {taint!r} must be key=value:Effect with Effect one of NoSchedule, PreferNoSchedule, NoExecute")
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


class AddonSpec(Spec):
    enabled: bool = field("Install this addon in the stack.", default=True)
    settings: dict[str, Any] = field("The addon's typed settings (see its Settings model in components/addons/).", default_factory=dict)
    values: dict[str, Any] = field("Helm value overrides, deep-merged over the addon's values; keyed by chart name for addons with several charts.", default_factory=dict)


class PolicySpec(Spec):
    allowed_registries: list[str] = field("Image registry prefixes workloads may pull from.", min_length=1)
    max_rollback_seconds: int = field("Worst-case canary rollback time allowed, in seconds.", default=60, ge=10)


class TeamBudget(Spec):
    cpu: Optional[Quantity] = field("CPU the team's pods may request in total (ResourceQuota requests.cpu), e.g. \"8\"; a team that runs services needs it.", default=None, pattern=r"^[0-9]+(\.[0-9]+)?m?$")
    memory: Optional[Quantity] = field("Memory the team's pods may request in total (ResourceQuota requests.memory), e.g. \"16Gi\".", default=None, pattern=r"^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$")
    pods: Optional[int] = field("Most pods in the team's namespace at once (ResourceQuota pods).", default=None, ge=1)
    alerts: Optional[TeamAlerts] = field("Where the team's alerts go (receivers under alerting.receivers); required when the stack has alerting.", default=None)

    @model_validator(mode="after")
    def _check(self) -> "TeamBudget":
        if len({self.cpu is None, self.memory is None, self.pods is None}) > 1:
            raise ValueError("cpu, memory and pods make one budget: set all three or none")
        return self

    @property
    def has_budget(self) -> bool:
        return self.cpu is not None


@dataclass
class TeamUsage:
    """What a team's services may request at worst: every service at max replicas, plus rollout surge,
    plus a second full set for a canary under analysis (Flagger runs primary and canary), with sidecars."""

    cpu_millis: int = 0
    memory_bytes: int = 0
    pods: int = 0
    services: dict[str, tuple[int, int, int]] = dataclass_field(default_factory=dict)

    def add(self, svc: Service, environment: str, mesh: bool) -> None:
        base = svc.replicas.max
        pods = base + math.ceil(base * ROLLOUT_SURGE) + (base if svc.canary_enabled(environment) else 0)
        cpu = cpu_millis(svc.resources.requests.cpu) + (cpu_millis(SIDECAR_REQUESTS[0]) if mesh else 0)
        memory = memory_bytes(svc.resources.requests.memory) + (memory_bytes(SIDECAR_REQUESTS[1]) if mesh else 0)
        self.services[svc.name] = (pods * cpu, pods * memory, pods)
        self.cpu_millis += pods * cpu
        self.memory_bytes += pods * memory
        self.pods += pods


class StackSpec(Spec):
    environment: Environment = field("Which kind of environment this stack is; prod turns on the strict rules.")
    network: NetworkSpec = field("The VPC the cluster runs in.", default_factory=NetworkSpec)
    cluster: ClusterSpec = field("The EKS cluster.")
    karpenter: KarpenterSpec = field("Karpenter node classes and pools.")
    addons: dict[str, AddonSpec] = field("Platform addons by name, with per-stack Helm overrides.", default_factory=dict)
    service_defaults: ServiceDefaults = field("Defaults every service declaration starts from.", default_factory=ServiceDefaults)
    policy: PolicySpec = field("Settings of the policy rules for this stack.")
    teams: dict[str, TeamBudget] = field("Per team: its resource budget (a ResourceQuota and LimitRange; every team with services needs one) and where its alerts go.", default_factory=dict)
    alerting: Optional[AlertingSpec] = field("Alertmanager receivers, runbook links and the dead man's switch; required with the prometheus addon.", default=None)

    @model_validator(mode="after")
    def _addons(self, info: ValidationInfo) -> "StackSpec":
        """Addon names and requirements, checked against the registry the loader passes in."""
        registry = (info.context or {}).get("addons")
        if registry is None:
            return self
        for name in self.addons:
            if name not in registry:
                raise ValueError(f"addons.{name}: unknown addon {name!r}; known addons: {', '.join(sorted(registry))}")
        enabled = {name for name, addon in self.addons.items() if addon.enabled}
        for name in sorted(enabled):
            missing = [r for r in registry[name] if r not in enabled]
            if missing:
                raise ValueError(f"addons.{name}: requires {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not enabled in this stack; enable {'it' if len(missing) == 1 else 'them'} or turn {name} off")
        return self

    @model_validator(mode="after")
    def _teams(self) -> "StackSpec":
        for team in self.teams:
            if not re.match(DNS_LABEL, team):
                raise ValueError(f"teams.{team}: not a team name (a DNS label, as in a service's `team`)")
        return self

    @model_validator(mode="after")
    def _alerting(self) -> "StackSpec":
        alerting = self.alerting
        if alerting is None:
            if self.addon_enabled("prometheus"):
                raise ValueError("alerting: required with the prometheus addon (receivers, platformTeam, deadMansSwitch, repositoryUrl); "
                                 "without it Alertmanager sends every alert to its null receiver")
            return self
        if alerting.platform_team not in self.teams:
            raise ValueError(f"alerting.platformTeam: {alerting.platform_team!r} is not under teams; declare it with its alerts")
        for team, entry in self.teams.items():
            if entry.alerts is None:
                raise ValueError(f"teams.{team}.alerts: required when the stack has alerting (critical and warning receivers)")
            for severity in ("critical", "warning"):
                receiver = getattr(entry.alerts, severity)
                if receiver not in alerting.receivers:
                    raise ValueError(f"teams.{team}.alerts.{severity}: {receiver!r} is not a receiver; declared: {', '.join(sorted(alerting.receivers))}")
        return self

    def team_usage(self, services: tuple[Service, ...]) -> dict[str, TeamUsage]:
        usage: dict[str, TeamUsage] = {}
        for svc in services:
            usage.setdefault(svc.team, TeamUsage()).add(svc, self.environment, self.addon_enabled("istio"))
        return dict(sorted(usage.items()))

    def quota_problems(self, services: tuple[Service, ...]) -> list[tuple[str, str]]:
        """(key path, message) for each team without a budget or whose services exceed it."""
        problems = []
        for team, use in self.team_usage(services).items():
            budget = self.teams.get(team)
            names = ", ".join(use.services)
            if budget is None or not budget.has_budget:
                problems.append(("teams", f"team {team!r} runs {names} but has no budget; add teams.{team} with cpu, memory and pods"))
                continue
            over = [f"{what} {shown(need)} > {shown(have)}" for what, need, have, shown in (
                ("cpu", use.cpu_millis, cpu_millis(budget.cpu), format_cpu),
                ("memory", use.memory_bytes, memory_bytes(budget.memory), format_memory),
                ("pods", use.pods, budget.pods, str),
            ) if need > have]
            if over:
                parts = ", ".join(f"{n} {format_cpu(c)} cpu / {format_memory(m)} / {p} pods" for n, (c, m, p) in use.services.items())
                problems.append((f"teams.{team}", f"the team's services may request more than its quota: {'; '.join(over)} "
                                 f"(max replicas + rollout surge, doubled for canaries, sidecars included: {parts}); "
                                 f"raise the budget or lower replicas.max or resources.requests"))
        return problems

    def budget(self, team: str) -> Optional[TeamBudget]:
        """The team's resource budget, if it declares one (the platform team may declare only alerts)."""
        entry = self.teams.get(team)
        return entry if entry is not None and entry.has_budget else None

    def addon_enabled(self, name: str) -> bool:
        addon = self.addons.get(name)
        return addon is not None and addon.enabled

    @model_validator(mode="after")
    def _prod_hardening(self) -> "StackSpec":
        if self.environment != "prod":
            return self
        endpoint = self.cluster.endpoint
        if endpoint.public_access and WORLD & set(endpoint.public_access_cidrs):
            raise ValueError("cluster.endpoint.publicAccessCidrs: a prod API endpoint must not be open to the world (0.0.0.0/0); turn publicAccess off or list your office/VPN CIDRs")
        if not self.cluster.protect:
            raise ValueError("cluster.protect: must be true in prod (deletion protection on the cluster, KMS key and VPC)")
        if not self.network.flow_logs and self.network.existing is None:
            raise ValueError("network.flowLogs: must be true in prod (VPC flow logs are required for audit)")
        if self.network.availability_zones < 3:
            raise ValueError("network.availabilityZones: prod must span 3 AZs")
        if self.karpenter.ami_alias.endswith("@latest"):
            raise ValueError("karpenter.amiAlias: prod must pin a dated AMI (al2023@vYYYYMMDD); @latest is for dev only")
        for name in NON_PROD_ADDONS:
            if self.addon_enabled(name):
                raise ValueError(f"addons.{name}: not allowed in prod (fault injection runs in dev and staging stacks); set enabled: false or remove it")
        return self


def _architecture(instance_type: str) -> str:
    """Graviton families carry a `g` after the generation digit (m7g, c7gn, r8gd); g5 is x86 GPU."""
    match = re.match(r"^[a-z]+[0-9]+([a-z-]*)\.", instance_type)
    if not match:
        raise ValueError(f"{instance_type!r} is not an EC2 instance type (family.size, e.g. m7i.large)")
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


MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def cpu_millis(quantity: str) -> int:
    """"250m" -> 250, "2" -> 2000, "0.5" -> 500."""
    return round(float(quantity[:-1])) if quantity.endswith("m") else round(float(quantity) * 1000)


def memory_bytes(quantity: str) -> int:
    match = re.match(r"^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$", quantity)
    if not match:
        raise ValueError(f"{quantity!r} is not a memory quantity")
    return int(match[1]) * MEMORY_UNITS[match[2] or ""]


def format_cpu(millis: int) -> str:
    return f"{millis / 1000:g}"


def format_memory(size: int) -> str:
    if size < 2**30:
        return f"{size / 2**20:g}Mi"
    return f"{size / 2**30:.2f}".rstrip("0").rstrip(".") + "Gi"
