"""The shape of one environment: `stacks/<stack>.yaml`.

The infrastructure models are in cluster.py and the team budgets in quotas.py; this module holds
the stack as a whole and its cross-field rules.
"""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import ValidationInfo, model_validator

from components.versions import POD_SECURITY_LATEST

from . import limits, tenancy
from .alerting import AlertingSpec
from .backup import BackupSpec
from .base import Spec, field
from .deploy import TeamDeploySpec
from .ownership import Offers, offer_problems, of_stack
from .problems import dotted, short
from .tenancy import IngressSpec
from .cluster import (
    LOG_RETENTION_DAYS,
    WORLD,
    AccessSpec,
    ClusterSpec,
    DisruptionBudget,
    EndpointSpec,
    ExistingNetwork,
    KarpenterSpec,
    NetworkSpec,
    NodePoolSpec,
    SystemNodesSpec,
)
from .quotas import MEMORY_UNITS, ROLLOUT_SURGE, SIDECAR_REQUESTS, TeamBudget, TeamUsage, cpu_millis, format_cpu, format_memory, memory_bytes
from .service import DNS_LABEL, Service, ServiceDefaults
from .stack_settings import AddonSpec, DnsSpec, PolicySpec, RegistryPrefix, rewritten  # noqa: F401 (re-exported)

# What other modules import from here, the stack's own models and the ones it is made of.
__all__ = ["LOG_RETENTION_DAYS", "MEMORY_UNITS", "NON_PROD_ADDONS", "ROLLOUT_SURGE", "SIDECAR_REQUESTS", "WORLD", "AccessSpec", "AddonSpec"]
__all__ += ["ClusterSpec", "DisruptionBudget", "EndpointSpec", "Environment", "ExistingNetwork", "KarpenterSpec", "NetworkSpec", "NodePoolSpec"]
__all__ += ["PolicySpec", "StackSpec", "SystemNodesSpec", "TeamBudget", "TeamUsage", "cpu_millis", "format_cpu", "format_memory", "memory_bytes"]

Environment = Literal["dev", "staging", "prod"]
# Addons that must never run in a prod stack: chaos-mesh's daemon kills pods and rewrites networking.
NON_PROD_ADDONS = ("chaos-mesh",)


