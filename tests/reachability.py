"""A small evaluator of Kubernetes NetworkPolicy semantics over rendered objects: may A open a connection to B?

What it implements (networking.k8s.io/v1, as the API reference defines it):
- a pod is isolated for a direction when some policy of its namespace selects it (podSelector) and
  lists that direction in policyTypes (unset: Ingress, plus Egress when the policy has egress rules);
  a non-isolated direction allows everything;
- allowed traffic is the union of every selecting policy's rules; a rule matches when one of its
  peers matches (no `from`/`to`: any peer) and one of its ports does (no `ports`: any port);
- peers: podSelector alone (the policy's namespace), namespaceSelector alone (every pod of matching
  namespaces), both (matching pods in matching namespaces), ipBlock (cidr minus except);
- ports: number, protocol (default TCP), endPort ranges;
- a connection needs the source's egress and the destination's ingress.
Endpoints outside the pod network (the internet, the control plane, node services) have an address
and no namespace: no policy applies to them, and only ipBlock peers match them. Pods are matched by
selectors only, never by ipBlock: the API reference asks ipBlock to name cluster-external addresses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

NS_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Endpoint:
    name: str
    namespace: Optional[str] = None
    labels: tuple[tuple[str, str], ...] = ()
    ip: Optional[str] = None

    @classmethod
    def pod(cls, name: str, namespace: str, labels: dict[str, str]) -> "Endpoint":
        return cls(name, namespace, tuple(sorted(labels.items())))

    @classmethod
    def external(cls, name: str, ip: str) -> "Endpoint":
        return cls(name, ip=ip)


def selects(selector: Optional[dict[str, Any]], labels: dict[str, str]) -> bool:
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def policy_types(spec: dict[str, Any]) -> list[str]:
    if spec.get("policyTypes"):
        return spec["policyTypes"]
    return ["Ingress", *(["Egress"] if spec.get("egress") else [])]


@dataclass
class Network:
    policies: list[dict[str, Any]]
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, objects: Iterable[dict[str, Any]]) -> "Network":
        objects = list(objects)
        namespaces = {"kube-system": {}, "default": {}}
        for o in objects:
            if o.get("kind") == "Namespace":
                namespaces[o["metadata"]["name"]] = dict(o["metadata"].get("labels") or {})
        for name, labels in namespaces.items():
            labels[NS_LABEL] = name
        return cls([o for o in objects if o.get("kind") == "NetworkPolicy"], namespaces)

    def allowed(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self._side(src, dst, port, protocol, "Egress") and self._side(dst, src, port, protocol, "Ingress")

    def _side(self, pod: Endpoint, other: Endpoint, port: int, protocol: str, direction: str) -> bool:
        if pod.namespace is None:
            return True
        labels = dict(pod.labels)
        selecting = [
            p
            for p in self.policies
            if p["metadata"].get("namespace", "default") == pod.namespace
            and direction in policy_types(p["spec"])
            and selects(p["spec"].get("podSelector"), labels)
        ]
        if not selecting:
            return True
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in selecting:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                if peers and not any(self._peer(peer, policy["metadata"].get("namespace", "default"), other) for peer in peers):
                    continue
                ports = rule.get("ports")
                if ports and not any(self._port(p, port, protocol) for p in ports):
                    continue
                return True
        return False

    def _peer(self, peer: dict[str, Any], policy_namespace: str, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            if other.ip is None:
                return False
            address = ipaddress.ip_address(other.ip)
            block = peer["ipBlock"]
            return address in ipaddress.ip_network(block["cidr"]) and not any(address in ipaddress.ip_network(e) for e in block.get("except") or [])
        if other.namespace is None:
            return False
        if "namespaceSelector" in peer:
            if not selects(peer["namespaceSelector"], self.namespace_labels.get(other.namespace, {NS_LABEL: other.namespace})):
                return False
        elif other.namespace != policy_namespace:
            return False
        return "podSelector" not in peer or selects(peer["podSelector"], dict(other.labels))

    @staticmethod
    def _port(rule: dict[str, Any], port: int, protocol: str) -> bool:
        if rule.get("protocol", "TCP") != protocol:
            return False
        if "port" not in rule:
            return True
        if not isinstance(rule["port"], int):
            return False
        return rule["port"] <= port <= rule.get("endPort", rule["port"])
