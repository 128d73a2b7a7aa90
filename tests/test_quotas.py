"""Cost and quotas: Kubecost on the platform Prometheus, and per-team budgets enforced twice
(the loader refuses services that cannot fit; ResourceQuota and LimitRange enforce it in the cluster)."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT

from components.addons import kubecost, prometheus
from components.spec import SpecError, load
from components.spec.stack import ROLLOUT_SURGE, SIDECAR_REQUESTS, cpu_millis, format_memory, memory_bytes
from components.versions import ISTIOD, KUBECOST
from engine import chart_values, reference
from engine.conformance import errors
from engine.render import summary
from engine.stacks import run

RELEASE = "kubernetes:helm.sh/v3:Release"
TEAMS = ("web", "checkout", "catalog", "messaging")


# -- Kubecost -----------------------------------------------------------------------------------
def test_kubecost_reads_the_platform_prometheus(stack):
    release = stack.named("kubecost-kubecost", RELEASE)
    assert (release.inputs["chart"], release.inputs["version"], release.inputs["namespace"]) == ("cost-analyzer", KUBECOST.version, kubecost.NAMESPACE)
    values = release.inputs["values"]
    assert values["global"]["prometheus"] == {"enabled": False, "fqdn": prometheus.PROMETHEUS_URL}
    assert values["serviceMonitor"]["enabled"] is True and values["prometheusRule"]["enabled"] is True
    assert (
        values["prometheus"]["server"]["global"]["external_labels"]["cluster_id"]
        == {"dev": "shop-dev", "staging": "shop-staging", "prod": "shop-prod"}[stack.stack]
    )
    assert not any(values["reporting"].values())
    assert chart_values.unknown_keys(KUBECOST, values) == []


def test_kubecost_keys_are_the_charts(stack):
    defaults = chart_values.defaults(KUBECOST)
    # The chart would install its own Prometheus and Grafana; these are the switches that stop it.
    assert defaults["global"]["prometheus"]["enabled"] is True and "fqdn" in defaults["global"]["prometheus"]
    assert defaults["global"]["grafana"]["enabled"] is True
    assert "cluster_id" in defaults["prometheus"]["server"]["global"]["external_labels"]


def test_kubecost_is_pinned_to_the_reference_snapshot():
    assert (reference.chart_dir(KUBECOST) / reference.VALUES).is_file()
    assert KUBECOST.repository == "https://kubecost.github.io/cost-analyzer/"


def test_kubecost_waits_for_prometheus(stack):
    release = stack.named("kubecost-kubecost", RELEASE)
    assert stack.named("prometheus-kube-prometheus-stack", RELEASE).urn in release.dependencies


def test_kubecost_requires_prometheus(scratch):
    def edit(d):
        d["addons"]["prometheus"].update(enabled=False)
        d["addons"]["flagger"].update(enabled=False)  # which requires prometheus too

    scratch.edit("stacks/dev.yaml", edit)
    with pytest.raises(SpecError, match=r"stacks/dev.yaml: addons.kubecost: requires prometheus, which is not enabled"):
        load("dev", scratch.root)


# -- quotas in the cluster ---------------------------------------------------------------------
def test_every_team_namespace_has_its_budget(stack):
    budgets = yaml.safe_load((ROOT / "stacks" / f"{stack.stack}.yaml").read_text())["teams"]
    for team in TEAMS:
        quota = stack.manifest("ResourceQuota", "team-budget", team)
        b = budgets[team]
        assert quota["spec"] == {"hard": {"requests.cpu": b["cpu"], "requests.memory": b["memory"], "pods": str(b["pods"])}}
        assert errors(quota, "1.35") == []


def test_limit_range_gives_unsized_containers_the_service_defaults(stack):
    defaults = load(stack.stack, ROOT).spec.service_defaults.resources
    for team in TEAMS:
        limits = stack.manifest("LimitRange", "container-defaults", team)
        assert limits["spec"]["limits"] == [
            {
                "type": "Container",
                "defaultRequest": {"cpu": defaults.requests.cpu, "memory": defaults.requests.memory},
                "default": {"memory": defaults.limits.memory},
            }
        ]
        assert errors(limits, "1.35") == []


# -- the worst case the quota must admit --------------------------------------------------------
def test_worst_case_counts_surge_canaries_and_sidecars():
    usage = load("prod", ROOT).spec.team_usage(load("prod", ROOT).services)
    # orders: max 10, canary -> 10 canary + 10 primary + 3 surge; 100m + 100m sidecar each.
    assert usage["checkout"].services["orders"] == (23 * 200, 23 * (128 + 128) * 2**20, 23)
    # payment: max 8, canary; 250m/256Mi + sidecar.
    assert usage["checkout"].services["payment"] == (18 * 350, 18 * 384 * 2**20, 18)
    # inventory: max 6, no canary -> 6 + 2 surge.
    assert usage["catalog"].services["inventory"] == (8 * 200, 8 * 256 * 2**20, 8)
    assert usage["checkout"].pods == 41


def test_model_assumptions_match_what_is_deployed(prod):
    # The surge the quota admits is the Deployments' maxSurge.
    strategy = prod.manifest("Deployment", "inventory", "catalog")["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxSurge"] == f"{round(ROLLOUT_SURGE * 100)}%"
    # The sidecar requests are Istio's chart defaults, and the istio addon does not change them.
    proxy = chart_values.defaults(ISTIOD)["global"]["proxy"]["resources"]["requests"]
    assert (proxy["cpu"], proxy["memory"]) == SIDECAR_REQUESTS
    istiod = prod.named("istio-istiod", RELEASE).inputs["values"]
    assert "resources" not in istiod.get("global", {}).get("proxy", {})


def test_quantities():
    assert [cpu_millis(q) for q in ("250m", "2", "0.5", "1.25")] == [250, 2000, 500, 1250]
    assert [memory_bytes(q) for q in ("128Mi", "1Gi", "1G", "512", "64Ki")] == [128 * 2**20, 2**30, 10**9, 512, 64 * 2**10]
    assert [format_memory(b) for b in (256 * 2**20, 2**30, int(16.875 * 2**30))] == ["256Mi", "1Gi", "16.88Gi"]


def test_summary_shows_each_team_against_its_quota(prod):
    text = summary(prod, load("prod", ROOT))
    assert "## Team quotas" in text
    assert "| checkout | orders, payment | 10.9 / 16 | 12.5Gi / 16Gi | 41 / 60 |" in text
    assert "| web | storefront | 16.2 / 20 | 16.88Gi / 24Gi | 27 / 40 |" in text


# -- refused declarations -------------------------------------------------------------------------
def test_services_over_the_quota_are_refused(scratch):
    scratch.edit("stacks/prod.yaml", lambda d: d["teams"]["checkout"].update(cpu="8"))
    with pytest.raises(SpecError) as err:
        load("prod", scratch.root)
    msg = str(err.value)
    assert msg.startswith("stacks/prod.yaml: teams.checkout: the team's services may request more than its quota: cpu 10.9 > 8 ")
    assert "orders 4.6 cpu / 5.75Gi / 23 pods, payment 6.3 cpu / 6.75Gi / 18 pods" in msg


def test_a_service_growing_past_the_quota_is_refused(scratch):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(replicas={"min": 2, "max": 50}))
    with pytest.raises(SpecError) as err:
        load("prod", scratch.root)
    assert "stacks/prod.yaml: teams.catalog: the team's services may request more than its quota: cpu 12.6 > 12; memory 15.75Gi > 14Gi; pods 63 > 40" in str(
        err.value
    )


def test_a_canary_counts_double(scratch):
    scratch.edit("stacks/prod.yaml", lambda d: d["teams"]["catalog"].update(cpu="2.5"))
    load("prod", scratch.root)  # inventory without a canary: 8 pods, 1.6 cpu
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d["envs"]["prod"].update(canary={"enabled": True}))
    with pytest.raises(SpecError, match=r"stacks/prod.yaml: teams.catalog: the team's services may request more than its quota: cpu 2.8 > 2.5 "):
        load("prod", scratch.root)


def test_a_team_without_a_budget_is_refused(scratch):
    scratch.add_service({"name": "reviews", "team": "catalog-ml", "image": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/reviews:1.0.0", "port": 8080})
    with pytest.raises(SpecError) as err:
        load("dev", scratch.root)
    assert "stacks/dev.yaml: teams: team 'catalog-ml' runs reviews but has no budget; add teams.catalog-ml with cpu, memory and pods" in str(err.value)


@pytest.mark.parametrize(
    "budget, problem",
    [
        ({"cpu": "lots", "memory": "4Gi", "pods": 10}, "teams.checkout.cpu: String should match pattern"),
        ({"cpu": "4", "memory": "4GB", "pods": 10}, "teams.checkout.memory: String should match pattern"),
        ({"cpu": "4", "memory": "4Gi"}, "teams.checkout: .*cpu, memory and pods make one budget: set all three or none"),
    ],
)
def test_budget_shape(scratch, budget, problem):
    scratch.edit("stacks/dev.yaml", lambda d: d["teams"].update(checkout=budget))
    with pytest.raises(SpecError, match=f"stacks/dev.yaml: {problem}"):
        load("dev", scratch.root)


def test_a_budget_for_a_team_without_services_creates_its_room_and_no_workload(scratch):
    # Room first, services later (docs/platform.md#a-room-for-every-declared-team).
    scratch.edit("stacks/dev.yaml", lambda d: d["teams"].update(search={"cpu": "1", "memory": "1Gi", "pods": 5, "alerts": dict(d["teams"]["web"]["alerts"])}))
    rec = run("dev", scratch.root)
    kinds = {r.kind for r in rec.kubernetes_objects() if r.metadata.get("namespace") == "search" or r.metadata.get("name") == "search"}
    assert {"Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy"} <= kinds
    assert rec.manifest("ResourceQuota", "team-budget", "search")["spec"]["hard"]["requests.cpu"] == "1"
    assert not kinds & {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
