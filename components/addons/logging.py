"""Logs: Loki, and an OpenTelemetry Collector on every node shipping the containers' logs to it.

Loki's shape is a per-stack declaration (`mode`):
- `single-binary` (dev): one StatefulSet holding everything on its gp3 volume (filesystem storage).
- `simple-scalable` (prod): read, write and backend targets (replication factor 3) storing chunks
  and index in an S3 bucket this addon creates: private, TLS-only, SSE-S3 encrypted, versioned
  (old versions expire after a week: the compactor rewrites index files constantly). Loki reaches it
  through EKS Pod Identity: a role allowed on that bucket alone, bound to Loki's service account.
Retention (`retentionDays`) is applied by Loki's compactor in both modes. Multi-tenancy is off:
everything is one tenant, and access control is Grafana's.

The log shipper is the OpenTelemetry Collector chart again, in daemonset mode with its
`logsCollection` preset: it tails /var/log/pods on each node, parses the container runtime's
format, adds Kubernetes attributes (namespace, pod, deployment, service.name), and exports over
OTLP/HTTP to Loki's native OTLP endpoint (Loki 3: `/otlp/v1/logs`, which the gateway routes to the
distributors). Loki turns service.name, k8s.namespace.name and the other standard resource
attributes into index labels (`service_name`, `k8s_namespace_name`, ...). Read offsets are kept on
the node (`storeCheckpoints`), so a restarted agent neither loses nor repeats lines.

Pod Security: the agent reads the nodes' log files through hostPath volumes and, because kubelet
writes them 0640 root, as UID 0 (with every capability dropped and a read-only root filesystem).
That is the `privileged` level, so the agent has a namespace of its own (`logging-agent`), which holds
nothing else; Loki's namespace enforces `baseline` (its pods use no host namespace, path or port and
no added capability; the chart's pod contexts set no seccompProfile, which `restricted` requires).

Grafana gets a Loki datasource (ConfigMap for its sidecar) whose trace ids link to Jaeger when the
stack also enables tracing.

helm.v3.Release for both: the release waits for Loki's StatefulSets, and the agent starts only
once Loki accepts writes.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import pulumi
import pulumi_aws as aws
from pydantic import model_validator

from components.aws import iam, s3
from components.contracts import LoggingContract, MonitoringContract, TracingContract
from components.monitoring.scrape import Metrics
from components.security import RESTRICTED_CONTAINER
from components.spec import Declarations
from components.spec.base import Spec, field
from components.versions import LOKI, OPENTELEMETRY_COLLECTOR, OPENTELEMETRY_COLLECTOR_IMAGE

from . import flows as net
from .base import Addon

NAMESPACE = "logging"
# The node agents alone: the one namespace of this addon that must admit hostPath volumes and UID 0.
AGENT_NAMESPACE = "logging-agent"
LOKI_RELEASE = "loki"
# Set explicitly: the chart's default follows the fullname, and the Pod Identity binding must not move.
SERVICE_ACCOUNT = "loki"
# The chart's gateway (nginx) Service is <fullname>-gateway on port 80; fullname is the release.
LOKI_GATEWAY = f"{LOKI_RELEASE}-gateway"
LOKI_URL = f"http://{LOKI_GATEWAY}.{NAMESPACE}.svc.cluster.local"
# The OTLP/HTTP exporter appends /v1/logs.
LOKI_OTLP_ENDPOINT = f"{LOKI_URL}/otlp"
LOKI_DATASOURCE_UID = "loki"
# The gateway's nginx listens on 8080 behind Service port 80; Loki serves HTTP (and its metrics) on 3100.
LOKI_GATEWAY_PORT = 8080
# The gateway pods' labels (the chart's selector labels plus its component).
LOKI_GATEWAY_PODS = {"app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": LOKI_RELEASE, "app.kubernetes.io/component": "gateway"}
LOKI_HTTP_PORT = 3100
AGENT_METRICS_PORT = 8888
# The index label Loki derives from the OTLP resource attribute service.name.
LOKI_SERVICE_LABEL = "service_name"
AGENT_RELEASE = "otel-agent"
# A trace id in a log line: JSON ("trace_id":"..."), logfmt (traceId=...) and the like.
TRACE_ID_IN_LINE = r'(?i)trace_?id"?\s*[=:]\s*"?([0-9a-f]{32})'
S3_OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]


class LoggingSettings(Spec):
    mode: Literal["single-binary", "simple-scalable"] = field(
        "Loki's deployment: single-binary (one pod, filesystem storage) or simple-scalable (read/write/backend, S3 storage).", default="single-binary"
    )
    retention_days: int = field("How long Loki keeps logs, in days.", default=7, ge=1, le=3650)
    replicas: int = field("Replicas of each simple-scalable target (read, write, backend); Loki writes every stream to 3 of them.", default=3, ge=3, le=20)
    storage_gib: int = field(
        "Volume per Loki pod that keeps data on disk (all of it in single-binary; WAL and index caches otherwise), in GiB.", default=10, ge=1
    )
    chunks_cache_mib: int = field("Memory of the chunks cache (memcached) in simple-scalable mode, in MiB.", default=1024, ge=256)
    noncurrent_version_days: int = field("Days an overwritten or deleted object of the S3 bucket is kept (versioning), for recovery.", default=7, ge=1)
    bucket_name: Optional[str] = field(
        "The S3 bucket of simple-scalable mode (names are global across AWS); default <cluster>-loki-<region>.",
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
    )

    @property
    def scalable(self) -> bool:
        return self.mode == "simple-scalable"

    @model_validator(mode="after")
    def _replicas_only_when_scalable(self) -> "LoggingSettings":
        if not self.scalable and "replicas" in self.model_fields_set:
            raise ValueError("replicas applies to mode simple-scalable only; single-binary runs one Loki pod")
        return self


class Logging(Addon):
    name = "logging"
    namespace = NAMESPACE
    # Loki's components and the node agents (a collector per node).
    metrics = Metrics(
        charts={
            LOKI.name: {"monitoring": {"serviceMonitor": {"enabled": True, "metricsInstance": {"enabled": False}}}},
            OPENTELEMETRY_COLLECTOR.name: {"podMonitor": {"enabled": True}},
        }
    )
    # Grafana (the datasource) and the ServiceMonitor/PodMonitor CRDs.
    requires = ("prometheus",)
    Settings = LoggingSettings
    multi_chart = True
    extra_namespaces = (AGENT_NAMESPACE,)
    pod_security = "baseline"
    pod_security_reason = "Loki's chart sets no seccompProfile in its pod security contexts; the node agents (hostPath, UID 0) run in logging-agent"

    @classmethod
    def contract(cls, settings: Any, decl: Declarations) -> LoggingContract:
        return LoggingContract(datasource_uid=LOKI_DATASOURCE_UID, service_label=LOKI_SERVICE_LABEL)

    def install(self) -> None:
        s: LoggingSettings = self.settings
        self.role: Optional[aws.iam.Role] = None
        # A name known before the bucket exists: Loki's config is plain chart values.
        self.bucket_name = (s.bucket_name or f"{self.ctx.cluster_name}-loki-{self.ctx.region}") if s.scalable else None
        storage = self.object_storage(s, self.bucket_name) if self.bucket_name else ()
        loki = self.helm(LOKI, self.loki_values(s, self.bucket_name), release=LOKI_RELEASE, depends_on=storage)
        # Privileged for the agents alone: they read the nodes' /var/log/pods through hostPath volumes, as UID 0
        # (kubelet writes the files 0640 root).
        agents = self.create_namespace(AGENT_NAMESPACE, level="privileged")
        self.helm(OPENTELEMETRY_COLLECTOR, agent_values(), release=AGENT_RELEASE, namespace=AGENT_NAMESPACE, depends_on=(loki, agents))
        self.grafana_datasource(loki_datasource(self.ctx.contracts.get(TracingContract)))

    def object_storage(self, s: LoggingSettings, name: str) -> tuple[pulumi.Resource, ...]:
        """The bucket, its guard rails, and Loki's Pod Identity role on it: what the pods need on first start."""
        child = pulumi.ResourceOptions(parent=self)
        # SSE-S3: only Loki's role can read the bucket, so a KMS key would add cost, not isolation. Loki
        # deletes chunks by its own retention; the lifecycle only clears old versions and failed uploads.
        housekeeping = {
            "id": "expire-old-versions",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "noncurrent_version_expiration": {"noncurrent_days": s.noncurrent_version_days},
            "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
        }
        self.role = iam.pod_identity_role(f"{self.name}-loki", self, description="Loki: chunks and index in its S3 bucket (Pod Identity)")
        # Only Loki's role (and the stack's administrators) may touch the data, whatever IAM grants.
        readers: list[pulumi.Input[str]] = [self.role.arn, *self.ctx.decl.spec.cluster.access.admins]
        spec = self.ctx.decl.spec
        made = s3.guarded_bucket(
            f"{self.name}-loki", name, self, spec.cluster.protect, s3.SSE_S3, [housekeeping], policy_resource=f"{self.name}-loki-tls-only", principals=readers
        )
        bucket_arn, objects_arn = made.arn, f"{made.arn}/*"
        guards = made.guards
        policy = aws.iam.RolePolicy(
            f"{self.name}-loki-s3",
            role=self.role.id,
            opts=child,
            policy=iam.document(
                [
                    {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": bucket_arn},
                    {"Effect": "Allow", "Action": S3_OBJECT_ACTIONS, "Resource": objects_arn},
                ]
            ),
        )
        identity = aws.eks.PodIdentityAssociation(
            f"{self.name}-loki", cluster_name=self.ctx.cluster_name, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, role_arn=self.role.arn, opts=child
        )
        return (*guards, policy, identity)

    def flows(self) -> list[net.Flow]:
        grafana = self.ctx.contracts.require(MonitoringContract).grafana
        found = [
            net.api_server(self.vpc_cidr),
            *net.within(NAMESPACE, reason="Loki's targets talk to each other (HTTP, gRPC, memberlist)"),
            *self.scraped((LOKI_HTTP_PORT,)),
            # The node agents: the API (pod attributes), Loki's gateway, scraped on their metrics port.
            net.api_server(self.vpc_cidr, namespace=AGENT_NAMESPACE),
            net.flow(
                "loki",
                "egress",
                [net.Peer.of(NAMESPACE, LOKI_GATEWAY_PODS)],
                "the agents write logs to Loki's gateway (OTLP/HTTP)",
                ports=(LOKI_GATEWAY_PORT,),
                namespace=AGENT_NAMESPACE,
                both_ends=True,
            ),
            *self.scraped((AGENT_METRICS_PORT,), namespace=AGENT_NAMESPACE),
            net.flow(
                "grafana", "ingress", [net.Peer.to(grafana)], "Grafana's Loki datasource, through the gateway", ports=(LOKI_GATEWAY_PORT,), both_ends=True
            ),
        ]
        if self.settings.scalable:
            found += [net.cloud("chunks and index in S3"), net.pod_identity()]
        return found

    def loki_values(self, s: LoggingSettings, bucket: Optional[str]) -> dict[str, Any]:
        store = "s3" if s.scalable else "filesystem"
        targets = s.replicas if s.scalable else 0
        disk = {"storageClass": "gp3", "size": f"{s.storage_gib}Gi"}
        loki: dict[str, Any] = {
            "auth_enabled": False,
            "commonConfig": {"replication_factor": 3 if s.scalable else 1},
            "schemaConfig": {
                "configs": [
                    {"from": "2024-04-01", "store": "tsdb", "object_store": store, "schema": "v13", "index": {"prefix": "loki_index_", "period": "24h"}}
                ]
            },
            "storage": {"type": "s3", "s3": {"region": self.ctx.region}} if s.scalable else {"type": "filesystem"},
            # OTLP attributes that are not index labels are kept as structured metadata.
            "limits_config": {"retention_period": f"{s.retention_days * 24}h", "allow_structured_metadata": True},
            "compactor": {"retention_enabled": True, "delete_request_store": store},
        }
        if bucket is not None:
            # The chart takes the chunks bucket from here (or from storage.bucketNames, a key its
            # values.yaml only shows in a comment).
            loki["storage_config"] = {"aws": {"bucketnames": bucket, "region": self.ctx.region}}
        return {
            "deploymentMode": "SimpleScalable" if s.scalable else "SingleBinary",
            "serviceAccount": {"name": SERVICE_ACCOUNT, "automountServiceAccountToken": False},
            "loki": loki,
            "singleBinary": {"replicas": 0 if s.scalable else 1, "persistence": disk},
            "write": {"replicas": targets, "persistence": disk},
            "read": {"replicas": targets},
            "backend": {"replicas": targets, "persistence": disk},
            "gateway": {"replicas": 2 if s.scalable else 1},
            # memcached: worth it with several readers; the chart's default size is 8 GiB.
            "chunksCache": {"enabled": s.scalable, "allocatedMemory": s.chunks_cache_mib},
            "resultsCache": {"enabled": s.scalable},
            # Alerting stays in Prometheus; the canary and its helm test are a DaemonSet more.
            "ruler": {"enabled": False},
            "lokiCanary": {"enabled": False},
            "test": {"enabled": False},
        }

    def outputs(self) -> dict[str, Any]:
        s: LoggingSettings = self.settings
        out: dict[str, Any] = {"namespace": NAMESPACE, "serviceAccount": SERVICE_ACCOUNT, "lokiUrl": LOKI_URL, "mode": s.mode}
        if self.role is not None:
            out |= {"iamRoleArn": self.role.arn, "bucket": self.bucket_name}
        return out


LOGS_PIPELINE = {"receivers": [], "processors": ["memory_limiter", "batch"], "exporters": ["otlp_http/loki"]}


def agent_values() -> dict[str, Any]:
    """The node agent: container log files in, Loki's OTLP endpoint out, nothing else."""
    return {
        "mode": "daemonset",
        "fullnameOverride": AGENT_RELEASE,
        "image": {"repository": OPENTELEMETRY_COLLECTOR_IMAGE},
        "presets": {"logsCollection": {"enabled": True, "storeCheckpoints": True}, "kubernetesAttributes": {"enabled": True}},
        # Root only to read kubelet's 0640 log files and write the checkpoints under /var/lib/otelcol.
        "securityContext": {**RESTRICTED_CONTAINER, "runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0},
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        # Every node, tainted ones included; evicted last, since its loss is silent.
        "tolerations": [{"operator": "Exists"}],
        "priorityClassName": "system-node-critical",
        # No receivers on the network: no host ports on the nodes.
        "ports": {name: {"enabled": False} for name in ("otlp", "otlp-http", "jaeger-compact", "jaeger-thrift", "jaeger-grpc", "zipkin")}
        | {"metrics": {"enabled": True}},
        "config": {
            # null removes a chart default; the preset adds the file log receiver to the logs pipeline.
            "receivers": {"otlp": None, "jaeger": None, "zipkin": None, "prometheus": None},
            "exporters": {"debug": None, "otlp_http/loki": {"endpoint": LOKI_OTLP_ENDPOINT}},
            "service": {"pipelines": {"logs": LOGS_PIPELINE, "metrics": None, "traces": None}},
        },
    }


def loki_datasource(traces: TracingContract | None) -> dict[str, Any]:
    """Grafana's Loki datasource; with tracing, a trace id (OTLP structured metadata, or in the line)
    becomes a link to the trace in Jaeger."""
    json_data: dict[str, Any] = {"maxLines": 1000}
    if traces is not None:
        link = {"datasourceUid": traces.datasource_uid, "url": "$${__value.raw}", "urlDisplayLabel": "View trace"}
        json_data["derivedFields"] = [
            {"name": "trace_id", "matcherType": "label", "matcherRegex": "trace_id", **link},
            {"name": "TraceID", "matcherType": "regex", "matcherRegex": TRACE_ID_IN_LINE, **link},
        ]
    return {"name": "Loki", "uid": LOKI_DATASOURCE_UID, "type": "loki", "access": "proxy", "url": LOKI_URL, "editable": False, "jsonData": json_data}
