"""Pod security, baseline profile: the controls of the Kubernetes Pod Security Standards.

One rule per control of https://kubernetes.io/docs/concepts/security/pod-security-standards/
as Pod Security Admission implements it, at the stack's `policy.podSecurityVersion` (default: the
newest known, 1.37): each control changes at the version PSA's own check does. Applied to every container list
(containers, initContainers, ephemeralContainers) of Pods and of the pod templates of
ReplicationControllers, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from .base import as_list, as_map, containers, dig, in_user_namespace, is_true, num, pod_rule, security_context, show

Pod = Mapping[str, Any]
Version = tuple[int, int]

BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
# The safe sysctls, by the version that added them to the set.
SAFE_SYSCTLS_SINCE = {
    (1, 0): {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
    },
    (1, 27): {"net.ipv4.ip_local_reserved_ports"},
    (1, 29): {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"},
    (1, 32): {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"},
    (1, 37): {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"},
}
SELINUX_TYPES_SINCE = {(1, 0): {"", "container_t", "container_init_t", "container_kvm_t"}, (1, 31): {"container_engine_t"}}
PROBE_HOST_SINCE = (1, 34)
USER_NAMESPACE_RELAXATION_SINCE = (1, 35)
CONFINED = ("RuntimeDefault", "Localhost")
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def allowed(table: dict[Version, set[str]], v: Version) -> set[str]:
    """The union of every entry added at or before version v."""
    return set().union(*(names for since, names in table.items() if since <= v))


def _host_process(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    if is_true(dig(spec, "securityContext", "windowsOptions", "hostProcess")):
        yield "pod: securityContext.windowsOptions.hostProcess is true"
    for where, c in containers(spec):
        if is_true(dig(security_context(c), "windowsOptions", "hostProcess")):
            yield f"{where}: securityContext.windowsOptions.hostProcess is true"


def _host_namespaces(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if is_true(spec.get(key)):
            yield f"pod: {key} is true"


def _privileged(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    for where, c in containers(spec):
        if is_true(security_context(c).get("privileged")):
            yield f"{where}: securityContext.privileged is true"


def _capabilities(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    for where, c in containers(spec):
        extra = [str(cap) for cap in as_list(dig(security_context(c), "capabilities", "add")) if cap not in BASELINE_CAPABILITIES]
        if extra:
            yield f"{where}: adds capabilities {', '.join(extra)} beyond the baseline set"


def _host_path(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    for v in as_list(spec.get("volumes")):
        if as_map(v).get("hostPath") is not None:
            yield f"volume {as_map(v).get('name', '?')}: hostPath volumes are forbidden"


def _host_ports(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    for where, c in containers(spec):
        for p in as_list(c.get("ports")):
            port = as_map(p).get("hostPort")
            if port is not None and num(port) != 0:
                yield f"{where}: hostPort {show(port)}"


def _probe_hosts(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    if v < PROBE_HOST_SINCE:
        return
    handlers = [("livenessProbe",), ("readinessProbe",), ("startupProbe",), ("lifecycle", "postStart"), ("lifecycle", "preStop")]
    for where, c in containers(spec):
        for path in handlers:
            for action in ("httpGet", "tcpSocket"):
                host = dig(c, *path, action, "host")
                if host:
                    yield f"{where}: {'.'.join(path)}.{action}.host is {host!r}"


def _apparmor(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    kind = dig(spec, "securityContext", "appArmorProfile", "type")
    if kind is not None and kind not in CONFINED:
        yield f"pod: securityContext.appArmorProfile.type is {kind!r}"
    for where, c in containers(spec):
        kind = dig(security_context(c), "appArmorProfile", "type")
        if kind is not None and kind not in CONFINED:
            yield f"{where}: securityContext.appArmorProfile.type is {kind!r}"
    for key, value in as_map(meta.get("annotations")).items():
        if key.startswith(APPARMOR_ANNOTATION) and value not in ("", "runtime/default") and not str(value).startswith("localhost/"):
            yield f"annotation {key} is {value!r}"


def _selinux(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    sources = [("pod", as_map(spec.get("securityContext")))] + [(w, security_context(c)) for w, c in containers(spec)]
    for where, ctx in sources:
        opts = as_map(ctx.get("seLinuxOptions"))
        if (opts.get("type") or "") not in allowed(SELINUX_TYPES_SINCE, v):
            yield f"{where}: seLinuxOptions.type {opts.get('type')!r} is not a container type"
        for key in ("user", "role"):
            if opts.get(key):
                yield f"{where}: seLinuxOptions.{key} must not be set"


def _proc_mount(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    if v >= USER_NAMESPACE_RELAXATION_SINCE and in_user_namespace(spec):
        return  # baseline relaxes for user-namespaced pods; pss-proc-mount-restricted still holds
    yield from unmasked_proc(spec)


def unmasked_proc(spec: Pod) -> Iterator[str]:
    for where, c in containers(spec):
        mount = security_context(c).get("procMount")
        if mount is not None and mount != "Default":
            yield f"{where}: securityContext.procMount is {mount!r}"


def _seccomp_baseline(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    if dig(spec, "securityContext", "seccompProfile", "type") == "Unconfined":
        yield "pod: securityContext.seccompProfile.type is Unconfined"
    for where, c in containers(spec):
        if dig(security_context(c), "seccompProfile", "type") == "Unconfined":
            yield f"{where}: securityContext.seccompProfile.type is Unconfined"


def _sysctls(meta: Pod, spec: Pod, v: Version) -> Iterator[str]:
    safe = allowed(SAFE_SYSCTLS_SINCE, v)
    unsafe = [str(as_map(s).get("name")) for s in as_list(dig(spec, "securityContext", "sysctls")) if as_map(s).get("name") not in safe]
    if unsafe:
        yield f"pod: sysctls {', '.join(unsafe)} are not in the safe set"


RULES = [
    pod_rule(
        "pss-host-process",
        "critical",
        "Pod Security baseline: no Windows HostProcess containers.",
        "Remove securityContext.windowsOptions.hostProcess (pod and containers).",
        _host_process,
    ),
    pod_rule(
        "pss-host-namespaces",
        "high",
        "Pod Security baseline: pods do not share the host's network, PID or IPC namespace.",
        "Remove hostNetwork, hostPID and hostIPC from the pod spec (or set them to false).",
        _host_namespaces,
    ),
    pod_rule(
        "pss-privileged",
        "critical",
        "Pod Security baseline: no privileged containers.",
        "Remove securityContext.privileged (or set it to false) on every container.",
        _privileged,
    ),
    pod_rule(
        "pss-capabilities-baseline",
        "high",
        "Pod Security baseline: containers add no capability beyond the default set.",
        "Add only capabilities from the baseline set (in practice: only NET_BIND_SERVICE, see pss-capabilities-restricted).",
        _capabilities,
    ),
    pod_rule(
        "pss-host-path",
        "high",
        "Pod Security baseline: no hostPath volumes.",
        "Replace hostPath volumes with emptyDir, configMap, secret, projected or a PersistentVolumeClaim.",
        _host_path,
    ),
    pod_rule(
        "pss-host-ports",
        "medium",
        "Pod Security baseline: containers bind no host ports.",
        "Remove hostPort from container ports; expose the pod through a Service instead.",
        _host_ports,
    ),
    pod_rule(
        "pss-probe-host",
        "medium",
        "Pod Security baseline (1.34+): probes and lifecycle handlers do not target another host.",
        "Remove `host` from httpGet/tcpSocket probes and lifecycle handlers; they must target the pod itself.",
        _probe_hosts,
    ),
    pod_rule(
        "pss-apparmor",
        "medium",
        "Pod Security baseline: AppArmor is not disabled or overridden with an unconfined profile.",
        "Use appArmorProfile.type RuntimeDefault or Localhost (annotations: runtime/default or localhost/<profile>), or leave it unset.",
        _apparmor,
    ),
    pod_rule(
        "pss-selinux",
        "medium",
        "Pod Security baseline: SELinux type is a container type and user/role are not set.",
        "Remove seLinuxOptions, or use a type among container_t, container_init_t, container_kvm_t, container_engine_t and no user or role.",
        _selinux,
    ),
    pod_rule(
        "pss-proc-mount",
        "medium",
        "Pod Security baseline: containers keep the default masked /proc (1.35+: unless the pod runs in a user namespace, hostUsers: false).",
        "Remove securityContext.procMount (or set it to Default).",
        _proc_mount,
    ),
    pod_rule(
        "pss-seccomp-baseline",
        "medium",
        "Pod Security baseline: seccomp is never Unconfined.",
        "Set seccompProfile.type to RuntimeDefault (or Localhost) instead of Unconfined.",
        _seccomp_baseline,
    ),
    pod_rule(
        "pss-sysctls",
        "medium",
        "Pod Security baseline: only namespaced, safe sysctls.",
        "Remove sysctls outside the safe set of the stack's Pod Security version (kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.tcp_* keepalive/fin/syncookies/rmem/wmem, ...).",
        _sysctls,
    ),
]
