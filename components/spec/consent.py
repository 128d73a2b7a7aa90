"""Consent for traffic between teams: a callee's owners decide who of the other teams may call it.

`dependsOn` is the caller's wish; `allowedCallers` is the callee's consent. The callee's
NetworkPolicy and AuthorizationPolicy admit a caller of another team only when both agree, and
they are rendered in the callee's own stack: a caller's file can never open a door in a namespace
its team does not own. Calls inside one team need no consent (the team owns both ends).
"""

from __future__ import annotations

from typing import Iterable

from .service import Service


def allows(callee: Service, caller: Service) -> bool:
    """Whether `callee` accepts calls from `caller`."""
    if callee.team == caller.team:
        return True
    return f"{caller.team}/{caller.name}" in callee.allowed_callers or f"{caller.team}/*" in callee.allowed_callers


def problems(loaded: Iterable[tuple[Service, str]]) -> list[tuple[str, str, str]]:
    """(file, key path, message) for each cross-team dependency the callee has not agreed to."""
    loaded = list(loaded)
    by_name = {svc.name: (svc, rel) for svc, rel in loaded}
    found = []
    for caller, rel in loaded:
        for i, dep in enumerate(caller.depends_on):
            if dep not in by_name:
                continue  # an unknown or disabled service is reported by the loader
            callee, callee_rel = by_name[dep]
            if not allows(callee, caller):
                who = f"{caller.team}/{caller.name}"
                found.append(
                    (
                        rel,
                        f"dependsOn[{i}]",
                        f"service {dep!r} of team {callee.team!r} ({callee_rel}) does not allow calls from {who}; "
                        f"its owners must add {who!r} to allowedCallers in {callee_rel}",
                    )
                )
    return found
