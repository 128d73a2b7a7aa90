"""Who can reach whom, evaluated over every rendered NetworkPolicy of a stack.

The expected matrix is written out here, independent of the code that renders the policies:
declared dependencies, Prometheus scrapes, webhooks, DNS, the API server, mesh control and cloud
egress are allowed; every other (source, destination, port) among the endpoints below is denied.
"""

from __future__ import annotations

import functools
import ipaddress

import pytest

from components.spec import load
from components.spec.service import AWS_ENDPOINTS
from conftest import ROOT, recorded
from reachability import Endpoint, Network

VPC = {"dev": "10.20", "staging": "10.30", "prod": "10.10"}
PORTS = (
    22,
    53,
    80,
    443,
    587,
    3100,
    4317,
    4318,
    5432,
    6443,
    7979,
    8080,
    8085,
    8089,
    8200,
    8201,
    8888,
    9003,
    9090,
    9100,
    9402,
    9443,
    10250,
    15012,
    15014,
    15017,
    15090,
    16686,
)


def endpoints(stack: str) -> dict[str, Endpoint]:
    pod = Endpoint.pod
    found = {
        "internet": Endpoint.external("internet", "203.0.113.7"),
        "control-plane": Endpoint.external("control-plane", f"{VPC[stack]}.1.10"),
        "node": Endpoint.external("node", f"{VPC[stack]}.2.20"),
        "api-service": Endpoint.external("api-service", "172.20.0.1"),
        "imds": Endpoint.external("imds", "169.254.169.254"),
        "pod-identity": Endpoint.external("pod-identity", "169.254.170.23"),
        "kube-dns": pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"}),
        "other-pod": pod("other-pod", "default", {"app": "stray"}),
        "prometheus": pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
        "grafana": pod("grafana", "monitoring", {"app.kubernetes.io/name": "grafana"}),
        "alertmanager": pod("alertmanager", "monitoring", {"app.kubernetes.io/name": "alertmanager"}),
        "external-dns": pod("external-dns", "external-dns", {"app.kubernetes.io/name": "external-dns"}),
        "istio-cni": pod("istio-cni", "istio-cni", {"k8s-app": "istio-cni-node"}),
        "istiod": pod("istiod", "istio-system", {"app": "istiod"}),
        "gateway": pod("gateway", "istio-ingress", {"app": "istio-ingressgateway", "istio": "ingressgateway"}),
        "acme-solver": pod("acme-solver", "istio-ingress", {"acme.cert-manager.io/http01-solver": "true"}),
        "cert-manager": pod("cert-manager", "cert-manager", {"app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/component": "controller"}),
        "cert-manager-webhook": pod("cert-manager-webhook", "cert-manager", {"app.kubernetes.io/name": "webhook", "app.kubernetes.io/component": "webhook"}),
        "vault": pod("vault", "vault", {"app.kubernetes.io/name": "vault", "component": "server"}),
        "external-secrets": pod("external-secrets", "external-secrets", {"app.kubernetes.io/name": "external-secrets"}),
        "flagger": pod("flagger", "flagger-system", {"app.kubernetes.io/name": "flagger", "app.kubernetes.io/instance": "flagger"}),
        "loadtester": pod("loadtester", "flagger-loadtester", {"app": "loadtester"}),
        "collector": pod("collector", "tracing", {"app.kubernetes.io/name": "opentelemetry-collector", "app.kubernetes.io/instance": "otel-collector"}),
        "jaeger": pod("jaeger", "tracing", {"app.kubernetes.io/name": "jaeger", "app.kubernetes.io/instance": "jaeger"}),
        "external-secrets-webhook": pod("external-secrets-webhook", "external-secrets", {"app.kubernetes.io/name": "external-secrets-webhook"}),
        "keda": pod("keda", "keda", {"app": "keda-operator"}),
        "argocd": pod("argocd", "argocd", {"app.kubernetes.io/name": "argocd-repo-server"}),
        "loki": pod("loki", "logging", {"app.kubernetes.io/name": "loki"}),
        "loki-gateway": pod(
            "loki-gateway", "logging", {"app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": "loki", "app.kubernetes.io/component": "gateway"}
        ),
        "log-agent": pod("log-agent", "logging-agent", {"app.kubernetes.io/name": "opentelemetry-collector", "app.kubernetes.io/instance": "otel-agent"}),
        "egress-gateway": pod("egress-gateway", "istio-egress", {"app": "istio-egressgateway", "istio": "egressgateway"}),
        "velero": pod("velero", "velero", {"app.kubernetes.io/name": "velero", "app.kubernetes.io/instance": "velero"}),
        "vault-snapshot": pod("vault-snapshot", "velero", {"app.kubernetes.io/name": "vault-snapshot"}),
        # The chart's node agent, and what Velero itself starts: a data mover pod per volume (its labels
        # plus the node agent config's podLabels) and repository maintenance Jobs (the chart's global podLabels).
        "node-agent": pod(
            "node-agent", "velero", {"name": "node-agent", "role": "node-agent", "app.kubernetes.io/name": "velero", "app.kubernetes.io/instance": "velero"}
        ),
        "data-mover": pod(
            "data-mover",
            "velero",
            {
                "velero.io/data-upload": "teams-20260101020000-x7k2q",
                "velero.io/exposer-pod-group": "snapshot-exposer",
                "app.kubernetes.io/name": "velero-data-mover",
                "app.kubernetes.io/component": "kopia",
            },
        ),
        "repo-maintenance": pod(
            "repo-maintenance",
            "velero",
            {
                "velero.io/repo-name": "checkout-default-kopia-x7k2q",
                "app.kubernetes.io/name": "velero-repo-maintenance",
                "app.kubernetes.io/component": "kopia",
            },
        ),
        "database": Endpoint.external("database", "10.40.1.5"),
        "s3": Endpoint.external("s3", "52.100.0.10"),
    }
    for svc in load(stack, ROOT).services:
        found[svc.name] = pod(svc.name, svc.team, {"platform.io/service": svc.name})
    return found


