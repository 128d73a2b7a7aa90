"""Workload hygiene, availability and network rules, each with a passing and a failing input."""

from __future__ import annotations

import pytest
from policy_samples import DEV, changed, deployment, findings, first, pod

OK = deployment()
NS = "shop"


def obj(api: str, kind: str, name: str = "x", namespace: str | None = NS, spec: dict | None = None, **extra) -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": api, "kind": kind, "metadata": meta, **({"spec": spec} if spec is not None else {}), **extra}


def deny_all(namespace: str = NS) -> dict:
    return obj(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "default-deny",
        namespace,
        {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]},
    )


def pdb(**spec) -> dict:
    return obj("policy/v1", "PodDisruptionBudget", "web", NS, {"selector": {"matchLabels": {"app": "web"}}, **spec})


def hpa(min_replicas=None) -> dict:
    spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 6}
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    return obj("autoscaling/v2", "HorizontalPodAutoscaler", "web", NS, spec)


def service(type_: str = "ClusterIP", namespace: str = NS, annotations: dict | None = None, **spec) -> dict:
    s = obj("v1", "Service", "web", namespace, {"type": type_, "ports": [{"port": 80}], **spec})
    s["metadata"]["annotations"] = annotations or {}
    return s


def peer_auth(mode: str | None, namespace: str = "istio-system", **spec) -> dict:
    return obj("security.istio.io/v1", "PeerAuthentication", "default", namespace, {**({"mtls": {"mode": mode}} if mode else {}), **spec})


def external_secret(key: str, store: str = "SecretStore", namespace: str = NS) -> dict:
    return obj(
        "external-secrets.io/v1",
        "ExternalSecret",
        "web-db",
        namespace,
        {
            "secretStoreRef": {"kind": store, "name": "vault"},
            "target": {"name": "web-db"},
            "data": [{"secretKey": "DATABASE_URL", "remoteRef": {"key": key, "property": "DATABASE_URL"}}],
        },
    )


ISTIOD = {"type": "kubernetes:helm.sh/v3:Release", "props": {"chart": "istiod", "version": "1.30.3", "namespace": "istio-system"}}
SA_DEFAULT = changed(OK, lambda d: pod(d).pop("automountServiceAccountToken"))

