"""Microservices: a short declaration becomes a complete, secure, observable workload."""

from __future__ import annotations

import pytest

from components.spec import SpecError, load
from engine.conformance import errors
from engine.stacks import run

SERVICES = ("storefront", "orders", "payment", "inventory", "notifications")
TEAM = {"storefront": "web", "orders": "checkout", "payment": "checkout", "inventory": "catalog", "notifications": "messaging"}


def deployment(rec, name):
    return rec.manifest("Deployment", name, TEAM[name])


def pod(rec, name):
    return deployment(rec, name)["spec"]["template"]["spec"]


def container(rec, name):
    return pod(rec, name)["containers"][0]


def objects(rec, kind, namespace=None):
    return [r.inputs for r in rec.kubernetes_objects() if r.kind == kind and (namespace is None or r.metadata.get("namespace") == namespace)]


def test_team_namespaces_are_meshed_and_default_deny(stack):
    for team in set(TEAM.values()):
        ns = stack.manifest("Namespace", team)
        assert ns["metadata"]["labels"]["istio-injection"] == "enabled"
        deny = stack.manifest("NetworkPolicy", "default-deny", team)["spec"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        dns = stack.manifest("NetworkPolicy", "platform-egress", team)["spec"]["egress"][0]
        assert {"port": 53, "protocol": "UDP"} in dns["ports"]


def test_service_account_token_not_mounted(stack):
    for name in SERVICES:
        sa = stack.manifest("ServiceAccount", name, TEAM[name])
        assert sa["automountServiceAccountToken"] is False
        assert pod(stack, name)["automountServiceAccountToken"] is False


def test_restricted_pod_security(stack):
    for name in SERVICES:
        spec, c = pod(stack, name), container(stack, name)
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True and sc["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
        assert any(v["name"] == "tmp" and "emptyDir" in v for v in spec["volumes"])


def test_images_probes_resources(stack):
    for name in SERVICES:
        c = container(stack, name)
        assert ":" in c["image"].rsplit("/", 1)[-1] and not c["image"].endswith(":latest")
        assert c["readinessProbe"]["httpGet"]["path"] and c["livenessProbe"]["httpGet"]["path"]
        assert set(c["resources"]["requests"]) == {"cpu", "memory"} and "memory" in c["resources"]["limits"]


def test_standard_labels_and_checksum(stack):
    d = deployment(stack, "orders")
    template = d["spec"]["template"]["metadata"]
    for key in (
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/version",
        "app.kubernetes.io/part-of",
        "app.kubernetes.io/managed-by",
    ):
        assert key in template["labels"] and key in d["metadata"]["labels"]
    # The version sits on the workload and its pods only, so an image bump changes one object.
    others = [o for o in stack.kubernetes_objects() if (o.metadata.get("labels") or {}).get("platform.io/service") == "orders"]
    assert len(others) > 5
    assert [o.kind for o in others if "app.kubernetes.io/version" in o.metadata["labels"]] == ["Deployment"]
    assert len(template["annotations"]["platform.io/config-checksum"]) == 64


def test_config_change_rolls_pods(scratch, dev):
    scratch.edit("stacks/services/checkout/orders.yaml", lambda d: d["env"].update(FEATURE_X="on"))
    changed = run("dev", scratch.root)
    before = deployment(dev, "orders")["spec"]["template"]["metadata"]["annotations"]["platform.io/config-checksum"]
    after = deployment(changed, "orders")["spec"]["template"]["metadata"]["annotations"]["platform.io/config-checksum"]
    assert before != after
    assert changed.manifest("ConfigMap", "orders-config", "checkout")["data"]["FEATURE_X"] == "on"


def test_topology_spread_across_zones_and_hosts(stack):
    keys = {c["topologyKey"] for c in pod(stack, "inventory")["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_critical_tier_lands_on_the_critical_pool(stack):
    spec = pod(stack, "payment")
    assert spec["priorityClassName"] == "mission-critical"
    assert {"key": "dedicated", "operator": "Equal", "value": "high-perf", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["nodeSelector"] == {"service-tier": "critical"}
    pool_labels = stack.manifest("NodePool", "critical")["spec"]["template"]["metadata"]["labels"]
    assert pool_labels["service-tier"] == "critical"
    assert stack.manifest("PodDisruptionBudget", "payment", "checkout")["spec"]["maxUnavailable"] == 1
    assert pod(stack, "inventory")["priorityClassName"] == "standard" and "tolerations" not in pod(stack, "inventory")
    assert pod(stack, "notifications")["priorityClassName"] == "batch"


def test_autoscaling_owns_replicas(stack):
    for name in SERVICES:
        assert "replicas" not in deployment(stack, name)["spec"], name
    hpa = stack.manifest("HorizontalPodAutoscaler", "inventory", "catalog")["spec"]
    assert (hpa["minReplicas"], hpa["scaleTargetRef"]["name"]) == ({"dev": 1, "staging": 2, "prod": 2}[stack.stack], "inventory")
    vpa = stack.manifest("VerticalPodAutoscaler", "inventory", "catalog")["spec"]
    assert vpa["updatePolicy"] == {"updateMode": "Off"}


def test_no_vpa_objects_without_the_recommender(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["addons"]["vpa"].update(enabled=False))
    rec = run("dev", scratch.root)
    assert objects(rec, "VerticalPodAutoscaler") == []
    assert deployment(rec, "inventory")


def test_fixed_size_service_sets_replicas(scratch):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(replicas={"min": 2, "max": 2}))
    rec = run("dev", scratch.root)
    assert deployment(rec, "inventory")["spec"]["replicas"] == 2
    assert not [o for o in objects(rec, "HorizontalPodAutoscaler") if o["metadata"]["name"] == "inventory"]


def test_queue_worker_scales_with_keda(stack):
    scaled = stack.manifest("ScaledObject", "notifications", "messaging")["spec"]
    trigger = scaled["triggers"][0]
    assert trigger["type"] == "aws-sqs-queue" and trigger["metadata"]["queueURL"].endswith("/messaging-notifications")
    assert stack.manifest("TriggerAuthentication", "notifications-aws", "messaging")["spec"]["podIdentity"]["provider"] == "aws"
    assert not [o for o in objects(stack, "HorizontalPodAutoscaler", "messaging")]
    assoc = [r.inputs for r in stack.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") if r.inputs["serviceAccount"] == "notifications"]
    assert assoc and assoc[0]["namespace"] == "messaging"


def test_pdb_for_every_multi_replica_service(stack):
    for name in SERVICES:
        pdb = stack.manifest("PodDisruptionBudget", name, TEAM[name])["spec"]
        assert pdb.get("maxUnavailable") not in (0, "0%")


def network(rec, name):
    return rec.manifest("NetworkPolicy", name, TEAM[name])["spec"]


def test_network_policy_allows_only_declared_callers(prod):
    payment = network(prod, "payment")
    callers = [
        peer["podSelector"]["matchLabels"]["platform.io/service"]
        for rule in payment["ingress"]
        for peer in rule["from"]
        if "platform.io/service" in peer["podSelector"].get("matchLabels", {})
    ]
    assert callers == ["orders"]
    inventory = network(prod, "inventory")
    callers = sorted(
        peer["podSelector"]["matchLabels"]["platform.io/service"]
        for rule in inventory["ingress"]
        for peer in rule["from"]
        if "platform.io/service" in peer["podSelector"].get("matchLabels", {})
    )
    assert callers == ["orders", "storefront"]
    egress = [
        peer["podSelector"]["matchLabels"]["platform.io/service"]
        for rule in network(prod, "storefront")["egress"]
        for peer in rule["to"]
        if "podSelector" in peer
    ]
    assert sorted(egress) == ["inventory", "orders"]


def test_exposed_service_hears_from_the_ingress_gateway(prod):
    namespaces = [
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for rule in network(prod, "storefront")["ingress"] for peer in rule["from"]
    ]
    assert "istio-ingress" in namespaces
    namespaces = [
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for rule in network(prod, "inventory")["ingress"] for peer in rule["from"]
    ]
    assert "istio-ingress" not in namespaces


def test_authorization_policy_from_depends_on(prod):
    authz = prod.manifest("AuthorizationPolicy", "payment", "checkout")["spec"]
    assert authz["action"] == "ALLOW"
    principals = authz["rules"][0]["from"][0]["source"]["principals"]
    assert "cluster.local/ns/checkout/sa/orders" in principals
    assert not any("storefront" in p for p in principals)


def test_removing_a_dependency_closes_both_layers(scratch, prod):
    scratch.edit("stacks/services/checkout/orders.yaml", lambda d: d.update(dependsOn=["inventory", "notifications"]))
    rec = run("prod", scratch.root)
    principals = [
        p
        for rule in rec.manifest("AuthorizationPolicy", "payment", "checkout")["spec"]["rules"]
        for src in rule.get("from", [])
        for p in src["source"]["principals"]
    ]
    assert not any(p.endswith("/sa/orders") for p in principals)
    peers = [
        peer
        for rule in network(rec, "payment")["ingress"]
        for peer in rule["from"]
        if peer["podSelector"].get("matchLabels", {}).get("platform.io/service") == "orders"
    ]
    assert peers == []


def test_exposed_and_critical_services_canary_in_every_stack(stack):
    canaries = {o["metadata"]["name"] for o in objects(stack, "Canary")}
    assert canaries == {"storefront", "payment", "orders"}


def test_canary_timing_follows_the_model(stack):
    """The rollback bound (interval x (threshold + 1)) holds everywhere; the deadline covers a new node;
    each metric judges a window of two scrapes; dev promotes in fewer, larger steps."""
    for name in ("storefront", "payment", "orders"):
        canary = stack.manifest("Canary", name, "checkout" if name != "storefront" else "web")["spec"]
        analysis = canary["analysis"]
        interval = int(analysis["interval"].rstrip("s"))
        assert interval * (analysis["threshold"] + 1) <= 60
        assert canary["progressDeadlineSeconds"] >= 180
        assert {m["interval"] for m in analysis["metrics"]} == {"30s"}
        assert (analysis["stepWeight"], analysis["maxWeight"]) == ((25, 50) if stack.stack == "dev" else (10, 50))


def test_canary_analysis_and_host(prod):
    canary = prod.manifest("Canary", "storefront", "web")["spec"]
    analysis = canary["analysis"]
    assert {m["name"] for m in analysis["metrics"]} == {"request-success-rate", "request-duration"}
    assert any(w["type"] == "rollout" and "loadtester" in w["url"] for w in analysis["webhooks"])
    assert canary["service"]["hosts"][0] == "shop.acme-shop.com"


def test_canary_targets_leave_primary_service_and_routing_to_flagger(prod):
    assert deployment(prod, "storefront")["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    assert not [o for o in objects(prod, "Service", "web") if o["metadata"]["name"] in ("storefront", "storefront-primary")]
    assert not [o for o in objects(prod, "VirtualService", "web")]
    assert not [o for o in objects(prod, "Deployment", "web") if o["metadata"]["name"].endswith("-primary")]


def test_exposed_service_without_canary_gets_a_route(scratch):
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d["envs"]["dev"].update(canary={"enabled": False}))
    dev = run("dev", scratch.root)
    route = dev.manifest("VirtualService", "storefront", "web")["spec"]
    assert route["hosts"] == ["shop.dev.acme-shop.com"] and route["gateways"] == ["istio-ingress/public"]
    assert dev.manifest("Service", "storefront", "web")["spec"]["ports"][0]["port"] == 8080


def test_slow_canary_is_rejected(scratch):
    scratch.edit("stacks/services/checkout/payment.yaml", lambda d: d["canary"].update(intervalSeconds=30, threshold=5))
    with pytest.raises(
        SpecError, match=r"payment.yaml: canary: rollback takes up to 180s .*\(intervalSeconds 30 x \(threshold 5 \+ 1\)\), over the stack's bound of 60s"
    ):
        load("prod", scratch.root)


def test_observability(stack):
    monitor = stack.manifest("ServiceMonitor", "orders", "checkout")["spec"]
    assert monitor["endpoints"][0]["port"] == "metrics"
    assert stack.manifest("Service", "orders-metrics", "checkout")["spec"]["ports"][0]["port"] == 9090
    rules = [r for g in stack.manifest("PrometheusRule", "orders", "checkout")["spec"]["groups"] for r in g["rules"]]
    assert any(r.get("record") == "slo:sli_error:ratio_rate5m" and 'destination_workload=~"orders(-primary)?"' in r["expr"] for r in rules)
    assert any(r.get("alert") == "ServiceErrorBudgetFastBurn" for r in rules)


def test_secrets_come_from_vault_through_external_secrets(stack):
    es = stack.manifest("ExternalSecret", "payment-provider", "checkout")["spec"]
    assert es["secretStoreRef"] == {"kind": "SecretStore", "name": "vault"}
    assert {d["remoteRef"]["key"] for d in es["data"]} == {"checkout/payment/provider"}
    env = {e["name"]: e for e in container(stack, "payment")["env"]}
    assert env["PROVIDER_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "payment-provider"
    assert "value" not in env["PROVIDER_API_KEY"]
    assert not objects(stack, "Secret", "checkout")


IMAGE = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/reviews:1.0.0"


def test_minimal_declaration_is_complete_and_compliant(scratch):
    scratch.add_service({"name": "reviews", "team": "catalog", "image": IMAGE, "port": 8080, "envs": {"staging": {"image": IMAGE}, "prod": {"image": IMAGE}}})
    rec = run("prod", scratch.root)
    kinds = {r.kind for r in rec.kubernetes_objects() if r.metadata.get("namespace") == "catalog" and "reviews" in r.metadata.get("name", "")}
    assert {
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "VerticalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "AuthorizationPolicy",
        "PeerAuthentication",
        "ServiceMonitor",
        "PrometheusRule",
    } <= kinds
    for r in rec.kubernetes_objects():
        if "reviews" in r.metadata.get("name", ""):
            assert errors(r.inputs, "1.35") == [], r.urn


def test_readme_service_example_is_a_valid_complete_declaration(scratch):
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Add a service") :]
    example = section[section.index("```yaml") + len("```yaml") : section.index("```", section.index("```yaml") + 7)]
    scratch.write("stacks/services/catalog/reviews.yaml", example)
    rec = run("prod", scratch.root)
    assert rec.manifest("Deployment", "reviews", "catalog")["spec"]["template"]["spec"]["containers"][0]["image"].endswith("/reviews:1.0.0")
    assert rec.manifest("Canary", "reviews", "catalog")


def test_prometheus_may_scrape_the_app_and_its_sidecar(prod):
    from components.addons.prometheus import NAMESPACE as MONITORING

    rules = [
        rule
        for rule in network(prod, "orders")["ingress"]
        if any(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == MONITORING for peer in rule["from"])
    ]
    assert {p["port"] for rule in rules for p in rule["ports"]} == {9090, 15090}
