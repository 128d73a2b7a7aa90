"""The forecast rules the program renders, run by promtool on series shaped like the exporters'.

storefront (CPU; lookahead 10m, seasonality 1w, trend window 30m) reads cAdvisor counters as the
kubelet exposes them; notifications (a queue; lookahead 5m, seasonality 1d) reads the gauge the
KEDA operator exports, with the labels its ServiceMonitor gives it. Cases: a linear ramp, a
weekly pattern, a step, and gaps (no recent data, no data last season, KEDA's failed-read -1).
"""

from __future__ import annotations

from collections.abc import Callable

import yaml
from conftest import recorded
from tools import run

from components.monitoring import forecast
from components.spec.scaling import prometheus_duration

STOREFRONT = '{namespace="web", service="storefront", team="web"}'
NOTIFICATIONS = '{namespace="messaging", service="notifications", team="messaging"}'
POD = "storefront-6d5f8b7c9-x2k4p"
# The kubelet's cAdvisor series as kube-prometheus-stack's ServiceMonitor labels them.
CADVISOR = (
    'container_cpu_usage_seconds_total{{namespace="web", pod="{pod}", container="{container}", cpu="total", '
    'id="/kubepods.slice/kubepods-burstable.slice/{pod}", image="{image}", job="kubelet", metrics_path="/metrics/cadvisor", '
    'endpoint="https-metrics", instance="10.20.1.5:10250", node="ip-10-20-1-5.eu-west-1.compute.internal", service="kube-prometheus-stack-kubelet"}}'
)
# keda_scaler_metrics_value as scraped: the target's namespace (keda) wins, the ScaledObject's is exported_namespace.
KEDA = (
    'keda_scaler_metrics_value{{exported_namespace="messaging", namespace="keda", scaledObject="notifications", scaler="{scaler}", '
    'metric="{metric}", triggerIndex="{index}", type="scaledobject", job="keda-operator", service="keda-operator", '
    'endpoint="metrics", container="keda-operator", pod="keda-operator-7c9d8b5f4-q8wz2", instance="10.20.3.7:8080"}}'
)


def group(name: str, namespace: str) -> dict:
    groups = recorded("dev").manifest("PrometheusRule", name, namespace)["spec"]["groups"]
    [found] = [g for g in groups if g["name"] == f"{name}-forecast"]
    return found


def counter(load: Callable[[int], float], minutes: int) -> str:
    """A CPU counter scraped every minute, born at 1: `load(k)` cores during minute k."""
    values, total = [], 1.0
    for k in range(minutes + 1):
        total += 60 * load(k) if k else 0
        values.append(f"{total:.6f}")
    return " ".join(values)


def cpu_series(load: Callable[[int], float], minutes: int) -> list[dict]:
    image = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/storefront:2.4.1"
    return [
        {"series": CADVISOR.format(pod=POD, container="storefront", image=image), "values": counter(load, minutes)},
        # The sidecar and the pod's own cgroup are not the service's load.
        {"series": CADVISOR.format(pod=POD, container="istio-proxy", image="docker.io/istio/proxyv2:1.30.3"), "values": counter(lambda k: 5.0, minutes)},
        {"series": CADVISOR.format(pod=POD, container="", image=""), "values": counter(lambda k: 9.0, minutes)},
    ]


def queue_series(values: list[str]) -> list[dict]:
    return [
        {"series": KEDA.format(scaler="current", metric="s0-aws-sqs-shop-notifications", index=0), "values": " ".join(values)},
        # The forecast trigger and the composite metric are exported too; feeding them back would be a loop.
        {"series": KEDA.format(scaler="forecast", metric="s1-prometheus", index=1), "values": " ".join(["999"] * len(values))},
        {"series": KEDA.format(scaler="composite-metric", metric="composite-metric", index=0), "values": " ".join(["999"] * len(values))},
    ]


def near(record: str, labels: str, value: float, tolerance: float = 0.001) -> str:
    return f"abs({record}{labels} - {value}) < bool {tolerance}"


