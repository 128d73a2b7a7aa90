"""A hardened EKS cluster on plain pulumi_aws resources (every piece visible to previews and policy).

Hardening follows the EKS Best Practices Guide and CIS Amazon EKS: envelope encryption of secrets
with a rotating customer key, all control-plane logs, access entries instead of aws-auth,
private endpoint, IMDSv2-only nodes with encrypted volumes, Pod Identity for workloads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.spec.stack import ClusterSpec

from . import iam, kms

LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
ACCESS_POLICY = "arn:aws:eks::aws:cluster-access-policy/"
# Addons the nodes need before they can become Ready; the rest run on nodes and wait for them.
BEFORE_NODES = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
CNI_POLICY = "AmazonEKS_CNI_Policy"
CNI_SERVICE_ACCOUNT = "aws-node"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
# metrics-server (an EKS community addon) feeds the HPAs and the VPA recommender.
AFTER_NODES = ("coredns", "aws-ebs-csi-driver", "metrics-server")
SYSTEM_TAINT = {"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}
ADDON_CONFIG = {
    "vpc-cni": {"enableNetworkPolicy": "true"},
    # Created before Karpenter exists: it must fit on the tainted system nodes or never become ACTIVE.
    "metrics-server": {"tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}]},
}
# Pods that must run on the system node group select it by this label (and tolerate the taint).
SYSTEM_NODE_LABEL = {"platform.io/node-role": "system"}


class Cluster(pulumi.ComponentResource):
    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    certificate_authority: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    arn: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    provider: k8s.Provider

    def __init__(self, name: str, spec: ClusterSpec, region: str, private_subnet_ids: pulumi.Input[list[str]], opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:aws:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        protected = pulumi.ResourceOptions(parent=self, protect=spec.protect)

        key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Envelope encryption of Kubernetes secrets in {spec.name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=protected,
        )
        aws.kms.Alias(f"{name}-secrets", name=f"alias/eks/{spec.name}-secrets", target_key_id=key.key_id, opts=child)
        # Created up front so retention is ours; EKS would otherwise create it with no expiry.
        logs = aws.cloudwatch.LogGroup(f"{name}-control-plane", name=f"/aws/eks/{spec.name}/cluster", retention_in_days=spec.log_retention_days, opts=child)
        cluster_role = iam.role(
            f"{name}-cluster",
            "eks.amazonaws.com",
            self,
            managed=["AmazonEKSClusterPolicy"],
            actions=("sts:AssumeRole", "sts:TagSession"),
            description=f"EKS control plane of {spec.name}",
        )
        # Only the control plane's role may use the secrets key, whatever IAM grants (defence in depth).
        kms.restrict(f"{name}-secrets", key, [cluster_role.arn], spec.access.admins, self)

        cluster = aws.eks.Cluster(
            name,
            name=spec.name,
            version=spec.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config={
                "subnet_ids": private_subnet_ids,
                "endpoint_private_access": True,
                "endpoint_public_access": spec.endpoint.public_access,
                "public_access_cidrs": list(spec.endpoint.public_access_cidrs) or None,
            },
            encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=LOG_TYPES,
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": False},
            upgrade_policy={"support_type": spec.upgrade_policy},
            # Every addon is an EKS managed addon below; self-managed copies would fight them.
            bootstrap_self_managed_addons=False,
            deletion_protection=spec.protect,
            opts=pulumi.ResourceOptions(parent=self, protect=spec.protect, depends_on=[logs]),
        )
        cluster_name = cluster.name
        self.oidc_issuer = cluster.identities.apply(oidc_issuer)
        oidc = aws.iam.OpenIdConnectProvider(f"{name}-oidc", url=self.oidc_issuer, client_id_lists=["sts.amazonaws.com"], opts=child)
        self.cluster_security_group_id = cluster.vpc_config.cluster_security_group_id
        # Karpenter's EC2NodeClass finds the node security group by this tag.
        aws.ec2.Tag(f"{name}-sg-discovery", resource_id=self.cluster_security_group_id, key="karpenter.sh/discovery", value=spec.name, opts=child)

        # The private endpoint answers only what the cluster security group admits: the declared
        # networks (CI runners, VPN) that deploy to and operate the cluster.
        for i, cidr in enumerate(spec.endpoint.private_access_cidrs):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-api-{i}",
                security_group_id=self.cluster_security_group_id,
                cidr_ipv4=cidr,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description=f"Kubernetes API from {cidr}",
                opts=child,
            )

        access = []
        for kind, policy, principals in (
            ("admin", "AmazonEKSClusterAdminPolicy", spec.access.admins),
            ("viewer", "AmazonEKSAdminViewPolicy", spec.access.viewers),
        ):
            for i, principal in enumerate(principals):
                entry = aws.eks.AccessEntry(f"{name}-{kind}-{i}", cluster_name=cluster_name, principal_arn=principal, type="STANDARD", opts=child)
                access.append(
                    aws.eks.AccessPolicyAssociation(
                        f"{name}-{kind}-{i}",
                        cluster_name=cluster_name,
                        principal_arn=entry.principal_arn,
                        policy_arn=ACCESS_POLICY + policy,
                        access_scope={"type": "cluster"},
                        opts=child,
                    )
                )

        # The VPC CNI (aws-node) manages ENIs with its own Pod Identity role, not the node role, so
        # no pod on a node inherits ENI rights through the instance profile.
        cni_role = iam.pod_identity_role(
            f"{name}-vpc-cni",
            self,
            managed=[CNI_POLICY],
            description=f"VPC CNI of {spec.name}",
            conditions=iam.pod_identity_conditions(cluster_name, "kube-system", CNI_SERVICE_ACCOUNT),
        )
        identities = {"vpc-cni": [{"role_arn": cni_role.arn, "service_account": CNI_SERVICE_ACCOUNT}]}
        before = [self._addon(name, cluster, spec, addon, identity=identities.get(addon)) for addon in BEFORE_NODES]
        node_role = iam.role(
            f"{name}-system-nodes",
            "ec2.amazonaws.com",
            self,
            managed=["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonSSMManagedInstanceCore"],
            description=f"System node group of {spec.name}",
        )
        nodes = self._system_nodes(name, spec, cluster, node_role, private_subnet_ids, before)
        ebs_role = iam.pod_identity_role(
            f"{name}-ebs-csi",
            self,
            managed=["service-role/AmazonEBSCSIDriverPolicy"],
            description=f"EBS CSI controller of {spec.name}",
            conditions=iam.pod_identity_conditions(cluster_name, "kube-system", EBS_CSI_SERVICE_ACCOUNT),
        )
        after = []
        for addon in AFTER_NODES:
            identity = [{"role_arn": ebs_role.arn, "service_account": EBS_CSI_SERVICE_ACCOUNT}] if addon == "aws-ebs-csi-driver" else None
            after.append(self._addon(name, cluster, spec, addon, depends_on=[nodes], identity=identity))

        self.name = cluster_name
        self.endpoint = cluster.endpoint
        # Public, not secret: with the endpoint it is all a team stack needs to reach the cluster (components/stack_contract.py).
        self.certificate_authority = cluster.certificate_authority.data
        self.arn = cluster.arn
        self.oidc_provider_arn = oidc.arn
        self.node_role_arn = node_role.arn
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(cluster_name, cluster.endpoint, cluster.certificate_authority.data).apply(lambda a: kubeconfig(a[0], a[1], a[2], region))
        )
        # Server-side apply lets Kubernetes track field ownership, so controllers (Flagger, HPA) and
        # Pulumi don't overwrite each other's fields. Every Kubernetes resource gets this provider,
        # which is usable once the deployer's access is granted and nodes, DNS and storage run.
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[nodes, *after, *access]),
        )
        # EKS creates no default StorageClass for new clusters; this one is encrypted gp3 on the EBS CSI driver.
        k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata={"name": "gp3", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true"},
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
        )
        self.register_outputs(
            {
                "name": self.name,
                "endpoint": self.endpoint,
                "kubeconfig": self.kubeconfig,
                "oidcProviderArn": self.oidc_provider_arn,
                "nodeRoleArn": self.node_role_arn,
                "clusterSecurityGroupId": self.cluster_security_group_id,
            }
        )

    def _addon(self, name: str, cluster: aws.eks.Cluster, spec: ClusterSpec, addon: str, depends_on=(), identity=None) -> aws.eks.Addon:
        version = aws.eks.get_addon_version_output(
            addon_name=addon, kubernetes_version=spec.kubernetes_version, most_recent=True, opts=pulumi.InvokeOptions(parent=self)
        )
        config = json.dumps(ADDON_CONFIG[addon]) if addon in ADDON_CONFIG else None
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=cluster.name,
            addon_name=addon,
            addon_version=version.version,
            configuration_values=config,
            pod_identity_associations=identity,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )

    def _system_nodes(self, name, spec: ClusterSpec, cluster, node_role, subnets, depends_on) -> aws.eks.NodeGroup:
        nodes = spec.system_nodes
        template = aws.ec2.LaunchTemplate(
            f"{name}-system",
            description=f"System nodes of {spec.name}: IMDSv2 only, encrypted root volume",
            # Hop limit 1 keeps pods (which use Pod Identity) away from the node's instance credentials.
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1},
            block_device_mappings=[
                {
                    "device_name": "/dev/xvda",
                    "ebs": {"volume_size": nodes.disk_size_gib, "volume_type": "gp3", "encrypted": "true", "delete_on_termination": "true"},
                }
            ],
            update_default_version=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=subnets,
            capacity_type="ON_DEMAND",
            ami_type="AL2023_ARM_64_STANDARD" if nodes.architecture == "arm64" else "AL2023_x86_64_STANDARD",
            instance_types=list(nodes.instance_types),
            scaling_config={"min_size": nodes.min_size, "max_size": nodes.max_size, "desired_size": nodes.desired_size},
            update_config={"max_unavailable": 1},
            launch_template={"id": template.id, "version": template.latest_version.apply(str)},
            taints=[SYSTEM_TAINT],
            labels=SYSTEM_NODE_LABEL,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on), ignore_changes=["scalingConfig.desiredSize"]),
        )


def kubeconfig(cluster: str, endpoint: str, ca: str, region: str) -> str:
    """Exec-based credentials: a short-lived token per call, never a token in state."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster, "cluster": {"server": endpoint, "certificate-authority-data": ca}}],
            "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
            "current-context": cluster,
            "users": [
                {
                    "name": cluster,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster, "--region", region, "--output", "json"],
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        }
    )


def oidc_issuer(identities: Sequence[aws.eks.outputs.ClusterIdentity]) -> str:
    """The cluster's OIDC issuer URL, which EKS reports once the cluster exists."""
    oidcs = identities[0].oidcs if identities else None
    if not oidcs or not oidcs[0].issuer:
        raise ValueError("the EKS cluster reports no OIDC issuer")
    return oidcs[0].issuer
