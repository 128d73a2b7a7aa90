"""The rules offline: the sample stacks pass, `make preview` blocks a noncompliant change, and
`make check` judges arbitrary manifest files."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from conftest import ROOT
from policy_samples import changed, deployment, first

from components.spec import load
from engine.check import main as check
from engine.preview import main as preview
from policy import settings
from policy.evaluate import evaluate, recorded_subjects


def test_sample_stacks_have_no_mandatory_violation(stack):
    report = evaluate(recorded_subjects(stack), settings.from_spec(load(stack.stack, ROOT).spec))
    assert not report.mandatory, report.text()


def test_preview_writes_the_policy_report(tmp_path, capsys):
    assert preview(["prod", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "policy.json").read_text())
    assert report["environment"] == "prod" and report["mandatory"] == 0 and report["rules"] > 50
    assert "policy: 0 mandatory" in capsys.readouterr().out


def test_preview_blocks_a_prod_endpoint_open_to_the_whole_internet(scratch, tmp_path, capsys):
    # The declaration model refuses 0.0.0.0/0 in prod, but not two halves that add up to it.
    scratch.edit("stacks/prod.yaml", lambda d: d["cluster"].update(endpoint={"publicAccess": True, "publicAccessCidrs": ["0.0.0.0/1", "128.0.0.0/1"]}))
    assert preview(["prod", "--root", str(scratch.root), "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "MANDATORY eks-endpoint-not-world-open" in out
    assert "publicAccessCidrs 0.0.0.0/1, 128.0.0.0/1 cover the whole internet" in out
    violations = json.loads((tmp_path / "policy.json").read_text())["violations"]
    assert [v["rule"] for v in violations] == ["eks-endpoint-not-world-open"]


def test_preview_refuses_a_service_pulling_from_an_unapproved_registry(scratch, tmp_path, capsys):
    """The loader refuses it naming the file (exit 2); the policy pack's image-registry-allowed rule judges
    the same with the same matcher on any manifest (tests/test_policy_workloads.py, `make check`)."""
    image = "docker.io/library/nginx:1.27.0"
    scratch.add_service({"name": "reviews", "team": "catalog", "image": image, "port": 8080, "envs": {"staging": {"image": image}, "prod": {"image": image}}})
    out = tmp_path / "out"
    assert preview(["prod", "--root", str(scratch.root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "stacks/services/catalog/reviews.yaml: image: 'docker.io/library/nginx:1.27.0' is not under policy.allowedRegistries" in err and not out.exists()


# -- make check -------------------------------------------------------------------------------

GOOD = [
    deployment(),
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"ports": [{"port": 80}]}},
    {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    },
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny", "namespace": "shop"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    },
]
BAD_JOB = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": {"name": "report", "namespace": "shop"},
    "spec": {
        "schedule": "@daily",
        "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "report", "image": "busybox", "securityContext": {"privileged": True}}]}}}},
    },
}


def write(tmp_path, name: str, docs) -> str:
    path = tmp_path / name
    path.write_text(docs if isinstance(docs, str) else yaml.safe_dump_all(docs, sort_keys=False))
    return str(path)


def test_check_passes_compliant_multi_document_files(tmp_path, capsys):
    assert check([write(tmp_path, "app.yaml", GOOD[:2]), write(tmp_path, "more.yaml", GOOD[2:])]) == 0
    assert "policy: 0 mandatory and 0 advisory" in capsys.readouterr().out


def test_check_fails_on_a_mandatory_violation_and_says_how_to_fix(tmp_path, capsys):
    path = write(tmp_path, "job.yaml", [*GOOD, BAD_JOB])
    assert check([path]) == 1
    out = capsys.readouterr().out
    assert f"MANDATORY pss-privileged [critical] {path}: CronJob shop/report" in out
    assert "container report: securityContext.privileged is true" in out and "fix: Remove securityContext.privileged" in out


def test_check_reports_json_and_uses_the_stack_enforcement(tmp_path, capsys):
    single = changed(deployment(), lambda d: d["spec"].update(replicas=1))
    path = write(tmp_path, "app.yaml", [single, *GOOD[1:]])
    assert check([path, "--format", "json", "--stack", "dev"]) == 0  # replicas is prod-only
    capsys.readouterr()
    assert check([path, "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["stack"] == "prod" and report["files"] == [path]
    assert [(v["rule"], v["enforcement"]) for v in report["violations"]] == [("replicas-minimum", "mandatory")]


def test_check_reads_kind_list_documents(tmp_path, capsys):
    listed = {"apiVersion": "v1", "kind": "List", "items": [*GOOD, changed(deployment("api"), lambda d: first(d).update(image="nginx:latest"))]}
    assert check([write(tmp_path, "list.yaml", [listed])]) == 1
    assert "image-tag-pinned [high]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, error",
    [
        ("kind: [unclosed\n", "not valid YAML (line 2"),
        ("just some text\n", "document 1 is not a Kubernetes object"),
        ("---\n# nothing\n", "no Kubernetes objects in the file"),
        (yaml.safe_dump_all([GOOD[0], {"kind": "Deployment"}]), "document 2 is not a Kubernetes object"),
        (b"\xff\xfe\x00binary", "cannot read"),
    ],
)
def test_check_refuses_files_it_cannot_judge(tmp_path, capsys, content, error):
    path = tmp_path / "input.yaml"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    assert check([str(path)]) == 2
    assert error in capsys.readouterr().err


def test_check_refuses_missing_files_and_unknown_stacks(tmp_path, capsys):
    assert check([str(tmp_path / "absent.yaml")]) == 2
    assert "absent.yaml: cannot read: No such file or directory" in capsys.readouterr().err
    assert check([write(tmp_path, "app.yaml", GOOD), "--stack", "qa"]) == 2
    assert "no policy configuration for stack 'qa'" in capsys.readouterr().err


def test_make_check_target(tmp_path):
    bad = write(tmp_path, "bad.yaml", [BAD_JOB])
    run = subprocess.run(["make", "-s", "check", f"FILES={bad}", "FORMAT=json"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode != 0
    assert "pss-privileged" in {v["rule"] for v in json.loads(run.stdout)["violations"]}
    good = write(tmp_path, "good.yaml", GOOD)
    assert subprocess.run(["make", "-s", "check", f"FILES={good}", "STACK=dev"], cwd=ROOT, capture_output=True, text=True).returncode == 0
