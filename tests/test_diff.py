"""The offline desired-state diff (`make diff`): scratch changes must show exactly themselves.

Most cases compare the recorded prod stack with a run of the same program on edited declarations
(in-process, through `engine.diff.compare`). One test goes end to end through git: a clone with a
committed chart bump, `make diff BASE=HEAD~1`, the base run by its own checkout's code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.spec import load
from engine.diff import EXIT_BLOCKING, EXIT_OK, compare, exit_status, markdown, mermaid, path_text, property_changes
from engine.record import document, record

ROOT = Path(__file__).resolve().parent.parent
VERSION_LABEL = 'metadata.labels["app.kubernetes.io/version"]'


@pytest.fixture(scope="module")
def prod_doc(prod):
    return document(prod, load("prod", ROOT))


def diff_against_prod(prod_doc, scratch) -> dict:
    return compare(prod_doc, record("prod", scratch.root))


def changed(result: dict, op: str | None = None) -> list[dict]:
    return [r for r in result["resources"] if op is None or r["op"] == op]


def assert_nothing_else(result: dict, *, policy: bool = True, outputs: bool = True) -> None:
    if policy:
        assert result["policy"]["introduced"] == [] and result["policy"]["fixed"] == []
        assert not result["blocking"]
    if outputs:
        assert result["outputs"] == []


# -- the comparison itself ------------------------------------------------------------------------


def test_a_stack_against_itself_has_no_changes(prod_doc):
    result = compare(prod_doc, prod_doc)
    assert result["resources"] == [] and result["outputs"] == []
    assert result["manifests"] == {"added": [], "removed": [], "changed": []}
    assert result["summary"]["create"] == result["summary"]["update"] == result["summary"]["replace"] == result["summary"]["delete"] == 0
    assert exit_status(result) == EXIT_OK
    assert "No changes" in markdown(result)


def test_paths_read_like_pulumi_preview_diff():
    old = {"metadata": {"labels": {"app.kubernetes.io/name": "a"}}, "spec": {"containers": [{"image": "x:1"}]}}
    new = {"metadata": {"labels": {"app.kubernetes.io/name": "b"}}, "spec": {"containers": [{"image": "x:2"}]}}
    found = {path_text(c["tokens"]): (c["old"], c["new"]) for c in property_changes(old, new)}
    assert found == {'metadata.labels["app.kubernetes.io/name"]': ("a", "b"), "spec.containers[0].image": ("x:1", "x:2")}


def test_an_inserted_list_element_is_one_addition():
    changes = property_changes({"p": ["b", "c"]}, {"p": ["a", "b", "c"]})
    assert [(path_text(c["tokens"]), c["kind"], c.get("new")) for c in changes] == [("p[0]", "add", "a")]


def resource(type_: str, inputs: dict, name: str = "r", **extra) -> dict:
    return {
        "urn": f"urn:pulumi:prod::platform::{type_}::{name}",
        "type": type_,
        "name": name,
        "parent": None,
        "provider": None,
        "custom": True,
        "remote": False,
        "protect": False,
        "dependencies": [],
        "inputs": inputs,
        **extra,
    }


def doc(*resources: dict) -> dict:
    return {
        "format": 1,
        "stack": "prod",
        "resources": list(resources),
        "outputs": {},
        "manifests": {},
        "policy": {"environment": "prod", "violations": []},
        "services": {},
    }


def one_change(type_: str, old: dict, new: dict) -> dict:
    result = compare(doc(resource(type_, old)), doc(resource(type_, new)))
    (entry,) = result["resources"]
    return entry


def test_a_resource_moved_by_its_aliases_is_no_delete_and_create():
    """ResourceOptions.aliases: Pulumi keeps the state (a Vault mount is not unmounted); so does the diff."""
    mount, provider = "vault:index/mount:Mount", "pulumi:providers:vault"
    old_provider = resource(provider, {"address": "https://vault"}, name="old-vault")
    old = resource(mount, {"path": "secret"}, name="old-kv", provider=f"{old_provider['urn']}::old-id")
    new_provider = resource(provider, {"address": "https://vault"}, name="vault-provider", aliases=[old_provider["urn"]])
    new = resource(mount, {"path": "secret"}, name="vault-kv", provider=f"{new_provider['urn']}::new-id", aliases=[old["urn"]])
    result = compare(doc(old_provider, old), doc(new_provider, new))
    assert {r["op"] for r in result["resources"]} == {"update"}
    entry = next(r for r in result["resources"] if r["name"] == "vault-kv")
    assert [c["path"] for c in entry["changes"]] == ['["(moved)"]'] and entry["replaceReasons"] == []
    # Without the alias it would be what Pulumi would do: delete the mount, create another.
    result = compare(doc(old_provider, old), doc(new_provider, {**new, "aliases": []}))
    assert {(r["name"], r["op"]) for r in result["resources"] if r["type"] == mount} == {("old-kv", "delete"), ("vault-kv", "create")}


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "a", "namespace": "n"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "a"}}, "template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}},
}


@pytest.mark.parametrize(
    "type_, old, new, reasons",
    [
        (
            "kubernetes:apps/v1:Deployment",
            DEPLOYMENT,
            {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "selector": {"matchLabels": {"app": "b"}}}},
            ["spec.selector"],
        ),
        ("kubernetes:apps/v1:Deployment", DEPLOYMENT, {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "replicas": 3}}, []),
        ("kubernetes:apps/v1:Deployment", DEPLOYMENT, {**DEPLOYMENT, "metadata": {"name": "a", "namespace": "m"}}, ["metadata.namespace"]),
        ("kubernetes:core/v1:Service", {"spec": {"clusterIP": "None", "selector": {"a": "1"}}}, {"spec": {"clusterIP": "None", "selector": {"a": "2"}}}, []),
        ("kubernetes:core/v1:Service", {"spec": {"clusterIP": "None"}}, {"spec": {"clusterIP": "10.0.0.1"}}, ["spec.clusterIP"]),
        (
            "kubernetes:apps/v1:StatefulSet",
            {"spec": {"serviceName": "s"}},
            {"spec": {"serviceName": "s", "volumeClaimTemplates": [{"metadata": {"name": "d"}}]}},
            ["spec.volumeClaimTemplates"],
        ),
        (
            "kubernetes:batch/v1:Job",
            {"spec": {"template": {"spec": {"containers": [{"image": "x:1"}]}}}},
            {"spec": {"template": {"spec": {"containers": [{"image": "x:2"}]}}}},
            ["spec.template"],
        ),
        ("kubernetes:core/v1:ConfigMap", {"data": {"a": "1"}}, {"data": {"a": "2"}}, ["data"]),
        ("kubernetes:core/v1:Pod", {"spec": {"containers": [{"image": "x:1"}]}}, {"spec": {"containers": [{"image": "x:2"}]}}, ["spec.containers[*].image"]),
        ("kubernetes:helm.sh/v3:Release", {"name": "a", "version": "1.0.0"}, {"name": "a", "version": "1.0.1"}, []),
        ("kubernetes:helm.sh/v3:Release", {"name": "a", "namespace": "x"}, {"name": "a", "namespace": "y"}, ["namespace"]),
        ("aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16"}, {"cidrBlock": "10.1.0.0/16"}, ["cidrBlock"]),
        ("aws:ec2/subnet:Subnet", {"availabilityZone": "eu-west-1a"}, {"availabilityZone": "eu-west-1b"}, ["availabilityZone"]),
        ("aws:ec2/subnet:Subnet", {"tags": {"a": "1"}}, {"tags": {"a": "2"}}, []),
        ("aws:eks/cluster:Cluster", {"name": "a"}, {"name": "b"}, ["name"]),
        # EKS updates a cluster's subnets in place (UpdateClusterConfig); no replacement.
        ("aws:eks/cluster:Cluster", {"vpcConfig": {"subnetIds": ["s-1"]}}, {"vpcConfig": {"subnetIds": ["s-2"]}}, []),
        ("aws:eks/cluster:Cluster", {"encryptionConfig": {"resources": ["secrets"]}}, {}, ["encryptionConfig (removed)"]),
        ("aws:eks/nodeGroup:NodeGroup", {"instanceTypes": ["m7i.large"]}, {"instanceTypes": ["m7i.xlarge"]}, ["instanceTypes"]),
        ("aws:eks/nodeGroup:NodeGroup", {"scalingConfig": {"maxSize": 3}}, {"scalingConfig": {"maxSize": 5}}, []),
    ],
)
def test_replace_on_change(type_, old, new, reasons):
    entry = one_change(type_, old, new)
    assert entry["replaceReasons"] == reasons
    assert entry["op"] == ("replace" if reasons else "update")
    assert any(c["replace"] for c in entry["changes"]) == bool(reasons)


def test_a_replacement_is_a_warning_in_the_comment():
    old = resource("aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16"}, name="net", protect=True)
    new = resource("aws:ec2/vpc:Vpc", {"cidrBlock": "10.1.0.0/16"}, name="net", protect=True)
    text = markdown(compare(doc(old), doc(new)))
    assert "> [!WARNING]" in text and "**replaced**" in text and "`cidrBlock`" in text and "protected" in text
    assert 'cidrBlock: "10.0.0.0/16" -> "10.1.0.0/16"   # forces replacement' in text


def test_secrets_stay_masked():
    old = resource("kubernetes:core/v1:Secret", {"metadata": {"name": "s"}, "stringData": "[secret]", "type": "Opaque"})
    new = resource("kubernetes:core/v1:Secret", {"metadata": {"name": "s"}, "stringData": "[secret]", "type": "Opaque", "immutable": True})
    result = compare(doc(old), doc(new))
    assert "[secret]" not in json.dumps(result["resources"][0]["changes"])  # an unchanged secret is no change
    created = compare(doc(), doc(new))
    assert created["resources"][0]["inputs"]["stringData"] == "[secret]"


def test_the_comment_fits_a_github_comment():
    big = [resource("kubernetes:core/v1:ConfigMap", {"metadata": {"name": f"c{i}"}, "data": {"k": "x" * 500}}, name=f"c{i}") for i in range(400)]
    bigger = [resource(r["type"], {**r["inputs"], "data": {"k": "y" * 500}}, name=r["name"]) for r in big]
    text = markdown(compare(doc(*big), doc(*bigger)))
    assert len(text) <= 60_000 and "more line(s) in diff.json" in text


# -- scratch changes, each showing exactly itself -------------------------------------------------


def test_image_change(prod_doc, scratch):
    data = scratch.read("stacks/services/checkout/orders.yaml")
    old_image = data["envs"]["prod"]["image"]
    new_image = re.sub(r":[^:/@]+$", ":99.0.0", old_image)
    scratch.edit("stacks/services/checkout/orders.yaml", lambda d: d["envs"]["prod"].update(image=new_image))
    result = diff_against_prod(prod_doc, scratch)

    assert result["summary"]["create"] == result["summary"]["delete"] == result["summary"]["replace"] == 0
    assert {r["service"] for r in changed(result)} == {"orders"}
    # One object changes: the Deployment (orders is a canary target; Flagger reads the new pod
    # template from it, so the Canary itself needs no change).
    assert [r["type"] for r in changed(result)] == ["kubernetes:apps/v1:Deployment"]
    paths = {c["path"] for r in changed(result) for c in r["changes"]}
    assert paths == {"spec.template.spec.containers[0].image", VERSION_LABEL, "spec.template." + VERSION_LABEL}
    (deployment,) = [r for r in changed(result) if r["type"] == "kubernetes:apps/v1:Deployment"]
    image = next(c for c in deployment["changes"] if c["path"] == "spec.template.spec.containers[0].image")
    assert (image["old"], image["new"]) == (old_image, new_image)
    # Manifests: exactly the orders service's objects, and among them the Deployment.
    assert result["manifests"]["added"] == result["manifests"]["removed"] == []
    assert [m["path"] for m in result["manifests"]["changed"]] == ["checkout/deployment-orders.yaml"]
    assert result["services"]["changed"] == {"orders": "changed"}
    assert_nothing_else(result)
    text = markdown(result)
    assert f'spec.template.spec.containers[0].image: "{old_image}" -> "{new_image}"' in text
    assert "forces replacement" not in text


def test_new_service(prod_doc, scratch):
    scratch.add_service(
        {
            "name": "reviews",
            "team": "catalog",
            "port": 8080,
            "dependsOn": ["inventory"],
            "image": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/reviews:1.0.0",
            "envs": {
                "staging": {"image": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/reviews:1.0.0"},
                "prod": {"image": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/reviews:1.0.0"},
            },
        }
    )
    result = diff_against_prod(prod_doc, scratch)

    created = changed(result, "create")
    assert created and {r["service"] for r in created} == {"reviews"}
    assert {"kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service", "platform:workloads:Microservice"} <= {r["type"] for r in created}
    assert changed(result, "delete") == changed(result, "replace") == []
    # The one thing that changes elsewhere: inventory now admits its new caller, in its network and
    # mesh policies, by one added entry each.
    updated = changed(result, "update")
    assert {(r["service"], r["type"]) for r in updated} <= {
        ("inventory", "kubernetes:networking.k8s.io/v1:NetworkPolicy"),
        ("inventory", "kubernetes:security.istio.io/v1:AuthorizationPolicy"),
    }
    for r in updated:
        assert [c["kind"] for c in r["changes"]] == ["add"]
        assert "reviews" in json.dumps(r["changes"][0]["new"])
    assert result["manifests"]["removed"] == []
    assert all(p.startswith("catalog/") and "reviews" in p for p in result["manifests"]["added"])
    assert {m["path"] for m in result["manifests"]["changed"]} <= {"catalog/networkpolicy-inventory.yaml", "catalog/authorizationpolicy-inventory.yaml"}
    assert_nothing_else(result)
    # Reviewers see the new service and the edge it adds.
    assert result["services"]["changed"] == {"reviews": "added", "inventory": "changed"}
    assert {"from": "reviews", "to": "inventory", "state": "added"} in result["services"]["edges"]
    graph = mermaid(result["services"])
    assert graph.startswith("graph LR") and "svc_reviews -- new --> svc_inventory" in graph and 'svc_reviews["reviews"]:::added' in graph
    assert "```mermaid\ngraph LR" in markdown(result)
    assert "offline-secret" not in json.dumps(result)


def test_changed_prod_node_pool(prod_doc, scratch):
    spec = scratch.read("stacks/prod.yaml")
    ((index, pool),) = [(i, p) for i, p in enumerate(spec["karpenter"]["nodePools"]) if p["name"] == "critical"]
    old_cpu = pool["cpuLimit"]
    new_cpu = str(int(old_cpu) * 2)
    scratch.edit("stacks/prod.yaml", lambda d: d["karpenter"]["nodePools"][index].update(cpuLimit=new_cpu))
    result = diff_against_prod(prod_doc, scratch)

    (entry,) = changed(result)
    assert (entry["op"], entry["type"], entry["name"]) == ("update", "kubernetes:karpenter.sh/v1:NodePool", "platform-node-pools-critical")
    assert [(c["path"], c["old"], c["new"]) for c in entry["changes"]] == [("spec.limits.cpu", old_cpu, new_cpu)]
    assert [m["path"] for m in result["manifests"]["changed"]] == ["_cluster/nodepool-critical.yaml"]
    assert result["manifests"]["added"] == result["manifests"]["removed"] == []
    assert result["services"]["changed"] == {}
    assert_nothing_else(result)
    assert f'spec.limits.cpu: "{old_cpu}" -> "{new_cpu}"' in markdown(result)


def test_changed_vpc_cidr_warns_of_replacements(prod_doc, scratch):
    scratch.edit("stacks/prod.yaml", lambda d: d["network"].update(cidr="10.30.0.0/16"))
    result = diff_against_prod(prod_doc, scratch)
    replaced = {r["type"] for r in changed(result, "replace")}
    assert {"aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet"} <= replaced
    vpc = next(r for r in changed(result) if r["type"] == "aws:ec2/vpc:Vpc")
    assert vpc["replaceReasons"] == ["cidrBlock"] and vpc["protect"] is True
    text = markdown(result)
    assert "> [!WARNING]" in text and "protected" in text


PRIVILEGED = """
import pulumi_kubernetes as k8s
k8s.apps.v1.Deployment("debug-shell", metadata={"name": "debug-shell", "namespace": "checkout"},
    spec={"selector": {"matchLabels": {"app": "debug-shell"}},
          "template": {"metadata": {"labels": {"app": "debug-shell"}},
                       "spec": {"containers": [{"name": "shell", "image": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/debug:1.0.0",
                                                "securityContext": {"privileged": True}}]}}},
    opts=pulumi.ResourceOptions(provider=cluster.provider))
