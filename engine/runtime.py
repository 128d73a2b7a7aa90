"""The embedded engine: runs `__main__.py` exactly as `pulumi up` would, on Pulumi's mock runtime.

It is not a preview (dry run): no output is unknown, so every `apply` runs. A recording monitor
keeps what the program registers, with secrets masked at the moment they are recorded, so no
plaintext secret ever reaches the records, the rendered files or the logs.
"""

from __future__ import annotations

import contextvars
import json
import runpy
import sys
from pathlib import Path
from typing import Any, Optional

from google.protobuf import json_format

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.spec import SpecError
from components.spec.loader import read_yaml

from .mocks import PlatformMocks
from .recording import Recording, Resource

SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET = "[secret]"
# The organization offline stacks belong to (StackReference names are <organization>/<project>/<stack>).
ORGANIZATION = "organization"

# For each resource the SDK walks the whole Python stack (source lines included) so that the real
# engine can point its messages at the line that declared it; it is a tenth of a run. The recording
# never reads it (RecordingMonitor), so the embedded engine hands the SDK an empty trace, as the SDK
# itself sends when it cannot find the declaring frame. tests/test_engine.py keeps this true.
sdk_resource._get_stack_trace = pulumi.runtime.proto.source_pb2.StackTrace


class ProgramError(Exception):
    """The program stopped with a user-facing error (pulumi.RunError, a duplicate URN).

    `registered` holds what had been registered before it stopped, so callers (and tests) can
    check that bad input was refused before anything was created."""

    def __init__(self, message: str, registered: Optional[list[Resource]] = None):
        super().__init__(message)
        self.registered = registered or []


def mask(value: Any) -> Any:
    """Turn a serialized property value into plain JSON with secrets replaced by "[secret]".
    A secret map keeps its keys (a Secret's `stringData: {password: "[secret]"}`), so rendered
    objects keep their shape and validate, and a diff shows which key changed, never its value."""
    if isinstance(value, dict):
        sig = value.get(SIG)
        if sig == SECRET_SIG:
            inner = value.get("value")
            if isinstance(inner, dict) and inner.get(SIG) is None:
                return {str(k): SECRET for k in inner}
            return SECRET
        if sig == RESOURCE_SIG:
            return {"$resource": value.get("urn")}
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if value == UNKNOWN:
        return "[unknown]"
    # protobuf Struct carries every number as a double; whole numbers were integers in the program.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi_mocks.Mocks):
        super().__init__(mocks)
        self.records: dict[str, Resource] = {}
        self.duplicates: list[str] = []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # As the real engine does: a child's type is its parent's whole qualified type chain plus
        # its own, with the root stack left out.
        if parent:
            chain = parent.split("::")[2]
            if chain != "pulumi:pulumi:Stack":
                type_ = f"{chain}${type_}"
        return "urn:pulumi:" + "::".join([settings.get_stack(), settings.get_project(), type_, name])

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type != "pulumi:pulumi:Stack":
            if urn in self.records:
                # The real engine refuses a second registration of one URN; so do we, once the
                # program has finished, so that the error is reported cleanly rather than from a thread.
                self.duplicates.append(urn)
                return super().RegisterResource(request)
            self.records[urn] = Resource(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                provider=request.provider or None,
                custom=bool(request.custom),
                remote=bool(request.remote),
                protect=bool(request.protect) if request.HasField("protect") else False,
                dependencies=sorted(set(request.dependencies)),
                inputs=mask(json_format.MessageToDict(request.object)),
                aliases=sorted(self.alias_urn(request, alias) for alias in request.aliases),
            )
        return super().RegisterResource(request)

    def alias_urn(self, request, alias) -> str:
        """An alias as the engine resolves it: a URN, or a spec whose blanks are the resource's own name, type and parent."""
        if alias.urn:
            return alias.urn
        spec = alias.spec
        parent = "" if spec.noParent else (spec.parentUrn or request.parent)
        return self.make_urn(parent, spec.type or request.type, spec.name or request.name)


def stack_config(stack: str, root: Path, project_dir: Optional[Path] = None) -> tuple[dict[str, str], list[str]]:
    """Config from Pulumi.<stack>.yaml. Encrypted values cannot be decrypted offline, so they
    become stand-in values that the engine marks secret, exactly as the CLI would. Secrets that
    Pulumi.yaml declares but the stack file does not set (each operator sets them with
    `pulumi config set --secret`) get stand-ins too."""
    # Read like the declarations: stack configuration comes in pull requests too.
    project_dir = project_dir or root
    path = project_dir / f"Pulumi.{stack}.yaml"
    data = read_yaml(path, root) if path.is_file() else {}
    project = read_yaml(project_dir / "Pulumi.yaml", root) if (project_dir / "Pulumi.yaml").is_file() else {}
    name = (project or {}).get("name", "platform")
    declared = {k: {"secure": "declared"} for k, v in ((project or {}).get("config") or {}).items() if isinstance(v, dict) and v.get("secret")}
    config, secret_keys = {}, []
    for key, value in {**declared, **((data or {}).get("config") or {})}.items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(value, dict) and "secure" in value:
            config[full] = f"offline-secret-{key.split(':')[-1]}"
            secret_keys.append(full)
        else:
            config[full] = value if isinstance(value, str) else json.dumps(value)
    return config, secret_keys


