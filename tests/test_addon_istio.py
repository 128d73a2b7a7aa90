"""Istio: three ordered releases, STRICT mTLS, the public gateway with its certificate and redirect."""

from __future__ import annotations

import pytest

from components.addons import istio
from components.addons.cert_manager import COMPONENT_TYPE, SOLVER_INGRESS_CLASS, issuer_for
from components.spec import SpecError, load
from components.versions import ISTIO_BASE, ISTIO_GATEWAY, ISTIOD
from engine import chart_values
from engine.stacks import run

RELEASE = "kubernetes:helm.sh/v3:Release"
EXPOSED = {"dev": ["shop.dev.acme-shop.com"], "staging": ["shop.staging.acme-shop.com"], "prod": ["shop.acme-shop.com"]}


def releases(rec) -> dict[str, object]:
    return {r.inputs["name"]: r for r in rec.of_type(RELEASE) if "$platform:addons:Istio$" in r.urn}


def test_four_pinned_releases_in_their_namespaces(stack):
    found = releases(stack)
    assert set(found) == {"istio-base", "istiod", "istio-ingressgateway", "istio-egressgateway"}
    for name, chart, namespace in (
        ("istio-base", ISTIO_BASE, "istio-system"),
        ("istiod", ISTIOD, "istio-system"),
        ("istio-ingressgateway", ISTIO_GATEWAY, "istio-ingress"),
        ("istio-egressgateway", ISTIO_GATEWAY, "istio-egress"),
    ):
        inputs = found[name].inputs
        assert (inputs["chart"], inputs["version"], inputs["namespace"]) == (chart.name, "1.30.3", namespace)


def test_releases_install_in_order_after_cert_manager(stack):
    found = releases(stack)
    ingress_ns = stack.named("istio-istio-ingress", "kubernetes:core/v1:Namespace")
    assert found["istio-base"].urn in found["istiod"].dependencies
    assert found["istiod"].urn in found["istio-ingressgateway"].dependencies
    assert ingress_ns.urn in found["istio-ingressgateway"].dependencies
    [cert_manager] = stack.of_type(COMPONENT_TYPE)
    for release in found.values():
        assert cert_manager.urn in release.dependencies


def test_gateway_has_its_own_namespace_labelled_for_injection(stack):
    labels = stack.manifest("Namespace", istio.INGRESS_NAMESPACE)["metadata"]["labels"]
    assert labels["istio-injection"] == "enabled"
    assert istio.INJECTION_LABEL == {"istio-injection": "enabled"}


def test_values_exist_in_the_charts_including_istios_top_level_form(stack):
    for release in releases(stack).values():
        chart = {"base": ISTIO_BASE, "istiod": ISTIOD, "gateway": ISTIO_GATEWAY}[release.inputs["chart"]]
        assert chart_values.unknown_keys(chart, release.inputs["values"]) == []
    # Istio's defaults live under _internal_defaults_do_not_set, but users set the keys at the top.
    assert chart_values.unknown_keys(ISTIO_GATEWAY, {"service": {"typ": "LoadBalancer"}}) == ["service.typ"]
    assert chart_values.unknown_keys(ISTIO_GATEWAY, {"_internal_defaults_do_not_set": {}}) == ["_internal_defaults_do_not_set"]


def test_gateway_service_is_an_internet_facing_nlb(stack):
    service = releases(stack)["istio-ingressgateway"].inputs["values"]["service"]
    assert service["type"] == "LoadBalancer"
    assert service["externalTrafficPolicy"] == "Local"
    assert service["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"] == "nlb"
    assert "service.beta.kubernetes.io/aws-load-balancer-internal" not in service["annotations"]


def test_replicas_and_disruption_budgets_follow_the_settings(dev, prod):
    for rec, istiod_min, gateway_min, gateway_max in ((dev, 1, 1, 5), (prod, 2, 3, 10)):
        found = releases(rec)
        istiod = found["istiod"].inputs["values"]
        gateway = found["istio-ingressgateway"].inputs["values"]
        assert istiod["autoscaleMin"] == istiod_min
        assert istiod["global"]["defaultPodDisruptionBudget"]["enabled"] is (istiod_min > 1)
        assert gateway["autoscaling"] == {"minReplicas": gateway_min, "maxReplicas": gateway_max}
        assert gateway["podDisruptionBudget"] == ({"minAvailable": 1} if gateway_min > 1 else {})


def test_gateway_max_below_min_is_rejected(scratch):
    scratch.edit("stacks/prod.yaml", lambda d: d["addons"]["istio"]["settings"].update(gatewayMaxReplicas=2))
    with pytest.raises(SpecError, match=r"stacks/prod.yaml: addons.istio.settings: gatewayMaxReplicas 2 is below gatewayReplicas 3"):
        load("prod", scratch.root)


# -- names other components rely on, checked against the gateway chart -----------------------


