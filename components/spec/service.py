"""The shape of one microservice: `stacks/services/<name>.yaml` (after its `envs` overlay)."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import ValidationInfo, field_validator, model_validator

from . import iam_actions, limits, secrets_scan, tenancy
from .base import Spec, field
from .problems import short
from .service_parts import (
    DNS_LABEL, IMAGE, AwsPermission, Canary, Expose, Probes, Replicas, ResourceList, Resources, Scaling, SealedSecretRef, SecretRef,
    SqsScaling, Tier, ServiceDefaults,
)

# The parts are imported from here by the rest of the platform.
__all__ = [
    "DNS_LABEL", "IMAGE", "AwsPermission", "Canary", "Expose", "Probes", "Replicas", "ResourceList", "Resources", "Scaling",
    "SealedSecretRef", "SecretRef", "Service", "ServiceDefaults", "SqsScaling", "Tier",
]


class Service(Spec):
    name: str = field("Service name; also its Deployment, Service and ServiceAccount name.", pattern=DNS_LABEL)
    team: str = field("Owning team; services of one team share a namespace.", pattern=DNS_LABEL)
    enabled: bool = field("Deploy this service in the stack (set false in an `envs` overlay to leave it out).", default=True)
    image: str = field("Container image with a tag or digest; `latest` is refused.")
    port: int = field("Container port serving HTTP traffic.", ge=1, le=65535)
    metrics_port: int = field("Port exposing Prometheus metrics at /metrics; separate from `port` so it can be scraped outside mTLS.", default=9090, ge=1, le=65535)
    probes: Probes = field("Health checks.", default_factory=Probes)
    service_account_token: bool = field("Mount a Kubernetes API token into the pods (only for services that call the Kubernetes API).", default=False)
    aws_permissions: list[AwsPermission] = field("AWS permissions, granted through a Pod Identity role.", default_factory=list)
    tier: Tier = field("critical lands on the dedicated pool with PriorityClass mission-critical; batch may be preempted.", default="standard")
    depends_on: list[str] = field("Services this one calls; the single source of its network and mesh policies.", default_factory=list)
    replicas: Replicas = field("Replica range for the autoscaler.")
    resources: Resources = field("Container requests and limits.")
    canary: Canary = field("Progressive delivery settings.")
    expose: Optional[Expose] = field("Route public traffic to this service through the ingress gateway.", default=None)
    secrets: list[SecretRef] = field("Secrets read from Vault through External Secrets.", default_factory=list)
    sealed_secrets: list[SealedSecretRef] = field("Secrets committed encrypted with kubeseal (needs the sealed-secrets addon); an alternative to Vault paths.", default_factory=list)
    env: dict[str, str] = field("Plain (non-secret) environment variables, delivered through a ConfigMap.", default_factory=dict)
    scaling: Scaling = field("How the service scales.", default_factory=Scaling)
    envs: dict[str, dict[str, Any]] = field("Per-stack overrides, deep-merged over this file, keyed by stack name.", default_factory=dict)

    @field_validator("image")
    @classmethod
    def _image(cls, image: str) -> str:
        match = IMAGE.match(image)
        if not match or not (match["tag"] or match["digest"]):
            raise ValueError(f"image {short(image)} needs a tag or digest (registry/repo:1.2.3 or @sha256:...)")
        if match["tag"] == "latest" and not match["digest"]:
            raise ValueError(f"image {short(image)} uses the mutable tag latest; pin a version or digest")
        return image

    @field_validator("team")
    @classmethod
    def _team(cls, team: str, info: ValidationInfo) -> str:
        return tenancy.check_team(team, info.context)

    @field_validator("depends_on")
    @classmethod
    def _deps(cls, deps: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("name") in deps:
            raise ValueError("a service cannot depend on itself")
        if len(set(deps)) != len(deps):
            raise ValueError(f"duplicate entries in {deps}")
        return deps

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> "Service":
        environment = (info.context or {}).get("environment")
        if self.metrics_port == self.port:
            raise ValueError(f"metricsPort: must differ from port ({self.port}); the service port only takes mTLS traffic")
        if environment == "prod" and self.replicas.min < 2 and self.scaling.sqs is None:
            raise ValueError(f"replicas.min: prod needs at least 2 replicas (got {self.replicas.min}) so a node loss is not an outage")
        for key, port in (("port", self.port), ("metricsPort", self.metrics_port)):
            problem = limits.port_problem(port)
            if problem:
                raise ValueError(f"{key}: {problem}")
        for key, value in self.env.items():
            problem = limits.env_name_problem(key)
            if problem:
                raise ValueError(f"env: {problem}")
            found = secrets_scan.credential_types(key, value)
            if found:
                # Never the value: the message ends up in CI logs and PR comments.
                raise ValueError(f"env.{key}: the value looks like a credential ({', '.join(found)}; value not shown); env lands in a "
                                 "plain ConfigMap: read it from Vault with `secrets` or commit it sealed with `sealedSecrets`")
        problem = limits.object_data_problem("environment ConfigMap", sum(len(k.encode()) + len(v.encode()) for k, v in self.env.items()))
        if problem:
            raise ValueError(f"env: {problem}")
        addons = (info.context or {}).get("addons")
        if addons is not None:
            self._check_addons(environment, set(addons))
        for i, secret in enumerate(self.secrets):
            problem = tenancy.vault_path_problem(self.team, secret.vault_path)
            if problem:
                raise ValueError(f"secrets[{i}].vaultPath: {problem}")
        vault_keys = [k for s in self.secrets for k in s.keys]
        dupes = limits.duplicate(vault_keys)
        if dupes:
            raise ValueError(f"secrets: {dupes} come from more than one Vault path; declare each variable once")
        secret_keys = set(vault_keys)
        clash = secret_keys & set(self.env)
        if clash:
            raise ValueError(f"env: {sorted(clash)} also come from secrets; declare each variable once")
        self._check_sealed(secret_keys)
        aws = (info.context or {}).get("aws")
        if aws is not None and self.aws_permissions:
            self._check_aws(aws)
        if aws is not None and self.scaling.sqs and "sqs" not in aws.get("services", ()):
            raise ValueError("scaling.sqs: the workload reads its queue, but sqs is outside the stack's workload permissions boundary (policy.workloadBoundary.services)")
        return self

    def _check_aws(self, aws: dict[str, Any]) -> None:
        """Against the IAM catalogue, the stack's region and account, and its workload boundary."""
        region, account, allowed = aws.get("region"), aws.get("account"), aws.get("services", ())
        if not region or not account:
            raise ValueError("awsPermissions: the stack must declare its account (policy.awsAccountId in stacks/<stack>.yaml) and "
                             "region (aws:region in Pulumi.<stack>.yaml); every ARN is checked against them")
        for i, permission in enumerate(self.aws_permissions):
            outside = sorted({a.split(":")[0] for a in permission.actions} - set(allowed))
            if outside:
                raise ValueError(f"awsPermissions[{i}].actions: service(s) {', '.join(outside)} are outside the stack's workload "
                                 f"permissions boundary (policy.workloadBoundary.services: {', '.join(allowed)})")
            problems = iam_actions.statement_problems(permission.actions, permission.resources, region, account)
            if problems:
                raise ValueError(f"awsPermissions[{i}]: {'; '.join(problems)}")
        paths = iam_actions.escalation_paths(a for p in self.aws_permissions for pattern in p.actions for a in iam_actions.expand(pattern))
        if paths:
            raise ValueError(f"awsPermissions: the actions together open the published privilege-escalation path(s) {', '.join(paths)}")

    def _check_sealed(self, vault_keys: set[str]) -> None:
        seen: set[str] = set()
        for i, sealed in enumerate(self.sealed_secrets):
            keys = set(sealed.encrypted_data)
            clash = keys & (vault_keys | set(self.env) | seen)
            if clash:
                raise ValueError(f"sealedSecrets[{i}]: {sorted(clash)} already come from env, secrets or another sealed secret; declare each variable once")
            seen |= keys
        names = [s.name for s in self.secrets] + [s.name for s in self.sealed_secrets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sealedSecrets: Secret name(s) {dupes} used twice across secrets and sealedSecrets; each Secret has one source")

    def _check_addons(self, environment: Optional[str], addons: set[str]) -> None:
        """Features that need a platform addon fail here, not as objects with no controller."""
        needs = [
            ("secrets", bool(self.secrets), "external-secrets"),
            ("sealedSecrets", bool(self.sealed_secrets), "sealed-secrets"),
            ("scaling.sqs", self.scaling.sqs is not None, "keda"),
            ("expose", self.expose is not None, "istio"),
            ("canary", self.canary_enabled(environment or ""), "flagger"),
        ]
        for key, used, addon in needs:
            if used and addon not in addons:
                raise ValueError(f"{key}: needs the {addon} addon, which is not enabled in this stack")

    def canary_enabled(self, environment: str) -> bool:
        if self.canary.enabled is not None:
            return self.canary.enabled
        return environment == "prod" and (self.expose is not None or self.tier == "critical")
