"""PromQL building blocks for series as the exporters really emit them.

- Counters are created at their first event, at 1 (Flagger's canary counters, Karpenter's disruption
  counter): `increase()` never sees that first event, so `counted` adds a series born inside the window
  at its whole value.
- An exporter restart (kube-state-metrics on a spot node, Flagger, Karpenter) starts new series, with a
  new `instance` and `pod`, next to the old ones still inside any window: `deduplicated` keeps one value
  per object before anything is counted.
- A step's timestamp inside a subquery is `time()`; `stamp` turns a filtered vector into the times at
  which it held.
"""

from __future__ import annotations


def counted(selector: str, window: str) -> str:
    """Per series, how much the counter grew in `window`, exactly: the last value less the value at the
    window's start; a series born inside the window counts from 0 (its birth at 1 is an event); a series
    reset in place (the exporter's process restarted in the same pod) falls back to increase()."""
    last, start = f"last_over_time({selector}[{window}])", f"{selector} offset {window}"
    reset = f"resets({selector}[{window}]) > 0"
    return f"((({last} - {start}) unless ({reset})) or (increase({selector}[{window}]) and ({reset})) or ({last} unless {start}))"


def deduplicated(selector: str, by: str) -> str:
    """One value per object (`by`), whichever exporter instance reported it."""
    return f"max by ({by}) ({selector})"


def stamp(expr: str) -> str:
    """The evaluation time, wherever `expr` has a value: inside a subquery, the time of each step it held."""
    return f"(({expr}) * 0 + time())"


def by_team(expr: str) -> str:
    """The team of a series about a team namespace: the namespace is named after its team."""
    return f'label_replace({expr}, "team", "$1", "namespace", "(.*)")'
