"""The one spec loader: reads every declaration, validates it against every stack, reports mistakes.

Every problem is reported as `file: key.path: what is wrong (what is allowed)` before the program
registers anything, so a bad declaration never leaves a half-applied stack behind. Whichever stack
is asked for, all stacks are checked (a mistake in `envs.prod` fails the dev preview too), and a
file that cannot be loaded causes one error, not follow-on errors in the files that refer to it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field as dataclass_field
from pathlib import Path
from typing import Any, Optional

from . import catalog, environments, hosts, ownership, stack_rules, team_files, tenancy, yamlsafe
from .egress import platform_networks, shared_network_problems
from .fingerprint import fingerprint
from .merging import deep_merge
from .pulumi_files import aws_region, config_problems, missing_secrets, plaintext_secrets, team_stack_secrets
from .problems import Problem, SpecError, short, validate
from .service import Service
from .stack import StackSpec

STACKS_DIR = "stacks"
SERVICES_DIR = team_files.SERVICES_DIR
SUFFIX = ".yaml"

__all__ = ["Declarations", "Problem", "SpecError", "deep_merge", "known_stacks", "load", "read_yaml", "validate"]


@dataclass(frozen=True)
class Declarations:
    """Everything a stack declares, validated: the input of the whole program."""

    stack: str
    spec: StackSpec
    services: tuple[Service, ...]
    # Every stack's validated spec (this one included), for checks that span stacks.
    stacks: dict[str, StackSpec] = dataclass_field(default_factory=dict, compare=False)

    @property
    def environment(self) -> str:
        return self.spec.environment


@dataclass
class _ServiceFile:
    rel: str
    raw: dict[str, Any]
    # The team its folder names (components/spec/team_files.py); never read from the file.
    team: str

    @property
    def name(self) -> str:
        return _name_of(self.raw, self.rel)


def load(stack: str, root: Path) -> Declarations:
    """The validated declarations of `stack`, or SpecError with every problem. One process asks for
    the same environment several times (its platform stack and each team stack): the result is
    reused while every declaration file is byte-for-byte the same."""
    root = Path(root).resolve()
    return _load_cached(stack, root, fingerprint(root))


@functools.lru_cache(maxsize=16)
def _load_cached(stack: str, root: Path, fingerprint: str) -> Declarations:
    return _load(stack, root)


def _load(stack: str, root: Path) -> Declarations:
    problems = _misnamed_files(root) + team_stack_secrets(root)
    stacks = known_stacks(root)
    if stack not in stacks:
        known = ", ".join(stacks) or "none"
        raise SpecError(
            [*problems, Problem(_rel(root / STACKS_DIR / f"{stack}{SUFFIX}", root), "", f"no declaration for stack {short(stack)}; declared stacks: {known}")]
        )
    addons = catalog.discover()
    # Every namespace an addon may create, enabled here or not: no team may take one.
    reserved = tenancy.reserved_namespaces(addons.values())
    specs: dict[str, StackSpec] = {}
    for name in [stack, *(s for s in stacks if s != stack)]:
        problems += plaintext_secrets(name, root) + config_problems(name, root)
        try:
            specs[name] = _load_stack(name, root, addons, reserved)
            problems += missing_secrets(name, specs[name], _rel(_stack_file(root, name), root), root)
        except SpecError as err:
            problems += err.problems
    files, failed = _read_services(root, stacks, problems)
    seen: set[Problem] = set()
    services: tuple[Service, ...] = ()
    claims: dict[str, list[tuple[Service, str]]] = {}
    for name, spec in specs.items():
        found, loaded = _check_stack(name, spec, files, failed, root, addons, reserved, networks=platform_networks(name, specs))
        found += environments.pin_problems(name, spec.environment, ((f.rel, f.raw) for f in files))
        claims[name] = loaded
        if name == stack:
            services = tuple(svc for svc, _ in loaded)
        for p in found:
            if p in seen:
                continue
            seen.add(p)
            # A problem that only another stack shows says which stack it is in.
            in_other = name != stack and p.file != _rel(_stack_file(root, name), root)
            problems.append(Problem(p.file, p.path, f"in stack {name!r}: {p.message}") if in_other else p)
    # Hosts across stacks: each in the stack whose zone it lies in, never the platform's, one owner.
    problems += [Problem(*p) for p in hosts.cross_stack_problems(specs, claims, addons)]
    by_stack = {name: tuple(svc for svc, _ in loaded) for name, loaded in claims.items()}
    problems += environments.canary_parity({n: s.environment for n, s in specs.items()}, by_stack, {f.name: f.rel for f in files})
    if problems:
        raise SpecError(problems)
    return Declarations(stack=stack, spec=specs[stack], services=services, stacks=specs)


def known_stacks(root: Path) -> list[str]:
    return sorted(p.stem for p in (Path(root) / STACKS_DIR).glob(f"*{SUFFIX}"))


def read_yaml(path: Path, root: Path) -> dict[str, Any]:
    return yamlsafe.read(path, _rel(path, root))


def _stack_file(root: Path, stack: str) -> Path:
    return root / STACKS_DIR / f"{stack}{SUFFIX}"


def _misnamed_files(root: Path) -> list[Problem]:
    """Declarations are `.yaml`; a `.yml` (or `.YAML`) file would otherwise be silently ignored."""
    found = []
    for folder in (STACKS_DIR,):
        for path in sorted((root / folder).glob("*")):
            if path.is_file() and path.suffix.lower() in (".yml", ".yaml") and path.suffix != SUFFIX:
                found.append(Problem(_rel(path, root), "", f"declaration files end in {SUFFIX}; rename it to {path.stem}{SUFFIX} so it is read"))
    return found


def _load_stack(stack: str, root: Path, addons: dict, reserved: tuple[str, ...]) -> StackSpec:
    path = _stack_file(root, stack)
    rel = _rel(path, root)
    raw = read_yaml(path, root)
    # The declared environment is context for the nested settings whose rules depend on it (components/spec/domains.py).
    context = {"addons": {n: a.requires for n, a in addons.items()}, "reserved_namespaces": reserved, "environment": raw.get("environment")}
    spec = validate(StackSpec, raw, rel, context=context)
    problems: list[Problem] = [Problem(rel, path, message) for path, message in shared_network_problems(spec.teams)]
    region = aws_region(stack, root)
    for name, addon in spec.addons.items():
        # The environment and region are context: some settings are required only in prod, or name regional resources.
        try:
            validate(
                addons[name].settings, addon.settings, rel, context={"environment": spec.environment, "region": region}, prefix=("addons", name, "settings")
            )
        except SpecError as err:
            problems += err.problems
    if problems:
        raise SpecError(problems)
    return spec


def _read_services(root: Path, stacks: list[str], problems: list[Problem]) -> tuple[list[_ServiceFile], set[str]]:
    """Each service file read once; the names of those that fail, so nothing else reports them again."""
    files, failed = [], set()
    found, refused = team_files.scan(root)
    problems += refused
    for entry in found:
        path, rel = entry.path, entry.rel
        try:
            raw = read_yaml(path, root)
        except SpecError as err:
            problems += err.problems
            failed.add(path.stem)
            continue
        declared = team_files.declared_team(raw, rel, entry.team)
        if declared:
            problems += declared
            failed.add(_name_of(raw, rel))
            continue
        try:
            team_files.check_envs(raw, rel, stacks)
        except SpecError as err:
            problems += err.problems
            failed.add(_name_of(raw, rel))
            continue
        files.append(_ServiceFile(rel, raw, entry.team))
    return files, failed


def _check_stack(
    stack: str,
    spec: StackSpec,
    files: list[_ServiceFile],
    failed: set[str],
    root: Path,
    addons: dict,
    reserved: tuple[str, ...],
    networks: tuple[tuple[str, str], ...] = (),
) -> tuple[list[Problem], list[tuple[Service, str]]]:
    """Every service as this stack sees it, then the rules across files: dependencies, names, hosts, placement, quotas."""
    # The tier objectives are not merged into every file: a service inherits those of its tier (Service._inherit_slo).
    defaults = spec.service_defaults.model_dump(by_alias=True, exclude_none=True, exclude={"slos"})
    context = {
        **_service_context(spec),
        "retention": _prometheus_retention(spec, addons),
        "reserved_namespaces": reserved,
        "networks": networks,
        # What the stack grants each team, and ("") every team, outside the mesh (components/spec/egress.py).
        "egress_grants": {"": spec.policy.shared_egress, **{team: entry.egress for team, entry in spec.teams.items()}},
        "aws": {"region": aws_region(stack, root), "account": spec.policy.aws_account_id, "services": spec.policy.workload_boundary.services},
        "ownership": ownership.of_stack(spec),
    }
    problems: list[Problem] = []
    failed = set(failed)
    declared: dict[str, tuple[Service, str]] = {}
    for f in files:
        overlay = environments.pinned_overlay(stack, spec.environment, f.raw, f.raw.get("envs", {}).get(stack, {}))
        merged = {**deep_merge(deep_merge(defaults, f.raw), overlay), "team": f.team}
        try:
            # The team is context too: the rules on what a file may reference ask what its team owns.
            service = validate(Service, merged, f.rel, context={**context, "team": f.team}, overlay=(stack, overlay))
        except SpecError as err:
            problems += err.problems
            failed.add(f.name)
            continue
        if service.name in declared:
            problems.append(
                Problem(f.rel, "name", f"duplicate service {service.name!r}, already declared in {declared[service.name][1]}; service names must be unique")
            )
            continue
        declared[service.name] = (service, f.rel)
    active = {name for name, (svc, _) in declared.items() if svc.enabled}
    for service, rel in declared.values():
        if not service.enabled:
            continue
        for i, dep in enumerate(service.depends_on):
            if dep in failed and dep not in declared:
                continue  # its own file's error is the one to fix
            if dep not in declared:
                problems.append(
                    Problem(rel, f"dependsOn[{i}]", f"unknown service {short(dep)}; declared services: {', '.join(sorted(declared | dict.fromkeys(failed)))}")
                )
            elif dep not in active:
                problems.append(Problem(rel, f"dependsOn[{i}]", f"service {dep!r} is disabled in stack {stack!r}; enable it or drop the dependency"))
    loaded = [(svc, rel) for svc, rel in declared.values() if svc.enabled]
    problems += stack_rules.problems(stack, spec, loaded, _rel(_stack_file(root, stack), root), addons)
    return problems, loaded


def _service_context(spec: StackSpec) -> dict[str, Any]:
    """What a service's rules depend on in its stack."""
    return {
        "environment": spec.environment,
        "max_rollback_seconds": spec.policy.max_rollback_seconds,
        "addons": sorted(name for name, addon in spec.addons.items() if addon.enabled),
        "zone": spec.dns.zone if spec.dns else None,
        "domains": spec.ingress.domains,
        "slos": spec.service_defaults.slos.model_dump(by_alias=True),
    }


def _prometheus_retention(spec: StackSpec, addons: dict) -> Optional[str]:
    """How long the stack's Prometheus keeps samples: a forecast's last season must be within it (scaling.predictive)."""
    addon = spec.addons.get("prometheus")
    if addon is None or not addon.enabled or "prometheus" not in addons:
        return None
    # Validated already by _load_stack; read through the addon's model for its default.
    return getattr(addons["prometheus"].settings.model_validate(addon.settings), "retention", None)


def _name_of(raw: dict[str, Any], rel: str) -> str:
    name = raw.get("name")
    return name if isinstance(name, str) else Path(rel).stem


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)
