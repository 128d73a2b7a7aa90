"""Argo CD: HA in prod, not public, a locked-down AppProject per team, one ApplicationSet over
cluster x team, and the gitops-bridge cluster secret carrying every addon's metadata."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

from components.addons import argocd
from components.spec import SpecError, load
from components.versions import ARGO_CD
from engine.mocks import ACCOUNT
from engine.stacks import run

RELEASE = "kubernetes:helm.sh/v3:Release"
REPO = "https://github.com/acme-shop/{team}-deploy.git"


def chart_values(rec) -> dict:
    release = rec.named("argocd-argocd", RELEASE)
    assert (release.inputs["version"], release.inputs["namespace"]) == (ARGO_CD.version, "argocd")
    return release.inputs["values"]


def teams(rec) -> list[str]:
    return sorted({s.team for s in load(rec.stack, ROOT).services})


def cluster_secret(rec) -> dict:
    return rec.manifest("Secret", load(rec.stack, ROOT).spec.cluster.name, "argocd")


def render(template: str, params: dict) -> str:
    """The ApplicationSet's Go templates, filled the way the controller fills them."""
    return re.sub(r"\{\{\s*\.([\w.]+)\s*\}\}", lambda m: _lookup(params, m[1]), template)


def _lookup(params: dict, path: str) -> str:
    value = params
    for part in path.split("."):
        value = value[part]
    return value


def test_ha_in_prod_as_the_chart_documents_it(dev, prod):
    p, d = chart_values(prod), chart_values(dev)
    assert p["redis-ha"] == {"enabled": True} and d["redis-ha"] == {"enabled": False}
    assert p["controller"]["replicas"] == d["controller"]["replicas"] == 1
    for component in ("server", "repoServer", "applicationSet"):
        assert p[component]["replicas"] == 2 and p[component]["pdb"] == {"enabled": True, "maxUnavailable": 1}
        assert d[component]["replicas"] == 1 and "pdb" not in d[component]


def test_server_is_not_public(stack):
    v = chart_values(stack)
    assert v["server"]["service"] == {"type": "ClusterIP"} and v["server"]["ingress"] == {"enabled": False}
    assert v["global"]["domain"] == load(stack.stack, ROOT).spec.addons["argocd"].settings["host"]
    assert not [r for r in stack.kubernetes_objects() if r.metadata.get("namespace") == "argocd" and r.kind in ("Ingress", "Service")]


def test_one_locked_down_project_per_team(stack):
    projects = {r.metadata["name"]: r.inputs["spec"] for r in stack.kubernetes_objects() if r.kind == "AppProject"}
    assert sorted(projects) == teams(stack) and len(projects) >= 3
    for team, spec in projects.items():
        assert spec["sourceRepos"] == [REPO.format(team=team)]
        assert spec["destinations"] == [{"server": "https://kubernetes.default.svc", "namespace": team}]
        assert spec["clusterResourceBlacklist"] == [{"group": "*", "kind": "*"}] and spec["clusterResourceWhitelist"] == []
        assert spec["namespaceResourceWhitelist"] == [
            {"group": "apps", "kind": "StatefulSet"},
            {"group": "batch", "kind": "Job"},
            {"group": "batch", "kind": "CronJob"},
        ]


def platform_kinds_in_team_namespaces(stack) -> set[tuple[str, str]]:
    """Every (group, kind) the program registers in a team namespace, derived from the recording."""
    found = set()
    for r in stack.kubernetes_objects():
        if r.metadata.get("namespace") in teams(stack):
            group = r.inputs["apiVersion"].rpartition("/")[0] if "/" in r.inputs.get("apiVersion", "") else ""
            found.add((group, r.kind))
    return found


def test_no_platform_created_kind_is_syncable_by_a_team(stack):
    from components.workloads.kinds import PLATFORM_KINDS

    created = platform_kinds_in_team_namespaces(stack)
    assert {("networking.k8s.io", "NetworkPolicy"), ("external-secrets.io", "SecretStore"), ("", "ResourceQuota")} <= created
    # The declared set covers everything the program creates there...
    assert created <= PLATFORM_KINDS, f"kinds created in team namespaces but not in PLATFORM_KINDS: {sorted(created - PLATFORM_KINDS)}"
    # ...and none of it is on any team's whitelist.
    for project in (r.inputs["spec"] for r in stack.kubernetes_objects() if r.kind == "AppProject"):
        syncable = {(k["group"], k["kind"]) for k in project["namespaceResourceWhitelist"]}
        assert not syncable & created
        assert not syncable & PLATFORM_KINDS
        assert ("", "Secret") not in syncable and not any(g == "rbac.authorization.k8s.io" for g, _ in syncable)


