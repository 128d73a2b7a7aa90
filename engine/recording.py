"""What one run of the program registered: resource records and stack outputs, and ways to query them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Iterator, Optional

# What is not an object in the cluster (providers, charts, releases, YAML bundles) is the policy
# pack's definition, so the engine and the rules agree on what a Kubernetes object is.
from policy.rules.base import NOT_OBJECTS


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    parent: Optional[str]
    provider: Optional[str]
    custom: bool
    remote: bool
    protect: bool
    dependencies: list[str]
    inputs: dict[str, Any]
    # The URNs the resource was known by before (ResourceOptions.aliases): a move, not a replacement.
    aliases: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        # The record's own values, not copies (dataclasses.asdict deep-copies every input, and a
        # stack of 500 services has thousands): callers serialise it and must not mutate it.
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def provider_urn(self) -> Optional[str]:
        """The provider reference is `urn::id`; the URN part names the provider resource."""
        return self.provider.rsplit("::", 1)[0] if self.provider else None

    @property
    def is_kubernetes_object(self) -> bool:
        return self.custom and self.type.startswith("kubernetes:") and not self.type.startswith(NOT_OBJECTS)

    @property
    def kind(self) -> Optional[str]:
        return self.inputs.get("kind")

    @property
    def metadata(self) -> dict[str, Any]:
        return self.inputs.get("metadata") or {}


@dataclass
class Recording:
    stack: str
    resources: list[Resource]
    outputs: dict[str, Any] = field(default_factory=dict)
    # For an environment run (engine/stacks.py): each stack's own recording, by stack name.
    stacks: dict[str, "Recording"] = field(default_factory=dict, repr=False, compare=False)
    # Served from the stack's recorded state (engine/platform_state.py), not run this time.
    served: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        self._by_urn = {r.urn: r for r in self.resources}

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    def get(self, urn: str) -> Resource:
        return self._by_urn[urn]

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str, type_: Optional[str] = None) -> Resource:
        found = [r for r in self.resources if r.name == name and (type_ is None or r.type == type_)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r}" + (f" of type {type_}" if type_ else ""))
        return found[0]

    def children(self, parent: Resource, recursive: bool = False) -> list[Resource]:
        direct = [r for r in self.resources if r.parent == parent.urn]
        if not recursive:
            return direct
        return direct + [d for c in direct for d in self.children(c, recursive=True)]

    def component_of(self, resource: Resource) -> Optional[Resource]:
        """The nearest enclosing component (non-custom parent), if any."""
        parent = self._by_urn.get(resource.parent or "")
        while parent is not None and parent.custom:
            parent = self._by_urn.get(parent.parent or "")
        return parent

    def kubernetes_objects(self) -> list[Resource]:
        return [r for r in self.resources if r.is_kubernetes_object]

    def manifest(self, kind: str, name: str, namespace: Optional[str] = None) -> dict[str, Any]:
        for r in self.kubernetes_objects():
            meta = r.metadata
            if r.kind == kind and meta.get("name") == name and (namespace is None or meta.get("namespace") == namespace):
                return r.inputs
        raise KeyError(f"no {kind} {namespace + '/' if namespace else ''}{name}")
