"""Availability: enough replicas, disruption budgets that let nodes drain, spread, priority, current APIs."""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping, Optional, Sequence

from .base import WORKLOADS, Rule, Settings, Subject, as_map, dig, num, pod_checks, pod_template, selector_matches, show

REPLICATED = ("apps/Deployment", "apps/StatefulSet", "apps/ReplicaSet")
HPA = "autoscaling/HorizontalPodAutoscaler"

# apiVersion -> (kinds it applies to, empty for all; what to use instead). Removed or deprecated
# APIs either break `pulumi up` after a cluster upgrade or will; the list covers Kubernetes and
# the custom resources this platform installs.
DEPRECATED_APIS: dict[str, tuple[tuple[str, ...], str]] = {
    "extensions/v1beta1": ((), "apps/v1, networking.k8s.io/v1 or policy/v1 (removed in 1.16/1.22)"),
    "apps/v1beta1": ((), "apps/v1 (removed in 1.16)"),
    "apps/v1beta2": ((), "apps/v1 (removed in 1.16)"),
    "batch/v1beta1": ((), "batch/v1 (removed in 1.25)"),
    "batch/v2alpha1": ((), "batch/v1 (removed)"),
    "policy/v1beta1": ((), "policy/v1 (removed in 1.25; PodSecurityPolicy is replaced by Pod Security Admission)"),
    "autoscaling/v2beta1": ((), "autoscaling/v2 (removed in 1.25)"),
    "autoscaling/v2beta2": ((), "autoscaling/v2 (removed in 1.26)"),
    "networking.k8s.io/v1beta1": (("Ingress", "IngressClass"), "networking.k8s.io/v1 (removed in 1.22)"),
    "rbac.authorization.k8s.io/v1alpha1": ((), "rbac.authorization.k8s.io/v1 (removed in 1.22)"),
    "rbac.authorization.k8s.io/v1beta1": ((), "rbac.authorization.k8s.io/v1 (removed in 1.22)"),
    "admissionregistration.k8s.io/v1beta1": ((), "admissionregistration.k8s.io/v1"),
    "apiextensions.k8s.io/v1beta1": ((), "apiextensions.k8s.io/v1 (removed in 1.22)"),
    "apiregistration.k8s.io/v1beta1": ((), "apiregistration.k8s.io/v1 (removed in 1.22)"),
    "authentication.k8s.io/v1beta1": ((), "authentication.k8s.io/v1 (removed in 1.22)"),
    "authorization.k8s.io/v1beta1": ((), "authorization.k8s.io/v1 (removed in 1.22)"),
    "certificates.k8s.io/v1beta1": (("CertificateSigningRequest",), "certificates.k8s.io/v1 (removed in 1.22)"),
    "coordination.k8s.io/v1beta1": (("Lease",), "coordination.k8s.io/v1 (removed in 1.22)"),
    "scheduling.k8s.io/v1alpha1": ((), "scheduling.k8s.io/v1 (removed in 1.22)"),
    "scheduling.k8s.io/v1beta1": ((), "scheduling.k8s.io/v1 (removed in 1.22)"),
    "storage.k8s.io/v1beta1": ((), "storage.k8s.io/v1"),
    "discovery.k8s.io/v1beta1": ((), "discovery.k8s.io/v1 (removed in 1.25)"),
    "events.k8s.io/v1beta1": ((), "events.k8s.io/v1 (removed in 1.25)"),
    "node.k8s.io/v1beta1": ((), "node.k8s.io/v1 (removed in 1.25)"),
    "flowcontrol.apiserver.k8s.io/v1beta1": ((), "flowcontrol.apiserver.k8s.io/v1 (removed in 1.26)"),
    "flowcontrol.apiserver.k8s.io/v1beta2": ((), "flowcontrol.apiserver.k8s.io/v1 (removed in 1.29)"),
    "flowcontrol.apiserver.k8s.io/v1beta3": ((), "flowcontrol.apiserver.k8s.io/v1 (removed in 1.32)"),
    "v1": (("Endpoints",), "discovery.k8s.io/v1 EndpointSlice (Endpoints is deprecated since 1.33)"),
    "karpenter.sh/v1alpha5": ((), "karpenter.sh/v1 (removed in Karpenter 1.0)"),
    "karpenter.sh/v1beta1": ((), "karpenter.sh/v1 (removed in Karpenter 1.1)"),
    "karpenter.k8s.aws/v1alpha1": ((), "karpenter.k8s.aws/v1 (removed in Karpenter 1.0)"),
    "karpenter.k8s.aws/v1beta1": ((), "karpenter.k8s.aws/v1 (removed in Karpenter 1.1)"),
    "external-secrets.io/v1alpha1": ((), "external-secrets.io/v1"),
    "external-secrets.io/v1beta1": ((), "external-secrets.io/v1 (no longer served by External Secrets 2.x)"),
    "autoscaling.k8s.io/v1beta2": ((), "autoscaling.k8s.io/v1"),
    "cert-manager.io/v1alpha2": ((), "cert-manager.io/v1 (removed in cert-manager 1.7)"),
    "cert-manager.io/v1alpha3": ((), "cert-manager.io/v1 (removed in cert-manager 1.7)"),
    "cert-manager.io/v1beta1": ((), "cert-manager.io/v1 (removed in cert-manager 1.7)"),
    "networking.istio.io/v1alpha3": (
        ("DestinationRule", "Gateway", "ServiceEntry", "Sidecar", "VirtualService", "WorkloadEntry", "WorkloadGroup"),
        "networking.istio.io/v1",
    ),
    "networking.istio.io/v1beta1": (
        ("DestinationRule", "Gateway", "ServiceEntry", "Sidecar", "VirtualService", "WorkloadEntry", "WorkloadGroup"),
        "networking.istio.io/v1",
    ),
    "security.istio.io/v1beta1": (("AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication"), "security.istio.io/v1"),
}


