"""Pod security, restricted profile: the Pod Security Standards controls added to baseline.

Pod-level settings are inherited as the standard says: a container may leave runAsNonRoot or
seccompProfile unset when the pod sets it, and a container's own value overrides the pod's.
Windows pods (spec.os.name: windows) are exempt from the privilege-escalation, seccomp and
capabilities controls, as in Pod Security Admission.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from .base import as_list, as_map, containers, dig, num, pod_rule, security_context

Pod = Mapping[str, Any]

ALLOWED_VOLUMES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret")
CONFINED = ("RuntimeDefault", "Localhost")


def _windows(spec: Pod) -> bool:
    return dig(spec, "os", "name") == "windows"


def _volume_types(meta: Pod, spec: Pod) -> Iterator[str]:
    for v in as_list(spec.get("volumes")):
        v = as_map(v)
        if not any(key in v for key in ALLOWED_VOLUMES):
            kinds = [k for k in v if k != "name"] or ["(no source)"]
            yield f"volume {v.get('name', '?')}: type {', '.join(kinds)} is not allowed"


def _privilege_escalation(meta: Pod, spec: Pod) -> Iterator[str]:
    if _windows(spec):
        return
    for where, c in containers(spec):
        if security_context(c).get("allowPrivilegeEscalation") is not False:
            yield f"{where}: securityContext.allowPrivilegeEscalation must be false"


def _run_as_non_root(meta: Pod, spec: Pod) -> Iterator[str]:
    pod = dig(spec, "securityContext", "runAsNonRoot")
    if pod is False:
        yield "pod: securityContext.runAsNonRoot is false"
    for where, c in containers(spec):
        own = security_context(c).get("runAsNonRoot")
        if own is False:
            yield f"{where}: securityContext.runAsNonRoot is false"
        elif own is None and pod is not True:
            yield f"{where}: runAsNonRoot is set neither on the container nor on the pod"


def _run_as_user(meta: Pod, spec: Pod) -> Iterator[str]:
    if num(dig(spec, "securityContext", "runAsUser")) == 0:
        yield "pod: securityContext.runAsUser is 0 (root)"
    for where, c in containers(spec):
        if num(security_context(c).get("runAsUser")) == 0:
            yield f"{where}: securityContext.runAsUser is 0 (root)"


def _seccomp_restricted(meta: Pod, spec: Pod) -> Iterator[str]:
    if _windows(spec):
        return
    pod = dig(spec, "securityContext", "seccompProfile", "type")
    if pod is not None and pod not in CONFINED:
        yield f"pod: securityContext.seccompProfile.type is {pod!r}"
    for where, c in containers(spec):
        own = dig(security_context(c), "seccompProfile", "type")
        if own is not None and own not in CONFINED:
            yield f"{where}: securityContext.seccompProfile.type is {own!r}"
        elif own is None and pod is None:
            yield f"{where}: seccompProfile.type is set neither on the container nor on the pod"


def _capabilities_restricted(meta: Pod, spec: Pod) -> Iterator[str]:
    if _windows(spec):
        return
    for where, c in containers(spec):
        caps = as_map(security_context(c).get("capabilities"))
        if "ALL" not in as_list(caps.get("drop")):
            yield f"{where}: capabilities.drop must include ALL"
        extra = [str(cap) for cap in as_list(caps.get("add")) if cap != "NET_BIND_SERVICE"]
        if extra:
            yield f"{where}: adds capabilities {', '.join(extra)}; only NET_BIND_SERVICE may be added"


RULES = [
    pod_rule("pss-volume-types", "medium", "Pod Security restricted: only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected and secret volumes.",
             "Replace other volume sources (nfs, hostPath, awsElasticBlockStore, ...) with a PersistentVolumeClaim or one of the allowed types.", _volume_types),
    pod_rule("pss-privilege-escalation", "high", "Pod Security restricted: every container sets allowPrivilegeEscalation: false.",
             "Set securityContext.allowPrivilegeEscalation: false on every container, init container and ephemeral container.", _privilege_escalation),
    pod_rule("pss-run-as-non-root", "high", "Pod Security restricted: containers must run as non-root (pod-level runAsNonRoot: true, or on every container).",
             "Set spec.securityContext.runAsNonRoot: true on the pod (and never false on a container).", _run_as_non_root),
    pod_rule("pss-run-as-user", "high", "Pod Security restricted: runAsUser is never 0.",
             "Run as a non-zero UID: remove runAsUser: 0 and set e.g. runAsUser: 65532, or rely on the image's non-root USER.", _run_as_user),
    pod_rule("pss-seccomp-restricted", "medium", "Pod Security restricted: seccomp profile RuntimeDefault or Localhost is set (on the pod, or on every container).",
             "Set spec.securityContext.seccompProfile.type: RuntimeDefault on the pod.", _seccomp_restricted),
    pod_rule("pss-capabilities-restricted", "medium", "Pod Security restricted: containers drop ALL capabilities and add back only NET_BIND_SERVICE.",
             "Set securityContext.capabilities: {drop: [ALL]} on every container; add only NET_BIND_SERVICE if it binds a port below 1024.", _capabilities_restricted),
]
