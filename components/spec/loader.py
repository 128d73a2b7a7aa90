"""The one spec loader: reads a stack's declarations, validates them, and reports mistakes.

Every problem is reported as `file: key.path: what is wrong (what is allowed)` before the program
registers anything, so a bad declaration never leaves a half-applied stack behind.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Iterable, Optional, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from .service import Service
from .stack import StackSpec

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
STACKS_DIR = "stacks"
SERVICES_DIR = "stacks/services"


@dataclass(frozen=True)
class Problem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}" if self.path else f"{self.file}: {self.message}"


class SpecError(Exception):
    """One or more declaration mistakes; str() is the complete, user-facing report."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Declarations:
    """Everything a stack declares, validated: the input of the whole program."""

    stack: str
    spec: StackSpec
    services: tuple[Service, ...]

    @property
    def environment(self) -> str:
        return self.spec.environment


def load(stack: str, root: Path) -> Declarations:
    root = Path(root)
    stack_file = root / STACKS_DIR / f"{stack}.yaml"
    if not stack_file.is_file():
        known = ", ".join(known_stacks(root)) or "none"
        raise SpecError([Problem(_rel(stack_file, root), "", f"no declaration for stack {stack!r}; declared stacks: {known}")])
    raw = read_yaml(stack_file, root)
    # Imported here: the addons package builds on these models, not the other way round.
    from components.addons import discover

    addons = discover()
    rel = _rel(stack_file, root)
    spec = validate(StackSpec, raw, rel, context={"addons": {n: a.requires for n, a in addons.items()}})
    for name, addon in spec.addons.items():
        # The environment is context: some settings are required only in prod.
        validate(addons[name].Settings, addon.settings, rel, context={"environment": spec.environment}, prefix=("addons", name, "settings"))
    services = _load_services(stack, spec, root)
    # A cross-file rule: the stack's team budgets against what the loaded services may request.
    quota = spec.quota_problems(services)
    if quota:
        raise SpecError([Problem(rel, path, message) for path, message in quota])
    return Declarations(stack=stack, spec=spec, services=services)


def known_stacks(root: Path) -> list[str]:
    return sorted(p.stem for p in (Path(root) / STACKS_DIR).glob("*.yaml"))


def read_yaml(path: Path, root: Path) -> dict[str, Any]:
    rel = _rel(path, root)
    try:
        # libyaml's parser where PyYAML has it: several times faster on hundreds of service files.
        data = yaml.load(path.read_text(), Loader=SAFE_LOADER)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError([Problem(rel, where, f"YAML syntax error: {err.problem}")]) from None
    except yaml.YAMLError as err:
        raise SpecError([Problem(rel, "", f"YAML syntax error: {err}")]) from None
    if not isinstance(data, dict):
        raise SpecError([Problem(rel, "", f"expected a mapping of keys at the top level, got {type(data).__name__}")])
    return data


def validate(model: type[BaseModel], data: dict[str, Any], rel: str, context: Optional[dict] = None,
             overlay: Optional[tuple[str, dict]] = None, prefix: tuple = ()) -> Any:
    try:
        return model.model_validate(data, context=context)
    except ValidationError as err:
        raise SpecError(_problems(model, err, rel, overlay, prefix)) from None


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Maps merge key by key; anything else (lists included) in the overlay replaces the base."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _load_services(stack: str, spec: StackSpec, root: Path) -> tuple[Service, ...]:
    stacks = set(known_stacks(root))
    # The tier objectives are not merged into every file: a service inherits those of its tier (Service._inherit_slo).
    defaults = spec.service_defaults.model_dump(by_alias=True, exclude_none=True, exclude={"slos"})
    problems: list[Problem] = []
    declared: dict[str, tuple[Service, str]] = {}
    for path in sorted((root / SERVICES_DIR).glob("*.yaml")):
        rel = _rel(path, root)
        try:
            service = _load_service(path, rel, stack, stacks, defaults, _service_context(spec), root)
        except SpecError as err:
            problems.extend(err.problems)
            continue
        if service.name in declared:
            problems.append(Problem(rel, "name", f"duplicate service {service.name!r}, already declared in {declared[service.name][1]}; service names must be unique"))
            continue
        declared[service.name] = (service, rel)
    active = {name for name, (svc, _) in declared.items() if svc.enabled}
    for name, (service, rel) in declared.items():
        if not service.enabled:
            continue
        for i, dep in enumerate(service.depends_on):
            if dep not in declared:
                problems.append(Problem(rel, f"dependsOn[{i}]", f"unknown service {dep!r}; declared services: {', '.join(sorted(declared))}"))
            elif dep not in active:
                problems.append(Problem(rel, f"dependsOn[{i}]", f"service {dep!r} is disabled in stack {stack!r}; enable it or drop the dependency"))
    if problems:
        raise SpecError(problems)
    return tuple(svc for svc, _ in declared.values() if svc.enabled)


