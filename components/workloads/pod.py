"""The pod a service runs as: restricted security, probes, resources, scheduling by tier."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

from components.scheduling import priority_class_name
from components.security import RESTRICTED_CONTAINER, restricted_pod
from components.spec import Service
from components.spec.placement import Placement

# Flagger renames the `app.kubernetes.io/name` selector of the primary Deployment it creates
# (<name>-primary), so everything that must match primary and canary pods alike selects on this.
SERVICE_LABEL = "platform.io/service"
RUN_AS = 65532  # an unprivileged UID that images built for non-root use by convention


def image_version(image: str) -> str:
    tag = image.rsplit("@", 1)[0].rsplit("/", 1)[-1]
    return tag.split(":", 1)[1] if ":" in tag else image.rsplit("@sha256:", 1)[-1][:12]


def labels(svc: Service, environment: str) -> dict[str, str]:
    """The labels every object of the service carries. No version here: an image bump must change
    only the workload (see versioned_labels), not every object of the service."""
    return {
        "app.kubernetes.io/name": svc.name,
        "app.kubernetes.io/instance": f"{svc.name}-{environment}",
        "app.kubernetes.io/part-of": svc.team,
        "app.kubernetes.io/managed-by": "pulumi",
        SERVICE_LABEL: svc.name,
        "platform.io/team": svc.team,
        "platform.io/tier": svc.tier,
        "platform.io/exposed": "true" if svc.expose else "false",
    }


def versioned_labels(svc: Service, environment: str) -> dict[str, str]:
    """The workload's and its pod template's labels: the common ones plus the running version,
    where Kubernetes' recommended labels put it."""
    return {**labels(svc, environment), "app.kubernetes.io/version": image_version(svc.image)[:63]}


def selector(svc: Service) -> dict[str, str]:
    return {"app.kubernetes.io/name": svc.name}


def config_checksum(svc: Service) -> str:
    """Changes whenever the ConfigMap or the secrets' sources change, so pods roll."""
    sources: dict = {"env": svc.env, "secrets": [s.model_dump() for s in svc.secrets]}
    if svc.sealed_secrets:
        # A new ciphertext is a new value: the pods must restart to read it from their env.
        sources["sealedSecrets"] = [s.model_dump() for s in svc.sealed_secrets]
    material = json.dumps(sources, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def tracing_env(svc: Service, otlp_endpoint: str) -> list[dict[str, str]]:
    """OpenTelemetry SDK settings (the spec's environment variables, read by every language's SDK):
    traces to the platform's collector. Metrics stay scraped by Prometheus and logs go through stdout
    to the log shipper, so the SDK exports neither (nothing arrives twice, nothing is refused)."""
    return [
        {"name": "OTEL_SERVICE_NAME", "value": svc.name},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": otlp_endpoint},
        {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/protobuf"},
        {"name": "OTEL_METRICS_EXPORTER", "value": "none"},
        {"name": "OTEL_LOGS_EXPORTER", "value": "none"},
    ]


def pod_template(svc: Service, environment: str, config_map: str, otlp_endpoint: Optional[str] = None, critical: Optional[Placement] = None) -> dict[str, Any]:
    probe = lambda path: {"httpGet": {"path": path, "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3}
    container: dict[str, Any] = {
        "name": svc.name,
        "image": svc.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": svc.port, "protocol": "TCP"}, {"name": "metrics", "containerPort": svc.metrics_port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": config_map}}],
        "env": [{"name": key, "valueFrom": {"secretKeyRef": {"name": secret.name, "key": key}}} for secret in svc.secrets for key in secret.keys]
        + [
            {"name": key, "valueFrom": {"secretKeyRef": {"name": sealed.name, "key": key}}}
            for sealed in svc.sealed_secrets
            for key in sorted(sealed.encrypted_data)
        ],
        "resources": {
            "requests": {"cpu": svc.resources.requests.cpu, "memory": svc.resources.requests.memory},
            "limits": {k: v for k, v in (("memory", svc.resources.limits.memory), ("cpu", svc.resources.limits.cpu)) if v},
        },
        "readinessProbe": probe(svc.probes.readiness_path or svc.probes.path),
        "livenessProbe": probe(svc.probes.path),
        "securityContext": RESTRICTED_CONTAINER,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if otlp_endpoint:
        container["env"] = tracing_env(svc, otlp_endpoint) + container["env"]
    if not container["env"]:
        del container["env"]
    if svc.probes.startup_seconds:
        container["startupProbe"] = {**probe(svc.probes.path), "failureThreshold": -(-svc.probes.startup_seconds // 10)}
    spread = lambda key, when: {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": when, "labelSelector": {"matchLabels": {SERVICE_LABEL: svc.name}}}
    pod: dict[str, Any] = {
        "serviceAccountName": svc.name,
        "automountServiceAccountToken": svc.service_account_token,
        "priorityClassName": priority_class_name(svc.tier),
        "securityContext": restricted_pod(RUN_AS),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
        # Zones must stay balanced (an AZ outage takes a bounded share); hosts are best effort.
        "topologySpreadConstraints": [spread("topology.kubernetes.io/zone", "DoNotSchedule"), spread("kubernetes.io/hostname", "ScheduleAnyway")],
        "terminationGracePeriodSeconds": 30,
    }
    if svc.tier == "critical":
        # The loader refuses a stack with critical services and no pool for them.
        if critical is None:
            raise ValueError(f"service {svc.name} is tier critical but the stack has no service-tier: critical node pool")
        pod["nodeSelector"] = dict(critical.node_selector)
        if critical.tolerations:
            pod["tolerations"] = [dict(t) for t in critical.tolerations]
    return {
        "metadata": {
            "labels": versioned_labels(svc, environment),
            "annotations": {
                "platform.io/config-checksum": config_checksum(svc),
                # Istio merges the app's metrics into the sidecar's; the metrics port stays plain-text for Prometheus.
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(svc.metrics_port),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": pod,
    }
