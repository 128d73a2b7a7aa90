"""Grafana dashboards, built with Grafana's typed builders (grafana-foundation-sdk): the panel shapes
every generated dashboard uses, and the labels and datasource kube-prometheus-stack's Grafana
provisions them with.

Dashboards are ConfigMaps labelled for Grafana's dashboard sidecar (values grafana.sidecar.dashboards,
which searches every namespace); queries go to the chart's own Prometheus datasource.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Optional

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos, Threshold, ThresholdsMode

# Grafana's sidecars (values grafana.sidecar.*): dashboards from ConfigMaps with this label.
DASHBOARD_LABEL = {"grafana_dashboard": "1"}
# The datasource kube-prometheus-stack provisions for its own Prometheus (grafana.sidecar.datasources.uid);
# the prometheus addon publishes it in its MonitoringContract.
PROMETHEUS_DATASOURCE_UID = "prometheus"
# Grafana's dashboard uid limit.
UID_MAX = 40
GREEN, YELLOW, RED = "green", "yellow", "red"


def steps(*pairs: tuple[str, Optional[float]]) -> list[Threshold]:
    """Absolute thresholds: colour from each value up (the first from minus infinity)."""
    return [Threshold(color=color, value=value) for color, value in pairs]


def panel(
    title: str,
    unit: str,
    datasource_uid: str,
    queries: list[tuple[str, str]],
    threshold: Optional[float] = None,
    kind: Literal["timeseries", "stat"] = "timeseries",
    thresholds: Optional[list[Threshold]] = None,
    style: str = "line",
) -> Any:
    """A panel builder of queries on the Prometheus datasource `datasource_uid`: `threshold` draws one line (red above it); `thresholds`
    gives the steps, drawn as `style` (line, area, line+area) on a time series or as colours on a stat."""
    source = DataSourceRef(type_val="prometheus", uid=datasource_uid)
    built: Any
    if kind == "stat":
        built = (
            stat.Panel()
            .graph_mode(common.BigValueGraphMode.AREA)
            .color_mode(common.BigValueColorMode.VALUE)
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        )
    else:
        built = timeseries.Panel().legend(
            common_builders.VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST).placement(common.LegendPlacement.BOTTOM)
        )
    built = built.title(title).unit(unit).datasource(source)
    for i, (expr, legend) in enumerate(queries):
        built = built.with_target(prometheus.Dataquery().ref_id(chr(ord("A") + i)).datasource(source).expr(expr).legend_format(legend))
    if threshold is not None:
        thresholds = steps((GREEN, None), (RED, threshold))
    if thresholds is not None:
        built = built.thresholds(dashboard_builders.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(thresholds))
        if kind == "timeseries":
            built = built.thresholds_style(common_builders.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode(style)))
    return built


def dashboard(uid: str, title: str, tags: list[str], panels: list[Any], time_from: str = "now-6h") -> dict[str, Any]:
    """Panels laid out two to a row, in order; the dashboard as the JSON Grafana provisions."""
    board = dashboard_builders.Dashboard(title).uid(uid[:UID_MAX]).tags(tags).timezone("utc").readonly().refresh("30s").time(time_from, "now")
    for i, p in enumerate(panels):
        board = board.with_panel(p.id(i + 1).grid_pos(GridPos(h=8, w=12, x=(i % 2) * 12, y=(i // 2) * 8)))
    return json.loads(JSONEncoder(sort_keys=False).encode(board.build()))
