"""Which stacks an environment has, and running them offline as the real engine would.

An environment `<env>` (stacks/<env>.yaml) has one platform stack, `<env>` of the project at the
top (Pulumi.yaml, __main__.py), and one team stack `<team>-<env>` of the project in teams/ for
every team with a room in it (a budget in stacks/<env>.yaml), empty while the team has no service there. A team stack reads the platform through a StackReference; offline
the engine serves it the platform stack's recorded outputs, after checking them against the
contract (components/stack_contract.py): a missing or renamed output is refused by name (exit 2).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from pathlib import Path
from typing import Any, Optional

from components import stack_contract
from components.spec import SpecError, load

from . import platform_state
from .chart_values import override_problems
from .project import PROJECT_ROOT
from .recording import Recording
from .runtime import ORGANIZATION, ProgramError, object_clashes, run_program, stack_config

TEAMS_DIR = "teams"


def environments(root: Path) -> list[str]:
    from components.spec.loader import known_stacks

    return known_stacks(root)


def team_stack(stack: str, root: Path) -> Optional[tuple[str, str]]:
    """(team, environment) when `stack` names a team stack `<team>-<env>`: a team with a room in a
    declared environment, services or not (docs/platform.md#a-room-for-every-declared-team)."""
    from components.team_stack import split_stack_name

    found = split_stack_name(stack, environments(root))
    if found is None:
        return None
    try:
        rooms = load(found[1], root).spec.rooms()
    except SpecError:
        # Declarations that do not load: the run that follows reports why, by file and key.
        return found
    return found if found[0] in rooms else None


def refuse_unknown_team(stack: str, root: Path) -> None:
    """SpecError when `stack` reads `<team>-<env>` for a team without a room in that environment
    (before the name is taken for an environment that does not exist)."""
    from components.spec import Problem
    from components.team_stack import split_stack_name, unknown_team

    found = split_stack_name(stack, environments(root))
    if found is not None:
        team, env = found
        raise SpecError([Problem(f"stacks/{env}.yaml", "teams", unknown_team(stack, team, env, teams_in(env, root)))])


def teams_in(env: str, root: Path) -> list[str]:
    """The teams with a room in the environment, each with its team stack there (empty while the
    team has no service in it: the stack exists from onboarding, and survives its last service)."""
    return list(load(env, root).spec.rooms())


@dataclasses.dataclass(eq=False)
class State:
    """Where the platform stacks' recorded states are kept (engine/platform_state.py), and whether
    a run may be served one (`make diff`) or only records its own (`make preview` runs the program).
    What a run records is kept only once the whole run has succeeded (`keep`): a refused stack
    writes nothing, not even this."""

    store: Path
    serve: bool = True
    ran: list[tuple[str, str, Recording]] = dataclasses.field(default_factory=list)

    def keep(self) -> None:
        for env, digest, recording in self.ran:
            try:
                platform_state.record(self.store, env, digest, recording)
            except OSError as err:  # a cache: a read-only checkout or a full disk only costs the next run its speed
                print(f"note: the platform stack's state was not kept in {self.store}: {err}", file=sys.stderr)
        self.ran.clear()


def run_platform(env: str, root: Path, single_stack: bool = False, state: Optional[State] = None) -> Recording:
    """The platform stack of `env`; with `single_stack`, the layout before the split (services included).
    With `state`, its recorded state when its inputs are those it was recorded from, and recorded after a run."""
    config = {"platform:singleStack": "true"} if single_stack else None
    # The single-stack layout (by argument or in Pulumi.<env>.yaml) is given whole services: no key covers it.
    keyed = state is not None and not single_stack and stack_config(env, root)[0].get("platform:singleStack", "false").lower() != "true"
    digest = _state_key(env, root) if keyed else None
    if state is not None and digest and state.serve:
        found = platform_state.served(state.store, env, digest)
        if found is not None:
            return found
    recording = run_program(env, root, root / "__main__.py", config=config)
    # Recorded under its key only if nothing it is made from changed while it ran.
    if state is not None and digest and _state_key(env, root) == digest:
        state.ran.append((env, digest, recording))
    return recording


def _state_key(env: str, root: Path) -> Optional[str]:
    try:
        return platform_state.key(env, root, load(env, root))
    except SpecError:
        return None  # the run reports the declarations' problems


def run_team(team: str, env: str, root: Path, platform: Recording) -> Recording:
    """The team stack `<team>-<env>`, served `platform`'s recorded outputs."""
    from components.spec.pulumi_files import aws_region
    from components.team_stack import expected_addresses

    # The same checks the team program makes against the live platform stack, made before it runs.
    _, _, expected = expected_addresses(load(env, root), aws_region(env, root) or "eu-west-1")
    problems = stack_contract.problems(platform.outputs, team, expected["mesh"], expected["telemetry"])
    if problems:
        raise ProgramError("\n".join(f"stack {team}-{env}: {p}" for p in problems))
    served = {stack_contract.platform_stack_name(ORGANIZATION, env): platform.outputs}
    recording = run_program(
        f"{team}-{env}", root, root / TEAMS_DIR / "__main__.py", project=stack_contract.TEAM_PROJECT, project_dir=root / TEAMS_DIR, served=served
    )
    # The team's objects land in the room the platform stack built: one object declared by both
    # stacks would be overwritten by whichever deploys last, so a clash across them is refused too.
    clashes = object_clashes(Recording(stack=f"{team}-{env}", resources=[*platform.resources, *recording.resources], outputs={}))
    if clashes:
        raise ProgramError("\n".join(f"stack {team}-{env}: {c}" for c in clashes), recording.resources)
    return recording


def run_environment(env: str, root: Path, teams: Optional[list[str]] = None, state: Optional[State] = None) -> Recording:
    """The platform stack and the team stacks of `env` (all, or those of `teams`), as one recording."""
    platform = run_platform(env, root, state=state)
    parts = {env: platform}
    for team in teams_in(env, root) if teams is None else teams:
        parts[f"{team}-{env}"] = run_team(team, env, root, platform)
    combined = combine(env, parts)
    # Two team stacks may each declare a cluster-wide object; neither may own what the other does.
    clashes = object_clashes(combined)
    if clashes:
        raise ProgramError("\n".join(clashes), combined.resources)
    return combined


def run_stack(stack: str, root: Path, state: Optional[State] = None) -> Recording:
    """`stack` as the tools name it: an environment (all its stacks, combined) or one team stack."""
    found = team_stack(stack, root)
    if found is None:
        refuse_unknown_team(stack, root)
        return run_environment(stack, root, state=state)
    team, env = found
    return run_team(team, env, root, platform_of(env, root, state))


@functools.lru_cache(maxsize=8)
def _platform_cached(env: str, root: Path, stamp: tuple) -> Recording:
    return run_platform(env, root)


def platform_of(env: str, root: Path, state: Optional[State] = None) -> Recording:
    """The platform stack's recording, reused while no platform input changed (a team stack's
    preview should not pay for the platform's run more than once per process); with `state`, served
    or recorded there instead (engine/platform_state.py)."""
    if state is not None:
        return run_platform(env, root, state=state)
    return _platform_cached(env, root, _platform_inputs(root))


def _platform_inputs(root: Path) -> tuple:
    files = [p for p in Path(root).glob("stacks/*.yaml")] + [p for p in Path(root).glob("Pulumi*.yaml")] + list(Path(root).glob("stacks/services/*/*.yaml"))
    return tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files))


