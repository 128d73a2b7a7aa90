"""KEDA: event-driven autoscaling, for workers that scale on a queue (`scaling.sqs` in a service) and
for predictive scaling (`scaling.predictive`: Prometheus triggers on the service's forecast, which
the operator queries over the flow to Prometheus it is given then).

Enable it in a stack that runs such a service. The operator reads queue depth with its own AWS
identity (Pod Identity on OPERATOR_SERVICE_ACCOUNT), allowed sqs:GetQueueAttributes on exactly the
queues the stack's services declare, so a ScaledObject's TriggerAuthentication needs no
credentials: TRIGGER_AUTHENTICATION_SPEC (`podIdentity.provider: aws`, identity owner keda).

helm.v3.Release: the chart installs the CRDs, an admission webhook and the external metrics API
service; the release waits for them before any ScaledObject is created.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws import iam
from components.contracts import MonitoringContract
from components.monitoring.scrape import Metrics
from components.spec import Service
from components.versions import KEDA

from . import flows as net
from .base import Addon

NAMESPACE = "keda"
RELEASE = "keda"
OPERATOR_SERVICE_ACCOUNT = "keda-operator"
OPERATOR_POD_LABELS = {"app": "keda-operator"}
# The operator's, the metrics API server's and the webhooks' metrics port (the chart's prometheus.<component>.port).
METRICS_PORT = 8080
# The admission webhooks and the external metrics API server (an APIService), both called by the API server.
CONTROL_PLANE_PORTS = (9443, 6443)
# The spec of a TriggerAuthentication that makes a scaler use the operator's Pod Identity role.
TRIGGER_AUTHENTICATION_SPEC = {"podIdentity": {"provider": "aws", "identityOwner": "keda"}}


class Keda(Addon):
    name = "keda"
    namespace = NAMESPACE
    # Scaler errors and latencies of the operator, the metrics API server and the webhooks.
    metrics = Metrics(
        charts={KEDA.name: {"prometheus": {c: {"enabled": True, "serviceMonitor": {"enabled": True}} for c in ("operator", "metricServer", "webhooks")}}}
    )
    # The chart's pods drop all capabilities, run as non-root with RuntimeDefault seccomp.
    pod_security = "restricted"

    def install(self) -> None:
        invoke = pulumi.InvokeOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        region = aws.get_region_output(opts=invoke).region
        self.queues = sqs_queues(self.ctx.decl.services)
        self.role = iam.pod_identity_role(
            f"{self.name}-operator", self, description="KEDA operator: reads the depth of the services' SQS queues (Pod Identity)"
        )
        ready: list[pulumi.Resource] = [
            aws.eks.PodIdentityAssociation(
                f"{self.name}-operator",
                cluster_name=self.ctx.cluster_name,
                namespace=NAMESPACE,
                service_account=OPERATOR_SERVICE_ACCOUNT,
                role_arn=self.role.arn,
                opts=pulumi.ResourceOptions(parent=self),
            )
        ]
        if self.queues:
            arns = [pulumi.Output.format("arn:{0}:sqs:{1}:{2}:{3}", iam.PARTITION, region, account, queue) for queue in self.queues]
            ready.append(
                aws.iam.RolePolicy(
                    f"{self.name}-operator-sqs",
                    role=self.role.id,
                    policy=iam.document([{"Effect": "Allow", "Action": ["sqs:GetQueueAttributes"], "Resource": arns}]),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        # The operator reads its credentials when it starts; the association must exist by then.
        self.release = self.helm(
            KEDA,
            {"clusterName": self.ctx.cluster_name, "serviceAccount": {"operator": {"create": True, "name": OPERATOR_SERVICE_ACCOUNT}}},
            release=RELEASE,
            depends_on=tuple(ready),
        )

    def flows(self) -> list[net.Flow]:
        found = [
            net.api_server(self.vpc_cidr),
            *net.within(NAMESPACE, reason="the metrics API server asks the operator for trigger values (gRPC)"),
            net.webhook("control-plane", self.vpc_cidr, CONTROL_PLANE_PORTS, "admission webhooks and the external metrics API"),
            net.cloud("queue depth from SQS", selector=OPERATOR_POD_LABELS),
            net.pod_identity(OPERATOR_POD_LABELS),
            *self.scraped((METRICS_PORT,)),
        ]
        monitoring = self.ctx.contracts.get(MonitoringContract)
        if monitoring is not None and any(s.scaling.predictive for s in self.ctx.decl.services):
            found.append(
                net.prometheus_queries(monitoring, "the forecast and current-signal triggers of predictive ScaledObjects", selector=OPERATOR_POD_LABELS)
            )
        return found

    def outputs(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "serviceAccount": OPERATOR_SERVICE_ACCOUNT, "iamRoleArn": self.role.arn, "sqsQueues": self.queues}


def sqs_queues(services: tuple[Service, ...]) -> list[str]:
    """The SQS queues the services scale on, each once."""
    return sorted({s.scaling.sqs.queue_name for s in services if s.scaling.sqs is not None})
