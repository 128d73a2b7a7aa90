"""Istio's CNI node agent: the sidecars' traffic redirection set up by the node, not by the pod.

Without it, every injected pod starts with `istio-init`, an init container that writes iptables
rules inside the pod and so needs NET_ADMIN and NET_RAW, which neither the baseline nor the
restricted Pod Security level admits. With it (and istiod told so: the istio addon sets the chart's
`cni.enabled`, which its injector passes to the sidecar template as `pilot.cni.enabled`), the agent
DaemonSet chains a plugin after the AWS VPC CNI that sets up the redirection when the pod sandbox
is created, and the injected init container becomes `istio-validation`: it only checks the rules
are in place, as UID 1337 with every capability dropped and a read-only root filesystem. Team
namespaces can then enforce `restricted`.

A pod that lands on a node before the agent is ready there fails its validation; the agent's
repair controller (on by default) finds such pods and recreates them.

The agent is the one privileged piece: it runs as root with NET_ADMIN, SYS_ADMIN and the like, and
writes the plugin binary and chained config into the node's /opt/cni/bin and /etc/cni/net.d. It lives alone in its own
namespace so that namespace, and only it, admits that (istio-system stays restricted).

helm.v3.Release: the release waits for the DaemonSet, so istiod (which requires this addon) starts
injecting CNI-mode sidecars only once nodes can set them up.
"""

from __future__ import annotations

from typing import Any

from components.monitoring.scrape import Metrics, Monitor
from components.versions import ISTIO_CNI

from . import flows as net
from .base import Addon

NAMESPACE = "istio-cni"
RELEASE = "istio-cni"
# The EKS AMIs' CNI directories (the chart's defaults, spelled out: the agent writes into them).
CNI_BIN_DIR = "/opt/cni/bin"
CNI_CONF_DIR = "/etc/cni/net.d"
# The agent's pods (the chart's DaemonSet labels) and its metrics port (named `metrics` in the DaemonSet).
POD_LABELS = {"k8s-app": "istio-cni-node"}
METRICS_PORT = 15014


class IstioCni(Addon):
    name = "istio-cni"
    namespace = NAMESPACE
    # The agent's own metrics (repairs, CNI plugin calls): the chart ships no monitor, so the prometheus
    # addon creates this PodMonitor; the namespace lets Prometheus in on the metrics port.
    metrics = Metrics(
        monitors=(
            Monitor(
                "PodMonitor",
                "istio-cni",
                {
                    "namespaceSelector": {"matchNames": [NAMESPACE]},
                    "selector": {"matchLabels": POD_LABELS},
                    "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s"}],
                },
            ),
        )
    )
    pod_security = "privileged"
    pod_security_reason = (
        "the node agent runs as root with NET_ADMIN, NET_RAW, SYS_ADMIN, SYS_PTRACE and DAC_OVERRIDE, and writes "
        "the CNI plugin and its chained config "
        "into the node's /opt/cni/bin and /etc/cni/net.d (hostPath)"
    )

    def install(self) -> None:
        self.release = self.helm(
            ISTIO_CNI,
            {
                "cniBinDir": CNI_BIN_DIR,
                "cniConfDir": CNI_CONF_DIR,
                # Chained after the AWS VPC CNI, never replacing it.
                "chained": True,
                "repair": {"enabled": True, "repairPods": True},
            },
            release=RELEASE,
        )

    def flows(self) -> list[net.Flow]:
        # In sidecar mode (no ambient) the agent's pods are on the pod network (hostNetwork only with
        # ambient's shared host namespace), so its namespace's policies govern them: the API, and
        # Prometheus on the metrics port.
        return [net.api_server(self.vpc_cidr), *self.scraped((METRICS_PORT,), selector=POD_LABELS)]

    def outputs(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "serviceAccount": RELEASE}
