"""Every pinned chart, in one place. Each must match a folder in ../shared/reference/charts/
(a test checks), so values can be checked against the exact defaults of what gets installed."""

from __future__ import annotations

from dataclasses import dataclass


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
KUBE_PROMETHEUS_STACK = Chart("kube-prometheus-stack", "88.5.3", "https://prometheus-community.github.io/helm-charts")
FLAGGER = Chart("flagger", "1.44.0", "https://flagger.app")
LOADTESTER = Chart("loadtester", "0.38.0", "https://flagger.app")
ARGO_CD = Chart("argo-cd", "10.1.1", "https://argoproj.github.io/argo-helm")
VAULT = Chart("vault", "0.34.1", "https://helm.releases.hashicorp.com")
EXTERNAL_SECRETS = Chart("external-secrets", "2.9.0", "https://charts.external-secrets.io")
KEDA = Chart("keda", "2.20.2", "https://kedacore.github.io/charts")

CHARTS = {c.name: c for c in (
    KARPENTER_CRD, KARPENTER, CERT_MANAGER, ISTIO_BASE, ISTIOD, ISTIO_GATEWAY, KUBE_PROMETHEUS_STACK,
    FLAGGER, LOADTESTER, ARGO_CD, VAULT, EXTERNAL_SECRETS, KEDA,
)}
