"""The recovery stack of docs/runbooks/restore.md ("The region is lost too"), built exactly as the
runbook says: stacks/prod.yaml with the runbook's YAML block applied (keys set, `null` deleted), the
region and secrets its commands set. It must load, render with no policy violation, and be deployable
next to what is left of prod: no global name of prod's (IAM, S3) declared again, nothing in the lost
region, Vault unsealed by the given replica, prod's hosted zone referenced and its records left to
prod's ExternalDNS owner. The runbook and this test cannot drift: the block is parsed from the page.
"""

from __future__ import annotations

import copy
import json
import re
import textwrap
from typing import Any

import pytest
import yaml
from conftest import ROOT, recorded

from components.addons import velero
from components.spec import SpecError, load
from components.spec.limits import overlapping
from components.spec.pulumi_files import pulumi_config, secret_keys
from components.spec.stack import rewritten
from engine.stacks import load_and_run
from policy.evaluate import evaluate_recording

RUNBOOK = ROOT / "docs" / "runbooks" / "restore.md"
SECTION = RUNBOOK.read_text().split("### The region is lost too (prod, `backup.copyTo`)\n")[1]
LOST, COPY_REGION = "eu-west-1", "eu-central-1"
# What the operator reads from `aws kms describe-key` and `aws route53 list-hosted-zones-by-name`.
SEAL_REPLICA = "arn:aws:kms:eu-central-1:444455556666:key/mrk-0123456789abcdef0123456789abcdef"
COPY_KEY = "arn:aws:kms:eu-central-1:444455556666:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
ZONE_ID = "Z0123456789ABCDEFGHIJ"
PLACEHOLDERS = {
    "mrk-<id printed first above>": SEAL_REPLICA.rsplit("/", 1)[1],
    "<the backup key ARN printed above>": COPY_KEY,
    "<the zone ID printed above, without /hostedzone/>": ZONE_ID,
}
GLOBAL_NAMES = {
    "aws:iam/role:Role": "name",
    "aws:iam/policy:Policy": "name",
    "aws:iam/instanceProfile:InstanceProfile": "name",
    "aws:s3/bucket:Bucket": "bucket",
}


def runbook_patch(section: str = SECTION) -> dict[str, Any]:
    """The one YAML block of the section: the keys the recovery stack changes in stacks/prod.yaml."""
    [block] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    for placeholder, value in PLACEHOLDERS.items():
        block = block.replace(placeholder, value)
    # Comments explain; only the values must be complete.
    block = re.sub(r"(^|\s+)#.*$", "", block, flags=re.M)
    assert not re.search(r"<[^>\n]*>", block), f"a placeholder this test does not know: {re.search(r'<[^>]*>', block).group(0)}"
    return yaml.safe_load(textwrap.dedent(block))