def check(expr: str, at: str, labels: str) -> dict:
    """`expr` holds (1) at `at`; an empty `labels` means no sample at all."""
    return {"expr": expr, "eval_time": at, "exp_samples": [{"labels": labels, "value": 1}] if labels else []}


def promtool(tmp_path, rules: dict, series: list[dict], checks: list[dict], passes: bool = True) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [rules]}, sort_keys=False))
    test = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False, width=10**9))
    proc = run("promtool", "test", "rules", tmp_path / "test.yaml")
    assert (proc.returncode == 0) == passes, proc.stdout + proc.stderr


def test_a_linear_ramp_is_forecast_by_its_trend(tmp_path):
    """1 core rising by 0.01 a minute: the forecast is the load 10 minutes on, and 10 minutes later it is what is there."""
    ramp = lambda k: 1 + 0.01 * k
    promtool(
        tmp_path,
        group("storefront", "web"),
        cpu_series(ramp, 120),
        [
            # The signal is the last minute's load (Prometheus 3) or the last two minutes' (2.x ranges include their start).
            check(near(forecast.SIGNAL, STOREFRONT, ramp(60) - 0.005, 0.006), "60m", STOREFRONT),
            # Ten minutes at 0.01 a minute above it: the load 10 minutes on.
            check(f"abs({forecast.FORECAST}{STOREFRONT} - {forecast.SIGNAL}{STOREFRONT} - 0.1) < bool 0.0001", "60m", STOREFRONT),
            check(f"abs({forecast.FORECAST}{STOREFRONT} offset 10m - {forecast.SIGNAL}{STOREFRONT}) < bool 0.001", "100m", STOREFRONT),
        ],
    )


def test_a_weekly_pattern_is_forecast_from_last_week(tmp_path):
    """4 cores from 01:00 to 02:00 every Sunday, 1 otherwise: the next Sunday the forecast reads 4 at 00:55, before the load rises."""
    week = 7 * 24 * 60
    sunday_rush = lambda k: 4.0 if 60 < k % week <= 120 else 1.0
    promtool(
        tmp_path,
        group("storefront", "web"),
        cpu_series(sunday_rush, week + 130),
        [
            # A week on, five minutes before the rush: the trend is flat at 1, last week says 4.
            check(near(forecast.SIGNAL, STOREFRONT, 1), f"{week + 55}m", STOREFRONT),
            check(near(forecast.FORECAST, STOREFRONT, 4), f"{week + 55}m", STOREFRONT),
            # Twenty minutes before, last week was quiet too.
            check(near(forecast.FORECAST, STOREFRONT, 1), f"{week + 40}m", STOREFRONT),
        ],
    )


def test_a_step_is_carried_by_the_current_signal_and_the_trend_settles(tmp_path):
    """The queue jumps from 20 to 200 messages: no forecast sees it coming. The trend lags (the
    formula's max() keeps the current 200), overshoots while the step is inside its window, and is
    200 once the window has passed it."""
    depth = [str(20 if k <= 60 else 200) for k in range(121)]
    promtool(
        tmp_path,
        group("notifications", "messaging"),
        queue_series(depth),
        [
            check(near(forecast.FORECAST, NOTIFICATIONS, 20), "59m", NOTIFICATIONS),
            check(f"{forecast.FORECAST}{NOTIFICATIONS} < bool {forecast.SIGNAL}{NOTIFICATIONS}", "62m", NOTIFICATIONS),
            # About 1.5 times the new level (296 with Prometheus 3's 30 samples in the window).
            check(f"{forecast.FORECAST}{NOTIFICATIONS} > bool 280", "80m", NOTIFICATIONS),
            check(near(forecast.FORECAST, NOTIFICATIONS, 200), "91m", NOTIFICATIONS),
        ],
    )