# Endpoints no NetworkPolicy governs (outside the pod network, or namespaces the platform does not
# manage): what they may do among themselves is not this platform's matrix.
UNGOVERNED = {"internet", "control-plane", "node", "api-service", "imds", "pod-identity", "kube-dns", "other-pod", "database", "s3"}
# The API server: its Service address and the control plane's (and so the nodes') VPC addresses.
API = ("api-service", "control-plane", "node")
# Addresses in the VPC (the control plane's and the nodes', and so the interface VPC endpoints').
VPC_HOSTS = ("control-plane", "node")
# Public addresses: the internet, and AWS APIs reached through gateway endpoints (S3's prefix list).
PUBLIC = ("internet", "s3")


def reachable(network: Network, eps: dict[str, Endpoint]) -> set[tuple[str, str, int]]:
    return {
        (s, d, port)
        for s, src in eps.items()
        for d, dst in eps.items()
        if s != d and not (s in UNGOVERNED and d in UNGOVERNED)
        for port in PORTS
        if network.allowed(src, dst, port, "UDP" if port == 53 else "TCP")
    }


def expected(stack: str) -> set[tuple[str, str, int]]:
    decl = load(stack, ROOT)
    eps = endpoints(stack)
    edges: set[tuple[str, str, int]] = set()

    def add(src: str, dsts, *ports: int) -> None:
        for dst in [dsts] if isinstance(dsts, str) else dsts:
            edges.update((src, dst, port) for port in ports)

    everyone = [name for name in eps if name not in UNGOVERNED]
    for name in everyone:
        add(name, "kube-dns", 53)
    # Proxies (meshed namespaces) fetch config from istiod and send spans to the collector; both accept
    # any source, so Prometheus (which may scrape anything) and ungoverned pods get there too.
    meshed = ["gateway", "acme-solver", "flagger", "loadtester", *(s.name for s in decl.services)]
    for name in [*meshed, "prometheus", "kube-dns", "other-pod"]:
        add(name, "istiod", 15012)
        add(name, "collector", 4317, 4318)
    for name in (
        "cert-manager",
        "cert-manager-webhook",
        "istiod",
        "vault",
        "external-secrets",
        "external-secrets-webhook",
        "flagger",
        "keda",
        "argocd",
        "loki",
        "loki-gateway",
        "log-agent",
        "prometheus",
        "grafana",
        "alertmanager",
        "external-dns",
        "istio-cni",
    ):
        add(name, API, 443)
    # Webhooks and aggregated APIs, called from the control plane (whose interfaces share the nodes' VPC).
    for src in ("control-plane", "node"):
        add(src, "cert-manager-webhook", 10250)
        add(src, "istiod", 15017)
        add(src, "external-secrets-webhook", 10250)
        add(src, "keda", 9443, 6443)
    # The public gateway: the internet in, the exposed services and ACME solvers out.
    for src in ("internet", "control-plane", "node", "api-service", "imds", "pod-identity", "database", "s3"):
        add(src, "gateway", 80, 443)
    add("gateway", "acme-solver", 8089)
    # Cloud APIs (public addresses only) and Pod Identity.
    add("cert-manager", PUBLIC, 80, 443)
    for name in ("vault", "keda"):
        add(name, PUBLIC, 443)
        add(name, "pod-identity", 80)
    add("argocd", PUBLIC, 22, 443)
    # ExternalDNS: Route 53 with Pod Identity credentials, scraped on its metrics port.
    add("external-dns", PUBLIC, 443)
    add("external-dns", "pod-identity", 80)
    add("prometheus", "external-dns", 7979)
    # The Istio CNI agent (pod network in sidecar mode): the API, scraped on its metrics port.
    add("prometheus", "istio-cni", 15014)
    # Alertmanager: the receivers (HTTPS, and the SMTP relay's submission port of the sample stacks).
    add("alertmanager", PUBLIC, 443, 587)
    if decl.environment == "prod" and decl.spec.dns is not None:
        # DNS-01: Route 53 credentials, and the propagation check against the authoritative servers.
        add("cert-manager", "pod-identity", 80)
        add("cert-manager", PUBLIC, 53)
    # The egress gateway: sidecars of services declaring hosts in, the public hosts' ports out.
    for name in ("egress-gateway",):
        add(name, "istiod", 15012)
        add(name, "collector", 4317, 4318)
        add(name, "kube-dns", 53)
        add("prometheus", name, 15090)
    host_ports = sorted({port for s in decl.services for _, port in s.external_hosts})
    add("egress-gateway", PUBLIC, *host_ports)
    # Peers.
    add("external-secrets", "vault", 8200)
    add("flagger", "prometheus", 9090)
    add("flagger", "loadtester", 8080)
    # Predictive scaling: the KEDA operator queries the forecast (docs/predictive-scaling.md).
    if any(s.scaling.predictive for s in decl.services):
        add("keda", "prometheus", 9090)
    add("grafana", "jaeger", 16686)
    add("grafana", ["loki", "loki-gateway"], 8080)
    # Loki's targets and gateway call each other; the node agents (their own namespace) write to the gateway only.
    add("loki", "loki-gateway", *PORTS)
    add("loki-gateway", "loki", *PORTS)
    add("log-agent", "loki-gateway", 8080)
    add("collector", "jaeger", 4317)
    add("jaeger", "collector", 4317)
    # One namespace: Prometheus, Alertmanager and Grafana call each other.
    for a, b in (("grafana", "prometheus"), ("alertmanager", "prometheus"), ("alertmanager", "grafana")):
        add(a, b, *PORTS)
        add(b, a, *PORTS)
    # Prometheus: every pod's declared metrics ports, pods nobody governs, the nodes.
    add("prometheus", ["kube-dns", "other-pod"], *PORTS)
    add("prometheus", ["control-plane", "node"], 9100, 10250, 15014)
    add("prometheus", "istiod", 15014)
    add("prometheus", ["cert-manager", "cert-manager-webhook"], 9402)
    add("prometheus", ["gateway", "acme-solver", "flagger", "loadtester"], 15090)
    add("prometheus", "flagger", 8080)
    add("prometheus", "collector", 8888)
    add("prometheus", "external-secrets", 8080)
    add("prometheus", ["loki", "loki-gateway"], 3100)
    add("prometheus", "log-agent", 8888)
    # Argo CD's components (8080 among their metrics ports), KEDA's, Vault's API listener (its telemetry).
    add("prometheus", "argocd", 8080)
    add("prometheus", "keda", 8080)
    add("prometheus", "vault", 8200)
    # Velero: the API, S3/KMS/EC2 with Pod Identity, scraped on its metrics port; its Vault snapshot job
    # reaches the raft leader over TLS and uploads to S3.
    # With the data mover (prod's copyTo): the node agent (the server's labels, scraped by its PodMonitor)
    # and the Kopia clients reach the API, S3 and KMS, and the Pod Identity agent; nothing else. Without
    # it, a pod with their labels reaches only the API, like every pod of the namespace.
    if decl.spec.addon_enabled("velero"):
        movers = ("node-agent", "data-mover", "repo-maintenance") if decl.spec.backup.moves_data else ("node-agent",)
        add("prometheus", ["velero", "node-agent"], 8085)
        add("data-mover", API, 443)
        add("repo-maintenance", API, 443)
        for name in ("velero", "vault-snapshot", *movers):
            add(name, API, 443)
            add(name, PUBLIC, 443)
            add(name, "pod-identity", 80)
        if decl.spec.addon_enabled("vault"):
            add("vault-snapshot", "vault", 8200)
    if decl.spec.addon_enabled("logging") and decl.spec.addons["logging"].settings.get("mode") == "simple-scalable":
        for name in ("loki", "loki-gateway"):
            add(name, PUBLIC, 443)
            add(name, "pod-identity", 80)
    # Services: dependsOn edges, the gateway for exposed ones, the load tester for canaries, scrapes.
    services = {s.name: s for s in decl.services}
    for svc in services.values():
        for dep in svc.depends_on:
            add(svc.name, dep, services[dep].port)
        if svc.expose:
            add("gateway", svc.name, svc.port)
        if svc.canary_enabled(decl.environment):
            add("loadtester", svc.name, svc.port)
        add("prometheus", svc.name, svc.metrics_port, 15090)
        # Declared egress: hosts through the egress gateway, private networks directly, AWS APIs through
        # interface endpoints (VPC addresses) or gateway endpoints (the prefix list's addresses).
        if svc.external_hosts:
            add(svc.name, "egress-gateway", 443)
        for cidr, port in svc.private_networks:
            if ipaddress.ip_address(eps["database"].ip) in ipaddress.ip_network(cidr):
                add(svc.name, "database", port)
        if any(AWS_ENDPOINTS[api] == "Interface" for api in svc.aws_apis):
            add(svc.name, VPC_HOSTS, 443)
        if any(AWS_ENDPOINTS[api] == "Gateway" for api in svc.aws_apis):
            add(svc.name, "s3", 443)
        if svc.aws_permissions or svc.scaling.sqs:
            add(svc.name, "pod-identity", 80)
    return {e for e in edges if e[0] != e[1] and not (e[0] in UNGOVERNED and e[1] in UNGOVERNED) and e[2] in PORTS}


