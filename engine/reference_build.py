"""`make reference SOURCE=<dir>`: derive reference/ from upstream files.

SOURCE is either the team's reference layout (charts/<chart>-<version>/, crds/*.yaml) or a folder of
`helm pull --untar` charts (<chart>/Chart.yaml ...) beside the CRD files. Which charts to take is
decided by the pins in components/versions.py; which CRD files, by reference/sources.yaml. An
entry SOURCE does not hold is kept when its provenance still matches what is pinned, so bumping
one chart needs only that chart. `--check` compares instead of writing (exit 1 on any difference).

The output is a pure function of the files read: sorted keys, fixed formatting, no timestamps,
so regenerating from the same upstream files reproduces the folder byte for byte.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from components.versions import CHARTS, Chart

from .reference import PROVENANCE, REFERENCE, VALUES, VALUES_SCHEMA, provenance_of, read_json, sha256

ISTIO_DEFAULTS = "_internal_defaults_do_not_set"
# Schema nodes are walked through these keywords; every other key of a node is a keyword itself.
SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
SCHEMA_NODES = ("items", "additionalProperties", "not")


class _HelmLoader(yaml.SafeLoader):
    """YAML as Helm reads it into JSON: a date-like scalar stays a string."""


_HelmLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class SourceError(Exception):
    """SOURCE lacks something a pin or sources.yaml asks for."""


def dumps(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def strip_descriptions(node: Any) -> Any:
    """A structural schema without prose: `description` keywords go, a property named
    `description` stays, as do types, enums, patterns, defaults and x-kubernetes-validations."""
    if isinstance(node, list):
        return [strip_descriptions(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: strip_descriptions(child) for name, child in value.items()}
        elif key in SCHEMA_LISTS or key in SCHEMA_NODES:
            out[key] = strip_descriptions(value)
        else:
            out[key] = value
    return out


def derive_crds(text: str) -> list[dict[str, Any]]:
    crds = []
    for doc in yaml.load_all(text, Loader=_HelmLoader):
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        versions = {v["name"]: strip_descriptions(v["schema"]["openAPIV3Schema"]) for v in spec["versions"] if v.get("served", True) and v.get("schema")}
        crds.append({"group": spec["group"], "kind": spec["names"]["kind"], "plural": spec["names"]["plural"], "scope": spec["scope"], "versions": versions})
    return sorted(crds, key=lambda c: (c["group"], c["kind"]))


def derive_values(text: str) -> dict[str, Any]:
    values = yaml.load(text, Loader=_HelmLoader) or {}
    # Istio's charts keep their defaults under `_internal_defaults_do_not_set` (a Helm workaround)
    # and document that users set those keys at the top level.
    return {**values.pop(ISTIO_DEFAULTS, {}), **values}


def find_chart(source: Path, chart: Chart) -> Path | None:
    for candidate in (source / "charts" / chart.reference_folder, source / chart.reference_folder):
        if (candidate / "values.yaml").is_file():
            return candidate
    for candidate in (source / chart.name, source / "charts" / chart.name):
        meta = candidate / "Chart.yaml"
        if meta.is_file() and str((yaml.safe_load(meta.read_text()) or {}).get("version")) == chart.version:
            return candidate
    return None


def find_crd(source: Path, name: str) -> Path | None:
    for candidate in (source / "crds" / name, source / name):
        if candidate.is_file():
            return candidate
    return None


def chart_files(folder: Path, chart: Chart, names: list[str]) -> dict[str, str]:
    """relative path -> text, for the chart entry derived from an upstream chart folder."""
    values = (folder / "values.yaml").read_bytes()
    read = {"values.yaml": sha256(values)}
    files = {VALUES: dumps(derive_values(values.decode("utf-8")))}
    schema = folder / "values.schema.json"
    if schema.is_file():
        read["values.schema.json"] = sha256(schema.read_bytes())
        files[VALUES_SCHEMA] = dumps(read_json(schema))
    if (folder / "Chart.yaml").is_file():
        read["Chart.yaml"] = sha256((folder / "Chart.yaml").read_bytes())
    provenance = {
        "kind": "chart",
        "repository": chart.repository,
        "charts": names,
        "version": chart.version,
        "upstream_sha256": read,
        "derived_sha256": {n: sha256(t.encode()) for n, t in files.items()},
    }
    files[PROVENANCE] = dumps(provenance)
    return {f"charts/{chart.reference_folder}/{n}": t for n, t in files.items()}


def crd_files(path: Path, name: str, origin: dict[str, str]) -> dict[str, str]:
    raw = path.read_bytes()
    stem = name.removesuffix(".yaml")
    body = dumps({"crds": derive_crds(raw.decode("utf-8"))})
    provenance = {"kind": "crd", **origin, "file": name, "upstream_sha256": sha256(raw), "derived_sha256": sha256(body.encode())}
    return {f"crds/{stem}.json": body, f"crds/{stem}.provenance.json": dumps(provenance)}


def kept(current: Path, entry: str, expected: dict[str, Any]) -> dict[str, str]:
    """An existing entry SOURCE does not hold, kept only if its provenance matches the pin."""
    path = current / entry
    prov = provenance_of(path)
    if not prov.is_file() or any(read_json(prov).get(k) != v for k, v in expected.items()):
        raise SourceError(f"{entry}: not in SOURCE and the committed entry does not match {expected}")
    files = [p for p in path.iterdir()] if path.is_dir() else [path, prov]
    return {str(p.relative_to(current)): p.read_text(encoding="utf-8") for p in files}


def build(source: Path, current: Path = REFERENCE) -> dict[str, str]:
    """Every generated file of reference/ (relative path -> text), from SOURCE and the pins."""
    sources = yaml.safe_load((current / "sources.yaml").read_text())
    out: dict[str, str] = {"sources.yaml": (current / "sources.yaml").read_text()}
    # Charts filed under one reference folder (karpenter and karpenter-crd) share one entry.
    by_folder: dict[str, list[Chart]] = {}
    for chart in CHARTS.values():
        by_folder.setdefault(chart.reference_folder, []).append(chart)
    for name, charts in sorted(by_folder.items()):
        names = sorted(c.name for c in charts)
        # A shared folder holds the values of the chart it is named after (karpenter, not karpenter-crd).
        chart = next((c for c in charts if not c.reference), charts[0])
        folder = find_chart(source, chart)
        if folder is not None:
            out.update(chart_files(folder, chart, names))
        else:
            out.update(kept(current, f"charts/{name}", {"charts": names, "version": chart.version, "repository": chart.repository}))
    for name, origin in sorted(sources["crds"].items()):
        path = find_crd(source, name)
        if path is not None:
            out.update(crd_files(path, name, origin))
        else:
            out.update(kept(current, f"crds/{name.removesuffix('.yaml')}.json", origin))
    return out


def differences(files: dict[str, str], current: Path) -> list[str]:
    on_disk = {str(p.relative_to(current)) for p in current.rglob("*") if p.is_file()}
    diffs = [f"missing or different: {n}" for n, t in sorted(files.items()) if not (current / n).is_file() or (current / n).read_text(encoding="utf-8") != t]
    return diffs + [f"not generated (stale): {n}" for n in sorted(on_disk - set(files) - {"README.md"})]


def write(files: dict[str, str], current: Path) -> None:
    """Replace the generated part of reference/ whole, so a removed pin leaves no stale entry."""
    with tempfile.TemporaryDirectory(dir=current.parent) as tmp:
        staged = Path(tmp) / "reference"
        for name, text in files.items():
            (staged / name).parent.mkdir(parents=True, exist_ok=True)
            (staged / name).write_text(text, encoding="utf-8")
        if (current / "README.md").is_file():
            shutil.copy2(current / "README.md", staged / "README.md")
        if current.exists():
            current.rename(Path(tmp) / "old")
        staged.rename(current)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make reference", description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder of upstream charts and CRD files")
    parser.add_argument("--check", action="store_true", help="compare with reference/ instead of writing it")
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        print(f"make reference: SOURCE {args.source} is not a folder", file=sys.stderr)
        return 2
    try:
        files = build(args.source.resolve())
    except (SourceError, OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as err:
        print(f"make reference: {err}", file=sys.stderr)
        return 2
    if args.check:
        diffs = differences(files, REFERENCE)
        for line in diffs:
            print(line)
        print(f"reference/: {'up to date' if not diffs else f'{len(diffs)} difference(s)'} against {args.source}")
        return 1 if diffs else 0
    write(files, REFERENCE)
    print(f"wrote reference/ ({len(files)} files) from {args.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
