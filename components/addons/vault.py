"""Vault: HA on integrated raft storage, auto-unsealed by an AWS KMS key, internal UI, no agent injector.

The server's service account gets the key's IAM role through EKS Pod Identity, so no AWS
credential is stored anywhere and nobody holds unseal keys. Initialising Vault (`vault operator
init`, which returns recovery keys and the root token) is a one-time manual step by design: its
output must never pass through Pulumi state.

The seal key is a KMS multi-Region key replicated to the backup copy's region, where a recovery stack
unseals with the replica (`unsealKeyArn`); older stacks migrate from their old key (`legacyUnsealKey`):
components/aws/seal.py. The seal names the key by its alias (or the given ARN), so the raft config
is a plain string known before the key exists (KMS accepts an alias wherever a key ID is expected).

The chart's agent injector is off. Pods get Vault secrets one way only: External Secrets, through the
per-team SecretStore and Vault role (components/addons/external_secrets.py). The injector would add a
mutating webhook on every pod in the cluster whose agents log in as the pod's own service account, to
which no Vault role is bound. Its agents also cannot trust Vault's CA: the chart passes the CA to
them only as literal PEM bytes (`AGENT_INJECT_VAULT_CACERT_BYTES`) at deploy time, and cert-manager
creates that CA later, inside the cluster.

helm.v3.Release: the release waits for the StatefulSet, so External Secrets (which requires this addon) starts against a running Vault.
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi
import pulumi_aws as aws
from pydantic import ValidationInfo, field_validator, model_validator

from components.aws import iam, kms
from components.aws import seal as seals
from components.contracts import CertManagerContract, Pods, VaultContract
from components.monitoring.scrape import Metrics
from components.security import RESTRICTED_CONTAINER, restricted_pod
from components.spec import Declarations
from components.spec.base import Spec, field
from components.vault_access import AUTH_MOUNT, KV_MOUNT, VaultAccess
from components.versions import VAULT

from . import flows as net
from .base import Addon

NAMESPACE = "vault"
RELEASE = "vault"
# The chart names the server's service, service account and StatefulSet after the release.
SERVICE = RELEASE
SERVICE_ACCOUNT = RELEASE
PORT = 8200
# TLS on the listener (API and raft peers), with a certificate from the platform's internal CA.
VAULT_ADDR = f"https://{SERVICE}.{NAMESPACE}.svc:{PORT}"
TLS_SECRET = "vault-tls"
TLS_DIR = f"/vault/userconfig/{TLS_SECRET}"
# cert-manager writes the issuing CA next to the key pair: what clients of Vault trust.
CA_KEY = "ca.crt"
INTERNAL_SERVICE = f"{RELEASE}-internal"
# The chart's service selecting the raft leader only (server.service.active).
ACTIVE_SERVICE = f"{RELEASE}-active"
ACTIVE_ADDR = f"https://{ACTIVE_SERVICE}.{NAMESPACE}.svc:{PORT}"
DNS_NAMES = [
    SERVICE,
    f"{SERVICE}.{NAMESPACE}",
    f"{SERVICE}.{NAMESPACE}.svc",
    f"{SERVICE}.{NAMESPACE}.svc.cluster.local",
    f"{ACTIVE_SERVICE}.{NAMESPACE}.svc",
    f"{RELEASE}-standby.{NAMESPACE}.svc",
    f"*.{INTERNAL_SERVICE}",
    f"*.{INTERNAL_SERVICE}.{NAMESPACE}.svc",
    f"*.{INTERNAL_SERVICE}.{NAMESPACE}.svc.cluster.local",
]
# The UI is served on its own ClusterIP service; reach it with `kubectl port-forward`.
UI_SERVICE = f"{RELEASE}-ui"
SERVER_POD_LABELS = {"app.kubernetes.io/name": "vault", "component": "server"}
CLUSTER_PORT = 8201
# The chart's pod defaults (user 100, group 1000) with the restricted profile's seccomp; a non-empty
# value replaces the chart's default, so the user and group are repeated. The server's root stays
# writable: its start command copies the config to /tmp to fill in the pod's address.
POD_CONTEXT = restricted_pod(100, 1000)
SERVER_CONTEXT = {"pod": POD_CONTEXT, "container": {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": False}}


class VaultSettings(Spec):
    replicas: int = field("Vault server pods in the raft cluster: 1, or an odd number (3, 5) so a quorum survives losing one.", default=1, ge=1, le=5)
    storage_gib: int = field("Raft data volume per server pod, in GiB.", default=10, ge=1)
    unseal_key_arn: Optional[str] = field(
        "Recovery stacks only: the key ARN (arn:aws:kms:<this stack's region>:<account>:key/mrk-...) of the replica of another "
        "stack's Vault seal key in this region (made by that stack's backup.copyTo), which Vault unseals with instead of a key of "
        "its own, so that stack's raft snapshots restore here; this stack then creates no seal key and no replica.",
        default=None,
    )
    legacy_unseal_key: Optional[seals.LegacyStage] = field(
        "Stacks whose Vault was initialised before the seal key became multi-Region: keep the old single-Region key declared, "
        "never replaced, while Vault migrates to the new key (docs/operations.md): active (Vault still seals with it), "
        "migrating (the new key seals, the old one is the disabled seal for `vault operator unseal -migrate`), retired "
        "(unused, kept until the snapshots sealed with it expire). Omit on stacks built since.",
        default=None,
    )

    @field_validator("replicas")
    @classmethod
    def _odd(cls, replicas: int) -> int:
        if replicas % 2 == 0:
            raise ValueError(f"{replicas} replicas: raft needs an odd number of voters (1, 3 or 5); an even count survives no more failures than one fewer")
        return replicas

    @model_validator(mode="after")
    def _seal_key(self, info: ValidationInfo) -> "VaultSettings":
        if self.unseal_key_arn is not None:
            if self.legacy_unseal_key is not None:
                raise ValueError("legacyUnsealKey: a stack that unseals with another stack's key (unsealKeyArn) has no key of its own to migrate from")
            problem = seals.key_problem(self.unseal_key_arn, (info.context or {}).get("region"))
            if problem:
                raise ValueError(f"unsealKeyArn: {problem}")
        return self

    @property
    def ha(self) -> bool:
        return self.replicas > 1


class Vault(Addon):
    name = "vault"
    namespace = NAMESPACE
    # The listener's certificate comes from cert-manager's internal CA.
    requires = ("cert-manager",)
    # /v1/sys/metrics, readable without a token (the listener's telemetry stanza in raft_config), over
    # the TLS listener: the chart's ServiceMonitor then scrapes https, verifying the CA in TLS_SECRET.
    metrics = Metrics(
        charts={
            VAULT.name: {
                "serverTelemetry": {
                    "serviceMonitor": {
                        "enabled": True,
                        "tlsConfig": {"ca": {"secret": {"name": TLS_SECRET, "key": CA_KEY}}, "serverName": f"{SERVICE}.{NAMESPACE}.svc"},
                    }
                }
            }
        }
    )
    Settings = VaultSettings

    @classmethod
    def contract(cls, settings: Any, decl: Declarations) -> VaultContract:
        return VaultContract(
            address=VAULT_ADDR,
            active_address=ACTIVE_ADDR,
            server=Pods(NAMESPACE, SERVER_POD_LABELS, SERVICE_ACCOUNT),
            port=PORT,
            tls_secret=TLS_SECRET,
            ca_key=CA_KEY,
            access=VaultAccess(VAULT_ADDR),
            kv_mount=KV_MOUNT,
            auth_mount=AUTH_MOUNT,
        )

    def install(self) -> None:
        s: VaultSettings = self.settings
        cluster = self.ctx.cluster_name
        protect = self.ctx.decl.spec.cluster.protect
        backup = self.ctx.decl.spec.backup
        self.seal = seals.seal(self.name, self, cluster, protect, s.unseal_key_arn, s.legacy_unseal_key, backup.copy_to if backup else None)
        self.role = iam.pod_identity_role(f"{self.name}-unseal", self, description="Vault server: auto-unseal with its KMS key (Pod Identity)")
        policy = aws.iam.RolePolicy(
            f"{self.name}-unseal-kms",
            role=self.role.id,
            policy=iam.document([{"Effect": "Allow", "Action": seals.SEAL_ACTIONS, "Resource": arn} for arn in self.seal.arns]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self)
        identity = aws.eks.PodIdentityAssociation(
            f"{self.name}-server", cluster_name=cluster, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, role_arn=self.role.arn, opts=child
        )
        # Only the server's role may use the seal keys, whatever IAM grants (defence in depth).
        admins = self.ctx.decl.spec.cluster.access.admins
        self.seal.ready += [kms.restrict(f"{name}-policy", key, [self.role.arn], admins, self) for name, key in self.seal.keys.items()]
        # Issued before the pods start: they mount the key pair and refuse to start without it.
        certificate = self.manifest(
            "cert-manager.io/v1",
            "Certificate",
            TLS_SECRET,
            namespace=NAMESPACE,
            spec=certificate_spec(self.ctx.contracts.require(CertManagerContract).internal_issuer),
        )
        # The pods must find their credentials and key on first start, or they cannot unseal.
        self.release = self.helm(VAULT, self.chart_values(s), release=RELEASE, depends_on=(*self.seal.ready, policy, identity, certificate))
        # Vault's own configuration (provider, mounts, auth method), once the server runs; its consumers'
        # roles follow through the same access (components/vault_access.py).
        self.ctx.contracts.require(VaultContract).access.connect(self, self.name, after=[self.release])

    def chart_values(self, s: VaultSettings) -> dict[str, Any]:
        return {
            # Off: see the module docstring (External Secrets is the one way to read Vault).
            "injector": {"enabled": False},
            # HTTPS everywhere: the probes and the UI service follow this.
            "global": {"tlsDisable": False},
            "server": {
                "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
                "volumes": [{"name": TLS_SECRET, "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440}}],
                "volumeMounts": [{"name": TLS_SECRET, "mountPath": TLS_DIR, "readOnly": True}],
                # The vault CLI in the pods (operator init, raft commands) verifies the listener.
                "extraEnvironmentVars": {"VAULT_CACERT": f"{TLS_DIR}/{CA_KEY}"},
                "statefulSet": {"securityContext": SERVER_CONTEXT},
                "dataStorage": {"enabled": True, "size": f"{s.storage_gib}Gi", "storageClass": "gp3"},
                "ha": {
                    "enabled": True,
                    "replicas": s.replicas,
                    # The chart's budget is floor((n-1)/2) unavailable: 0 for one pod, which would
                    # block every node drain, so the budget exists only with a quorum to protect.
                    "disruptionBudget": {"enabled": s.ha},
                    "raft": {"enabled": True, "setNodeId": True, "config": raft_config(s.replicas, self.ctx.region, self.seal.key, self.seal.migrating_from)},
                },
                # Raft peers in different zones: one zone outage leaves a quorum (hosts are already
                # spread by the chart's default anti-affinity).
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "topology.kubernetes.io/zone",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": RELEASE, "component": "server"}},
                    }
                ]
                if s.ha
                else [],
            },
            # The UI is on, but only on a ClusterIP service: never routed from outside the cluster.
            "ui": {"enabled": True, "serviceType": "ClusterIP", "activeVaultPodOnly": True},
        }

    def flows(self) -> list[net.Flow]:
        return [
            net.api_server(self.vpc_cidr),
            *net.within(NAMESPACE, ports=(PORT, CLUSTER_PORT), reason="raft peers: the API (joins, forwarding) and the cluster port"),
            net.cloud("auto-unseal with AWS KMS", selector=SERVER_POD_LABELS),
            net.pod_identity(SERVER_POD_LABELS),
            *self.scraped((PORT,), selector=SERVER_POD_LABELS),  # telemetry: the API listener's /v1/sys/metrics
        ]

    def outputs(self) -> dict[str, Any]:
        return {
            "namespace": NAMESPACE,
            "serviceAccount": SERVICE_ACCOUNT,
            "iamRoleArn": self.role.arn,
            "address": VAULT_ADDR,
            "uiService": UI_SERVICE,
            "sealKey": self.seal.key,
        }


def raft_config(replicas: int, region: str, key: str, migrating_from: Optional[str] = None) -> str:
    """Vault's server config (HCL): raft storage joined through every peer's stable pod DNS name,
    and the awskms seal, which unseals with the Pod Identity credentials on every start."""
    joins = "".join(
        f'\n  retry_join {{\n    leader_api_addr = "https://{RELEASE}-{i}.{INTERNAL_SERVICE}:{PORT}"\n    leader_ca_cert_file = "{TLS_DIR}/{CA_KEY}"\n  }}'
        for i in range(replicas)
    )
    return f'''ui = true
# Raft keeps its data on disk and pods run without IPC_LOCK; HashiCorp recommends this for raft.
disable_mlock = true

listener "tcp" {{
  address = "[::]:{PORT}"
  tls_cert_file = "{TLS_DIR}/tls.crt"
  tls_key_file = "{TLS_DIR}/tls.key"
  tls_min_version = "tls12"
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

{seals.stanzas(region, key, migrating_from)}
service_registration "kubernetes" {{}}
'''


def certificate_spec(issuer: str) -> dict[str, Any]:
    """The listener's certificate: every name clients and raft peers use, and localhost for the CLI in
    the pod; client auth too, since raft peers present it to each other. Rotated a fortnight ahead."""
    return {
        "secretName": TLS_SECRET,
        "commonName": f"{SERVICE}.{NAMESPACE}.svc",
        "dnsNames": DNS_NAMES + ["localhost"],
        "ipAddresses": ["127.0.0.1"],
        "duration": "2160h",
        "renewBefore": "360h",
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "usages": ["server auth", "client auth", "digital signature", "key encipherment"],
        "issuerRef": {"name": issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
    }