def merged(base: Any, patch: Any) -> Any:
    """The runbook's instruction: set each key to the value shown, delete the keys shown as null."""
    if not isinstance(patch, dict) or not isinstance(base, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merged(out.get(key), value)
    return out


def command(pattern: str) -> str:
    match = re.search(pattern, SECTION, re.S)
    assert match, f"the runbook's region-loss section has no {pattern!r}"
    return match.group(1)


STACK = command(r"pulumi stack init ([a-z-]+)\n")
REGION = command(rf"pulumi config set aws:region ([a-z0-9-]+) --stack {STACK}\n")


def build(scratch, patch: dict[str, Any]) -> None:
    """stacks/<stack>.yaml from prod's and the patch; Pulumi.<stack>.yaml as `pulumi config cp` and `config set` leave it."""
    assert f"`stacks/prod.yaml` to `stacks/{STACK}.yaml`" in SECTION and f"pulumi config cp --stack prod --dest {STACK} " in SECTION
    scratch.write(f"stacks/{STACK}.yaml", merged(scratch.read("stacks/prod.yaml"), patch))
    scratch.write(f"Pulumi.{STACK}.yaml", {"config": {**pulumi_config("prod", ROOT), "aws:region": REGION}})


@pytest.fixture(scope="module")
def recovery(tmp_path_factory):
    from scratch import Scratch

    scratch = Scratch(tmp_path_factory.mktemp("recovery"))
    build(scratch, runbook_patch())
    return load_and_run(STACK, scratch.root)


@pytest.fixture(scope="module")
def rec(recovery):
    return recovery[1]


def names(recording) -> set[tuple[str, str]]:
    return {(r.type, r.inputs[key]) for r in recording for typ, key in GLOBAL_NAMES.items() if r.type == typ and isinstance(r.inputs.get(key), str)}


def mentions(recording, text: str) -> list:
    return [r for r in recording if text in json.dumps(r.inputs)]


def test_it_loads_and_renders_without_a_policy_violation(recovery):
    decl, recording = recovery
    assert decl.spec.environment == "prod" and REGION == COPY_REGION
    assert evaluate_recording(recording, decl.spec).violations == ()


def test_no_global_name_of_prod_is_declared_again(rec, prod):
    ours, theirs = names(rec), names(prod)
    # Karpenter's fixed names and both buckets are among them: the check looks at something.
    assert {"aws:iam/role:Role", "aws:iam/policy:Policy", "aws:s3/bucket:Bucket"} <= {t for t, _ in ours}
    assert ours & theirs == set()
    assert ("aws:s3/bucket:Bucket", f"shop-prod-dr-backup-{COPY_REGION}") in ours and ("aws:s3/bucket:Bucket", f"shop-prod-dr-loki-{COPY_REGION}") in ours
    # KMS aliases are regional, but prod made some in the copy region (the copy's key, the seal replica).
    aliases = lambda r, default: {(a.inputs.get("region", default), a.inputs["name"]) for a in r.of_type("aws:kms/alias:Alias")}
    assert aliases(rec, COPY_REGION) & aliases(prod, LOST) == set()


def test_nothing_is_in_the_lost_region_and_prod_s_copy_is_only_read(rec, prod):
    """No input of any resource names eu-west-1; what the stack knows of prod is the copy in eu-central-1
    (bucket and key of `restoreFrom`), named only by Velero's read-only location and its role's read grants."""
    assert mentions(prod, LOST) and mentions(rec, LOST) == []
    spec = load("prod", ROOT).spec
    copy_bucket = spec.backup.copy_to.bucket_name or f"{spec.cluster.name}-backup-{spec.backup.copy_to.region}"
    readers = {(r.kind or r.type, r.metadata["name"] if r.kind else r.name) for r in mentions(rec, copy_bucket) + mentions(rec, COPY_KEY)}
    assert readers == {("BackupStorageLocation", velero.RESTORE_LOCATION), ("aws:iam/rolePolicy:RolePolicy", "velero-server")}
    location = rec.manifest("BackupStorageLocation", velero.RESTORE_LOCATION, "velero")
    assert location["spec"]["accessMode"] == "ReadOnly" and location["spec"]["config"] == {"region": COPY_REGION, "kmsKeyId": COPY_KEY}
    grants = json.loads(rec.named("velero-server", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])["Statement"]
    on_copy = {a for s in grants if copy_bucket in json.dumps(s["Resource"]) or COPY_KEY in json.dumps(s["Resource"]) for a in s["Action"]}
    assert on_copy == {"s3:GetObject", "s3:ListBucket", "kms:Decrypt", "kms:DescribeKey"}


def test_images_come_from_the_copy_region(recovery, prod):
    decl, recording = recovery
    images = lambda r: {c["image"] for d in r.kubernetes_objects() if d.kind in ("Deployment", "CronJob") for c in containers(d.inputs)}
    assert any(LOST in i for i in images(prod))
    ours = images(recording)
    assert {i for i in ours if i.startswith("111122223333.dkr.ecr.")} and all(any(i.startswith(p) for p in decl.spec.policy.allowed_registries) for i in ours)
    assert {s.name for s in decl.services} == {
        d.metadata["name"] for d in recording.kubernetes_objects() if d.kind == "Deployment" and "platform.io/team" in d.metadata.get("labels", {})
    }


def containers(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    spec = inputs.get("spec") or {}
    pod = (spec.get("jobTemplate") or {}).get("spec", spec).get("template", {}).get("spec", {})
    return pod.get("containers", []) + pod.get("initContainers", [])


def test_vault_unseals_with_the_replica_and_has_no_key_of_its_own(rec):
    values = next(r for r in rec.of_type("kubernetes:helm.sh/v3:Release") if r.inputs.get("name") == "vault").inputs["values"]
    config = values["server"]["ha"]["raft"]["config"]
    assert f'seal "awskms" {{\n  region = "{COPY_REGION}"\n  kms_key_id = "{SEAL_REPLICA}"\n}}' in config and "disabled" not in config
    assert not [k for k in rec.of_type("aws:kms/key:Key") if k.name.startswith("vault-")] and not rec.of_type("aws:kms/replicaKey:ReplicaKey")
    [grant] = json.loads(rec.named("vault-unseal-kms", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])["Statement"]
    assert grant["Resource"] == SEAL_REPLICA


def test_prod_s_zone_is_referenced_and_its_records_keep_their_owner(rec, prod):
    assert rec.of_type("aws:route53/zone:Zone") == [] and len(prod.of_type("aws:route53/zone:Zone")) == 1
    for role in ("external-dns-route53", "cert-manager-route53"):
        statements = json.loads(rec.named(f"{role}-inline", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])["Statement"]
        assert statements[0]["Resource"] == [f"arn:aws:route53:::hostedzone/{ZONE_ID}"]
    dns = lambda r: next(x for x in r.of_type("kubernetes:helm.sh/v3:Release") if x.inputs.get("name") == "external-dns").inputs["values"]
    # Same zone, distinct owners: ExternalDNS leaves records another owner ID marks alone.
    assert dns(rec)["domainFilters"] == dns(prod)["domainFilters"] and dns(rec)["txtOwnerId"] != dns(prod)["txtOwnerId"]
    assert f"external-dns/owner={dns(prod)['txtOwnerId']}," in SECTION


def test_every_secret_of_the_project_is_brought_over():
    keys = command(r"for key in (.*?); do pulumi config set --secret \"\$key\" --stack " + STACK).replace("\\\n", " ").split()
    assert sorted(keys) == sorted(secret_keys("prod", ROOT)) and "backupRepositoryPassword" in keys


def test_every_change_of_the_runbook_is_needed(tmp_path):
    """Drop any one change from the runbook's block and the recovery stack is refused or breaks a
    property above (checked on the declarations, without a render)."""
    from scratch import Scratch

    patch = runbook_patch()
    prod = load("prod", ROOT).spec
    dropped = 0
    for path in leaves(patch):
        smaller = without(patch, path)
        if merged(yaml.safe_load((ROOT / "stacks/prod.yaml").read_text()), smaller) == merged(yaml.safe_load((ROOT / "stacks/prod.yaml").read_text()), patch):
            continue  # restates prod's value, for the reader
        (tmp_path / ".".join(path)).mkdir()
        scratch = Scratch(tmp_path / ".".join(path))
        build(scratch, smaller)
        try:
            decl = load(STACK, scratch.root)
        except SpecError:
            dropped += 1
            continue
        assert declaration_problems(decl, prod), f"the recovery stack without {'.'.join(path)} still passes"
        dropped += 1
    assert dropped >= 10


def declaration_problems(decl, prod) -> list[str]:
    spec = decl.spec
    found = []
    if spec.cluster.name == prod.cluster.name:
        found.append("cluster.name: prod's global names")
    if overlapping([spec.network.cidr], prod.network.cidr):
        found.append("network.cidr: prod's")
    if spec.dns is None or spec.dns.zone_id is None:
        found.append("dns.zoneId: a second zone")
    if any(LOST in r for r in spec.policy.allowed_registries) or LOST in spec.backup.image_mirror:
        found.append("registries in the lost region")
    if any(LOST in rewritten(s.image, spec.registry_rewrites) for s in decl.services):
        found.append("service images in the lost region")
    if spec.addons["vault"].settings.get("unsealKeyArn") != SEAL_REPLICA:
        found.append("Vault seals with a key of its own")
    if spec.backup.restore_from is None or spec.backup.restore_from.region != COPY_REGION:
        found.append("backup.restoreFrom")
    return found


def leaves(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for key, value in tree.items():
        out += leaves(value, (*prefix, key)) if isinstance(value, dict) and value else [(*prefix, key)]
    return out


def without(tree: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    out = copy.deepcopy(tree)
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


def test_a_recovery_stack_with_a_copy_is_refused(scratch, capsys):
    """Its seal key is prod's replica, which can get no replica of its own: a copy elsewhere could not unseal Vault's snapshots."""
    patch = merged(runbook_patch(), {"backup": {"copyTo": {"region": "eu-north-1"}}})
    build(scratch, patch)
    err = scratch.rejected(capsys, STACK)
    assert f"stacks/{STACK}.yaml: addons.vault.settings.unsealKeyArn: set together with backup.copyTo" in err
    assert "docs/operations.md#vaults-seal-key" in err and "eu-north-1" in err
    # A stack with its own seal key keeps its copy (prod), and the runbook promises none for the recovery stack.
    assert recorded("prod").of_type("aws:kms/replicaKey:ReplicaKey")
    assert "give it a `copyTo`" not in SECTION and "`backup.copyTo` together with `addons.vault.settings.unsealKeyArn`" in SECTION


def test_a_rewrite_to_a_registry_the_policy_forbids_is_refused(scratch, capsys):
    scratch.edit("stacks/dev.yaml", lambda d: d.update(registryRewrites={"111122223333.dkr.ecr.eu-west-1.amazonaws.com/": "ghcr.io/acme/"}))
    err = scratch.rejected(capsys, "dev")
    assert "stacks/dev.yaml: registryRewrites.111122223333.dkr.ecr.eu-west-1.amazonaws.com/: 'ghcr.io/acme/' is not under policy.allowedRegistries" in err


def test_the_longest_declared_prefix_is_replaced():
    rewrites = {"r.example.com/": "a.example.com/", "r.example.com/shop/": "b.example.com/shop/"}
    assert rewritten("r.example.com/shop/orders:1.0", rewrites) == "b.example.com/shop/orders:1.0"
    assert rewritten("r.example.com/other/x:1.0", rewrites) == "a.example.com/other/x:1.0"
    assert rewritten("s.example.com/shop/orders:1.0", rewrites) == "s.example.com/shop/orders:1.0"
    # The committed stacks pull what the service files name.
    assert load("prod", ROOT).spec.registry_rewrites == {} and load("dev", ROOT).spec.registry_rewrites == {}


def test_the_refusal_holds_for_the_python_spelling_of_the_key(scratch, capsys):
    """The addon settings accept field names too (populate_by_name): `unseal_key_arn` is the same setting."""
    patch = merged(runbook_patch(), {"backup": {"copyTo": {"region": "eu-north-1"}}})
    patch["addons"]["vault"]["settings"] = {"legacyUnsealKey": None, "unseal_key_arn": SEAL_REPLICA}
    build(scratch, patch)
    assert "addons.vault.settings.unsealKeyArn: set together with backup.copyTo" in scratch.rejected(capsys, STACK)


def test_team_roles_trust_the_recovery_stacks_own_environments(rec):
    """A team stack is `<team>-<stack>` (here checkout-prod-dr), so its GitHub environments are
    named after the stack, not after the kind of environment (prod) the stack is."""
    roles = [
        r for r in rec.of_type("aws:iam/role:Role") if r.inputs.get("tags", {}).get("team") == "checkout" and "Deploys team" in str(r.inputs.get("description"))
    ]
    [role] = roles
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    subjects = trust["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
    assert [s.rsplit(":", 1)[1] for s in subjects] == [f"checkout-{STACK}", f"checkout-{STACK}-drift"]
