"""Flagger: Istio provider, the Prometheus the stack really runs, the load tester, and its requirements."""

from __future__ import annotations

import pytest

from components.addons import flagger, prometheus
from components.spec import SpecError, load
from components.versions import FLAGGER, KUBE_PROMETHEUS_STACK, LOADTESTER
from engine import chart_values
from engine.stacks import run

RELEASE = "kubernetes:helm.sh/v3:Release"


def release(rec, name):
    [found] = [r for r in rec.of_type(RELEASE) if r.inputs["name"] == name]
    return found


def test_flagger_uses_istio_and_the_stacks_prometheus(stack):
    inputs = release(stack, "flagger").inputs
    assert (inputs["chart"], inputs["version"], inputs["namespace"]) == ("flagger", FLAGGER.version, flagger.NAMESPACE)
    values = inputs["values"]
    assert values["meshProvider"] == "istio"
    assert values["metricsServer"] == prometheus.PROMETHEUS_URL == "http://kube-prometheus-stack-prometheus.monitoring:9090"


def test_prometheus_url_is_the_service_the_release_creates(stack):
    # kube-prometheus-stack names the service <fullname>-prometheus, fullname being fullnameOverride
    # truncated to 26 characters, on prometheus.service.port.
    kps = release(stack, prometheus.RELEASE).inputs
    fullname = kps["values"]["fullnameOverride"][:26].rstrip("-")
    port = chart_values.defaults(KUBE_PROMETHEUS_STACK)["prometheus"]["service"]["port"]
    assert prometheus.PROMETHEUS_URL == f"http://{fullname}-prometheus.{kps['namespace']}:{port}"


def test_crds_come_from_the_charts_crds_directory(stack):
    # crd.create is for Helm 2; Helm 3 installs crds/ (the release does not skip CRDs).
    inputs = release(stack, "flagger").inputs
    assert inputs["values"]["crd"] == {"create": False}
    assert not inputs.get("skipCrds")


def test_flagger_metrics_are_scraped_past_the_sidecar(stack):
    values = release(stack, "flagger").inputs["values"]
    # honorLabels: flagger_canary_* keep the canary's namespace, which the release alerts select on.
    assert values["podMonitor"] == {"enabled": True, "honorLabels": True}
    assert values["podAnnotations"]["traffic.sidecar.istio.io/excludeInboundPorts"] == str(flagger.METRICS_PORT)


def test_high_availability_follows_the_settings(dev, prod):
    for rec, replicas in ((dev, 1), (prod, 2)):
        values = release(rec, "flagger").inputs["values"]
        assert values["leaderElection"] == {"enabled": replicas > 1, "replicaCount": replicas}
        assert values["podDisruptionBudget"] == {"enabled": replicas > 1}
        assert release(rec, flagger.LOADTESTER_RELEASE).inputs["values"]["replicaCount"] == replicas


def test_every_value_exists_in_the_chart_defaults(stack):
    assert chart_values.unknown_keys(FLAGGER, release(stack, "flagger").inputs["values"]) == []
    assert chart_values.unknown_keys(LOADTESTER, release(stack, flagger.LOADTESTER_RELEASE).inputs["values"]) == []


def test_flagger_waits_for_istio_and_prometheus(stack):
    deps = set(release(stack, "flagger").dependencies)
    for name in ("istio-base", "istiod", "istio-ingressgateway", prometheus.RELEASE):
        assert release(stack, name).urn in deps, name


# -- the load tester --------------------------------------------------------------------------


def test_loadtester_release_and_the_url_canaries_call(stack):
    inputs = release(stack, flagger.LOADTESTER_RELEASE).inputs
    assert (inputs["chart"], inputs["version"], inputs["namespace"]) == ("loadtester", LOADTESTER.version, flagger.LOADTESTER_NAMESPACE)
    # The release name contains the chart name, so the service is the release, on the chart's port 80.
    assert "loadtester" in flagger.LOADTESTER_RELEASE
    assert chart_values.defaults(LOADTESTER)["service"]["port"] == 80
    assert flagger.LOADTESTER_URL == "http://flagger-loadtester.flagger-loadtester/"
    assert flagger.LOADTESTER_POD_LABELS == {"app": "loadtester"}


def test_loadtester_runs_as_its_own_tokenless_service_account(stack):
    values = release(stack, flagger.LOADTESTER_RELEASE).inputs["values"]
    assert values["serviceAccountName"] == flagger.LOADTESTER_SERVICE_ACCOUNT
    account = stack.manifest("ServiceAccount", flagger.LOADTESTER_SERVICE_ACCOUNT, flagger.LOADTESTER_NAMESPACE)
    assert account["automountServiceAccountToken"] is False
    account_urn = stack.named("flagger-loadtester", "kubernetes:core/v1:ServiceAccount").urn
    assert account_urn in release(stack, flagger.LOADTESTER_RELEASE).dependencies


def test_both_namespaces_are_in_the_mesh(stack):
    for namespace in (flagger.NAMESPACE, flagger.LOADTESTER_NAMESPACE):
        labels = stack.manifest("Namespace", namespace)["metadata"]["labels"]
        assert labels["istio-injection"] == "enabled"
        # The Istio CNI agent sets up the redirection: injected pods need no NET_ADMIN/NET_RAW.
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_only_flagger_may_call_the_loadtester(stack):
    policy = stack.manifest("AuthorizationPolicy", flagger.LOADTESTER_RELEASE, flagger.LOADTESTER_NAMESPACE)["spec"]
    assert policy == {
        "selector": {"matchLabels": flagger.LOADTESTER_POD_LABELS},
        "action": "ALLOW",
        "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/flagger-system/sa/flagger"]}}]}],
    }


# -- requirements -----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["istio", "prometheus"])
def test_flagger_without_a_requirement_is_rejected(scratch, missing):
    def edit(d):
        d["addons"][missing].update(enabled=False)
        # external-dns needs Istio too, and its requirement would be reported first.
        d["addons"]["external-dns"].update(enabled=False)

    scratch.edit("stacks/dev.yaml", edit)
    with pytest.raises(
        SpecError, match=rf"^stacks/dev.yaml: addons.flagger: requires {missing}, which is not enabled in this stack; enable it or turn flagger off$"
    ):
        load("dev", scratch.root)


def test_flagger_without_istio_declared_at_all_is_rejected(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: (d["addons"].pop("istio"), d["addons"].pop("external-dns")))
    with pytest.raises(SpecError, match=r"addons.flagger: requires istio"):
        load("dev", scratch.root)


def test_turning_flagger_off_removes_only_flagger(scratch):
    # Dev canaries its exposed and critical services: without Flagger they run without canaries.
    for name in ("orders", "payment", "storefront"):
        scratch.edit(scratch.service_file(name), lambda d: d["envs"].setdefault("dev", {}).update(canary={"enabled": False}))
    dev = run("dev", scratch.root)
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["flagger"].update(enabled=False))
    without = run("dev", scratch.root)
    removed = {r.urn for r in dev} - {r.urn for r in without}
    assert removed and all("platform:addons:Flagger" in urn for urn in removed), sorted(removed)[:5]
    assert {r.urn for r in without} <= {r.urn for r in dev}
