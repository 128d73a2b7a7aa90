"""Everything that exposes metrics is scraped: the list comes from the addons' own declarations
(`metrics`), and each declaration is checked against what the program really registers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from conftest import ROOT

from components.addons import cert_manager, discover, prometheus, vault
from components.addons.base import Addon
from components.karpenter import controller as karpenter
from components.monitoring.scrape import Metrics
from components.spec import load
from components.versions import CHARTS
from engine import chart_values
from engine.stacks import run

RELEASE = "kubernetes:helm.sh/v3:Release"
# What the issue names; each must be covered by a declaration (Loki and the collectors by logging and tracing).
MUST_BE_SCRAPED = {"flagger", "argocd", "vault", "keda", "external-secrets", "cert-manager", "logging", "tracing", "istio"}


def addon_releases(rec, name: str) -> dict[str, Release]:
    """chart name -> (values, dependencies) of each Helm release the addon component registered;
    cert-manager's is the CertManager component, whose values are computed from its inputs."""
    [component] = [r for r in rec if r.name == name and r.type == f"platform:addons:{discover()[name].__name__}"]
    by_ref = {c.chart_ref: c.name for c in CHARTS.values()}
    found = {}
    for r in rec.children(component, recursive=True):
        if r.type == RELEASE:
            found[by_ref[r.inputs["chart"]]] = Release(r.inputs["values"], r.dependencies)
        elif "helmOptions" in r.inputs:
            found[by_ref[r.inputs["helmOptions"]["chart"]]] = Release(cert_manager.chart_values(r.inputs), r.dependencies)
    return found


@dataclass
class Release:
    values: dict[str, Any]
    dependencies: list[str]


def contains(values: dict, wanted: dict) -> bool:
    return all(contains(values.get(k) or {}, v) if isinstance(v, dict) else values.get(k) == v for k, v in wanted.items())


def unscraped(rec) -> list[str]:
    """Every declared way of scraping that the recording does not show, as 'component: problem'."""
    spec = load(rec.stack, ROOT).spec
    declared: dict[str, Metrics] = {"karpenter": karpenter.METRICS}
    declared |= {n: discover()[n].metrics for n, a in spec.addons.items() if a.enabled and discover()[n].metrics is not None}
    problems = []
    [kps] = [r for r in rec.of_type(RELEASE) if r.inputs["name"] == prometheus.RELEASE]
    for name, metrics in declared.items():
        releases = addon_releases(rec, name) if name != "karpenter" else {}
        for chart, wanted in metrics.charts.items():
            release = releases.get(chart)
            if release is None:
                problems.append(f"{name}: no {chart} release")
            elif not contains(release.values, wanted):
                problems.append(f"{name}: {chart} values do not turn its monitors on ({wanted})")
            elif kps.urn not in release.dependencies and name != "prometheus":
                problems.append(f"{name}: {chart} is installed without waiting for the monitor CRDs")
        for monitor in metrics.monitors:
            try:
                found = rec.manifest(monitor.kind, monitor.name, prometheus.NAMESPACE)
            except KeyError:
                problems.append(f"{name}: no {monitor.kind} {monitor.name}")
                continue
            if found["spec"] != monitor.spec:
                problems.append(f"{name}: {monitor.kind} {monitor.name} differs from the declaration")
    return problems


def test_every_addon_says_whether_it_has_metrics():
    for name, cls in discover().items():
        assert "metrics" in cls.__dict__, name
    with pytest.raises(TypeError, match="must declare metrics"):
        type("Undeclared", (Addon,), {"name": "undeclared-test", "namespace": "x", "install": lambda self: None})


def test_prometheus_monitors_itself():
    # Prometheus declares no chart values of its own: the chart's self-monitoring is on by default.
    defaults = chart_values.defaults(CHARTS["kube-prometheus-stack"])
    assert defaults["prometheus"]["serviceMonitor"]["selfMonitor"] and defaults["alertmanager"]["serviceMonitor"]["selfMonitor"]
    assert defaults["kube-state-metrics"]["prometheus"]["monitor"]["enabled"] and defaults["prometheus-node-exporter"]["prometheus"]["monitor"]["enabled"]


def test_the_issues_list_is_covered_by_declarations():
    declared = {n for n, cls in discover().items() if cls.metrics is not None}
    assert MUST_BE_SCRAPED <= declared
    assert karpenter.METRICS.monitors and karpenter.METRICS.monitors[0].namespaces == [karpenter.NAMESPACE]


def test_everything_that_exposes_metrics_is_scraped(stack):
    assert unscraped(stack) == []


def test_chart_monitor_values_are_real_chart_keys():
    for name, cls in discover().items():
        for chart, values in (cls.metrics.charts if cls.metrics else {}).items():
            assert chart_values.unknown_keys(CHARTS[chart], values) == [], (name, chart)


def test_a_monitor_turned_off_is_caught(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["vault"].setdefault("values", {}).update(serverTelemetry={"serviceMonitor": {"enabled": False}}))
    rec = run("dev", scratch.root)
    assert unscraped(rec) == [f"vault: vault values do not turn its monitors on ({vault.Vault.metrics.charts['vault']})"]


def test_without_prometheus_no_monitor_is_requested(scratch):
    def off(d):
        # Velero's alerts and ServiceMonitor need Prometheus too; without velero, no backups.
        for name in ("prometheus", "flagger", "kubecost", "logging", "tracing", "velero"):
            d["addons"][name]["enabled"] = False
        d.pop("alerting")
        d.pop("backup", None)

    scratch.edit("stacks/dev.yaml", off)
    # Predictive scaling forecasts in Prometheus: without it, those services scale on their current signal.
    for service in ("notifications", "storefront"):
        scratch.edit(scratch.service_file(service), lambda d: d["scaling"].pop("predictive"))
    # Without Flagger, dev runs no canaries.
    for service in ("orders", "payment", "storefront"):
        scratch.edit(scratch.service_file(service), lambda d: d["envs"].setdefault("dev", {}).update(canary={"enabled": False}))
    rec = run("dev", scratch.root)
    values = addon_releases(rec, "vault")["vault"].values
    assert "serverTelemetry" not in values


def test_vault_is_scraped_over_tls_with_its_ca(stack):
    monitor = addon_releases(stack, "vault")["vault"].values["serverTelemetry"]["serviceMonitor"]
    assert monitor["tlsConfig"] == {"ca": {"secret": {"name": vault.TLS_SECRET, "key": "ca.crt"}}, "serverName": "vault.vault.svc"}


def test_new_zero_trust_addons_are_scraped():
    assert discover()["external-dns"].metrics is not None and discover()["istio-cni"].metrics is not None


def test_vault_serves_metrics_without_a_token(stack):
    config = addon_releases(stack, "vault")["vault"].values["server"]["ha"]["raft"]["config"]
    assert "unauthenticated_metrics_access = true" in config and 'prometheus_retention_time = "30s"' in config