def test_exported_names_follow_the_gateway_chart():
    defaults = chart_values.defaults(ISTIO_GATEWAY)
    # No name override and a created service account named after the release (gateway.name).
    assert defaults["name"] == ""
    assert defaults["serviceAccount"]["create"] is True and defaults["serviceAccount"]["name"] == ""
    assert istio.INGRESS_SERVICE_ACCOUNT == "istio-ingressgateway"
    # Pods carry app=<name> and istio=<name without "istio-">; the chart's labels cannot override them.
    assert istio.INGRESS_POD_LABELS == {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    assert not {"app", "istio"} & set(defaults["labels"])
    assert istio.INGRESS_PRINCIPAL == "cluster.local/ns/istio-ingress/sa/istio-ingressgateway"
    assert (istio.SYSTEM_NAMESPACE, istio.INGRESS_NAMESPACE, istio.GATEWAY) == ("istio-system", "istio-ingress", "istio-ingress/public")


def test_ingress_solver_reaches_the_gateway_pods(stack):
    mesh = releases(stack)["istiod"].inputs["values"]["meshConfig"]
    assert mesh["ingressClass"] == SOLVER_INGRESS_CLASS
    assert mesh["ingressSelector"] == istio.INGRESS_POD_LABELS["istio"]
    ingress_class = stack.manifest("IngressClass", SOLVER_INGRESS_CLASS)
    assert ingress_class["spec"] == {"controller": "istio.io/ingress-controller"}


# -- mesh and public traffic ------------------------------------------------------------------


def test_mesh_wide_strict_mtls(stack):
    peer = stack.manifest("PeerAuthentication", "default", "istio-system")
    assert peer["apiVersion"] == "security.istio.io/v1"
    assert peer["spec"] == {"mtls": {"mode": "STRICT"}}


def test_public_gateway_serves_every_exposed_host_over_https(stack):
    hosts = EXPOSED[stack.stack]
    namespace, name = istio.GATEWAY.split("/")
    gateway = stack.manifest("Gateway", name, namespace)["spec"]
    assert gateway["selector"] == {"istio": istio.INGRESS_POD_LABELS["istio"]}
    [server] = gateway["servers"]
    assert server["port"] == {"number": 443, "name": "https", "protocol": "HTTPS"}
    assert server["hosts"] == hosts
    certificate = stack.manifest("Certificate", name, namespace)["spec"]
    assert server["tls"] == {"mode": "SIMPLE", "credentialName": certificate["secretName"], "minProtocolVersion": "TLSV1_2"}
    assert certificate["dnsNames"] == hosts
    assert certificate["issuerRef"] == {"name": issuer_for(stack.stack), "kind": "ClusterIssuer", "group": "cert-manager.io"}


def test_http_redirects_to_https_without_hiding_acme_challenges(stack):
    hosts = EXPOSED[stack.stack]
    namespace, name = istio.HTTP_GATEWAY.split("/")
    [server] = stack.manifest("Gateway", name, namespace)["spec"]["servers"]
    assert server == {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": hosts}
    # A catch-all route (sorted after the solver's exact path), not tls.httpsRedirect on the server.
    redirect = stack.manifest("VirtualService", "https-redirect", namespace)["spec"]
    assert redirect["gateways"] == [istio.HTTP_GATEWAY] and redirect["hosts"] == hosts
    assert redirect["http"] == [{"name": "https-redirect", "redirect": {"scheme": "https", "redirectCode": 301}}]
    for obj in stack.kubernetes_objects():
        if obj.kind == "Gateway":
            assert all("httpsRedirect" not in (s.get("tls") or {}) for s in obj.inputs["spec"]["servers"])


def test_gateway_waits_for_its_certificate(stack):
    certificate = stack.named("istio-certificate-public", "kubernetes:cert-manager.io/v1:Certificate")
    gateway = stack.named("istio-gateway-public", "kubernetes:networking.istio.io/v1:Gateway")
    assert certificate.urn in gateway.dependencies
    assert releases(stack)["istio-ingressgateway"].urn in gateway.dependencies


def test_no_exposed_service_means_no_gateway_or_certificate(scratch):
    def unexpose(path):
        scratch.edit(path, lambda d: (d.pop("expose", None), [env.pop("expose", None) for env in d.get("envs", {}).values()]))

    unexpose("stacks/services/web/storefront.yaml")
    rec = run("dev", scratch.root)
    for kind, name in (("Gateway", "public"), ("Gateway", "public-http"), ("Certificate", "public"), ("VirtualService", "https-redirect")):
        with pytest.raises(KeyError):
            rec.manifest(kind, name, istio.INGRESS_NAMESPACE)
    assert rec.manifest("PeerAuthentication", "default", "istio-system")
    assert {"istio-base", "istiod", "istio-ingressgateway", "istio-egressgateway"} == set(releases(rec))


def test_egress_gateway_is_internal_only(stack):
    values = releases(stack)["istio-egressgateway"].inputs["values"]
    assert values["service"]["type"] == "ClusterIP"
    assert values["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
