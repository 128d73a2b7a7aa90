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

The agent is the one privileged piece: it runs on the host network and writes the plugin binary
and chained config into the node's /opt/cni/bin and /etc/cni/net.d. It lives alone in its own
namespace so that namespace, and only it, admits that (istio-system stays restricted).

helm.v3.Release: the release waits for the DaemonSet, so istiod (which requires this addon) starts
injecting CNI-mode sidecars only once nodes can set them up.
"""

from __future__ import annotations

from typing import Any

from components.versions import ISTIO_CNI

from . import flows as net
from .base import Addon

NAMESPACE = "istio-cni"
RELEASE = "istio-cni"
# The EKS AMIs' CNI directories (the chart's defaults, spelled out: the agent writes into them).
CNI_BIN_DIR = "/opt/cni/bin"
CNI_CONF_DIR = "/etc/cni/net.d"


class IstioCni(Addon):
    name = "istio-cni"
    namespace = NAMESPACE
    pod_security = "privileged"
    pod_security_reason = ("the node agent runs privileged on the host network and writes the CNI plugin and its chained config "
                           "into the node's /opt/cni/bin and /etc/cni/net.d (hostPath)")

    def install(self) -> None:
        self.release = self.helm(ISTIO_CNI, {
            "cniBinDir": CNI_BIN_DIR,
            "cniConfDir": CNI_CONF_DIR,
            # Chained after the AWS VPC CNI, never replacing it.
            "chained": True,
            "repair": {"enabled": True, "repairPods": True},
        }, release=RELEASE)

    def flows(self) -> list[net.Flow]:
        # The agent runs on the host network, where NetworkPolicies do not apply; declared all the same.
        return [net.api_server(self.vpc_cidr)]

    def outputs(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "serviceAccount": RELEASE}
