"""Pod Security Standards rules: each control fails on its forbidden values and passes on the allowed
ones, in every container list and every workload kind, with pod-level inheritance as the standard says."""

from __future__ import annotations

import pytest
from policy_samples import DEV, changed, deployment, findings, first, pod, workload

from policy.rules.base import POD_SECURITY_LATEST, WORKLOADS, Settings

OK = deployment()


def ctx(obj):
    return first(obj)["securityContext"]


def pod_ctx(obj):
    return pod(obj)["securityContext"]


# (rule, passing input, failing input, a fragment of the failure message)
CASES = [
    (
        "pss-host-process",
        changed(OK, lambda d: ctx(d).update(windowsOptions={"hostProcess": False})),
        changed(OK, lambda d: ctx(d).update(windowsOptions={"hostProcess": True})),
        "hostProcess is true",
    ),
    ("pss-host-namespaces", changed(OK, lambda d: pod(d).update(hostNetwork=False)), changed(OK, lambda d: pod(d).update(hostPID=True)), "hostPID is true"),
    ("pss-privileged", changed(OK, lambda d: ctx(d).update(privileged=False)), changed(OK, lambda d: ctx(d).update(privileged=True)), "privileged is true"),
    (
        "pss-capabilities-baseline",
        changed(OK, lambda d: ctx(d).update(capabilities={"add": ["CHOWN", "NET_BIND_SERVICE"]})),
        changed(OK, lambda d: ctx(d).update(capabilities={"add": ["SYS_ADMIN"]})),
        "SYS_ADMIN",
    ),
    ("pss-host-path", OK, changed(OK, lambda d: pod(d)["volumes"].append({"name": "docker", "hostPath": {"path": "/var/run"}})), "volume docker: hostPath"),
    (
        "pss-host-ports",
        changed(OK, lambda d: first(d)["ports"][0].update(hostPort=0)),
        changed(OK, lambda d: first(d)["ports"][0].update(hostPort=8080.0)),
        "hostPort 8080",
    ),
    ("pss-probe-host", OK, changed(OK, lambda d: first(d)["livenessProbe"]["httpGet"].update(host="169.254.169.254")), "livenessProbe.httpGet.host"),
    (
        "pss-apparmor",
        changed(
            OK, lambda d: d["spec"]["template"]["metadata"].update(annotations={"container.apparmor.security.beta.kubernetes.io/web": "localhost/k8s-web"})
        ),
        changed(OK, lambda d: ctx(d).update(appArmorProfile={"type": "Unconfined"})),
        "appArmorProfile.type is 'Unconfined'",
    ),
    (
        "pss-selinux",
        changed(OK, lambda d: pod_ctx(d).update(seLinuxOptions={"type": "container_init_t", "level": "s0:c123,c456"})),
        changed(OK, lambda d: ctx(d).update(seLinuxOptions={"type": "spc_t"})),
        "'spc_t' is not a container type",
    ),
    (
        "pss-proc-mount",
        changed(OK, lambda d: ctx(d).update(procMount="Default")),
        changed(OK, lambda d: ctx(d).update(procMount="Unmasked")),
        "procMount is 'Unmasked'",
    ),
    (
        "pss-seccomp-baseline",
        changed(OK, lambda d: ctx(d).update(seccompProfile={"type": "Localhost", "localhostProfile": "p.json"})),
        changed(OK, lambda d: pod_ctx(d).update(seccompProfile={"type": "Unconfined"})),
        "pod: securityContext.seccompProfile.type is Unconfined",
    ),
    (
        "pss-sysctls",
        changed(OK, lambda d: pod_ctx(d).update(sysctls=[{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}])),
        changed(OK, lambda d: pod_ctx(d).update(sysctls=[{"name": "kernel.msgmax", "value": "1"}])),
        "kernel.msgmax",
    ),
    (
        "pss-volume-types",
        changed(OK, lambda d: pod(d)["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": "x"}})),
        changed(OK, lambda d: pod(d)["volumes"].append({"name": "share", "nfs": {"server": "fs", "path": "/"}})),
        "volume share: type nfs",
    ),
    ("pss-privilege-escalation", OK, changed(OK, lambda d: ctx(d).pop("allowPrivilegeEscalation")), "allowPrivilegeEscalation must be false"),
    ("pss-run-as-non-root", OK, changed(OK, lambda d: pod_ctx(d).pop("runAsNonRoot")), "runAsNonRoot is set neither"),
    ("pss-run-as-user", changed(OK, lambda d: pod_ctx(d).update(runAsUser=65532)), changed(OK, lambda d: ctx(d).update(runAsUser=0)), "runAsUser is 0"),
    ("pss-seccomp-restricted", OK, changed(OK, lambda d: pod_ctx(d).pop("seccompProfile")), "seccompProfile.type is set neither"),
    (
        "pss-proc-mount-restricted",
        changed(OK, lambda d: (pod(d).update(hostUsers=False), ctx(d).update(procMount="Default"))),
        changed(OK, lambda d: (pod(d).update(hostUsers=False), ctx(d).update(procMount="Unmasked"))),
        "procMount is 'Unmasked'",
    ),
    (
        "pss-capabilities-restricted",
        changed(OK, lambda d: ctx(d)["capabilities"].update(add=["NET_BIND_SERVICE"])),
        changed(OK, lambda d: ctx(d)["capabilities"].update(drop=["NET_RAW"])),
        "capabilities.drop must include ALL",
    ),
]


