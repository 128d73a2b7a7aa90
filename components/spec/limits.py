"""Limits that AWS, EKS, Kubernetes and Istio enforce only at deploy or run time, checked at load time.

Each is a function returning the problem as text (or None), used by the models' validators, so a
declaration that `pulumi up` or the cluster would refuse is refused in the preview instead.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from typing import Iterable, Optional

from components.versions import EKS_VERSIONS

from .problems import short

# Istio's "Ports used by Istio" (deployment requirements): the sidecar (Envoy and pilot-agent) owns
# 15000 admin, 15001 outbound, 15004 debug, 15006 inbound, 15008/15009 HBONE, 15020 merged metrics,
# 15021 health, 15053 DNS, 15090 Envoy metrics; istiod 15010, 15012, 15014, 15017. The whole range
# is kept clear: an application port there is captured or shadowed by the proxy.
ISTIO_RESERVED_PORTS = range(15000, 15091)
# Kubernetes refuses a ConfigMap or Secret whose data exceeds 1 MiB (apimachinery's MaxSecretSize,
# used by ConfigMap validation too).
OBJECT_DATA_MAX_BYTES = 1024 * 1024
# The AWS partitions (aws, China, GovCloud, the ISO regions and the European Sovereign Cloud).
PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc")
# IAM: path segments and names of [\w+=,.@-]; role names up to 64 characters, user names 64.
IAM_PRINCIPAL = re.compile(r"^arn:(?P<partition>[a-z-]+):iam::(?P<account>[^:]*):(?P<kind>role|user)/(?P<path>(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]{1,64})$")
ARN = re.compile(r"^arn:(?P<partition>[a-z-]+):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9*-]*):(?P<account>[^:]*):(?P<resource>.+)$")
ACCOUNT = re.compile(r"^[0-9]{12}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Variables reach the pod as keys of a ConfigMap or Secret, which Kubernetes caps at 253 characters.
ENV_NAME_MAX = 253
# What the platform sets in every container itself (components/workloads/pod.py, OpenTelemetry SDK).
PLATFORM_ENV = ("OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER")
# Prefixes the platform and its parts inject or read: OpenTelemetry's SDK, the Vault CLI and agent,
# Istio's sidecar and the kubelet's service links (KUBERNETES_SERVICE_HOST); a service's own variable
# there would silently change how the platform's parts behave in its pods.
PLATFORM_ENV_PREFIXES = ("OTEL_", "VAULT_", "ISTIO_", "KUBERNETES_")


def today() -> date:
    """The date support windows are judged on (a function, so tests can move it)."""
    return date.today()


def kubernetes_version_problem(version: str, upgrade_policy: str) -> Optional[str]:
    offered = EKS_VERSIONS.get(version)
    now = today()
    supported = [v for v, row in EKS_VERSIONS.items() if row.extended_support_ends > now]
    if offered is None or offered.extended_support_ends <= now:
        ended = f" (extended support ended {offered.extended_support_ends})" if offered else ""
        return f"Kubernetes {version} is not offered by EKS{ended}; supported versions: {', '.join(supported)} (components/versions.py)"
    if offered.standard_support_ends <= now and upgrade_policy == "STANDARD":
        return (
            f"Kubernetes {version} left EKS standard support on {offered.standard_support_ends}; with upgradePolicy STANDARD EKS "
            f"upgrades the cluster by itself: upgrade the version, or set upgradePolicy EXTENDED (paid, until {offered.extended_support_ends})"
        )
    return None


def principal_problem(arn: str) -> Optional[str]:
    """An IAM role or user ARN as an EKS access entry takes it."""
    match = IAM_PRINCIPAL.match(arn)
    if not match:
        return f"{short(arn)} is not an IAM role or user ARN (arn:aws:iam::<12-digit account>:role/<optional path/><name>)"
    return _partition_account_problem(arn, match["partition"], match["account"])


def arn_problem(arn: str) -> Optional[str]:
    match = ARN.match(arn)
    if not match:
        return f"{short(arn)} is not an ARN (arn:<partition>:<service>:<region>:<account>:<resource>)"
    account = match["account"]
    # Some ARNs have no account (S3 buckets) or name AWS itself (managed policies); a wildcard is allowed there too.
    if account in ("", "aws", "*"):
        return _partition_account_problem(arn, match["partition"], "000000000000")
    return _partition_account_problem(arn, match["partition"], account)


def _partition_account_problem(arn: str, partition: str, account: str) -> Optional[str]:
    if partition not in PARTITIONS:
        return f"{short(arn)}: unknown partition {short(partition)}; AWS partitions: {', '.join(PARTITIONS)}"
    if not ACCOUNT.match(account):
        return f"{short(arn)}: the account {short(account)} is not a 12-digit AWS account ID"
    return None


def duplicate(items: Iterable[str]) -> list[str]:
    seen, dupes = set(), []
    for item in items:
        if item in seen and item not in dupes:
            dupes.append(item)
        seen.add(item)
    return dupes


def overlapping(cidrs: Iterable[str], within: str) -> list[str]:
    """The CIDRs that share addresses with `within` (all valid networks)."""
    net = ipaddress.ip_network(within)
    return [c for c in cidrs if ipaddress.ip_network(c).version == net.version and ipaddress.ip_network(c).overlaps(net)]


def env_name_problem(name: str) -> Optional[str]:
    if not ENV_NAME.match(name):
        return f"{short(name)} is not a valid environment variable name (letters, digits and _, not starting with a digit)"
    if len(name) > ENV_NAME_MAX:
        return f"{short(name)} is longer than {ENV_NAME_MAX} characters, the most a ConfigMap or Secret key may have"
    if name in PLATFORM_ENV or name.upper().startswith(PLATFORM_ENV_PREFIXES):
        return f"{name} is in a prefix the platform owns ({', '.join(PLATFORM_ENV_PREFIXES)}: OpenTelemetry, Vault, Istio, Kubernetes); choose another name"
    return None


def port_problem(port: int) -> Optional[str]:
    if port in ISTIO_RESERVED_PORTS:
        return (
            f"{port} is in {ISTIO_RESERVED_PORTS.start}-{ISTIO_RESERVED_PORTS.stop - 1}, the ports Istio's sidecar and istiod use "
            "(Envoy admin, inbound/outbound capture, health, metrics); pick a port outside that range"
        )
    return None


def object_data_problem(what: str, size: int) -> Optional[str]:
    """ConfigMaps and Secrets: Kubernetes refuses one whose data exceeds 1 MiB."""
    if size > OBJECT_DATA_MAX_BYTES:
        return f"the {what} would hold {size} bytes; Kubernetes refuses a ConfigMap or Secret over {OBJECT_DATA_MAX_BYTES} bytes (1 MiB)"
    return None
