"""Turn a recording into the files `make preview` writes under build/<stack>/."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterator

import yaml

from components.spec import Declarations
from components.spec.stack import format_cpu, format_memory
from policy.rules.base import HELM_TYPES

from .recording import Recording


@contextlib.contextmanager
def replacing(out: Path) -> Iterator[Path]:
    """A fresh folder beside `out` to write into, put in place of `out` only once complete: a run
    that fails part-way leaves the previous complete output (or none), never a mix of the two."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would carry over to build/<stack>/
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old-{staging.name.rsplit('-', 1)[-1]}"
    if out.exists():
        out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def write(recording: Recording, decl: Declarations, out: Path) -> dict[str, Path]:
    if out.exists():
        shutil.rmtree(out)
    manifests = out / "manifests"
    manifests.mkdir(parents=True)
    (out / "resources.json").write_text(json.dumps([r.to_json() for r in recording], indent=2, sort_keys=True) + "\n")
    (out / "outputs.json").write_text(json.dumps(recording.outputs, indent=2, sort_keys=True) + "\n")
    for path, obj in manifest_files(recording).items():
        target = manifests / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(obj, sort_keys=False, default_flow_style=False))
    (out / "summary.md").write_text(summary(recording, decl))
    return {"resources": out / "resources.json", "manifests": manifests, "summary": out / "summary.md"}


def manifest_files(recording: Recording) -> dict[str, dict[str, Any]]:
    """Relative path -> object, one file per Kubernetes object the program declares."""
    files = {}
    for r in recording.kubernetes_objects():
        meta = r.metadata
        folder = meta.get("namespace") or "_cluster"
        path = f"{folder}/{str(r.kind).lower()}-{meta.get('name', r.name)}.yaml"
        if path in files:
            raise ValueError(f"two objects render to {path}: {r.urn}")
        files[path] = _ordered(r.inputs)
    return dict(sorted(files.items()))


def _ordered(obj: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind, metadata first, as people write manifests; every other map sorted."""
    head: dict[str, Any] = {k: _sorted(obj[k]) for k in ("apiVersion", "kind", "metadata") if k in obj}
    return {**head, **{k: _sorted(v) for k, v in sorted(obj.items()) if k not in head}}


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def addons(recording: Recording) -> list[dict[str, str]]:
    rows = []
    for r in recording:
        # Chart components (cert-manager's CertManager) carry their Helm release in helmOptions.
        release = r.inputs if r.type in HELM_TYPES else r.inputs.get("helmOptions") if r.remote else None
        if isinstance(release, dict):
            repo = (release.get("repositoryOpts") or {}).get("repo") or ""
            rows.append(
                {
                    "name": r.name,
                    "chart": release.get("chart", ""),
                    "version": release.get("version", ""),
                    "repository": repo,
                    "namespace": release.get("namespace", ""),
                }
            )
    return rows


def summary(recording: Recording, decl: Declarations) -> str:
    spec = decl.spec
    lines = [
        f"# Stack `{decl.stack}` ({spec.environment})",
        "",
        f"Cluster `{spec.cluster.name}`, Kubernetes {spec.cluster.kubernetes_version}: "
        f"{len(recording)} resources, {len(recording.kubernetes_objects())} Kubernetes objects.",
        "",
    ]
    lines += ["## Resources by type", "", "| type | count |", "|---|---|"]
    for type_, n in sorted(Counter(r.type for r in recording).items()):
        lines.append(f"| `{type_}` | {n} |")
    lines += ["", "## Resources by component", "", "| component | resources |", "|---|---|"]
    per_component: dict[str, int] = defaultdict(int)
    for r in recording:
        if r.custom:
            component = recording.component_of(r)
            per_component[f"{component.type} `{component.name}`" if component else "(stack)"] += 1
    for name, n in sorted(per_component.items()):
        lines.append(f"| {name} | {n} |")
    lines += ["", "## Addons", ""]
    rows = addons(recording)
    if rows:
        lines += ["| addon | chart | version | repository | namespace |", "|---|---|---|---|---|"]
        lines += [f"| {a['name']} | {a['chart']} | {a['version']} | {a['repository']} | {a['namespace']} |" for a in rows]
    else:
        lines.append("No Helm addons in this stack.")
    lines += [
        "",
        "## Services",
        "",
        "Canary times, from the declared analysis settings: the rollback bound (first failed check to all traffic on the primary, "
        "interval x (threshold + 1)), the best case to full promotion once the canary is ready, and the progress deadline (docs/delivery.md).",
        "",
        "| service | team | tier | replicas | canary | rollback | promotion | deadline | exposed | depends on |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in decl.services:
        on = s.canary_enabled(spec.environment)
        c = s.canary
        timing = (f"{c.rollback_seconds}s", f"{c.promotion_seconds}s", f"{c.progress_deadline_seconds}s") if on else ("-", "-", "-")
        lines.append(
            f"| {s.name} | {s.team} | {s.tier} | {s.replicas.min}-{s.replicas.max} | {'on' if on else 'off'} | {timing[0]} | {timing[1]} | {timing[2]} "
            f"| {s.expose.host if s.expose else '-'} | {', '.join(s.depends_on) or '-'} |"
        )
    lines += team_quotas(decl)
    lines += ["", "## Outputs", "", "| output | value |", "|---|---|"]
    lines += [f"| {k} | `{json.dumps(v)}` |" for k, v in sorted(recording.outputs.items())]
    return "\n".join(lines) + "\n"


def team_quotas(decl: Declarations) -> list[str]:
    """Each team's worst-case requests against its budget (the loader refuses a stack over it)."""
    lines = [
        "",
        "## Team quotas",
        "",
        "Worst case the ResourceQuota must admit: each service at max replicas plus the 25% rollout surge, a second "
        "full set while a canary is analysed (Flagger runs primary and canary), and the Istio sidecar's requests when the mesh is on.",
        "",
        "| team | services | cpu requested / quota | memory requested / quota | pods / quota |",
        "|---|---|---|---|---|",
    ]
    for team, use in decl.spec.team_usage(decl.services).items():
        budget = decl.spec.budget(team)
        quota = (budget.cpu, budget.memory, str(budget.pods)) if budget else ("-", "-", "-")
        lines.append(
            f"| {team} | {', '.join(use.services)} | {format_cpu(use.cpu_millis)} / {quota[0]} "
            f"| {format_memory(use.memory_bytes)} / {quota[1]} | {use.pods} / {quota[2]} |"
        )
    return lines