def _replicas(s: Subject, settings: Settings) -> Iterator[str]:
    if s.kind == "HorizontalPodAutoscaler":
        minimum = num(dig(s.props, "spec", "minReplicas"))
        if minimum is None or minimum < 2:
            yield f"HPA minReplicas is {show(minimum) if minimum is not None else 'unset (1)'}; prod needs at least 2"
        return
    replicas = num(dig(s.props, "spec", "replicas"))
    # An autoscaler (HPA, KEDA) or Flagger owns the count when replicas is omitted.
    if replicas is not None and replicas < 2:
        yield f"spec.replicas is {show(replicas)}; prod needs at least 2"


def scaled_value(value: Any, replicas: float) -> Optional[float]:
    """An int-or-percent PDB field as a pod count, rounded up as the disruption controller does."""
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return float(math.ceil(int(value[:-1]) * replicas / 100))
    if isinstance(value, str) and value.isdigit():
        return float(value)
    return num(value)


def _workload_replicas(workload: Subject, hpas: Sequence[Subject]) -> Optional[float]:
    replicas = num(dig(workload.props, "spec", "replicas"))
    if replicas is not None:
        return replicas
    for hpa in hpas:
        ref = as_map(dig(hpa.props, "spec", "scaleTargetRef"))
        if hpa.namespace == workload.namespace and ref.get("kind") == workload.kind and ref.get("name") == workload.name:
            return num(dig(hpa.props, "spec", "minReplicas")) or 1.0
    return None


# Flagger's default selector labels (its -selector-labels flag): on a canary target's pods the value is
# the target's name; on the primary's, `<name>-primary`.
FLAGGER_SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")


def _canary_pods_only(pdb: Subject, spec: Mapping[str, Any], targets: set[tuple[str, Any]]) -> bool:
    """A budget on exactly a Flagger canary target's pods: they exist only while a release is analysed
    (Flagger scales the target to zero otherwise), so pinning them keeps nodes drainable between runs."""
    selector = as_map(spec.get("selector"))
    labels = as_map(selector.get("matchLabels"))
    if selector.get("matchExpressions") or len(labels) != 1:
        return False
    ((key, value),) = labels.items()
    return key in FLAGGER_SELECTOR_LABELS and (pdb.namespace, value) in targets


