"""What a service's workload is given by the platform: the stack, the addons' peers and settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional
import pulumi
from components.contracts import MonitoringContract, SealedSecretsContract
from components.spec.placement import Placement
from components.spec.alerting import AlertingSpec
from . import traffic


@dataclass(frozen=True)
class Mesh:
    """What the platform's addons offer this stack's services (None where the addon is off)."""

    environment: str
    cluster_name: str
    region: str
    peers: traffic.Platform
    gateway: Optional[str]
    loadtester_url: Optional[str]
    secret_store: Optional[str]
    # Prometheus and Grafana, when the prometheus addon is on: each service's monitors, rules, dashboard.
    monitoring: Optional[MonitoringContract]
    mesh: bool
    # The AWS account, looked up once for every service's queue and role ARNs.
    account_id: pulumi.Input[str] = ""
    # Whether the VPA recommender runs; without it a VerticalPodAutoscaler has no CRD to exist in.
    vpa: bool = False
    # The tracing collector's OTLP endpoint, given to every service's OpenTelemetry SDK.
    otlp_endpoint: Optional[str] = None
    # The SealedSecret resource type, when the sealed-secrets addon is on (the stack model requires it
    # for services that declare sealed secrets).
    sealed_secrets: Optional[SealedSecretsContract] = None
    # Declared egress: the VPC's CIDR (interface endpoints), the AWS prefix lists' CIDRs of gateway
    # endpoints by API, and the egress gateway's pods (namespace, labels, port) when Istio is on.
    vpc_cidr: str = ""
    prefix_lists: Optional[dict[str, Any]] = None
    egress_gateway: Optional[tuple[str, dict[str, str], int]] = None
    # Where critical-tier pods run: the nodeSelector and tolerations of the stack's critical pool.
    critical: Optional[Placement] = None
    # The platform-owned permissions boundary every workload role carries.
    boundary_arn: Optional[pulumi.Input[str]] = None
    # Runbook links and the platform team, for the service's SLO alerts (set wherever monitoring is).
    alerting: Optional[AlertingSpec] = None
