"""The one shape every rule has, what a rule looks at, and helpers for reading Kubernetes objects.

A rule sees resources as `Subject`s: a Pulumi type token and the resource's inputs (camelCase, as
registered). The Pulumi policy pack, the offline preview and `make check` all build Subjects, so one rule
implementation serves all three. Inputs may be pulumi-policy's read-only proxies (a `Mapping` and a `Sequence`, not `dict` and `list`), so helpers here test for the abstract types.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

# The Pod Security Standards versions the pss-* rules know (re-exported: rules and settings read them here).
from components.versions import POD_SECURITY_LATEST, POD_SECURITY_OLDEST  # noqa: F401

SEVERITIES = ("low", "medium", "high", "critical")
CATEGORIES = ("security", "availability")
# Kubernetes types that are not objects in the cluster: providers, Helm charts and releases, YAML bundles.
NOT_OBJECTS = ("pulumi:providers:", "kubernetes:helm.sh/", "kubernetes:yaml", "kubernetes:kustomize")
# Helm releases and charts: the charts' contents are not rendered offline, their settings are.
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")


@dataclass(frozen=True)
class Settings:
    """The stack-dependent values rules read; which rules block is decided elsewhere (enforcement)."""

    environment: str = "prod"
    allowed_registries: tuple[str, ...] = ()
    max_rollback_seconds: int = 60
    pod_security_version: tuple[int, int] = POD_SECURITY_LATEST
    team_rooms: tuple[str, ...] = ()  # namespaces the platform stack builds (with default-deny); team stacks deploy into them

    @property
    def prod(self) -> bool:
        return self.environment == "prod"


@dataclass(frozen=True)
class Subject:
    type: str
    urn: str
    props: Mapping[str, Any]
    label: str = ""
    dependencies: tuple[str, ...] = ()

    # Read by every rule for every resource: worked out once per subject.
    @functools.cached_property
    def is_kubernetes(self) -> bool:
        return self.type.startswith("kubernetes:") and not self.type.startswith(NOT_OBJECTS)

    @functools.cached_property
    def api(self) -> tuple[str, str, str]:
        """(group, version, kind) of a Kubernetes object, from its apiVersion/kind or else its type token."""
        api_version, kind = self.props.get("apiVersion"), self.props.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            api_version, _, kind = self.type[len("kubernetes:") :].rpartition(":")
        group, _, version = api_version.rpartition("/")
        return (("" if group == "core" else group), version, kind) if self.is_kubernetes else ("", "", "")

    @functools.cached_property
    def kind_key(self) -> str:  # `group/Kind` (core kinds bare), as rules name kinds in `applies_to`
        return f"{self.api[0]}/{self.api[2]}".lstrip("/")

    kind = property(lambda self: self.api[2])

    @property
    def metadata(self) -> Mapping[str, Any]:
        return as_map(self.props.get("metadata"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or "")

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "")


def kubernetes_type(api_version: str, kind: str) -> str:
    """The Pulumi type token of a Kubernetes object, e.g. kubernetes:core/v1:Pod."""
    return f"kubernetes:{api_version if '/' in api_version else 'core/' + api_version}:{kind}"


@dataclass(frozen=True)
class Rule:
    """One policy rule.

    `applies_to` lists Pulumi type tokens (`aws:eks/cluster:Cluster`) and Kubernetes kinds as
    `group/Kind` (`apps/Deployment`; core kinds bare, `Pod`; `*` is every Kubernetes object).
    A resource rule's `check` gets one matching resource and returns messages; a stack rule's
    `check` gets every matching resource and returns (resource, message) pairs. `config` names
    the pack configuration keys the rule reads besides `environment`, which every prod-only rule
    reads.
    """

    id: str
    description: str
    severity: str
    category: str
    remediation: str
    applies_to: tuple[str, ...]
    check: Callable[..., Iterable[Any]]
    stack: bool = False
    prod_only: bool = False
    config: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", self.id):
            raise ValueError(f"rule id {self.id!r} must be lowercase words joined by hyphens")
        if self.severity not in SEVERITIES or self.category not in CATEGORIES:
            raise ValueError(f"rule {self.id}: severity {self.severity!r} or category {self.category!r} unknown")

    @property
    def config_keys(self) -> tuple[str, ...]:
        return (("environment",) if self.prod_only else ()) + self.config

    def matches(self, subject: Subject) -> bool:
        if subject.type in self.applies_to:
            return True
        if not subject.is_kubernetes:
            return False
        return "*" in self.applies_to or subject.kind_key in self.applies_to

    def active(self, settings: Settings) -> bool:
        return settings.prod or not self.prod_only

    def resource_violations(self, subject: Subject, settings: Settings) -> list[str]:
        if self.stack or not self.active(settings) or not self.matches(subject):
            return []
        return list(self.check(subject, settings))

    def stack_violations(self, subjects: Sequence[Subject], settings: Settings) -> list[tuple[Subject, str]]:
        if not self.stack or not self.active(settings):
            return []
        return list(self.check([s for s in subjects if self.matches(s)], settings))


# -- reading values ---------------------------------------------------------------------------


def as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []


def dig(value: Any, *path: str) -> Any:
    for key in path:
        value = as_map(value).get(key)
    return value


def num(value: Any) -> Optional[float]:
    """Numbers arrive as floats from Pulumi (protobuf Struct) and as ints from YAML."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def show(value: Any) -> str:
    number = num(value)
    return str(int(number)) if number is not None and number.is_integer() else repr(value)


