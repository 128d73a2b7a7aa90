"""Cluster and AWS, Karpenter and delivery rules, on resource inputs as pulumi_aws and
pulumi_kubernetes register them (camelCase; numbers as floats; the AWS provider's "true")."""

from __future__ import annotations

import copy
import json

import pytest
from policy_samples import DEV, changed, cloud, deployment, findings

from policy.rules.base import Subject, duration_seconds

CLUSTER = {
    "vpcConfig": {"endpointPrivateAccess": True, "endpointPublicAccess": False, "subnetIds": ["subnet-1"]},
    "encryptionConfig": {"provider": {"keyArn": "arn:aws:kms:eu-west-1:123456789012:key/abc"}, "resources": ["secrets"]},
    "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
    "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False},
}
TEMPLATE = {
    "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1.0},
    "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true", "volumeSize": 80.0}}],
}
NODE_CLASS = {
    "apiVersion": "karpenter.k8s.aws/v1",
    "kind": "EC2NodeClass",
    "metadata": {"name": "general"},
    "spec": {
        "amiSelectorTerms": [{"alias": "al2023@v20261110"}],
        "metadataOptions": {"httpTokens": "required"},
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": True, "volumeSize": "80Gi"}}],
    },
}
NODE_POOL = {
    "apiVersion": "karpenter.sh/v1",
    "kind": "NodePool",
    "metadata": {"name": "general"},
    "spec": {
        "template": {
            "spec": {
                "expireAfter": "720h",
                "terminationGracePeriod": "24h",
                "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]}],
            }
        },
        "limits": {"cpu": "64", "memory": "256Gi"},
        "disruption": {"budgets": [{"nodes": "10%"}]},
    },
}
TLS_ONLY = json.dumps({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Condition": {"Bool": {"aws:SecureTransport": False}}}]})


def workload_iam(type_: str, props: dict, name: str = "orders-workload") -> Subject:
    """An IAM resource registered under a service's component, as the program registers workload roles."""
    return Subject(
        type_, f"urn:pulumi:prod::platform::platform:index:Platform$platform:workloads:Workloads$platform:workloads:Microservice${type_}::{name}", props
    )


def workload_policy(*statements: dict) -> Subject:
    return workload_iam(
        "aws:iam/rolePolicy:RolePolicy", {"policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})}, "orders-workload-inline"
    )


READ_QUEUE = {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"], "Resource": ["arn:aws:sqs:eu-west-1:123456789012:orders"]}
QUEUE = cloud("aws:sqs/queue:Queue", {"name": "shop-prod", "sqsManagedSseEnabled": True}, "queue")


def release(chart: str, version=None, values=None, kind: str = "kubernetes:helm.sh/v3:Release"):
    props = {"chart": chart, **({"version": version} if version is not None else {}), **({"values": values} if values else {})}
    return cloud(kind, props, chart.rsplit("/", 1)[-1])


def canary(interval="15s", threshold=3.0, target="web", deadline=180):
    spec = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "analysis": {"interval": interval, "threshold": threshold, "stepWeight": 10, "maxWeight": 50},
    }
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": target, "namespace": "shop"}, "spec": spec}


def cluster(edit=lambda c: None):
    props = copy.deepcopy(CLUSTER)
    edit(props)
    return cloud("aws:eks/cluster:Cluster", props, "cluster")


def template(edit=lambda t: None):
    props = copy.deepcopy(TEMPLATE)
    edit(props)
    return cloud("aws:ec2/launchTemplate:LaunchTemplate", props, "system")


KARPENTER = release("oci://public.ecr.aws/karpenter/karpenter", "1.14.1", {"settings": {"clusterName": "c", "interruptionQueue": "shop-prod"}})
CRITICAL = {"platform.io/tier": "critical"}

# (rule, passing input, failing input, a fragment of the failure message)
CASES = [
    (
        "eks-endpoint-not-world-open",
        cluster(lambda c: c["vpcConfig"].update(endpointPublicAccess=True, publicAccessCidrs=["203.0.113.0/24"])),
        cluster(lambda c: c["vpcConfig"].update(endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"])),
        "cover the whole internet",
    ),
    ("eks-secrets-encryption", cluster(), cluster(lambda c: c.pop("encryptionConfig")), "does not envelope-encrypt secrets"),
    (
        "kms-key-rotation",
        cloud("aws:kms/key:Key", {"enableKeyRotation": True}),
        cloud("aws:kms/key:Key", {"deletionWindowInDays": 30.0}),
        "enableKeyRotation is not true",
    ),
    ("eks-control-plane-logs", cluster(), cluster(lambda c: c["enabledClusterLogTypes"].remove("audit")), "not enabled: audit"),
    (
        "eks-access-entries",
        cluster(),
        cluster(lambda c: c["accessConfig"].update(authenticationMode="API_AND_CONFIG_MAP")),
        "authenticationMode is API_AND_CONFIG_MAP",
    ),
    ("imdsv2-required", [template(), NODE_CLASS], template(lambda t: t["metadataOptions"].update(httpTokens="optional")), "httpTokens is optional"),
    (
        "ebs-encrypted",
        [template(), NODE_CLASS],
        changed(NODE_CLASS, lambda n: n["spec"]["blockDeviceMappings"][0]["ebs"].update(encrypted=False)),
        "volume /dev/xvda is not encrypted",
    ),
    ("sqs-encrypted", QUEUE, cloud("aws:sqs/queue:Queue", {"name": "q"}), "no server-side encryption"),
    (
        "sqs-tls-only",
        [QUEUE, cloud("aws:sqs/queuePolicy:QueuePolicy", {"policy": TLS_ONLY, "queueUrl": "[unknown]"}, "qp", (QUEUE.urn,))],
        [QUEUE, cloud("aws:sqs/queuePolicy:QueuePolicy", {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*"}]})}, "qp", (QUEUE.urn,))],
        "no queue policy denies access without TLS",
    ),
    (
        "karpenter-interruption-queue",
        [NODE_POOL, KARPENTER],
        [NODE_POOL, release("oci://public.ecr.aws/karpenter/karpenter", "1.14.1", {"settings": {"clusterName": "c"}})],
        "allow spot",
    ),
    ("karpenter-nodepool-limits", NODE_POOL, changed(NODE_POOL, lambda p: p["spec"]["limits"].pop("memory")), "no memory"),
    ("karpenter-disruption-budgets", NODE_POOL, changed(NODE_POOL, lambda p: p["spec"].pop("disruption")), "budgets is empty"),
    (
        "karpenter-node-expiry",
        NODE_POOL,
        changed(NODE_POOL, lambda p: p["spec"]["template"]["spec"].pop("terminationGracePeriod")),
        "terminationGracePeriod is unset",
    ),
    (
        "karpenter-pinned-ami",
        NODE_CLASS,
        changed(NODE_CLASS, lambda n: n["spec"].update(amiSelectorTerms=[{"alias": "al2023@latest"}])),
        "follows the latest AMI",
    ),
    ("helm-version-pinned", [KARPENTER, release("istiod", "1.30.3", kind="kubernetes:helm.sh/v4:Chart")], release("istiod", "^1.30"), "not an exact version"),
    ("canary-required", [deployment(labels=CRITICAL), canary()], [deployment(labels=CRITICAL), canary(target="other")], "has no Flagger Canary"),
    ("canary-rollback-time", canary("15s", 3.0), canary("1m", 5.0), "rollback takes up to 360s"),
    (
        "workload-role-boundary",
        [workload_iam("aws:iam/role:Role", {"permissionsBoundary": "arn:aws:iam::123456789012:policy/boundary"}), cloud("aws:iam/role:Role", {})],
        workload_iam("aws:iam/role:Role", {}),
        "no permissionsBoundary",
    ),
    (
        "workload-iam-least-privilege",
        [
            workload_policy(READ_QUEUE),
            cloud("aws:iam/rolePolicy:RolePolicy", {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]})}),
        ],
        workload_policy(READ_QUEUE, {"Effect": "Allow", "Action": "iam:Pass*", "Resource": "arn:aws:iam::123456789012:role/admin"}),
        "iam:PassRole (an IAM write)",
    ),
]


@pytest.mark.parametrize("rule, good, bad, fragment", CASES, ids=[c[0] for c in CASES])
def test_rule_passes_and_fails(rule, good, bad, fragment):
    assert findings(rule, good) == []
    messages = findings(rule, bad)
    assert messages and any(fragment in m for m in messages), messages


def test_endpoint_rule_treats_an_unset_public_flag_as_public_and_only_runs_in_prod():
    unset = cluster(lambda c: c["vpcConfig"].pop("endpointPublicAccess"))
    assert findings("eks-endpoint-not-world-open", unset) == ["the API endpoint is public and, with no publicAccessCidrs, open to 0.0.0.0/0"]
    split = cluster(lambda c: c["vpcConfig"].update(endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/1", "128.0.0.0/1"]))
    assert findings("eks-endpoint-not-world-open", split)
    assert findings("eks-endpoint-not-world-open", split, DEV) == []


def test_asymmetric_keys_need_no_rotation():
    assert findings("kms-key-rotation", cloud("aws:kms/key:Key", {"customerMasterKeySpec": "RSA_2048"})) == []


def test_managed_node_groups_need_a_launch_template():
    group = cloud("aws:eks/nodeGroup:NodeGroup", {"clusterName": "c", "nodeRoleArn": "arn"})
    assert findings("imdsv2-required", group) == ["the node group has no launch template, so its nodes accept IMDSv1"]
    with_template = cloud("aws:eks/nodeGroup:NodeGroup", {**group.props, "launchTemplate": {"id": "lt-1", "version": "1"}})
    assert findings("imdsv2-required", with_template) == []


def test_node_class_without_volumes_or_metadata_options_fails():
    bare = changed(NODE_CLASS, lambda n: (n["spec"].pop("blockDeviceMappings"), n["spec"].pop("metadataOptions")))
    assert findings("ebs-encrypted", bare) == ["no blockDeviceMappings: the root volume falls back to the AMI default, which may be unencrypted"]
    assert findings("imdsv2-required", bare)


def test_queue_policy_on_the_queue_itself_counts():
    queue = cloud("aws:sqs/queue:Queue", {"name": "q", "sqsManagedSseEnabled": True, "policy": TLS_ONLY})
    assert findings("sqs-tls-only", queue) == []


def test_on_demand_pools_need_no_interruption_queue_and_exists_means_spot():
    on_demand = changed(NODE_POOL, lambda p: p["spec"]["template"]["spec"]["requirements"][0].update(values=["on-demand"]))
    bare = release("karpenter", "1.14.1", {"settings": {}})
    assert findings("karpenter-interruption-queue", [on_demand, bare]) == []
    exists = changed(NODE_POOL, lambda p: p["spec"]["template"]["spec"]["requirements"][0].update(operator="Exists", values=[]))
    assert findings("karpenter-interruption-queue", [exists, bare])


def test_never_expiring_nodes_fail_and_pinned_amis_are_prod_only():
    never = changed(NODE_POOL, lambda p: p["spec"]["template"]["spec"].update(expireAfter="Never"))
    assert findings("karpenter-node-expiry", never) == ["spec.template.spec.expireAfter is Never: nodes are never replaced with patched images"]
    latest = changed(NODE_CLASS, lambda n: n["spec"].update(amiSelectorTerms=[{"alias": "al2023@latest"}]))
    assert findings("karpenter-pinned-ami", latest, DEV) == []
    assert findings("karpenter-pinned-ami", changed(NODE_CLASS, lambda n: n["spec"].update(amiSelectorTerms=[{"id": "ami-0123"}]))) == []


@pytest.mark.parametrize("version", [None, "", "1.x", "~1.30.0", ">=1.0.0", "latest", "1.30"])
def test_unpinned_chart_versions_fail(version):
    assert findings("helm-version-pinned", release("istiod", version))


def test_cert_manager_component_version_is_read_from_helm_options():
    component = cloud("kubernetes-cert-manager:index:CertManager", {"helmOptions": {"version": "v1.21.1"}})
    assert findings("helm-version-pinned", component) == []
    assert findings("helm-version-pinned", cloud("kubernetes-cert-manager:index:CertManager", {"helmOptions": {}}))


@pytest.mark.parametrize("text, seconds", [("10s", 10), ("1m", 60), ("1m30s", 90), ("1.5h", 5400), ("500ms", 0.5), ("10", None), ("", None), ("1d", None)])
def test_go_durations(text, seconds):
    assert duration_seconds(text) == seconds


def test_canary_rollback_bound_comes_from_config_and_needs_both_fields():
    from dataclasses import replace

    from policy_samples import PROD

    assert findings("canary-rollback-time", canary("20s", 2.0)) == []  # 20 x (2 + 1) = 60
    assert findings("canary-rollback-time", canary("20s", 2.0), replace(PROD, max_rollback_seconds=59))
    assert "must both be set" in findings("canary-rollback-time", canary(None))[0]


def test_the_progress_deadline_is_not_part_of_the_rollback_but_must_fit_a_new_node():
    # An unready canary carries no traffic: its deadline does not count against the bound. Unset, Flagger's is 600s.
    assert findings("canary-rollback-time", canary("15s", 3.0, deadline=None)) == []
    assert findings("canary-rollback-time", canary("15s", 3.0, deadline=900)) == []
    # A deadline under a new node plus an image pull rolls a healthy canary back.
    assert "progressDeadlineSeconds 50 is under 180s" in findings("canary-rollback-time", canary("15s", 3.0, deadline=50))[0]
    assert findings("canary-rollback-time", canary("15s", 3.0, deadline=180)) == []


def test_only_critical_or_exposed_prod_deployments_need_a_canary():
    assert findings("canary-required", deployment(labels={"platform.io/tier": "standard"})) == []
    assert findings("canary-required", deployment(labels={"platform.io/exposed": "true"}))
    assert findings("canary-required", deployment(labels=CRITICAL), DEV) == []


@pytest.mark.parametrize(
    "statement, fragment",
    [
        ({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}, "bare `*` is refused"),
        ({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:*:123456789012:orders"}, "wildcard in its region"),
        ({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:*:sqs:eu-west-1:123456789012:orders"}, "wildcard in its partition"),
        ({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:eu-west-1:*:orders"}, "wildcard in its account"),
        ({"Effect": "Allow", "Action": "s?s:AssumeRole*", "Resource": "arn:aws:iam::123456789012:role/admin"}, "sts:AssumeRole (returns credentials)"),
        ({"Effect": "Allow", "Action": "s3:PutBucketPolicy", "Resource": "arn:aws:s3:::shop"}, "permissions management"),
        (
            {"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "arn:aws:sqs:eu-west-1:123456789012:orders"},
            "applies to none of the statement's resources",
        ),
        (
            {"Effect": "Allow", "Action": "lambda:UpdateFunctionCode", "Resource": "arn:aws:lambda:eu-west-1:123456789012:function:f"},
            "EditExistingLambdaFunctionWithRole",
        ),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::shop"}, "NotAction/NotResource"),
    ],
)
def test_rendered_workload_policy_is_judged_like_a_declaration(statement, fragment):
    messages = findings("workload-iam-least-privilege", workload_policy(READ_QUEUE, statement))
    assert messages and any(fragment in m for m in messages), messages
