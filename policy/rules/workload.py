"""Workload hygiene: pinned images from our registries, sized and probed containers, least privilege."""

from __future__ import annotations

import re
from typing import Any, Iterator, Mapping, Sequence

from components.spec.stack_settings import from_registry

from .base import LONG_RUNNING, WORKLOADS, Rule, Settings, Subject, as_list, as_map, containers, pod_checks, pod_template, security_context

Pod = Mapping[str, Any]

# Kinds that live in a namespace; a missing namespace means the `default` one.
NAMESPACED = WORKLOADS + (
    "Service",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "PersistentVolumeClaim",
    "rbac.authorization.k8s.io/Role",
    "rbac.authorization.k8s.io/RoleBinding",
    "networking.k8s.io/NetworkPolicy",
    "networking.k8s.io/Ingress",
    "policy/PodDisruptionBudget",
    "autoscaling/HorizontalPodAutoscaler",
    "flagger.app/Canary",
    "keda.sh/ScaledObject",
    "monitoring.coreos.com/ServiceMonitor",
    "security.istio.io/AuthorizationPolicy",
    "external-secrets.io/ExternalSecret",
)
# Variable or key names that hold a credential: matched on the last words, so TOKEN_TTL or
# SECRET_NAME (a reference, not a value) pass while DB_PASSWORD or stripeApiKey do not.
SECRET_NAME = re.compile(r"(^|_)(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?)$")
CREDENTIAL_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


def image_reference(image: str) -> tuple[str, str, str]:
    """(repository, tag, digest) of an image reference; tag and digest may be empty."""
    rest, _, digest = image.partition("@")
    last = rest.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else ""
    return (rest[: len(rest) - len(tag) - 1] if tag else rest), tag, digest


def _image_tag(meta: Pod, spec: Pod) -> Iterator[str]:
    for where, c in containers(spec):
        image = str(c.get("image") or "")
        _, tag, digest = image_reference(image)
        if digest:
            continue
        if not tag:
            yield f"{where}: image {image!r} has no tag (it means :latest)"
        elif tag == "latest":
            yield f"{where}: image {image!r} uses the mutable tag latest"


def _image_registry(s: Subject, settings: Settings) -> Iterator[str]:
    _, spec = pod_template(s.props)
    for where, c in containers(spec):
        image = str(c.get("image") or "")
        if not any(from_registry(image, prefix) for prefix in settings.allowed_registries):
            allowed = ", ".join(settings.allowed_registries) or "(none configured)"
            yield f"{where}: image {image!r} is not from an allowed registry ({allowed})"


def _resources(meta: Pod, spec: Pod) -> Iterator[str]:
    for where, c in containers(spec, ("containers", "initContainers")):
        res = as_map(c.get("resources"))
        missing = [f"requests.{k}" for k in ("cpu", "memory") if not as_map(res.get("requests")).get(k)]
        missing += ["limits.memory"] if not as_map(res.get("limits")).get("memory") else []
        if missing:
            yield f"{where}: missing resources {', '.join(missing)}"


def _probes(meta: Pod, spec: Pod) -> Iterator[str]:
    for where, c in containers(spec, ("containers",)):
        missing = [p for p in ("readinessProbe", "livenessProbe") if not c.get(p)]
        if missing:
            yield f"{where}: no {' and no '.join(missing)}"


def _read_only_root(meta: Pod, spec: Pod) -> Iterator[str]:
    for where, c in containers(spec):
        if security_context(c).get("readOnlyRootFilesystem") is not True:
            yield f"{where}: securityContext.readOnlyRootFilesystem is not true"


def _token_automount(subjects: Sequence[Subject], settings: Settings) -> Iterator[tuple[Subject, str]]:
    declared = {(s.namespace or "default", s.name) for s in subjects if s.kind == "ServiceAccount" and s.props.get("automountServiceAccountToken") is not None}
    for s in subjects:
        _, spec = pod_template(s.props)
        if s.kind == "ServiceAccount" or not spec or spec.get("automountServiceAccountToken") is not None:
            continue
        account = str(spec.get("serviceAccountName") or "default")
        if (s.namespace or "default", account) not in declared:
            yield (
                s,
                (
                    f"pod spec does not set automountServiceAccountToken and ServiceAccount {account} does not declare it, "
                    "so Kubernetes mounts an API token into every container"
                ),
            )