def test_gaps_no_recent_data_no_forecast_no_last_season_the_trend(tmp_path):
    """50 messages for two hours, nothing for a day (KEDA down), then 80; a failed SQS read
    (exported as -1) is no data either. The trend needs its window full (30m)."""
    day = 24 * 60
    depth = ["50" if k <= 120 else "_" for k in range(day + 60)]
    depth += ["80"] * 180 + ["-1"] * 10 + ["80"] * 20
    promtool(
        tmp_path,
        group("notifications", "messaging"),
        queue_series(depth),
        [
            # No recent data: no forecast, although last season (00:35 yesterday) has 50.
            check(forecast.FORECAST + NOTIFICATIONS, f"{day + 30}m", ""),
            # Data again for five minutes: no trend from so few samples, last season (01:10 yesterday) alone.
            check(near(forecast.FORECAST, NOTIFICATIONS, 50), f"{day + 65}m", NOTIFICATIONS),
            # A full trend window later, last season there (01:45 yesterday, 50): the larger is today's 80.
            check(near(forecast.FORECAST, NOTIFICATIONS, 80), f"{day + 100}m", NOTIFICATIONS),
            # Last season is the gap (03:05 yesterday): the trend alone.
            check(near(forecast.FORECAST, NOTIFICATIONS, 80), f"{day + 180}m", NOTIFICATIONS),
            # KEDA's -1 for a failed read is not load: neither a signal nor a forecast.
            check(forecast.SIGNAL + NOTIFICATIONS, f"{day + 245}m", ""),
            check(forecast.FORECAST + NOTIFICATIONS, f"{day + 245}m", ""),
        ],
    )


def test_the_weekly_case_fails_on_a_forecast_without_its_season(tmp_path):
    """The same check against the rule with last season moved out of reach: the weekly test can fail."""
    week = 7 * 24 * 60
    rules = group("storefront", "web")
    season = f"offset {prometheus_duration(7 * 86400 - 600)}"
    assert sum(season in r["expr"] for r in rules["rules"]) == 1
    blind = {**rules, "rules": [{**r, "expr": r["expr"].replace(season, "offset 5w")} for r in rules["rules"]]}
    sunday_rush = lambda k: 4.0 if 60 < k % week <= 120 else 1.0
    checks = [check(near(forecast.FORECAST, STOREFRONT, 4), f"{week + 55}m", STOREFRONT)]
    promtool(tmp_path, blind, cpu_series(sunday_rush, week + 60), checks, passes=False)


def test_a_trigger_keda_gave_up_on_opens_a_ticket(tmp_path):
    """Past the fallback threshold KEDA exports the failed trigger as -1: after 15 minutes of it, the alert."""
    rules = group("notifications", "messaging")
    [rule] = [r for r in rules["rules"] if r.get("alert") == forecast.DEGRADED_ALERT]
    healthy, failed = ["12"] * 6, ["-1"] * 35
    series = [
        {"series": KEDA.format(scaler="current", metric="s0-aws-sqs-shop-notifications", index=0), "values": " ".join(["40"] * 41)},
        {"series": KEDA.format(scaler="forecast", metric="s1-prometheus", index=1), "values": " ".join(healthy + failed)},
    ]
    labels = {"severity": "warning", "team": "messaging", "namespace": "messaging", "service": "notifications", "scaler": "forecast"}
    fill = lambda text: text.replace("{{ $labels.scaler }}", "forecast")
    firing = [{"exp_labels": labels, "exp_annotations": {k: fill(v) for k, v in rule["annotations"].items()}}]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [rules]}, sort_keys=False))
    alerts = [
        {"eval_time": "5m", "alertname": forecast.DEGRADED_ALERT, "exp_alerts": []},
        {"eval_time": "18m", "alertname": forecast.DEGRADED_ALERT, "exp_alerts": []},
        {"eval_time": "25m", "alertname": forecast.DEGRADED_ALERT, "exp_alerts": firing},
    ]
    test = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": alerts}]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False, width=10**9))
    proc = run("promtool", "test", "rules", tmp_path / "test.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
