"""The contract between the platform stack of an environment and its team stacks (`<team>-<env>`).

The platform stack exports it; a team stack reads it through a StackReference and nothing else.
It is versioned (`contractVersion`: a team stack refuses a platform that speaks another version)
and secret-free: the cluster is reached with the endpoint and CA it publishes, and each deploy
authenticates with its own short-lived `aws eks get-token`, so no credential crosses stacks and
a team stack's state never holds one. What the contract carries:

- `clusterName`, `clusterEndpoint`, `clusterCertificateAuthority`, `region`: how to reach the cluster;
- `teamRooms.<team>`: what the platform built for the team: its namespace, its SecretStore (when
  the stack has Vault), the permissions boundary its workload roles must carry, and
  `deployRoleArn`, the ARN of the IAM role the platform made for the team in this environment
  (components/aws/team_deploy.py), the one identity CI deploys the team's stack with. It is an
  ARN, not a credential: assuming the role takes the team's GitHub OIDC token. Every team with a
  budget has a room, services or not yet (docs/platform.md#a-room-for-every-declared-team);
- `mesh`, `telemetry`: the addresses the team's workloads are wired to (the mesh gateway, the
  ingress and Prometheus identities, the OTLP endpoint). The team program derives the same from
  the environment's declarations, and a disagreement (a platform not yet deployed at this commit)
  stops the team deploy instead of wiring services to addresses that do not exist.

When the version changes: `contractVersion` is bumped when a key a team program reads is removed,
renamed or changes meaning, since an older team program would misread it. A new key, like
`deployRoleArn` in each room, is not a new version: a team program that predates it reads the room
it always read and ignores the key, and a team program that needs it refuses, by name, a platform
stack deployed before it existed ("deploy the platform stack first", as for a `mesh` mismatch).
Bumping for it would refuse every team stack previewed or deployed from an older commit against
the new platform, for a key it does not read.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from components.spec.limits import IAM_PRINCIPAL, principal_problem

CONTRACT_VERSION = 1
# Every output a team stack reads; a missing or renamed one is refused by name.
OUTPUTS = ("contractVersion", "clusterName", "clusterEndpoint", "clusterCertificateAuthority", "region", "teamRooms", "mesh", "telemetry")
# The StackReference name of an environment's platform stack: <organization>/<project>/<environment>.
PLATFORM_PROJECT = "platform"
TEAM_PROJECT = "platform-teams"
SECRET = "[secret]"
# What every room carries (a SecretStore only when the platform has Vault, a boundary only when a
# workload role needs one: those two may be absent). Stack outputs drop nulls inside maps, so an
# absent key and a null one are the same thing to a team stack.
ROOM_KEYS = ("namespace", "deployRoleArn")
ROOM_HINTS = {
    "deployRoleArn": "; the platform stack makes each team's deploy role when stacks/<env>.yaml has teamDeploy (docs/security-model.md#team-deploy-identity)"
}


def platform_stack_name(organization: str, environment: str, project: str = PLATFORM_PROJECT) -> str:
    return f"{organization}/{project}/{environment}"


def mesh_addresses(mesh: Any) -> dict[str, Any]:
    """What the contract's `mesh` output says about a workloads Mesh (components/workloads/mesh.py)."""
    peers = mesh.peers
    return {
        "enabled": mesh.mesh,
        "gateway": mesh.gateway,
        "ingressPrincipal": peers.ingress.principal if peers.ingress else None,
        "loadtesterUrl": mesh.loadtester_url,
        "egressGateway": list(mesh.egress_gateway[:1]) + [mesh.egress_gateway[2]] if mesh.egress_gateway else None,
    }


def telemetry_addresses(mesh: Any) -> dict[str, Any]:
    """The contract's `telemetry` output: where spans go and who scrapes metrics."""
    peers = mesh.peers
    return {"otlpEndpoint": mesh.otlp_endpoint, "prometheusPrincipal": peers.prometheus.principal if peers.prometheus else None}


def problems(outputs: Mapping[str, Any], team: str, mesh: Optional[Mapping[str, Any]] = None, telemetry: Optional[Mapping[str, Any]] = None) -> list[str]:
    """What is wrong with a platform stack's outputs as seen by `team`'s stack; empty when it may deploy.

    Used twice: by the team program against the live platform stack (inside the StackReference's
    apply, so a real `pulumi preview` stops with the message), and by the offline engine against
    the platform stack's recorded outputs (exit 2)."""
    missing = [name for name in OUTPUTS if name not in outputs]
    if missing:
        return [f"the platform stack has no output {name!r} (contract version {CONTRACT_VERSION} needs {', '.join(OUTPUTS)})" for name in missing]
    found = []
    secret = [name for name in OUTPUTS if _has_secret(outputs[name])]
    found += [f"the platform stack's output {name!r} is a secret; the contract is secret-free" for name in secret]
    if outputs["contractVersion"] != CONTRACT_VERSION:
        found.append(f"the platform stack speaks contract version {outputs['contractVersion']!r}; this team program needs version {CONTRACT_VERSION}")
    rooms = outputs["teamRooms"] if isinstance(outputs["teamRooms"], dict) else {}
    if team not in rooms:
        found.append(
            f"the platform stack has no room for team {team!r} (teamRooms lists: {', '.join(sorted(rooms)) or 'none'}); deploy the platform stack first"
        )
    else:
        found += _room_problems(rooms[team], team)
    for name, expected in (("mesh", mesh), ("telemetry", telemetry)):
        if expected is not None and _normal(outputs[name]) != _normal(dict(expected)):
            found.append(
                f"the platform stack's output {name!r} is {outputs[name]!r}, but this commit's declarations give {dict(expected)!r}; deploy the platform stack first"
            )
    return found


def _room_problems(room: Any, team: str) -> list[str]:
    """What is missing from the team's room: each key of ROOM_KEYS, by name."""
    room = room if isinstance(room, dict) else {}
    found = [
        f"the platform stack's room for team {team!r} has no {key!r} (teamRooms.{team}.{key}; contract version {CONTRACT_VERSION} needs "
        f"{', '.join(ROOM_KEYS)}){ROOM_HINTS.get(key, '')}"
        for key in ROOM_KEYS
        if room.get(key) in (None, "")
    ]
    role = room.get("deployRoleArn")
    if isinstance(role, str) and role != SECRET and not _role_arn(role):
        found.append(f"the platform stack's teamRooms.{team}.deployRoleArn is {role!r}, not the ARN of an IAM role")
    return found


def _role_arn(arn: str) -> bool:
    """An IAM role's ARN, read as the declarations read principals (components/spec/limits.py)."""
    match = IAM_PRINCIPAL.match(arn)
    return match is not None and match["kind"] == "role" and principal_problem(arn) is None


def _normal(value: Any) -> Any:
    """A value as it crosses stacks: stack outputs carry numbers as doubles and drop nulls in maps."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _has_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    return value == SECRET
