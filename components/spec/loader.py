"""The one spec loader: reads every declaration, validates it against every stack, reports mistakes.

Every problem is reported as `file: key.path: what is wrong (what is allowed)` before the program
registers anything, so a bad declaration never leaves a half-applied stack behind. Whichever stack
is asked for, all stacks are checked (a mistake in `envs.prod` fails the dev preview too), and a
file that cannot be loaded causes one error, not follow-on errors in the files that refer to it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field as dataclass_field
from pathlib import Path
from typing import Any

from . import catalog, names, ownership, placement, tenancy, yamlsafe
from .pulumi_files import aws_region, config_problems, plaintext_secrets, secret_keys
from .problems import Problem, SpecError, dotted, short, validate
from .service import Service
from .stack import StackSpec

STACKS_DIR = "stacks"
SERVICES_DIR = "stacks/services"
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

    @property
    def name(self) -> str:
        return _name_of(self.raw, self.rel)


def load(stack: str, root: Path) -> Declarations:
    root = Path(root)
    problems = _misnamed_files(root)
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
            problems += _missing_secrets(name, specs[name], root)
        except SpecError as err:
            problems += err.problems
    files, failed = _read_services(root, stacks, problems)
    seen: set[Problem] = set()
    services: tuple[Service, ...] = ()
    for name, spec in specs.items():
        found, loaded = _check_stack(name, spec, files, failed, root, addons, reserved)
        if name == stack:
            services = loaded
        for p in found:
            if p in seen:
                continue
            seen.add(p)
            # A problem that only another stack shows says which stack it is in.
            in_other = name != stack and p.file != _rel(_stack_file(root, name), root)
            problems.append(Problem(p.file, p.path, f"in stack {name!r}: {p.message}") if in_other else p)
    if problems:
        raise SpecError(problems)
    return Declarations(stack=stack, spec=specs[stack], services=services, stacks=specs)


def _missing_secrets(stack: str, spec: StackSpec, root: Path) -> list[Problem]:
    """The secret config the stack's declarations name must exist for it, or `pulumi up` stops half-way."""
    backup = spec.backup
    if backup is None or backup.repository_password is None or not backup.moves_data:
        return []
    key = backup.repository_password.config
    if key in secret_keys(stack, root):
        return []
    return [
        Problem(
            _rel(_stack_file(root, stack), root),
            "backup.repositoryPassword.config",
            f"Pulumi secret config key {key!r} is neither declared `secret: true` in Pulumi.yaml nor stored encrypted in Pulumi.{stack}.yaml; "
            f"moved volume data is encrypted with it and a restore needs it: declare it and run `pulumi config set --secret {key}`",
        )
    ]


def known_stacks(root: Path) -> list[str]:
    return sorted(p.stem for p in (Path(root) / STACKS_DIR).glob(f"*{SUFFIX}"))


def read_yaml(path: Path, root: Path) -> dict[str, Any]:
    return yamlsafe.read(path, _rel(path, root))


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Maps merge key by key; anything else (lists included) in the overlay replaces the base."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _stack_file(root: Path, stack: str) -> Path:
    return root / STACKS_DIR / f"{stack}{SUFFIX}"


def _misnamed_files(root: Path) -> list[Problem]:
    """Declarations are `.yaml`; a `.yml` (or `.YAML`) file would otherwise be silently ignored."""
    found = []
    for folder in (STACKS_DIR, SERVICES_DIR):
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
    problems: list[Problem] = []
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
    for path in sorted((root / SERVICES_DIR).glob(f"*{SUFFIX}")):
        rel = _rel(path, root)
        try:
            raw = read_yaml(path, root)
        except SpecError as err:
            problems += err.problems
            failed.add(path.stem)
            continue
        try:
            _check_envs(raw, rel, stacks)
        except SpecError as err:
            problems += err.problems
            failed.add(_name_of(raw, rel))
            continue
        files.append(_ServiceFile(rel, raw))
    return files, failed


def _check_envs(raw: dict[str, Any], rel: str, stacks: list[str]) -> None:
    envs = raw.get("envs", {})
    if not isinstance(envs, dict):
        raise SpecError([Problem(rel, "envs", f"expected a mapping of stack name to overrides, got {type(envs).__name__}")])
    for name, overlay in envs.items():
        if name not in stacks:
            raise SpecError([Problem(rel, dotted(("envs", name)), f"unknown stack {short(name)}; declared stacks: {', '.join(stacks)}")])
        if not isinstance(overlay, dict):
            raise SpecError([Problem(rel, dotted(("envs", name)), f"expected a mapping of overrides, got {type(overlay).__name__}")])
        if "envs" in overlay or "name" in overlay:
            key = "envs" if "envs" in overlay else "name"
            raise SpecError([Problem(rel, f"envs.{name}.{key}", "cannot be overridden per stack")])


def _check_stack(
    stack: str, spec: StackSpec, files: list[_ServiceFile], failed: set[str], root: Path, addons: dict, reserved: tuple[str, ...]
) -> tuple[list[Problem], tuple[Service, ...]]:
    """Every service as this stack sees it, then the rules across files: dependencies, names, hosts, placement, quotas."""
    # The tier objectives are not merged into every file: a service inherits those of its tier (Service._inherit_slo).
    defaults = spec.service_defaults.model_dump(by_alias=True, exclude_none=True, exclude={"slos"})
    context = {
        **_service_context(spec),
        "reserved_namespaces": reserved,
        "aws": {"region": aws_region(stack, root), "account": spec.policy.aws_account_id, "services": spec.policy.workload_boundary.services},
        "ownership": ownership.of_stack(spec),
    }
    problems: list[Problem] = []
    failed = set(failed)
    declared: dict[str, tuple[Service, str]] = {}
    for f in files:
        overlay = f.raw.get("envs", {}).get(stack, {})
        try:
            service = validate(Service, deep_merge(deep_merge(defaults, f.raw), overlay), f.rel, context=context, overlay=(stack, overlay))
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
    problems.extend(Problem(*found) for found in tenancy.host_claims([(svc.expose.host, svc.name, rel) for svc, rel in loaded if svc.expose]))
    rel = _rel(_stack_file(root, stack), root)
    problems += names.problems(names.derive(_stack_names(spec, rel, addons), loaded))
    problems += [
        Problem(rel, path, message) for path, message in placement.problems(spec.karpenter.node_pools, [s.name for s, _ in loaded if s.tier == "critical"])
    ]
    # A cross-file rule: the stack's team budgets against what the loaded services may request.
    problems += [Problem(rel, path, message) for path, message in spec.quota_problems(tuple(svc for svc, _ in loaded))]
    return problems, tuple(svc for svc, _ in loaded)


def _stack_names(spec: StackSpec, rel: str, addons: dict) -> names.StackNames:
    enabled = {name: addons[name].namespaces for name, a in spec.addons.items() if a.enabled}
    return names.StackNames(
        rel=rel,
        environment=spec.environment,
        cluster=spec.cluster.name,
        addons=enabled,
        monitoring=spec.addon_enabled("prometheus"),
        tracing=spec.addon_enabled("tracing"),
        pools=tuple(p.name for p in spec.karpenter.node_pools),
    )


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


def _name_of(raw: dict[str, Any], rel: str) -> str:
    name = raw.get("name")
    return name if isinstance(name, str) else Path(rel).stem


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)
