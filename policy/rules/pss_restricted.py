"""Pod security, restricted profile: the Pod Security Standards controls added to baseline.

Pod-level settings are inherited as the standard says: a container may leave runAsNonRoot or
seccompProfile unset when the pod sets it, and a container's own value overrides the pod's.
Windows pods (spec.os.name: windows) are exempt from the privilege-escalation, seccomp and
capabilities controls from 1.25, and pods in a user namespace (hostUsers: false) from the
runAsNonRoot and runAsUser controls from 1.35, as in Pod Security Admission; from 1.35 the
restricted profile keeps forbidding an unmasked /proc that baseline then allows for such pods.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from .base import as_list, as_map, containers, dig, in_user_namespace, num, pod_rule, security_context
from .pss_baseline import USER_NAMESPACE_RELAXATION_SINCE, unmasked_proc

Pod = Mapping[str, Any]
Version = tuple[int, int]

ALLOWED_VOLUMES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected", "secret")
CONFINED = ("RuntimeDefault", "Localhost")
WINDOWS_EXEMPTION_SINCE = (1, 25)
RUN_AS_USER_SINCE = (1, 23)


def _windows(spec: Pod, v: Version) -> bool:
    return v >= WINDOWS_EXEMPTION_SINCE and dig(spec, "os", "name") == "windows"


def _user_namespace(spec: Pod, v: Version) -> bool:
    return v >= USER_NAMESPACE_RELAXATION_SINCE and in_user_namespace(spec)


def _volume_types(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    for item in as_list(spec.get("volumes")):
        volume = as_map(item)
        # A null source is no source (PSA tests `!= nil`); a volume with none is defaulted to emptyDir.
        kinds = [k for k, source in volume.items() if k != "name" and source is not None]
        if kinds and not any(volume.get(key) is not None for key in ALLOWED_VOLUMES):
            yield f"volume {volume.get('name', '?')}: type {', '.join(kinds)} is not allowed"


def _privilege_escalation(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    if _windows(spec, v):
        return
    for where, c in containers(spec):
        if security_context(c).get("allowPrivilegeEscalation") is not False:
            yield f"{where}: securityContext.allowPrivilegeEscalation must be false"


def _run_as_non_root(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    if _user_namespace(spec, v):
        return
    pod = dig(spec, "securityContext", "runAsNonRoot")
    if pod is False:
        yield "pod: securityContext.runAsNonRoot is false"
    for where, c in containers(spec):
        own = security_context(c).get("runAsNonRoot")
        if own is False:
            yield f"{where}: securityContext.runAsNonRoot is false"
        elif own is None and pod is not True:
            yield f"{where}: runAsNonRoot is set neither on the container nor on the pod"


def _run_as_user(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    if v < RUN_AS_USER_SINCE or _user_namespace(spec, v):
        return
    if num(dig(spec, "securityContext", "runAsUser")) == 0:
        yield "pod: securityContext.runAsUser is 0 (root)"
    for where, c in containers(spec):
        if num(security_context(c).get("runAsUser")) == 0:
            yield f"{where}: securityContext.runAsUser is 0 (root)"


def _seccomp_restricted(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    if _windows(spec, v):
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


def _capabilities_restricted(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    if _windows(spec, v):
        return
    for where, c in containers(spec):
        caps = as_map(security_context(c).get("capabilities"))
        if "ALL" not in as_list(caps.get("drop")):
            yield f"{where}: capabilities.drop must include ALL"
        extra = [str(cap) for cap in as_list(caps.get("add")) if cap != "NET_BIND_SERVICE"]
        if extra:
            yield f"{where}: adds capabilities {', '.join(extra)}; only NET_BIND_SERVICE may be added"


def _proc_mount_restricted(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    # Before 1.35, and outside user namespaces, pss-proc-mount already reports it.
    if _user_namespace(spec, v):
        yield from unmasked_proc(spec)


RULES = [
    pod_rule(
        "pss-volume-types",
        "medium",
        "Pod Security restricted: only configMap, csi, downwardAPI, emptyDir (also a volume with no source), ephemeral, image, persistentVolumeClaim, projected and secret volumes.",
        "Replace other volume sources (nfs, hostPath, awsElasticBlockStore, ...) with a PersistentVolumeClaim or one of the allowed types.",
        _volume_types,
    ),
    pod_rule(
        "pss-privilege-escalation",
        "high",
        "Pod Security restricted: every container sets allowPrivilegeEscalation: false.",
        "Set securityContext.allowPrivilegeEscalation: false on every container, init container and ephemeral container.",
        _privilege_escalation,
    ),
    pod_rule(
        "pss-proc-mount-restricted",
        "medium",
        "Pod Security restricted (1.35+): containers keep the default masked /proc, in a user namespace too.",
        "Remove securityContext.procMount (or set it to Default).",
        _proc_mount_restricted,
    ),
    pod_rule(
        "pss-run-as-non-root",
        "high",
        "Pod Security restricted: containers must run as non-root (pod-level runAsNonRoot: true, or on every container); 1.35+: not required in a user namespace (hostUsers: false).",
        "Set spec.securityContext.runAsNonRoot: true on the pod (and never false on a container).",
        _run_as_non_root,
    ),
    pod_rule(
        "pss-run-as-user",
        "high",
        "Pod Security restricted: runAsUser is never 0 (1.35+: except in a user namespace, hostUsers: false).",
        "Run as a non-zero UID: remove runAsUser: 0 and set e.g. runAsUser: 65532, or rely on the image's non-root USER.",
        _run_as_user,
    ),
    pod_rule(
        "pss-seccomp-restricted",
        "medium",
        "Pod Security restricted: seccomp profile RuntimeDefault or Localhost is set (on the pod, or on every container).",
        "Set spec.securityContext.seccompProfile.type: RuntimeDefault on the pod.",
        _seccomp_restricted,
    ),
    pod_rule(
        "pss-capabilities-restricted",
        "medium",
        "Pod Security restricted: containers drop ALL capabilities and add back only NET_BIND_SERVICE.",
        "Set securityContext.capabilities: {drop: [ALL]} on every container; add only NET_BIND_SERVICE if it binds a port below 1024.",
        _capabilities_restricted,
    ),
]
