"""Inputs for the policy tests: a fully compliant workload to break one field at a time, and
helpers that run one rule the way the pack and the offline engine do."""

from __future__ import annotations

import copy
from typing import Any, Callable

from policy.rules import BY_ID, Settings, Subject
from policy.rules.base import kubernetes_type

REGISTRY = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/"
PROD = Settings(environment="prod", allowed_registries=(REGISTRY,), max_rollback_seconds=60)
DEV = Settings(environment="dev", allowed_registries=(REGISTRY,), max_rollback_seconds=60)


def container(name: str = "web") -> dict[str, Any]:
    return {
        "name": name,
        "image": f"{REGISTRY}shop/{name}:1.4.2",
        "ports": [{"containerPort": 8080}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        "livenessProbe": {"httpGet": {"path": "/live", "port": 8080}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
    }


def pod_spec() -> dict[str, Any]:
    return {
        "automountServiceAccountToken": False,
        "priorityClassName": "standard",
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app": "web"}},
            }
        ],
        "containers": [container()],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def deployment(name: str = "web", namespace: str = "shop", replicas: Any = 3, labels: dict | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec()}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "spec": spec}


def workload(kind: str) -> dict[str, Any]:
    """A compliant object of any workload kind, pod template at the kind's own path."""
    pod = {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()}
    meta = {"name": "web", "namespace": "shop"}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {**meta, "labels": {"app": "web"}}, "spec": pod["spec"]}
    if kind == "ReplicationController":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": {"replicas": 2, "template": pod}}
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta, "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": pod}}}}
    api = "batch/v1" if kind == "Job" else "apps/v1"
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": pod}}


def changed(obj: dict[str, Any], fn: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """A deep copy of obj, edited by fn."""
    copied = copy.deepcopy(obj)
    fn(copied)
    return copied


def pod(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"] if obj["kind"] != "Pod" else obj["spec"]


def first(obj: dict[str, Any]) -> dict[str, Any]:
    return pod(obj)["containers"][0]


def k8s(manifest: dict[str, Any], n: int = 1) -> Subject:
    return Subject(kubernetes_type(manifest["apiVersion"], manifest["kind"]), f"test#{n}", manifest)


def cloud(type_: str, props: dict[str, Any], name: str = "res", dependencies: tuple[str, ...] = ()) -> Subject:
    return Subject(type_, f"urn:pulumi:prod::platform::{type_}::{name}", props, dependencies=dependencies)


def as_subjects(items: Any) -> list[Subject]:
    items = items if isinstance(items, list) else [items]
    return [i if isinstance(i, Subject) else k8s(i, n) for n, i in enumerate(items, start=1)]


def findings(rule_id: str, items: Any, settings: Settings = PROD) -> list[str]:
    """Every message the rule reports for these manifests/subjects."""
    rule = BY_ID[rule_id]
    subjects = as_subjects(items)
    if rule.stack:
        return [text for _, text in rule.stack_violations(subjects, settings)]
    return [text for s in subjects for text in rule.resource_violations(s, settings)]
