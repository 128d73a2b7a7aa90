"""The committed reference data: complete for what is pinned and rendered, unedited, reproducible."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from components.versions import CHARTS, KARPENTER, Chart
from engine import reference, reference_build
from engine.conformance import crd_schemas, is_core_kind
from engine.reference import REFERENCE, provenance_of, read_json, sha256


def entries() -> list:
    return sorted((REFERENCE / "charts").iterdir()) + [p for p in reference.crd_entries() if not p.name.endswith(".provenance.json")]


def test_every_pinned_chart_has_an_entry_matching_its_pin():
    for chart in CHARTS.values():
        prov = read_json(reference.chart_dir(chart) / reference.PROVENANCE)
        assert chart.name in prov["charts"] and prov["version"] == chart.version and prov["repository"] == chart.repository
        assert reference.chart_values(chart)


def test_a_bumped_pin_without_an_entry_fails_clearly():
    bumped = Chart(KARPENTER.name, "9.9.9", KARPENTER.repository)
    with pytest.raises(reference.MissingReference, match="make reference"):
        reference.chart_values(bumped)


def test_no_entry_is_left_from_a_removed_pin_or_source():
    pinned = {c.reference_folder for c in CHARTS.values()}
    assert {p.name for p in (REFERENCE / "charts").iterdir()} == pinned
    sources = yaml.safe_load((REFERENCE / "sources.yaml").read_text())["crds"]
    assert {p.name for p in reference.crd_entries() if not p.name.endswith(".provenance.json")} == {n.removesuffix(".yaml") + ".json" for n in sources}


def assert_matches_provenance(entry) -> None:
    prov = read_json(provenance_of(entry))
    if entry.is_dir():
        assert set(prov["derived_sha256"]) == {p.name for p in entry.iterdir()} - {reference.PROVENANCE}
        for name, digest in prov["derived_sha256"].items():
            assert sha256((entry / name).read_bytes()) == digest, f"{entry.name}/{name} was edited by hand"
        assert "values.yaml" in prov["upstream_sha256"]
    else:
        assert sha256(entry.read_bytes()) == prov["derived_sha256"], f"{entry.name} was edited by hand"
        origin = yaml.safe_load((REFERENCE / "sources.yaml").read_text())["crds"][prov["file"]]
        assert {k: prov[k] for k in origin} == origin
        assert len(prov["upstream_sha256"]) == 64


@pytest.mark.parametrize("entry", entries(), ids=lambda p: p.name)
def test_entry_is_what_its_provenance_records(entry):
    assert_matches_provenance(entry)


def test_an_edited_entry_is_caught(tmp_path):
    entry = reference.chart_dir(KARPENTER)
    copy = tmp_path / entry.name
    shutil.copytree(entry, copy)
    values = json.loads((copy / reference.VALUES).read_text())
    values["settings"]["clusterName"] = "edited"
    (copy / reference.VALUES).write_text(reference_build.dumps(values))
    with pytest.raises(AssertionError, match="edited by hand"):
        assert_matches_provenance(copy)


def test_a_shared_folder_holds_the_values_of_the_chart_it_is_named_after(tmp_path):
    source = _helm_pull_layout(tmp_path, KARPENTER, 'settings:\n  clusterName: ""\n')
    crd = Chart("karpenter-crd", KARPENTER.version, KARPENTER.repository)
    (source / crd.name).mkdir()
    (source / crd.name / "Chart.yaml").write_text(f"name: {crd.name}\nversion: {crd.version}\n")
    (source / crd.name / "values.yaml").write_text("webhook:\n  enabled: false\n")
    built = reference_build.build(source)
    assert json.loads(built[f"charts/{KARPENTER.reference_folder}/values.json"]) == {"settings": {"clusterName": ""}}


def test_every_rendered_custom_kind_has_a_crd_entry(stack):
    known = set(crd_schemas())
    custom = 0
    for obj in stack.kubernetes_objects():
        api_version, kind = obj.inputs["apiVersion"], obj.inputs["kind"]
        if not is_core_kind(api_version, kind, "1.35"):
            group, _, version = api_version.rpartition("/")
            assert (group, version, kind) in known, obj.urn
            custom += 1
    assert custom > 20


def test_descriptions_go_but_a_property_named_description_stays():
    schema = {
        "description": "prose",
        "type": "object",
        "properties": {
            "description": {"type": "string", "description": "prose"},
            "items": {"type": "array", "items": {"type": "string", "description": "x"}, "maxItems": 3},
        },
        "x-kubernetes-validations": [{"rule": "self.size() > 0", "message": "m"}],
    }
    assert reference_build.strip_descriptions(schema) == {
        "type": "object",
        "properties": {"description": {"type": "string"}, "items": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
        "x-kubernetes-validations": [{"rule": "self.size() > 0", "message": "m"}],
    }


def _helm_pull_layout(tmp_path, chart: Chart, values: str):
    """A folder as `helm pull --untar` leaves it, plus CRD files beside it."""
    source = tmp_path / "src"
    (source / chart.name).mkdir(parents=True)
    (source / chart.name / "Chart.yaml").write_text(f"name: {chart.name}\nversion: {chart.version}\n")
    (source / chart.name / "values.yaml").write_text(values)
    return source


def test_build_from_helm_pull_charts_is_deterministic_and_keeps_what_source_lacks(tmp_path):
    source = _helm_pull_layout(tmp_path, KARPENTER, '# comment\nsettings:\n  clusterName: ""\ncreated: 2026-01-01\n')
    first, second = reference_build.build(source), reference_build.build(source)
    assert first == second
    folder = f"charts/{KARPENTER.reference_folder}"
    assert json.loads(first[f"{folder}/values.json"]) == {"settings": {"clusterName": ""}, "created": "2026-01-01"}
    prov = json.loads(first[f"{folder}/{reference.PROVENANCE}"])
    assert prov["upstream_sha256"]["values.yaml"] == sha256((source / KARPENTER.name / "values.yaml").read_bytes())
    # Entries the source does not hold are the committed ones, unchanged.
    other = next(c for c in CHARTS.values() if c.reference_folder != KARPENTER.reference_folder)
    assert first[f"charts/{other.reference_folder}/values.json"] == (reference.chart_dir(other) / "values.json").read_text()
    assert reference_build.differences(first, REFERENCE) == [
        f"missing or different: {folder}/{reference.PROVENANCE}",
        f"missing or different: {folder}/values.json",
    ]


def test_istio_defaults_are_unwrapped():
    assert reference_build.derive_values("_internal_defaults_do_not_set:\n  service:\n    type: LoadBalancer\nother: 1\n") == {
        "service": {"type": "LoadBalancer"},
        "other": 1,
    }


def test_a_source_with_the_wrong_version_is_refused(tmp_path):
    source = _helm_pull_layout(tmp_path, Chart(KARPENTER.name, "0.0.1", KARPENTER.repository), "a: 1\n")
    current = tmp_path / "current"
    shutil.copytree(REFERENCE, current)
    shutil.rmtree(current / "charts" / KARPENTER.reference_folder)
    with pytest.raises(reference_build.SourceError, match=KARPENTER.reference_folder):
        reference_build.build(source, current)
    assert reference_build.main([str(tmp_path / "absent")]) == 2
