"""The contract between the platform stack of an environment and its team stacks (`<team>-<env>`).

The platform stack exports it; a team stack reads it through a StackReference and nothing else.
It is versioned (`contractVersion`: a team stack refuses a platform that speaks another version)
and secret-free: the cluster is reached with the endpoint and CA it publishes, and each deploy
authenticates with its own short-lived `aws eks get-token`, so no credential crosses stacks and
a team stack's state never holds one. What the contract carries:

- `clusterName`, `clusterEndpoint`, `clusterCertificateAuthority`, `region`: how to reach the cluster;
- `teamRooms.<team>`: what the platform built for the team: its namespace, its SecretStore (when
  the stack has Vault) and the permissions boundary its workload roles must carry;
- `mesh`, `telemetry`: the addresses the team's workloads are wired to (the mesh gateway, the
  ingress and Prometheus identities, the OTLP endpoint). The team program derives the same from
  the environment's declarations, and a disagreement (a platform not yet deployed at this commit)
  stops the team deploy instead of wiring services to addresses that do not exist.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

CONTRACT_VERSION = 1
# Every output a team stack reads; a missing or renamed one is refused by name.
OUTPUTS = ("contractVersion", "clusterName", "clusterEndpoint", "clusterCertificateAuthority", "region", "teamRooms", "mesh", "telemetry")
# The StackReference name of an environment's platform stack: <organization>/<project>/<environment>.
PLATFORM_PROJECT = "platform"
TEAM_PROJECT = "platform-teams"
SECRET = "[secret]"


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
    for name, expected in (("mesh", mesh), ("telemetry", telemetry)):
        if expected is not None and _normal(outputs[name]) != _normal(dict(expected)):
            found.append(
                f"the platform stack's output {name!r} is {outputs[name]!r}, but this commit's declarations give {dict(expected)!r}; deploy the platform stack first"
            )
    return found


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
