"""Is every Helm value we set a real key of the chart? Helm silently ignores a typo.

Values are compared with the chart's default values.yaml in ../shared/reference/charts/.
A map whose default is empty (`resources: {}`) takes any keys; so do the maps that charts
document as free-form, listed here once with the reason.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import yaml

from components.spec import Declarations, Problem
from components.spec.loader import STACKS_DIR
from components.spec.problems import dotted
from components.versions import Chart

from .conformance import reference_dir

# Keys that are free-form maps in every chart that has them (Kubernetes labels and selectors,
# extra arguments and environment passed through verbatim).
FREE_FORM_ANYWHERE = {
    "annotations": "Kubernetes annotations: any keys",
    "labels": "Kubernetes labels: any keys",
    "podAnnotations": "annotations on the pods: any keys",
    "podLabels": "labels on the pods: any keys",
    "nodeSelector": "node labels to select: any keys",
    "extraArgs": "passed to the binary as --key=value flags",
    "extraEnv": "passed to the container verbatim",
}
ISTIO_DEFAULTS = "_internal_defaults_do_not_set"
# chart name -> dotted path -> reason, for maps a particular chart documents as free-form.
FREE_FORM: dict[str, dict[str, str]] = {
    "istiod": {
        "meshConfig": "Istio's MeshConfig, passed through whole; values.yaml points at istio.mesh.v1alpha1 for all available options",
    },
    "opentelemetry-collector": {
        "config": "the Collector's own configuration (receivers, processors, exporters, pipelines); values.yaml: "
                  "'Base collector configuration', values.schema.json types it as a bare object",
    },
    "loki": {
        "loki.storage_config": "Loki's storage_config section, rendered verbatim into config.yaml (templated toYaml); "
                               "values.yaml: 'Additional storage config'",
        "loki.limits_config": "Loki's limits_config section, rendered verbatim into config.yaml (templated toYaml); "
                              "values.yaml lists a few limits as examples",
    },
}


@functools.lru_cache(maxsize=None)
def defaults(chart: Chart) -> dict[str, Any]:
    path = reference_dir() / "charts" / chart.reference_folder / "values.yaml"
    values = yaml.safe_load(path.read_text()) or {}
    # Istio's charts keep their defaults under `_internal_defaults_do_not_set` (a Helm workaround)
    # and document that users set those keys at the top level, e.g. `service.type`, not
    # `_internal_defaults_do_not_set.service.type`.
    return {**values.pop(ISTIO_DEFAULTS, {}), **values}


def unknown_keys(chart: Chart, values: dict[str, Any]) -> list[str]:
    """Dotted paths of values that do not exist in the chart's defaults."""
    free = FREE_FORM.get(chart.name, {})
    found: list[str] = []

    def walk(ours: Any, theirs: Any, path: str) -> None:
        if not isinstance(ours, dict) or not isinstance(theirs, dict) or theirs == {}:
            return
        for key, value in ours.items():
            dotted = f"{path}.{key}" if path else key
            if key not in theirs:
                found.append(dotted)
            elif dotted not in free and key not in FREE_FORM_ANYWHERE:
                walk(value, theirs[key], dotted)

    walk(values, defaults(chart), "")
    return found


def override_problems(decl: Declarations) -> list[Problem]:
    """Every stack's `addons.<name>.values` checked against the charts the addon installs: Helm
    ignores an unknown key, so a typo would silently do nothing. The same check the tests run on
    the values the addons set themselves."""
    from components.addons import discover

    addons = discover()
    problems = []
    for stack, spec in sorted(decl.stacks.items()):
        rel = f"{STACKS_DIR}/{stack}.yaml"
        for name, addon in spec.addons.items():
            charts = charts_of(addons[name])
            if not addon.values:
                continue
            if not addons[name].multi_chart:
                per_chart = {chart.name: (addon.values, ("addons", name, "values")) for chart in charts}
            else:
                per_chart = {}
                for key, values in addon.values.items():
                    path = ("addons", name, "values", key)
                    if key not in {c.name for c in charts}:
                        problems.append(Problem(rel, dotted(path), f"the {name} addon installs the charts {', '.join(c.name for c in charts)}; "
                                                                  f"its values are keyed by chart name"))
                    elif not isinstance(values, dict):
                        problems.append(Problem(rel, dotted(path), "expected a mapping of Helm values"))
                    else:
                        per_chart[key] = (values, path)
            for chart in charts:
                if chart.name in per_chart:
                    values, path = per_chart[chart.name]
                    problems += [Problem(rel, dotted((*path, *key.split("."))), f"not a value of chart {chart.name} {chart.version}; "
                                         "Helm would ignore it (see the chart's values.yaml)") for key in unknown_keys(chart, values)]
    return problems


def charts_of(addon: type) -> list[Chart]:
    """The pinned charts an addon's module installs (the Chart constants it imports from components.versions)."""
    module = sys.modules[addon.__module__]
    return sorted({v for v in vars(module).values() if isinstance(v, Chart)}, key=lambda c: c.name)
