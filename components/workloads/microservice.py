"""One declared service as a complete workload.

Replica ownership: the Deployment sets `replicas` only when nothing else owns the count, that is
a fixed size (replicas.min == replicas.max), no queue scaling and no canary. Otherwise the HPA,
the KEDA ScaledObject or Flagger owns it, and a `pulumi up` must not reset it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws import iam
from components.contracts import MonitoringContract
from components.monitoring import canary as canary_alerts, forecast, outcomes, rules, slo
from components.spec import Service, names
from components.spec.ownership import TEAM_TAG, owned_by_tag

from . import dashboard, egress, scaling, traffic
from .delivery import SKIP_AWAIT, canary_spec, disruption_budgets
from .pod import SERVICE_LABEL, labels, pod_template, selector, versioned_labels
from .mesh import Mesh  # noqa: F401 (re-exported)

METRICS_LABEL = {"platform.io/metrics": "true"}


class Microservice(pulumi.ComponentResource):
    deployment: k8s.apps.v1.Deployment
    canary: bool
    rollback_seconds: Optional[int]
    promotion_seconds: Optional[int]

    def __init__(
        self,
        svc: Service,
        graph: traffic.Graph,
        mesh: Mesh,
        provider: k8s.Provider,
        namespace: Optional[pulumi.Resource],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("platform:workloads:Microservice", svc.name, None, opts)
        self.svc, self.mesh_info, self.ns = svc, mesh, svc.team
        # In a team stack the namespace is the platform stack's, which deploys first (no resource here to wait on).
        self._opts = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[namespace] if namespace else [])
        # The stack model guarantees Flagger is enabled wherever a canary is.
        self.canary = canary = svc.canary_enabled(mesh.environment)
        meta = labels(svc, mesh.environment)

        self.obj(k8s.core.v1.ServiceAccount, "sa", automount_service_account_token=svc.service_account_token)
        if svc.has_aws_role:
            self._aws_identity(svc, mesh)
        config = self.obj(k8s.core.v1.ConfigMap, "config", name=names.config_map(svc.name), data=dict(sorted(svc.env.items())))
        secrets = [self._external_secret(s.name, s.vault_path, s.keys) for s in svc.secrets]
        secrets += [self._sealed_secret(s.name, s.encrypted_data) for s in svc.sealed_secrets]

        autoscaler = self._autoscaler(svc, mesh)
        fixed = autoscaler is None and not canary
        spec: dict[str, Any] = {
            "selector": {"matchLabels": selector(svc)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "revisionHistoryLimit": 5,
            "template": pod_template(svc, mesh.environment, names.config_map(svc.name), mesh.otlp_endpoint, mesh.critical),
        }
        if fixed:
            spec["replicas"] = svc.replicas.min
        annotations = SKIP_AWAIT if canary else {}
        self.deployment = self.obj(
            k8s.apps.v1.Deployment,
            "deployment",
            spec=spec,
            annotations=annotations,
            depends_on=[config, *secrets],
            extra_labels=versioned_labels(svc, mesh.environment),
        )

        if not canary:
            # Flagger generates the Services of a canary target; anything else gets its own.
            self.obj(
                k8s.core.v1.Service,
                "service",
                spec={"selector": {SERVICE_LABEL: svc.name}, "ports": [{"name": "http", "port": svc.port, "targetPort": "http", "protocol": "TCP"}]},
            )
        if autoscaler is not None and autoscaler["kind"] == "HorizontalPodAutoscaler":
            self.obj(k8s.autoscaling.v2.HorizontalPodAutoscaler, "hpa", spec=scaling.hpa_spec(svc), annotations=scaling.HPA_ANNOTATIONS)
        if mesh.vpa:
            self.custom(
                "autoscaling.k8s.io/v1",
                "VerticalPodAutoscaler",
                "vpa",
                {
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": svc.name},
                    # Recommendations only: applying them would fight the HPA over the same pods.
                    "updatePolicy": {"updateMode": "Off"},
                },
            )
        for suffix, name, budget in disruption_budgets(svc, canary):
            self.obj(k8s.policy.v1.PodDisruptionBudget, suffix, name=name, spec=budget)

        self.obj(k8s.networking.v1.NetworkPolicy, "netpol", spec=traffic.network_policy(svc, graph, mesh.peers, canary))
        if mesh.peers.collector:
            self.obj(
                k8s.networking.v1.NetworkPolicy,
                "netpol-telemetry",
                name=names.telemetry_policy(svc.name),
                spec=traffic.telemetry_egress(svc, mesh.peers.collector),
            )
        beyond = egress.network_policy(svc, mesh.vpc_cidr, mesh.prefix_lists or {}, mesh.egress_gateway)
        if beyond is not None:
            self.obj(k8s.networking.v1.NetworkPolicy, "netpol-egress", name=names.egress_policy(svc.name), spec=beyond)
        if mesh.mesh:
            for i, (cidr, port) in enumerate(svc.private_networks):
                self.custom(
                    "networking.istio.io/v1",
                    "ServiceEntry",
                    f"egress-{i}",
                    egress.private_service_entry(svc, cidr, port),
                    name=f"{svc.name}-egress-{egress.slug(cidr, port)}",
                )
            self.custom("security.istio.io/v1", "AuthorizationPolicy", "authz", traffic.authorization_policy(svc, graph, mesh.peers, canary))
            self.custom("security.istio.io/v1", "PeerAuthentication", "mtls", traffic.metrics_port_mtls(svc))
        if canary:
            if mesh.loadtester_url is None:
                raise ValueError(f"service {svc.name} has a canary but the flagger addon is off")
            self.custom(
                "flagger.app/v1beta1", "Canary", "canary", canary_spec(svc, autoscaler, mesh.loadtester_url, mesh.gateway), depends_on=[self.deployment]
            )
        elif svc.expose and mesh.gateway:
            self.custom("networking.istio.io/v1", "VirtualService", "route", traffic.virtual_service(svc, mesh.gateway))
        if mesh.monitoring is not None:
            self._observability(svc, mesh.monitoring)
        self.rollback_seconds = svc.canary.rollback_seconds if canary else None
        self.promotion_seconds = svc.canary.promotion_seconds if canary else None
        self.register_outputs(
            {"namespace": svc.team, "canary": canary, "rollbackSeconds": self.rollback_seconds, "promotionSeconds": self.promotion_seconds, "labels": meta}
        )

    # -- building blocks --------------------------------------------------------------------------
    def obj(
        self,
        cls,
        suffix: str,
        name: Optional[str] = None,
        annotations: Optional[dict] = None,
        depends_on: Sequence[pulumi.Resource] = (),
        extra_labels: Optional[dict] = None,
        **fields: Any,
    ):
        metadata = {"name": name or self.svc.name, "namespace": self.ns, "labels": {**labels(self.svc, self.mesh_info.environment), **(extra_labels or {})}}
        if annotations:
            metadata["annotations"] = annotations
        opts = pulumi.ResourceOptions.merge(self._opts, pulumi.ResourceOptions(depends_on=list(depends_on)))
        return cls(f"{self.svc.name}-{suffix}", metadata=metadata, opts=opts, **fields)

    def custom(self, api_version: str, kind: str, suffix: str, spec: dict[str, Any], name: Optional[str] = None, depends_on: Sequence[pulumi.Resource] = ()):
        return self.obj(k8s.apiextensions.CustomResource, suffix, name=name, depends_on=depends_on, api_version=api_version, kind=kind, spec=spec)

    def _external_secret(self, name: str, vault_path: str, keys: list[str]):
        # The value never passes through Pulumi: External Secrets copies it from Vault into the cluster.
        return self.custom(
            "external-secrets.io/v1",
            "ExternalSecret",
            f"secret-{name}",
            name=name,
            spec={
                "refreshInterval": "1h",
                # The store of the service's own namespace: it can read only the team's Vault prefix.
                "secretStoreRef": {"kind": "SecretStore", "name": self.mesh_info.secret_store},
                "target": {"name": name, "creationPolicy": "Owner"},
                "data": [{"secretKey": key, "remoteRef": {"key": vault_path, "property": key}} for key in keys],
            },
        )

    def _sealed_secret(self, name: str, encrypted_data: dict[str, str]):
        # Ciphertext only: the sealed-secrets controller unseals it in the cluster into the Secret `name`.
        sealed = self.mesh_info.sealed_secrets
        if sealed is None:
            raise ValueError(f"service {self.svc.name} declares sealedSecrets but the sealed-secrets addon is off")
        meta = labels(self.svc, self.mesh_info.environment)
        return self.custom(
            sealed.api_version,
            sealed.kind,
            f"sealed-{name}",
            name=name,
            spec={
                "encryptedData": dict(sorted(encrypted_data.items())),
                "template": {"metadata": {"name": name, "namespace": self.ns, "labels": meta}, "type": "Opaque"},
            },
        )

    def _autoscaler(self, svc: Service, mesh: Mesh) -> Optional[dict[str, Any]]:
        """Flagger's autoscalerRef to what owns the replica count; None for a fixed size (components/workloads/scaling.py)."""
        if svc.scaling.sqs is None and svc.scaling.predictive is None:
            return None if svc.replicas.min == svc.replicas.max else scaling.autoscaler_ref(svc, "HorizontalPodAutoscaler")
        sqs, depends_on = None, []
        if svc.scaling.sqs:
            # The KEDA operator reads queue depth with its own Pod Identity role.
            spec = {"podIdentity": {"provider": "aws", "identityOwner": "keda"}}
            auth = self.custom(scaling.KEDA_API, "TriggerAuthentication", "keda-auth", name=names.keda_auth(svc.name), spec=spec)
            sqs = scaling.sqs_trigger(svc, scaling.queue_url(mesh.region, mesh.account_id, svc.scaling.sqs.queue_name), mesh.region, names.keda_auth(svc.name))
            depends_on.append(auth)
        prometheus_url = mesh.monitoring.prometheus_url if mesh.monitoring else None
        self.custom(scaling.KEDA_API, "ScaledObject", "scaledobject", depends_on=depends_on, spec=scaling.scaled_object_spec(svc, sqs, prometheus_url))
        return scaling.autoscaler_ref(svc, "ScaledObject")

    def _aws_identity(self, svc: Service, mesh: Mesh) -> None:
        # A `tagged` grant holds only on resources tagged with the team: the tag is how the team owns them.
        statements: list[dict[str, Any]] = [
            {"Effect": "Allow", "Action": p.actions, "Resource": p.resources, **({"Condition": owned_by_tag(svc.team)} if p.tagged else {})}
            for p in svc.aws_permissions
        ]
        if svc.scaling.sqs:
            queue = pulumi.Output.concat(f"arn:aws:sqs:{mesh.region}:", mesh.account_id, f":{svc.scaling.sqs.queue_name}")
            statements.append(
                {
                    "Effect": "Allow",
                    "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
                    "Resource": [queue],
                }
            )
        # Workloads creates the boundary whenever a service has an AWS identity.
        role = iam.pod_identity_role(
            names.workload_role(svc.name),
            self,
            inline=statements,
            description=f"{svc.team}/{svc.name} workload identity",
            permissions_boundary=mesh.boundary_arn,
            conditions=iam.pod_identity_conditions(mesh.cluster_name, svc.team, svc.name),
            # The team tag makes the role the team's: its deploy role may manage only roles tagged so (components/aws/team_deploy.py).
            tags={TEAM_TAG: svc.team},
        )
        aws.eks.PodIdentityAssociation(
            f"{svc.name}-identity",
            cluster_name=mesh.cluster_name,
            namespace=svc.team,
            service_account=svc.name,
            role_arn=role.arn,
            tags={TEAM_TAG: svc.team},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _observability(self, svc: Service, monitoring: MonitoringContract) -> None:
        self.obj(
            k8s.core.v1.ConfigMap,
            "dashboard",
            name=names.dashboard_config_map(svc.name),
            extra_labels=dict(monitoring.dashboard_label),
            data={f"{svc.team}-{svc.name}.json": json.dumps(dashboard.dashboard(svc, monitoring.prometheus_datasource_uid), indent=1)},
        )
        # A metrics Service of our own: Flagger's generated Services select only primary or canary pods.
        metrics = self.obj(
            k8s.core.v1.Service,
            "metrics",
            name=names.metrics_service(svc.name),
            extra_labels=METRICS_LABEL,
            spec={"selector": {SERVICE_LABEL: svc.name}, "ports": [{"name": "metrics", "port": svc.metrics_port, "targetPort": "metrics", "protocol": "TCP"}]},
        )
        self.custom(
            "monitoring.coreos.com/v1",
            "ServiceMonitor",
            "servicemonitor",
            depends_on=(metrics,),
            spec={
                "selector": {"matchLabels": {SERVICE_LABEL: svc.name, **METRICS_LABEL}},
                "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
            },
        )
        alerting = self.mesh_info.alerting
        assert alerting is not None  # the stack model requires it with the prometheus addon
        groups = slo.rule_groups(svc, alerting)
        if svc.tier == "critical":
            groups.append({"name": f"{svc.name}-crash-loop", "rules": [rules.crash_loop_alert(svc, alerting)]})
        if self.canary:
            groups.append(outcomes.canary_analysis_rules(svc))
            groups += canary_alerts.rule_groups(svc, alerting)
        if svc.scaling.predictive:
            groups += forecast.rule_groups(svc, alerting)
        self.custom("monitoring.coreos.com/v1", "PrometheusRule", "slo", spec={"groups": groups})
