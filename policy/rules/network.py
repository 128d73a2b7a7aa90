"""Network: default-deny namespaces, no node-level or public exposure except the ingress gateway, strict mTLS."""

from __future__ import annotations

from typing import Iterator, Sequence

from .base import HELM_TYPES, WORKLOADS, Rule, Settings, Subject, as_list, as_map, dig

# The one Service allowed to be an internet-facing load balancer: the Istio ingress gateway, which
# runs in its own namespace. Anything else must opt in visibly, with this annotation, in review.
GATEWAY_NAMESPACE = "istio-ingress"
GATEWAY_ANNOTATION = "platform.io/ingress-gateway"
INTERNAL_LB = {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal", "service.beta.kubernetes.io/aws-load-balancer-internal": "true"}
MESH_ROOT = "istio-system"


def is_default_deny(policy: Subject) -> bool:
    """Selects every pod of its namespace and allows no ingress."""
    spec = as_map(policy.props.get("spec"))
    selector = as_map(spec.get("podSelector"))
    everything = not selector.get("matchLabels") and not selector.get("matchExpressions")
    return everything and "Ingress" in as_list(spec.get("policyTypes")) and not as_list(spec.get("ingress"))


def _default_deny(subjects: Sequence[Subject], settings: Settings) -> Iterator[tuple[Subject, str]]:
    covered = {s.namespace or "default" for s in subjects if s.kind == "NetworkPolicy" and is_default_deny(s)}
    # A team stack's namespace is a room of the platform stack (which holds, and is checked for, its
    # default-deny); a stack that declares the Namespace itself must also declare its default-deny.
    declared = {s.props.get("metadata", {}).get("name") for s in subjects if s.kind == "Namespace"}
    covered |= set(settings.team_rooms) - declared
    reported = set()
    for s in subjects:
        namespace = s.namespace or "default"
        if s.kind not in ("NetworkPolicy", "Namespace") and namespace not in covered and namespace not in reported:
            reported.add(namespace)
            yield s, f"namespace {namespace} runs workloads but has no default-deny NetworkPolicy (podSelector {{}}, policyTypes [Ingress], no ingress rules)"


def _node_port(s: Subject, settings: Settings) -> Iterator[str]:
    if dig(s.props, "spec", "type") == "NodePort":
        yield "Service type is NodePort: it opens a port on every node"


def _external_ips(s: Subject, settings: Settings) -> Iterator[str]:
    ips = as_list(dig(s.props, "spec", "externalIPs"))
    if ips:
        yield f"Service sets externalIPs {', '.join(map(str, ips))}"


def _public_load_balancer(s: Subject, settings: Settings) -> Iterator[str]:
    if dig(s.props, "spec", "type") != "LoadBalancer":
        return
    meta = as_map(s.props.get("metadata"))
    annotations = as_map(meta.get("annotations"))
    internal = any(annotations.get(k) == v for k, v in INTERNAL_LB.items())
    gateway = meta.get("namespace") == GATEWAY_NAMESPACE or annotations.get(GATEWAY_ANNOTATION) == "true"
    if not internal and not gateway:
        yield "Service is an internet-facing LoadBalancer; only the Istio ingress gateway may be one"


def chart_name(release: Subject) -> str:
    return str(release.props.get("chart") or "").rstrip("/").rsplit("/", 1)[-1]


def _mtls(subjects: Sequence[Subject], settings: Settings) -> Iterator[tuple[Subject, str]]:
    strict_mesh = False
    for pa in (s for s in subjects if s.kind == "PeerAuthentication"):
        spec = as_map(pa.props.get("spec"))
        mode = dig(spec, "mtls", "mode")
        mesh_wide = pa.namespace == MESH_ROOT and not spec.get("selector")
        if mesh_wide and mode == "STRICT":
            strict_mesh = True
        elif mesh_wide or mode in ("PERMISSIVE", "DISABLE"):
            yield pa, f"mtls.mode is {mode or 'unset (PERMISSIVE)'}; it must be STRICT"
        # A workload may open one port to plaintext callers outside the mesh (Prometheus scraping
        # its metrics port) with PERMISSIVE; turning mTLS off outright is never needed.
        for port, cfg in as_map(spec.get("portLevelMtls")).items():
            if dig(cfg, "mode") == "DISABLE":
                yield pa, f"portLevelMtls {port} mode is DISABLE; use PERMISSIVE for a port that plaintext clients must reach"
    istiod = [s for s in subjects if s.type in HELM_TYPES and chart_name(s) == "istiod"]
    if istiod and not strict_mesh:
        yield istiod[0], f"Istio is installed but no mesh-wide PeerAuthentication (namespace {MESH_ROOT}, no selector) sets mtls.mode STRICT"


RULES = [
    Rule(
        "network-default-deny",
        "Every namespace with workloads has a default-deny NetworkPolicy.",
        "high",
        "security",
        "Add a NetworkPolicy with podSelector: {} and policyTypes [Ingress, Egress] and no ingress rules, then allow the callers explicitly.",
        WORKLOADS + ("networking.k8s.io/NetworkPolicy", "Namespace"),
        _default_deny,
        stack=True,
        config=("teamRooms",),
    ),
    Rule(
        "service-no-nodeport",
        "No NodePort Services.",
        "high",
        "security",
        "Use a ClusterIP Service and route external traffic through the Istio ingress gateway.",
        ("Service",),
        _node_port,
    ),
    Rule(
        "service-no-external-ips",
        "No Services with externalIPs (they can intercept cluster traffic, CVE-2020-8554).",
        "high",
        "security",
        "Remove spec.externalIPs; expose the service through the ingress gateway.",
        ("Service",),
        _external_ips,
    ),
    Rule(
        "service-no-public-loadbalancer",
        "No internet-facing LoadBalancer Services except the Istio ingress gateway.",
        "high",
        "security",
        f"Use a ClusterIP Service behind the ingress gateway, or make the load balancer internal "
        f"(service.beta.kubernetes.io/aws-load-balancer-scheme: internal). The gateway is recognised by namespace {GATEWAY_NAMESPACE} "
        f'or the annotation {GATEWAY_ANNOTATION}: "true".',
        ("Service",),
        _public_load_balancer,
    ),
    Rule(
        "mesh-mtls-strict",
        "Mesh mTLS is STRICT: a mesh-wide STRICT PeerAuthentication when Istio is installed, no PERMISSIVE or DISABLE "
        "namespace or workload policy (a workload's port-level PERMISSIVE exception is allowed).",
        "critical",
        "security",
        f"Declare a PeerAuthentication named default in {MESH_ROOT} with spec.mtls.mode: STRICT, and remove PERMISSIVE/DISABLE overrides.",
        ("security.istio.io/PeerAuthentication",) + HELM_TYPES,
        _mtls,
        stack=True,
    ),
]
