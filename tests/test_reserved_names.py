"""Names the platform uses in a team namespace are reserved, and the reserved set is what the program
really renders there (issue 24, class 4); a clash the rules did not foresee, or any error raised while
rendering, is still one clean line and exit 2, never a traceback."""

from __future__ import annotations

import pytest
from tools import custom_resource

from components.spec import names
from engine.preview import main as preview
from engine.recording import Recording, Resource
from engine.runtime import ProgramError, object_clashes
from engine.stacks import run

TEAM_COMPONENT = "platform:workloads:TeamNamespace"


def team_room_objects(rec) -> set[tuple[str, str]]:
    """(kind, name) of every object the team-namespace component renders, and the Secrets it makes others write."""
    found = set()
    for r in rec.kubernetes_objects():
        component = rec.component_of(r)
        # The Namespace itself is cluster-scoped (names.py derives it from the team).
        if component is not None and component.type == TEAM_COMPONENT and r.kind != "Namespace":
            found.add((r.kind, r.metadata["name"]))
            secret = r.inputs.get("spec", {}).get("secretName")
            if r.kind == "Certificate" and secret:
                found.add(("Secret", secret))
    return found


def test_every_object_the_platform_puts_in_a_team_namespace_is_reserved(stack):
    rendered = team_room_objects(stack)
    assert ("NetworkPolicy", "default-deny") in rendered and ("SecretStore", "vault") in rendered
    reserved = {(kind, name) for kind, name, _, _ in names.TEAM_OBJECTS}
    assert rendered - reserved == set(), "the team namespace renders objects whose names no declaration rule reserves"


def test_a_new_object_in_the_team_namespace_would_be_caught(stack, monkeypatch):
    monkeypatch.setattr(names, "TEAM_OBJECTS", tuple(o for o in names.TEAM_OBJECTS if o[1] != "team-budget"))
    reserved = {(kind, name) for kind, name, _, _ in names.TEAM_OBJECTS}
    assert team_room_objects(stack) - reserved == {("ResourceQuota", "team-budget")}


def test_a_clash_no_rule_foresaw_is_one_line_and_exit_2(scratch, capsys, monkeypatch):
    # Without the reservation, a service named like the namespace's default-deny policy renders a second one.
    monkeypatch.setattr(names, "TEAM_OBJECTS", ())
    # No dependsOn: other teams' consent names the caller, and is not what this test is about.
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d.update(name="default-deny", dependsOn=[]))
    with pytest.raises(ProgramError, match="the NetworkPolicy 'default-deny' in namespace web is declared twice"):
        run("dev", scratch.root)
    out = scratch.root / "out"
    assert preview(["dev", "--root", str(scratch.root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "declared twice" in err and not out.exists()


def test_object_clashes_compare_group_kind_namespace_and_name():
    def obj(urn: str, api: str, kind: str, name: str, namespace: str = "web") -> Resource:
        return custom_resource(urn, f"kubernetes:{api}:{kind}", {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace}})

    same = Recording(stack="dev", resources=[obj("a", "v1", "ConfigMap", "x"), obj("b", "v1", "ConfigMap", "x")], outputs={})
    assert object_clashes(same) == ["the ConfigMap 'x' in namespace web is declared twice, by a and b; rename one of them"]
    distinct = [obj("a", "v1", "ConfigMap", "x"), obj("b", "v1", "Secret", "x"), obj("c", "v1", "ConfigMap", "x", "other")]
    assert object_clashes(Recording(stack="dev", resources=distinct, outputs={})) == []


def test_an_error_while_rendering_is_one_line_and_exit_2(scratch, capsys, monkeypatch):
    def broken(*_args, **_kwargs):
        raise KeyError("requests.cpu")

    # A helper the team namespaces call while the program renders.
    monkeypatch.setattr("components.workloads.team.quota_spec", broken)
    out = scratch.root / "out"
    code = preview(["dev", "--root", str(scratch.root), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "Traceback" not in err and "the program failed while rendering the stack: KeyError" in err and len(err.strip().splitlines()) <= 2
