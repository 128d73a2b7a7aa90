"""Sealed Secrets: encrypted values committed to Git, decrypted only inside the cluster.

The alternative to Vault paths for a service that wants its secret next to its declaration: a team
encrypts a value with the controller's public key (`kubeseal`), commits the ciphertext under
`sealedSecrets` in its service file, and the workloads component turns it into a SealedSecret
(bitnami.com/v1alpha1) in the team's namespace; the controller unseals it into a Secret of the same
name, which the pods read through env secretKeyRefs. Only this cluster's controller holds the
private key, so a ciphertext is per stack (declare it under `envs.<stack>`).

The controller runs in its own namespace, NAMESPACE, under the name kubeseal expects by default
(`fullnameOverride: sealed-secrets-controller`, as the chart's README recommends); kubeseal's other
default, namespace kube-system, is not used because this platform does not manage objects in
kube-system, so users pass `--controller-namespace sealed-secrets` or export
SEALED_SECRETS_CONTROLLER_NAMESPACE=sealed-secrets (see the kubeseal flow in docs/security.md).

Sealed values use kubeseal's default `strict` scope: the ciphertext is bound to the Secret's name
and namespace, so it cannot be replayed into another team's namespace.

helm.v3.Release: the chart installs the SealedSecret CRD (crds/), and the release waits for the
controller, which must have generated its key pair before anything is sealed or unsealed.
"""

from __future__ import annotations

from typing import Any

from components.contracts import SealedSecretsContract
from components.monitoring.scrape import Metrics
from components.spec import Declarations
from components.security import RESTRICTED_CONTAINER, restricted_pod
from components.spec.backup import SEALING_KEY_RENEWAL
from components.versions import SEALED_SECRETS

from . import flows as net
from .base import Addon

NAMESPACE = "sealed-secrets"
RELEASE = "sealed-secrets"
# kubeseal's default --controller-name; the chart names the Deployment, Service and account after it.
CONTROLLER_NAME = "sealed-secrets-controller"
SERVICE_ACCOUNT = CONTROLLER_NAME
API_VERSION = "bitnami.com/v1alpha1"
KIND = "SealedSecret"
# kubeseal fetches the public certificate through the API server's service proxy, on the controller's HTTP port.
HTTP_PORT = 8080
# The image's user (the chart's default containerSecurityContext.runAsUser) and the chart's fsGroup.
RUN_AS, FS_GROUP = 1001, 65534
# The controller's metrics port (the chart's containerPorts.metrics), scraped by its ServiceMonitor.
METRICS_PORT = 8081


class SealedSecrets(Addon):
    name = "sealed-secrets"
    namespace = NAMESPACE
    # Unseal errors (chart: metrics.serviceMonitor).
    metrics = Metrics(charts={SEALED_SECRETS.name: {"metrics": {"serviceMonitor": {"enabled": True}}}})
    # restricted: the controller holds the sealing keys, so its namespace admits nothing looser. The chart renders
    # podSecurityContext and containerSecurityContext with `omit "enabled" | toYaml`, so the restricted fields pass through.

    @classmethod
    def contract(cls, settings: Any, decl: Declarations) -> SealedSecretsContract:
        return SealedSecretsContract(api_version=API_VERSION, kind=KIND)

    def install(self) -> None:
        self.release = self.helm(
            SEALED_SECRETS,
            {
                "fullnameOverride": CONTROLLER_NAME,
                "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
                "podSecurityContext": {"enabled": True, **restricted_pod(RUN_AS, FS_GROUP)},
                "containerSecurityContext": {"enabled": True, **RESTRICTED_CONTAINER, "runAsUser": RUN_AS},
                # The chart's default (30 days) made explicit: the backup schedule of the keys is checked against it.
                "keyrenewperiod": f"{int(SEALING_KEY_RENEWAL.total_seconds()) // 3600}h",
            },
            release=RELEASE,
        )

    def flows(self) -> list[net.Flow]:
        return [
            net.api_server(self.vpc_cidr),
            net.webhook("cert", self.vpc_cidr, (HTTP_PORT,), "kubeseal reads the certificate through the API server's service proxy"),
            *self.scraped((METRICS_PORT,)),
        ]

    def outputs(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "serviceAccount": SERVICE_ACCOUNT, "controllerName": CONTROLLER_NAME}