class StackSpec(Spec):
    environment: Environment = field("Which kind of environment this stack is; prod turns on the strict rules.")
    network: NetworkSpec = field("The VPC the cluster runs in.", default_factory=NetworkSpec)
    cluster: ClusterSpec = field("The EKS cluster.")
    karpenter: KarpenterSpec = field("Karpenter node classes and pools.")
    addons: dict[str, AddonSpec] = field("Platform addons by name, with per-stack Helm overrides.", default_factory=dict)
    service_defaults: ServiceDefaults = field("Defaults every service declaration starts from.", default_factory=ServiceDefaults)
    policy: PolicySpec = field("Settings of the policy rules for this stack.")
    ingress: IngressSpec = field("What the stack serves through the public ingress gateway.", default_factory=IngressSpec)
    dns: Optional[DnsSpec] = field("Public DNS of the exposed hosts: ExternalDNS writes their records, cert-manager answers DNS-01 in it.", default=None)
    teams: dict[str, TeamBudget] = field(
        "Per team: its resource budget (a ResourceQuota and LimitRange; every team with services needs one) and where its alerts go.", default_factory=dict
    )
    alerting: Optional[AlertingSpec] = field(
        "Alertmanager receivers, runbook links and the dead man's switch; required with the prometheus addon.", default=None
    )
    backup: Optional[BackupSpec] = field(
        "Backups (Velero, the Vault snapshot job) and their second copy; required in prod. Needs the velero addon.", default=None
    )
    offers: Offers = field(
        "What the platform offers teams besides what they own (AWS resources named <team>-*, Vault paths under <team>/): shared queues, "
        "buckets, keys, Vault paths. Never the platform's own resources (docs/security-model.md).",
        default_factory=Offers,
    )
    team_deploy: Optional[TeamDeploySpec] = field(
        "Per team with a budget, a deploy identity for its own stack (an IAM role under the team deploy boundary, an EKS access entry "
        "scoped to its namespace) and its part of the Pulumi state (docs/security-model.md#team-deploy-identity).",
        default=None,
    )
    registry_rewrites: dict[RegistryPrefix, RegistryPrefix] = field(
        "Registry prefixes replaced in the services' images in this stack: {prefix the service files name: prefix this stack pulls from}, "
        "e.g. a recovery stack pulling ECR's cross-region replicas in its own region. Each target must be under policy.allowedRegistries.",
        default_factory=dict,
    )

    @model_validator(mode="after")
    def _backup(self) -> "StackSpec":
        # Backups are a stack-level promise (the restore runbook relies on them); Velero is how they are kept.
        if self.environment == "prod" and self.backup is None:
            raise ValueError(
                "backup: a prod stack must declare backups (retention, schedules, copyTo) and enable the velero addon; "
                "without them a lost cluster loses every Vault secret and sealing key"
            )
        if self.backup is not None and not self.addon_enabled("velero"):
            raise ValueError("backup: declared, but the velero addon is not enabled; add `velero: {}` under addons")
        if self.backup is None and self.addon_enabled("velero"):
            raise ValueError("addons.velero: enabled without a `backup:` section; declare backup.retention (and schedules) or turn velero off")
        # Velero starts the data mover pods with only its own fixed list of tolerations: some pool must take untainted pods.
        if self.backup is not None and self.backup.moves_data and all(p.taints for p in self.karpenter.node_pools):
            raise ValueError(
                "backup: volume data moves (moveData or copyTo), but every karpenter.nodePools entry is tainted; Velero's data mover "
                "pods carry no toleration of ours and would stay Pending: keep one pool without taints"
            )
        mirror = self.backup.image_mirror if self.backup else ""
        if mirror and not any(mirror.startswith(prefix) for prefix in self.policy.allowed_registries):
            raise ValueError(
                f"backup.imageMirror: {mirror!r} is not under policy.allowedRegistries ({', '.join(self.policy.allowed_registries)}); "
                "the snapshot job's images must come from an allowed registry"
            )
        vault = self.addons.get("vault")
        if self.backup and self.backup.copy_to and vault and vault.enabled and (vault.settings.get("unsealKeyArn") or vault.settings.get("unseal_key_arn")):
            # KMS replicates a multi-Region key only from its primary's region, which for another stack's key is the lost one.
            raise ValueError(
                "addons.vault.settings.unsealKeyArn: set together with backup.copyTo, but Vault's seal key is another stack's replica "
                f"and can get no replica in {self.backup.copy_to.region} (KMS replicates a key only from its primary's region), so no "
                "Vault snapshot of the copy could be restored there; move this stack's Vault to a seal key of its own first "
                "(docs/operations.md#vaults-seal-key), or remove copyTo"
            )
        return self

    @model_validator(mode="after")
    def _registry_rewrites(self) -> "StackSpec":
        allowed = self.policy.allowed_registries
        for source, target in self.registry_rewrites.items():
            if not any(target.startswith(prefix) for prefix in allowed):
                raise ValueError(
                    f"{dotted(('registryRewrites', source))}: {target!r} is not under policy.allowedRegistries ({', '.join(allowed)}); "
                    "the services' images must come from an allowed registry"
                )
        return self

    @model_validator(mode="after")
    def _offers(self) -> "StackSpec":
        for path, message in offer_problems(self.offers, of_stack(self)):
            raise ValueError(f"{path}: {message}")
        return self

    def pulled(self, svc: Service) -> Service:
        """The service as this stack runs it: its image from the stack's registry (registryRewrites)."""
        return svc.model_copy(update={"image": rewritten(svc.image, self.registry_rewrites)})

    @model_validator(mode="after")
    def _addons(self, info: ValidationInfo) -> "StackSpec":
        """Addon names and requirements, checked against the registry the loader passes in."""
        registry = (info.context or {}).get("addons")
        if registry is None:
            return self
        for name in self.addons:
            if name not in registry:
                raise ValueError(f"{dotted(('addons', name))}: unknown addon {short(name)}; known addons: {', '.join(sorted(registry))}")
        enabled = {name for name, addon in self.addons.items() if addon.enabled}
        for name in sorted(enabled):
            missing = [r for r in registry[name] if r not in enabled]
            if missing:
                raise ValueError(
                    f"addons.{name}: requires {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not enabled in this stack; enable {'it' if len(missing) == 1 else 'them'} or turn {name} off"
                )
        return self

    @model_validator(mode="after")
    def _networks(self) -> "StackSpec":
        """The private endpoint's networks reach the VPC through peering, a transit gateway or a VPN,
        none of which AWS sets up between overlapping address ranges."""
        if self.network.existing is None:
            clash = limits.overlapping(self.cluster.endpoint.private_access_cidrs, self.network.cidr)
            if clash:
                raise ValueError(
                    f"cluster.endpoint.privateAccessCidrs: {', '.join(clash)} overlap the VPC's own network.cidr "
                    f"{self.network.cidr}; a network routed to the VPC (peering, transit gateway, VPN) cannot share its addresses"
                )
        return self

    @model_validator(mode="after")
    def _dns(self) -> "StackSpec":
        if self.addon_enabled("external-dns") and self.dns is None:
            raise ValueError("dns: the external-dns addon needs the stack's zone (dns.zone, and dns.zoneId for an existing one)")
        return self

    @model_validator(mode="after")
    def _teams(self, info: ValidationInfo) -> "StackSpec":
        for team in self.teams:
            if not re.match(DNS_LABEL, team):
                raise ValueError(f"{dotted(('teams', team))}: not a team name (a DNS label, as in a service's `team`)")
            problem = tenancy.team_problem(team, (info.context or {}).get("reserved_namespaces", ()))
            if problem:
                raise ValueError(f"{dotted(('teams', team))}: {problem}")
        return self

    @model_validator(mode="after")
    def _alerting(self) -> "StackSpec":
        alerting = self.alerting
        if alerting is None:
            if self.addon_enabled("prometheus"):
                raise ValueError(
                    "alerting: required with the prometheus addon (receivers, platformTeam, deadMansSwitch, repositoryUrl); "
                    "without it Alertmanager sends every alert to its null receiver"
                )
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
            if budget is None or budget.cpu is None or budget.memory is None or budget.pods is None:
                problems.append(("teams", f"team {team!r} runs {names} but has no budget; add teams.{team} with cpu, memory and pods"))
                continue
            over = [
                f"{what} {shown(need)} > {shown(have)}"
                for what, need, have, shown in (
                    ("cpu", use.cpu_millis, cpu_millis(budget.cpu), format_cpu),
                    ("memory", use.memory_bytes, memory_bytes(budget.memory), format_memory),
                    ("pods", use.pods, budget.pods, str),
                )
                if need > have
            ]
            if over:
                parts = ", ".join(f"{n} {format_cpu(c)} cpu / {format_memory(m)} / {p} pods" for n, (c, m, p) in use.services.items())
                problems.append(
                    (
                        f"teams.{team}",
                        f"the team's services may request more than its quota: {'; '.join(over)} "
                        f"(max replicas + rollout surge, doubled for canaries, sidecars included: {parts}); "
                        f"raise the budget or lower replicas.max or resources.requests",
                    )
                )
        return problems

    @property
    def pod_security_version(self) -> tuple[int, int]:
        """The Pod Security Standards version the policy applies: the declared one, else the
        cluster's own (what its Pod Security Admission enforces), capped at the newest known."""
        declared = self.policy.pod_security_version
        major, minor = (declared or self.cluster.kubernetes_version).split(".")
        return min((int(major), int(minor)), POD_SECURITY_LATEST)

    @model_validator(mode="after")
    def _pod_security_within_cluster(self) -> "StackSpec":
        declared = self.policy.pod_security_version
        if declared and int(declared.split(".")[1]) > int(self.cluster.kubernetes_version.split(".")[1]):
            raise ValueError(
                f"policy.podSecurityVersion: {declared} is newer than the cluster (kubernetesVersion "
                f"{self.cluster.kubernetes_version}), whose Pod Security Admission would reject what the newer "
                f"standard allows; use {self.cluster.kubernetes_version} or lower, or leave it unset"
            )
        return self

    def budget(self, team: str) -> Optional[TeamBudget]:
        """The team's resource budget, if it declares one (the platform team may declare only alerts)."""
        entry = self.teams.get(team)
        return entry if entry is not None and entry.has_budget else None

    def rooms(self) -> tuple[str, ...]:
        """The teams the platform stack builds a room (and a team stack) for: every team with a budget,
        services or not yet (docs/platform.md#a-room-for-every-declared-team)."""
        return tuple(sorted(team for team in self.teams if self.budget(team)))

    def addon_enabled(self, name: str) -> bool:
        addon = self.addons.get(name)
        return addon is not None and addon.enabled

    @model_validator(mode="after")
    def _prod_hardening(self) -> "StackSpec":
        if self.environment != "prod":
            return self
        endpoint = self.cluster.endpoint
        if endpoint.public_access and WORLD & set(endpoint.public_access_cidrs):
            raise ValueError(
                "cluster.endpoint.publicAccessCidrs: a prod API endpoint must not be open to the world (0.0.0.0/0); turn publicAccess off or list your office/VPN CIDRs"
            )
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
