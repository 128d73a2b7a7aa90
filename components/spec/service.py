"""The shape of one microservice: `stacks/services/<team>/<name>.yaml` (after its `envs` overlay)."""

from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import ValidationInfo, field_validator, model_validator

from . import iam_actions, limits, ownership, secrets_scan, tenancy
from .base import DNS_LABEL, Spec, field
from .egress import AWS_ENDPOINTS, Egress, EgressGrant, egress_problems, grant_problems  # noqa: F401  (AWS_ENDPOINTS: where the endpoint kinds are looked up)
from .problems import short
from .secrets import SealedSecretRef, SecretRef
from .shellsafe import URL_PATH, URL_PATH_MAX
from .slo import Slo, TierSlos
from .service_parts import READINESS_PERIOD_SECONDS, Replicas, ResourceList, Resources, Canary  # noqa: F401 (re-exported)
from .scaling import Predictive, Scaling, SqsScaling  # noqa: F401 (re-exported)

Tier = Literal["critical", "standard", "batch"]
# repository[:tag][@sha256:digest]; the tag or digest is mandatory so a deploy is reproducible.
IMAGE = re.compile(r"^(?P<repo>[a-z0-9]+(?:[._\-/:][a-z0-9]+)*?)(?::(?P<tag>[\w][\w.\-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


class Expose(Spec):
    host: str = field("Public host name routed from the Istio ingress gateway.", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    path: str = field("URL path prefix (letters, digits and / . _ % + = , : -).", default="/", pattern=URL_PATH, max_length=URL_PATH_MAX)

    @field_validator("host")
    @classmethod
    def _host(cls, host: str, info: ValidationInfo) -> str:
        return tenancy.check_host(host, info.context)


class Probes(Spec):
    # The liveness path is also the canary's smoke test, run in the shared load tester's shell (shellsafe.py).
    path: str = field(
        "HTTP path answering liveness checks on the service port (letters, digits and / . _ % + = , : -).",
        default="/healthz",
        pattern=URL_PATH,
        max_length=URL_PATH_MAX,
    )
    readiness_path: Optional[str] = field(
        "HTTP path answering readiness checks; the liveness path when unset.", default=None, pattern=URL_PATH, max_length=URL_PATH_MAX
    )
    startup_seconds: Optional[int] = field("Allow this long for start-up before liveness checks begin (adds a startup probe).", default=None, ge=10, le=600)


class AwsPermission(Spec):
    actions: list[str] = field("IAM actions, e.g. s3:GetObject.", min_length=1)
    resources: list[str] = field(
        "Resource ARNs the actions apply to, each the team's (named <team>-*), offered to it by the platform (the stack's offers.aws), "
        "or, with `tagged`, tagged team=<team>; `*` is refused.",
        min_length=1,
    )
    tagged: bool = field(
        "The resources are the team's by their `team` tag, not their name: the statement only applies to resources tagged team=<team> "
        "(an aws:ResourceTag/team condition; every action must support it).",
        default=False,
    )

    @model_validator(mode="after")
    def _check(self) -> "AwsPermission":
        for action in self.actions:
            if not re.match(r"^[a-z0-9-]+:[A-Za-z*]+$", action) or action.endswith(":*"):
                raise ValueError(f"action {short(action)} must be service:Action (no service-wide wildcard)")
        for resource in self.resources:
            if not resource.startswith("arn:"):
                raise ValueError(f"resource {short(resource)} must be an ARN; wildcard-only resources are refused")
            problem = limits.arn_problem(resource)
            if problem:
                raise ValueError(f"resources: {problem}")
        return self


class ServiceDefaults(Spec):
    replicas: Replicas = field("Default replica range.", default_factory=lambda: Replicas(min=2, max=4))
    resources: Resources = field("Default requests and limits.", default_factory=Resources)
    canary: Canary = field("Default canary analysis settings.", default_factory=Canary)
    slos: TierSlos = field("Service level objectives per tier, for services that declare none.", default_factory=TierSlos)


class Service(Spec):
    name: str = field("Service name; also its Deployment, Service and ServiceAccount name.", pattern=DNS_LABEL)
    team: str = field(
        "Owning team, from the file's folder (stacks/services/<team>/); never declared in the file. Services of one team share a namespace.", pattern=DNS_LABEL
    )
    enabled: bool = field("Deploy this service in the stack (set false in an `envs` overlay to leave it out).", default=True)
    image: str = field("Container image with a tag or digest; `latest` is refused.")
    port: int = field("Container port serving HTTP traffic.", ge=1, le=65535)
    metrics_port: int = field(
        "Port exposing Prometheus metrics at /metrics; separate from `port` so it can be scraped outside mTLS.", default=9090, ge=1, le=65535
    )
    probes: Probes = field("Health checks.", default_factory=Probes)
    service_account_token: bool = field("Mount a Kubernetes API token into the pods (only for services that call the Kubernetes API).", default=False)
    aws_permissions: list[AwsPermission] = field("AWS permissions, granted through a Pod Identity role.", default_factory=list)
    tier: Tier = field("critical lands on the dedicated pool with PriorityClass mission-critical; batch may be preempted.", default="standard")
    depends_on: list[str] = field("Services this one calls; the single source of its network and mesh policies.", default_factory=list)
    allowed_callers: list[str] = field(
        "Services of other teams that may call this one, as <team>/<service> or <team>/* (a whole team); a `dependsOn` from another team "
        "is refused unless listed here. Services of the own team need no entry.",
        default_factory=list,
    )
    replicas: Replicas = field("Replica range for the autoscaler.")
    resources: Resources = field("Container requests and limits.")
    canary: Canary = field("Progressive delivery settings; never looser than the service's SLO.")
    slo: Slo = field("Service level objectives; what is not declared comes from the service's tier (serviceDefaults.slos).")
    expose: Optional[Expose] = field("Route public traffic to this service through the ingress gateway.", default=None)
    secrets: list[SecretRef] = field("Secrets read from Vault through External Secrets.", default_factory=list)
    sealed_secrets: list[SealedSecretRef] = field(
        "Secrets committed encrypted with kubeseal (needs the sealed-secrets addon); an alternative to Vault paths.", default_factory=list
    )
    env: dict[str, str] = field("Plain (non-secret) environment variables, delivered through a ConfigMap.", default_factory=dict)
    scaling: Scaling = field("How the service scales.", default_factory=Scaling)
    egress: list[Egress] = field("Destinations outside the mesh the service may reach; nothing else is reachable.", default_factory=list)
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

    @field_validator("allowed_callers")
    @classmethod
    def _callers(cls, callers: list[str], info: ValidationInfo) -> list[str]:
        for caller in callers:
            if not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$", caller):
                raise ValueError(f"{short(caller)} is not <team>/<service> or <team>/*")
            if caller.split("/")[0] == info.data.get("team"):
                raise ValueError(f"{short(caller)}: services of the own team need no consent; list only other teams' services")
        if len(set(callers)) != len(callers):
            raise ValueError(f"duplicate entries in {callers}")
        return callers

    @model_validator(mode="before")
    @classmethod
    def _inherit_slo(cls, data: Any, info: ValidationInfo) -> Any:
        tiers = (info.context or {}).get("slos")
        if isinstance(data, dict) and tiers is not None and data.get("tier", "standard") in tiers:
            declared = data.get("slo", {})
            # A service may declare only what differs from its tier (e.g. just `availability`).
            if isinstance(declared, dict):
                data = {**data, "slo": {**tiers[data.get("tier", "standard")], **declared}}
        return data

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> "Service":
        environment = (info.context or {}).get("environment")
        if self.canary.success_rate < self.slo.availability:
            raise ValueError(
                f"canary.successRate: {self.canary.success_rate}% is looser than the availability objective "
                f"slo.availability {self.slo.availability}%; a canary must not promote what breaks the SLO"
            )
        if self.canary.max_latency_ms > self.slo.latency_ms:
            raise ValueError(
                f"canary.maxLatencyMs: {self.canary.max_latency_ms}ms is looser than the latency objective's threshold slo.latencyMs {self.slo.latency_ms}ms"
            )
        if self.scaling.predictive and self.replicas.min == self.replicas.max:
            raise ValueError(
                f"scaling.predictive: replicas.min == replicas.max ({self.replicas.min}), a fixed size: nothing scales ahead of the load; "
                "widen replicas or drop scaling.predictive"
            )
        late = self.canary.deadline_problem(self.startup_seconds)
        if late and self.canary_enabled(environment or ""):
            raise ValueError(f"canary.{late}")
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
                raise ValueError(
                    f"env.{key}: the value looks like a credential ({', '.join(found)}; value not shown); env lands in a "
                    "plain ConfigMap: read it from Vault with `secrets` or commit it sealed with `sealedSecrets`"
                )
        problem = limits.object_data_problem("environment ConfigMap", sum(len(k.encode()) + len(v.encode()) for k, v in self.env.items()))
        if problem:
            raise ValueError(f"env: {problem}")
        grants = (info.context or {}).get("egress_grants")
        granted = grant_problems(self.egress, self.team, [grants.get(self.team, EgressGrant()), grants.get("", EgressGrant())]) if grants is not None else []
        for problem in egress_problems(self.egress, (info.context or {}).get("networks", [])) + granted:
            raise ValueError(problem)
        addons = (info.context or {}).get("addons")
        if addons is not None:
            self._check_addons(environment, set(addons))
        zone = (info.context or {}).get("zone")
        if zone and self.expose and not (self.expose.host == zone or self.expose.host.endswith(f".{zone}")):
            raise ValueError(f"expose.host: {self.expose.host!r} is outside the stack's DNS zone {zone!r}; its record and certificate could not be made")
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
            problem = iam_actions.permissions_problem(self.aws_permissions, aws)
            if problem:
                raise ValueError(problem)
        if aws is not None and self.scaling.sqs and "sqs" not in aws.get("services", ()):
            raise ValueError(
                "scaling.sqs: the workload reads its queue, but sqs is outside the stack's workload permissions boundary (policy.workloadBoundary.services)"
            )
        # Every name outside the file, against what the team owns and the platform offers it.
        problem = ownership.service_problem(self, info.context)
        if problem:
            raise ValueError(problem)
        return self

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
            ("scaling.predictive", self.scaling.predictive is not None, "keda"),
            ("scaling.predictive", self.scaling.predictive is not None, "prometheus"),
            ("expose", self.expose is not None, "istio"),
            ("canary", self.canary_enabled(environment or ""), "flagger"),
            ("egress", any(e.host for e in self.egress), "istio"),
        ]
        for key, used, addon in needs:
            if used and addon not in addons:
                raise ValueError(f"{key}: needs the {addon} addon, which is not enabled in this stack")

    @property
    def aws_apis(self) -> list[str]:
        """The AWS APIs the service reaches: those declared, and SQS for a queue worker."""
        declared = {api for e in self.egress for api in e.aws}
        return sorted(declared | ({"sqs"} if self.scaling.sqs else set()))

    @property
    def has_aws_role(self) -> bool:
        """Whether the service gets an AWS role of its own (Pod Identity): it calls AWS, or it reads a queue."""
        return bool(self.aws_permissions) or self.scaling.sqs is not None

    @property
    def external_hosts(self) -> list[tuple[str, int]]:
        return sorted({(e.host, e.port) for e in self.egress if e.host and e.port})

    @property
    def private_networks(self) -> list[tuple[str, int]]:
        return sorted({(e.cidr, e.port) for e in self.egress if e.cidr and e.port})

    @property
    def startup_seconds(self) -> int:
        """How long a new pod may take to become ready: its startup probe's allowance, else one readiness period."""
        return self.probes.startup_seconds or READINESS_PERIOD_SECONDS

    def canary_enabled(self, environment: str) -> bool:
        """Exposed and critical services canary in every stack, so dev exercises the path daily and
        staging runs the same analysis prod will; `canary.enabled` overrides per stack."""
        if self.canary.enabled is not None:
            return self.canary.enabled
        return self.expose is not None or self.tier == "critical"
