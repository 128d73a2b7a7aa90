"""Every Kubernetes and AWS name the platform derives from a declaration, computed in one place.

The components take their names from here, and the loader checks the whole set of a stack before
anything is registered: a name over its length limit, or two declarations deriving one name
(a service called `orders-metrics` next to `orders`' metrics Service, a team named like an addon's
namespace), is a declaration error that names both sources, not a failed `pulumi up`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .problems import Problem, short
from .service import Service
from .tenancy import KUBERNETES_NAMESPACES

# Kubernetes: namespaces and Services are DNS labels (63); other object names DNS subdomains (253).
K8S_LIMITS = {"Namespace": 63, "Service": 63}
K8S_DEFAULT_LIMIT = 253
# Pulumi auto-names a resource `<logical name>-<7 hex>`; AWS caps IAM role names at 64 characters.
AUTONAME_SUFFIX = 8
IAM_ROLE_LIMIT = 64
IAM_POLICY_LIMIT = 128
SQS_QUEUE_LIMIT = 80
# What Flagger creates for a canary target (it copies referenced ConfigMaps and Secrets too).
PRIMARY, CANARY = "primary", "canary"


def _suffixed(suffix: str) -> Callable[[str], str]:
    return lambda service: f"{service}-{suffix}"


config_map = _suffixed("config")  # the service's `env`
dashboard_config_map = _suffixed("dashboard")
metrics_service = _suffixed("metrics")
telemetry_policy = _suffixed("telemetry")
# Egress beyond the mesh (components/workloads/egress.py).
egress_policy = _suffixed("egress")
keda_auth = _suffixed("aws")
# The logical name of a service's Pod Identity role (auto-named by Pulumi).
workload_role = _suffixed("workload")


# What the platform puts in every team namespace (components/workloads/team.py, the external-secrets
# addon), and what Kubernetes and Istio add there by themselves. Reserved whether or not this stack
# enables the addon behind it: no service, Secret or sealed Secret may take these names.
DEFAULT_DENY, PLATFORM_EGRESS, TEAM_QUOTA, CONTAINER_DEFAULTS = "default-deny", "platform-egress", "team-budget", "container-defaults"
SECRET_STORE, TEAM_SERVICE_ACCOUNT, TEAM_CA_SECRET = "vault", "vault-secrets", "vault-ca"
TEAM_OBJECTS = (
    ("NetworkPolicy", DEFAULT_DENY, "the platform", "the namespace's default-deny NetworkPolicy"),
    ("NetworkPolicy", PLATFORM_EGRESS, "the platform", "the namespace's DNS and istiod egress NetworkPolicy"),
    ("ResourceQuota", TEAM_QUOTA, "the platform", "the team's ResourceQuota"),
    ("LimitRange", CONTAINER_DEFAULTS, "the platform", "the team's LimitRange"),
    ("ServiceAccount", TEAM_SERVICE_ACCOUNT, "the platform", "the ServiceAccount the team's SecretStore logs in to Vault as"),
    ("SecretStore", SECRET_STORE, "the platform", "the team's SecretStore"),
    ("Certificate", TEAM_CA_SECRET, "the platform", "the Certificate of Vault's CA"),
    ("Secret", TEAM_CA_SECRET, "the platform", "the Secret holding Vault's CA, written by cert-manager"),
    ("ServiceAccount", "default", "Kubernetes", "the namespace's default ServiceAccount"),
    ("ConfigMap", "kube-root-ca.crt", "Kubernetes", "the cluster CA ConfigMap"),
    ("ConfigMap", "istio-ca-root-cert", "Istio", "the mesh CA ConfigMap istiod writes"),
)


def egress_slug(host: str, port: int) -> str:
    """The name part of one external destination's objects in the egress gateway's namespace."""
    return f"{re.sub(r'[^a-z0-9]+', '-', host)}-{port}"[:63].strip("-")


def karpenter_node_role(cluster: str) -> str:
    return f"KarpenterNodeRole-{cluster}"


def flagger(name: str, role: str) -> str:
    return f"{name}-{role}"


@dataclass(frozen=True)
class Derived:
    """One derived name: where it lives (`scope`), what it names, its limit and the declaration behind it."""

    scope: str
    kind: str
    name: str
    limit: int
    file: str
    path: str
    why: str


@dataclass(frozen=True)
class StackNames:
    """What the derivation needs to know about one stack."""

    rel: str
    environment: str
    cluster: str
    addons: dict[str, tuple[str, ...]]  # enabled addon -> the namespaces it creates
    monitoring: bool
    tracing: bool
    pools: tuple[str, ...] = ()


def of_stack(spec: Any, rel: str, addons: dict[str, Any]) -> StackNames:
    """What the derivation needs of a validated stack (`addons`: the registry, for their namespaces)."""
    enabled = {name: addons[name].namespaces for name, a in spec.addons.items() if a.enabled}
    return StackNames(
        rel=rel,
        environment=spec.environment,
        cluster=spec.cluster.name,
        addons=enabled,
        monitoring=spec.addon_enabled("prometheus"),
        tracing=spec.addon_enabled("tracing"),
        pools=tuple(p.name for p in spec.karpenter.node_pools),
    )


def derive(stack: StackNames, services: Iterable[tuple[Service, str]]) -> list[Derived]:
    out = [Derived("cluster", "Namespace", ns, 63, "(Kubernetes)", "", "a namespace every cluster has") for ns in KUBERNETES_NAMESPACES]
    for addon, namespaces in stack.addons.items():
        out += [Derived("cluster", "Namespace", ns, 63, stack.rel, f"addons.{addon}", f"the {addon} addon's namespace") for ns in namespaces]
    cluster = (stack.rel, "cluster.name")
    out += [
        Derived("aws", "IAM role", karpenter_node_role(stack.cluster), IAM_ROLE_LIMIT, *cluster, "Karpenter's node role"),
        Derived("aws", "SQS queue", stack.cluster, SQS_QUEUE_LIMIT, *cluster, "Karpenter's interruption queue"),
    ]
    # A NodePool's name is also its EC2NodeClass's and the value of the karpenter.sh/nodepool node label (63).
    for i, pool in enumerate(stack.pools):
        out += [
            Derived("cluster", kind, pool, 63, stack.rel, f"karpenter.nodePools[{i}].name", f"node pool {pool}'s {kind}")
            for kind in ("NodePool", "EC2NodeClass")
        ]
    teams: set[str] = set()
    routes: set[tuple[str, int]] = set()
    for svc, rel in services:
        # One route per external (host, port), shared by its callers: two destinations must not share its name.
        for i, entry in enumerate(svc.egress):
            if entry.host and entry.port and (entry.host, entry.port) not in routes:
                routes.add((entry.host, entry.port))
                name = f"egress-{egress_slug(entry.host, entry.port)}"
                out.append(Derived("egress gateway", "ServiceEntry", name, 253, rel, f"egress[{i}].host", f"the egress route of {entry.host}:{entry.port}"))
        if svc.team not in teams:
            teams.add(svc.team)
            out.append(Derived("cluster", "Namespace", svc.team, 63, rel, "team", f"the namespace of team {svc.team}"))
            out += [Derived(f"namespace {svc.team}", kind, name, K8S_DEFAULT_LIMIT, f"({by})", "", why) for kind, name, by, why in TEAM_OBJECTS]
        out += _service_names(stack, svc, rel)
    return out


def _service_names(stack: StackNames, svc: Service, rel: str) -> list[Derived]:
    n, ns = svc.name, svc.team
    of = f"of service {n}"
    names = [(kind, n, "name", f"the {kind} {of}") for kind in ("ServiceAccount", "Deployment", "Service", "NetworkPolicy")]
    names.append(("ConfigMap", config_map(n), "env", f"the environment ConfigMap {of}"))
    if stack.monitoring:
        names += [("ConfigMap", dashboard_config_map(n), "name", f"the dashboard {of}"), ("Service", metrics_service(n), "name", f"the metrics Service {of}")]
    if stack.tracing:
        names.append(("NetworkPolicy", telemetry_policy(n), "name", f"the telemetry egress policy {of}"))
    if svc.egress or svc.has_aws_role:
        names.append(("NetworkPolicy", egress_policy(n), "egress", f"the egress policy {of}"))
    if svc.scaling.sqs is not None:
        names.append(("TriggerAuthentication", keda_auth(n), "scaling.sqs", f"the KEDA authentication {of}"))
    secrets = [(s.name, f"secrets[{i}].name") for i, s in enumerate(svc.secrets)]
    secrets += [(s.name, f"sealedSecrets[{i}].name") for i, s in enumerate(svc.sealed_secrets)]
    names += [("Secret", name, path, f"a Secret {of}") for name, path in secrets]
    if svc.canary_enabled(stack.environment):
        canary = f"the canary {of} (objects made by Flagger)"
        names += [
            ("Deployment", flagger(n, PRIMARY), "canary", canary),
            ("Service", flagger(n, PRIMARY), "canary", canary),
            ("Service", flagger(n, CANARY), "canary", canary),
            ("ConfigMap", flagger(config_map(n), PRIMARY), "canary", canary),
        ]
        names += [("Secret", flagger(name, PRIMARY), path, canary) for name, path in secrets]
    out = [Derived(f"namespace {ns}", kind, name, K8S_LIMITS.get(kind, K8S_DEFAULT_LIMIT), rel, path, why) for kind, name, path, why in names]
    if svc.has_aws_role:
        # Auto-named, so never shared; only the length matters.
        out.append(Derived("aws auto-named", "IAM role", workload_role(n), IAM_ROLE_LIMIT - AUTONAME_SUFFIX, rel, "name", f"the Pod Identity role {of}"))
    return out


def problems(derived: list[Derived]) -> list[Problem]:
    """Over-long names, and each name derived twice in one scope (reported at the later source)."""
    found: list[Problem] = []
    first: dict[tuple[str, str, str], Derived] = {}
    for d in derived:
        if len(d.name) > d.limit:
            found.append(
                Problem(
                    d.file,
                    d.path,
                    f"{d.why} would be named {short(d.name)}, {len(d.name)} characters; the limit for a {d.kind} name is {d.limit}; shorten the name",
                )
            )
        key = (d.scope, d.kind, d.name)
        if key not in first:
            first[key] = d
            continue
        other = first[key]
        if (other.file, other.why) == (d.file, d.why):
            continue
        if other.file.startswith("("):
            where = "built into Kubernetes" if d.scope == "cluster" else f"which {other.file[1:-1]} creates in every team namespace (reserved)"
        else:
            where = f"declared in {other.file} ({other.path})" if other.path else f"declared in {other.file}"
        found.append(
            Problem(
                d.file,
                d.path,
                f"{d.why} and {other.why}, {where}, would both be the {d.kind} "
                f"{short(d.name)}{'' if d.scope in ('cluster', 'aws') else ' in ' + d.scope}; rename one of them",
            )
        )
    return found
