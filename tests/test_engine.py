"""The embedded engine records what the program registers, faithfully and without secrets."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from components.spec.schema import SCHEMA_DIR, rendered
from engine import render
from engine.conformance import errors
from engine.preview import main as preview
from engine.render import manifest_files
from engine.runtime import ProgramError, mask
from engine.stacks import run


def test_records_have_the_engine_fields(prod):
    cluster = prod.named("platform-cluster", "aws:eks/cluster:Cluster")
    assert cluster.urn == "urn:pulumi:prod::platform::platform:index:Platform$platform:aws:Cluster$aws:eks/cluster:Cluster::platform-cluster"
    assert cluster.custom and not cluster.remote
    assert cluster.parent == prod.named("platform-cluster", "platform:aws:Cluster").urn
    assert cluster.provider_urn == prod.stacks["prod"].of_type("pulumi:providers:aws")[0].urn
    # The cluster waits for its log group (explicit dependency) and uses the KMS key (input dependency).
    deps = set(cluster.dependencies)
    assert prod.named("platform-cluster-control-plane").urn in deps
    assert prod.named("platform-cluster-secrets", "aws:kms/key:Key").urn in deps
    assert cluster.inputs["name"] == "shop-prod"


def test_outputs_are_wired_from_mock_state(prod):
    out = prod.outputs
    assert out["clusterName"] == "shop-prod"
    assert out["clusterEndpoint"].startswith("https://") and out["clusterEndpoint"].endswith(".eks.amazonaws.com")
    assert out["oidcProviderArn"].startswith("arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/")
    assert len(out["privateSubnetIds"]) == 3 and all(s.startswith("subnet-") for s in out["privateSubnetIds"])


def test_secrets_are_masked_everywhere(prod, tmp_path):
    platform = prod.stacks["prod"]
    assert platform.outputs["kubeconfig"] == "[secret]"
    provider = platform.of_type("pulumi:providers:kubernetes")[0]
    assert provider.inputs["kubeconfig"] == "[secret]"
    text = json.dumps([r.to_json() for r in platform]) + json.dumps(platform.outputs)
    assert "get-token" not in text and "certificate-authority-data" not in text
    # A team stack's kubeconfig holds no credential (endpoint, CA, and the command that gets a token): plain, and token-free.
    for name, rec in prod.stacks.items():
        if name != "prod":
            user = json.loads(rec.of_type("pulumi:providers:kubernetes")[0].inputs["kubeconfig"])["users"][0]["user"]
            assert set(user) == {"exec"}, name


def test_mask_walks_nested_values():
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "hunter2"}
    assert mask({"a": [secret, {"b": secret}], "c": "plain"}) == {"a": ["[secret]", {"b": "[secret]"}], "c": "plain"}


def test_a_secret_map_is_masked_per_key():
    secret_map = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": {"password": "hunter2", "user": "admin"}}
    assert mask({"stringData": secret_map}) == {"stringData": {"password": "[secret]", "user": "[secret]"}}


def test_rendered_secrets_keep_their_keys_and_validate_as_written(stack):
    secrets = [f for f in manifest_files(stack).values() if f["kind"] == "Secret" and "stringData" in f]
    assert secrets
    for secret in secrets:
        assert secret["stringData"] and set(secret["stringData"].values()) == {"[secret]"}
        assert errors(secret, "1.35", masked_as_written=True) == [], secret["metadata"]["name"]
    # The engine's stand-ins for secret config values never reach a rendered object.
    assert "offline-secret-" not in json.dumps(list(manifest_files(stack).values()))


def test_the_sdk_is_handed_an_empty_stack_trace():
    """The engine spares the SDK its per-resource stack walk (engine/runtime.py). It must still be
    the function the pinned SDK calls for every resource and read, or the saving quietly goes, and
    what it returns must be what the SDK sends when it finds no declaring frame."""
    import inspect

    from pulumi.runtime import resource
    from pulumi.runtime.proto import source_pb2

    import engine.runtime  # noqa: F401 (what puts the empty trace in place)

    source = inspect.getsource(resource)
    assert source.count("stack_trace = _get_stack_trace()") >= 2  # register and read
    assert "return source_pb2.StackTrace()" in source  # the SDK's own answer when no frame is found
    assert resource._get_stack_trace is source_pb2.StackTrace
    assert resource._get_source_position(resource._get_stack_trace()) is None


def test_runs_are_deterministic_and_isolated():
    first, second = run("dev", ROOT), run("dev", ROOT)
    assert [r.to_json() for r in first] == [r.to_json() for r in second]
    assert first.outputs == second.outputs


# Scheduled chaos experiments are declared for non-prod stacks only (the stack model refuses them in prod).
DEV_ONLY = {"platform:addons:ChaosMesh", "platform:workloads:ChaosSchedules", "kubernetes:chaos-mesh.org/v1alpha1:Schedule"}


def test_dev_and_prod_differ_only_by_declaration(dev, prod):
    assert {r.type for r in prod} - {r.type for r in dev} == {"aws:ec2/flowLog:FlowLog", "aws:iam/rolePolicy:RolePolicy"} or {r.type for r in prod} >= {
        r.type for r in dev
    } - DEV_ONLY
    assert len(dev.of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len(prod.of_type("aws:ec2/natGateway:NatGateway")) == 3


def test_duplicate_urn_is_an_error(tmp_path):
    program = tmp_path / "__main__.py"
    program.write_text("import pulumi_aws as aws\naws.sqs.Queue('q')\naws.sqs.Queue('q')\n")
    with pytest.raises(ProgramError, match="duplicate resource URN urn:pulumi:dev::platform::aws:sqs/queue:Queue::q: two resources share"):
        run("dev", ROOT, program=program)


def test_committed_schema_is_current():
    for name, text in rendered().items():
        assert (SCHEMA_DIR / name).read_text() == text, f"stacks/schema/{name} is stale: run `make schema`"


def test_declaration_files_point_editors_at_the_schema():
    for path in [*ROOT.glob("stacks/*.yaml"), *ROOT.glob("stacks/services/*/*.yaml")]:
        first = path.read_text().splitlines()[0]
        target = "schema/stack.schema.json" if path.parent.name == "stacks" else "../../schema/service.schema.json"
        assert first == f"# yaml-language-server: $schema={target}", path


def test_preview_writes_build_files(tmp_path, capsys):
    assert preview(["prod", "--out", str(tmp_path)]) == 0
    records = json.loads((tmp_path / "resources.json").read_text())
    assert {"urn", "type", "name", "parent", "provider", "custom", "remote", "dependencies", "inputs"} <= set(records[0])
    summary = (tmp_path / "summary.md").read_text()
    assert "| `aws:eks/cluster:Cluster` | 1 |" in summary and "| storefront | web | standard |" in summary
    assert "stack prod:" in capsys.readouterr().out
    files = render.manifest_files(run("prod", ROOT))
    for rel in files:
        assert (tmp_path / "manifests" / rel).is_file()
