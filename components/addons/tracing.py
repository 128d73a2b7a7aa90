"""Tracing: an OpenTelemetry Collector gateway in front of Jaeger, and Istio's spans sent to it.

Spans arrive over OTLP at one place, the collector (a Deployment; gRPC 4317, HTTP 4318): from the
services' OpenTelemetry SDKs (the workloads set OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME)
and from every Envoy sidecar and gateway. The collector batches them, bounds its memory, and
exports them over OTLP to Jaeger. Services never talk to Jaeger, so the backend can change without
touching a workload.

Jaeger is the v2 all-in-one of chart 4.x (one Deployment: OTLP receiver, storage, query UI on
16686), configured whole through `userconfig`. Storage is a per-stack declaration:
- `memory` (dev): spans live in the pod and are lost on restart;
- `badger` (prod): an embedded store on a gp3 volume, spans expire after `retentionHours`.
Both are single-replica stores (the chart recreates the pod on upgrade); a larger volume of traces
needs a shared backend (OpenSearch, Cassandra or ClickHouse in jaeger_storage), which this
platform does not run.

Istio: the mesh's tracing provider must be in istiod's meshConfig, which is installed before this
addon (it needs Istio's CRDs), so this addon publishes `mesh_config()` in its contract
(components/contracts.py), which the istio addon reads when the stack enables tracing; this addon owns the mesh-wide `Telemetry` in istio-system that picks the
provider and the stack's sampling rate. Both halves live here, in one module.

Grafana gets a Jaeger datasource (ConfigMap for its sidecar), linked to Loki when logging is on.

helm.v3.Release for both charts: the release waits for the collector and Jaeger to be ready, so the
Telemetry object that starts every sidecar reporting is only created once there is a receiver.
"""

from __future__ import annotations

from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import model_validator

from components.contracts import IstioContract, LoggingContract, MonitoringContract, Pods, TracingContract
from components.monitoring.scrape import Metrics
from components.security import RESTRICTED_CONTAINER
from components.spec import Declarations
from components.spec.base import Spec, field
from components.versions import JAEGER, OPENTELEMETRY_COLLECTOR, OPENTELEMETRY_COLLECTOR_IMAGE

from . import flows as net
from .base import Addon

NAMESPACE = "tracing"
# The collector chart names everything after fullnameOverride and labels pods with the chart name
# (app.kubernetes.io/name) and the release (app.kubernetes.io/instance).
COLLECTOR_RELEASE = "otel-collector"
COLLECTOR_SERVICE = COLLECTOR_RELEASE
COLLECTOR_HOST = f"{COLLECTOR_SERVICE}.{NAMESPACE}.svc.cluster.local"
COLLECTOR_POD_LABELS = {"app.kubernetes.io/name": "opentelemetry-collector", "app.kubernetes.io/instance": COLLECTOR_RELEASE}
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
OTLP_PORTS = (OTLP_GRPC_PORT, OTLP_HTTP_PORT)
# What services are given (OTLP/HTTP, the SDKs' default protocol; the SDK appends /v1/traces).
OTLP_ENDPOINT = f"http://{COLLECTOR_HOST}:{OTLP_HTTP_PORT}"
OTLP_PROTOCOL = "http/protobuf"

# The release name contains the chart name, so the chart's Service and Deployment are `jaeger`.
JAEGER_RELEASE = "jaeger"
JAEGER_SERVICE = JAEGER_RELEASE
JAEGER_OTLP = f"{JAEGER_SERVICE}.{NAMESPACE}.svc.cluster.local:{OTLP_GRPC_PORT}"
JAEGER_QUERY_PORT = 16686
# The jaeger chart's selector labels (its name; the instance is the release).
JAEGER_POD_LABELS = {"app.kubernetes.io/name": "jaeger", "app.kubernetes.io/instance": JAEGER_RELEASE}
JAEGER_QUERY_URL = f"http://{JAEGER_SERVICE}.{NAMESPACE}.svc.cluster.local:{JAEGER_QUERY_PORT}"
JAEGER_DATASOURCE_UID = "jaeger"
# The collector's own metrics (its ServiceMonitor).
COLLECTOR_METRICS_PORT = 8888
BADGER_CLAIM = "jaeger-badger"
BADGER_PATH = "/badger"

# The name services' Envoys report under, in meshConfig.extensionProviders.
MESH_PROVIDER = "otel-tracing"
TELEMETRY_NAME = "mesh-default"