def rejected(err: Exception) -> int:
    """Print a rejected stack's message (no stack trace: it is the user's to fix) and return exit code 2."""
    print(f"invalid stack declarations:\n{err}" if isinstance(err, SpecError) else str(err), file=sys.stderr)
    return 2


def run_program(
    stack: str,
    root: Path,
    program: Path,
    project: str = "platform",
    project_dir: Optional[Path] = None,
    served: Optional[dict[str, dict[str, Any]]] = None,
    config: Optional[dict[str, str]] = None,
) -> Recording:
    """Run one Pulumi program as `project`/`stack` and return what it registered and exported.
    `served` are the outputs of the stacks it may reference (by StackReference name); `config` is
    added to the stack's own. Each run gets a fresh context, so runs in one process (tests) never
    see each other's state."""
    return contextvars.Context().run(_run, stack, root, program, project, project_dir or root, served or {}, config or {})


def _run(stack: str, root: Path, program: Path, project: str, project_dir: Path, served: dict, extra: dict) -> Recording:
    config, secret_keys = stack_config(stack, root, project_dir)
    config.update(extra)
    region = config.get("aws:region", "eu-west-1")
    monitor = RecordingMonitor(PlatformMocks(region, served))
    set_all_config(config, secret_keys)
    pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor, organization=ORGANIZATION)
    sys.path.insert(0, str(root))
    try:

        def main() -> None:
            runpy.run_path(str(program), run_name="__main__")

        _sync_await(run_pulumi_func(main))
        outputs = _resolve_outputs()
        if monitor.duplicates:
            raise ProgramError(
                "\n".join(f"duplicate resource URN {urn}: two resources share this type and name under one parent" for urn in monitor.duplicates)
            )
    except (pulumi.RunError, ProgramError) as err:
        raise ProgramError(str(err), list(monitor.records.values())) from None
    except Exception as err:  # noqa: BLE001 (any failure while rendering is reported as one line, exit 2)
        raise ProgramError(rendering_error(err), list(monitor.records.values())) from None
    finally:
        sys.path.remove(str(root))
    # Registration order depends on the event loop; URN order is stable, so files and diffs are too.
    recording = Recording(stack=stack, resources=sorted(monitor.records.values(), key=lambda r: r.urn), outputs=outputs)
    clashes = object_clashes(recording)
    if clashes:
        raise ProgramError("\n".join(clashes), recording.resources)
    return recording


def rendering_error(err: BaseException) -> str:
    """One line for an error raised while the program renders: what failed, never a stack trace."""
    from components.spec.problems import redact

    text = " ".join(str(err).split()) or type(err).__name__
    return redact(f"the program failed while rendering the stack: {type(err).__name__}: {text[:400]}")


def object_clashes(recording: Recording) -> list[str]:
    """Two resources that declare one Kubernetes object (group, kind, namespace, name): the cluster
    would hold one of them, and each `pulumi up` would overwrite the other. Checked on what was
    really rendered, so it holds for names no declaration rule foresaw."""
    seen: dict[tuple[str, str, str, str], str] = {}
    found = []
    for r in recording.kubernetes_objects():
        meta = r.metadata
        key = (
            str(r.inputs.get("apiVersion", "")).split("/")[0] if "/" in str(r.inputs.get("apiVersion", "")) else "",
            r.kind or "",
            meta.get("namespace", ""),
            meta.get("name", ""),
        )
        if key in seen:
            where = f"namespace {key[2]}" if key[2] else "the cluster"
            found.append(f"the {key[1]} {key[3]!r} in {where} is declared twice, by {seen[key]} and {r.name}; rename one of them")
        else:
            seen[key] = r.name
    return found


def _resolve_outputs() -> dict[str, Any]:
    root = settings.get_root_resource()
    resolved = {}
    for name, value in (getattr(root, "outputs", None) or {}).items():
        out = pulumi.Output.from_input(value)
        is_secret = _sync_await(out.is_secret())
        resolved[name] = SECRET if is_secret else _plain(_sync_await(out.future()))
    return resolved


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
