"""Declared egress: external hosts through the egress gateway, private networks by ipBlock, AWS through VPC endpoints."""

from __future__ import annotations

import pytest

from components.spec import SpecError, load
from conftest import ROOT, recorded
from engine.stacks import run
from reachability import Network
from test_reachability import PORTS, endpoints

PAYMENT_PRINCIPAL = "cluster.local/ns/checkout/sa/payment"


def release_values(rec, name):
    return next(r for r in rec.of_type("kubernetes:helm.sh/v3:Release") if r.inputs.get("name") == name).inputs["values"]


def test_external_host_routes_through_the_egress_gateway(stack):
    entry = stack.manifest("ServiceEntry", "egress-api-stripe-com-443", "istio-egress")["spec"]
    assert entry["hosts"] == ["api.stripe.com"] and entry["location"] == "MESH_EXTERNAL" and entry["resolution"] == "DNS"
    assert entry["ports"] == [{"number": 443, "name": "tls-443", "protocol": "TLS"}]
    assert set(entry["exportTo"]) == {"checkout", "istio-egress"}
    gateway = stack.manifest("Gateway", "egress-api-stripe-com-443-gateway", "istio-egress")["spec"]
    assert gateway["selector"] == {"app": "istio-egressgateway", "istio": "egressgateway"}
    assert gateway["servers"][0]["tls"] == {"mode": "ISTIO_MUTUAL"} and gateway["servers"][0]["hosts"] == ["api.stripe.com"]
    route = stack.manifest("VirtualService", "egress-api-stripe-com-443-route", "istio-egress")["spec"]
    assert route["tls"][0]["route"][0]["destination"]["host"] == "istio-egressgateway.istio-egress.svc.cluster.local"
    assert route["tcp"][0]["route"][0]["destination"] == {"host": "api.stripe.com", "port": {"number": 443}}
    subsets = stack.manifest("DestinationRule", "egress-gateway", "istio-egress")["spec"]["subsets"]
    assert subsets[0]["trafficPolicy"]["portLevelSettings"][0]["tls"] == {"mode": "ISTIO_MUTUAL", "sni": "api.stripe.com"}


def test_only_the_declaring_service_may_use_the_route(stack):
    policy = stack.manifest("AuthorizationPolicy", "egress-api-stripe-com-443-callers", "istio-egress")["spec"]
    assert policy["action"] == "ALLOW"
    [rule] = policy["rules"]
    assert rule["from"] == [{"source": {"principals": [PAYMENT_PRINCIPAL]}}]
    assert rule["when"] == [{"key": "connection.sni", "values": ["api.stripe.com"]}]


def test_a_second_caller_joins_the_same_route(scratch):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(egress=[{"host": "api.stripe.com", "port": 443}]))
    # Every team may call Stripe once the platform offers it to all (policy.sharedEgress).
    for stack in ("dev", "staging", "prod"):
        scratch.edit(f"stacks/{stack}.yaml", lambda d: d["policy"].update(sharedEgress={"hosts": ["api.stripe.com"]}))
    rec = run("dev", scratch.root)
    policy = rec.manifest("AuthorizationPolicy", "egress-api-stripe-com-443-callers", "istio-egress")["spec"]
    assert policy["rules"][0]["from"][0]["source"]["principals"] == ["cluster.local/ns/catalog/sa/inventory", PAYMENT_PRINCIPAL]
    assert set(rec.manifest("ServiceEntry", "egress-api-stripe-com-443", "istio-egress")["spec"]["exportTo"]) == {"catalog", "checkout", "istio-egress"}


