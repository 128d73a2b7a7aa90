"""Chaos Mesh: scheduled pod kills and dependency latency for critical services, never in prod."""

from __future__ import annotations

import pytest
from conftest import ROOT

from components.addons import chaos_mesh
from components.spec import SpecError, load
from components.versions import CHAOS_MESH
from engine import chart_values
from engine.conformance import errors
from engine.stacks import run

RELEASE = "kubernetes:helm.sh/v3:Release"
TEAMS = ("web", "checkout", "catalog", "messaging")


def schedules(rec) -> dict[str, dict]:
    return {r.metadata["name"]: r.inputs for r in rec.kubernetes_objects() if r.kind == "Schedule" and r.inputs["apiVersion"].startswith("chaos-mesh.org/")}


def critical(stack: str) -> list[str]:
    return sorted(s.name for s in load(stack, ROOT).services if s.tier == "critical")


def test_every_critical_service_gets_a_pod_kill(dev):
    found = schedules(dev)
    assert critical("dev") == ["orders", "payment"]
    for name in critical("dev"):
        spec = found[f"{name}-pod-kill"]["spec"]
        assert spec["type"] == "PodChaos" and spec["schedule"] == "0 */4 * * *" and spec["concurrencyPolicy"] == "Forbid"
        assert spec["podChaos"] == {
            "action": "pod-kill",
            "mode": "one",
            "selector": {"namespaces": ["checkout"], "labelSelectors": {"platform.io/service": name}},
        }
    assert not [n for n in found if n.startswith(("storefront", "inventory", "notifications"))]


def test_latency_targets_the_dependencies_pods(dev):
    spec = schedules(dev)["orders-latency"]["spec"]
    assert spec["type"] == "NetworkChaos" and spec["schedule"] == "30 */4 * * *"
    chaos = spec["networkChaos"]
    assert chaos["action"] == "delay" and chaos["direction"] == "to" and chaos["mode"] == "one"
    assert chaos["selector"] == {"namespaces": ["checkout"], "labelSelectors": {"platform.io/service": "orders"}}
    assert chaos["target"] == {
        "mode": "all",
        "selector": {
            "namespaces": ["catalog", "checkout", "messaging"],
            "expressionSelectors": [{"key": "platform.io/service", "operator": "In", "values": ["inventory", "notifications", "payment"]}],
        },
    }
    assert chaos["delay"]["latency"] == "200ms" and chaos["duration"] == "5m"
    # payment calls nothing in the cluster: a pod kill only.
    assert "payment-latency" not in schedules(dev)


def test_schedules_validate_against_the_crds(dev):
    for obj in schedules(dev).values():
        assert errors(obj, "1.35") == [], obj["metadata"]["name"]
        assert len(obj["metadata"]["name"]) <= 57  # Chaos Mesh appends 6 characters to each run's name


def test_only_team_namespaces_may_be_injected(dev):
    values = dev.named("chaos-mesh-chaos-mesh", RELEASE).inputs["values"]
    assert values["controllerManager"]["enableFilterNamespace"] is True
    for team in TEAMS:
        assert dev.manifest("Namespace", team)["metadata"]["annotations"] == chaos_mesh.INJECT_ANNOTATION
    for platform in ("istio-system", "monitoring", "vault", chaos_mesh.NAMESPACE):
        assert "annotations" not in dev.manifest("Namespace", platform)["metadata"]


def test_daemon_speaks_containerd_on_every_pool(dev):
    values = dev.named("chaos-mesh-chaos-mesh", RELEASE).inputs["values"]
    daemon = values["chaosDaemon"]
    assert (daemon["runtime"], daemon["socketPath"]) == ("containerd", "/run/containerd/containerd.sock")
    assert chart_values.defaults(CHAOS_MESH)["chaosDaemon"]["runtime"] == "docker"  # what the chart would use otherwise
    assert {"key": "dedicated", "operator": "Equal", "value": "high-perf", "effect": "NoSchedule"} in daemon["tolerations"]
    assert values["dashboard"]["service"]["type"] == "ClusterIP"
    assert chart_values.unknown_keys(CHAOS_MESH, values) == []
    assert dev.manifest("Namespace", chaos_mesh.NAMESPACE)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_nothing_in_prod(prod):
    assert schedules(prod) == {}
    assert not [r for r in prod.of_type(RELEASE) if r.inputs["chart"] == "chaos-mesh"]
    for team in TEAMS:
        assert "annotations" not in prod.manifest("Namespace", team)["metadata"]


def test_prod_stack_enabling_chaos_is_refused(scratch):
    scratch.edit("stacks/prod.yaml", lambda d: d["addons"].update({"chaos-mesh": {}}))
    with pytest.raises(SpecError) as err:
        load("prod", scratch.root)
    assert "stacks/prod.yaml: addons.chaos-mesh: not allowed in prod" in str(err.value)


def test_declared_but_disabled_in_prod_is_fine(scratch):
    scratch.edit("stacks/prod.yaml", lambda d: d["addons"].update({"chaos-mesh": {"enabled": False}}))
    assert not load("prod", scratch.root).spec.addon_enabled("chaos-mesh")


def test_only_prod_is_excluded(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d.update(environment="staging"))
    assert chaos_mesh.experiments(load("dev", scratch.root)).every_hours == 4
    assert chaos_mesh.experiments(load("prod", ROOT)) is None


def test_addon_off_means_no_experiments(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["chaos-mesh"].update(enabled=False))
    rec = run("dev", scratch.root)
    assert schedules(rec) == {}
    assert "annotations" not in rec.manifest("Namespace", "checkout")["metadata"]


def test_a_new_critical_service_is_exercised_and_settings_apply(scratch):
    # A critical service's canary may not be looser than the tier's 99.9% availability objective.
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d.update(tier="critical", canary={"successRate": 99.9}))
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["chaos-mesh"].update(settings={"everyHours": 6, "latencyMs": 500, "latencyMinutes": 2}))
    found = schedules(run("dev", scratch.root))
    assert found["storefront-pod-kill"]["spec"]["schedule"] == "0 */6 * * *"
    latency = found["storefront-latency"]["spec"]["networkChaos"]
    assert latency["delay"]["latency"] == "500ms" and latency["duration"] == "2m"
    assert latency["target"]["selector"]["expressionSelectors"][0]["values"] == ["inventory", "orders"]
