"""What the platform stack reads of the services: a declared projection, and nothing else.

The platform program (`__main__.py`) builds the cluster, the addons and each team's room; of the
services it needs only what shapes those (which AWS APIs get VPC endpoints, whether workload roles
need their boundary, the public hosts the gateway serves, the queues KEDA may read, the external
hosts the egress gateway routes, and whether predictive scaling needs its recording rules). It is
handed these views instead of the services, so a component that reads anything else fails on the
spot, in every test that runs the platform.

That makes the projection a sound key: the same code, stack files and views give the same platform
stack, so a change that leaves the views alone (an image bump, replicas, env, alerts) cannot touch
it, and `make diff` serves the platform's recorded state instead of running it again
(engine/platform_state.py). The single-stack layout renders the services in the platform stack
and is handed the full declarations.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Optional

from .loader import Declarations
from .service import Service


@dataclass(frozen=True)
class QueueView:
    queue_name: str


@dataclass(frozen=True)
class PredictiveView:
    """Only that it is on: the platform adds the recording rules predictive scaling reads."""


@dataclass(frozen=True)
class ScalingView:
    sqs: Optional[QueueView]
    predictive: Optional[PredictiveView]


@dataclass(frozen=True)
class ExposeView:
    host: str


@dataclass(frozen=True)
class PlatformService:
    """One service as the platform stack sees it. Attribute names are the Service's, so platform
    components read either (the single-stack layout hands them full services)."""

    name: str
    team: str
    aws_apis: tuple[str, ...]
    has_aws_role: bool
    external_hosts: tuple[tuple[str, int], ...]
    expose: Optional[ExposeView]
    scaling: ScalingView

    @classmethod
    def of(cls, svc: Service) -> "PlatformService":
        return cls(
            name=svc.name,
            team=svc.team,
            aws_apis=tuple(svc.aws_apis),
            has_aws_role=svc.has_aws_role,
            external_hosts=tuple(svc.external_hosts),
            expose=ExposeView(svc.expose.host) if svc.expose is not None else None,
            scaling=ScalingView(
                sqs=QueueView(svc.scaling.sqs.queue_name) if svc.scaling.sqs is not None else None,
                predictive=PredictiveView() if svc.scaling.predictive is not None else None,
            ),
        )


def views(decl: Declarations) -> tuple[PlatformService, ...]:
    """Every service's view, in one order (team, name) whatever the files are called."""
    return tuple(sorted((PlatformService.of(s) for s in decl.services), key=lambda v: (v.team, v.name)))


def platform_view(decl: Declarations) -> Declarations:
    """The declarations as the platform program is given them: every service reduced to its view."""
    given: Any = views(decl)
    return dataclasses.replace(decl, services=given)


def canonical(decl: Declarations) -> str:
    """The services' views as one canonical JSON text (a part of the platform state's key)."""
    return json.dumps([dataclasses.asdict(v) for v in views(decl)], sort_keys=True, separators=(",", ":"))
