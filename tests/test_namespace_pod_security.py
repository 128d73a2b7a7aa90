"""Pod Security admission on every namespace: restricted for teams, the strictest level each addon's pods pass."""

from __future__ import annotations

import pytest

from components.addons import discover
from components.addons.base import Addon
from components.spec import load
from conftest import ROOT

ENFORCE = "pod-security.kubernetes.io/enforce"


def namespaces(stack) -> dict[str, dict[str, str]]:
    return {o.inputs["metadata"]["name"]: o.inputs["metadata"].get("labels", {}) for o in stack.kubernetes_objects() if o.inputs.get("kind") == "Namespace"}


def lower_without_reason(addons: dict[str, type[Addon]]) -> list[str]:
    return [name for name, addon in addons.items() if addon.pod_security != "restricted" and not addon.pod_security_reason.strip()]


def test_an_addon_below_restricted_states_why():
    assert lower_without_reason(discover()) == []


def test_a_lower_level_without_a_reason_is_caught():
    class Careless(Addon):
        pod_security = "baseline"

    Careless.name = "careless"
    assert lower_without_reason({"careless": Careless}) == ["careless"]


def test_the_default_level_is_restricted():
    assert Addon.pod_security == "restricted"


def test_team_namespaces_enforce_restricted(stack):
    teams = {s.team for s in load(stack.stack, ROOT).services}
    found = namespaces(stack)
    assert teams and teams <= set(found)
    for team in teams:
        assert found[team][ENFORCE] == "restricted", team


def test_every_namespace_enforces_a_level(stack):
    for name, labels in namespaces(stack).items():
        assert labels.get(ENFORCE) in ("restricted", "baseline", "privileged"), name


def test_addon_namespaces_enforce_the_addons_level(stack):
    found = namespaces(stack)
    for name, addon in discover().items():
        if load(stack.stack, ROOT).spec.addon_enabled(name):
            # Velero enforces its lower level only in the stacks that run its data mover.
            level = addon.pod_security_in(load(stack.stack, ROOT)) if hasattr(addon, "pod_security_in") else addon.pod_security
            assert found[addon.namespace][ENFORCE] == level, name


@pytest.mark.parametrize("namespace", ["istio-system", "istio-ingress", "flagger-system", "flagger-loadtester", "vault"])
def test_meshed_and_control_plane_namespaces_are_restricted(stack, namespace):
    assert namespaces(stack)[namespace][ENFORCE] == "restricted"


def test_only_the_cni_agent_namespace_is_privileged_for_the_mesh(stack):
    assert namespaces(stack)["istio-cni"][ENFORCE] == "privileged"


def test_sidecars_need_no_capabilities(stack):
    """istiod injects istio-validation (no NET_ADMIN/NET_RAW) when told the CNI agent runs, and every
    injected container gets the RuntimeDefault seccomp profile."""
    values = next(o for o in stack.resources if o.type == "kubernetes:helm.sh/v3:Release" and o.inputs.get("name") == "istiod").inputs["values"]
    assert values["cni"] == {"enabled": True}
    assert values["global"]["proxy"]["seccompProfile"] == {"type": "RuntimeDefault"}
    cni = next(o for o in stack.resources if o.type == "kubernetes:helm.sh/v3:Release" and o.inputs.get("name") == "istio-cni")
    assert cni.inputs["chart"] == "cni" and cni.inputs["namespace"] == "istio-cni"