# (rule, passing input, failing input, a fragment of the failure message)
CASES = [
    (
        "image-tag-pinned",
        changed(OK, lambda d: first(d).update(image="repo/app@sha256:" + "a" * 64)),
        changed(OK, lambda d: first(d).update(image="111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/web:latest")),
        "mutable tag latest",
    ),
    ("image-registry-allowed", OK, changed(OK, lambda d: first(d).update(image="docker.io/library/nginx:1.27.0")), "not from an allowed registry"),
    ("container-resources", OK, changed(OK, lambda d: first(d)["resources"]["limits"].pop("memory")), "missing resources limits.memory"),
    (
        "container-probes",
        changed(OK, lambda d: pod(d).update(initContainers=[{"name": "migrate", "image": "x"}])),
        changed(OK, lambda d: first(d).pop("readinessProbe")),
        "no readinessProbe",
    ),
    (
        "read-only-root-filesystem",
        OK,
        changed(OK, lambda d: first(d)["securityContext"].update(readOnlyRootFilesystem=False)),
        "readOnlyRootFilesystem is not true",
    ),
    (
        "service-account-token-declared",
        [SA_DEFAULT, obj("v1", "ServiceAccount", "default", NS, automountServiceAccountToken=False)],
        [SA_DEFAULT],
        "ServiceAccount default does not declare it",
    ),
    ("no-default-namespace", OK, deployment(namespace="default"), "metadata.namespace is default"),
    (
        "no-plaintext-secrets",
        [
            changed(
                OK,
                lambda d: first(d).update(
                    env=[{"name": "TOKEN_TTL", "value": "60"}, {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]
                ),
            ),
            obj("v1", "ConfigMap", "cfg", data={"LOG_LEVEL": "info", "SECRET_NAME": ""}),
        ],
        obj("v1", "ConfigMap", "cfg", data={"stripeApiKey": "sk_live_123"}),
        "ConfigMap key stripeApiKey",
    ),
    ("replicas-minimum", [deployment(replicas=None), hpa(2)], deployment(replicas=1.0), "spec.replicas is 1; prod needs at least 2"),
    ("pdb-allows-disruption", [OK, pdb(minAvailable=2)], [OK, pdb(minAvailable=3)], "minAvailable 3 is not below the 3 replica(s)"),
    ("topology-spread", OK, changed(OK, lambda d: pod(d).pop("topologySpreadConstraints")), "no topologySpreadConstraints"),
    ("priority-class", OK, changed(OK, lambda d: pod(d).pop("priorityClassName")), "no priorityClassName"),
    (
        "no-deprecated-api",
        [pdb(maxUnavailable=1), hpa(2)],
        changed(pdb(maxUnavailable=1), lambda d: d.update(apiVersion="policy/v1beta1")),
        "policy/v1beta1 PodDisruptionBudget is deprecated or removed; use policy/v1",
    ),
    ("network-default-deny", [OK, deny_all()], [OK, deny_all("other")], "namespace shop runs workloads but has no default-deny NetworkPolicy"),
    ("service-no-nodeport", service(), service("NodePort"), "NodePort"),
    ("service-no-external-ips", service(), service(externalIPs=["203.0.113.7"]), "externalIPs 203.0.113.7"),
    ("service-no-public-loadbalancer", service("LoadBalancer", "istio-ingress"), service("LoadBalancer"), "internet-facing LoadBalancer"),
    ("mesh-mtls-strict", [peer_auth("STRICT"), peer_auth(None, NS)], [peer_auth("PERMISSIVE", NS)], "mtls.mode is PERMISSIVE"),
    (
        "external-secret-team-prefix",
        external_secret(f"{NS}/web/db"),
        external_secret("payments/stripe/key"),
        "reads Vault path 'payments/stripe/key', outside the team's prefix shop/",
    ),
]


def test_external_secrets_must_use_the_namespaces_own_store():
    assert findings("external-secret-team-prefix", external_secret(f"{NS}/web/db", store="ClusterSecretStore")) == [
        "secretStoreRef is a ClusterSecretStore; use the namespace's own SecretStore, which reads only the team's Vault prefix"
    ]
    assert findings("external-secret-team-prefix", external_secret(f"{NS}x/web/db"))


@pytest.mark.parametrize("rule, good, bad, fragment", CASES, ids=[c[0] for c in CASES])
def test_rule_passes_and_fails(rule, good, bad, fragment):
    assert findings(rule, good) == []
    messages = findings(rule, bad)
    assert messages and any(fragment in m for m in messages), messages


def test_untagged_images_mean_latest_but_registry_ports_are_not_tags():
    assert findings("image-tag-pinned", changed(OK, lambda d: first(d).update(image="registry:5000/shop/web"))) == [
        "container web: image 'registry:5000/shop/web' has no tag (it means :latest)"
    ]
    assert findings("image-tag-pinned", changed(OK, lambda d: first(d).update(image="registry:5000/shop/web:2.0"))) == []


def test_plaintext_secrets_catch_credentials_in_urls_and_never_print_the_value():
    bad = changed(OK, lambda d: first(d).update(env=[{"name": "DATABASE_URL", "value": "postgres://app:hunter2@db:5432/app"}]))
    messages = findings("no-plaintext-secrets", bad)
    assert messages == ["container web: env DATABASE_URL has a literal value that looks like a credential"]
    assert "hunter2" not in messages[0]


def test_service_account_token_may_be_declared_on_the_pod_and_is_looked_up_per_namespace():
    assert findings("service-account-token-declared", OK) == []
    elsewhere = obj("v1", "ServiceAccount", "default", "other", automountServiceAccountToken=False)
    assert findings("service-account-token-declared", [SA_DEFAULT, elsewhere])


def test_objects_without_namespace_land_in_default():
    assert findings("no-default-namespace", obj("v1", "ConfigMap", "cfg", namespace=None)) == [
        "no metadata.namespace: the object lands in the default namespace"
    ]
    assert findings("no-default-namespace", obj("v1", "Namespace", "shop", namespace=None)) == []


def test_replicas_rule_is_prod_only_and_checks_hpa_minimum():
    assert findings("replicas-minimum", deployment(replicas=1), DEV) == []
    assert findings("replicas-minimum", hpa()) == ["HPA minReplicas is unset (1); prod needs at least 2"]


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ({"maxUnavailable": 0}, "maxUnavailable is 0"),
        ({"maxUnavailable": "0%"}, "maxUnavailable is '0%'"),
        ({"minAvailable": "100%"}, "minAvailable is 100%"),
        ({"minAvailable": "90%"}, "minAvailable '90%' is not below the 3 replica(s)"),
    ],
)
def test_pdbs_that_block_every_eviction_fail(spec, fragment):
    assert any(fragment in m for m in findings("pdb-allows-disruption", [OK, pdb(**spec)]))


