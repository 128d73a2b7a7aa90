"""Every pinned chart, and the Kubernetes versions EKS offers, in one place. Each chart has an
entry in reference/charts/ made by `make reference` (a test checks), so values are checked against
the exact defaults of what gets installed. To bump a chart: change the pin here, then
`make reference SOURCE=<dir>`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    repository: str
    # The reference folder is <reference>-<version>; some charts are filed under another name.
    reference: str = ""

    @property
    def reference_folder(self) -> str:
        return f"{self.reference or self.name}-{self.version}"

    @property
    def oci(self) -> bool:
        return self.repository.startswith("oci://")

    @property
    def chart_ref(self) -> str:
        """What helm is given as the chart: the full reference for OCI, the bare name otherwise."""
        return f"{self.repository}/{self.name}" if self.oci else self.name


KARPENTER_CRD = Chart("karpenter-crd", "1.14.1", "oci://public.ecr.aws/karpenter", reference="karpenter")
KARPENTER = Chart("karpenter", "1.14.1", "oci://public.ecr.aws/karpenter")
CERT_MANAGER = Chart("cert-manager", "v1.21.1", "https://charts.jetstack.io")
ISTIO_BASE = Chart("base", "1.30.3", "https://istio-release.storage.googleapis.com/charts", reference="istio-base")
ISTIOD = Chart("istiod", "1.30.3", "https://istio-release.storage.googleapis.com/charts", reference="istio-istiod")
ISTIO_GATEWAY = Chart("gateway", "1.30.3", "https://istio-release.storage.googleapis.com/charts", reference="istio-gateway")
ISTIO_CNI = Chart("cni", "1.30.3", "https://istio-release.storage.googleapis.com/charts", reference="istio-cni")
KUBE_PROMETHEUS_STACK = Chart("kube-prometheus-stack", "88.5.3", "https://prometheus-community.github.io/helm-charts")
FLAGGER = Chart("flagger", "1.44.0", "https://flagger.app")
LOADTESTER = Chart("loadtester", "0.38.0", "https://flagger.app")
ARGO_CD = Chart("argo-cd", "10.1.1", "https://argoproj.github.io/argo-helm")
VAULT = Chart("vault", "0.34.1", "https://helm.releases.hashicorp.com")
EXTERNAL_SECRETS = Chart("external-secrets", "2.9.0", "https://charts.external-secrets.io")
KEDA = Chart("keda", "2.20.2", "https://kedacore.github.io/charts")
SEALED_SECRETS = Chart("sealed-secrets", "2.18.5", "https://bitnami-labs.github.io/sealed-secrets")
VPA = Chart("vertical-pod-autoscaler", "0.11.0", "https://kubernetes.github.io/autoscaler")
CHAOS_MESH = Chart("chaos-mesh", "2.8.3", "https://charts.chaos-mesh.org")
# Kubecost stays on the reference snapshot (2.3.3, 2024) so every value is checked against the exact
# defaults installed. Newer releases exist: cost-analyzer 2.9.7 was (re)published in July 2026
# (kubecost/cost-analyzer#374), and Kubecost 3.x ships as chart `kubecost` from
# https://kubecost.github.io/kubecost (kubecost/kubecost#4160). Moving up needs that chart's values.yaml
# in reference/charts/ first (make reference); the keys used here (global.prometheus.*, serviceMonitor,
# prometheusRule, reporting) must then be re-checked by tests/test_addons.py.
KUBECOST = Chart("cost-analyzer", "2.3.3", "https://kubecost.github.io/cost-analyzer/")
OPENTELEMETRY_COLLECTOR = Chart("opentelemetry-collector", "0.170.0", "https://open-telemetry.github.io/opentelemetry-helm-charts")
# The collector image both its releases (tracing gateway, log agent) run, tagged by the chart's appVersion:
# the Kubernetes distribution, with OTLP, the k8s attributes processor and the file log receiver.
OPENTELEMETRY_COLLECTOR_IMAGE = "otel/opentelemetry-collector-k8s"
JAEGER = Chart("jaeger", "4.11.1", "https://jaegertracing.github.io/helm-charts")
EXTERNAL_DNS = Chart("external-dns", "1.21.1", "https://kubernetes-sigs.github.io/external-dns/")
LOKI = Chart("loki", "7.3.0", "https://grafana.github.io/helm-charts")
VELERO = Chart("velero", "12.1.0", "https://vmware-tanzu.github.io/helm-charts")

CHARTS = {
    c.name: c
    for c in (
        KARPENTER_CRD,
        KARPENTER,
        CERT_MANAGER,
        ISTIO_BASE,
        ISTIOD,
        ISTIO_GATEWAY,
        ISTIO_CNI,
        KUBE_PROMETHEUS_STACK,
        FLAGGER,
        LOADTESTER,
        ARGO_CD,
        VAULT,
        EXTERNAL_SECRETS,
        KEDA,
        SEALED_SECRETS,
        VPA,
        CHAOS_MESH,
        KUBECOST,
        OPENTELEMETRY_COLLECTOR,
        JAEGER,
        LOKI,
        VELERO,
        EXTERNAL_DNS,
    )
}


@dataclass(frozen=True)
class KubernetesVersion:
    """A Kubernetes minor version as EKS offers it: standard support, then extended support (at extra
    cost, upgradePolicy EXTENDED), after which EKS upgrades the cluster itself."""

    version: str
    standard_support_ends: date
    extended_support_ends: date


# The EKS release calendar (Amazon EKS user guide, "Understand the Kubernetes version lifecycle on
# EKS"; the same dates on endoflife.date/amazon-eks). A version missing here is not offered by EKS
# (too old, or not released yet); add a row when EKS announces one.
EKS_VERSIONS = {
    v.version: v
    for v in (
        KubernetesVersion("1.29", date(2025, 3, 23), date(2026, 3, 23)),
        KubernetesVersion("1.30", date(2025, 7, 23), date(2026, 7, 23)),
        KubernetesVersion("1.31", date(2025, 11, 26), date(2026, 11, 26)),
        KubernetesVersion("1.32", date(2026, 3, 23), date(2027, 3, 23)),
        KubernetesVersion("1.33", date(2026, 7, 29), date(2027, 7, 29)),
        KubernetesVersion("1.34", date(2026, 12, 2), date(2027, 12, 2)),
        KubernetesVersion("1.35", date(2027, 3, 27), date(2028, 3, 27)),
    )
}
# The Pod Security Standards versions the platform knows, oldest to newest: a stack may pin its
# cluster's version (policy.podSecurityVersion) and the policy's pss-* rules change at the versions
# Pod Security Admission's checks do. Kept here, below both, so the declarations never import the pack.
POD_SECURITY_OLDEST = (1, 23)
POD_SECURITY_LATEST = (1, 37)
# Images the platform runs itself (outside any chart's defaults).
# Velero's AWS plugin: v1.14.x is the line built for Velero 1.18 (chart velero-12.1.0 runs v1.18.1).
VELERO_PLUGIN_FOR_AWS = "docker.io/velero/velero-plugin-for-aws:v1.14.2"
# The Vault CLI of the snapshot job: the server version chart vault-0.34.1 installs (server.image.tag).
VAULT_IMAGE = "public.ecr.aws/hashicorp/vault:2.0.4"
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.36.15"
