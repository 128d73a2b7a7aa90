"""Vault: HA on integrated raft storage, auto-unsealed by an AWS KMS key, agent injector, internal UI.

The server's service account gets the key's IAM role through EKS Pod Identity, so no AWS
credential is stored anywhere and nobody holds unseal keys. Initialising Vault (`vault operator
init`, which returns recovery keys and the root token) is a one-time manual step by design: its
output must never pass through Pulumi state.

The seal names the key by its alias, which is fixed per cluster, so the raft config is a plain
string known before the key exists (KMS accepts an alias wherever a key ID is expected).

helm.v3.Release: the injector's webhook certificate is generated at install and the release waits
for the StatefulSet, so External Secrets (which requires this addon) starts against a running Vault.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
from pydantic import field_validator

from components.aws import iam
from components.contracts import VaultContract
from components.monitoring.scrape import Metrics
from components.spec import Declarations
from components.spec.base import Spec, field
from components.versions import VAULT

from .base import Addon

NAMESPACE = "vault"
RELEASE = "vault"
# The chart names the server's service, service account and StatefulSet after the release.
SERVICE = RELEASE
SERVICE_ACCOUNT = RELEASE
PORT = 8200
# TLS is off in the chart by default (global.tlsDisable); traffic stays inside the cluster.
VAULT_ADDR = f"http://{SERVICE}.{NAMESPACE}.svc:{PORT}"
# The UI is served on its own ClusterIP service; reach it with `kubectl port-forward`.
UI_SERVICE = f"{RELEASE}-ui"
KMS_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]


class VaultSettings(Spec):
    replicas: int = field("Vault server pods in the raft cluster: 1, or an odd number (3, 5) so a quorum survives losing one.", default=1, ge=1, le=5)
    storage_gib: int = field("Raft data volume per server pod, in GiB.", default=10, ge=1)

    @field_validator("replicas")
    @classmethod
    def _odd(cls, replicas: int) -> int:
        if replicas % 2 == 0:
            raise ValueError(f"{replicas} replicas: raft needs an odd number of voters (1, 3 or 5); an even count survives no more failures than one fewer")
        return replicas

    @property
    def ha(self) -> bool:
        return self.replicas > 1


class Vault(Addon):
    name = "vault"
    namespace = NAMESPACE
    # /v1/sys/metrics, readable without a token (the listener's telemetry stanza in raft_config).
    metrics = Metrics(charts={VAULT.name: {"serverTelemetry": {"serviceMonitor": {"enabled": True}}}})
    Settings = VaultSettings

    @classmethod
    def contract(cls, settings: Any, decl: Declarations) -> VaultContract:
        return VaultContract(address=VAULT_ADDR)

    def install(self) -> None:
        s: VaultSettings = self.settings
        cluster = self.ctx.cluster_name
        protect = self.ctx.decl.spec.cluster.protect
        # Losing this key loses every secret in Vault: rotation on, a long deletion window, and
        # protected wherever the cluster itself is.
        self.key = aws.kms.Key(
            f"{self.name}-unseal", description=f"Vault auto-unseal for {cluster}", enable_key_rotation=True,
            deletion_window_in_days=30, opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        self.alias = aws.kms.Alias(f"{self.name}-unseal", name=unseal_alias(cluster), target_key_id=self.key.key_id, opts=pulumi.ResourceOptions(parent=self))
        self.role = iam.pod_identity_role(f"{self.name}-unseal", self, description="Vault server: auto-unseal with its KMS key (Pod Identity)")
        policy = aws.iam.RolePolicy(
            f"{self.name}-unseal-kms", role=self.role.id,
            policy=iam.document([{"Effect": "Allow", "Action": KMS_ACTIONS, "Resource": self.key.arn}]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        identity = aws.eks.PodIdentityAssociation(
            f"{self.name}-server", cluster_name=cluster, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT,
            role_arn=self.role.arn, opts=pulumi.ResourceOptions(parent=self),
        )
        # The pods must find their credentials and key on first start, or they cannot unseal.
        self.release = self.helm(VAULT, self.chart_values(s), release=RELEASE, depends_on=(self.alias, policy, identity))

    def chart_values(self, s: VaultSettings) -> dict[str, Any]:
        return {
            "injector": {
                "enabled": True,
                "replicas": 2 if s.ha else 1,
                "podDisruptionBudget": {"maxUnavailable": 1} if s.ha else {},
            },
            "server": {
                "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
                "dataStorage": {"enabled": True, "size": f"{s.storage_gib}Gi", "storageClass": "gp3"},
                "ha": {
                    "enabled": True,
                    "replicas": s.replicas,
                    # The chart's budget is floor((n-1)/2) unavailable: 0 for one pod, which would
                    # block every node drain, so the budget exists only with a quorum to protect.
                    "disruptionBudget": {"enabled": s.ha},
                    "raft": {"enabled": True, "setNodeId": True, "config": raft_config(s.replicas, self.ctx.region, unseal_alias(self.ctx.cluster_name))},
                },
                # Raft peers in different zones: one zone outage leaves a quorum (hosts are already
                # spread by the chart's default anti-affinity).
                "topologySpreadConstraints": [{
                    "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": RELEASE, "component": "server"}},
                }] if s.ha else [],
            },
            # The UI is on, but only on a ClusterIP service: never routed from outside the cluster.
            "ui": {"enabled": True, "serviceType": "ClusterIP", "activeVaultPodOnly": True},
        }

    def outputs(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "serviceAccount": SERVICE_ACCOUNT, "iamRoleArn": self.role.arn, "address": VAULT_ADDR, "uiService": UI_SERVICE}


def unseal_alias(cluster: str) -> str:
    return f"alias/{cluster}-vault-unseal"


def raft_config(replicas: int, region: str, key: str) -> str:
    """Vault's server config (HCL): raft storage joined through every peer's stable pod DNS name,
    and the awskms seal, which unseals with the Pod Identity credentials on every start."""
    joins = "".join(f'\n  retry_join {{\n    leader_api_addr = "http://{RELEASE}-{i}.{RELEASE}-internal:{PORT}"\n  }}' for i in range(replicas))
    return f'''ui = true
# Raft keeps its data on disk and pods run without IPC_LOCK; HashiCorp recommends this for raft.
disable_mlock = true

listener "tcp" {{
  tls_disable = 1
  address = "[::]:{PORT}"
  cluster_address = "[::]:8201"
  # Prometheus scrapes /v1/sys/metrics without a Vault token.
  telemetry {{
    unauthenticated_metrics_access = true
  }}
}}

telemetry {{
  prometheus_retention_time = "30s"
  disable_hostname = true
}}

storage "raft" {{
  path = "/vault/data"{joins}
}}

seal "awskms" {{
  region = "{region}"
  kms_key_id = "{key}"
}}

service_registration "kubernetes" {{}}
'''
