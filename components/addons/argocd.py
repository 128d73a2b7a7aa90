"""Argo CD: GitOps delivery of the teams' deploy repositories, HA in prod, never public by default.

- One AppProject per team (the teams of the stack's services): the team's repository only, its
  namespace (named after the team) on this cluster only, no cluster-scoped resources at all, and
  in the namespace only a whitelist of kinds the platform does not create there (team_syncable).
- One ApplicationSet: a matrix of the cluster generator (this cluster's secret, selected by its
  `environment` label) and the list of teams, so each team gets an Application syncing
  `<its repo>/<path for the environment>` with automated prune and self-heal.
- The in-cluster cluster Secret in the gitops-bridge form: labels `cluster_name`, `environment`,
  `aws_region`, `enable_<addon>: "true"` per enabled addon; annotations `aws_cluster_name`,
  `aws_region`, `aws_account_id` and `<addon>_namespace`, `<addon>_service_account`,
  `<addon>_iam_role_arn` (addon names with `_` for `-`), so ApplicationSets can select clusters
  and fill in values from them.

That metadata comes from every other addon's outputs(), so this addon `describes_others`: the
registry installs it after all the others, without making it depend on them (it requires
nothing, and turning any other addon off only drops its label and annotations).

helm.v3.Release: the chart installs the CRDs the AppProjects and ApplicationSet need, runs the
redis secret-init hook, and the release waits until the controllers are up.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import ValidationInfo, field_validator

from components.monitoring.scrape import Metrics
from components.spec.base import Spec, field
from components.spec.domains import refuse_placeholder
from components.workloads.kinds import PLATFORM_KINDS
from components.versions import ARGO_CD

from . import flows as net
from .base import Addon, gitops_metadata

NAMESPACE = "argocd"
RELEASE = "argocd"
# fullnameOverride pins the names: the server's ClusterIP service and the controller's account.
SERVER_SERVICE = f"{RELEASE}-server"
CONTROLLER_SERVICE_ACCOUNT = f"{RELEASE}-application-controller"
IN_CLUSTER = "https://kubernetes.default.svc"
CLUSTER_SECRET_TYPE = {"argocd.argoproj.io/secret-type": "cluster"}
# Each component's metrics port (the chart's <component>.containerPorts.metrics), scraped by its ServiceMonitor.
METRICS_PORTS = {"controller": 8082, "server": 8083, "repoServer": 8084, "applicationSet": 8080}
# Namespaced kinds a team's deploy repository may carry; what a team may actually sync is these less
# every kind the platform creates in team namespaces (components/workloads/kinds.py), so a team repo
# can neither replace nor prune the platform's objects (policies, quotas, stores, routes). Never on
# this list: Secrets (values come from Vault), RBAC, and mesh or network policy kinds.
TEAM_KIND_CANDIDATES = [
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("", "ConfigMap"),
    ("", "Service"),
    ("", "ServiceAccount"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("policy", "PodDisruptionBudget"),
    ("external-secrets.io", "ExternalSecret"),
    ("monitoring.coreos.com", "ServiceMonitor"),
    ("monitoring.coreos.com", "PrometheusRule"),
    ("keda.sh", "ScaledObject"),
]


def team_syncable() -> list[dict[str, str]]:
    """The AppProject whitelist: candidate kinds the platform does not create in team namespaces."""
    return [{"group": group, "kind": kind} for group, kind in TEAM_KIND_CANDIDATES if (group, kind) not in PLATFORM_KINDS]


# gitops-bridge annotation suffixes for the keys of an addon's outputs().
ANNOTATION_SUFFIX = {"namespace": "namespace", "serviceAccount": "service_account", "iamRoleArn": "iam_role_arn"}
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
HOST = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class ArgoCDSettings(Spec):
    ha: bool = field(
        "Run Argo CD highly available: redis-ha and two replicas of the server, repo server and ApplicationSet controller (needs 3 nodes).", default=False
    )
    host: str = field("Internal host name of the Argo CD server (its URL); it is not routed publicly.", default="argocd.internal", pattern=HOST)
    repo_url_template: str = field(
        "Git URL of a team's deploy repository; {team} is replaced by the team name.", default="https://github.com/acme-shop/{team}-deploy.git"
    )
    revision: str = field("Branch, tag or commit the teams' Applications track.", default="main", min_length=1)
    path_template: str = field("Path inside a team repository for this environment; {environment} and {team} are replaced.", default="envs/{environment}")

    @field_validator("repo_url_template")
    @classmethod
    def _repo(cls, url: str, info: ValidationInfo) -> str:
        _placeholders(url, required={"team"}, allowed={"team"})
        if not url.startswith(("https://", "ssh://", "git@")):
            raise ValueError(f"{url!r} is not a Git URL (https://..., ssh://... or git@host:org/repo.git)")
        return refuse_placeholder(url, info.context, "no team's Application can ever sync")

    @field_validator("path_template")
    @classmethod
    def _path(cls, path: str) -> str:
        _placeholders(path, required=set(), allowed={"team", "environment"})
        if path.startswith("/") or ".." in path.split("/"):
            raise ValueError(f"{path!r} must be a relative path inside the repository, without '..'")
        return path


class ArgoCD(Addon):
    name = "argocd"
    namespace = NAMESPACE
    # Every Argo CD component's metrics Service and ServiceMonitor: sync status, app health, git and repo timings.
    metrics = Metrics(charts={ARGO_CD.name: {c: {"metrics": {"enabled": True, "serviceMonitor": {"enabled": True}}} for c in METRICS_PORTS}})
    Settings = ArgoCDSettings
    describes_others = True
    pod_security = "baseline"
    pod_security_reason = (
        "the HA mode's redis-ha subchart (prod) sets only readOnlyRootFilesystem on its redis, sentinel and "
        "haproxy containers: no seccomp profile, capability drop or allowPrivilegeEscalation"
    )

    def install(self) -> None:
        s: ArgoCDSettings = self.settings
        self.host = s.host
        self.release = self.helm(ARGO_CD, self.chart_values(s), release=RELEASE)
        self.cluster_secret = self.write_cluster_secret()
        self.teams = list(self.ctx.decl.spec.rooms())
        projects = [self.manifest("argoproj.io/v1alpha1", "AppProject", team, namespace=NAMESPACE, spec=project_spec(team, s)) for team in self.teams]
        if self.teams:
            self.manifest(
                "argoproj.io/v1alpha1",
                "ApplicationSet",
                "team-deployments",
                namespace=NAMESPACE,
                spec=application_set_spec(self.teams, self.ctx.environment, s),
                depends_on=(*projects, self.cluster_secret),
            )

    def flows(self) -> list[net.Flow]:
        return [
            net.api_server(self.vpc_cidr),
            *net.within(NAMESPACE, reason="server, repo server, controllers, Redis and Dex call each other"),
            net.cloud("the repo server and ApplicationSet controller fetch the teams' Git repositories (HTTPS, SSH)", ports=(443, 22), name="git"),
            *self.scraped(tuple(sorted(set(METRICS_PORTS.values())))),
        ]

    def chart_values(self, s: ArgoCDSettings) -> dict[str, Any]:
        # The chart's documented HA mode without autoscaling; one application controller, since
        # more replicas only shard clusters and this Argo CD manages one.
        replicated = {"replicas": 2, "pdb": {"enabled": True, "maxUnavailable": 1}} if s.ha else {"replicas": 1}
        return {
            "fullnameOverride": RELEASE,
            "global": {"domain": s.host},
            "redis-ha": {"enabled": s.ha},
            "controller": {"replicas": 1},
            # Not public: a ClusterIP service and no ingress; reach it with kubectl port-forward or
            # through an internal route the stack adds on purpose.
            "server": {**replicated, "service": {"type": "ClusterIP"}, "ingress": {"enabled": False}},
            "repoServer": replicated,
            "applicationSet": replicated,
        }

    def write_cluster_secret(self) -> k8s.core.v1.Secret:
        spec, cluster, region = self.ctx.decl.spec, self.ctx.cluster_name, self.ctx.region
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self)).account_id
        labels = {
            **CLUSTER_SECRET_TYPE,
            "cluster_name": cluster,
            "environment": self.ctx.environment,
            "aws_cluster_name": cluster,
            "aws_region": region,
            "kubernetes_version": spec.cluster.kubernetes_version,
            **{f"enable_{_key(name)}": "true" for name in self.metadata()},
        }
        annotations: dict[str, Any] = {
            "cluster_name": cluster,
            "environment": self.ctx.environment,
            "aws_cluster_name": cluster,
            "aws_region": region,
            "aws_account_id": account,
        }
        for name, meta in self.metadata().items():
            annotations.update({f"{_key(name)}_{ANNOTATION_SUFFIX[k]}": v for k, v in meta.items()})
        return k8s.core.v1.Secret(
            f"{self.name}-cluster",
            type="Opaque",
            metadata={"name": cluster, "namespace": NAMESPACE, "labels": labels, "annotations": annotations},
            string_data={"name": cluster, "server": IN_CLUSTER, "config": json.dumps({"tlsClientConfig": {"insecure": False}})},
            opts=self.opts((self.release,)),
        )

    def metadata(self) -> dict[str, dict[str, Any]]:
        """Per enabled addon: namespace, service account and IAM role, from its outputs()."""
        found: dict[str, dict[str, Any]] = {}
        for name, spec in self.ctx.decl.spec.addons.items():
            if not spec.enabled:
                continue
            if name == self.name:
                found[name] = {"namespace": NAMESPACE, "serviceAccount": CONTROLLER_SERVICE_ACCOUNT}
            elif name in self.ctx.installed:
                found[name] = gitops_metadata(self.ctx.installed[name])
            else:
                # Only an addon that requires argocd is installed after it: its namespace is static.
                found[name] = {"namespace": Addon.registry[name].namespace}
        return found

    def outputs(self) -> dict[str, Any]:
        return {
            "namespace": NAMESPACE,
            "serviceAccount": CONTROLLER_SERVICE_ACCOUNT,
            "host": self.host,
            "clusterSecret": self.ctx.cluster_name,
            "gitopsMetadata": self.metadata(),
        }


def project_spec(team: str, s: ArgoCDSettings) -> dict[str, Any]:
    return {
        "description": f"Team {team}: its deploy repository, into namespace {team} of this cluster only",
        "sourceRepos": [s.repo_url_template.replace("{team}", team)],
        "destinations": [{"server": IN_CLUSTER, "namespace": team}],
        # No cluster-scoped object at all; in the namespace, only kinds the platform does not manage there.
        "clusterResourceWhitelist": [],
        "clusterResourceBlacklist": [{"group": "*", "kind": "*"}],
        "namespaceResourceWhitelist": team_syncable(),
    }


def application_set_spec(teams: list[str], environment: str, s: ArgoCDSettings) -> dict[str, Any]:
    """Cluster x team: the cluster generator yields the cluster secret's name, server and labels."""
    team, env = "{{.team}}", "{{.metadata.labels.environment}}"
    return {
        "goTemplate": True,
        "goTemplateOptions": ["missingkey=error"],
        "generators": [
            {
                "matrix": {
                    "generators": [
                        {"clusters": {"selector": {"matchLabels": {"environment": environment}}}},
                        {"list": {"elements": [{"team": t} for t in teams]}},
                    ]
                }
            }
        ],
        "template": {
            "metadata": {"name": "{{.team}}-{{.name}}", "labels": {"team": team}},
            "spec": {
                "project": team,
                "source": {
                    "repoURL": s.repo_url_template.replace("{team}", team),
                    "targetRevision": s.revision,
                    "path": s.path_template.replace("{environment}", env).replace("{team}", team),
                },
                "destination": {"server": "{{.server}}", "namespace": team},
                "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
            },
        },
    }


def _key(addon: str) -> str:
    """gitops-bridge spells addon names with underscores: external-secrets -> external_secrets."""
    return addon.replace("-", "_")


def _placeholders(text: str, required: set[str], allowed: set[str]) -> None:
    found = set(PLACEHOLDER.findall(text))
    if "{{" in text or "}}" in text:
        raise ValueError(f"{text!r}: use {{team}}-style placeholders, not Go templates")
    if found - allowed:
        raise ValueError(
            f"{text!r}: unknown placeholder(s) {', '.join('{' + p + '}' for p in sorted(found - allowed))}; allowed: {', '.join('{' + p + '}' for p in sorted(allowed))}"
        )
    if required - found:
        raise ValueError(f"{text!r} must contain {', '.join('{' + p + '}' for p in sorted(required))}")
