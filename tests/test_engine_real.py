"""The real engine's pieces (engine/real/, engine/tools/): pins, CRDs rebuilt from reference/, the
program the real CLI runs, the server check's order and verdicts against a live kube-apiserver."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from engine import reference
from engine.real import crds, program, server_check
from engine.recording import Resource
from tools import require_engine

ROOT = Path(__file__).resolve().parent.parent


def tool_versions() -> dict[str, str]:
    text = (ROOT / "engine" / "tools" / "versions.env").read_text()
    return dict(re.findall(r"^([A-Z_]+)=(\S+)$", text, re.M))


def python_pin(name: str) -> str:
    return re.search(rf"^{name}==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)


def semver(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.lstrip("v").split("-")[0].split("."))


def test_engine_tool_versions_follow_the_pins():
    v = tool_versions()
    assert v["PULUMI_SDK_VERSION"] == python_pin("pulumi")
    assert v["PULUMI_KUBERNETES_VERSION"] == python_pin("pulumi-kubernetes")
    # The CLI may be newer than the SDK (its language-host contract is backward compatible), never older.
    assert semver(v["PULUMI_CLI_VERSION"]) >= semver(v["PULUMI_SDK_VERSION"])
    minors = {yaml.safe_load((ROOT / "stacks" / f"{s}.yaml").read_text())["cluster"]["kubernetesVersion"] for s in ("dev", "prod")}
    assert {".".join(v["KUBERNETES_VERSION"].split(".")[:2])} == minors


def test_built_tools_are_ignored_and_the_build_uses_only_the_module_proxy():
    assert ".engine-tools/" in (ROOT / ".gitignore").read_text().splitlines()
    script = (ROOT / "engine" / "tools" / "build.sh").read_text()
    assert "nice -n 19" in script and "-trimpath" in script
    assert not re.search(r"\b(curl|wget|git clone)\b", script)


def test_every_reference_crd_becomes_a_crd_with_one_storage_version():
    objects = crds.crd_objects()
    assert len(objects) >= len(reference.crd_entries()) // 2
    for obj in objects:
        versions = obj["spec"]["versions"]
        assert [v["storage"] for v in versions].count(True) == 1, obj["metadata"]["name"]
        assert obj["metadata"]["name"] == f"{obj['spec']['names']['plural']}.{obj['spec']['group']}"
        assert all(v["schema"]["openAPIV3Schema"].get("type") == "object" for v in versions)


def test_the_storage_version_is_the_most_stable_one():
    order = sorted(["v1alpha1", "v1", "v1beta2", "v2beta1", "v1beta1"], key=crds.version_priority, reverse=True)
    assert order == ["v1", "v2beta1", "v1beta2", "v1beta1", "v1alpha1"]


def test_server_check_order_puts_what_admission_reads_first_and_custom_resources_last():
    objs = [
        {"apiVersion": "flagger.app/v1beta1", "kind": "Canary"},
        {"apiVersion": "apps/v1", "kind": "Deployment"},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy"},
        {"apiVersion": "v1", "kind": "ServiceAccount"},
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass"},
        {"apiVersion": "v1", "kind": "Namespace"},
    ]
    kinds = [o["kind"] for o in sorted(objs, key=server_check.rank)]
    assert kinds == ["Namespace", "PriorityClass", "ServiceAccount", "Deployment", "NetworkPolicy", "Canary"]


def test_the_pod_of_a_cronjob_comes_from_its_job_template():
    cron = {
        "kind": "CronJob",
        "metadata": {"name": "c", "namespace": "n"},
        "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "x"}]}}}}},
    }
    pod = server_check.pod_of(cron)
    assert pod["metadata"] == {"labels": {"a": "b"}, "name": "c-server-check", "namespace": "n"}
    assert pod["spec"]["containers"] == [{"name": "x"}]


def test_pod_security_warnings_are_rejections_and_other_warnings_are_not():
    from engine.real.kube import Response

    assert server_check.judged(Response(200, {}, ['would violate PodSecurity "restricted:latest": privileged'])) is not None
    assert server_check.judged(Response(200, {}, ["policy/v1beta1 is deprecated"])) is None
    assert server_check.judged(Response(422, {"message": 'unknown field "spec.bogus"'})) == 'unknown field "spec.bogus"'


def _resource(name: str, inputs: dict, type_: str, deps: list[str] | None = None) -> Resource:
    return Resource(f"urn:x::{name}", type_, name, None, None, True, False, False, deps or [], inputs)


def test_the_local_program_declares_typed_objects_config_groups_and_secret_config():
    ns = _resource("team-ns", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}, "kubernetes:core/v1:Namespace")
    secret = _resource(
        "creds",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "team"}, "stringData": {"token": "[secret]", "tpl": "${x}"}},
        "kubernetes:core/v1:Secret",
        ["urn:x::team-ns", "urn:x::some-helm-release"],
    )
    canary = _resource(
        "web-canary",
        {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "web", "namespace": "team"}, "spec": {}},
        "kubernetes:flagger.app/v1beta1:Canary",
    )
    helm = _resource("some-helm-release", {"chart": "x"}, "kubernetes:helm.sh/v3:Release")
    doc, keys = program.build([ns, secret, canary, helm], Path("/kubeconfig"))
    res = doc["resources"]
    assert set(res) == {program.PROVIDER, "team-ns", "creds", "web-canary"}  # no chart
    assert res["creds"]["type"] == "kubernetes:core/v1:Secret"
    assert res["creds"]["options"]["dependsOn"] == ["${team-ns}"]  # the chart edge is dropped with the chart
    assert res["creds"]["properties"]["stringData"] == {"token": "${creds-stringdata-token}", "tpl": "$${x}"}
    assert keys == ["creds-stringdata-token"] and doc["config"]["creds-stringdata-token"]["secret"] is True
    assert res["web-canary"]["type"] == "kubernetes:yaml/v2:ConfigGroup"
    assert res["web-canary"]["properties"]["objs"][0]["kind"] == "Canary"
    assert all(r["options"]["provider"] == f"${{{program.PROVIDER}}}" for n, r in res.items() if n != program.PROVIDER)
    assert res["team-ns"]["properties"]["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}


def test_the_image_bump_changes_exactly_one_resource(dev):
    resources = dev.resources
    image = program.first_image(resources)
    new = program.bumped(image)
    assert new != image and new.rsplit(":", 1)[0] == image.split("@")[0].rsplit(":", 1)[0]
    before, _ = program.build(resources, Path("/k"))
    after, _ = program.build(resources, Path("/k"), images={image: new})
    changed = [n for n in before["resources"] if before["resources"][n] != after["resources"][n]]
    assert len(changed) == 1


# --- against a live kube-apiserver (make engine-tools) ----------------------------------------------


@pytest.fixture(scope="module")
def kube(tmp_path_factory):
    require_engine("etcd", "kube-apiserver", "kube-controller-manager")
    from engine.real import cluster

    state = tmp_path_factory.mktemp("cluster")
    try:
        yield cluster.up(None, state=state)
    finally:
        cluster.down(state)


def _restricted_ns(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}


def _deployment(ns: str, container: dict, **pod: object) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "a", "image": "r/a:1", **container}], **pod}},
        },
    }


RESTRICTED = {
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
}


def test_the_local_server_accepts_a_compliant_workload(kube):
    objs = [_restricted_ns("ok"), _deployment("ok", RESTRICTED)]
    assert server_check.check(kube, objs) == []


def test_the_local_server_rejects_what_admission_and_schemas_refuse(kube):
    privileged = _deployment("strict", {"securityContext": {"privileged": True}})
    unknown_field = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "c", "namespace": "strict"}, "spec": {"bogus": 1}}
    no_namespace = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "nowhere"}}
    no_priority = _deployment("strict", RESTRICTED, priorityClassName="does-not-exist")
    no_priority["metadata"]["name"] = "app2"
    rejections = server_check.check(kube, [_restricted_ns("strict"), privileged, unknown_field, no_namespace, no_priority])
    found = {r.what: r.message for r in rejections}
    # Pod Security warns on the workload (and would refuse its pods); the warning is a rejection.
    assert "PodSecurity" in found["apps/v1 Deployment strict/app"]
    assert "bogus" in found["flagger.app/v1beta1 Canary strict/c"]
    assert "nowhere" in found["v1 ConfigMap nowhere/c"]
    # Only the Pod is judged by Priority admission: the Deployment itself passes.
    assert "does-not-exist" in found["the Pod of apps/v1 Deployment strict/app2"]
    assert "apps/v1 Deployment strict/app2" not in found


def test_fields_the_server_drops_or_rewrites_are_rejections_but_canonical_forms_are_not():
    sent = {"spec": {"cpu": "1000m", "memory": "1024Mi", "flag": False, "kept": "a", "lost": "x", "items": [{"n": 1}]}}
    same = {"spec": {"cpu": "1", "memory": "1Gi", "kept": "a", "lost": "x", "items": [{"n": 1}]}}
    assert server_check.rewritten(sent, same) == []
    stored = {"spec": {"cpu": "2", "memory": "1Gi", "kept": "b", "items": [{"n": 1}, {"n": 2}]}}
    assert sorted(server_check.rewritten(sent, stored)) == sorted(
        [".spec.cpu '1000m' stored as '2'", ".spec.kept 'a' stored as 'b'", ".spec.lost dropped", ".spec.items stored as [{'n': 1}, {'n': 2}]"]
    )


def _pulumi_yaml_text(value: str) -> str:
    """A literal string as Pulumi YAML reads it (pulumi-yaml's interpolation: `$$` is one `$`, `${` starts an expression)."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("${", i):
            raise AssertionError(f"{value!r} would interpolate at {i}")
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize("text", ["url: $${__value.raw}", "${x}", "$$", "a$b", "$", "plain"])
def test_literal_dollars_survive_pulumi_yaml(text):
    # The real CLI refused Grafana's `$${__value.raw}` when only `${` was escaped: `$$` read as `$` left `${` behind.
    assert _pulumi_yaml_text(program._escape(text, {}, "w")) == text


def test_every_namespaced_object_waits_for_its_namespace(dev):
    """An environment's recording holds its team stacks, whose objects record no dependency on the
    namespace their platform stack creates; the real engine created them first and the API server
    refused them (namespaces "catalog" not found)."""
    doc, _ = program.build(dev.resources, Path("kubeconfig"))
    resources = doc["resources"]
    namespace_of = {body["properties"]["metadata"]["name"]: name for name, body in resources.items() if body["type"] == "kubernetes:core/v1:Namespace"}
    assert "catalog" in namespace_of
    checked = 0
    for name, body in resources.items():
        obj = body["properties"]["objs"][0] if body["type"] == "kubernetes:yaml/v2:ConfigGroup" else body["properties"]
        ns = (obj.get("metadata") or {}).get("namespace")
        if ns in namespace_of:
            assert f"${{{namespace_of[ns]}}}" in body["options"].get("dependsOn", []), name
            checked += 1
    assert checked > 100
