"""The platform program (stacks `<env>`): load the environment's declarations, build the platform
and every team's room, and export the contract the team stacks (teams/, stacks `<team>-<env>`) read."""

from pathlib import Path

import pulumi

from components.addons.base import gitops_metadata
from components import stack_contract
from components.platform import Platform
from components.spec import SpecError, load
from components.spec.platform_view import platform_view
from components.workloads import offered

try:
    declarations = load(pulumi.get_stack(), Path(__file__).resolve().parent)
except SpecError as err:
    # RunError prints just the message: a declaration mistake is not a crash.
    raise pulumi.RunError(f"invalid stack declarations:\n{err}") from None

region = pulumi.Config("aws").require("region")
# The one stack setting that depends on the region, which only the Pulumi config knows: checked
# before anything is registered.
copy = declarations.spec.backup.copy_to if declarations.spec.backup else None
if copy is not None and copy.region == region:
    raise pulumi.RunError(
        f"invalid stack declarations:\nstacks/{pulumi.get_stack()}.yaml: backup.copyTo.region: {region} is the stack's own region; "
        "the copy must be in another region to survive losing this one"
    )
# The layout before the split (docs/operations.md#migrating-to-team-stacks): services in this stack too.
# Only for a stack whose state has not been moved yet; never for a new stack.
single_stack = pulumi.Config().get_bool("singleStack") or False
# Of the services, the platform reads only their views (components/spec/platform_view.py): what it
# reads is declared, and a change outside the views provably leaves this stack alone.
given = declarations if single_stack else platform_view(declarations)
try:
    platform = Platform("platform", given, region, single_stack=single_stack)
except Exception as err:  # noqa: BLE001 (a failure while rendering is one line for the user, not a stack trace)
    raise pulumi.RunError(
        f"invalid stack declarations:\nthe program failed while rendering the stack: {type(err).__name__}: {' '.join(str(err).split())[:400]}"
    ) from None
cluster, network = platform.cluster, platform.network

pulumi.export("clusterName", cluster.name)
pulumi.export("clusterEndpoint", cluster.endpoint)
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("oidcProviderArn", cluster.oidc_provider_arn)
pulumi.export("nodeRoleArn", cluster.node_role_arn)
pulumi.export("clusterSecurityGroupId", cluster.cluster_security_group_id)
pulumi.export("vpcId", network.vpc_id)
pulumi.export("privateSubnetIds", network.private_subnet_ids)
pulumi.export("publicSubnetIds", network.public_subnet_ids)

addons = platform.addons
pulumi.export("gitopsMetadata", {name: gitops_metadata(addon) for name, addon in addons.items()})
if "argocd" in addons:
    pulumi.export("argocdHost", addons["argocd"].outputs()["host"])
if "prometheus" in addons:
    pulumi.export("grafanaHost", addons["prometheus"].outputs()["grafanaHost"])
if single_stack:
    pulumi.export(
        "canaries",
        {
            name: {"rollbackSeconds": svc.rollback_seconds, "promotionSeconds": svc.promotion_seconds}
            for name, svc in platform.workloads.services.items()
            if svc.rollback_seconds is not None
        },
    )

# The contract of the team stacks (components/stack_contract.py): versioned, and without a secret.
mesh = offered(given, platform.contracts, declarations.spec.cluster.name, region)
pulumi.export("contractVersion", stack_contract.CONTRACT_VERSION)
pulumi.export("clusterCertificateAuthority", cluster.certificate_authority)
pulumi.export("region", region)
pulumi.export("teamRooms", platform.room_contract())
pulumi.export("mesh", stack_contract.mesh_addresses(mesh))
pulumi.export("telemetry", stack_contract.telemetry_addresses(mesh))
