"""Service level objectives in the declarations: inherited by tier, overridable per service, and
never looser than the canary that guards each release."""

from __future__ import annotations

import pytest
from conftest import ROOT

from components.spec import SpecError, load
from components.spec.slo import ISTIO_LATENCY_BUCKETS_MS


def service(root, stack, name):
    return next(s for s in load(stack, root).services if s.name == name)


def test_services_inherit_their_tiers_objectives():
    spec = load("prod", ROOT).spec
    for svc in load("prod", ROOT).services:
        assert svc.slo == getattr(spec.service_defaults.slos, svc.tier), svc.name
    assert service(ROOT, "prod", "orders").slo.availability == 99.9
    assert service(ROOT, "prod", "storefront").slo.latency_ms == 1000


def test_a_service_overrides_only_what_it_declares(scratch):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(slo={"latencyMs": 500}))
    slo = service(scratch.root, "dev", "inventory").slo
    assert (slo.latency_ms, slo.availability, slo.latency_percent) == (500, 99.0, 99.0)


def test_a_stack_sets_its_tiers_objectives(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["serviceDefaults"].update(slos={"batch": {"availability": 90, "latencyMs": 10000, "latencyPercent": 90}}))
    assert service(scratch.root, "dev", "notifications").slo.latency_ms == 10000
    assert service(scratch.root, "dev", "payment").slo.availability == 99.9  # the other tiers keep the platform's


def test_budget_is_the_complement_of_the_objective():
    slo = service(ROOT, "prod", "payment").slo
    assert slo.budget("availability") == pytest.approx(0.001) and slo.budget("latency") == pytest.approx(0.01)


@pytest.mark.parametrize(
    "file, edit, problem",
    [
        (
            "orders.yaml",
            lambda d: d["canary"].update(successRate=99.5),
            "stacks/services/checkout/orders.yaml: canary.successRate: 99.5% is looser than the availability objective slo.availability 99.9%",
        ),
        (
            "payment.yaml",
            lambda d: d["canary"].update(maxLatencyMs=750),
            "stacks/services/checkout/payment.yaml: canary.maxLatencyMs: 750ms is looser than the latency objective's threshold slo.latencyMs 500ms",
        ),
        (
            "inventory.yaml",
            lambda d: d.update(slo={"latencyMs": 300}),
            "stacks/services/catalog/inventory.yaml: slo: latencyMs 300 is not a bound of Istio's request-duration histogram; use one of [1, 5,",
        ),
        (
            "inventory.yaml",
            lambda d: d.update(slo={"availability": 100}),
            "stacks/services/catalog/inventory.yaml: slo.availability: Input should be less than 100",
        ),
    ],
)
def test_inconsistent_objectives_are_refused(scratch, file, edit, problem):
    scratch.edit(scratch.service_file(file.removesuffix(".yaml")), edit)
    with pytest.raises(SpecError) as err:
        load("dev", scratch.root)
    assert problem in str(err.value)


def test_latency_thresholds_are_istios_bucket_bounds():
    # Istio's default buckets for istio_request_duration_milliseconds (the sidecar's stats config).
    assert set(ISTIO_LATENCY_BUCKETS_MS) <= {0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}
    for stack in ("dev", "staging", "prod"):
        for svc in load(stack, ROOT).services:
            assert svc.slo.latency_ms in ISTIO_LATENCY_BUCKETS_MS