class TracingSettings(Spec):
    sampling_percent: float = field(
        "Share of requests the mesh traces, in percent (Istio's precision is 0.01): 100 traces everything.", default=1.0, ge=0, le=100
    )
    collector_replicas: int = field("OpenTelemetry Collector gateway replicas.", default=1, ge=1, le=10)
    storage: Literal["memory", "badger"] = field(
        "Jaeger's span store: memory (lost on restart) or badger (on a gp3 volume, kept for retentionHours).", default="memory"
    )
    max_traces: int = field("Traces the memory store keeps before dropping the oldest.", default=50_000, ge=1_000)
    retention_hours: int = field("How long the badger store keeps spans, in hours.", default=72, ge=1, le=720)
    storage_gib: int = field("Size of the badger volume, in GiB.", default=20, ge=1)

    @model_validator(mode="after")
    def _precision(self) -> "TracingSettings":
        if round(self.sampling_percent, 2) != self.sampling_percent:
            raise ValueError(f"samplingPercent {self.sampling_percent}: Istio samples in steps of 0.01 percent")
        return self


class Tracing(Addon):
    name = "tracing"
    namespace = NAMESPACE
    # The OpenTelemetry collector's pipeline metrics (accepted, refused, exported spans).
    metrics = Metrics(charts={OPENTELEMETRY_COLLECTOR.name: {"serviceMonitor": {"enabled": True}}})
    # Istio for the Telemetry API (and the spans worth having); Prometheus for Grafana and the
    # ServiceMonitor CRD.
    requires = ("istio", "prometheus")
    Settings = TracingSettings
    multi_chart = True
    pod_security = "restricted"

    @classmethod
    def contract(cls, settings: Any, decl: Declarations) -> TracingContract:
        return TracingContract(
            collector=Pods(NAMESPACE, COLLECTOR_POD_LABELS),
            otlp_ports=OTLP_PORTS,
            otlp_endpoint=OTLP_ENDPOINT,
            mesh_config=mesh_config(),
            datasource_uid=JAEGER_DATASOURCE_UID,
        )

    def install(self) -> None:
        s: TracingSettings = self.settings
        volume = [self.badger_volume(s)] if s.storage == "badger" else []
        jaeger = self.helm(JAEGER, self.jaeger_values(s), release=JAEGER_RELEASE, depends_on=tuple(volume))
        self.helm(OPENTELEMETRY_COLLECTOR, self.collector_values(s), release=COLLECTOR_RELEASE, depends_on=(jaeger,))
        # No selector, in the root namespace: the mesh-wide default every proxy reads.
        self.manifest(
            "telemetry.istio.io/v1",
            "Telemetry",
            TELEMETRY_NAME,
            namespace=self.ctx.contracts.require(IstioContract).system_namespace,
            spec={"tracing": [{"providers": [{"name": MESH_PROVIDER}], "randomSamplingPercentage": s.sampling_percent}]},
        )
        self.grafana_datasource(jaeger_datasource(self.ctx.contracts.get(LoggingContract)))

    def badger_volume(self, s: TracingSettings) -> k8s.core.v1.PersistentVolumeClaim:
        # gp3 binds on first consumer: waiting for Bound here would wait for the pod that needs it.
        return k8s.core.v1.PersistentVolumeClaim(
            f"{self.name}-{BADGER_CLAIM}",
            metadata={"name": BADGER_CLAIM, "namespace": NAMESPACE, "annotations": {"pulumi.com/skipAwait": "true"}},
            spec={"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3", "resources": {"requests": {"storage": f"{s.storage_gib}Gi"}}},
            opts=pulumi.ResourceOptions.merge(self.k8s, pulumi.ResourceOptions(protect=self.ctx.decl.spec.cluster.protect)),
        )

    @staticmethod
    def jaeger_values(s: TracingSettings) -> dict[str, Any]:
        jaeger: dict[str, Any] = {
            # Jaeger never calls the Kubernetes API.
            "serviceAccount": {"automountServiceAccountToken": False},
            "securityContext": RESTRICTED_CONTAINER,
        }
        if s.storage == "badger":
            jaeger["extraVolumes"] = [{"name": "badger", "persistentVolumeClaim": {"claimName": BADGER_CLAIM}}]
            jaeger["extraVolumeMounts"] = [{"name": "badger", "mountPath": BADGER_PATH}]
        return {"jaeger": jaeger, "userconfig": jaeger_config(s)}

    @staticmethod
    def collector_values(s: TracingSettings) -> dict[str, Any]:
        values: dict[str, Any] = {
            "mode": "deployment",
            "fullnameOverride": COLLECTOR_RELEASE,
            "image": {"repository": OPENTELEMETRY_COLLECTOR_IMAGE},
            "replicaCount": s.collector_replicas,
            # The memory limiter and GOMEMLIMIT are derived from the memory limit.
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
            "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "securityContext": RESTRICTED_CONTAINER,
            "serviceAccount": {"automountServiceAccountToken": False},
            # OTLP only (the zipkin and jaeger receivers are the chart's defaults), plus its own metrics.
            "ports": {name: {"enabled": False} for name in ("jaeger-compact", "jaeger-thrift", "jaeger-grpc", "zipkin")} | {"metrics": {"enabled": True}},
            "config": {
                # null removes a chart default (values.yaml documents this for config).
                "receivers": {"jaeger": None, "zipkin": None, "prometheus": None},
                "exporters": {"debug": None, "otlp_grpc/jaeger": {"endpoint": JAEGER_OTLP, "tls": {"insecure": True}}},
                "service": {
                    "pipelines": {
                        "traces": {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"], "exporters": ["otlp_grpc/jaeger"]},
                        "metrics": None,
                        "logs": None,
                    }
                },
            },
        }
        if s.collector_replicas > 1:
            values["topologySpreadConstraints"] = [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": COLLECTOR_POD_LABELS},
                }
            ]
        return values

    def flows(self) -> list[net.Flow]:
        grafana = self.ctx.contracts.require(MonitoringContract).grafana
        return [
            *net.within(NAMESPACE, ports=(OTLP_GRPC_PORT,), reason="the collector exports spans to Jaeger"),
            net.flow(
                "otlp",
                "ingress",
                [net.Peer()],
                "spans from every proxy and service SDK (their own policies say who sends)",
                ports=OTLP_PORTS,
                selector=COLLECTOR_POD_LABELS,
            ),
            *self.scraped((COLLECTOR_METRICS_PORT,), selector=COLLECTOR_POD_LABELS),
            net.flow(
                "grafana",
                "ingress",
                [net.Peer.to(grafana)],
                "Grafana's Jaeger datasource",
                ports=(JAEGER_QUERY_PORT,),
                selector=JAEGER_POD_LABELS,
                both_ends=True,
            ),
        ]

    def outputs(self) -> dict[str, Any]:
        s: TracingSettings = self.settings
        return {
            "namespace": NAMESPACE,
            "serviceAccount": COLLECTOR_SERVICE,
            "otlpEndpoint": OTLP_ENDPOINT,
            "jaegerQueryUrl": JAEGER_QUERY_URL,
            "samplingPercent": s.sampling_percent,
            "storage": s.storage,
        }