def _namespace(s: Subject, settings: Settings) -> Iterator[str]:
    if not s.namespace:
        yield "no metadata.namespace: the object lands in the default namespace"
    elif s.namespace == "default":
        yield "metadata.namespace is default"


def secret_like(name: str, value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).replace("-", "_").replace(".", "_").upper()
    if SECRET_NAME.search(words) or CREDENTIAL_URL.search(value):
        return True
    # detect-secrets' detectors on the value (imported here: only this rule needs them).
    from components.spec.secrets_scan import credential_types

    return bool(credential_types(name, value))


def _plaintext_secrets(s: Subject, settings: Settings) -> Iterator[str]:
    if s.kind == "ConfigMap":
        for key, value in as_map(s.props.get("data")).items():
            if secret_like(key, value):
                yield f"ConfigMap key {key} holds what looks like a credential"
        return
    _, spec = pod_template(s.props)
    for where, c in containers(spec):
        for env in as_list(c.get("env")):
            env = as_map(env)
            if secret_like(str(env.get("name", "")), env.get("value")):
                yield f"{where}: env {env.get('name')} has a literal value that looks like a credential"


RULES = [
    Rule(
        "image-tag-pinned",
        "Images are pinned: a tag other than latest, or a digest.",
        "high",
        "security",
        "Reference images by an immutable version tag (repo/app:1.4.2) or a digest (repo/app@sha256:...).",
        WORKLOADS,
        pod_checks(_image_tag),
    ),
    Rule(
        "image-registry-allowed",
        "Images come from the stack's allowed registries (config allowedRegistries).",
        "high",
        "security",
        "Push the image to an allowed registry (see policy.allowedRegistries in stacks/<stack>.yaml) and reference it from there.",
        WORKLOADS,
        _image_registry,
        config=("allowedRegistries",),
    ),
    Rule(
        "container-resources",
        "Containers request CPU and memory and set a memory limit.",
        "medium",
        "availability",
        "Set resources.requests.cpu, resources.requests.memory and resources.limits.memory on every container and init container.",
        WORKLOADS,
        pod_checks(_resources),
    ),
    Rule(
        "container-probes",
        "Long-running containers have readiness and liveness probes.",
        "medium",
        "availability",
        "Add readinessProbe and livenessProbe to every container (Jobs and CronJobs are exempt).",
        LONG_RUNNING,
        pod_checks(_probes),
    ),
    Rule(
        "read-only-root-filesystem",
        "Containers run with a read-only root filesystem.",
        "medium",
        "security",
        "Set securityContext.readOnlyRootFilesystem: true; mount an emptyDir where the app must write (e.g. /tmp).",
        WORKLOADS,
        pod_checks(_read_only_root),
    ),
    Rule(
        "service-account-token-declared",
        "No API token is mounted unless declared: the pod spec or its ServiceAccount sets automountServiceAccountToken.",
        "high",
        "security",
        "Set automountServiceAccountToken: false on the ServiceAccount (or the pod spec); set it to true only where the workload calls the Kubernetes API.",
        WORKLOADS + ("ServiceAccount",),
        _token_automount,
        stack=True,
    ),
    Rule(
        "no-default-namespace",
        "Nothing is deployed to the default namespace.",
        "medium",
        "security",
        "Set metadata.namespace to the team's namespace.",
        NAMESPACED,
        _namespace,
    ),
    Rule(
        "no-plaintext-secrets",
        "No credentials as literal values in container env or ConfigMaps.",
        "critical",
        "security",
        "Keep the value in Vault/a Secret and reference it with env[].valueFrom.secretKeyRef or envFrom.secretRef; never inline it.",
        WORKLOADS + ("ConfigMap",),
        _plaintext_secrets,
    ),
]
