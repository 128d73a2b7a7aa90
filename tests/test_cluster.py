"""The network and the EKS cluster: prod hardening, dev economy, and the wiring later components use."""

from __future__ import annotations

import copy
import json

import pytest

from components.aws.cluster import LOG_TYPES, kubeconfig
from components.spec import SpecError, load
from engine.stacks import run

CLUSTER = "aws:eks/cluster:Cluster"


def one(rec, type_):
    found = rec.of_type(type_)
    assert len(found) == 1, type_
    return found[0]


def addons(rec):
    # The cluster's own addons (the velero addon adds the CSI snapshot controller).
    return {r.inputs["addonName"]: r for r in rec.of_type("aws:eks/addon:Addon") if r.name.startswith("platform-cluster-")}


def test_prod_endpoint_is_private(prod):
    vpc = one(prod, CLUSTER).inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True and vpc["endpointPublicAccess"] is False


def test_dev_endpoint_is_restricted_to_declared_cidrs(dev):
    vpc = one(dev, CLUSTER).inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True and vpc["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_secrets_envelope_encrypted_with_rotating_key(stack):
    cluster = one(stack, CLUSTER)
    # The cluster's own key (addons such as Vault have keys of their own).
    key = stack.named("platform-cluster-secrets", "aws:kms/key:Key")
    assert cluster.inputs["encryptionConfig"]["resources"] == ["secrets"]
    assert key.urn in cluster.dependencies
    assert key.inputs["enableKeyRotation"] is True


def test_all_control_plane_logs_with_declared_retention(stack):
    cluster = one(stack, CLUSTER)
    assert sorted(cluster.inputs["enabledClusterLogTypes"]) == sorted(LOG_TYPES) and len(LOG_TYPES) == 5
    group = stack.named("platform-cluster-control-plane")
    assert group.inputs["name"] == f"/aws/eks/{cluster.inputs['name']}/cluster"
    assert group.urn in cluster.dependencies
    assert group.inputs["retentionInDays"] == {"dev": 30, "staging": 90, "prod": 365}[stack.stack]


def test_access_entries_only(prod):
    cluster = one(prod, CLUSTER)
    assert cluster.inputs["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    # The stack's own principals (the team deploy roles' entries are tests/test_team_deploy.py's).
    cluster_entries = [r for r in prod.of_type("aws:eks/accessEntry:AccessEntry") if r.name.startswith("platform-cluster-")]
    entries = {r.inputs["principalArn"]: r for r in cluster_entries if r.inputs["type"] == "STANDARD"}
    assert set(entries) == {
        "arn:aws:iam::444455556666:role/platform-admin",
        "arn:aws:iam::444455556666:role/platform-deploy",
        "arn:aws:iam::444455556666:role/sre-readonly",
        "arn:aws:iam::444455556666:role/platform-drift",
    }
    policies = {r.inputs["principalArn"]: r.inputs["policyArn"] for r in prod.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")}
    assert policies["arn:aws:iam::444455556666:role/platform-admin"].endswith("/AmazonEKSClusterAdminPolicy")
    assert policies["arn:aws:iam::444455556666:role/sre-readonly"].endswith("/AmazonEKSAdminViewPolicy")
    # The drift check (drift.yml) refreshes every stack, so it reads every object, and may change none.
    assert policies["arn:aws:iam::444455556666:role/platform-drift"].endswith("/AmazonEKSAdminViewPolicy")


def test_private_endpoint_admits_only_declared_networks(prod):
    rules = prod.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    api = [r.inputs for r in rules if r.name.startswith("platform-cluster-api-")]
    assert [(r["cidrIpv4"], r["fromPort"], r["toPort"]) for r in api] == [("10.200.0.0/24", 443, 443)]
    assert api[0]["securityGroupId"] == prod.outputs["clusterSecurityGroupId"]


def test_kubernetes_provider_waits_for_access_dns_and_storage(prod):
    provider = one(prod.stacks["prod"], "pulumi:providers:kubernetes")
    deps = set(provider.dependencies)
    for addon in ("coredns", "aws-ebs-csi-driver"):
        assert addons(prod)[addon].urn in deps
    # The stack's own principals' access (not the team deploy roles': the platform never acts as a team).
    assert {r.urn for r in prod.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation") if r.name.startswith("platform-cluster-")} <= deps


def test_protection_in_prod_only(prod, dev):
    for rec, protected in ((prod, True), (dev, False)):
        for type_ in (CLUSTER, "aws:kms/key:Key", "aws:ec2/vpc:Vpc"):
            # Every one of them: the cluster's KMS key and Vault's unseal key alike.
            assert {r.protect for r in rec.of_type(type_)} == {protected}, (rec.stack, type_)
        assert one(rec, CLUSTER).inputs["deletionProtection"] is protected


def test_version_and_upgrade_policy_from_declaration(prod):
    cluster = one(prod, CLUSTER)
    assert cluster.inputs["version"] == "1.35" and cluster.inputs["upgradePolicy"] == {"supportType": "STANDARD"}


def test_oidc_provider_follows_the_cluster_issuer(prod):
    oidc = one(prod, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc.inputs["url"].startswith("https://oidc.eks.eu-west-1.amazonaws.com/id/")
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert prod.outputs["oidcProviderArn"].endswith(oidc.inputs["url"].removeprefix("https://"))


def test_managed_addons_resolved_for_the_cluster_version(prod):
    found = addons(prod)
    assert set(found) == {"vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver", "eks-pod-identity-agent", "metrics-server"}
    for addon in found.values():
        assert addon.inputs["addonVersion"].startswith("v") and "-eksbuild." in addon.inputs["addonVersion"]
    assert json.loads(found["vpc-cni"].inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    # Installed before Karpenter: it has to fit on the CriticalAddonsOnly system nodes.
    assert {"key": "CriticalAddonsOnly", "operator": "Exists"} in json.loads(found["metrics-server"].inputs["configurationValues"])["tolerations"]


def test_ebs_csi_driver_has_its_own_pod_identity_role(prod):
    ebs = addons(prod)["aws-ebs-csi-driver"].inputs["podIdentityAssociations"]
    assert [a["serviceAccount"] for a in ebs] == ["ebs-csi-controller-sa"]
    role = next(r for r in prod.of_type("aws:iam/role:Role") if r.name == "platform-cluster-ebs-csi")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"} and trust["Action"] == ["sts:AssumeRole", "sts:TagSession"]


def test_cni_before_nodes_and_coredns_after(prod):
    nodes = one(prod, "aws:eks/nodeGroup:NodeGroup")
    found = addons(prod)
    for addon in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
        assert found[addon].urn in nodes.dependencies
    for addon in ("coredns", "aws-ebs-csi-driver", "metrics-server"):
        assert nodes.urn in found[addon].dependencies


def test_system_node_group_is_hardened(stack):
    nodes = one(stack, "aws:eks/nodeGroup:NodeGroup").inputs
    template = one(stack, "aws:ec2/launchTemplate:LaunchTemplate").inputs
    assert nodes["capacityType"] == "ON_DEMAND"
    assert nodes["taints"] == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]
    assert sorted(nodes["subnetIds"]) == sorted(stack.outputs["privateSubnetIds"])
    assert template["metadataOptions"]["httpTokens"] == "required" and template["metadataOptions"]["httpPutResponseHopLimit"] == 1
    ebs = template["blockDeviceMappings"][0]["ebs"]
    assert ebs["encrypted"] == "true" and ebs["volumeType"] == "gp3"


def test_network_shape_per_stack(prod, dev):
    for rec, azs, nats in ((prod, 3, 3), (dev, 2, 1)):
        subnets = rec.of_type("aws:ec2/subnet:Subnet")
        private = [s for s in subnets if "kubernetes.io/role/internal-elb" in s.inputs["tags"]]
        public = [s for s in subnets if "kubernetes.io/role/elb" in s.inputs["tags"]]
        assert len(private) == len(public) == azs
        assert len(rec.of_type("aws:ec2/natGateway:NatGateway")) == nats
        assert len({s.inputs["availabilityZone"] for s in private}) == azs
        for s in private:
            assert s.inputs["mapPublicIpOnLaunch"] is False
            assert s.inputs["tags"]["karpenter.sh/discovery"] == one(rec, CLUSTER).inputs["name"]
    assert len(prod.of_type("aws:ec2/flowLog:FlowLog")) == 1 and dev.of_type("aws:ec2/flowLog:FlowLog") == []
    assert one(prod, "aws:ec2/flowLog:FlowLog").inputs["trafficType"] == "ALL"


def test_per_az_nat_routes_stay_in_their_az(prod):
    nats = {r.inputs["subnetId"]: r for r in prod.of_type("aws:ec2/natGateway:NatGateway")}
    assert len(nats) == 3  # one NAT in each public subnet


def test_default_security_group_denies_everything(stack):
    sg = one(stack, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup").inputs
    assert sg.get("ingress", []) == [] and sg.get("egress", []) == []


def test_existing_network_is_used_as_is(scratch):
    scratch.edit(
        "stacks/dev.yaml",
        lambda d: d["network"].update(
            existing={"vpcId": "vpc-0abc1234def567890", "privateSubnetIds": ["subnet-a", "subnet-b"], "publicSubnetIds": ["subnet-c"]}
        ),
    )
    rec = run("dev", scratch.root)
    assert rec.of_type("aws:ec2/vpc:Vpc") == [] and rec.of_type("aws:ec2/subnet:Subnet") == []
    assert one(rec, CLUSTER).inputs["vpcConfig"]["subnetIds"] == ["subnet-a", "subnet-b"]
    assert rec.outputs["vpcId"] == "vpc-0abc1234def567890"


def test_kubernetes_provider_uses_exec_credentials(prod):
    provider = one(prod.stacks["prod"], "pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == "[secret]" and provider.inputs["enableServerSideApply"] == "true"
    # A team stack builds its own from the contract's endpoint and CA: nothing secret, a token per call.
    for name, rec in prod.stacks.items():
        if name == "prod":
            continue
        team = json.loads(one(rec, "pulumi:providers:kubernetes").inputs["kubeconfig"])
        assert team == json.loads(kubeconfig("shop-prod", prod.outputs["clusterEndpoint"], prod.outputs["clusterCertificateAuthority"], "eu-west-1"))
    config = json.loads(kubeconfig("c", "https://x", "Q0E=", "eu-west-1"))
    user = config["users"][0]["user"]
    assert "token" not in user and user["exec"]["command"] == "aws"
    assert user["exec"]["args"][:4] == ["eks", "get-token", "--cluster-name", "c"]


def test_no_kubernetes_resource_uses_the_default_provider(stack):
    # Each stack (the platform's, every team's) has its one explicit provider.
    assert len(stack.stacks) > 1
    for rec in stack.stacks.values():
        provider = one(rec, "pulumi:providers:kubernetes")
        k8s = [r for r in rec if r.custom and r.type.startswith("kubernetes:")]
        assert k8s
        for r in k8s:
            assert r.provider_urn == provider.urn, r.urn


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["cluster"]["endpoint"].update(publicAccess=True, publicAccessCidrs=["0.0.0.0/0"]), "a prod API endpoint must not be open to the world"),
        (lambda d: d["cluster"]["endpoint"].update(publicAccess=True, publicAccessCidrs=[]), "publicAccess is on but publicAccessCidrs is empty"),
        (lambda d: d["cluster"].update(protect=False), "cluster.protect: must be true in prod"),
        (lambda d: d["network"].update(flowLogs=False), "network.flowLogs: must be true in prod"),
        (lambda d: d["network"].update(availabilityZones=2), "network.availabilityZones: prod must span 3 AZs"),
        (lambda d: d["cluster"].update(logRetentionDays=42), "logRetentionDays 42 is not a CloudWatch retention period"),
        (lambda d: d["cluster"]["access"].update(admins=["root"]), "'root' is not an IAM role or user ARN"),
        (lambda d: d["cluster"]["endpoint"].update(privateAccessCidrs=["0.0.0.0/0"]), "must be the CIDR of a network routed to the VPC"),
    ],
)
def test_prod_hardening_violations_are_rejected(scratch, edit, message):
    scratch.edit("stacks/prod.yaml", edit)
    with pytest.raises(SpecError) as err:
        load("prod", scratch.root)
    assert message in str(err.value)
    assert str(err.value).startswith("stacks/prod.yaml: ")


def test_dev_may_use_what_prod_may_not(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["network"].update(availabilityZones=2, flowLogs=False))
    assert load("dev", scratch.root).spec.network.availability_zones == 2


def test_dev_differs_from_prod_only_through_declarations(scratch, prod):
    """Give dev prod's declaration: the program then registers the same resources."""
    scratch.write("stacks/dev.yaml", scratch.path("stacks/prod.yaml").read_text())
    scratch.write("Pulumi.dev.yaml", scratch.path("Pulumi.prod.yaml").read_text())
    for rel in scratch.service_files():
        scratch.edit(rel, lambda d: d.update(envs={**d.get("envs", {}), "dev": copy.deepcopy(d.get("envs", {}).get("prod", {}))}))
    as_dev = run("dev", scratch.root)

    def team_stacks_named(r, stack):
        # A team's deploy role trusts the GitHub environments named after its stack, <team>-<stack>.
        if r.type == "aws:iam/role:Role" and str(r.inputs.get("description", "")).startswith("Deploys team"):
            return json.loads(json.dumps(r.inputs).replace(f"-{stack}", "-<stack>"))
        return r.inputs

    def shape(rec):
        # The stack name itself differs (URNs, the stack tag on the AWS provider, the team stacks'
        # names in their deploy roles); nothing else may.
        return sorted(
            json.dumps(
                {
                    **r.to_json(),
                    "inputs": team_stacks_named(r, rec.stack),
                    "urn": r.urn.split("::", 2)[2],
                    "parent": None,
                    "provider": None,
                    "dependencies": None,
                    "aliases": [a.split("::", 2)[2] for a in r.aliases],
                },
                sort_keys=True,
            )
            for r in rec
            if r.type != "pulumi:providers:aws"
        )

    assert shape(as_dev) == shape(prod)
