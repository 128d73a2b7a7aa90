"""cert-manager and the platform's ClusterIssuers: an internal CA everywhere, Let's Encrypt in prod.

The internal CA (a self-signed root, `platform-ca`) signs in-cluster TLS (Vault's listener) in every
environment, and the public gateway's certificate outside prod; prod's public certificate comes
from Let's Encrypt.

Installed through `pulumi_kubernetes_cert_manager.CertManager`, a multi-language component that
wraps one helm.v3.Release: Helm hooks run (the chart's `startupapicheck` post-install Job waits
until the webhook answers), so the ClusterIssuers created after it are admitted.

Every chart value goes through `helmOptions.values` (with the stack's overrides merged in), so the
values test sees them all in one place. The component also accepts typed arguments; it lays them
over `helmOptions.values`, which `chart_values()` reproduces for a recorded component. CRDs come
from `crds.enabled` (`installCRDs`, the component's typed switch, is deprecated in the chart) with
`crds.keep`, so uninstalling the release never deletes every Certificate in the cluster.

ACME HTTP-01 challenges are answered through the Istio ingress gateway with a Kubernetes Ingress of
class `istio` (the istio addon creates that IngressClass). cert-manager v1.21's other option,
`gatewayHTTPRoute`, needs the Gateway API CRDs and a Gateway API `Gateway`; this platform uses
Istio's own `networking.istio.io` Gateway and does not install the Gateway API.
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes_cert_manager as cm
from pydantic import ValidationInfo, field_validator, model_validator

from components.aws import iam
from components.aws.dns import zone_statements
from components.contracts import CertManagerContract
from components.monitoring.scrape import Metrics
from components.spec import Declarations, deep_merge
from components.spec.base import Spec, field
from components.spec.domains import refuse_placeholder
from components.versions import CERT_MANAGER

from . import flows as net
from .base import Addon

NAMESPACE = "cert-manager"
RELEASE = "cert-manager"
COMPONENT_TYPE = "kubernetes-cert-manager:index:CertManager"
# The chart names the controller's service account after the release.
SERVICE_ACCOUNT = RELEASE

# The chart's pod labels and ports: the webhook serves on 10250, every component's metrics on 9402.
CONTROLLER_POD_LABELS = {"app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/component": "controller"}
WEBHOOK_POD_LABELS = {"app.kubernetes.io/name": "webhook", "app.kubernetes.io/component": "webhook"}
WEBHOOK_PORT = 10250
METRICS_PORT = 9402
# The HTTP-01 solver pods cert-manager starts in the gateway's namespace, and their port.
SOLVER_POD_LABELS = {"acme.cert-manager.io/http01-solver": "true"}
SOLVER_PORT = 8089

SELF_SIGNED_ISSUER = "selfsigned"
CA_ISSUER = "platform-ca"
# A CA ClusterIssuer reads its key pair from the cluster resource namespace (cert-manager's own).
CA_SECRET = "platform-ca"
ACME_STAGING_ISSUER = "letsencrypt-staging"
ACME_PROD_ISSUER = "letsencrypt-prod"
ACME_SERVERS = {
    ACME_STAGING_ISSUER: "https://acme-staging-v02.api.letsencrypt.org/directory",
    ACME_PROD_ISSUER: "https://acme-v02.api.letsencrypt.org/directory",
}
# The IngressClass the HTTP-01 solver's Ingress uses; the istio addon creates it.
SOLVER_INGRESS_CLASS = "istio"


def issuer_for(environment: str) -> str:
    """The ClusterIssuer that signs public certificates (the Istio gateway's) in an environment."""
    return ACME_PROD_ISSUER if environment == "prod" else CA_ISSUER


def chart_values(inputs: dict[str, Any]) -> dict[str, Any]:
    """The Helm values a recorded CertManager component installs, as its provider computes them:
    `helmOptions.values` with the typed arguments (every other input) laid over it."""
    typed = {k: v for k, v in inputs.items() if k != "helmOptions"}
    return deep_merge((inputs.get("helmOptions") or {}).get("values") or {}, typed)


class CertManagerSettings(Spec):
    replicas: int = field("Replicas of the controller, webhook and CA injector (2 or more for HA).", default=1, ge=1, le=3)
    acme_email: Optional[str] = field(
        "Contact address of the Let's Encrypt account (expiry and policy notices); required in prod.", default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    )

    @field_validator("acme_email")
    @classmethod
    def _real_email(cls, email: Optional[str], info: ValidationInfo) -> Optional[str]:
        return refuse_placeholder(email, info.context, "Let's Encrypt's expiry and policy notices reach nobody")

    @model_validator(mode="after")
    def _prod_needs_email(self, info: ValidationInfo) -> "CertManagerSettings":
        if (info.context or {}).get("environment") == "prod" and not self.acme_email:
            raise ValueError("acmeEmail is required in prod: the Let's Encrypt issuers register an account with it")
        return self


class CertManager(Addon):
    name = "cert-manager"
    namespace = NAMESPACE
    # The controller's certificate expiry and ACME metrics (chart: prometheus.servicemonitor).
    metrics = Metrics(charts={CERT_MANAGER.name: {"prometheus": {"enabled": True, "servicemonitor": {"enabled": True}}}})
    Settings = CertManagerSettings
    # Every cert-manager pod ships a restricted security context (non-root, RuntimeDefault seccomp).
    pod_security = "restricted"

    @classmethod
    def contract(cls, settings: Any, decl: Declarations) -> CertManagerContract:
        return CertManagerContract(
            public_issuer=issuer_for(decl.environment),
            solver_ingress_class=SOLVER_INGRESS_CLASS,
            internal_issuer=CA_ISSUER,
            solver_pod_labels=SOLVER_POD_LABELS,
            solver_port=SOLVER_PORT,
        )

    def install(self) -> None:
        s: CertManagerSettings = self.settings
        self.release = cm.CertManager(
            RELEASE,
            helm_options=cm.ReleaseArgs(
                name=RELEASE,
                chart=CERT_MANAGER.chart_ref,
                version=CERT_MANAGER.version,
                repository_opts=cm.RepositoryOptsArgs(repo=CERT_MANAGER.repository),
                namespace=NAMESPACE,
                values=self.values_for(CERT_MANAGER, self.release_values(s)),
            ),
            opts=self.opts(),
        )
        # Not made by self.helm(), so added by hand: whatever requires cert-manager waits for it.
        self.ready.append(self.release)
        zone = self.ctx.dns_zone
        self.role: Optional[aws.iam.Role] = None
        if self.ctx.prod:
            dns01 = None
            if zone is not None:
                # DNS-01 in the stack's zone: certificates issue before the host resolves, and for any host in it.
                dns01 = {"zone": zone.name, "zoneId": zone.zone_id, "region": self.ctx.region}
                self.ready.append(self.route53_identity(zone))
            for issuer in (ACME_STAGING_ISSUER, ACME_PROD_ISSUER):
                self.ready.append(self.manifest("cert-manager.io/v1", "ClusterIssuer", issuer, self.acme(issuer, s.acme_email or "", dns01)))
        self.bootstrap_ca()

    def route53_identity(self, zone: Any) -> pulumi.Resource:
        """The controller's Pod Identity role: TXT records in the stack's zone and nothing else."""
        role = self.role = iam.pod_identity_role(
            f"{self.name}-route53", self, inline=zone_statements(zone.arn), description=f"cert-manager: ACME DNS-01 records in {zone.name} only (Pod Identity)"
        )
        return aws.eks.PodIdentityAssociation(
            f"{self.name}-identity",
            cluster_name=self.ctx.cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self),
        )

    @staticmethod
    def release_values(s: CertManagerSettings) -> dict[str, Any]:
        ha = {"replicaCount": s.replicas, "podDisruptionBudget": {"enabled": s.replicas > 1}}
        return {"crds": {"enabled": True, "keep": True}, **ha, "webhook": ha, "cainjector": ha}

    def bootstrap_ca(self) -> None:
        """A self-signed root (10 years, renewed a year ahead) and a CA issuer signing with it:
        dev certificates chain to one CA that testers can trust once."""
        self.ready.append(self.manifest("cert-manager.io/v1", "ClusterIssuer", SELF_SIGNED_ISSUER, {"selfSigned": {}}))
        self.ready.append(
            self.manifest(
                "cert-manager.io/v1",
                "Certificate",
                CA_SECRET,
                namespace=NAMESPACE,
                spec={
                    "isCA": True,
                    "commonName": f"{self.ctx.cluster_name} platform CA",
                    "secretName": CA_SECRET,
                    "duration": "87600h",
                    "renewBefore": "8760h",
                    "privateKey": {"algorithm": "ECDSA", "size": 256},
                    "issuerRef": {"name": SELF_SIGNED_ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"},
                },
            )
        )
        self.ready.append(self.manifest("cert-manager.io/v1", "ClusterIssuer", CA_ISSUER, {"ca": {"secretName": CA_SECRET}}))

    @staticmethod
    def acme(issuer: str, email: str, dns01: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        if dns01 is not None:
            # Ambient credentials (Pod Identity) for Route 53; only names in the zone use this solver.
            solvers = [{"selector": {"dnsZones": [dns01["zone"]]}, "dns01": {"route53": {"region": dns01["region"], "hostedZoneID": dns01["zoneId"]}}}]
            return {"acme": {"server": ACME_SERVERS[issuer], "email": email, "privateKeySecretRef": {"name": f"{issuer}-account"}, "solvers": solvers}}
        return {
            "acme": {
                "server": ACME_SERVERS[issuer],
                "email": email,
                "privateKeySecretRef": {"name": f"{issuer}-account"},
                "solvers": [
                    {
                        "http01": {
                            "ingress": {
                                "ingressClassName": SOLVER_INGRESS_CLASS,
                                # The solver pod runs in the gateway's namespace, which is labelled for injection;
                                # it needs no sidecar (the gateway reaches it in plaintext, as any out-of-mesh pod).
                                "podTemplate": {"metadata": {"labels": {"sidecar.istio.io/inject": "false"}}},
                            }
                        }
                    }
                ],
            }
        }

    def flows(self) -> list[net.Flow]:
        return [
            net.api_server(self.vpc_cidr),
            net.webhook("webhook", self.vpc_cidr, (WEBHOOK_PORT,), "the API server calls cert-manager's admission webhook", selector=WEBHOOK_POD_LABELS),
            # ACME: the Let's Encrypt API on 443, and the HTTP-01 self-check against the public host on 80.
            net.cloud("ACME directory and the HTTP-01 self-check through the public load balancer", ports=(80, 443), selector=CONTROLLER_POD_LABELS),
            *self.scraped((METRICS_PORT,)),
            # DNS-01 (prod with a zone): Route 53 credentials from the Pod Identity agent, and the propagation
            # check that asks the zone's authoritative name servers directly.
            *(
                [
                    net.pod_identity(CONTROLLER_POD_LABELS),
                    net.flow(
                        "dns01-check",
                        "egress",
                        [net.Peer(cidr=net.WORLD, exclude=(*net.PRIVATE, net.LINK_LOCAL))],
                        "DNS-01 propagation check against the zone's authoritative name servers",
                        ports=(53,),
                        selector=CONTROLLER_POD_LABELS,
                        protocols=("UDP", "TCP"),
                    ),
                ]
                if self.ctx.prod and self.ctx.dns_zone is not None
                else []
            ),
        ]

    def outputs(self) -> dict[str, Any]:
        found = {"namespace": NAMESPACE, "serviceAccount": SERVICE_ACCOUNT, "issuer": issuer_for(self.ctx.environment)}
        return found | ({"iamRoleArn": self.role.arn} if self.role is not None else {})
