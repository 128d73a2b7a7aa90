"""VPA: the recommender alone, so the services' VerticalPodAutoscalers recommend and never act."""

from __future__ import annotations

import pytest

from components.addons import vpa
from components.spec import SpecError, load
from components.versions import VPA
from engine import chart_values
from engine.conformance import errors

RELEASE = "kubernetes:helm.sh/v3:Release"
SERVICES = {"storefront": "web", "orders": "checkout", "payment": "checkout", "inventory": "catalog", "notifications": "messaging"}


def values(rec):
    return rec.named("vpa-vpa", RELEASE).inputs["values"]


def test_recommender_only(stack):
    release = stack.named("vpa-vpa", RELEASE)
    assert (release.inputs["version"], release.inputs["namespace"]) == (VPA.version, vpa.NAMESPACE)
    v = values(stack)
    assert v["recommender"]["enabled"] is True
    # The updater evicts pods and the admission controller rewrites requests: both would fight the HPA.
    assert v["updater"] == {"enabled": False} and v["admissionController"] == {"enabled": False}


def test_the_chart_defaults_would_install_updater_and_admission_controller():
    defaults = chart_values.defaults(VPA)
    assert defaults["updater"]["enabled"] is True and defaults["admissionController"]["enabled"] is True


def test_values_exist_in_the_chart(stack):
    assert chart_values.unknown_keys(VPA, values(stack)) == []


def test_replicas_and_disruption_budget_per_stack(dev, prod):
    assert values(dev)["recommender"]["replicas"] == 1 and values(dev)["recommender"]["podDisruptionBudget"] == {"enabled": False}
    assert values(prod)["recommender"]["replicas"] == 2 and values(prod)["recommender"]["podDisruptionBudget"] == {"enabled": True}


def test_recommender_runs_restricted(stack):
    assert stack.manifest("Namespace", vpa.NAMESPACE)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    sc = values(stack)["containerSecurityContext"]
    pod = chart_values.defaults(VPA)["podSecurityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_every_service_has_a_recommendation_only_vpa(stack):
    for name, team in SERVICES.items():
        obj = stack.manifest("VerticalPodAutoscaler", name, team)
        assert obj["spec"]["updatePolicy"] == {"updateMode": "Off"}
        assert obj["spec"]["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert errors(obj, "1.35") == []


def test_services_start_after_the_recommender_and_its_crd(stack):
    # Component dependencies are recorded as the component's resources: the release installs the CRD.
    workloads = next(r for r in stack if r.type == "platform:workloads:Workloads")
    assert stack.named("vpa-vpa", RELEASE).urn in workloads.dependencies


def test_settings_are_bounded(scratch):
    scratch.edit("stacks/prod.yaml", lambda d: d["addons"]["vpa"]["settings"].update(recommenderReplicas=5))
    with pytest.raises(SpecError, match=r"stacks/prod.yaml: addons.vpa.settings.recommenderReplicas: Input should be less than or equal to 3"):
        load("prod", scratch.root)
