"""The Alertmanager configuration as Helm renders it, and amtool's verdict on where an alert goes."""

from __future__ import annotations

from pathlib import Path

import yaml
from tools import run

from components.spec import deep_merge
from components.versions import KUBE_PROMETHEUS_STACK
from engine import chart_values

RELEASE = "kubernetes:helm.sh/v3:Release"


def values(rec) -> dict:
    [release] = [r for r in rec.of_type(RELEASE) if r.inputs["name"] == "kube-prometheus-stack"]
    return release.inputs["values"]


def rendered(rec) -> dict:
    """The chart's default `alertmanager.config` with the program's values merged over it, as Helm does."""
    return deep_merge(chart_values.defaults(KUBE_PROMETHEUS_STACK)["alertmanager"]["config"], values(rec)["alertmanager"]["config"])


def config_file(rec, directory: Path) -> Path:
    path = directory / f"alertmanager-{rec.stack}.yaml"
    path.write_text(yaml.safe_dump(rendered(rec)))
    return path


def routes_to(path: Path, **labels: str) -> str:
    """The receiver amtool routes an alert with these labels to."""
    proc = run("amtool", "config", "routes", "test", f"--config.file={path}", *(f"{k}={v}" for k, v in labels.items()))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()