def test_registry_only_in_prod():
    assert release_values(recorded("prod"), "istiod")["meshConfig"]["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    assert release_values(recorded("dev"), "istiod")["meshConfig"]["outboundTrafficPolicy"] == {"mode": "ALLOW_ANY"}


def test_private_network_by_ip_block_and_service_entry(stack):
    policy = stack.manifest("NetworkPolicy", "orders-egress", "checkout")["spec"]
    assert {"to": [{"ipBlock": {"cidr": "10.40.0.0/16"}}], "ports": [{"port": 5432, "protocol": "TCP"}]} in policy["egress"]
    entry = stack.manifest("ServiceEntry", "orders-egress-10-40-0-0-16-5432", "checkout")["spec"]
    assert entry["addresses"] == ["10.40.0.0/16"] and entry["resolution"] == "NONE" and entry["exportTo"] == ["."]


def vpc_endpoints(rec):
    return {r.inputs["serviceName"].rsplit(".", 1)[1]: r.inputs for r in rec.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}


def test_queue_worker_reaches_sqs_through_an_interface_endpoint(stack):
    found = vpc_endpoints(stack)
    assert set(found) == {"sqs"}
    assert found["sqs"]["vpcEndpointType"] == "Interface" and found["sqs"]["privateDnsEnabled"] is True
    assert len(found["sqs"]["subnetIds"]) == load(stack.stack, ROOT).spec.network.availability_zones
    policy = stack.manifest("NetworkPolicy", "notifications-egress", "messaging")["spec"]
    cidr = load(stack.stack, ROOT).spec.network.cidr
    assert {"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"port": 443, "protocol": "TCP"}]} in policy["egress"]
    assert not any(peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for rule in policy["egress"] for peer in rule["to"])


def test_s3_gets_a_gateway_endpoint_and_its_prefix_list(scratch):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(egress=[{"aws": ["s3", "sqs"]}]))
    rec = run("dev", scratch.root)
    found = vpc_endpoints(rec)
    assert set(found) == {"s3", "sqs"}
    assert found["s3"]["vpcEndpointType"] == "Gateway" and len(found["s3"]["routeTableIds"]) == 2
    assert "privateDnsEnabled" not in found["s3"] or not found["s3"]["privateDnsEnabled"]
    rules = rec.manifest("NetworkPolicy", "inventory-egress", "catalog")["spec"]["egress"]
    blocks = {peer["ipBlock"]["cidr"] for rule in rules for peer in rule["to"]}
    assert "10.20.0.0/16" in blocks and any(b.startswith("52.") for b in blocks)


def test_a_service_without_egress_reaches_nothing_outside_the_mesh(stack):
    network = Network.of(o.inputs for o in stack.kubernetes_objects())
    eps = endpoints(stack.stack)
    outside = [eps[n] for n in ("internet", "database", "s3", "node", "control-plane", "api-service", "pod-identity", "egress-gateway")]
    quiet = [s for s in load(stack.stack, ROOT).services if not s.egress and not s.aws_apis and not s.aws_permissions]
    assert quiet
    for svc in quiet:
        for dst in outside:
            assert not [p for p in PORTS if network.allowed(eps[svc.name], dst, p)], (svc.name, dst.name)
    # And a declaring service reaches only what it declared.
    payment = eps["payment"]
    assert [p for p in PORTS if network.allowed(payment, eps["egress-gateway"], p)] == [443]
    assert not [p for p in PORTS if network.allowed(payment, eps["internet"], p)]


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"host": "payments.example.net"}, "port: required with host"),
        ({"cidr": "8.8.8.0/24", "port": 53}, "must be a private IPv4 network"),
        ({"cidr": "10.0.0.1/8", "port": 5432}, "is not a network address"),
        ({"aws": ["sqs"], "port": 443}, "port: not used with aws"),
        ({"aws": ["ec2-everything"]}, "egress[0].aws[0]: Input should be"),
        ({"host": "payments.example.net", "cidr": "10.40.0.0/16", "port": 443}, "exactly one of host, cidr or aws"),
        ({"host": "*.example.net", "port": 443}, "must be an external DNS name"),
        ({"host": "db.checkout.svc.cluster.local", "port": 5432}, "must be an external DNS name"),
        ({"host": "payments.example.net", "port": 443, "tls": True}, "egress[0].tls"),
    ],
)
def test_bad_egress_is_refused_naming_file_and_key(scratch, entry, message):
    scratch.edit("stacks/services/checkout/payment.yaml", lambda d: d.update(egress=[entry]))
    with pytest.raises(SpecError, match="payment.yaml") as err:
        load("dev", scratch.root)
    assert message in str(err.value)


def test_host_egress_needs_istio(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: [d["addons"].pop(a) for a in ("flagger", "tracing", "istio", "external-dns")])
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d.pop("expose") and d["envs"]["dev"].pop("expose"))
    # Without Flagger, dev runs no canaries.
    for name in ("orders", "payment"):
        scratch.edit(f"stacks/services/checkout/{name}.yaml", lambda d: d["envs"].update(dev={"canary": {"enabled": False}}))
    with pytest.raises(SpecError, match="egress: needs the istio addon"):
        load("dev", scratch.root)
