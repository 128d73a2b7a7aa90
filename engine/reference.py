"""The upstream facts the project checks against, committed under reference/.

`make reference SOURCE=<dir>` (engine/reference_build.py) derives this folder from upstream files;
everything else reads it only through this module, so a clone checks itself with nothing beside it.

    reference/crds/<file>.json        served versions' OpenAPI schemas of the CRDs in one upstream file
    reference/charts/<chart>-<ver>/   values.json (the chart's defaults), values.schema.json if shipped
    .../provenance.json               upstream repository, path, ref and the sha256 of each file read
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from components.versions import Chart

from .project import PROJECT_ROOT

REFERENCE = PROJECT_ROOT / "reference"
PROVENANCE = "provenance.json"
VALUES = "values.json"
VALUES_SCHEMA = "values.schema.json"


class MissingReference(LookupError):
    """A pinned chart or a CRD with no entry: run `make reference SOURCE=<dir>` after a bump."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def chart_dir(chart: Chart) -> Path:
    return REFERENCE / "charts" / chart.reference_folder


@functools.lru_cache(maxsize=None)
def chart_values(chart: Chart) -> dict[str, Any]:
    """The chart's default values, as Helm sees them before any override."""
    path = chart_dir(chart) / VALUES
    if not path.is_file():
        raise MissingReference(f"no reference for chart {chart.name} {chart.version} ({path.relative_to(PROJECT_ROOT)}); run `make reference SOURCE=<dir>`")
    return read_json(path)


@functools.lru_cache(maxsize=None)
def chart_schema(chart: Chart) -> dict[str, Any] | None:
    """The chart's own values.schema.json, which Helm enforces on install; None when it ships none."""
    path = chart_dir(chart) / VALUES_SCHEMA
    return read_json(path) if path.is_file() else None


def crd_entries() -> list[Path]:
    return sorted((REFERENCE / "crds").glob("*.json"))


@functools.lru_cache(maxsize=1)
def crds() -> tuple[dict[str, Any], ...]:
    """Every CRD of every entry: group, kind, plural, scope and {version: openAPIV3Schema}."""
    found: list[dict[str, Any]] = []
    for path in crd_entries():
        if path.name.endswith(".provenance.json"):
            continue
        found.extend(read_json(path)["crds"])
    return tuple(found)


def provenance_of(entry: Path) -> Path:
    """The provenance file beside an entry: a chart folder's provenance.json, or <crd file>.provenance.json."""
    return entry / PROVENANCE if entry.is_dir() else entry.with_suffix(".provenance.json")
