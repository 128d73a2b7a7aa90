"""Per-team stacks (issue 23, item 1): the platform stack of an environment, one team stack per
team, and the versioned, secret-free contract between them."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from components import stack_contract
from components.aws.cluster import kubeconfig
from engine.preview import main as preview
from engine.runtime import ProgramError
from engine.stacks import run_platform, run_stack, run_team, team_stack


def test_an_environment_is_its_platform_stack_and_one_stack_per_team(dev):
    assert sorted(dev.stacks) == ["catalog-dev", "checkout-dev", "dev", "messaging-dev", "web-dev"]
    for name, rec in dev.stacks.items():
        project = "platform" if name == "dev" else "platform-teams"
        assert {r.urn.split("::")[:2] == [f"urn:pulumi:{name}", project] for r in rec} == {True}


def test_the_platform_stack_holds_the_rooms_and_no_service(dev):
    platform = dev.stacks["dev"]
    assert not platform.of_type("platform:workloads:Microservice")
    rooms = {r.name for r in platform.of_type("platform:workloads:TeamNamespace")}
    assert rooms == {"catalog", "checkout", "messaging", "web"}
    assert {r.metadata["name"] for r in platform.kubernetes_objects() if r.kind == "SecretStore"} == {"vault"}


def test_a_team_stack_holds_only_its_own_services_in_its_own_namespace(dev):
    for name, rec in dev.stacks.items():
        if name == "dev":
            continue
        team = name.removesuffix("-dev")
        services = {r.name for r in rec.of_type("platform:workloads:Microservice")}
        assert services and services == set(rec.outputs["services"])
        assert {r.metadata.get("namespace") for r in rec.kubernetes_objects()} == {team}, name
        # It writes no room object: the namespace, its quota and its store are the platform's.
        assert not [r for r in rec.kubernetes_objects() if r.kind in ("Namespace", "ResourceQuota", "SecretStore")]


def test_the_contract_is_versioned_and_secret_free(stack):
    outputs = stack.stacks[stack.stack].outputs
    assert set(stack_contract.OUTPUTS) <= set(outputs)
    assert outputs["contractVersion"] == stack_contract.CONTRACT_VERSION
    assert "[secret]" not in json.dumps({k: outputs[k] for k in stack_contract.OUTPUTS})
    assert stack_contract.problems(outputs, "checkout") == []
    room = outputs["teamRooms"]["checkout"]
    assert room["namespace"] == "checkout" and room["secretStore"] == "vault" and room["boundaryArn"].startswith("arn:aws:iam::")


def test_the_team_kubeconfig_is_built_from_endpoint_and_ca_with_exec_auth(prod):
    provider = prod.stacks["checkout-prod"].of_type("pulumi:providers:kubernetes")[0]
    config = json.loads(provider.inputs["kubeconfig"])
    assert config == json.loads(kubeconfig("shop-prod", prod.outputs["clusterEndpoint"], prod.outputs["clusterCertificateAuthority"], "eu-west-1"))
    assert config["users"][0]["user"]["exec"]["args"] == ["eks", "get-token", "--cluster-name", "shop-prod", "--region", "eu-west-1", "--output", "json"]


def test_workload_roles_carry_the_boundary_the_contract_names(dev):
    boundary = dev.outputs["teamRooms"]["messaging"]["boundaryArn"]
    roles = dev.stacks["messaging-dev"].of_type("aws:iam/role:Role")
    assert roles and {r.inputs["permissionsBoundary"] for r in roles} == {boundary}


def test_team_stack_names():
    assert team_stack("checkout-prod", ROOT) == ("checkout", "prod")
    assert team_stack("prod", ROOT) is None
    # Only a team with a room (teams.<team> with a budget) has stacks; the platform team declares only alerts.
    assert team_stack("nobody-prod", ROOT) is None
    assert team_stack("platform-prod", ROOT) is None


def test_preview_of_one_team_stack(tmp_path, capsys):
    assert preview(["checkout-dev", "--out", str(tmp_path)]) == 0
    manifests = {p.parent.name for p in (tmp_path / "manifests").rglob("*.yaml")}
    assert manifests == {"checkout"}
    assert "stack checkout-dev:" in capsys.readouterr().out


@pytest.fixture(scope="module")
def platform_dev():
    return run_platform("dev", ROOT)


@pytest.mark.parametrize("name", stack_contract.OUTPUTS)
def test_a_missing_output_is_refused_by_name(platform_dev, name):
    outputs = {k: v for k, v in platform_dev.outputs.items() if k != name}
    with pytest.raises(ProgramError) as err:
        run_team("web", "dev", ROOT, type(platform_dev)(stack="dev", resources=[], outputs=outputs))
    assert f"stack web-dev: the platform stack has no output {name!r}" in str(err.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"contractVersion": 2}, "the platform stack speaks contract version 2; this team program needs version 1"),
        ({"clusterEndpoint": "[secret]"}, "the platform stack's output 'clusterEndpoint' is a secret; the contract is secret-free"),
        ({"teamRooms": {}}, "the platform stack has no room for team 'web'"),
        ({"telemetry": {"otlpEndpoint": None, "prometheusPrincipal": None}}, "the platform stack's output 'telemetry' is"),
    ],
)
def test_a_platform_that_breaks_the_contract_is_refused(platform_dev, change, message):
    outputs = {**platform_dev.outputs, **change}
    with pytest.raises(ProgramError) as err:
        run_team("web", "dev", ROOT, type(platform_dev)(stack="dev", resources=[], outputs=outputs))
    assert message in str(err.value)


def test_a_renamed_output_fails_the_team_preview_with_exit_2(scratch, tmp_path, capsys):
    main = scratch.path("__main__.py")
    main.write_text(main.read_text().replace('pulumi.export("teamRooms"', 'pulumi.export("rooms"'))
    assert preview(["web-dev", "--root", str(scratch.root), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "stack web-dev: the platform stack has no output 'teamRooms'" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_run_stack_of_a_team_is_that_stack_alone():
    rec = run_stack("web-dev", ROOT)
    assert {r.urn.split("::")[0] for r in rec} == {"urn:pulumi:web-dev"}


@pytest.mark.parametrize(("stack", "message"), [("checkout", "stack 'checkout' is not <team>-<env>"), ("nobody-dev", "team 'nobody' has no room in dev")])
def test_a_team_program_refuses_a_stack_name_that_is_no_team_stack(stack, message):
    from components.team_stack import parse_stack

    with pytest.raises(ValueError, match=message):
        parse_stack(stack, ROOT)
