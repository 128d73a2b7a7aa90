"""The Pulumi policy pack builds and adapts every rule; its config files and docs/policy-rules.md are current."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys

import pulumi_policy
import pytest
import yaml
from conftest import ROOT
from policy_samples import changed, deployment, first
from pulumi_policy import EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy
from pulumi_policy.policy import PolicyResource
from pulumi_policy.proxy import unknown_checking_proxy
from test_policy_cloud import CASES as CLOUD_CASES
from test_policy_pod_security import CASES as POD_CASES
from test_policy_workloads import CASES as WORKLOAD_CASES

from components.spec import SpecError, load
from policy import docs, settings
from policy.pack import policies
from policy.rules import BY_ID, RULES


class Captured(Exception):
    """Raised by the stand-in PolicyPack, so building the pack never starts its gRPC server."""


def capture_pack(monkeypatch) -> dict:
    seen = {}

    def fake(**kwargs):
        seen.update(kwargs)
        raise Captured

    monkeypatch.setattr(pulumi_policy, "PolicyPack", fake)
    with pytest.raises(Captured):
        runpy.run_path(str(ROOT / "policy" / "__main__.py"), run_name="__main__")
    return seen


def test_every_rule_has_a_passing_and_a_failing_test():
    tested = {case[0] for case in POD_CASES + WORKLOAD_CASES + CLOUD_CASES}
    assert tested == set(BY_ID), f"untested: {sorted(set(BY_ID) - tested)}"


def test_pack_main_builds_the_pack_from_every_rule(monkeypatch):
    pack = capture_pack(monkeypatch)
    assert pack["name"] == "platform-policies" and pack["enforcement_level"] is EnforcementLevel.MANDATORY
    assert [p.name for p in pack["policies"]] == [r.id for r in RULES]
    for policy, rule in zip(pack["policies"], RULES, strict=True):
        assert isinstance(policy, StackValidationPolicy if rule.stack else ResourceValidationPolicy)
        assert policy.description == rule.description and policy.remediation_steps == rule.remediation
        assert policy.severity.value == rule.severity and policy.enforcement_level is None
    registry = next(p for p in pack["policies"] if p.name == "image-registry-allowed")
    assert registry.config_schema.required == ["allowedRegistries"]


def test_pack_main_runs_from_inside_the_policy_folder_as_the_cli_does():
    # The CLI's python analyzer (pulumi.policy.__main__) does runpy.run_path(<pack folder>).
    script = "import pulumi_policy, runpy\npulumi_policy.PolicyPack = lambda **kw: print(len(kw['policies']))\nrunpy.run_path('.', run_name='__main__')\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT / "policy", env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(len(RULES))


def resource_args(props: dict, config: dict) -> ResourceValidationArgs:
    return ResourceValidationArgs("kubernetes:apps/v1:Deployment", unknown_checking_proxy(props), "urn:test", "web", None, None, config)


def test_resource_policies_judge_the_proxied_inputs_pulumi_passes():
    by_name = {p.name: p for p in policies()}
    bad = changed(deployment(), lambda d: first(d)["securityContext"].update(privileged=True))
    reports = []
    by_name["pss-privileged"].validate(resource_args(bad, {}), lambda message, urn=None: reports.append(message))
    assert reports == ["container web: securityContext.privileged is true\nFix: " + BY_ID["pss-privileged"].remediation]
    reports.clear()
    by_name["image-registry-allowed"].validate(resource_args(deployment(), {"allowedRegistries": ["ghcr.io/"]}), lambda m, u=None: reports.append(m))
    assert len(reports) == 1 and "not from an allowed registry (ghcr.io/)" in reports[0]


def test_stack_policies_report_against_the_offending_resource():
    policy = {p.name: p for p in policies()}["network-default-deny"]
    workload = PolicyResource("kubernetes:apps/v1:Deployment", unknown_checking_proxy(deployment()), "urn:web", "web", None, None, None, [], {})
    reports = []
    policy.validate(StackValidationArgs([workload], {"environment": "prod"}), lambda m, u=None: reports.append((u, m)))
    assert reports and reports[0][0] == "urn:web" and "namespace shop" in reports[0][1]


def test_prod_only_rules_follow_the_configured_environment():
    policy = {p.name: p for p in policies()}["replicas-minimum"]
    single = deployment(replicas=1.0)
    for environment, expected in (("dev", 0), ("prod", 1)):
        reports = []
        policy.validate(resource_args(single, {"environment": environment}), lambda m, u=None: reports.append(m))
        assert len(reports) == expected


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_pack_config_files_match_the_stack_declarations(stack):
    expected = settings.from_spec(load(stack, ROOT).spec)
    path = settings.CONFIG_DIR / f"{stack}.json"
    assert path.read_text() == settings.render(expected), f"{path} is stale: run .venv/bin/python -m policy.settings"
    assert settings.for_stack(stack) == expected


def test_prod_blocks_on_security_and_availability_and_dev_only_on_security():
    prod, dev = settings.for_stack("prod"), settings.for_stack("dev")
    assert {prod.level(r) for r in RULES} == {"mandatory"}
    assert {r.category for r in RULES if dev.level(r) == "advisory"} == {"availability"}
    assert all(dev.level(r) == "mandatory" for r in RULES if r.category == "security")


def test_pack_config_reads_all_and_plain_levels_as_the_cli_does():
    policy = settings.from_pack_config(
        {"all": "advisory", "pss-privileged": "mandatory", "image-registry-allowed": {"enforcementLevel": "disabled", "allowedRegistries": ["r/"]}}
    )
    assert policy.level(BY_ID["topology-spread"]) == "advisory" and policy.level(BY_ID["pss-privileged"]) == "mandatory"
    assert policy.level(BY_ID["image-registry-allowed"]) == "disabled" and policy.settings.allowed_registries == ("r/",)
    assert policy.settings.environment == "prod" and policy.settings.max_rollback_seconds == 60


def test_policy_rules_reference_is_current():
    page = (ROOT / "docs" / "policy-rules.md").read_text()
    assert docs.rendered() == page, "docs/policy-rules.md is stale: run .venv/bin/python -m policy.docs"
    for rule in RULES:
        assert f"| `{rule.id}` |" in page


def test_policy_project_files_are_valid_for_the_cli():
    project = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python" and project["version"]
    assert (ROOT / "policy" / project["runtime"]["options"]["virtualenv"]).resolve() == (ROOT / ".venv").resolve()
    pins = {line.split("==")[0]: line for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line}
    for line in (ROOT / "policy" / "requirements.txt").read_text().splitlines():
        if "==" in line:
            assert pins[line.split("==")[0]] == line, f"policy/requirements.txt pins {line}, the project pins {pins.get(line.split('==')[0])}"
    for path in settings.CONFIG_DIR.glob("*.json"):
        assert set(json.loads(path.read_text())) == set(BY_ID)


def test_pod_security_version_flows_from_the_stack_to_the_pack(scratch):
    scratch.edit("stacks/prod.yaml", lambda d: d["policy"].update(podSecurityVersion="1.33"))
    policy = settings.from_spec(load("prod", scratch.root).spec)
    assert policy.settings.pod_security_version == (1, 33)
    config = settings.pack_config(policy)
    assert config["pss-sysctls"]["podSecurityVersion"] == "1.33"
    assert settings.from_pack_config(config).settings.pod_security_version == (1, 33)
    # Without configuration the pack judges by the newest standard it knows.
    assert settings.from_pack_config({}).settings.pod_security_version == (1, 37)


def test_pod_security_version_defaults_to_the_clusters_and_may_not_exceed_it(scratch):
    assert settings.from_spec(load("prod", ROOT).spec).settings.pod_security_version == (1, 35)  # kubernetesVersion 1.35
    scratch.edit("stacks/prod.yaml", lambda d: d["policy"].update(podSecurityVersion="1.37"))
    with pytest.raises(SpecError, match="podSecurityVersion: 1.37 is newer than the cluster"):
        load("prod", scratch.root)


@pytest.mark.parametrize("version", ["1.22", "1.38", "2.0", "latest"])
def test_an_unknown_pod_security_version_is_a_declaration_error(scratch, version):
    scratch.edit("stacks/prod.yaml", lambda d: d["policy"].update(podSecurityVersion=version))
    with pytest.raises(SpecError, match="podSecurityVersion"):
        load("prod", scratch.root)
