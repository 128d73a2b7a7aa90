"""The parts a service declaration is made of (replicas, resources, canary, secrets, permissions,
scaling) and the defaults a stack gives every service; the service itself is components/spec/service.py."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal, Optional

from pydantic import ValidationInfo, field_validator, model_validator

from . import limits, tenancy
from .base import CpuQuantity, MemoryQuantity, Spec, field
from .problems import short

Tier = Literal["critical", "standard", "batch"]
DNS_LABEL = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$"
# repository[:tag][@sha256:digest]; the tag or digest is mandatory so a deploy is reproducible.
IMAGE = re.compile(r"^(?P<repo>[a-z0-9]+(?:[._\-/:][a-z0-9]+)*?)(?::(?P<tag>[\w][\w.\-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


class Replicas(Spec):
    min: int = field("Fewest replicas (HPA minReplicas).", ge=1)
    max: int = field("Most replicas (HPA maxReplicas).", ge=1)

    @model_validator(mode="after")
    def _check(self) -> "Replicas":
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class ResourceList(Spec):
    cpu: Optional[CpuQuantity] = field("CPU, e.g. \"250m\".", default=None)
    memory: Optional[MemoryQuantity] = field("Memory, e.g. \"256Mi\".", default=None)


class Resources(Spec):
    requests: ResourceList = field("What the scheduler reserves; cpu and memory are both required.", default_factory=lambda: ResourceList(cpu="100m", memory="128Mi"))
    limits: ResourceList = field("Hard caps; memory is required, cpu is left unset to avoid throttling.", default_factory=lambda: ResourceList(memory="256Mi"))

    @model_validator(mode="after")
    def _check(self) -> "Resources":
        if self.requests.cpu is None or self.requests.memory is None:
            raise ValueError("requests needs both cpu and memory")
        if self.limits.memory is None:
            raise ValueError("limits.memory is required (an unbounded container can take the node down)")
        return self


class Canary(Spec):
    enabled: Optional[bool] = field("Progressive delivery with Flagger; by default on in prod for exposed and critical services.", default=None)
    interval_seconds: int = field("Seconds between canary analysis runs.", default=10, ge=5)
    threshold: int = field("Failed checks before rollback.", default=3, ge=1)
    step_weight: int = field("Traffic percentage added per successful step.", default=10, ge=1, le=50)
    max_weight: int = field("Traffic percentage at which the canary is promoted.", default=50, ge=1, le=100)
    success_rate: float = field("Minimum request success rate, in percent.", default=99.0, gt=0, le=100)
    max_latency_ms: int = field("Maximum P99 request duration, in milliseconds.", default=500, ge=1)
    progress_deadline_seconds: int = field("Seconds the canary Deployment may take to become ready before Flagger rolls back.", default=50, ge=10)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> "Canary":
        if self.step_weight > self.max_weight:
            raise ValueError(f"stepWeight ({self.step_weight}) must not exceed maxWeight ({self.max_weight})")
        bound = (info.context or {}).get("max_rollback_seconds")
        if bound is not None and self.enabled is not False and self.rollback_seconds > bound:
            raise ValueError(
                f"worst-case rollback takes {self.rollback_seconds}s, over the stack's bound of {bound}s "
                f"(max of intervalSeconds x (threshold + 1) = {self.interval_seconds * (self.threshold + 1)}s and "
                f"progressDeadlineSeconds + intervalSeconds = {self.progress_deadline_seconds + self.interval_seconds}s); "
                "lower intervalSeconds, threshold or progressDeadlineSeconds"
            )
        return self

    @property
    def rollback_seconds(self) -> int:
        """Worst case from a bad canary to traffic back on the primary: Flagger needs `threshold`
        failed checks, one per interval, after the interval that starts the analysis; a canary that
        never gets ready is rolled back at the progress deadline, noticed on the next interval."""
        return max(self.interval_seconds * (self.threshold + 1), self.progress_deadline_seconds + self.interval_seconds)

    @property
    def promotion_seconds(self) -> int:
        """Best-case time to full promotion: one interval to start, one per weight step, one to promote."""
        steps = -(-self.max_weight // self.step_weight)
        return self.interval_seconds * (steps + 2)


class Expose(Spec):
    host: str = field("Public host name routed from the Istio ingress gateway.", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    path: str = field("URL path prefix.", default="/", pattern=r"^/")

    @field_validator("host")
    @classmethod
    def _host(cls, host: str, info: ValidationInfo) -> str:
        return tenancy.check_host(host, info.context)


class SecretRef(Spec):
    name: str = field("Name of the Kubernetes Secret the values land in.", pattern=DNS_LABEL)
    vault_path: str = field("Vault KV path the values are read from.", pattern=r"^[a-z0-9][a-z0-9_/\-]*$")
    keys: list[str] = field("Keys at the path, exposed to the container as environment variables of the same name.", min_length=1)

    @field_validator("keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            problem = limits.env_name_problem(key)
            if problem:
                raise ValueError(problem)
        dupes = limits.duplicate(keys)
        if dupes:
            raise ValueError(f"{dupes} listed twice; each key becomes one environment variable")
        return keys


class SealedSecretRef(Spec):
    name: str = field("Name of the SealedSecret and of the Secret the controller unseals it into, in the team's namespace (kubeseal --name).", pattern=DNS_LABEL)
    encrypted_data: dict[str, str] = field(
        "Environment variable name -> ciphertext printed by `kubeseal --raw` for this stack's cluster (strict scope: "
        "sealed for this name and the team's namespace). Ciphertext only, never the plain value.", min_length=1)

    @field_validator("encrypted_data")
    @classmethod
    def _ciphertexts(cls, data: dict[str, str]) -> dict[str, str]:
        for key, text in data.items():
            problem = limits.env_name_problem(key)
            if problem:
                raise ValueError(problem)
            problem = _ciphertext_problem(text)
            if problem:
                raise ValueError(f"{key}: {problem}; paste the output of `kubeseal --raw`, never the plain value")
        problem = limits.object_data_problem("unsealed Secret", sum(len(k.encode()) + _plaintext_bytes(t) for k, t in data.items()))
        if problem:
            raise ValueError(problem)
        return data


# kubeseal's hybrid encryption: a 2-byte length, the RSA-OAEP-encrypted session key (the key size:
# 2048 to 8192 bits, 4096 by default), then the AES-GCM ciphertext with its 16-byte tag.
RSA_CIPHERTEXT_BYTES = range(256, 1025)
GCM_TAG_BYTES = 16


def _ciphertext_problem(text: str) -> Optional[str]:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return "not base64"
    rsa_bytes = int.from_bytes(raw[:2], "big")
    if rsa_bytes not in RSA_CIPHERTEXT_BYTES or len(raw) < 2 + rsa_bytes + GCM_TAG_BYTES:
        return f"{len(raw)} bytes that are not a sealed value (too short, or no RSA session key)"
    return None


def _plaintext_bytes(text: str) -> int:
    """The size of the value a (well-formed) sealed value unseals to: what is left after the
    length prefix, the RSA-encrypted session key and the GCM tag."""
    raw = base64.b64decode(text)
    return len(raw) - 2 - int.from_bytes(raw[:2], "big") - GCM_TAG_BYTES


class Probes(Spec):
    path: str = field("HTTP path answering liveness checks on the service port.", default="/healthz", pattern=r"^/")
    readiness_path: Optional[str] = field("HTTP path answering readiness checks; the liveness path when unset.", default=None, pattern=r"^/")
    startup_seconds: Optional[int] = field("Allow this long for start-up before liveness checks begin (adds a startup probe).", default=None, ge=10, le=600)


class AwsPermission(Spec):
    actions: list[str] = field("IAM actions, e.g. s3:GetObject.", min_length=1)
    resources: list[str] = field("Resource ARNs the actions apply to; `*` is refused.", min_length=1)

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


class SqsScaling(Spec):
    queue_name: str = field("SQS queue the worker consumes; KEDA scales on its depth.", pattern=r"^[A-Za-z0-9_-]{1,80}$")
    messages_per_replica: int = field("Target visible messages per replica.", default=5, ge=1)


class Scaling(Spec):
    sqs: Optional[SqsScaling] = field("Scale on an SQS queue's depth with KEDA instead of CPU with an HPA.", default=None)


class ServiceDefaults(Spec):
    replicas: Replicas = field("Default replica range.", default_factory=lambda: Replicas(min=2, max=4))
    resources: Resources = field("Default requests and limits.", default_factory=Resources)
    canary: Canary = field("Default canary analysis settings.", default_factory=Canary)
