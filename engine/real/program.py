"""A Pulumi YAML program that declares a recorded stack's Kubernetes objects with the real provider.

The Go module proxy serves no version of Pulumi's Python language host, so the real CLI cannot run
`__main__.py` here; it runs this program instead, through the YAML language host it can build. The
program is derived from build/<stack>/resources.json, the exact resources the Python program
registers, so what the real engine creates, diffs and deletes is the program's own objects:

- each built-in object as its typed resource (`kubernetes:apps/v1:Deployment`), whose inputs the
  YAML host checks against the provider's schema, with the program's own `dependsOn` edges;
- each custom resource through a one-object `kubernetes:yaml/v2:ConfigGroup` (YAML programs can
  name only schema types, and a CRD's kinds are not in the provider's schema);
- values the recording masks (`[secret]`) as secret config, set by up_local.py with random values,
  so they are encrypted by the passphrase secrets provider like the real program's secrets;
- `pulumi.com/skipAwait`: the local cluster has no scheduler and no nodes, so a Deployment never
  becomes Ready and a Service never gets endpoints; awaiting them would only time out.

Objects from Helm charts and AWS resources are not in the program: there is no chart repository and
no cloud here. The CRDs those charts would install come from reference/ (cluster.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from engine.recording import Resource

from .kube import BUILT_IN_GROUPS

PROVIDER = "local-kubernetes"
MASKED = "[secret]"


def load_recording(stack_dir: Path) -> list[Resource]:
    return [Resource(**r) for r in json.loads((stack_dir / "resources.json").read_text())]


def is_built_in(obj: dict[str, Any]) -> bool:
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    return group in BUILT_IN_GROUPS


def _escape(value: Any, secrets: dict[str, str], where: str) -> Any:
    """Pulumi YAML reads `${…}` as interpolation and `$$` as one `$`: every literal `$` is doubled. Masked values become config."""
    if isinstance(value, dict):
        return {k: _escape(v, secrets, f"{where}-{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v, secrets, f"{where}-{i}") for i, v in enumerate(value)]
    if value == MASKED:
        key = re.sub(r"[^A-Za-z0-9]+", "-", where).strip("-").lower()
        secrets[key] = where
        return f"${{{key}}}"
    if isinstance(value, str):
        return value.replace("$", "$$")
    return value


def _skip_await(obj: dict[str, Any]) -> dict[str, Any]:
    meta = dict(obj.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), "pulumi.com/skipAwait": "true"}
    return {**obj, "metadata": meta}


def build(resources: list[Resource], kubeconfig: Path, images: dict[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """(the Pulumi.yaml document, its secret config keys). `images` replaces container images by
    their current value (the cycle's image bump)."""
    objects = [r for r in resources if r.is_kubernetes_object]
    names: dict[str, str] = {}
    for r in objects:
        name = r.name if r.name not in names.values() else f"{r.name}-{str(r.kind).lower()}"
        names[r.urn] = name
    # An environment's recording holds several stacks: a team stack's objects do not record a
    # dependency on their namespace, which its platform stack creates first. Here they are one
    # program, so each namespaced object waits for its namespace as that order would.
    namespaces = {r.metadata.get("name"): r.urn for r in objects if r.kind == "Namespace"}
    secrets: dict[str, str] = {}
    declared: dict[str, Any] = {PROVIDER: {"type": "pulumi:providers:kubernetes", "properties": {"kubeconfig": str(kubeconfig)}}}
    for r in objects:
        obj = _skip_await(_bump(r.inputs, images or {}))
        name = names[r.urn]
        options: dict[str, Any] = {"provider": f"${{{PROVIDER}}}"}
        needed = [*r.dependencies, *([namespaces[ns]] if (ns := r.metadata.get("namespace")) in namespaces else [])]
        depends = list(dict.fromkeys(f"${{{names[d]}}}" for d in needed if d in names and d != r.urn))
        if depends:
            options["dependsOn"] = depends
        if is_built_in(obj):
            props = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
            declared[name] = {"type": r.type, "properties": _escape(props, secrets, name), "options": options}
        else:
            declared[name] = {
                "type": "kubernetes:yaml/v2:ConfigGroup",
                "properties": {"objs": [_escape(obj, secrets, name)], "skipAwait": True},
                "options": options,
            }
    program = {
        "name": "platform-local",
        "runtime": "yaml",
        "description": "The recorded stack's Kubernetes objects (engine/real/program.py); generated, not edited.",
        "config": {key: {"type": "string", "secret": True} for key in sorted(secrets)},
        "resources": declared,
    }
    return program, sorted(secrets)


def _bump(obj: dict[str, Any], images: dict[str, str]) -> dict[str, Any]:
    if not images:
        return obj
    text = json.dumps(obj)
    for old, new in images.items():
        text = text.replace(json.dumps(old), json.dumps(new))
    return json.loads(text)


def first_image(resources: list[Resource]) -> str:
    """The image of the first Deployment's first container: what the cycle bumps."""
    for r in resources:
        if r.is_kubernetes_object and r.kind == "Deployment":
            return str(r.inputs["spec"]["template"]["spec"]["containers"][0]["image"])
    raise LookupError("the stack declares no Deployment to bump")


def bumped(image: str) -> str:
    """The same repository at another tag (a digest reference gets a tag instead)."""
    repo = image.split("@", 1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo, tag = repo.rsplit(":", 1)
        return f"{repo}:{tag}-bump"
    return f"{repo}:bump"


def write(folder: Path, program: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "Pulumi.yaml"
    path.write_text(yaml.safe_dump(program, sort_keys=False, width=1 << 20))
    return path