def test_application_set_yields_one_permitted_application_per_team(stack):
    appset = stack.manifest("ApplicationSet", "team-deployments", "argocd")["spec"]
    secret = cluster_secret(stack)["metadata"]
    clusters, teams_gen = appset["generators"][0]["matrix"]["generators"]
    # The cluster generator selects this cluster's secret by its labels.
    selector = clusters["clusters"]["selector"]["matchLabels"]
    assert selector and all(secret["labels"][k] == v for k, v in selector.items())
    assert [e["team"] for e in teams_gen["list"]["elements"]] == teams(stack)
    projects = {r.metadata["name"]: r.inputs["spec"] for r in stack.kubernetes_objects() if r.kind == "AppProject"}
    template = appset["template"]["spec"]
    assert appset["goTemplate"] is True and template["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    for team in teams(stack):
        params = {"team": team, "name": secret["name"], "server": "https://kubernetes.default.svc", "metadata": {"labels": secret["labels"]}}
        project = projects[render(template["project"], params)]
        source, destination = template["source"], template["destination"]
        assert render(source["repoURL"], params) in project["sourceRepos"]
        assert render(source["path"], params) == f"envs/{stack.stack}"
        assert {"server": render(destination["server"], params), "namespace": render(destination["namespace"], params)} in project["destinations"]


def test_cluster_secret_in_the_gitops_bridge_form(stack):
    decl = load(stack.stack, ROOT)
    meta = cluster_secret(stack)["metadata"]
    labels, notes = meta["labels"], meta["annotations"]
    assert labels["argocd.argoproj.io/secret-type"] == "cluster"
    assert (labels["environment"], labels["cluster_name"], labels["aws_region"]) == (decl.environment, decl.spec.cluster.name, "eu-west-1")
    enabled = sorted(name for name, a in decl.spec.addons.items() if a.enabled)
    assert sorted(k for k in labels if k.startswith("enable_")) == sorted(f"enable_{n.replace('-', '_')}" for n in enabled)
    assert all(labels[f"enable_{n.replace('-', '_')}"] == "true" for n in enabled)
    assert (notes["aws_cluster_name"], notes["aws_region"], notes["aws_account_id"]) == (decl.spec.cluster.name, "eu-west-1", ACCOUNT)
    for name in enabled:
        assert notes[f"{name.replace('-', '_')}_namespace"]
    # Service accounts and IAM roles of the addons installed before Argo CD, from their own resources.
    assert (notes["external_secrets_namespace"], notes["external_secrets_service_account"]) == ("external-secrets", "external-secrets")
    secret = stack.named("argocd-cluster", "kubernetes:core/v1:Secret")
    for addon, association, role in (("vault", "vault-server", "vault-unseal"), ("keda", "keda-operator", "keda-operator")):
        pod_identity = stack.named(association, "aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs
        assert notes[f"{addon}_service_account"] == pod_identity["serviceAccount"]
        assert notes[f"{addon}_iam_role_arn"] == pod_identity["roleArn"]
        assert stack.named(role, "aws:iam/role:Role").urn in secret.dependencies


def test_argocd_requires_nothing(stack):
    release = stack.named("argocd-argocd", RELEASE)
    # Only the monitor CRDs of kube-prometheus-stack: its ServiceMonitors are on (ArgoCD.metrics).
    others = [r.urn for r in stack.of_type(RELEASE) if r.name not in ("argocd-argocd", "prometheus-kube-prometheus-stack")]
    assert argocd.ArgoCD.requires == () and not set(others) & set(release.dependencies)


def test_installed_after_the_addons_it_describes_wherever_it_is_declared(scratch):
    def argocd_first(d):
        d["addons"] = {"argocd": d["addons"].pop("argocd"), **d["addons"]}

    scratch.edit("stacks/dev.yaml", argocd_first)
    assert next(iter(scratch.read("stacks/dev.yaml")["addons"])) == "argocd"
    rec = run("dev", scratch.root)
    notes = rec.manifest("Secret", "shop-dev", "argocd")["metadata"]["annotations"]
    assert notes["vault_iam_role_arn"] == rec.named("vault-server", "aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs["roleArn"]
    assert notes["keda_iam_role_arn"] == rec.named("keda-operator", "aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs["roleArn"]


def test_turning_an_addon_off_drops_its_metadata(scratch):
    # Only dev stops scaling on SQS and predictively: prod (validated on every run too) keeps KEDA.
    for service in ("notifications", "storefront"):
        scratch.edit(scratch.service_file(service), lambda d: d["envs"]["prod"].update(scaling=d.pop("scaling")))
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"].update(keda={"enabled": False}))
    meta = run("dev", scratch.root).manifest("Secret", "shop-dev", "argocd")["metadata"]
    assert "enable_keda" not in meta["labels"] and "enable_vault" in meta["labels"]
    assert not [k for k in meta["annotations"] if k.startswith("keda_")] and "vault_iam_role_arn" in meta["annotations"]


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"repoUrlTemplate": "https://github.com/acme-shop/deploy.git"},
            "addons.argocd.settings.repoUrlTemplate: 'https://github.com/acme-shop/deploy.git' must contain {team}",
        ),
        (
            {"repoUrlTemplate": "https://github.com/{org}/{team}.git"},
            "addons.argocd.settings.repoUrlTemplate: 'https://github.com/{org}/{team}.git': unknown placeholder(s) {org}; allowed: {team}",
        ),
        ({"repoUrlTemplate": "ftp://example.com/{team}.git"}, "addons.argocd.settings.repoUrlTemplate: 'ftp://example.com/{team}.git' is not a Git URL"),
        ({"pathTemplate": "../{environment}"}, "addons.argocd.settings.pathTemplate: '../{environment}' must be a relative path inside the repository"),
        ({"host": "Argo CD"}, "addons.argocd.settings.host: String should match pattern"),
        ({"ha": "yes please"}, "addons.argocd.settings.ha: Input should be a valid boolean"),
        ({"replicas": 2}, "addons.argocd.settings.replicas: unknown key 'replicas'; allowed keys: ha, host, pathTemplate, repoUrlTemplate, revision"),
    ],
)
def test_bad_settings_are_refused(scratch, settings, message):
    scratch.edit("stacks/prod.yaml", lambda d: d["addons"]["argocd"]["settings"].update(settings))
    with pytest.raises(SpecError) as err:
        load("prod", scratch.root)
    assert f"stacks/prod.yaml: {message}" in str(err.value)
