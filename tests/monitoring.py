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


# -- promtool test rules on series shaped like the exporters' -----------------------------------------
# The target labels Prometheus adds to what each exporter reports (kube-prometheus-stack's monitors;
# kube-state-metrics and Flagger are scraped with honorLabels, so their own `namespace`/`pod` win).
KSM = {"job": "kube-state-metrics", "endpoint": "http", "service": "kube-prometheus-stack-kube-state-metrics", "container": "kube-state-metrics"}
FLAGGER = {"job": "flagger-system/flagger", "container": "flagger", "endpoint": "http"}
KARPENTER = {"job": "karpenter", "namespace": "kube-system", "service": "karpenter", "endpoint": "http-metrics", "container": "controller"}


def series(name: str, labels: dict[str, str], values: str, /) -> dict[str, str]:
    return {"series": name + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}", "values": values}


def ksm(name: str, replica: int, values: str, /, **labels: str) -> dict[str, str]:
    """A kube-state-metrics series as replica `replica` (a restart, e.g. on a new spot node) reports it."""
    target = {**KSM, "instance": f"10.0.{replica}.17:8080"}
    if "pod" not in labels:  # the object has no pod label of its own: the target's (kube-state-metrics' pod) stays
        target["pod"] = f"kube-prometheus-stack-kube-state-metrics-6d5f{replica}-x2k4p"
    if "container" in labels:
        target.pop("container")
    return series(name, {**target, **labels}, values)


def flagger(name: str, replica: int, values: str, /, **labels: str) -> dict[str, str]:
    """A Flagger series as the Flagger pod `replica` reports it (a restart starts new series)."""
    return series(name, {**FLAGGER, "instance": f"10.0.5.{replica}:8080", "pod": f"flagger-7c9d8b{replica}-abcde", **labels}, values)


def promtool_rules_test(tmp_path: Path, groups: list[dict], tests: list[dict], evaluation_interval: str = "1m") -> None:
    """Run `promtool test rules` on `groups` with the given tests; fail with promtool's output."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    test = tmp_path / "test.yaml"
    test.write_text(yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": evaluation_interval, "tests": tests}, sort_keys=False))
    proc = run("promtool", "test", "rules", test)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def only(groups: list[dict], *names: str) -> list[dict]:
    """The groups with only the rules (records or alerts) named: fewer rules, a faster test."""
    keep = lambda r: r.get("record", r.get("alert")) in names
    return [{**g, "rules": [r for r in g["rules"] if keep(r)]} for g in groups if any(keep(r) for r in g["rules"])]
