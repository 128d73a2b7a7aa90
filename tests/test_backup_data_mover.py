"""Volume data survives the region: with `backup.copyTo`, Velero's data mover copies every backed-up
volume into the (replicated) bucket with Kopia, under a repository password kept outside the cluster."""

from __future__ import annotations

import fnmatch
import json

import pytest
from conftest import ROOT

from components.addons import velero
from components.backup import chart, data_mover
from components.scheduling import PRIORITY_CLASSES
from components.security import RESTRICTED_CONTAINER
from components.spec import SpecError, load
from components.spec.backup import BackupSpec
from components.spec.placement import toleration

PASSWORD = {"config": "backupRepositoryPassword"}


def release(stack):
    [r] = [r for r in stack.resources if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs["name"] == "velero"]
    return r


def values(stack):
    return release(stack).inputs["values"]


def secrets(stack):
    return [o for o in stack.kubernetes_objects() if o.kind == "Secret" and o.inputs["metadata"]["name"] == data_mover.REPO_SECRET]


# -- the model --------------------------------------------------------------------------------------


def test_copy_to_moves_volume_data_and_nothing_else_does():
    assert BackupSpec.model_validate({"retention": "30d", "copyTo": {"region": "us-east-1"}, "repositoryPassword": PASSWORD}).moves_data is True
    assert BackupSpec.model_validate({"retention": "30d"}).moves_data is False
    # A stack without a second region may rehearse the prod path.
    assert BackupSpec.model_validate({"retention": "30d", "moveData": True, "repositoryPassword": PASSWORD}).moves_data is True


def test_a_copy_without_moving_volume_data_is_refused(scratch):
    scratch.edit("stacks/prod.yaml", lambda d: d["backup"].update(moveData=False))
    with pytest.raises(SpecError) as err:
        load("prod", scratch.root)
    assert "stacks/prod.yaml: backup: moveData: false with copyTo: volume data would stay in this region's EBS snapshots" in str(err.value)


@pytest.mark.parametrize("stack, edit", [("prod", lambda b: b.pop("repositoryPassword")), ("dev", lambda b: b.update(moveData=True))])
def test_moving_data_without_a_repository_password_is_refused(scratch, capsys, stack, edit):
    scratch.edit(f"stacks/{stack}.yaml", lambda d: edit(d["backup"]))
    err = scratch.rejected(capsys, stack)
    assert f"stacks/{stack}.yaml: backup: repositoryPassword: required when volume data moves into the bucket" in err


def test_a_password_key_no_config_holds_is_a_declaration_error(scratch, capsys):
    scratch.edit("stacks/prod.yaml", lambda d: d["backup"].update(repositoryPassword={"config": "veleroRepoPassword"}))
    err = scratch.rejected(capsys, "prod")
    assert (
        "stacks/prod.yaml: backup.repositoryPassword.config: Pulumi secret config key 'veleroRepoPassword' is neither declared "
        "`secret: true` in Pulumi.yaml nor stored encrypted in Pulumi.prod.yaml" in err
    )
    assert "pulumi config set --secret veleroRepoPassword" in err
    # Every stack is checked, whichever one is previewed.
    assert "backup.repositoryPassword.config" in scratch.rejected(capsys, "dev")


def test_the_key_may_be_declared_or_stored_encrypted_but_never_plain(scratch, capsys):
    # Stored encrypted for this stack only: accepted.
    scratch.edit("stacks/prod.yaml", lambda d: d["backup"].update(repositoryPassword={"config": "veleroRepoPassword"}))
    scratch.write("Pulumi.prod.yaml", "config:\n  aws:region: eu-west-1\n  platform:veleroRepoPassword:\n    secure: AAABAKm0YWJjZGVmZ2hpamtsbW5vcA==\n")
    assert load("prod", scratch.root).spec.backup.repository_password.config == "veleroRepoPassword"
    # Declared in Pulumi.yaml but not as a secret: refused.
    project = scratch.read("Pulumi.yaml")
    project["config"]["backupRepositoryPassword"].pop("secret")
    scratch.write("Pulumi.yaml", project)
    scratch.write("Pulumi.prod.yaml", "config:\n  aws:region: eu-west-1\n")
    scratch.edit("stacks/prod.yaml", lambda d: d["backup"].update(repositoryPassword=PASSWORD))
    assert "Pulumi secret config key 'backupRepositoryPassword' is neither declared" in scratch.rejected(capsys, "prod")


# -- what prod renders ------------------------------------------------------------------------------


def test_prod_schedules_move_volume_data(prod):
    for name in ("teams", "platform"):
        template = prod.manifest("Schedule", name, "velero")["spec"]["template"]
        assert template["snapshotMoveData"] is True and template["snapshotVolumes"] is True
    # The sealing keys are Secrets, no volumes.
    assert "snapshotMoveData" not in prod.manifest("Schedule", "sealing-keys", "velero")["spec"]["template"]


