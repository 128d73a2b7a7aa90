"""The addon mechanism: registry, order, per-stack switches, pinned charts and checked values."""

from __future__ import annotations

import pytest

from components.addons import discover
from components.addons.registry import install_order
from components.spec import SpecError, load
from components.versions import CERT_MANAGER, CHARTS
from engine import chart_values, reference
from engine.stacks import run

RELEASE = "kubernetes:helm.sh/v3:Release"


def chart_of(release) -> str:
    return release.inputs["chart"].rsplit("/", 1)[-1]


def test_every_pin_has_a_reference_folder():
    for chart in CHARTS.values():
        assert (reference.chart_dir(chart) / reference.VALUES).is_file(), chart.reference_folder


def test_every_release_is_pinned_to_a_reference_version(stack):
    releases = stack.of_type(RELEASE)
    assert releases
    for release in releases:
        chart = CHARTS[chart_of(release)]
        assert release.inputs["version"] == chart.version
        if not chart.oci:
            assert release.inputs["repositoryOpts"] == {"repo": chart.repository}


def test_every_value_exists_in_the_chart_defaults(stack):
    for release in stack.of_type(RELEASE):
        chart = CHARTS[chart_of(release)]
        assert chart_values.unknown_keys(chart, release.inputs.get("values") or {}) == [], release.name


def test_free_form_maps_carry_their_reason():
    for chart, paths in chart_values.FREE_FORM.items():
        assert chart in CHARTS
        for path, reason in paths.items():
            assert reason.strip(), f"{chart}: {path} needs a reason"


def test_install_order_follows_requirements():
    requires = {"a": (), "b": ("a",), "c": ("b", "a"), "d": ()}
    assert install_order(["c", "d", "b", "a"], requires) == ["a", "b", "c", "d"]


def test_cycle_is_a_clear_error():
    with pytest.raises(ValueError, match="addon dependency cycle: a -> b -> a"):
        install_order(["a", "b"], {"a": ("b",), "b": ("a",)})


def test_missing_requirement_is_a_clear_error():
    with pytest.raises(ValueError, match="b requires a, which is not enabled"):
        install_order(["b"], {"a": (), "b": ("a",)})


def test_every_registered_addon_requires_only_registered_addons():
    addons = discover()
    for cls in addons.values():
        assert set(cls.requires) <= set(addons)
        assert cls.__module__.startswith("components.addons.")


def test_unknown_addon_is_rejected(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"].update(prometheuss={}))
    with pytest.raises(SpecError, match=r"stacks/dev.yaml: addons.prometheuss: unknown addon 'prometheuss'; known addons: .*prometheus"):
        load("dev", scratch.root)


def test_bad_addon_setting_names_its_path(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["prometheus"]["settings"].update(retention="forever"))
    with pytest.raises(SpecError, match=r"stacks/dev.yaml: addons.prometheus.settings.retention: String should match pattern"):
        load("dev", scratch.root)


def test_requirement_of_an_enabled_addon_must_be_enabled(scratch):
    addons = discover()
    # The first in name order: the stack model reports the first unmet requirement by addon name.
    dependent = min(name for name, cls in addons.items() if cls.requires)
    required = addons[dependent].requires[0]

    def edit(d):
        d["addons"].setdefault(dependent, {})["enabled"] = True
        d["addons"].setdefault(required, {})["enabled"] = False

    scratch.edit("stacks/dev.yaml", edit)
    with pytest.raises(SpecError, match=rf"addons.{dependent}: requires .*{required}.* not enabled in this stack"):
        load("dev", scratch.root)


def test_turning_an_addon_off_removes_it_and_nothing_else(scratch, dev):
    addons = discover()
    spec = load("dev", scratch.root).spec
    dependents = {name for name, cls in addons.items() if spec.addon_enabled(name) and cls.requires}
    # An addon nothing else in the stack requires, and that no service feature needs.
    needed_by_services = {"external-secrets", "keda", "istio", "flagger"}
    leaf = next(
        name for name in spec.addons if spec.addon_enabled(name) and name not in needed_by_services and not any(name in addons[d].requires for d in dependents)
    )
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"][leaf].update(enabled=False))
    without = run("dev", scratch.root)
    removed = {r.urn for r in dev} - {r.urn for r in without}
    assert removed and all(f"platform:addons:{addons[leaf].__name__}" in urn for urn in removed), sorted(removed)[:5]
    assert {r.urn for r in without} <= {r.urn for r in dev}


def test_every_release_passes_the_charts_own_values_schema(stack):
    checked = 0
    for release in stack.of_type(RELEASE):
        chart = CHARTS[chart_of(release)]
        assert chart_values.schema_errors(chart, release.inputs.get("values") or {}) == [], release.name
        checked += reference.chart_schema(chart) is not None
    assert checked >= 2  # cert-manager, vault and the collectors ship a schema


def test_a_value_of_the_wrong_type_breaks_the_charts_schema():
    assert chart_values.schema_errors(CERT_MANAGER, {"replicaCount": 1}) == []
    assert any(e.startswith("replicaCount:") for e in chart_values.schema_errors(CERT_MANAGER, {"replicaCount": "three"}))
