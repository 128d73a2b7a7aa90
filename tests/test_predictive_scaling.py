"""Predictive scaling (`scaling.predictive`): the declaration's refusals, and what a predictive
service becomes: a KEDA ScaledObject on max(current, forecast) with a fallback to the current
signal, the forecast's recording rules, and the same replica bounds and quota as before."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, recorded

from components.monitoring import forecast
from components.spec import Service, load
from components.spec.quotas import cpu_millis
from components.workloads import scaling

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"


def services(stack: str = "dev") -> dict[str, Service]:
    return {s.name: s for s in load(stack, ROOT).services}


def scaled_object(rec, name: str, namespace: str) -> dict:
    return rec.manifest("ScaledObject", name, namespace)["spec"]


# -- refusals: exit 2, the file and the key path named, nothing written ------------------------------
@pytest.mark.parametrize(
    ("predictive", "path", "words"),
    [
        ({"lookahead": "10 minutes", "seasonality": "1w"}, "scaling.predictive.lookahead", "is not a duration in one unit"),
        ({"lookahead": "2h", "seasonality": "1w"}, "scaling.predictive.lookahead", "2h is outside 1m..1h"),
        ({"lookahead": "30s", "seasonality": "1w"}, "scaling.predictive.lookahead", "30s is outside 1m..1h"),
        ({"lookahead": "10m", "seasonality": "30m"}, "scaling.predictive.seasonality", "30m is outside 1h..5w"),
        ({"lookahead": "40m", "seasonality": "1h"}, "scaling.predictive.seasonality", "more than twice the lookahead 40m"),
        # dev's Prometheus keeps 7 days: a two-week season would never be found.
        ({"lookahead": "10m", "seasonality": "2w"}, "scaling.predictive.seasonality", "longer than the stack's Prometheus retention 7d"),
        ({"lookahead": "10m", "seasonality": "1w", "trendWindow": "1m"}, "scaling.predictive.trendWindow", "1m is outside 5m..6h"),
        ({"lookahead": "10m"}, "scaling.predictive.seasonality", "required key is missing"),
        ({"lookahead": "10m", "seasonality": "1w", "lookAhead": "5m"}, "scaling.predictive.lookAhead", "unknown key"),
        ("10m", "scaling.predictive", ""),
    ],
)
def test_a_bad_declaration_is_refused(scratch, capsys, predictive, path, words):
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d["scaling"].update(predictive=predictive))
    err = scratch.rejected(capsys)
    assert f"stacks/services/web/storefront.yaml: {path}" in err and words in err, err


def test_a_fixed_size_has_nothing_to_predict(scratch, capsys):
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d.update(replicas={"min": 2, "max": 2}))
    err = scratch.rejected(capsys)
    assert "stacks/services/web/storefront.yaml: scaling.predictive: replicas.min == replicas.max (2)" in err


def test_the_overlay_path_is_named(scratch, capsys):
    scratch.edit("stacks/services/messaging/notifications.yaml", lambda d: d["envs"]["dev"].update(scaling={"predictive": {"lookahead": "3h"}}))
    err = scratch.rejected(capsys)
    assert "stacks/services/messaging/notifications.yaml" in err and "envs.dev.scaling.predictive.lookahead" in err, err


def test_predictive_needs_prometheus_for_its_forecast():
    raw = {
        "name": "reviews",
        "team": "catalog",
        "image": "registry.example/reviews:1.0.0",
        "port": 8080,
        "replicas": {"min": 1, "max": 4},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "canary": {},
        "slo": {"availability": 99.0, "latencyMs": 500, "latencyPercent": 99.0},
        "scaling": {"predictive": {"lookahead": "10m", "seasonality": "1d"}},
    }
    with pytest.raises(ValueError, match="scaling.predictive: needs the prometheus addon"):
        Service.model_validate(raw, context={"addons": ["keda"]})
    with pytest.raises(ValueError, match="scaling.predictive: needs the keda addon"):
        Service.model_validate(raw, context={"addons": ["prometheus"]})
    assert Service.model_validate(raw, context={"addons": ["keda", "prometheus"]}).scaling.predictive.lookahead_seconds == 600


# -- what a predictive service becomes ----------------------------------------------------------------
def test_a_cpu_service_scales_on_the_larger_of_its_cpu_and_the_forecast(stack):
    svc = services(stack.stack)["storefront"]
    spec = scaled_object(stack, "storefront", "web")
    target = round(cpu_millis(svc.resources.requests.cpu) * 0.7)
    assert spec["advanced"] == {"scalingModifiers": {"formula": scaling.FORMULA, "target": str(target), "metricType": "AverageValue"}}
    assert scaling.FORMULA == "current == nil ? forecast : max(current, forecast ?? current)"
    cpu, current, predicted = spec["triggers"]
    # The HPA's own signal, unchanged and independent of Prometheus.
    assert cpu == {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}
    for trigger, record in ((current, forecast.SIGNAL), (predicted, forecast.FORECAST)):
        assert trigger["type"] == "prometheus" and trigger["name"] in ("current", "forecast")
        meta = trigger["metadata"]
        assert meta["serverAddress"] == "http://kube-prometheus-stack-prometheus.monitoring:9090"
        # Millicores: KEDA's composite target must be a whole number for its fallback.
        assert meta["query"] == f'1000 * max({record}{{namespace="web", service="storefront"}})'
        # An empty result must be an error (the fallback), not zero load.
        assert meta["ignoreNullValues"] == "false" and meta["threshold"] == str(target)


def test_a_queue_worker_scales_on_the_larger_of_its_queue_and_the_forecast(stack):
    svc = services(stack.stack)["notifications"]
    spec = scaled_object(stack, "notifications", "messaging")
    assert spec["advanced"]["scalingModifiers"] == {"formula": scaling.FORMULA, "target": "10", "metricType": "AverageValue"}
    queue, predicted = spec["triggers"]
    assert queue["type"] == "aws-sqs-queue" and queue["name"] == "current" and queue["metadata"]["queueLength"] == "10"
    assert queue["metadata"]["queueURL"].endswith(f"/{svc.scaling.sqs.queue_name}")
    assert (
        predicted["name"] == "forecast"
        and predicted["metadata"]["query"] == 'max(service:scaling_signal:forecast{namespace="messaging", service="notifications"})'
    )


def test_the_fallback_is_the_current_signal_and_bounds_stay(stack):
    for name, namespace in (("storefront", "web"), ("notifications", "messaging")):
        svc = services(stack.stack)[name]
        spec = scaled_object(stack, name, namespace)
        # fallback.behavior scalingModifiers: a trigger failing past the threshold is nil in the formula.
        assert spec["fallback"] == {"failureThreshold": 3, "replicas": svc.replicas.min, "behavior": "scalingModifiers"}
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (svc.replicas.min, svc.replicas.max)
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    # KEDA's HPA owns the count: no second HPA on the same Deployment.
    assert "storefront" not in {r.metadata["name"] for r in stack.kubernetes_objects() if r.kind == "HorizontalPodAutoscaler"}


def test_a_service_without_predictive_keeps_its_hpa(stack):
    for svc in services(stack.stack).values():
        if svc.scaling.predictive or svc.scaling.sqs or svc.replicas.min == svc.replicas.max:
            continue
        hpa = stack.manifest("HorizontalPodAutoscaler", svc.name, svc.team)["spec"]
        assert hpa["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": forecast.CPU_UTILIZATION}


def test_flagger_keeps_the_service_wide_queries_for_the_primary():
    """Without primaryScalerQueries Flagger rewrites `storefront` to `storefront-primary` in the queries (prod: storefront has a canary)."""
    stack = recorded("prod")
    ref = stack.manifest("Canary", "storefront", "web")["spec"]["autoscalerRef"]
    spec = scaled_object(stack, "storefront", "web")
    assert ref["kind"] == "ScaledObject" and ref["apiVersion"] == "keda.sh/v1alpha1"
    assert ref["primaryScalerQueries"] == {t["name"]: t["metadata"]["query"] for t in spec["triggers"] if t["type"] == "prometheus"}


def test_the_forecast_rules_sit_with_the_service(stack):
    for name, namespace in (("storefront", "web"), ("notifications", "messaging")):
        groups = stack.manifest("PrometheusRule", name, namespace)["spec"]["groups"]
        [group] = [g for g in groups if g["name"] == f"{name}-forecast"]
        assert [r.get("record", r.get("alert")) for r in group["rules"]] == [forecast.SIGNAL, forecast.FORECAST, forecast.DEGRADED_ALERT]
        assert all({"team": namespace, "namespace": namespace, "service": name}.items() <= r["labels"].items() for r in group["rules"])
    assert "keda_scaler_metrics_value" in forecast.signal(services(stack.stack)["notifications"])
    assert "container_cpu_usage_seconds_total" in forecast.signal(services(stack.stack)["storefront"])
    # Services that do not predict record nothing.
    groups = stack.manifest("PrometheusRule", "orders", "checkout")["spec"]["groups"]
    assert not [g for g in groups if g["name"].endswith("-forecast")]


def test_the_dashboard_shows_forecast_against_actual_and_its_error(stack):
    for svc in services(stack.stack).values():
        config = stack.manifest("ConfigMap", f"{svc.name}-dashboard", svc.team)
        [text] = config["data"].values()
        panels = {p["title"]: [t["expr"] for t in p["targets"]] for p in json.loads(text)["panels"]}
        mine = [t for t in panels if t.startswith("Forecast")]
        if svc.scaling.predictive is None:
            assert mine == []
            continue
        sel, lookahead = forecast.selector(svc), svc.scaling.predictive.lookahead
        actual, made = f"{forecast.SIGNAL}{{{sel}}}", f"{forecast.FORECAST}{{{sel}}} offset {lookahead}"
        unit = "queue depth (messages)" if svc.scaling.sqs else "CPU (cores)"
        # The forecast drawn at the time it was for, next to what came.
        assert panels[f"Forecast vs actual, {unit}"][:2] == [actual, made]
        assert panels[f"Forecast error, {unit}"] == [f"{made} - {actual}"]
        [wape] = panels["Forecast error, last day (weighted absolute %)"]
        assert wape.startswith(f"sum_over_time(abs({made} - {actual})[1d:1m])")


def test_an_hpa_does_not_block_the_switch_to_predictive(stack):
    """`pulumi up` creates the new ScaledObject before deleting the old HPA: KEDA's webhook must let it in."""
    hpas = [r for r in stack.kubernetes_objects() if r.kind == "HorizontalPodAutoscaler"]
    assert hpas and all(r.metadata["annotations"] == {"validations.keda.sh/hpa-ownership": "false"} for r in hpas)


def test_every_trigger_has_the_composite_target(stack):
    """Flagger's copy for a canary's primary drops scalingModifiers: each trigger alone must then ask for the same target."""
    for name, namespace in (("storefront", "web"), ("notifications", "messaging")):
        spec = scaled_object(stack, name, namespace)
        target = spec["advanced"]["scalingModifiers"]["target"]
        for trigger in spec["triggers"]:
            meta = trigger["metadata"]
            own = meta.get("threshold") or meta.get("queueLength")
            if trigger["type"] == "cpu":
                assert meta["value"] == str(forecast.CPU_UTILIZATION)
            else:
                assert own == target, (name, trigger)