"""


@pytest.fixture(scope="module")
def privileged_doc(tmp_path_factory):
    """prod with a privileged debug Deployment added to the program (no declaration can add one)."""
    from scratch import Scratch

    scratch = Scratch(tmp_path_factory.mktemp("privileged"))
    program = scratch.path("__main__.py")
    program.write_text(program.read_text() + PRIVILEGED)
    return record("prod", scratch.root)


def test_a_privileged_container_fails_the_diff(prod_doc, privileged_doc):
    result = compare(prod_doc, privileged_doc)
    assert exit_status(result) == EXIT_BLOCKING
    introduced = {(v["rule"], v["enforcement"], v["resource"]) for v in result["policy"]["introduced"]}
    assert ("pss-privileged", "mandatory", "Deployment checkout/debug-shell") in introduced
    assert {r["name"] for r in changed(result)} == {"debug-shell"}
    assert result["manifests"]["added"] == ["checkout/deployment-debug-shell.yaml"]
    text = markdown(result)
    assert "> [!CAUTION]" in text and "`pss-privileged`" in text


def test_removing_it_again_fixes_the_violation(prod_doc, privileged_doc):
    result = compare(privileged_doc, prod_doc)
    assert exit_status(result) == EXIT_OK
    assert "pss-privileged" in {v["rule"] for v in result["policy"]["fixed"]}
    assert result["policy"]["introduced"] == []
    assert [r["op"] for r in changed(result)] == ["delete"]


# -- end to end through git -----------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def test_make_diff_end_to_end_on_a_chart_bump(tmp_path):
    """A clone of this repository with the working tree's files committed as the base, then a
    committed KEDA chart bump: `make diff BASE=HEAD~1` shows exactly that one version change."""
    repo = tmp_path / "repo"
    git(tmp_path, "clone", "--quiet", str(ROOT), str(repo))
    for rel in git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard").splitlines():
        src = ROOT / rel
        if src.is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / rel)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "base: the working tree under test")
    versions = repo / "components" / "versions.py"
    text = versions.read_text()
    match = re.search(r'KEDA = Chart\("keda", "(\d+)\.(\d+)\.(\d+)"', text)
    old = ".".join(match.groups())
    new = f"{match[1]}.{match[2]}.{int(match[3]) + 1}"
    versions.write_text(text.replace(f'KEDA = Chart("keda", "{old}"', f'KEDA = Chart("keda", "{new}"'))
    git(repo, "commit", "--quiet", "-am", f"Bump KEDA to {new}")

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    make = ["make", "--no-print-directory", f"PY={sys.executable}", "VENV_STAMP="]
    proc = subprocess.run([*make, "diff", "STACK=prod", "BASE=HEAD~1"], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

    result = json.loads((repo / "build" / "prod" / "diff.json").read_text())
    (entry,) = result["resources"]
    assert (entry["op"], entry["type"], entry["name"]) == ("update", "kubernetes:helm.sh/v3:Release", "keda-keda")
    assert [(c["path"], c["old"], c["new"], c["replace"]) for c in entry["changes"]] == [("version", old, new, False)]
    assert result["manifests"] == {"added": [], "removed": [], "changed": []}
    assert_nothing_else(result)
    assert f'~ version: "{old}" -> "{new}"' in proc.stdout
    assert (repo / "build" / "prod" / "diff.md").read_text() in proc.stdout
    assert git(repo, "worktree", "list").count("\n") == 0  # the base worktree is gone

    # Errors are exit 2 with one clear line: an unknown ref, and a base older than engine.record.
    diff = [sys.executable, "-m", "engine.diff", "prod", "--quiet", "--base"]
    bad = subprocess.run([*diff, "no-such-ref"], cwd=repo, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "BASE=no-such-ref: not a commit" in bad.stderr
    first = git(repo, "rev-list", "--max-parents=0", "HEAD").splitlines()[0]
    old_base = subprocess.run([*diff, first], cwd=repo, env=env, capture_output=True, text=True)
    assert old_base.returncode == 2 and "predates engine/record.py" in old_base.stderr
    assert "Traceback" not in bad.stderr + old_base.stderr
