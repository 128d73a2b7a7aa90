"""Pod Security as admission would see it: pods, not labels (issue 24's audit).

Every pod template the program renders is judged by the policy pack's Pod Security Standards
controls at the level its namespace enforces and at the version the namespace pins
(`enforce-version`); the sealed-secrets controller's pod is built the way its chart's template
renders it from our values (`omit "enabled" | toYaml` of podSecurityContext and
containerSecurityContext, read in the chart's deployment template) and must pass restricted.
"""

from __future__ import annotations

import copy

import pytest

from components.addons import sealed_secrets
from policy.rules import pss_baseline, pss_restricted
from policy.rules.base import Settings, Subject, pod_template

ENFORCE = "pod-security.kubernetes.io/enforce"
VERSION = "pod-security.kubernetes.io/enforce-version"
LEVELS = {"privileged": [], "baseline": pss_baseline.RULES, "restricted": pss_baseline.RULES + pss_restricted.RULES}


def namespaces(rec) -> dict[str, dict[str, str]]:
    return {o.inputs["metadata"]["name"]: o.inputs["metadata"].get("labels", {}) for o in rec.kubernetes_objects() if o.inputs.get("kind") == "Namespace"}


def violations(obj: dict, level: str, version: tuple[int, int], type_: str = "kubernetes:apps/v1:Deployment") -> list[str]:
    assert pod_template(obj)[1], "not a workload the rules read: the check would pass vacuously"
    subject = Subject(type=type_, urn="urn:test", props=obj)
    settings = Settings(pod_security_version=version)
    return [f"{rule.id}: {v}" for rule in LEVELS[level] if rule.matches(subject) for v in rule.resource_violations(subject, settings)]


def version_of(label: str) -> tuple[int, int]:
    major, minor = label.removeprefix("v").split(".")
    return int(major), int(minor)


def test_every_namespace_pins_the_version_the_policy_pack_judges(stack):
    from components.spec import load
    from conftest import ROOT

    expected = "v{}.{}".format(*load(stack.stack, ROOT).spec.pod_security_version)
    for name, labels in namespaces(stack).items():
        assert labels.get(VERSION) == expected, name


def test_every_rendered_pod_passes_its_namespaces_level(stack):
    found = namespaces(stack)
    judged = 0
    for obj in stack.kubernetes_objects():
        props = obj.inputs
        _, spec = pod_template(props)
        namespace = props.get("metadata", {}).get("namespace")
        if not spec or namespace not in found:
            continue
        labels = found[namespace]
        judged += 1
        assert violations(props, labels[ENFORCE], version_of(labels[VERSION]), obj.type) == [], f"{obj.kind} {namespace}/{props['metadata']['name']}"
    # Every service's Deployment at least (the charts' pods are judged through their values elsewhere).
    assert judged >= 5


def chart_rendered_controller(values: dict) -> dict:
    """The sealed-secrets controller Deployment's pod security, as helm/sealed-secrets/templates/deployment.yaml renders it."""
    spec: dict = {"containers": [{"name": "controller", "volumeMounts": [{"mountPath": "/tmp", "name": "tmp"}]}], "volumes": [{"name": "tmp", "emptyDir": {}}]}
    pod, container = values["podSecurityContext"], values["containerSecurityContext"]
    if pod.get("enabled"):
        spec["securityContext"] = {k: v for k, v in pod.items() if k != "enabled"}
    if container.get("enabled"):
        spec["containers"][0]["securityContext"] = {k: v for k, v in container.items() if k != "enabled"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "sealed-secrets-controller"},
        "spec": {"template": {"metadata": {}, "spec": spec}},
    }


def test_the_sealing_key_holder_runs_restricted(stack):
    release = stack.named("sealed-secrets-sealed-secrets", "kubernetes:helm.sh/v3:Release")
    labels = namespaces(stack)[sealed_secrets.NAMESPACE]
    assert labels[ENFORCE] == "restricted"
    assert violations(chart_rendered_controller(release.inputs["values"]), "restricted", version_of(labels[VERSION])) == []


@pytest.mark.parametrize(
    "loosen",
    [
        lambda v: v["containerSecurityContext"].pop("seccompProfile") and v["podSecurityContext"].pop("seccompProfile"),
        lambda v: v["containerSecurityContext"].update(allowPrivilegeEscalation=True),
        lambda v: v["containerSecurityContext"].update(capabilities={"drop": []}),
        lambda v: v["containerSecurityContext"].update(enabled=False),
    ],
)
def test_a_looser_controller_would_be_caught(stack, loosen):
    values = copy.deepcopy(stack.named("sealed-secrets-sealed-secrets", "kubernetes:helm.sh/v3:Release").inputs["values"])
    loosen(values)
    assert violations(chart_rendered_controller(values), "restricted", (1, 35)) != []