def _service_context(spec: StackSpec) -> dict[str, Any]:
    """What a service's rules depend on in its stack."""
    return {
        "environment": spec.environment,
        "max_rollback_seconds": spec.policy.max_rollback_seconds,
        "addons": sorted(name for name, addon in spec.addons.items() if addon.enabled),
        "slos": spec.service_defaults.slos.model_dump(by_alias=True),
    }


def _load_service(path: Path, rel: str, stack: str, stacks: set[str], defaults: dict, context: dict, root: Path) -> Service:
    raw = read_yaml(path, root)
    envs = raw.get("envs", {})
    if not isinstance(envs, dict):
        raise SpecError([Problem(rel, "envs", f"expected a mapping of stack name to overrides, got {type(envs).__name__}")])
    for name, overlay in envs.items():
        if name not in stacks:
            raise SpecError([Problem(rel, f"envs.{name}", f"unknown stack {name!r}; declared stacks: {', '.join(sorted(stacks))}")])
        if not isinstance(overlay, dict):
            raise SpecError([Problem(rel, f"envs.{name}", f"expected a mapping of overrides, got {type(overlay).__name__}")])
        if "envs" in overlay or "name" in overlay:
            key = "envs" if "envs" in overlay else "name"
            raise SpecError([Problem(rel, f"envs.{name}.{key}", "cannot be overridden per stack")])
    overlay = envs.get(stack, {})
    merged = deep_merge(deep_merge(defaults, raw), overlay)
    return validate(Service, merged, rel, context=context, overlay=(stack, overlay))


def _problems(model: type[BaseModel], err: ValidationError, rel: str, overlay: Optional[tuple[str, dict]], prefix: tuple = ()) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        if overlay and loc and _has_path(overlay[1], loc):
            shown = ("envs", overlay[0], *loc)
        else:
            shown = (*prefix, *loc)
        problems.append(Problem(rel, _dotted(shown), _message(model, e)))
    return problems


def _message(model: type[BaseModel], e: dict) -> str:
    kind, loc = e["type"], tuple(e["loc"])
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return f"unknown key {loc[-1]!r}; allowed keys: {', '.join(allowed)}" if allowed else f"unknown key {loc[-1]!r}"
    if kind == "missing":
        return "required key is missing"
    msg = e["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in ("value_error", "assertion_error"):
        return msg
    return f"{msg} (got {e['input']!r})"


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Walk the model's annotations along loc to the nested model whose keys are allowed there."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    current = _step(current, None)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted((f.alias or n) for n, f in current.model_fields.items())
    return []


def _step(annotation: Any, part: Any) -> Any:
    """The annotation found at `part` inside `annotation` (part None: unwrap Optional only)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, UnionType):
        inner = [a for a in args if a is not type(None)]
        return _step(inner[0], part) if len(inner) == 1 else None
    if part is None:
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = {(f.alias or n): f for n, f in annotation.model_fields.items()}
        return fields[part].annotation if part in fields else None
    if origin in (list, tuple) and isinstance(part, int):
        return args[0]
    if origin is dict:
        return args[1]
    return None


def _has_path(data: Any, loc: tuple) -> bool:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return False
    return True


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)