@functools.lru_cache(maxsize=None)
def matrix(stack: str) -> frozenset[tuple[str, str, int]]:
    network = Network.of(o.inputs for o in recorded(stack).kubernetes_objects())
    return frozenset(reachable(network, endpoints(stack)))


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_reachability_matrix(stack):
    actual, wanted = matrix(stack), expected(stack)
    assert sorted(actual - wanted) == [], "allowed but not expected"
    assert sorted(wanted - actual) == [], "expected but denied"


def test_team_secret_stores_reach_vault_only_through_the_operator(stack):
    """Every team namespace has its own SecretStore, yet no team pod reaches Vault: the operator, in its
    own namespace, logs in for the store; the teams' pods only read the Secrets it writes."""
    reached = matrix(stack.stack)
    assert ("external-secrets", "vault", 8200) in reached
    services = [s.name for s in load(stack.stack, ROOT).services]
    assert services and not [(s, p) for s in services for p in (8200, 8201) if (s, "vault", p) in reached]
    assert [r for r in stack.kubernetes_objects() if r.kind == "SecretStore"]


def test_every_namespace_has_default_deny(stack):
    objects = [o.inputs for o in stack.kubernetes_objects()]
    namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    deny = {
        o["metadata"]["namespace"]
        for o in objects
        if o["kind"] == "NetworkPolicy"
        and o["spec"]["podSelector"] == {}
        and set(o["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not o["spec"].get("ingress")
        and not o["spec"].get("egress")
    }
    assert namespaces and namespaces <= deny, sorted(namespaces - deny)


def test_a_stray_pod_in_a_platform_namespace_reaches_only_dns():
    network = Network.of(o.inputs for o in recorded("dev").kubernetes_objects())
    eps = endpoints("dev")
    stray = Endpoint.pod("stray", "vault", {"app": "debug"})
    reached = {(d, p) for d, dst in eps.items() for p in PORTS if network.allowed(stray, dst, p, "UDP" if p == 53 else "TCP")}
    # DNS, the API server, and Vault's own peer ports (every pod of the namespace is a raft peer's neighbour).
    allowed = {("kube-dns", 53), *((name, 443) for name in ("api-service", "control-plane", "node")), *(("vault", p) for p in (8200, 8201))}
    assert reached == allowed
    assert not any(network.allowed(eps["orders"], stray, p) for p in PORTS)


# -- the evaluator itself --------------------------------------------------------------------------


def policy(namespace, spec):
    return {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": namespace}, "spec": spec}


A = Endpoint.pod("a", "ns1", {"app": "a"})
B = Endpoint.pod("b", "ns2", {"app": "b"})


def test_no_policy_allows_everything():
    assert Network.of([]).allowed(A, B, 80)


def test_default_deny_denies_and_an_allow_opens_one_port():
    deny = policy("ns2", {"podSelector": {}, "policyTypes": ["Ingress"]})
    allow = policy(
        "ns2",
        {
            "podSelector": {"matchLabels": {"app": "b"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ns1"}}}], "ports": [{"port": 80}]}],
        },
    )
    assert not Network.of([deny]).allowed(A, B, 80)
    assert Network.of([deny, allow]).allowed(A, B, 80)
    assert not Network.of([deny, allow]).allowed(A, B, 81)
    assert not Network.of([deny, allow]).allowed(A, B, 80, "UDP")


def test_egress_needs_allowing_too():
    deny = policy("ns1", {"podSelector": {}, "policyTypes": ["Egress"]})
    assert not Network.of([deny]).allowed(A, B, 80)
    assert Network.of([deny]).allowed(B, A, 80)


def test_pod_selector_alone_means_the_policys_namespace():
    allow = policy("ns2", {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}]})
    assert not Network.of([allow]).allowed(A, B, 80)
    assert Network.of([allow]).allowed(Endpoint.pod("a2", "ns2", {"app": "a"}), B, 80)


def test_ip_block_with_except_and_port_ranges():
    allow = policy(
        "ns1",
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}], "ports": [{"port": 8000, "endPort": 8100}]}],
        },
    )
    net = Network.of([allow])
    assert net.allowed(A, Endpoint.external("x", "10.2.0.1"), 8050)
    assert not net.allowed(A, Endpoint.external("x", "10.1.0.1"), 8050)
    assert not net.allowed(A, Endpoint.external("x", "10.2.0.1"), 8101)
    assert not net.allowed(A, B, 8050)


def test_match_expressions():
    allow = policy("ns2", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]}}]}]})
    net = Network.of([allow, {"kind": "Namespace", "metadata": {"name": "ns1", "labels": {"team": "x"}}}])
    assert net.allowed(A, B, 80)
    assert not Network.of([allow]).allowed(A, B, 80)
