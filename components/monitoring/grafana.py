"""Grafana dashboards as data: the panel shapes every generated dashboard uses, and the labels and
datasource kube-prometheus-stack's Grafana provisions them with.

Dashboards are ConfigMaps labelled for Grafana's dashboard sidecar (values grafana.sidecar.dashboards,
which searches every namespace); queries go to the chart's own Prometheus datasource.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

# Grafana's sidecars (values grafana.sidecar.*): dashboards from ConfigMaps with this label.
DASHBOARD_LABEL = {"grafana_dashboard": "1"}
# The datasource the chart provisions for its own Prometheus (grafana.sidecar.datasources.uid).
PROMETHEUS_DATASOURCE_UID = "prometheus"
DATASOURCE = {"type": "prometheus", "uid": PROMETHEUS_DATASOURCE_UID}
# Grafana's dashboard uid limit.
UID_MAX = 40
SCHEMA_VERSION = 39
GREEN, YELLOW, RED = "green", "yellow", "red"


def steps(*pairs: tuple[str, Optional[float]]) -> dict[str, Any]:
    """Absolute thresholds: colour from each value up (the first from minus infinity)."""
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for color, value in pairs]}


def panel(title: str, unit: str, queries: list[tuple[str, str]], threshold: Optional[float] = None,
          kind: Literal["timeseries", "stat"] = "timeseries", thresholds: Optional[dict[str, Any]] = None,
          style: str = "line") -> dict[str, Any]:
    """A panel of Prometheus queries: `threshold` draws one line (red above it); `thresholds` gives
    the steps, drawn as `style` (line, area, line+area) on a time series or as colours on a stat."""
    defaults: dict[str, Any] = {"unit": unit}
    if threshold is not None:
        thresholds = steps((GREEN, None), (RED, threshold))
    if thresholds is not None:
        defaults["thresholds"] = thresholds
        if kind == "timeseries":
            defaults["custom"] = {"thresholdsStyle": {"mode": style}}
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(queries)],
    }


def dashboard(uid: str, title: str, tags: list[str], panels: list[dict[str, Any]], time_from: str = "now-6h") -> dict[str, Any]:
    """Panels laid out two to a row, in order."""
    for i, p in enumerate(panels):
        p["id"] = i + 1
        p["gridPos"] = {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8}
    return {
        "uid": uid[:UID_MAX],
        "title": title,
        "tags": tags,
        "timezone": "utc",
        "editable": False,
        "refresh": "30s",
        "time": {"from": time_from, "to": "now"},
        "schemaVersion": SCHEMA_VERSION,
        "panels": panels,
    }
