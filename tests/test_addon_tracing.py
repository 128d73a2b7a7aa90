"""Tracing: the collector gateway in front of Jaeger, Istio reporting to it at the stack's sampling
rate, and every service's SDK and NetworkPolicy pointed at it."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import ROOT

from components.addons import istio, prometheus, tracing
from components.spec import SpecError, load
from components.versions import ISTIOD, JAEGER, KUBE_PROMETHEUS_STACK, OPENTELEMETRY_COLLECTOR
from engine import chart_values, reference
from engine.chart_values import coalesce
from engine.stacks import run

RELEASE = "kubernetes:helm.sh/v3:Release"
OTEL_ENV = ("OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER")


def release(rec, name: str):
    [found] = [r for r in rec.of_type(RELEASE) if r.inputs["name"] == name]
    return found


def removed_keys(values: dict, path: str = "") -> list[str]:
    """Dotted paths of the values set to null."""
    found = [f"{path}{key}" for key, value in values.items() if value is None]
    return found + [p for key, value in values.items() if isinstance(value, dict) for p in removed_keys(value, f"{path}{key}.")]


def dig(data: dict, dotted: str) -> Any:
    for key in dotted.split("."):
        data = data[key]
    return data


# -- releases and their values ----------------------------------------------------------------


def test_both_charts_are_pinned_into_the_tracing_namespace(stack):
    for name, chart in ((tracing.JAEGER_RELEASE, JAEGER), (tracing.COLLECTOR_RELEASE, OPENTELEMETRY_COLLECTOR)):
        inputs = release(stack, name).inputs
        assert (inputs["chart"], inputs["version"], inputs["namespace"]) == (chart.name, chart.version, "tracing")
        assert chart_values.unknown_keys(chart, inputs["values"]) == []


def test_collector_values_pass_the_charts_schema(stack):
    values = release(stack, tracing.COLLECTOR_RELEASE).inputs["values"]
    merged = coalesce(chart_values.defaults(OPENTELEMETRY_COLLECTOR), values)
    # The file names no draft (its $schema is the unversioned URI): validate as draft 7.
    jsonschema.Draft7Validator(reference.chart_schema(OPENTELEMETRY_COLLECTOR)).validate(merged)
    # What the schema alone would let through but the chart's NOTES.txt fails on.
    assert merged["image"]["repository"] and merged["mode"] == "deployment"
    assert "health_check" in merged["config"]["service"]["extensions"]


def test_nulls_only_remove_defaults_that_exist(stack):
    """A null for a key the chart does not have is a typo that removes nothing."""
    defaults = chart_values.defaults(OPENTELEMETRY_COLLECTOR)
    removed = removed_keys(release(stack, tracing.COLLECTOR_RELEASE).inputs["values"])
    assert removed and all(dig(defaults, path) is not None for path in removed), removed


def test_collector_is_an_otlp_gateway_exporting_to_jaeger(stack):
    values = release(stack, tracing.COLLECTOR_RELEASE).inputs["values"]
    merged = coalesce(chart_values.defaults(OPENTELEMETRY_COLLECTOR), values)
    config = merged["config"]
    assert set(config["receivers"]) == {"otlp"}
    assert config["receivers"]["otlp"]["protocols"].keys() == {"grpc", "http"}
    assert config["service"]["pipelines"] == {"traces": {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"], "exporters": ["otlp_grpc/jaeger"]}}
    assert config["exporters"] == {"otlp_grpc/jaeger": {"endpoint": tracing.JAEGER_OTLP, "tls": {"insecure": True}}}
    # Only OTLP (and the collector's own metrics) on the Service.
    enabled = {name for name, port in merged["ports"].items() if port["enabled"]}
    assert enabled == {"otlp", "otlp-http", "metrics"}
    assert (merged["ports"]["otlp"]["servicePort"], merged["ports"]["otlp-http"]["servicePort"]) == tracing.OTLP_PORTS
    # The memory limiter works from the limit; without one it would not bound anything.
    assert merged["resources"]["limits"]["memory"]


def test_service_names_and_labels_are_the_charts(stack):
    collector = release(stack, tracing.COLLECTOR_RELEASE).inputs
    assert collector["values"]["fullnameOverride"] == tracing.COLLECTOR_SERVICE == collector["name"]
    assert tracing.COLLECTOR_POD_LABELS == {"app.kubernetes.io/name": OPENTELEMETRY_COLLECTOR.name, "app.kubernetes.io/instance": collector["name"]}
    assert tracing.OTLP_ENDPOINT == "http://otel-collector.tracing.svc.cluster.local:4318"
    # The Jaeger release name contains the chart name, so the chart names its Service after the release.
    jaeger = release(stack, tracing.JAEGER_RELEASE).inputs
    assert JAEGER.name in jaeger["name"] and tracing.JAEGER_SERVICE == jaeger["name"]
    assert "fullnameOverride" not in jaeger["values"]


def test_jaeger_receives_otlp_where_the_collector_sends_it(stack):
    config = release(stack, tracing.JAEGER_RELEASE).inputs["values"]["userconfig"]
    grpc = config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert grpc.rsplit(":", 1)[1] == tracing.JAEGER_OTLP.rsplit(":", 1)[1] == "4317"
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["jaeger_storage_exporter"]
    assert config["exporters"]["jaeger_storage_exporter"]["trace_storage"] in config["extensions"]["jaeger_storage"]["backends"]
    assert config["extensions"]["jaeger_query"]["storage"]["traces"] in config["extensions"]["jaeger_storage"]["backends"]
    # The chart's probes call /status on 13133.
    assert config["extensions"]["healthcheckv2"]["http"]["endpoint"].endswith(":13133")


def test_jaeger_storage_is_declared_per_stack(dev, prod):
    dev_values = release(dev, tracing.JAEGER_RELEASE).inputs["values"]
    assert dev_values["userconfig"]["extensions"]["jaeger_storage"]["backends"] == {"primary": {"memory": {"max_traces": 50_000}}}
    assert "extraVolumes" not in dev_values["jaeger"]
    with pytest.raises(KeyError):
        dev.manifest("PersistentVolumeClaim", tracing.BADGER_CLAIM, "tracing")

    prod_values = release(prod, tracing.JAEGER_RELEASE).inputs["values"]
    badger = prod_values["userconfig"]["extensions"]["jaeger_storage"]["backends"]["primary"]["badger"]
    assert badger["ttl"] == {"spans": "168h"} and badger["ephemeral"] is False
    assert all(path.startswith(tracing.BADGER_PATH + "/") for path in badger["directories"].values())
    assert prod_values["jaeger"]["extraVolumes"] == [{"name": "badger", "persistentVolumeClaim": {"claimName": tracing.BADGER_CLAIM}}]
    assert prod_values["jaeger"]["extraVolumeMounts"] == [{"name": "badger", "mountPath": tracing.BADGER_PATH}]
    claim = prod.named(f"tracing-{tracing.BADGER_CLAIM}", "kubernetes:core/v1:PersistentVolumeClaim")
    assert claim.inputs["spec"]["resources"]["requests"]["storage"] == "100Gi" and claim.protect
    assert claim.urn in release(prod, tracing.JAEGER_RELEASE).dependencies


def test_pods_run_restricted(stack):
    labels = stack.manifest("Namespace", "tracing")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, path in ((tracing.JAEGER_RELEASE, "jaeger.securityContext"), (tracing.COLLECTOR_RELEASE, "securityContext")):
        context = dig(release(stack, name).inputs["values"], path)
        assert context["runAsNonRoot"] and not context["allowPrivilegeEscalation"] and context["capabilities"] == {"drop": ["ALL"]}


# -- Istio --------------------------------------------------------------------------------------


def test_istiod_reports_to_the_collector(stack):
    values = release(stack, "istiod").inputs["values"]
    mesh = values["meshConfig"]
    assert mesh["enableTracing"] is True
    assert mesh["extensionProviders"] == [
        {"name": tracing.MESH_PROVIDER, "opentelemetry": {"service": "otel-collector.tracing.svc.cluster.local", "port": 4317}}
    ]
    assert mesh["defaultProviders"] == {"tracing": [tracing.MESH_PROVIDER]}
    # What Istio had before is still there.
    assert mesh["ingressSelector"] == istio.INGRESS_SELECTOR
    assert chart_values.unknown_keys(ISTIOD, values) == []


def test_sampling_rate_is_the_stacks(dev, prod):
    for rec, percent in ((dev, 100), (prod, 5)):
        telemetry = rec.manifest("Telemetry", tracing.TELEMETRY_NAME, istio.SYSTEM_NAMESPACE)
        assert telemetry["apiVersion"] == "telemetry.istio.io/v1"
        # Mesh-wide: in the root namespace and without a selector.
        assert "selector" not in telemetry["spec"] and "targetRefs" not in telemetry["spec"]
        assert telemetry["spec"]["tracing"] == [{"providers": [{"name": tracing.MESH_PROVIDER}], "randomSamplingPercentage": percent}]


def test_telemetry_waits_for_the_collector(stack):
    telemetry = next(r for r in stack.kubernetes_objects() if r.kind == "Telemetry")
    assert release(stack, tracing.COLLECTOR_RELEASE).urn in telemetry.dependencies


# -- what services get ------------------------------------------------------------------------


def service_env(rec, svc) -> dict[str, Any]:
    deployment = rec.manifest("Deployment", svc.name, svc.team)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_every_service_exports_traces_to_the_collector(stack):
    for svc in load(stack.stack, ROOT).services:
        env = service_env(stack, svc)
        assert {k: env[k] for k in OTEL_ENV} == {
            "OTEL_SERVICE_NAME": svc.name,
            "OTEL_EXPORTER_OTLP_ENDPOINT": tracing.OTLP_ENDPOINT,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        }


def test_every_service_may_reach_the_collector_and_nothing_more_there(stack):
    for svc in load(stack.stack, ROOT).services:
        policy = stack.manifest("NetworkPolicy", f"{svc.name}-telemetry", svc.team)["spec"]
        assert policy == {
            "podSelector": {"matchLabels": {"platform.io/service": svc.name}},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tracing"}},
                            "podSelector": {"matchLabels": tracing.COLLECTOR_POD_LABELS},
                        }
                    ],
                    "ports": [{"port": 4317, "protocol": "TCP"}, {"port": 4318, "protocol": "TCP"}],
                }
            ],
        }, svc.name
        # The service's own policy stays its declared call graph.
        assert "tracing" not in json.dumps(stack.manifest("NetworkPolicy", svc.name, svc.team)["spec"])


def test_grafana_gets_a_jaeger_datasource_linked_to_loki(stack):
    config = stack.manifest("ConfigMap", "grafana-datasource-jaeger", prometheus.NAMESPACE)
    sidecar = chart_values.defaults(KUBE_PROMETHEUS_STACK)["grafana"]["sidecar"]["datasources"]
    assert config["metadata"]["labels"] == {sidecar["label"]: sidecar["labelValue"]}
    [source] = yaml.safe_load(config["data"]["jaeger.yaml"])["datasources"]
    assert (source["type"], source["uid"], source["url"]) == ("jaeger", tracing.JAEGER_DATASOURCE_UID, tracing.JAEGER_QUERY_URL)
    logs = source["jsonData"]["tracesToLogsV2"]
    assert logs["datasourceUid"] == "loki" and logs["filterByTraceID"] is True
    assert logs["tags"] == [{"key": "service.name", "value": "service_name"}]


# -- settings and switches --------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"samplingPercent": 150}, r"samplingPercent: Input should be less than or equal to 100"),
        ({"samplingPercent": 0.005}, r"samplingPercent 0.005: Istio samples in steps of 0.01 percent"),
        ({"storage": "cassandra"}, r"storage: Input should be 'memory' or 'badger'"),
        ({"retentionHours": 0}, r"retentionHours: Input should be greater than or equal to 1"),
    ],
)
def test_bad_settings_are_rejected(scratch, settings, message):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["tracing"]["settings"].update(settings))
    with pytest.raises(SpecError, match=r"stacks/dev.yaml: addons.tracing.settings") as error:
        load("dev", scratch.root)
    assert re.search(message, str(error.value)), str(error.value)


def test_tracing_requires_istio(scratch):
    def edit(d):
        # Flagger and external-dns need Istio too, and their requirements are reported first.
        for name in ("istio", "flagger", "external-dns"):
            d["addons"][name]["enabled"] = False

    scratch.edit("stacks/dev.yaml", edit)
    with pytest.raises(SpecError, match=r"addons.tracing: requires istio, which is not enabled in this stack"):
        load("dev", scratch.root)


def test_turning_tracing_off_takes_it_out_of_istio_and_the_services(scratch, dev):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["tracing"].update(enabled=False))
    without = run("dev", scratch.root)
    mesh = release(without, "istiod").inputs["values"]["meshConfig"]
    assert not {"enableTracing", "extensionProviders", "defaultProviders"} & set(mesh)
    assert not [r for r in without.kubernetes_objects() if r.kind == "Telemetry"]
    for svc in load("dev", scratch.root).services:
        assert not set(OTEL_ENV) & set(service_env(without, svc))
        with pytest.raises(KeyError):
            without.manifest("NetworkPolicy", f"{svc.name}-telemetry", svc.team)
    # Loki's datasource no longer links to a Jaeger that is not there.
    [loki] = yaml.safe_load(without.manifest("ConfigMap", "grafana-datasource-loki", prometheus.NAMESPACE)["data"]["loki.yaml"])["datasources"]
    assert "derivedFields" not in loki["jsonData"]
    removed = {r.urn for r in dev} - {r.urn for r in without}
    outside = [urn for urn in removed if "platform:addons:Tracing" not in urn]
    # The services' telemetry policies and the meshed addon namespaces' span flows (allow-traces).
    assert outside and all(urn.endswith(("-telemetry", "-allow-traces")) for urn in outside), outside
