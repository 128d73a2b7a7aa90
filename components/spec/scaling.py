"""How a service scales: CPU with an HPA (the default), an SQS queue's depth with KEDA, and on top
of either, predictive scaling: KEDA scales on the larger of the current signal and its forecast
`lookahead` ahead (components/monitoring/forecast.py, docs/predictive-scaling.md)."""

from __future__ import annotations

import re
from typing import Optional

from pydantic import ValidationInfo, field_validator

from .base import Spec, field

# A Prometheus duration in one unit: the forms the forecast's PromQL is written with.
DURATION = r"^[1-9][0-9]{0,5}(s|m|h|d|w)$"
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# A forecast further ahead than an hour is a capacity plan, not autoscaling; under a minute is
# below what KEDA's polling and the rule evaluation interval resolve.
LOOKAHEAD = (60, 3600)
# The linear trend needs a few minutes of samples to be more than noise, and stops being "recent" after hours.
TREND_WINDOW = (300, 6 * 3600)
# From a daily cycle to a monthly one (Prometheus must still hold the data: see `_season`).
SEASONALITY = (3600, 5 * 604800)
BOUNDS = {"lookahead": LOOKAHEAD, "trend_window": TREND_WINDOW, "seasonality": SEASONALITY}


def seconds(duration: str) -> int:
    """ "10m" -> 600; "1w" -> 604800 (the model's DURATION pattern)."""
    match = re.match(r"^([0-9]+)(s|m|h|d|w|y)$", duration)
    if not match:
        raise ValueError(f"{duration[:20]!r} is not a duration like 10m, 6h or 1w")
    return int(match[1]) * (UNIT_SECONDS[match[2]] if match[2] != "y" else 365 * 86400)


def prometheus_duration(total: int) -> str:
    """600 -> "10m", 603600 -> "6d23h40m": the shortest Prometheus duration for whole seconds."""
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


class SqsScaling(Spec):
    queue_name: str = field("SQS queue the worker consumes; KEDA scales on its depth.", pattern=r"^[A-Za-z0-9_-]{1,80}$")
    messages_per_replica: int = field("Target visible messages per replica.", default=5, ge=1)


class Predictive(Spec):
    # The pattern is for editors (JSON Schema); the validators below explain a mismatch in words.
    lookahead: str = field(
        "How far ahead the load is forecast, e.g. 10m: about the time a new replica (and a new node) takes to serve.", json_schema_extra={"pattern": DURATION}
    )
    seasonality: str = field(
        "The period the load repeats with, e.g. 1d or 1w: last season's load `lookahead` from now is one of the two forecasts.",
        json_schema_extra={"pattern": DURATION},
    )
    trend_window: str = field("The recent window the linear trend (predict_linear) is fitted on.", default="30m", json_schema_extra={"pattern": DURATION})

    @property
    def lookahead_seconds(self) -> int:
        return seconds(self.lookahead)

    @property
    def seasonality_seconds(self) -> int:
        return seconds(self.seasonality)

    @property
    def trend_window_seconds(self) -> int:
        return seconds(self.trend_window)

    @field_validator("lookahead", "trend_window", "seasonality")
    @classmethod
    def _duration(cls, value: str, info: ValidationInfo) -> str:
        if not re.match(DURATION, value):
            raise ValueError(f"{value[:20]!r} is not a duration in one unit, like 90s, 10m, 6h, 1d or 1w")
        low, high = BOUNDS[info.field_name or ""]
        if not low <= seconds(value) <= high:
            raise ValueError(f"{value} is outside {prometheus_duration(low)}..{prometheus_duration(high)}")
        return value

    @field_validator("seasonality")
    @classmethod
    def _season(cls, value: str, info: ValidationInfo) -> str:
        lookahead = info.data.get("lookahead")
        if lookahead is not None and seconds(value) <= 2 * seconds(lookahead):
            raise ValueError(f"{value} must be more than twice the lookahead {lookahead}; last season's value is read `seasonality - lookahead` ago")
        retention = (info.context or {}).get("retention")
        if retention is not None and seconds(value) > seconds(retention):
            raise ValueError(
                f"{value} is longer than the stack's Prometheus retention {retention} (addons.prometheus.settings.retention); "
                "last season's load would never be there"
            )
        return value


class Scaling(Spec):
    sqs: Optional[SqsScaling] = field("Scale on an SQS queue's depth with KEDA instead of CPU with an HPA.", default=None)
    predictive: Optional[Predictive] = field(
        "Scale ahead of the load: KEDA scales on the larger of the current signal (CPU or the queue) and its forecast; needs the keda and prometheus addons.",
        default=None,
    )
