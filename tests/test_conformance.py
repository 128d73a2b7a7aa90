"""The conformance helper: what every later test uses to check rendered manifests."""

from __future__ import annotations

from engine import conformance

NODEPOOL = {
    "apiVersion": "karpenter.sh/v1",
    "kind": "NodePool",
    "metadata": {"name": "general"},
    "spec": {
        "template": {"spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}],
        }},
        "limits": {"cpu": "10"},
    },
}


def test_valid_core_object():
    assert conformance.errors({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "b"}, "data": {"k": "v"}}, "1.35") == []


def test_core_unknown_field_fails_strictly():
    errs = conformance.errors({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {"replica": 2}}, "1.35")
    assert any("'replica' was unexpected" in e for e in errs)


def test_core_wrong_type_fails():
    errs = conformance.errors({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": "http"}]}}, "1.35")
    assert any(e.startswith("spec.ports.0.port") for e in errs)


def test_valid_custom_resource():
    assert conformance.errors(NODEPOOL, "1.35") == []


def test_custom_resource_unknown_field_fails():
    bad = {**NODEPOOL, "spec": {**NODEPOOL["spec"], "limit": {"cpu": "1"}}}
    assert any("'limit' was unexpected" in e for e in conformance.errors(bad, "1.35"))


def test_custom_resource_enum_fails():
    bad = {**NODEPOOL, "spec": {**NODEPOOL["spec"], "template": {"spec": {**NODEPOOL["spec"]["template"]["spec"], "requirements": [{"key": "k", "operator": "Maybe", "values": []}]}}}}
    assert conformance.errors(bad, "1.35")


def test_int_or_string_accepts_both():
    for nodes in ("10%", 3):
        budget = {**NODEPOOL, "spec": {**NODEPOOL["spec"], "disruption": {"consolidateAfter": "1m", "budgets": [{"nodes": str(nodes)}]}}}
        assert conformance.errors(budget, "1.35") == []


def test_unknown_kind_fails_rather_than_skips():
    assert conformance.errors({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}, "1.35")
    assert conformance.errors({"apiVersion": "karpenter.sh/v1beta1", "kind": "NodePool", "metadata": {"name": "w"}}, "1.35")
    assert conformance.errors({"kind": "ConfigMap"}, "1.35") == ["not a Kubernetes object: apiVersion and kind are required"]


def test_every_rendered_manifest_conforms(stack):
    version = "1.35"
    for obj in stack.kubernetes_objects():
        assert conformance.errors(obj.inputs, version) == [], obj.urn