def test_pdb_minimum_is_compared_with_the_hpa_floor_when_replicas_are_autoscaled():
    autoscaled = deployment(replicas=None)
    assert findings("pdb-allows-disruption", [autoscaled, hpa(3), pdb(minAvailable=2)]) == []
    assert findings("pdb-allows-disruption", [autoscaled, hpa(2), pdb(minAvailable=2)])
    assert (
        findings(
            "pdb-allows-disruption", [autoscaled, pdb(minAvailable=2), changed(pdb(), lambda d: d["spec"]["selector"].update(matchLabels={"app": "other"}))]
        )
        == []
    )


def test_a_policy_that_allows_ingress_is_not_a_default_deny():
    allows = changed(deny_all(), lambda d: d["spec"].update(ingress=[{"from": [{"podSelector": {}}]}]))
    assert findings("network-default-deny", [OK, allows])


def test_internal_and_annotated_load_balancers_pass():
    internal = service("LoadBalancer", annotations={"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"})
    gateway = service("LoadBalancer", "edge", annotations={"platform.io/ingress-gateway": "true"})
    assert findings("service-no-public-loadbalancer", [internal, gateway]) == []


def test_installed_mesh_needs_a_strict_mesh_wide_peer_authentication():
    from policy_samples import cloud

    istiod = cloud(ISTIOD["type"], ISTIOD["props"], "istiod")
    assert findings("mesh-mtls-strict", [istiod]) == [
        "Istio is installed but no mesh-wide PeerAuthentication (namespace istio-system, no selector) sets mtls.mode STRICT"
    ]
    assert findings("mesh-mtls-strict", [istiod, peer_auth("STRICT")]) == []
    metrics = peer_auth("STRICT", NS, selector={"matchLabels": {"app": "web"}}, portLevelMtls={"9090": {"mode": "PERMISSIVE"}})
    assert findings("mesh-mtls-strict", [istiod, peer_auth("STRICT"), metrics]) == []
    disabled = changed(metrics, lambda p: p["spec"]["portLevelMtls"]["9090"].update(mode="DISABLE"))
    assert findings("mesh-mtls-strict", [istiod, peer_auth("STRICT"), disabled]) == [
        "portLevelMtls 9090 mode is DISABLE; use PERMISSIVE for a port that plaintext clients must reach"
    ]
    workload_wide = changed(metrics, lambda p: p["spec"]["mtls"].update(mode="PERMISSIVE"))
    assert findings("mesh-mtls-strict", [istiod, peer_auth("STRICT"), workload_wide]) == ["mtls.mode is PERMISSIVE; it must be STRICT"]


def test_a_team_stack_deploys_into_its_platform_room():
    """In a team stack the namespace and its default-deny are the platform stack's (a team room)."""
    from dataclasses import replace

    from policy_samples import PROD

    rooms = replace(PROD, team_rooms=("shop",))
    assert findings("network-default-deny", [OK], rooms) == []
    # Not a room: refused as before.
    assert findings("network-default-deny", [OK], replace(PROD, team_rooms=("other",)))
    # A stack that declares the Namespace itself must also declare its default-deny, room or not.
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    assert findings("network-default-deny", [OK, namespace], rooms) == [
        "namespace shop runs workloads but has no default-deny NetworkPolicy (podSelector {}, policyTypes [Ingress], no ingress rules)"
    ]


def test_only_a_canary_targets_pods_may_be_pinned_by_a_budget():
    """Flagger scales a canary target to zero between analyses: a budget on exactly its selector label may
    pin its pods (Karpenter then leaves them alone mid-analysis); anything else pinned still fails."""
    canary = lambda target="web", namespace=NS: obj(
        "flagger.app/v1beta1", "Canary", target, namespace, {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}}
    )
    pinned = pdb(maxUnavailable=0)
    assert findings("pdb-allows-disruption", [OK, canary(), pinned]) == []
    # No canary, a canary of another Deployment or namespace, or a selector wider than the target's label: refused.
    assert findings("pdb-allows-disruption", [OK, pinned])
    assert findings("pdb-allows-disruption", [OK, canary("api"), pinned])
    assert findings("pdb-allows-disruption", [OK, canary(namespace="other"), pinned])
    wider = changed(pinned, lambda d: d["spec"]["selector"].update(matchLabels={"app": "web", "tier": "x"}))
    assert findings("pdb-allows-disruption", [OK, canary(), wider])
    primary = changed(pinned, lambda d: d["spec"]["selector"].update(matchLabels={"app": "web-primary"}))
    assert findings("pdb-allows-disruption", [OK, canary(), primary])
