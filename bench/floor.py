"""The SDK floor: a bare Pulumi program that registers exactly the resources a recording holds.

Same types, names, parents, providers and inputs, registered through the same SDK classes
(pulumi_aws, pulumi_kubernetes, ...) on the same mocks; none of the platform's logic runs. What
the real program costs on top of this is what `make bench` reports as the ratio.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
from pathlib import Path
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s


@functools.lru_cache(maxsize=None)
def sdk_class(type_: str) -> Optional[type]:
    """The SDK class registered for a type token, e.g. aws:ec2/vpc:Vpc -> pulumi_aws.ec2.Vpc."""
    package, module, name = type_.split(":")
    root = f"pulumi_{package.replace('-', '_')}"
    # API groups map to their first label (storage.k8s.io -> storage, helm.sh -> helm); a kind
    # the SDK has no class for (every CRD) is registered through apiextensions.CustomResource.
    parts = [p.split(".")[0].replace("-", "_") for p in module.split("/") if p != "index"]
    # Kubernetes tokens name the module path (core/v1); the others add a file module (ec2/vpc).
    for path in (parts, parts[:-1]):
        try:
            cls = getattr(importlib.import_module(".".join([root, *path])), name, None)
        except ImportError:
            continue
        if inspect.isclass(cls):
            return cls
    return None


@functools.lru_cache(maxsize=None)
def parameters(cls: type) -> dict[str, str]:
    """camelCase input name (lowercased, no underscores) -> the class's keyword argument."""
    names = inspect.signature(cls._internal_init).parameters if hasattr(cls, "_internal_init") else inspect.signature(cls.__init__).parameters
    return {n.replace("_", "").lower(): n for n in names}


def register(record: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.Resource:
    kind, name, inputs = record["type"], record["name"], record["inputs"]
    if kind.startswith("pulumi:providers:"):
        return pulumi.ProviderResource(kind.split(":")[-1], name, inputs, opts)
    if not record["custom"] and not record["remote"]:
        return pulumi.ComponentResource(kind, name, None, opts)
    cls = sdk_class(kind)
    if cls is None:
        if kind.startswith("kubernetes:"):
            fields = {k: v for k, v in inputs.items() if k not in ("apiVersion", "kind")}
            return k8s.apiextensions.CustomResource(name, api_version=inputs["apiVersion"], kind=inputs["kind"], opts=opts, **fields)
        return pulumi.CustomResource(kind, name, inputs, opts) if record["custom"] else pulumi.ComponentResource(kind, name, inputs, opts, remote=True)
    params = parameters(cls)
    return cls(name, opts=opts, **{params.get(k.lower(), k): v for k, v in inputs.items()})


records = json.loads(Path(os.environ["PLATFORM_FLOOR_RESOURCES"]).read_text())
by_urn: dict[str, pulumi.Resource] = {}
# Parents before children: a URN's type chain is its ancestry.
for record in sorted(records, key=lambda r: r["urn"].split("::")[2].count("$")):
    provider = by_urn.get((record["provider"] or "").rsplit("::", 1)[0])
    opts = pulumi.ResourceOptions(
        parent=by_urn.get(record["parent"] or ""), protect=record["protect"], provider=provider if isinstance(provider, pulumi.ProviderResource) else None
    )
    by_urn[record["urn"]] = register(record, opts)
