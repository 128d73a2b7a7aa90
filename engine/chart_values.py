"""Is every Helm value we set a real key of the chart? Helm silently ignores a typo.

Values are compared with the chart's default values in reference/charts/ (engine/reference.py).
A map whose default is empty (`resources: {}`) takes any keys; so do the maps that charts
document as free-form, listed here once with the reason. Where the chart ships its own
values.schema.json, the merged values are also validated against it, as Helm does on install.
"""

from __future__ import annotations

import sys
from typing import Any

import jsonschema

from components.spec import Declarations, Problem
from components.spec.loader import STACKS_DIR
from components.spec.problems import dotted
from components.versions import Chart

from . import reference
from .conformance import unmasked

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
# chart name -> dotted path -> reason, for maps a particular chart documents as free-form.
FREE_FORM: dict[str, dict[str, str]] = {
    "istiod": {
        "meshConfig": "Istio's MeshConfig, passed through whole; values.yaml points at istio.mesh.v1alpha1 for all available options",
        "seccompProfile": "istiod's container seccompProfile (a Kubernetes SeccompProfile), rendered with toYaml; default {}",
        "global.proxy.seccompProfile": "the injected containers' seccompProfile (a Kubernetes SeccompProfile); default {}",
        "gateways.seccompProfile": "templated gateways' seccompProfile (a Kubernetes SeccompProfile); values.yaml: 'Set to `type: RuntimeDefault`'",
    },
    "gateway": {"securityContext": "the gateway pods' PodSecurityContext, rendered with toYaml; values.yaml: 'Define the security context for the pod'"},
    "flagger": {"securityContext.context": "the Flagger container's SecurityContext, rendered with toYaml when securityContext.enabled"},
    "loadtester": {
        "securityContext.context": "the load tester container's SecurityContext, rendered with toYaml when securityContext.enabled",
        "podSecurityContext.context": "the load tester pod's PodSecurityContext, rendered with toYaml when podSecurityContext.enabled",
    },
    "vault": {
        "server.statefulSet.securityContext.pod": "the server pod's PodSecurityContext; a non-empty value replaces the chart's default",
        "server.statefulSet.securityContext.container": "the server container's SecurityContext; a non-empty value replaces the chart's default",
        "server.extraEnvironmentVars": "environment variables of the server container, rendered name: value; values.yaml: 'extraEnvironmentVars is a list of extra environment variables to set with the stateful set'",
    },
    "opentelemetry-collector": {
        "config": "the Collector's own configuration (receivers, processors, exporters, pipelines); values.yaml: "
        "'Base collector configuration', values.schema.json types it as a bare object"
    },
    "loki": {
        "loki.storage_config": "Loki's storage_config section, rendered verbatim into config.yaml (templated toYaml); values.yaml: 'Additional storage config'",
        "loki.limits_config": "Loki's limits_config section, rendered verbatim into config.yaml (templated toYaml); values.yaml lists a few limits as examples",
    },
    "sealed-secrets": {
        "podSecurityContext": 'the controller pod\'s PodSecurityContext, rendered with `omit "enabled" | toYaml` when enabled',
        "containerSecurityContext": 'the controller container\'s SecurityContext, rendered with `omit "enabled" | toYaml` when enabled',
    },
    "velero": {
        "nodeAgent.podSecurityContext": "the node agent pod's PodSecurityContext, rendered with toYaml; default {runAsUser: 0}",
        "configuration.repositoryMaintenanceJob.repositoryConfigData.global": "Velero's maintenance JobConfigs (podLabels, podResources, "
        "priorityClassName, loadAffinity), rendered with toPrettyJson into the ConfigMap key `global`",
    },
}


def defaults(chart: Chart) -> dict[str, Any]:
    """The chart's default values (Istio's `_internal_defaults_do_not_set` already unwrapped)."""
    return reference.chart_values(chart)


def coalesce(defaults: Any, values: Any) -> Any:
    """What Helm validates and renders: our values over the chart's, a null deleting the default."""
    if not isinstance(defaults, dict) or not isinstance(values, dict):
        return values
    merged = dict(defaults)
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = coalesce(defaults.get(key), value)
    return merged


def schema_errors(chart: Chart, values: dict[str, Any]) -> list[str]:
    """Where the merged values break the chart's own values.schema.json (none when it ships none).
    Secret values are recorded as "[secret]" and their type is unknowable, so they take the default's place."""
    schema = reference.chart_schema(chart)
    if schema is None:
        return []
    merged = coalesce(defaults(chart), unmasked(values))
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)(schema)
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '(values)'}: {e.message[:300]}"
        for e in sorted(validator.iter_errors(merged), key=lambda e: list(map(str, e.absolute_path)))
    ]


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
                per_chart: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {chart.name: (addon.values, ("addons", name, "values")) for chart in charts}
            else:
                per_chart = {}
                for key, values in addon.values.items():
                    path: tuple[str, ...] = ("addons", name, "values", key)
                    if key not in {c.name for c in charts}:
                        problems.append(
                            Problem(
                                rel,
                                dotted(path),
                                f"the {name} addon installs the charts {', '.join(c.name for c in charts)}; its values are keyed by chart name",
                            )
                        )
                    elif not isinstance(values, dict):
                        problems.append(Problem(rel, dotted(path), "expected a mapping of Helm values"))
                    else:
                        per_chart[key] = (values, path)
            for chart in charts:
                if chart.name in per_chart:
                    chart_values, chart_path = per_chart[chart.name]
                    problems += [
                        Problem(
                            rel,
                            dotted((*chart_path, *key.split("."))),
                            f"not a value of chart {chart.name} {chart.version}; Helm would ignore it (see the chart's values.yaml)",
                        )
                        for key in unknown_keys(chart, chart_values)
                    ]
    return problems


def charts_of(addon: type) -> list[Chart]:
    """The pinned charts an addon's module installs (the Chart constants it imports from components.versions)."""
    module = sys.modules[addon.__module__]
    return sorted({v for v in vars(module).values() if isinstance(v, Chart)}, key=lambda c: c.name)