@pytest.mark.parametrize("rule, good, bad, fragment", CASES, ids=[c[0] for c in CASES])
def test_rule_passes_and_fails(rule, good, bad, fragment):
    assert findings(rule, good) == []
    messages = findings(rule, bad)
    assert messages and any(fragment in m for m in messages), messages


@pytest.mark.parametrize("kind", [k.rsplit("/", 1)[-1] for k in WORKLOADS])
def test_every_workload_kind_is_read_at_its_pod_template(kind):
    good = workload(kind)
    assert all(findings(rule, good) == [] for rule, *_ in CASES)
    template = (
        good["spec"] if kind == "Pod" else (good["spec"]["jobTemplate"]["spec"]["template"]["spec"] if kind == "CronJob" else good["spec"]["template"]["spec"])
    )
    template["containers"][0]["securityContext"]["privileged"] = True
    assert findings("pss-privileged", good) == ["container web: securityContext.privileged is true"]


def test_init_and_ephemeral_containers_are_checked():
    bad = changed(
        OK,
        lambda d: pod(d).update(
            initContainers=[{"name": "setup", "image": "x", "securityContext": {"runAsUser": 0}}],
            ephemeralContainers=[{"name": "debug", "image": "x", "securityContext": {"privileged": True}}],
        ),
    )
    assert findings("pss-run-as-user", bad) == ["init container setup: securityContext.runAsUser is 0 (root)"]
    assert findings("pss-privileged", bad) == ["ephemeral container debug: securityContext.privileged is true"]
    assert "init container setup: securityContext.allowPrivilegeEscalation must be false" in findings("pss-privilege-escalation", bad)


def test_run_as_non_root_inherits_from_the_pod_and_a_container_can_only_make_it_worse():
    per_container = changed(OK, lambda d: (pod_ctx(d).pop("runAsNonRoot"), ctx(d).update(runAsNonRoot=True)))
    assert findings("pss-run-as-non-root", per_container) == []
    overridden = changed(OK, lambda d: ctx(d).update(runAsNonRoot=False))
    assert findings("pss-run-as-non-root", overridden) == ["container web: securityContext.runAsNonRoot is false"]
    pod_false = changed(OK, lambda d: pod_ctx(d).update(runAsNonRoot=False))
    assert "pod: securityContext.runAsNonRoot is false" in findings("pss-run-as-non-root", pod_false)


def test_seccomp_may_be_set_per_container_instead_of_on_the_pod():
    per_container = changed(OK, lambda d: (pod_ctx(d).pop("seccompProfile"), ctx(d).update(seccompProfile={"type": "RuntimeDefault"})))
    assert findings("pss-seccomp-restricted", per_container) == []
    unconfined = changed(OK, lambda d: ctx(d).update(seccompProfile={"type": "Unconfined"}))
    assert findings("pss-seccomp-restricted", unconfined) == ["container web: securityContext.seccompProfile.type is 'Unconfined'"]


def test_windows_pods_are_exempt_from_the_linux_only_restricted_controls():
    windows = changed(OK, lambda d: (pod(d).update(os={"name": "windows"}), ctx(d).clear()))
    for rule in ("pss-privilege-escalation", "pss-capabilities-restricted"):
        assert findings(rule, windows) == []
    assert findings("pss-run-as-non-root", changed(windows, lambda d: pod_ctx(d).pop("runAsNonRoot")))


def test_apparmor_annotations_follow_the_standard():
    def annotated(value):
        return changed(OK, lambda d: d["spec"]["template"]["metadata"].update(annotations={"container.apparmor.security.beta.kubernetes.io/web": value}))

    assert findings("pss-apparmor", annotated("runtime/default")) == findings("pss-apparmor", annotated("")) == []
    assert findings("pss-apparmor", annotated("unconfined")) == ["annotation container.apparmor.security.beta.kubernetes.io/web is 'unconfined'"]


def test_selinux_user_and_role_are_forbidden():
    bad = changed(OK, lambda d: pod_ctx(d).update(seLinuxOptions={"user": "system_u", "role": "system_r"}))
    assert findings("pss-selinux", bad) == ["pod: seLinuxOptions.user must not be set", "pod: seLinuxOptions.role must not be set"]


def test_pod_security_does_not_depend_on_the_environment():
    bad = changed(OK, lambda d: ctx(d).update(privileged=True))
    assert findings("pss-privileged", bad, DEV) == findings("pss-privileged", bad)


def test_non_workloads_are_not_judged():
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"hostNetwork": True}}
    assert findings("pss-host-namespaces", service) == []


# -- the standard's changes by version (policy.podSecurityVersion) ---------------------------------


def at(version: tuple[int, int]) -> Settings:
    return Settings(environment="prod", pod_security_version=version)


