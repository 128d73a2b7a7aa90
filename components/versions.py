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

CHARTS = {c.name: c for c in (KARPENTER_CRD, KARPENTER)}