def test_dev_without_a_copy_moves_nothing(dev):
    v = values(dev)
    assert v["deployNodeAgent"] is False and "nodeAgent" not in v
    assert dev.manifest("Schedule", "teams", "velero")["spec"]["template"]["snapshotMoveData"] is False
    assert secrets(dev) == []
    assert not [o for o in dev.kubernetes_objects() if o.kind == "ConfigMap" and o.inputs["metadata"]["name"] == data_mover.NODE_AGENT_CONFIG]
    policies = {o.inputs["metadata"]["name"] for o in dev.kubernetes_objects() if o.kind == "NetworkPolicy"}
    assert not {"allow-kopia-storage", "allow-kopia-identity"} & policies
    assert dev.manifest("Namespace", "velero")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_prod_deploys_a_restricted_node_agent_on_every_pool(prod):
    v = values(prod)
    agent = v["nodeAgent"]
    assert v["deployNodeAgent"] is True and agent["disableHostPath"] is True
    assert agent["containerSecurityContext"] == RESTRICTED_CONTAINER
    assert agent["podSecurityContext"]["runAsNonRoot"] is True and agent["podSecurityContext"]["runAsUser"] != 0
    assert agent["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert agent["resources"]["requests"] and agent["resources"]["limits"]["memory"]
    pools = load("prod", ROOT).spec.karpenter.node_pools
    wanted = [toleration(t) for p in pools for t in p.taints]
    assert wanted and agent["tolerations"] == wanted
    assert agent["priorityClassName"] == "system-node-critical"
    assert agent["extraArgs"] == [f"--node-agent-configmap={data_mover.NODE_AGENT_CONFIG}"]
    # No hostPath volume of our own either.
    assert all("hostPath" not in volume for volume in agent["extraVolumes"])
    assert v["metrics"]["nodeAgentPodMonitor"] == {"enabled": True, "autodetect": False}


def test_kopia_has_a_writable_home_on_the_read_only_roots(prod):
    """Kopia keeps its repository config under $HOME/udmrepo: on a read-only root every moved backup would fail."""
    v = values(prod)
    assert v["containerSecurityContext"]["readOnlyRootFilesystem"] is True
    assert v["nodeAgent"]["containerSecurityContext"]["readOnlyRootFilesystem"] is True
    # configuration.extraEnvVars reaches the server, the node agent and (copied from the server) maintenance Jobs.
    assert {"name": "HOME", "value": chart.HOME} in v["configuration"]["extraEnvVars"]
    # The chart mounts its emptyDir at /tmp on the server when the root is read-only; the node agent has its own.
    assert chart.HOME == "/tmp"
    assert {"name": "tmp", "mountPath": chart.HOME} in v["nodeAgent"]["extraVolumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in v["nodeAgent"]["extraVolumes"]


def test_data_mover_pods_are_labelled_sized_and_prioritised(prod):
    config = prod.manifest("ConfigMap", data_mover.NODE_AGENT_CONFIG, "velero")
    # Velero reads exactly one key of JSON.
    [raw] = config["data"].values()
    parsed = json.loads(raw)
    assert parsed["podLabels"] == data_mover.DATA_MOVER_LABELS
    assert data_mover.KOPIA_CLIENTS.items() <= parsed["podLabels"].items()
    assert set(parsed["podResources"]) == {"cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"}
    assert parsed["priorityClassName"] in {name for name, *_ in PRIORITY_CLASSES.values()}
    assert parsed["podAnnotations"] == {"karpenter.sh/do-not-disrupt": "true"}
    maintenance = values(prod)["configuration"]["repositoryMaintenanceJob"]["repositoryConfigData"]["global"]
    assert data_mover.KOPIA_CLIENTS.items() <= maintenance["podLabels"].items()
    assert set(maintenance["podResources"]) == {"cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"}
    assert maintenance["podAnnotations"] == {"karpenter.sh/do-not-disrupt": "true"}


def test_the_repository_password_comes_masked_from_config_before_the_chart(prod):
    [secret] = secrets(prod)
    assert secret.inputs["metadata"]["namespace"] == "velero"
    assert secret.inputs["stringData"] == {data_mover.REPO_PASSWORD_KEY: "[secret]"}
    names = {o.urn for o in prod.kubernetes_objects() if o.kind == "ConfigMap" and o.inputs["metadata"]["name"] == data_mover.NODE_AGENT_CONFIG}
    assert {secret.urn, *names} <= set(release(prod).dependencies)
    # The stand-in the offline engine gives the config never reaches state or output.
    assert "offline-secret" not in json.dumps([r.inputs for r in prod.resources])


def test_the_rendered_files_hold_no_password(prod, tmp_path):
    from engine.preview import main as preview

    assert preview(["prod", "--root", str(ROOT), "--out", str(tmp_path / "out")]) == 0
    rendered = (tmp_path / "out" / "manifests" / "velero" / "secret-velero-repo-credentials.yaml").read_text()
    assert "repository-password: '[secret]'" in rendered
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert "offline-secret-backupRepositoryPassword" not in path.read_text(), path


def test_the_kopia_repositories_are_never_expired_by_age_and_the_role_reaches_them(prod):
    bucket = "arn:aws:s3:::shop-prod-backup-eu-west-1"
    policy = json.loads(prod.named("velero-server", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    kopia = f"{bucket}/{velero.VELERO_PREFIX}/{data_mover.KOPIA_DIR}/checkout/p0123456789abcdef"

    def allowed(action, resource):
        return any(
            s["Effect"] == "Allow"
            and action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            and any(fnmatch.fnmatchcase(resource, r) for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]))
            for s in policy["Statement"]
        )

    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert allowed(action, kopia), action
    assert allowed("s3:ListBucket", bucket)
    assert not allowed("s3:PutObject", f"{bucket}/vault-snapshots/x.snap")
    # The node agent and its pods run as the server's service account, which the association names.
    association = prod.named("velero-server", "aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs
    assert association["serviceAccount"] == values(prod)["serviceAccount"]["server"]["name"] == velero.SERVICE_ACCOUNT
    assert "serviceAccount" not in values(prod)["nodeAgent"]


# -- restoring another region's backups -------------------------------------------------------------

SOURCE = {
    "bucketName": "shop-prod-backup-eu-central-1",
    "region": "eu-central-1",
    "kmsKeyArn": "arn:aws:kms:eu-central-1:444455556666:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
}


def test_restoring_from_another_stacks_backups_needs_the_data_mover(scratch, capsys):
    scratch.edit("stacks/dev.yaml", lambda d: d["backup"].update(restoreFrom=SOURCE))
    assert "stacks/dev.yaml: backup: restoreFrom: restoring moved volume data needs the node agent" in scratch.rejected(capsys, "dev")


@pytest.mark.parametrize(
    "arn, problem",
    [
        ("arn:aws:kms:eu-west-1:444455556666:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "kmsKeyArn is a key in eu-west-1, the bucket is in eu-central-1"),
        ("alias/shop-prod-backup-eu-central-1", "String should match pattern"),
    ],
)
def test_the_source_key_must_be_a_key_of_the_buckets_region(scratch, capsys, arn, problem):
    scratch.edit("stacks/prod.yaml", lambda d: d["backup"].update(restoreFrom={**SOURCE, "kmsKeyArn": arn}))
    assert problem in scratch.rejected(capsys, "prod")


def test_a_partition_other_than_aws_is_a_valid_source_key():
    source = {**SOURCE, "region": "cn-north-1", "kmsKeyArn": "arn:aws-cn:kms:cn-north-1:444455556666:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"}
    assert (
        BackupSpec.model_validate({"retention": "30d", "moveData": True, "repositoryPassword": PASSWORD, "restoreFrom": source}).restore_from.region
        == "cn-north-1"
    )


def test_moving_data_needs_a_pool_without_taints(scratch, capsys):
    def taint_all(d):
        for pool in d["karpenter"]["nodePools"]:
            pool["taints"] = [*pool.get("taints", []), "dedicated=batch:NoSchedule"]

    scratch.edit("stacks/prod.yaml", taint_all)
    assert "stacks/prod.yaml: backup: volume data moves (moveData or copyTo), but every karpenter.nodePools entry is tainted" in scratch.rejected(
        capsys, "prod"
    )


def test_a_read_only_location_on_the_source_and_read_access_only(scratch):
    from engine.conformance import errors
    from engine.stacks import run

    scratch.edit("stacks/prod.yaml", lambda d: d["backup"].update(restoreFrom=SOURCE))
    rec = run("prod", scratch.root)
    location = rec.manifest("BackupStorageLocation", velero.RESTORE_LOCATION, "velero")
    assert errors(location, "1.35") == []
    assert location["spec"]["accessMode"] == "ReadOnly" and location["spec"]["default"] is False
    assert location["spec"]["objectStorage"] == {"bucket": SOURCE["bucketName"], "prefix": velero.VELERO_PREFIX}
    assert location["spec"]["config"] == {"region": "eu-central-1", "kmsKeyId": SOURCE["kmsKeyArn"]}
    policy = json.loads(rec.named("velero-server", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])["Statement"]
    arn = f"arn:aws:s3:::{SOURCE['bucketName']}"
    on_source = [s for s in policy if any(str(r).startswith(arn) or r == SOURCE["kmsKeyArn"] for r in [s["Resource"]])]
    assert sorted(a for s in on_source for a in s["Action"]) == ["kms:Decrypt", "kms:DescribeKey", "s3:GetObject", "s3:ListBucket"]
    assert {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"{arn}/{velero.VELERO_PREFIX}/*"} in on_source
    # The stack's own location stays the default one it writes to.
    assert rec.manifest("BackupStorageLocation", velero.STORAGE_LOCATION, "velero")["spec"]["default"] is True
    # The committed prod stack restores from nothing.
    assert load("prod", ROOT).spec.backup.restore_from is None