def is_true(value: Any) -> bool:
    """Booleans, and the strings some providers use for them (the AWS provider's "true")."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def duration_seconds(text: Any) -> Optional[float]:
    """Seconds in a Go duration ("10s", "1m30s", "1.5h"); None when it is not one."""
    if not isinstance(text, str) or not text or GO_DURATION.sub("", text) != "":
        return None
    return sum(float(n) * UNIT_SECONDS[unit] for n, unit in GO_DURATION.findall(text))


# -- Kubernetes workloads ---------------------------------------------------------------------

# Where each workload kind keeps its pod template, as a path to the object holding metadata+spec.
POD_TEMPLATE_PATHS = {
    "Pod": (),
    "ReplicationController": ("spec", "template"),
    "apps/Deployment": ("spec", "template"),
    "apps/StatefulSet": ("spec", "template"),
    "apps/DaemonSet": ("spec", "template"),
    "apps/ReplicaSet": ("spec", "template"),
    "batch/Job": ("spec", "template"),
    "batch/CronJob": ("spec", "jobTemplate", "spec", "template"),
}
WORKLOADS = tuple(POD_TEMPLATE_PATHS)
# Workloads whose pods are meant to keep running (probes make sense); Jobs run to completion.
LONG_RUNNING = ("Pod", "ReplicationController", "apps/Deployment", "apps/StatefulSet", "apps/DaemonSet", "apps/ReplicaSet")
CONTAINER_LISTS = (("containers", "container"), ("initContainers", "init container"), ("ephemeralContainers", "ephemeral container"))


def workload_key(obj: Mapping[str, Any]) -> str:
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    return f"{group}/{obj.get('kind')}".lstrip("/")


def pod_template(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(pod metadata, pod spec) of a workload object; empty maps when it has none."""
    path = POD_TEMPLATE_PATHS.get(workload_key(obj))
    if path is None:
        return {}, {}
    template = as_map(dig(obj, *path)) if path else obj
    return as_map(template.get("metadata")), as_map(template.get("spec"))


def containers(
    pod_spec: Mapping[str, Any], lists: Iterable[str] = ("containers", "initContainers", "ephemeralContainers")
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """("container web", container) for each container in the named lists."""
    for key, noun in CONTAINER_LISTS:
        if key in lists:
            for c in as_list(pod_spec.get(key)):
                c = as_map(c)
                yield f"{noun} {c.get('name', '?')}", c


def security_context(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_map(container.get("securityContext"))


def pod_checks(fn: Callable[[Mapping[str, Any], Mapping[str, Any]], Iterable[str]]) -> Callable[[Subject, Settings], list[str]]:
    """Adapt fn(pod metadata, pod spec) to a resource-rule check over any workload kind."""

    def check(subject: Subject, settings: Settings) -> list[str]:
        meta, spec = pod_template(subject.props)
        return list(fn(meta, spec)) if spec else []

    return check


PodSecurityCheck = Callable[[Mapping[str, Any], Mapping[str, Any], tuple[int, int]], Iterable[str]]


def pod_rule(id: str, severity: str, description: str, remediation: str, fn: PodSecurityCheck) -> "Rule":
    """A Pod Security Standards control: a security rule over every workload's pod template.
    fn(pod metadata, pod spec, Pod Security Standards version) yields the findings."""

    def check(subject: Subject, settings: Settings) -> list[str]:
        meta, spec = pod_template(subject.props)
        return list(fn(meta, spec, settings.pod_security_version)) if spec else []

    return Rule(
        id=id,
        description=description,
        severity=severity,
        category="security",
        remediation=remediation,
        applies_to=WORKLOADS,
        check=check,
        config=("podSecurityVersion",),
    )


def in_user_namespace(spec: Mapping[str, Any]) -> bool:
    """hostUsers: false runs the pod in a user namespace; some controls relax for it (PSS 1.35+)."""
    return spec.get("hostUsers") is False


def selector_matches(selector: Any, labels: Mapping[str, Any]) -> bool:
    """A label selector (matchLabels and matchExpressions) against a set of labels."""
    selector = as_map(selector)
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return False
    if any(labels.get(k) != v for k, v in as_map(selector.get("matchLabels")).items()):
        return False
    for expr in as_list(selector.get("matchExpressions")):
        expr = as_map(expr)
        key, op, values = expr.get("key"), expr.get("operator"), as_list(expr.get("values"))
        present = key in labels
        ok = {
            "In": present and labels.get(str(key)) in values,
            "NotIn": not present or labels.get(str(key)) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(str(op), False)
        if not ok:
            return False
    return True


def describe(subject: Subject) -> str:
    """How a report names a resource: namespace/name and kind for Kubernetes objects."""
    if subject.label:
        return subject.label
    if subject.is_kubernetes:
        where = f"{subject.namespace}/{subject.name}" if subject.namespace else subject.name
        return f"{subject.kind} {where}"
    return f"{subject.type} {subject.urn.rsplit('::', 1)[-1]}"
