"""The conformance helper: what every later test uses to check rendered manifests."""

from __future__ import annotations

import copy

from engine import cel_rules, conformance
from engine.render import manifest_files

NODEPOOL = {
    "apiVersion": "karpenter.sh/v1",
    "kind": "NodePool",
    "metadata": {"name": "general"},
    "spec": {
        "template": {
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}],
            }
        },
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
    bad = {
        **NODEPOOL,
        "spec": {
            **NODEPOOL["spec"],
            "template": {"spec": {**NODEPOOL["spec"]["template"]["spec"], "requirements": [{"key": "k", "operator": "Maybe", "values": []}]}},
        },
    }
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


def test_every_rendered_file_validates_as_written(stack):
    """What build/<stack>/manifests holds, masked secrets included, is what the API server accepts."""
    for name, obj in manifest_files(stack).items():
        assert conformance.errors(obj, "1.35", masked_as_written=True) == [], name


# -- CEL rules (x-kubernetes-validations) ----------------------------------------------------------


def test_cel_rule_of_a_crd_rejects_what_the_api_server_would():
    bad = copy.deepcopy(NODEPOOL)
    bad["spec"]["template"]["spec"]["requirements"] = [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": []}]
    assert any("rule `self.all(x, x.operator == 'In' ? x.values.size() != 0 : true)`" in e for e in conformance.errors(bad, "1.35"))
    reserved = copy.deepcopy(NODEPOOL)
    reserved["spec"]["template"]["spec"]["requirements"] = [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}]
    assert any("kubernetes.io/hostname" in e for e in conformance.errors(reserved, "1.35"))


def test_cel_sees_defaults_applied_first():
    schema = {
        "type": "object",
        "properties": {"mode": {"type": "string", "default": "strict"}, "exceptions": {"type": "array", "items": {"type": "string"}}},
        "x-kubernetes-validations": [{"rule": "self.mode != 'strict' || !has(self.exceptions)", "message": "strict takes no exceptions"}],
    }
    assert cel_rules.errors({"exceptions": ["a"]}, schema) == ["(object): strict takes no exceptions (rule `self.mode != 'strict' || !has(self.exceptions)`)"]
    assert cel_rules.errors({"mode": "lenient", "exceptions": ["a"]}, schema) == []


def test_service_entry_rules_of_the_istio_crd():
    entry = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "db", "namespace": "a"},
        "spec": {"hosts": ["db.internal"], "ports": [{"number": 5432, "name": "tcp", "protocol": "TCP"}], "endpoints": [{"address": "10.0.0.1"}]},
    }
    # Without a resolution the rule reads it as NONE, and NONE may not list endpoints.
    assert any("endpoints" in e for e in conformance.errors(entry, "1.35"))
    entry["spec"]["resolution"] = "STATIC"
    assert conformance.errors(entry, "1.35") == []


def test_values_reach_cel_typed_as_the_api_server_types_them():
    stamp = {"type": "string", "format": "date-time", "x-kubernetes-validations": [{"rule": "self < timestamp('2030-01-01T00:00:00Z')"}]}
    assert cel_rules.errors("2026-11-30T09:00:00Z", stamp) == []
    assert cel_rules.errors("2031-01-01T00:00:00Z", stamp)
    period = {"type": "string", "format": "duration", "x-kubernetes-validations": [{"rule": "self >= duration('1m')"}]}
    assert cel_rules.errors("1m30s", period) == [] and cel_rules.errors("30s", period)
    ratio = {"type": "number", "x-kubernetes-validations": [{"rule": "self <= 1.0"}]}
    assert cel_rules.errors(1, ratio) == []
    # A null is not validated, and a null in a non-nullable field is dropped before the rules run.
    named = {
        "type": "object",
        "properties": {"a": {"type": "string", "x-kubernetes-validations": [{"rule": "self == 'x'"}]}},
        "x-kubernetes-validations": [{"rule": "!has(self.a)"}],
    }
    assert cel_rules.errors({"a": None}, named) == []


def test_an_optional_old_self_rule_is_reported_not_passed():
    schema = {"type": "object", "x-kubernetes-validations": [{"rule": "!oldSelf.hasValue() || self.a == oldSelf.value().a", "optionalOldSelf": True}]}
    assert "could not be evaluated" in cel_rules.errors({"a": 1}, schema)[0]


def test_cel_runs_after_non_blocking_schema_errors_only():
    bad = copy.deepcopy(NODEPOOL)
    bad["spec"]["template"]["spec"]["requirements"] = [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}]
    bad["spec"]["limit"] = {"cpu": "1"}  # an unknown field the API server would prune: CEL still runs
    errors = conformance.errors(bad, "1.35")
    assert any("'limit' was unexpected" in e for e in errors) and any("rule `" in e for e in errors)
    bad["spec"]["weight"] = "heavy"  # a type error blocks CEL, as on the API server
    errors = conformance.errors(bad, "1.35")
    assert any("weight" in e for e in errors) and not any("rule `" in e for e in errors)


def test_kubernetes_cel_libraries():
    assert (
        cel_rules.errors(
            {"k": "karpenter.sh/foo"},
            {"type": "object", "properties": {"k": {"type": "string", "x-kubernetes-validations": [{"rule": "self.find('^([^/]+)') == 'karpenter.sh'"}]}}},
        )
        == []
    )
    url = {"type": "string", "x-kubernetes-validations": [{"rule": "isURL(self) && url(self).getScheme() in ['https']", "message": "https only"}]}
    assert cel_rules.errors("https://a.example", url) == []
    assert cel_rules.errors("http://a.example", url) == ["(object): https only (rule `isURL(self) && url(self).getScheme() in ['https']`)"]


def test_a_rule_that_cannot_be_evaluated_is_reported_not_passed():
    schema = {"type": "string", "x-kubernetes-validations": [{"rule": "quantity(self).isGreaterThan(quantity('1'))"}]}
    [error] = cel_rules.errors("2", schema)
    assert "could not be evaluated" in error


def test_a_missing_key_fails_the_rule_as_on_the_api_server():
    schema = {"type": "object", "x-kubernetes-validations": [{"rule": "self.a == 1"}]}
    assert "no such key" in cel_rules.errors({}, schema)[0]
    assert cel_rules.errors({"a": 1}, schema) == []


def test_transition_rules_are_not_run_on_create():
    schema = {"type": "object", "x-kubernetes-validations": [{"rule": "self.a == oldSelf.a"}]}
    assert cel_rules.errors({"a": 1}, schema) == []
