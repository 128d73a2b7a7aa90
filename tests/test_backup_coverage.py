"""Every stateful thing in the render is backed up by a schedule or a snapshot job; leaving one out fails."""

from __future__ import annotations

import copy
import dataclasses

from backup_coverage import stateful, uncovered
from conftest import ROOT

from components.addons import velero
from engine.recording import Recording
from engine.stacks import run


def edited(rec: Recording, kind: str, name: str, change) -> Recording:
    """A copy of the recording with one Kubernetes object changed (or dropped when `change` returns None)."""
    resources = []
    for r in rec.resources:
        if r.is_kubernetes_object and r.kind == kind and r.metadata.get("name") == name:
            inputs = change(copy.deepcopy(r.inputs))
            if inputs is None:
                continue
            r = dataclasses.replace(r, inputs=inputs)
        resources.append(r)
    return Recording(rec.stack, resources, rec.outputs)


def without_namespace(namespace: str):
    def change(inputs):
        included = inputs["spec"]["template"]["includedNamespaces"]
        inputs["spec"]["template"]["includedNamespaces"] = [n for n in included if n != namespace]
        return inputs

    return change


def test_every_stateful_thing_is_covered(stack):
    found = stateful(stack)
    # What the render holds: Vault's raft volume, the sealing keys, Prometheus' and Loki's volumes.
    assert {"vault", "sealed-secrets", "monitoring", "logging"} <= set(found)
    assert "vault raft storage" in found["vault"] and found["sealed-secrets"] == ["sealing keys"]
    assert uncovered(stack) == {}


def test_prod_finds_jaegers_volume(prod):
    assert stateful(prod)["tracing"] == ["PersistentVolumeClaim jaeger-badger"]


def test_a_namespace_left_out_of_the_schedules_is_caught(prod):
    rec = edited(prod, "Schedule", "platform", without_namespace("monitoring"))
    assert uncovered(rec) == {"monitoring": ["release kube-prometheus-stack: prometheus.prometheusSpec.storageSpec"]}
    rec = edited(prod, "Schedule", "platform", without_namespace("tracing"))
    assert uncovered(rec) == {"tracing": ["PersistentVolumeClaim jaeger-badger"]}


def test_a_team_left_out_is_caught_once_it_holds_state(prod):
    team = prod.manifest("Schedule", "teams", "velero")["spec"]["template"]["includedNamespaces"][0]

    def claim(inputs):
        return {**inputs, "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": team}}

    volume_in_team = edited(prod, "Schedule", "teams", lambda i: i)
    volume_in_team.resources.append(
        dataclasses.replace(
            next(r for r in prod.kubernetes_objects() if r.kind == "ConfigMap"), urn="urn:test:data", inputs=claim({"apiVersion": "v1", "spec": {}})
        )
    )
    volume_in_team.__post_init__()
    assert uncovered(volume_in_team) == {}
    assert uncovered(edited(volume_in_team, "Schedule", "teams", without_namespace(team))) == {team: ["PersistentVolumeClaim data"]}


def test_vault_needs_its_snapshot_job(stack):
    rec = edited(stack, "CronJob", "vault-snapshot", lambda inputs: None)
    assert uncovered(rec) == {"vault": ["vault raft storage"]}


def test_sealing_keys_need_their_schedule(stack):
    assert uncovered(edited(stack, "Schedule", "sealing-keys", lambda inputs: None)) == {"sealed-secrets": ["sealing keys"]}

    def any_secret(inputs):
        inputs["spec"]["template"].pop("labelSelector")
        return inputs

    assert uncovered(edited(stack, "Schedule", "sealing-keys", any_secret)) == {"sealed-secrets": ["sealing keys"]}


def test_a_stateful_addon_left_out_of_the_platform_schedule_fails(monkeypatch):
    # A new addon with a volume that nobody added to PLATFORM_STATE: simulated by taking one out.
    monkeypatch.delitem(velero.PLATFORM_STATE, "prometheus")
    rec = run("dev", ROOT)
    assert "monitoring" not in rec.manifest("Schedule", "platform", "velero")["spec"]["template"]["includedNamespaces"]
    assert set(uncovered(rec)) == {"monitoring"}
