"""Rollback time and canary exposure, from Flagger's gauges as it sets them (scraped every 15 s), by promtool.

Rollback time is, for a canary whose last run failed, the time from its first failed check to all traffic
back on the primary; exposure, that run's time carrying traffic. Neither may add up earlier runs or other
canaries in the hour, as the old rule (seconds with weight above 0 in the hour) did, nor take the failing
value an earlier run left in Flagger's analysis gauge for a failure of this run."""

from __future__ import annotations

from conftest import ROOT, recorded
from monitoring import flagger, only, promtool_rules_test

from components.spec import load

STEP = 15  # seconds between samples: Flagger's PodMonitor interval
LAST = 200  # samples: 50 minutes
ROLLBACK, EXPOSURE = "platform:canary_rollback:seconds1h", "platform:canary_exposure:seconds1h"


def values(points: dict[range, float]) -> str:
    """promtool values, one per sample, `_` where the gauge is not set."""
    out = ["_"] * (LAST + 1)
    for span, value in points.items():
        for k in span:
            out[k] = f"{value:g}"
    return " ".join(out)


def canary(name: str, status: dict[range, float], weight: dict[range, float], success: dict[range, float], duration: float, first_check: int) -> list[dict]:
    ns = {"namespace": "checkout"}
    primary = {span: 100 - w for span, w in weight.items()}
    return [
        flagger("flagger_canary_status", 1, values(status), **ns, name=name),
        flagger("flagger_canary_weight", 1, values(weight), **ns, workload=name),
        flagger("flagger_canary_weight", 1, values(primary), **ns, workload=f"{name}-primary"),
        flagger("flagger_canary_metric_analysis", 1, values(success), **ns, name=name, metric="request-success-rate"),
        flagger("flagger_canary_metric_analysis", 1, values({range(first_check, LAST + 1): duration}), **ns, name=name, metric="request-duration"),
    ]


def groups() -> list[dict]:
    rec = recorded("prod")
    delivery = only(
        rec.manifest("PrometheusRule", "platform-delivery", "monitoring")["spec"]["groups"], "platform:canary_run:start_timestamp", ROLLBACK, EXPOSURE
    )
    services = [rec.manifest("PrometheusRule", s, "checkout")["spec"]["groups"] for s in ("orders", "payment")]
    return delivery + [g for gs in services for g in gs if g["name"].endswith("-canary-analysis")]


def test_rollback_time_runs_from_the_first_failed_check_of_the_last_run_to_traffic_on_the_primary(tmp_path):
    orders = {s.name: s for s in load("prod", ROOT).services}["orders"]
    assert orders.canary.interval_seconds == 10 and orders.canary.success_rate == 99.9
    # orders: a promoted run (minutes 5-10), a failed run (20-25: failing from 22:30, back on the primary at
    # 25:00), and at 40:00 a new run: the gauge still shows the earlier run's 80% until this run's first
    # check (100%, seen at 40:15); it fails from 41:00; traffic is back on the primary at 42:00.
    series = canary(
        "orders",
        status={range(0, 20): 1, range(20, 41): 0, range(41, 80): 1, range(80, 100): 0, range(100, 160): 2, range(160, 168): 0, range(168, LAST + 1): 2},
        weight={
            range(0, 20): 0,
            range(20, 41): 10,
            range(41, 80): 0,
            range(80, 100): 20,
            range(100, 160): 0,
            range(160, 162): 10,
            range(162, 168): 20,
            range(168, LAST + 1): 0,
        },
        success={range(21, 90): 100, range(90, 161): 80, range(161, 164): 100, range(164, LAST + 1): 80},
        duration=0.2,
        first_check=21,
    )
    # payment, in the same namespace and hour: a run from 43:00, failing from 44:30, rolled back at 45:00.
    series += canary(
        "payment",
        status={range(0, 172): 1, range(172, 180): 0, range(180, LAST + 1): 2},
        weight={range(0, 172): 0, range(172, 180): 10, range(180, LAST + 1): 0},
        success={range(173, 178): 100, range(178, LAST + 1): 95},
        duration=0.1,
        first_check=173,
    )
    labels = lambda name: {"namespace": "checkout", "name": name, "team": "checkout"}
    sample = lambda record, name, value: {"labels": record + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels(name).items())) + "}", "value": value}
    checks = [
        # The first failed run, at 30:00: failing from 22:30 (1350 s), on the primary at 25:00 (1500 s).
        {"expr": ROLLBACK, "eval_time": "30m", "exp_samples": [sample(ROLLBACK, "orders", 150)]},
        {"expr": EXPOSURE, "eval_time": "30m", "exp_samples": [sample(EXPOSURE, "orders", 300)]},
        # While a run is in progress there is no rollback to report.
        {"expr": ROLLBACK, "eval_time": "41m", "exp_samples": []},
        {"expr": ROLLBACK, "eval_time": "50m", "exp_samples": [sample(ROLLBACK, "orders", 60), sample(ROLLBACK, "payment", 30)]},
        {"expr": EXPOSURE, "eval_time": "50m", "exp_samples": [sample(EXPOSURE, "orders", 120), sample(EXPOSURE, "payment", 120)]},
    ]
    promtool_rules_test(tmp_path, groups(), [{"interval": f"{STEP}s", "input_series": series, "promql_expr_test": checks}])


def test_every_canaried_service_records_its_analysis_thresholds(prod):
    for svc in load("prod", ROOT).services:
        spec = prod.manifest("PrometheusRule", svc.name, svc.team)["spec"]
        found = {r["record"]: r for g in spec["groups"] if g["name"] == f"{svc.name}-canary-analysis" for r in g["rules"]}
        if not svc.canary_enabled("prod"):
            assert not found, svc.name
            continue
        assert found["platform:canary_analysis:min_success_rate"]["expr"] == f"vector({svc.canary.success_rate:g})"
        assert found["platform:canary_analysis:max_duration_seconds"]["expr"] == f"vector({svc.canary.max_latency_ms / 1000:g})"
        assert found["platform:canary_analysis:interval_seconds"]["expr"] == f"vector({svc.canary.interval_seconds})"
        assert {r["labels"]["name"] for r in found.values()} == {svc.name}
