"""The rules across the service files of one stack, once each file has validated on its own:
consent for cross-team calls, one owner per host, derived names, critical placement, the team
budgets, the allowed registries and whether each container fits the largest node it may land on."""

from __future__ import annotations

from . import capacity, consent, names, placement, tenancy
from .problems import Problem
from .service import Service
from .stack import SIDECAR_REQUESTS, StackSpec
from .stack_settings import from_registry


def problems(stack: str, spec: StackSpec, loaded: list[tuple[Service, str]], rel: str, addons: dict) -> list[Problem]:
    """What is wrong across `loaded` (each service with its file) in `stack`, whose file is `rel`."""
    found = [Problem(*p) for p in consent.problems(loaded)]
    found += [Problem(*p) for p in tenancy.host_claims([(svc.expose.host, svc.name, f) for svc, f in loaded if svc.expose])]
    found += names.problems(names.derive(names.of_stack(spec, rel, addons), loaded))
    critical = [s.name for s, _ in loaded if s.tier == "critical"]
    found += [Problem(rel, path, message) for path, message in placement.problems(spec.karpenter.node_pools, critical)]
    # The stack's team budgets against what the loaded services may request.
    found += [Problem(rel, path, message) for path, message in spec.quota_problems(tuple(svc for svc, _ in loaded))]
    allowed = spec.policy.allowed_registries
    found += [
        Problem(f, "image", f"{spec.pulled(svc).image!r} is not under policy.allowedRegistries of stack {stack!r} ({', '.join(allowed)})")
        for svc, f in loaded
        if not any(from_registry(spec.pulled(svc).image, prefix) for prefix in allowed)
    ]
    sidecar = SIDECAR_REQUESTS if spec.addon_enabled("istio") else None
    found += [Problem(f, path, message) for svc, f in loaded for path, message in capacity.fit_problems(svc, spec.karpenter.node_pools, sidecar)]
    return found
