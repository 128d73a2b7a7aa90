"""Rules across the stacks' environments: where images are pinned, and where canaries must run.

- dev follows a service's top-level `image` (CI bumps it on merge); staging and prod stacks pin
  each service's image in its file (`envs.<stack>.image`), so nothing reaches them but a reviewed
  change: for prod, the PR `make promote` opens once the promotion gates hold (docs/delivery.md).
  Another stack of those environments (prod's recovery stack) runs the environment's pins.
- Every service that canaries in a prod stack canaries in each staging stack too: staging is where
  the canary analysis the promotion gate reads first meets real traffic.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from .problems import Problem
from .service import Service

PINNED_ENVIRONMENTS = ("staging", "prod")


def pinned_overlay(stack: str, environment: str, raw: Mapping[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """The stack's overlay of a service file, with its environment's pin when it has none of its own:
    another stack of an environment (prod's recovery stack, docs/runbooks/restore.md) runs the images
    the environment's own stack pins."""
    if environment not in PINNED_ENVIRONMENTS or stack == environment or "image" in overlay:
        return overlay
    pin = ((raw.get("envs") or {}).get(environment) or {}).get("image")
    return {**overlay, "image": pin} if pin is not None else overlay


def pin_problems(stack: str, environment: str, files: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Problem]:
    """(file, raw declaration) pairs whose service runs in `stack` without an image pinned for it."""
    if environment not in PINNED_ENVIRONMENTS:
        return []
    found = []
    for rel, raw in files:
        overlay = pinned_overlay(stack, environment, raw, (raw.get("envs") or {}).get(stack) or {})
        if overlay.get("enabled", raw.get("enabled", True)) is False or "image" in overlay:
            continue
        found.append(
            Problem(
                rel,
                f"envs.{stack}.image",
                f"a {environment} stack runs only pinned images: set envs.{stack}.image (dev alone follows the top-level image; "
                f"{'`make promote` writes the prod pin' if environment == 'prod' else 'the staging pin is bumped by a reviewed PR'})",
            )
        )
    return found


def canary_parity(environments: Mapping[str, str], loaded: Mapping[str, tuple[Service, ...]], rels: Mapping[str, str]) -> list[Problem]:
    """Services that canary in a prod stack but not in a staging stack that runs them."""
    found = []
    for prod, prod_env in environments.items():
        if prod_env != "prod":
            continue
        canaried = {s.name for s in loaded.get(prod, ()) if s.canary_enabled(prod_env)}
        for staging, env in environments.items():
            if env != "staging":
                continue
            for svc in loaded.get(staging, ()):
                if svc.name in canaried and not svc.canary_enabled(env):
                    found.append(
                        Problem(
                            rels.get(svc.name, svc.name),
                            f"envs.{staging}.canary.enabled",
                            f"{svc.name} canaries in stack {prod!r}, so it must canary in staging stack {staging!r} too: the promotion gate "
                            "reads the staging canary's result for the exact image it promotes",
                        )
                    )
    return found