def mesh_config() -> dict[str, Any]:
    """What istiod's meshConfig needs for the mesh to report to the collector (merged by the istio addon)."""
    return {
        "enableTracing": True,
        "extensionProviders": [{"name": MESH_PROVIDER, "opentelemetry": {"service": COLLECTOR_HOST, "port": OTLP_GRPC_PORT}}],
        "defaultProviders": {"tracing": [MESH_PROVIDER]},
    }


def jaeger_config(s: TracingSettings) -> dict[str, Any]:
    """Jaeger v2's own configuration (an OpenTelemetry Collector build): OTLP in, one store, the query UI."""
    if s.storage == "memory":
        store: dict[str, Any] = {"memory": {"max_traces": s.max_traces}}
    else:
        store = {
            "badger": {
                "directories": {"keys": f"{BADGER_PATH}/keys", "values": f"{BADGER_PATH}/values"},
                "ephemeral": False,
                "ttl": {"spans": f"{s.retention_hours}h"},
            }
        }
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["jaeger_storage_exporter"]}},
            "telemetry": {"resource": {"service.name": "jaeger"}},
        },
        "extensions": {
            # The chart's probes call /status on 13133.
            "healthcheckv2": {"use_v2": True, "http": {"endpoint": "0.0.0.0:13133"}},
            "jaeger_query": {"storage": {"traces": "primary"}},
            "jaeger_storage": {"backends": {"primary": store}},
        },
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC_PORT}"}, "http": {"endpoint": f"0.0.0.0:{OTLP_HTTP_PORT}"}}}},
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "primary"}},
    }


def jaeger_datasource(logs: LoggingContract | None) -> dict[str, Any]:
    """Grafana's Jaeger datasource; with Loki, each span links to its service's log lines that carry
    the trace id, around the span's time."""
    json_data: dict[str, Any] = {"nodeGraph": {"enabled": True}}
    if logs is not None:
        json_data["tracesToLogsV2"] = {
            "datasourceUid": logs.datasource_uid,
            "spanStartTimeShift": "-5m",
            "spanEndTimeShift": "5m",
            "tags": [{"key": "service.name", "value": logs.service_label}],
            "filterByTraceID": True,
            "filterBySpanID": False,
            "customQuery": False,
        }
    return {
        "name": "Jaeger",
        "uid": JAEGER_DATASOURCE_UID,
        "type": "jaeger",
        "access": "proxy",
        "url": JAEGER_QUERY_URL,
        "editable": False,
        "jsonData": json_data,
    }
