"""Karpenter matches the upstream v1.14 getting-started template, and pools follow the declarations."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from components.karpenter.permissions import INTERRUPTION_EVENTS, NODE_POLICIES, controller_policies, queue_policy
from components.versions import KARPENTER, KARPENTER_CRD
from engine import chart_values, reference

UPSTREAM = json.loads((Path(__file__).parent / "fixtures" / "karpenter_v1_14_template.json").read_text())
PLACEHOLDERS = ("${AWS::Partition}", "${AWS::Region}", "${AWS::AccountId}", "${ClusterName}", "${KarpenterNodeRole.Arn}", "${KarpenterInterruptionQueue.Arn}")


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def release(rec, chart_name):
    return next(r for r in rec.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == chart_name)


# -- the permissions, statement by statement --------------------------------------------------


def test_controller_policies_match_upstream_statement_by_statement():
    ours = controller_policies(*PLACEHOLDERS)
    assert list(ours) == list(UPSTREAM["policies"])
    for name, upstream in UPSTREAM["policies"].items():
        assert ours[name]["Version"] == upstream["version"]
        assert [s["Sid"] for s in ours[name]["Statement"]] == [s["sid"] for s in upstream["statements"]], name
        for statement, expected in zip(ours[name]["Statement"], upstream["statements"], strict=True):
            assert digest(statement) == expected["sha256"], f"{name} {statement['Sid']} differs from upstream"


def test_a_changed_statement_is_detected():
    ours = controller_policies(*PLACEHOLDERS)
    statement = ours["KarpenterControllerResourceDiscoveryPolicy"]["Statement"][0]
    statement["Action"] = statement["Action"][:-1]
    assert digest(statement) != UPSTREAM["policies"]["KarpenterControllerResourceDiscoveryPolicy"]["statements"][0]["sha256"]


def test_interruption_rules_match_upstream():
    assert list(INTERRUPTION_EVENTS) == list(UPSTREAM["rules"])
    for name, pattern in INTERRUPTION_EVENTS.items():
        assert digest(pattern) == UPSTREAM["rules"][name]["eventPattern"], name


def test_queue_policy_matches_upstream():
    policy = queue_policy("${KarpenterInterruptionQueue.Arn}")
    assert digest(policy["Statement"]) == UPSTREAM["queuePolicyStatements"]


def test_node_role_policies_match_upstream():
    # Upstream's list less the CNI policy: the VPC CNI runs on its own Pod Identity role here.
    assert NODE_POLICIES == [p for p in UPSTREAM["nodeRoleManagedPolicies"] if p != "AmazonEKS_CNI_Policy"]


# -- what the program registers -----------------------------------------------------------------


def test_registered_policies_are_the_rendered_upstream_ones(prod):
    queue = prod.named("platform-karpenter-interruption", "aws:sqs/queue:Queue")
    node_role = prod.named("platform-karpenter-node", "aws:iam/role:Role")
    queue_arn = f"arn:aws:sqs:eu-west-1:123456789012:{queue.inputs['name']}"
    node_arn = f"arn:aws:iam::123456789012:role/{node_role.inputs['name']}"
    expected = controller_policies("aws", "eu-west-1", "123456789012", "shop-prod", node_arn, queue_arn)
    registered = {r.inputs["name"]: json.loads(r.inputs["policy"]) for r in prod.of_type("aws:iam/policy:Policy") if "platform:karpenter" in r.urn}
    assert registered == {f"{name}-shop-prod": doc for name, doc in expected.items()}
    attached = {
        r.inputs["policyArn"].rsplit("/", 1)[-1]
        for r in prod.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("platform-karpenter-Karpenter")
    }
    assert attached == set(registered)


def test_controller_identity_is_pod_identity(prod):
    assoc = prod.named("platform-karpenter-controller", "aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs
    assert (assoc["namespace"], assoc["serviceAccount"], assoc["clusterName"]) == ("kube-system", "karpenter", "shop-prod")
    role = prod.named("platform-karpenter-controller", "aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [{k: v for k, v in st.items() if k != "Condition"} for st in trust] == [
        {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}
    ]
    # Only the association's own service account on this cluster (Pod Identity session tags).
    assert trust[0]["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-service-account"] == assoc["serviceAccount"]
    assert assoc["roleArn"].startswith("arn:aws:iam::123456789012:role/platform-karpenter-controller-")


def test_node_role_and_access_entry(prod):
    role = prod.named("platform-karpenter-node", "aws:iam/role:Role")
    assert role.inputs["name"] == "KarpenterNodeRole-shop-prod"
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    attached = sorted(
        r.inputs["policyArn"].rsplit("/", 1)[-1]
        for r in prod.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("platform-karpenter-node-")
    )
    assert attached == sorted(NODE_POLICIES)
    entry = prod.named("platform-karpenter-node", "aws:eks/accessEntry:AccessEntry").inputs
    assert entry["type"] == "EC2_LINUX" and entry["principalArn"].endswith("/KarpenterNodeRole-shop-prod")


def test_interruption_queue_and_rules(prod):
    queue = prod.named("platform-karpenter-interruption", "aws:sqs/queue:Queue").inputs
    assert queue["name"] == "shop-prod" and queue["messageRetentionSeconds"] == 300 and queue["sqsManagedSseEnabled"] is True
    policy = json.loads(prod.named("platform-karpenter-interruption", "aws:sqs/queuePolicy:QueuePolicy").inputs["policy"])
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": False}}
    queue_arn = "arn:aws:sqs:eu-west-1:123456789012:shop-prod"
    rules = {r.name.removeprefix("platform-karpenter-"): json.loads(r.inputs["eventPattern"]) for r in prod.of_type("aws:cloudwatch/eventRule:EventRule")}
    assert rules == INTERRUPTION_EVENTS
    targets = prod.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert len(targets) == len(rules) and all(t.inputs["arn"] == queue_arn for t in targets)


def test_chart_gets_the_queue_name_not_its_arn(prod):
    values = release(prod, "karpenter").inputs["values"]
    assert values["settings"] == {"clusterName": "shop-prod", "interruptionQueue": "shop-prod"}
    assert not values["settings"]["interruptionQueue"].startswith("arn:")


def test_charts_are_pinned_to_the_reference(prod):
    crd, controller = release(prod, "karpenter-crd").inputs, release(prod, "karpenter").inputs
    assert crd["chart"] == "oci://public.ecr.aws/karpenter/karpenter-crd" and controller["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert crd["version"] == controller["version"] == "1.14.1"
    assert controller["skipCrds"] is True
    for chart in (KARPENTER, KARPENTER_CRD):
        assert (reference.chart_dir(chart) / reference.VALUES).is_file()


def test_controller_values_exist_in_the_chart(prod):
    values = release(prod, "karpenter").inputs["values"]
    assert chart_values.unknown_keys(KARPENTER, values) == []
    assert chart_values.unknown_keys(KARPENTER, {**values, "setings": {}}) == ["setings"]
    assert chart_values.unknown_keys(KARPENTER, {"settings": {"clusterNam": "x"}}) == ["settings.clusterNam"]


def test_controller_runs_on_the_system_nodes(prod):
    values = release(prod, "karpenter").inputs["values"]
    assert values["replicas"] == 2
    assert values["nodeSelector"]["platform.io/node-role"] == "system"
    assert {"key": "CriticalAddonsOnly", "operator": "Exists"} in values["tolerations"]
    assert values["controller"]["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}


def test_ordering_identity_then_controller_then_pools(stack):
    controller = release(stack, "karpenter")
    deps = set(controller.dependencies)
    for name, type_ in (
        ("platform-karpenter-controller", "aws:eks/podIdentityAssociation:PodIdentityAssociation"),
        ("platform-karpenter-node", "aws:eks/accessEntry:AccessEntry"),
        ("platform-karpenter-interruption", "aws:sqs/queue:Queue"),
    ):
        assert stack.named(name, type_).urn in deps
    assert release(stack, "karpenter-crd").urn in deps
    for kind in ("NodePool", "EC2NodeClass"):
        for obj in stack.of_type(f"kubernetes:{'karpenter.sh' if kind == 'NodePool' else 'karpenter.k8s.aws'}/v1:{kind}"):
            assert controller.urn in obj.dependencies, obj.urn


# -- pools ------------------------------------------------------------------------------------------


def requirement(pool, key):
    return next(r for r in pool["spec"]["template"]["spec"]["requirements"] if r["key"] == key)


def test_general_pool_mixes_spot_and_on_demand(stack):
    pool = stack.manifest("NodePool", "general")
    assert requirement(pool, "karpenter.sh/capacity-type")["values"] == ["spot", "on-demand"]
    assert requirement(pool, "karpenter.k8s.aws/instance-category")["values"] == ["c", "m", "r"]
    assert requirement(pool, "karpenter.k8s.aws/instance-generation") == {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["5"]}
    assert requirement(pool, "kubernetes.io/arch")["values"] == ["amd64", "arm64"]


def test_critical_pool_is_on_demand_tainted_and_labelled(stack):
    pool = stack.manifest("NodePool", "critical")
    assert requirement(pool, "karpenter.sh/capacity-type")["values"] == ["on-demand"]
    assert pool["spec"]["template"]["spec"]["taints"] == [{"key": "dedicated", "value": "high-perf", "effect": "NoSchedule"}]
    assert pool["spec"]["template"]["metadata"]["labels"]["service-tier"] == "critical"


def test_disruption_and_limits_are_explicit(stack):
    for name in ("general", "critical"):
        spec = stack.manifest("NodePool", name)["spec"]
        assert spec["disruption"]["budgets"] and spec["disruption"]["consolidateAfter"]
        assert spec["template"]["spec"]["expireAfter"] and spec["template"]["spec"]["terminationGracePeriod"]
        assert set(spec["limits"]) == {"cpu", "memory"}


def test_node_classes(prod, dev):
    for rec, alias in ((prod, "al2023@v20261110"), (dev, "al2023@latest")):
        spec = rec.manifest("EC2NodeClass", "general")["spec"]
        cluster = rec.outputs["clusterName"]
        assert spec["amiSelectorTerms"] == [{"alias": alias}]
        assert spec["role"] == f"KarpenterNodeRole-{cluster}"
        assert spec["subnetSelectorTerms"] == spec["securityGroupSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": cluster}}]
        assert spec["metadataOptions"]["httpTokens"] == "required" and spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        ebs = spec["blockDeviceMappings"][0]["ebs"]
        assert ebs["encrypted"] is True and ebs["volumeType"] == "gp3"


def test_pool_sizes_differ_by_declaration_only(prod, dev):
    assert prod.manifest("NodePool", "general")["spec"]["limits"]["cpu"] == "512"
    assert dev.manifest("NodePool", "general")["spec"]["limits"]["cpu"] == "64"


def test_priority_classes(stack):
    assert stack.manifest("PriorityClass", "mission-critical")["value"] == 1_000_000
    assert stack.manifest("PriorityClass", "batch")["preemptionPolicy"] == "Never"
    assert stack.manifest("PriorityClass", "standard")["value"] < 1_000_000


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["karpenter"]["nodePools"][0].update(taints=["dedicated:NoSchedule"]), "must be key=value:Effect"),
        (lambda d: d["karpenter"]["nodePools"][0].update(budgets=[]), "budgets: List should have at least 1 item"),
        (lambda d: d["karpenter"]["nodePools"][1].update(name="general"), "duplicate node pool names ['general']"),
        (lambda d: d["karpenter"]["nodePools"][0].update(capacityTypes=["reserved-ish"]), "Input should be 'spot' or 'on-demand'"),
        (lambda d: d["karpenter"].update(amiAlias="al2023@latest"), "karpenter.amiAlias: prod must pin a dated AMI"),
    ],
)
def test_bad_pool_declarations_are_rejected(scratch, edit, message):
    from components.spec import SpecError, load

    scratch.edit("stacks/prod.yaml", edit)
    with pytest.raises(SpecError) as err:
        load("prod", scratch.root)
    assert message in str(err.value)
