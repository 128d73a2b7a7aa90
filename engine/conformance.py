"""Does a rendered manifest match what the API server will accept?

Core kinds are checked against the Kubernetes OpenAPI schemas bundled by `kubernetes-validate`
(strict: unknown fields are errors) for the cluster's version; custom kinds against the CRDs in
`reference/crds/`, also strictly: where a CRD schema lists properties and does not preserve
unknown fields, an unknown field is an error, since the API server would silently prune it; then
the CRD's CEL rules (engine/cel_rules.py). A kind with no schema is an error, never a skip.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

import jsonschema
from kubernetes_validate import utils as kv
from referencing import Registry, Resource

from . import reference


# Schema keywords whose failure stops the API server from running CEL rules (its "blocking" errors:
# TypeInvalid, Required, NotSupported, TooLong, TooMany).
CEL_BLOCKING = frozenset({"type", "required", "enum", "maxLength", "maxItems", "maxProperties"})


def errors(manifest: dict[str, Any], kubernetes_version: str, masked_as_written: bool = False) -> list[str]:
    """Every reason the API server would reject (or silently alter) this object; empty when valid.
    Masked secrets are left out (their type is unknowable), unless `masked_as_written`: then the
    object is judged exactly as rendered, "[secret]" strings and all."""
    manifest = manifest if masked_as_written else unmasked(manifest)
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return ["not a Kubernetes object: apiVersion and kind are required"]
    group, _, version = api_version.rpartition("/")
    crd = crd_schemas().get((group, version, kind))
    if crd is not None:
        schema_errors = sorted(_crd_validator(group, version, kind).iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
        found = [_describe(e) for e in schema_errors]
        # The API server skips CEL only after errors that make the value untypable (wrong type,
        # missing required field, value outside an enum, over a size limit); others do not block it.
        if not any(e.validator in CEL_BLOCKING for e in schema_errors):
            from . import cel_rules  # here: the CEL interpreter is a fifth of a second to import, and `make diff` never needs it

            found += cel_rules.errors(manifest, crd)
        return found
    if group in crd_groups():
        return [f"{api_version} {kind}: no such kind/version in the reference CRDs of group {group}"]
    else:
        try:
            validator = _core_validator(api_version, kind, kubernetes_version)
        except (kv.SchemaNotFoundError, kv.VersionNotSupportedError):
            return [f"{api_version} {kind}: no schema for this kind in Kubernetes {kubernetes_version} or in the reference CRDs"]
    return [_describe(e) for e in sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))]


def unmasked(value: Any) -> Any:
    """Secret values are recorded as "[secret]"; their type is unknowable, so they are left out."""
    if isinstance(value, dict):
        return {k: unmasked(v) for k, v in value.items() if v != "[secret]"}
    if isinstance(value, list):
        return [unmasked(v) for v in value]
    return value


def _describe(err: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in err.absolute_path) or "(object)"
    return f"{path}: {err.message[:300]}"


@functools.lru_cache(maxsize=None)
def _core_validator(api_version: str, kind: str, kubernetes_version: str) -> jsonschema.protocols.Validator:
    if kv.major_minor(kubernetes_version) > kv.latest_version():
        raise kv.VersionNotSupportedError(version=kubernetes_version)
    version = [v for v in kv.all_versions() if kv.major_minor(v) <= kv.major_minor(kubernetes_version)][-1]
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv.schema_contents(f"{folder}/{kind.lower()}-{api}.json", kubernetes_version)
    except FileNotFoundError:
        raise kv.SchemaNotFoundError(version=kubernetes_version, kind=kind, api_version=api_version) from None
    registry = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(_core_definitions(folder)) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def is_core_kind(api_version: str, kind: str, kubernetes_version: str) -> bool:
    """Whether Kubernetes itself serves this kind (else it needs a CRD)."""
    try:
        _core_validator(api_version, kind, kubernetes_version)
    except (kv.SchemaNotFoundError, kv.VersionNotSupportedError):
        return False
    return True


@functools.lru_cache(maxsize=None)
def _core_definitions(folder: str) -> Any:
    return kv.schema_contents(f"{folder}/_definitions.json", folder)


@functools.lru_cache(maxsize=1)
def crd_schemas() -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, version, kind) -> the CRD's OpenAPI schema as published, from reference/crds/."""
    return {(crd["group"], version, crd["kind"]): schema for crd in reference.crds() for version, schema in crd["versions"].items()}


@functools.lru_cache(maxsize=None)
def _crd_validator(group: str, version: str, kind: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft7Validator(strict(crd_schemas()[(group, version, kind)]))


@functools.lru_cache(maxsize=1)
def crd_groups() -> frozenset[str]:
    return frozenset(group for group, _, _ in crd_schemas())


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Make a structural CRD schema reject what the API server would prune, and accept
    int-or-string, nullable and defaulted fields as the server does."""
    schema = copy.deepcopy(schema)

    def walk(node: Any, top: bool) -> None:
        if not isinstance(node, dict):
            return
        if node.get("x-kubernetes-int-or-string"):
            node.pop("type", None)
            node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if node.get("nullable") and "type" in node:
            node["type"] = [node["type"], "null"]
        props = node.get("properties")
        if isinstance(props, dict):
            if top:
                # apiVersion, kind and metadata are checked by the API server, not the CRD schema
                # (Istio's CRDs declare only spec and status).
                props.setdefault("apiVersion", {"type": "string"})
                props.setdefault("kind", {"type": "string"})
                props.setdefault("metadata", {"type": "object"})
            # The API server fills defaulted fields before it validates, so they are not missing.
            if "required" in node:
                node["required"] = [k for k in node["required"] if "default" not in (props.get(k) or {})]
            if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
                node["additionalProperties"] = False
            # allOf/anyOf/oneOf branches list partial property sets; they are left as they are.
            for child in props.values():
                walk(child, False)
        for key in ("items", "additionalProperties"):
            walk(node.get(key), False)

    walk(schema, True)
    return schema