def combine(env: str, parts: dict[str, Recording]) -> Recording:
    """One queryable recording of several stacks: every resource once, the platform's outputs, and
    the team stacks' `canaries` merged. `stacks` keeps each stack's own recording."""
    resources = sorted((r for rec in parts.values() for r in rec), key=lambda r: r.urn)
    outputs: dict[str, Any] = dict(parts[env].outputs) if env in parts else {}
    canaries: dict[str, Any] = dict(outputs.get("canaries") or {})
    for name, rec in parts.items():
        if name != env:
            canaries.update(rec.outputs.get("canaries") or {})
    outputs["canaries"] = dict(sorted(canaries.items()))
    return Recording(stack=env, resources=resources, outputs=outputs, stacks=dict(parts))


def load_and_run(stack: str, root: Path, teams: Optional[list[str]] = None, state: Optional[State] = None) -> tuple[Any, Recording]:
    """The stack's declarations and one run of its program, for the offline tools.

    Raises SpecError or ProgramError when the input is rejected; `rejected()` reports either.
    `teams` limits an environment's run to its platform stack and those teams' stacks; `state`
    is where the platform stack's recorded state is kept (State)."""
    found = team_stack(stack, root)
    if found is None:
        refuse_unknown_team(stack, root)
    decl = load(found[1] if found else stack, root)
    # Helm ignores a value its chart does not have: an override typo is a declaration error here.
    problems = override_problems(decl)
    if problems:
        raise SpecError(problems)
    root = Path(root).resolve()
    if found:
        # A team stack's preview describes the team's services only.
        team, env = found
        decl = dataclasses.replace(decl, services=tuple(s for s in decl.services if s.team == team))
        recording = run_team(team, env, root, platform_of(env, root, state))
    else:
        if teams is not None:
            decl = dataclasses.replace(decl, services=tuple(s for s in decl.services if s.team in teams))
            # Each involved team's stack, even one left without services (its stack deletes them).
            teams = [t for t in decl.spec.rooms() if t in teams]
        recording = run_environment(stack, root, teams, state)
    if state is not None:
        state.keep()
    return decl, recording


def run(stack: str, root: Optional[Path] = None, program: Optional[Path] = None) -> Recording:
    """What `stack` registers and exports (engine/stacks.py): an environment (`dev`) is its platform
    stack and every team stack of it, combined; `<team>-<env>` is one team stack. With `program`,
    that one program runs as the stack (the benchmark's floor)."""
    root = Path(root or PROJECT_ROOT).resolve()
    if program is not None:
        return run_program(stack, root, Path(program))
    return run_stack(stack, root)