def sysctl(name: str):
    return changed(OK, lambda d: pod_ctx(d).update(sysctls=[{"name": name, "value": "1"}]))


@pytest.mark.parametrize(
    "name, since",
    [
        ("net.ipv4.ip_local_reserved_ports", (1, 27)),
        ("net.ipv4.tcp_keepalive_time", (1, 29)),
        ("net.ipv4.tcp_rmem", (1, 32)),
        ("net.ipv4.tcp_wmem", (1, 32)),
        ("net.ipv4.tcp_slow_start_after_idle", (1, 37)),
        ("net.ipv4.tcp_notsent_lowat", (1, 37)),
    ],
)
def test_the_safe_sysctls_grow_by_version(name, since):
    assert findings("pss-sysctls", sysctl(name), at(since)) == []
    assert findings("pss-sysctls", sysctl(name), at((since[0], since[1] - 1))) == [f"pod: sysctls {name} are not in the safe set"]


def test_the_default_version_is_the_newest_known():
    assert Settings().pod_security_version == POD_SECURITY_LATEST == (1, 37)
    assert findings("pss-sysctls", sysctl("net.ipv4.tcp_notsent_lowat")) == []


def test_probe_hosts_are_checked_from_1_34():
    bad = changed(OK, lambda d: first(d)["livenessProbe"]["httpGet"].update(host="169.254.169.254"))
    assert findings("pss-probe-host", bad, at((1, 33))) == []
    assert findings("pss-probe-host", bad, at((1, 34)))


def test_selinux_container_engine_type_is_allowed_from_1_31():
    engine = changed(OK, lambda d: pod_ctx(d).update(seLinuxOptions={"type": "container_engine_t"}))
    assert findings("pss-selinux", engine, at((1, 31))) == []
    assert findings("pss-selinux", engine, at((1, 30))) == ["pod: seLinuxOptions.type 'container_engine_t' is not a container type"]


def user_namespaced(obj):
    return changed(obj, lambda d: pod(d).update(hostUsers=False))


def test_user_namespaces_relax_proc_mount_for_baseline_only_from_1_35():
    unmasked = changed(OK, lambda d: ctx(d).update(procMount="Unmasked"))
    assert findings("pss-proc-mount", user_namespaced(unmasked), at((1, 35))) == []
    assert findings("pss-proc-mount-restricted", user_namespaced(unmasked), at((1, 35))) == ["container web: securityContext.procMount is 'Unmasked'"]
    # Before 1.35 baseline forbids it outright, so the restricted rule does not repeat it.
    assert findings("pss-proc-mount", user_namespaced(unmasked), at((1, 34))) == ["container web: securityContext.procMount is 'Unmasked'"]
    assert findings("pss-proc-mount-restricted", user_namespaced(unmasked), at((1, 34))) == []
    # Without a user namespace nothing relaxes.
    assert findings("pss-proc-mount", unmasked, at((1, 37)))


@pytest.mark.parametrize(
    "rule, root", [("pss-run-as-non-root", lambda d: pod_ctx(d).update(runAsNonRoot=False)), ("pss-run-as-user", lambda d: ctx(d).update(runAsUser=0))]
)
def test_user_namespaces_relax_the_root_controls_from_1_35(rule, root):
    as_root = changed(OK, root)
    assert findings(rule, user_namespaced(as_root), at((1, 35))) == []
    assert findings(rule, user_namespaced(as_root), at((1, 34)))
    assert findings(rule, as_root, at((1, 37)))
    # hostUsers: true is the host's user namespace: no relaxation.
    assert findings(rule, changed(as_root, lambda d: pod(d).update(hostUsers=True)), at((1, 37)))


@pytest.mark.parametrize("rule", ["pss-privilege-escalation", "pss-capabilities-restricted", "pss-seccomp-restricted"])
def test_windows_exemption_starts_at_1_25(rule):
    windows = changed(OK, lambda d: (pod(d).update(os={"name": "windows"}), pod_ctx(d).pop("seccompProfile"), ctx(d).clear()))
    assert findings(rule, windows, at((1, 25))) == []
    assert findings(rule, windows, at((1, 24)))


def test_image_volumes_and_volumes_without_a_source_are_allowed():
    image = changed(OK, lambda d: pod(d)["volumes"].append({"name": "model", "image": {"reference": "registry/model:1"}}))
    bare = changed(OK, lambda d: pod(d)["volumes"].append({"name": "scratch"}))  # defaulted to emptyDir
    assert findings("pss-volume-types", image) == findings("pss-volume-types", bare) == []
    # A null source is no source: it cannot vouch for another one, and alone it is an emptyDir.
    smuggled = changed(OK, lambda d: pod(d)["volumes"].append({"name": "share", "configMap": None, "nfs": {"server": "fs", "path": "/"}}))
    assert findings("pss-volume-types", smuggled) == ["volume share: type nfs is not allowed"]
    assert findings("pss-volume-types", changed(OK, lambda d: pod(d)["volumes"].append({"name": "scratch", "nfs": None}))) == []