def _pdb(subjects: Sequence[Subject], settings: Settings) -> Iterator[tuple[Subject, str]]:
    hpas = [s for s in subjects if s.kind == "HorizontalPodAutoscaler"]
    workloads = [s for s in subjects if s.kind in ("Deployment", "StatefulSet", "ReplicaSet")]
    targets = {(c.namespace, dig(c.props, "spec", "targetRef", "name")) for c in subjects if c.kind == "Canary"}
    for pdb in (s for s in subjects if s.kind == "PodDisruptionBudget"):
        spec = as_map(pdb.props.get("spec"))
        max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
        if max_unavailable is not None and scaled_value(max_unavailable, 100) == 0 and not _canary_pods_only(pdb, spec, targets):
            yield pdb, f"maxUnavailable is {max_unavailable!r}: no pod may ever be evicted, so nodes cannot drain"
        if min_available == "100%":
            yield pdb, "minAvailable is 100%: no pod may ever be evicted, so nodes cannot drain"
        if min_available is None:
            continue
        for w in workloads:
            labels = as_map(pod_template(w.props)[0].get("labels"))
            if w.namespace != pdb.namespace or not selector_matches(spec.get("selector"), labels):
                continue
            replicas = _workload_replicas(w, hpas)
            if replicas is None:
                continue
            needed = scaled_value(min_available, replicas)
            if needed is not None and needed >= replicas:
                yield pdb, f"minAvailable {min_available!r} is not below the {show(replicas)} replica(s) of {w.kind} {w.name}: no pod can be evicted"


def _topology_spread(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[str]:
    if not spec.get("topologySpreadConstraints"):
        yield "pod spec has no topologySpreadConstraints"


def _priority_class(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[str]:
    if not spec.get("priorityClassName"):
        yield "pod spec has no priorityClassName"


def _deprecated_api(s: Subject, settings: Settings) -> Iterator[str]:
    api_version, kind = s.props.get("apiVersion"), s.kind
    entry = DEPRECATED_APIS.get(str(api_version))
    if entry and (not entry[0] or kind in entry[0]):
        yield f"{api_version} {kind} is deprecated or removed; use {entry[1]}"


RULES = [
    Rule(
        "replicas-minimum",
        "Prod workloads run at least 2 replicas (spec.replicas when set, HPA minReplicas).",
        "high",
        "availability",
        "Set spec.replicas (or the HPA's minReplicas) to 2 or more; omit spec.replicas when an autoscaler or Flagger owns it.",
        REPLICATED + (HPA,),
        _replicas,
        prod_only=True,
    ),
    Rule(
        "pdb-allows-disruption",
        "PodDisruptionBudgets let at least one pod be evicted (not maxUnavailable 0, minAvailable below replicas); only the pods "
        "of a Flagger canary target, which exist during an analysis alone, may be pinned (maxUnavailable 0 on the target's selector label).",
        "high",
        "availability",
        "Use maxUnavailable: 1 (or a percentage above 0), or a minAvailable strictly below the workload's replica count.",
        REPLICATED + (HPA, "policy/PodDisruptionBudget", "flagger.app/Canary"),
        _pdb,
        stack=True,
    ),
    Rule(
        "topology-spread",
        "Deployments and StatefulSets spread their pods (topologySpreadConstraints).",
        "medium",
        "availability",
        "Add topologySpreadConstraints over topology.kubernetes.io/zone and kubernetes.io/hostname.",
        ("apps/Deployment", "apps/StatefulSet"),
        pod_checks(_topology_spread),
    ),
    Rule(
        "priority-class",
        "Pods name a PriorityClass, so eviction and preemption order is deliberate.",
        "medium",
        "availability",
        "Set spec.priorityClassName (mission-critical, standard or batch).",
        WORKLOADS,
        pod_checks(_priority_class),
    ),
    Rule(
        "no-deprecated-api",
        "No deprecated or removed API versions.",
        "high",
        "availability",
        "Move the object to the current apiVersion named in the message.",
        ("*",),
        _deprecated_api,
    ),
]
