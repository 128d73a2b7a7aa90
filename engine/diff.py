"""`make diff STACK=<stack> BASE=<git ref>`: the offline desired-state diff of a change.

Runs the embedded engine twice: on BASE, checked out in a temporary `git worktree` and run there by
*its own* code (`python -m engine.record` in a subprocess whose working directory is the worktree,
on this project's interpreter), and on the working tree (in-process). Then it compares the two by
URN, the way `pulumi preview --diff` does:

- resources to create, update, replace and delete, with property-level changes
  (`spec.template.spec.containers[0].image: "shop/orders:1.12.0" -> "shop/orders:1.13.0"`);
- a replacement warning wherever a changed property forces the provider to replace the resource
  (`REPLACE_ON_CHANGE` and `KUBERNETES_REPLACE_ON_CHANGE` below);
- the rendered Kubernetes manifests that change (by `build/<stack>/manifests/` path);
- policy violations the change introduces or fixes;
- the services the change touches, as a Mermaid graph with their `dependsOn` edges;
- stack outputs that change.

It writes `build/<stack>/diff.md` (Markdown for a PR comment) and `build/<stack>/diff.json`, prints
the Markdown, and exits 0; 1 when the change introduces a mandatory policy violation; 2 when it
cannot diff (an unknown ref, a base that predates `engine.record`, declarations or a program that
the engine rejects). Secrets stay "[secret]": the engine masks them before anything is recorded, so
a changed secret value is invisible here (the real `pulumi preview` shows it as changed).

The comparison itself is `compare(base, head)` over two `engine.record` documents, so tests (and
other tools) can diff any two runs without git.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Optional

import yaml

from .recording import NOT_OBJECTS

EXIT_OK, EXIT_BLOCKING, EXIT_ERROR = 0, 1, 2
RECORD_MODULE = "engine/record.py"
# GitHub refuses comments over 65,536 characters; the details are cut to stay well below.
MAX_MARKDOWN = 60_000
MAX_VALUE = 160

# --- What forces a replacement -------------------------------------------------------------------
#
# Paths are input paths (camelCase, as registered); `[*]` matches any list index. A change at or
# below a listed path forces the provider to delete and re-create the resource.
#
# AWS: pulumi-aws 7.x bridges terraform-provider-aws 6.x, where these arguments are `ForceNew`.
# Checked against the provider's schemas for aws_eks_cluster (note: vpcConfig.subnetIds and
# securityGroupIds are *not* here: EKS updates them in place since UpdateClusterConfig learned them,
# and the provider followed), aws_eks_node_group and aws_subnet; the others follow the provider's
# documented `ForceNew` arguments.
REPLACE_ON_CHANGE: dict[str, tuple[str, ...]] = {
    "aws:eks/cluster:Cluster": (
        "name", "roleArn", "bootstrapSelfManagedAddons", "accessConfig.bootstrapClusterCreatorAdminPermissions",
        "kubernetesNetworkConfig.ipFamily", "kubernetesNetworkConfig.serviceIpv4Cidr",
        "outpostConfig.controlPlaneInstanceType", "outpostConfig.controlPlanePlacement.groupName", "remoteNetworkConfig",
    ),
    "aws:eks/nodeGroup:NodeGroup": (
        "amiType", "capacityType", "clusterName", "diskSize", "instanceTypes", "launchTemplate.id", "launchTemplate.name",
        "nodeGroupName", "nodeGroupNamePrefix", "nodeRoleArn", "remoteAccess", "subnetIds",
    ),
    "aws:eks/addon:Addon": ("clusterName", "addonName"),
    "aws:eks/accessEntry:AccessEntry": ("clusterName", "principalArn", "type"),
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": ("clusterName", "principalArn", "policyArn", "accessScope"),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": ("clusterName", "namespace", "serviceAccount"),
    "aws:ec2/vpc:Vpc": ("cidrBlock", "ipv4IpamPoolId", "ipv4NetmaskLength"),
    "aws:ec2/subnet:Subnet": (
        "availabilityZone", "availabilityZoneId", "cidrBlock", "vpcId", "ipv4IpamPoolId", "ipv4NetmaskLength",
        "ipv6IpamPoolId", "ipv6Native", "ipv6NetmaskLength", "outpostArn",
    ),
    "aws:ec2/natGateway:NatGateway": ("allocationId", "connectivityType", "privateIp", "subnetId"),
    "aws:ec2/eip:Eip": ("address", "customerOwnedIpv4Pool", "domain", "networkBorderGroup", "publicIpv4Pool"),
    "aws:ec2/routeTable:RouteTable": ("vpcId",),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("subnetId", "gatewayId"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("vpcId",),
    "aws:ec2/flowLog:FlowLog": (
        "vpcId", "subnetId", "eniId", "transitGatewayId", "trafficType", "logDestination", "logDestinationType",
        "iamRoleArn", "logFormat", "maxAggregationInterval", "destinationOptions",
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": ("name", "namePrefix"),
    "aws:ec2/tag:Tag": ("resourceId", "key"),
    "aws:iam/role:Role": ("name", "namePrefix", "path"),
    "aws:iam/policy:Policy": ("name", "namePrefix", "path", "description"),
    "aws:iam/rolePolicy:RolePolicy": ("name", "namePrefix", "role"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("role", "policyArn"),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ("url",),
    "aws:kms/key:Key": ("customerMasterKeySpec", "keyUsage", "multiRegion", "customKeyStoreId", "xksKeyId"),
    "aws:kms/alias:Alias": ("name", "namePrefix"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "namePrefix", "logGroupClass"),
    "aws:cloudwatch/eventRule:EventRule": ("name", "namePrefix", "eventBusName"),
    "aws:cloudwatch/eventTarget:EventTarget": ("rule", "targetId", "eventBusName"),
    "aws:sqs/queue:Queue": ("name", "namePrefix", "fifoQueue"),
    "aws:sqs/queuePolicy:QueuePolicy": ("queueUrl",),
    # pulumi-kubernetes replaces a Helm release whose name or namespace changes.
    "kubernetes:helm.sh/v3:Release": ("name", "namespace"),
    "kubernetes-cert-manager:index:CertManager": ("helmOptions.name", "helmOptions.namespace"),
}

# Kubernetes: pulumi-kubernetes 4.x (provider/pkg/provider/diff.go `forceNew`). Every object is
# replaced when metadata.name or metadata.namespace changes; these kinds have more immutable fields.
# Note Service: only spec.clusterIP; a changed spec.selector is an in-place update.
_SELECTOR = ("spec.selector",)
_CONTAINER_FIELDS = ("args", "command", "env", "image", "imagePullPolicy", "lifecycle", "livenessProbe", "ports",
                     "readinessProbe", "resources", "securityContext", "stdin", "stdinOnce", "terminationMessagePath",
                     "terminationMessagePolicy", "tty", "volumeDevices", "volumeMounts", "workingDir")
KUBERNETES_REPLACE_ON_CHANGE: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "Deployment"): _SELECTOR,
    ("apps", "DaemonSet"): _SELECTOR,
    ("apps", "StatefulSet"): _SELECTOR + ("spec.podManagementPolicy", "spec.revisionHistoryLimit", "spec.serviceName",
                                          "spec.volumeClaimTemplates"),
    ("batch", "Job"): _SELECTOR + ("spec.completions", "spec.parallelism", "spec.template"),
    ("core", "Service"): ("spec.clusterIP",),
    ("core", "PersistentVolumeClaim"): _SELECTOR + ("spec.accessModes", "spec.storageClassName", "spec.volumeName"),
    ("core", "ResourceQuota"): ("spec.scopes",),
    ("core", "Pod"): ("spec.affinity", "spec.automountServiceAccountToken", "spec.dnsConfig", "spec.dnsPolicy",
                      "spec.enableServiceLinks", "spec.hostAliases", "spec.hostIPC", "spec.hostNetwork", "spec.hostPID",
                      "spec.hostname", "spec.imagePullSecrets", "spec.nodeName", "spec.nodeSelector", "spec.overhead",
                      "spec.preemptionPolicy", "spec.priority", "spec.priorityClassName", "spec.readinessGates",
                      "spec.restartPolicy", "spec.runtimeClassName", "spec.schedulerName", "spec.securityContext",
                      "spec.serviceAccount", "spec.serviceAccountName", "spec.shareProcessNamespace", "spec.subdomain",
                      "spec.terminationGracePeriodSeconds", "spec.volumes")
                     + tuple(f"spec.{c}[*].{f}" for c in ("containers", "initContainers") for f in _CONTAINER_FIELDS),
    ("core", "PersistentVolume"): tuple(f"spec.{s}" for s in (
        "awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi", "fc", "flexVolume", "flocker",
        "gcePersistentDisk", "glusterfs", "hostPath", "iscsi", "local", "nfs", "photonPersistentDisk", "portworxVolume",
        "quobyte", "rbd", "scaleIO", "storageos", "vsphereVolume")),
    ("rbac.authorization.k8s.io", "RoleBinding"): ("roleRef",),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ("roleRef",),
    ("storage.k8s.io", "StorageClass"): ("parameters", "provisioner"),
    ("policy", "PodDisruptionBudget@v1beta1"): ("spec",),
}
KUBERNETES_ALWAYS = ("metadata.name", "metadata.namespace")


class DiffError(Exception):
    """The diff cannot be made; the message says why (exit 2)."""


# --- Paths ---------------------------------------------------------------------------------------

Token = Any  # str (a key) or int (a list index); "*" in patterns


def parse_pattern(pattern: str) -> tuple[Token, ...]:
    return tuple("*" if t == "[*]" else t for t in re.findall(r"\[\*\]|[^.\[\]]+", pattern))


def path_text(tokens: Iterable[Token]) -> str:
    """`spec.template.spec.containers[0].image`, `metadata.labels["app.kubernetes.io/name"]`."""
    out = ""
    for t in tokens:
        if isinstance(t, int):
            out += f"[{t}]"
        elif re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", t):
            out += f".{t}" if out else t
        else:
            out += f"[{json.dumps(t)}]"
    return out


def value_text(value: Any, limit: Optional[int] = None) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def property_changes(old: Any, new: Any, prefix: tuple[Token, ...] = ()) -> list[dict[str, Any]]:
    """Leaf-level differences between two JSON values: maps by key, lists aligned by content."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            path = prefix + (key,)
            if key not in old:
                found.append({"tokens": path, "kind": "add", "new": new[key]})
            elif key not in new:
                found.append({"tokens": path, "kind": "delete", "old": old[key]})
            else:
                found += property_changes(old[key], new[key], path)
        return found
    if isinstance(old, list) and isinstance(new, list):
        # Align the lists first, so one inserted element reads as one addition rather than as every
        # later element changing. Paired elements are compared in depth, at their new index.
        found = []
        keys = lambda items: [json.dumps(i, sort_keys=True) for i in items]  # noqa: E731
        matcher = difflib.SequenceMatcher(None, keys(old), keys(new), autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                continue
            paired = min(i2 - i1, j2 - j1) if op == "replace" else 0
            for k in range(paired):
                found += property_changes(old[i1 + k], new[j1 + k], prefix + (j1 + k,))
            for i in range(i1 + paired, i2):
                found.append({"tokens": prefix + (i,), "kind": "delete", "old": old[i]})
            for j in range(j1 + paired, j2):
                found.append({"tokens": prefix + (j,), "kind": "add", "new": new[j]})
        return found
    if old == new and type(old) is type(new):
        return []
    return [{"tokens": prefix, "kind": "update", "old": old, "new": new}]


def change_text(change: dict[str, Any], limit: Optional[int] = None) -> str:
    path = change["path"]
    if change["kind"] == "add":
        return f"{path}: + {value_text(change['new'], limit)}"
    if change["kind"] == "delete":
        return f"{path}: - {value_text(change['old'], limit)}"
    return f"{path}: {value_text(change['old'], limit)} -> {value_text(change['new'], limit)}"


def _values_at(obj: Any, pattern: tuple[Token, ...]) -> dict[tuple[Token, ...], Any]:
    """Every concrete path matching `pattern` in obj, with its value (wildcards expanded)."""
    found: dict[tuple[Token, ...], Any] = {}

    def walk(value: Any, rest: tuple[Token, ...], path: tuple[Token, ...]) -> None:
        if not rest:
            found[path] = value
        elif rest[0] == "*" and isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, rest[1:], path + (i,))
        elif isinstance(value, dict) and rest[0] in value:
            walk(value[rest[0]], rest[1:], path + (rest[0],))

    walk(obj, pattern, ())
    return found


def _matches(tokens: tuple[Token, ...], pattern: tuple[Token, ...]) -> bool:
    return all(p == t or (p == "*" and isinstance(t, int)) for p, t in zip(pattern, tokens))


# --- Replacement ---------------------------------------------------------------------------------

def kubernetes_api(type_: str) -> Optional[tuple[str, str, str]]:
    """(group, version, kind) of a Kubernetes object type token, None for anything else."""
    if not type_.startswith("kubernetes:") or type_.startswith(NOT_OBJECTS):
        return None
    try:
        _, api, kind = type_.split(":")
        group, version = api.rsplit("/", 1)
    except ValueError:
        return None
    return group, version, kind


def replace_patterns(resource: dict[str, Any], providers: dict[str, dict[str, Any]]) -> list[str]:
    """The input paths whose change forces this resource to be replaced."""
    type_ = resource["type"]
    if type_ in REPLACE_ON_CHANGE:
        return list(REPLACE_ON_CHANGE[type_])
    api = kubernetes_api(type_)
    if api is None or not resource.get("custom"):
        return []
    group, version, kind = api
    patterns = list(KUBERNETES_ALWAYS)
    key = (group, f"{kind}@{version}") if (group, f"{kind}@{version}") in KUBERNETES_REPLACE_ON_CHANGE else (group, kind)
    patterns += KUBERNETES_REPLACE_ON_CHANGE.get(key, ())
    if group == "core" and kind in ("ConfigMap", "Secret"):
        # Unless the provider opts in to mutable ConfigMaps/Secrets (and the object is not immutable),
        # pulumi-kubernetes replaces them when their contents change, so pods pick up a new object.
        provider = providers.get((resource.get("provider") or "").rsplit("::", 1)[0], {})
        flag = "enableConfigMapMutable" if kind == "ConfigMap" else "enableSecretMutable"
        mutable = str(provider.get(flag, "false")).lower() == "true" and not resource["inputs"].get("immutable")
        if not mutable:
            patterns += ["binaryData", "data"] if kind == "ConfigMap" else ["type", "stringData", "data"]
        elif kind == "Secret":
            patterns.append("type")
    return patterns


def replacement_reasons(resource_old: dict[str, Any], resource_new: dict[str, Any], changes: list[dict[str, Any]],
                        providers: dict[str, dict[str, Any]]) -> list[str]:
    """The replace-on-change paths this change touches (empty: an in-place update)."""
    old, new = resource_old["inputs"], resource_new["inputs"]
    reasons = []
    for pattern_text in replace_patterns(resource_new, providers):
        pattern = parse_pattern(pattern_text)
        hit = False
        for change in changes:
            tokens = change["tokens"]
            if len(tokens) >= len(pattern) and _matches(tokens, pattern):
                hit = change["replace"] = True
            elif len(tokens) < len(pattern) and _matches(tokens, pattern[: len(tokens)]):
                # A whole subtree changed (added, removed, changed type): replaced if the field differs.
                if _values_at(old, pattern) != _values_at(new, pattern):
                    hit = change["replace"] = True
        if hit:
            reasons.append(pattern_text)
    # EKS cannot turn envelope encryption off: removing encryptionConfig re-creates the cluster.
    if resource_new["type"] == "aws:eks/cluster:Cluster" and old.get("encryptionConfig") and not new.get("encryptionConfig"):
        reasons.append("encryptionConfig (removed)")
        for change in changes:
            if change["tokens"][:1] == ("encryptionConfig",):
                change["replace"] = True
    return reasons


# --- Services ------------------------------------------------------------------------------------

SERVICE_COMPONENT = "platform:workloads:Microservice"


def services_of(resources: list[dict[str, Any]]) -> dict[str, str]:
    """urn -> the service a resource belongs to: its enclosing Microservice component, else the
    `platform.io/service` label of a Kubernetes object."""
    by_urn = {r["urn"]: r for r in resources}
    found = {}
    for r in resources:
        node: Optional[dict[str, Any]] = r
        while node is not None and node["type"] != SERVICE_COMPONENT:
            node = by_urn.get(node.get("parent") or "")
        if node is not None:
            found[r["urn"]] = node["name"]
            continue
        labels = ((r.get("inputs") or {}).get("metadata") or {}).get("labels") if kubernetes_api(r["type"]) else None
        if isinstance(labels, dict) and isinstance(labels.get("platform.io/service"), str):
            found[r["urn"]] = labels["platform.io/service"]
    return found


# --- Policy --------------------------------------------------------------------------------------

def compare_violations(base: list[dict[str, Any]], head: list[dict[str, Any]]) -> tuple[list, list, list]:
    """(introduced, fixed, unchanged). A violation is the same one on both sides when rule, resource
    and message match; failing that, when rule and resource match (a reworded message)."""
    head_left, base_left, unchanged = list(head), list(base), []
    for key in (lambda v: (v["rule"], v["urn"], v["message"]), lambda v: (v["rule"], v["urn"])):
        pool = Counter(key(v) for v in base_left)
        still = []
        for v in head_left:
            if pool[key(v)] > 0:
                pool[key(v)] -= 1
                unchanged.append(v)
            else:
                still.append(v)
        matched = Counter(key(v) for v in head_left) - Counter(key(v) for v in still)
        remaining = []
        for v in base_left:
            if matched[key(v)] > 0:
                matched[key(v)] -= 1
            else:
                remaining.append(v)
        head_left, base_left = still, remaining
    return head_left, base_left, unchanged


# --- The comparison ------------------------------------------------------------------------------

OPS = ("create", "update", "replace", "delete")
SYMBOL = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}


def compare(base: dict[str, Any], head: dict[str, Any], base_label: str = "base", head_label: str = "working tree") -> dict[str, Any]:
    """Diff two `engine.record` documents of one stack. Returns the JSON-ready result."""
    base_res = {r["urn"]: r for r in base["resources"]}
    head_res = {r["urn"]: r for r in head["resources"]}
    providers = {r["urn"]: r["inputs"] for r in head["resources"] if r["type"].startswith("pulumi:providers:")}
    base_services, head_services = services_of(base["resources"]), services_of(head["resources"])

    resources = []
    for urn in sorted(set(base_res) | set(head_res)):
        old, new = base_res.get(urn), head_res.get(urn)
        entry: dict[str, Any] = {"urn": urn, "type": (new or old)["type"], "name": (new or old)["name"],
                                 "service": head_services.get(urn) or base_services.get(urn)}
        if old is None:
            entry.update(op="create", inputs=new["inputs"])
        elif new is None:
            entry.update(op="delete", inputs=old["inputs"], protect=old.get("protect", False))
        else:
            changes = property_changes(old["inputs"], new["inputs"])
            for option in ("protect", "provider"):
                if old.get(option) != new.get(option):
                    changes.append({"tokens": (f"({option})",), "kind": "update", "old": old.get(option), "new": new.get(option)})
            if not changes:
                continue
            for change in changes:
                change["replace"] = False
            # Components cannot be replaced; a remote (multi-language) component's table entry stands
            # for the resource it wraps (cert-manager's Helm release).
            reasons = replacement_reasons(old, new, changes, providers) if new.get("custom") or new.get("remote") else []
            entry.update(op="replace" if reasons else "update", replaceReasons=reasons, protect=new.get("protect", False))
            entry["changes"] = [{"path": path_text(c["tokens"]), **{k: v for k, v in c.items() if k != "tokens"}} for c in changes]
        resources.append(entry)

    base_manifests, head_manifests = base.get("manifests", {}), head.get("manifests", {})
    manifests = {
        "added": sorted(set(head_manifests) - set(base_manifests)),
        "removed": sorted(set(base_manifests) - set(head_manifests)),
        "changed": [{"path": p, "diff": _yaml_diff(p, base_manifests[p], head_manifests[p])}
                    for p in sorted(set(base_manifests) & set(head_manifests)) if base_manifests[p] != head_manifests[p]],
    }

    introduced, fixed, unchanged = compare_violations(base["policy"]["violations"], head["policy"]["violations"])
    policy = {"environment": head["policy"].get("environment"), "introduced": introduced, "fixed": fixed,
              "unchanged": len(unchanged), "unchangedMandatory": sum(v["enforcement"] == "mandatory" for v in unchanged)}

    outputs = [{"path": path_text(c["tokens"]), **{k: v for k, v in c.items() if k != "tokens"}}
               for c in property_changes(base.get("outputs", {}), head.get("outputs", {}))]

    services = _changed_services(base.get("services", {}), head.get("services", {}), resources)
    blocking = any(v["enforcement"] == "mandatory" for v in introduced)
    counts = Counter(r["op"] for r in resources)
    return {
        "stack": head.get("stack") or base.get("stack"),
        "base": base_label,
        "head": head_label,
        "summary": {**{op: counts.get(op, 0) for op in OPS},
                    "manifests": {k: len(v) for k, v in manifests.items()},
                    "policy": {"introduced": len(introduced), "introducedMandatory": sum(v["enforcement"] == "mandatory" for v in introduced),
                               "fixed": len(fixed)},
                    "outputs": len(outputs), "services": len(services["changed"])},
        "blocking": blocking,
        "resources": resources,
        "manifests": manifests,
        "policy": policy,
        "outputs": outputs,
        "services": services,
    }


def exit_status(result: dict[str, Any]) -> int:
    return EXIT_BLOCKING if result["blocking"] else EXIT_OK


def _yaml_diff(path: str, old: Any, new: Any) -> str:
    dump = lambda obj: yaml.safe_dump(obj, sort_keys=False, default_flow_style=False).splitlines()  # noqa: E731
    return "\n".join(difflib.unified_diff(dump(old), dump(new), f"a/{path}", f"b/{path}", lineterm="", n=2))


def _changed_services(base: dict[str, Any], head: dict[str, Any], resources: list[dict[str, Any]]) -> dict[str, Any]:
    changed: dict[str, str] = {}
    for name in set(base) | set(head):
        if name not in base:
            changed[name] = "added"
        elif name not in head:
            changed[name] = "removed"
        elif base[name] != head[name]:
            changed[name] = "changed"
    for r in resources:
        if r["service"] and r["service"] not in changed:
            changed[r["service"]] = "changed"

    def deps(name: str, side: dict[str, Any]) -> list[str]:
        return list((side.get(name) or {}).get("dependsOn") or [])

    nodes = set(changed)
    for name in changed:
        nodes.update(deps(name, head) + deps(name, base))
        nodes.update(n for side in (base, head) for n in side if name in deps(n, side))
    edges = []
    for a in sorted(nodes):
        now, before = set(deps(a, head)), set(deps(a, base))
        for b in sorted(now | before):
            if b in nodes:
                state = "kept" if b in now and b in before else "added" if b in now else "removed"
                edges.append({"from": a, "to": b, "state": state})
    return {"changed": dict(sorted(changed.items())),
            "nodes": sorted(nodes), "edges": edges}


# --- Markdown ------------------------------------------------------------------------------------

def mermaid(services: dict[str, Any]) -> str:
    ident = lambda n: "svc_" + re.sub(r"\W", "_", n)  # noqa: E731
    lines = ["graph LR"]
    for n in services["nodes"]:
        state = services["changed"].get(n, "context")
        lines.append(f'  {ident(n)}["{n}"]:::{state}')
    for e in services["edges"]:
        arrow = {"kept": "-->", "added": "-- new -->", "removed": "-. removed .->"}[e["state"]]
        lines.append(f"  {ident(e['from'])} {arrow} {ident(e['to'])}")
    lines += ["  classDef added fill:#dafbe1,stroke:#1a7f37",
              "  classDef changed fill:#fff8c5,stroke:#9a6700",
              "  classDef removed fill:#ffebe9,stroke:#cf222e,stroke-dasharray:4",
              "  classDef context fill:#f6f8fa,stroke:#8c959f"]
    return "\n".join(lines)


def _violation_line(v: dict[str, Any]) -> str:
    return f"| {v['enforcement']} | `{v['rule']}` | {v['severity']} | {_cell(v['resource'])} | {_cell(v['message'])} | {_cell(v['remediation'])} |"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(result: dict[str, Any], limit: int = MAX_MARKDOWN) -> str:
    s, stack = result["summary"], result["stack"]
    pol = s["policy"]
    head = [f"## Offline diff: stack `{stack}`", "",
            f"`{result['base']}` → `{result['head']}`: desired state from the embedded engine (no cloud calls; "
            "the real `pulumi preview` runs where credentials exist).", ""]
    if result["blocking"]:
        head += ["> [!CAUTION]",
                 f"> This change introduces {pol['introducedMandatory']} **mandatory** policy violation(s); "
                 "the policy pack will block it (see *Policy* below).", ""]
    replaced = [r for r in result["resources"] if r["op"] == "replace"]
    if replaced:
        head += ["> [!WARNING]", f"> {len(replaced)} resource(s) will be **replaced** (deleted and created again):"]
        for r in replaced:
            note = " — protected: `pulumi up` will refuse until `protect` is lifted" if r.get("protect") else ""
            head.append(f"> - `{r['type']}` **{r['name']}**: {', '.join(f'`{x}`' for x in r['replaceReasons'])}{note}")
        head.append("")
    protected_deletes = [r for r in result["resources"] if r["op"] == "delete" and r.get("protect")]
    if protected_deletes:
        head += ["> [!WARNING]", "> Protected resources would be deleted: " + ", ".join(f"`{r['name']}`" for r in protected_deletes), ""]
    head += ["| | resources |", "|---|---|"]
    head += [f"| `{SYMBOL[op]}` {op} | {s[op]} |" for op in OPS]
    m = s["manifests"]
    head += [f"| Kubernetes manifests | {m['added']} added, {m['changed']} changed, {m['removed']} removed |",
             f"| policy violations | {pol['introduced']} introduced ({pol['introducedMandatory']} mandatory), {pol['fixed']} fixed |",
             f"| stack outputs changed | {s['outputs']} |",
             f"| services touched | {s['services']} |", ""]
    if not result["resources"] and not result["outputs"]:
        head += ["No changes: the desired state is identical.", ""]

    policy = result["policy"]
    if policy["introduced"] or policy["fixed"]:
        head += ["### Policy", ""]
        for title, items in (("Introduced by this change", policy["introduced"]), ("Fixed by this change", policy["fixed"])):
            if items:
                head += [f"**{title}**", "", "| enforcement | rule | severity | resource | message | how to fix |", "|---|---|---|---|---|---|"]
                head += [_violation_line(v) for v in items] + [""]
    if policy["unchanged"]:
        head += [f"{policy['unchanged']} violation(s) were already there before this change "
                 f"({policy['unchangedMandatory']} mandatory).", ""]

    tail: list[str] = []
    services = result["services"]
    if services["changed"]:
        tail += ["### Services", "",
                 ", ".join(f"**{n}** ({state})" for n, state in services["changed"].items()) + "; grey: their callers and dependencies.", "",
                 "```mermaid", mermaid(services), "```", ""]

    # The long parts go in the middle and are cut to fit a PR comment; diff.json has everything.
    budget = limit - len("\n".join(head + tail)) - 1000
    details: list[str] = []
    if result["resources"]:
        lines = []
        for r in result["resources"]:
            svc = f"  (service {r['service']})" if r["service"] else ""
            lines.append(f"{SYMBOL[r['op']]} {r['type']}: {r['name']}{svc}")
            for c in r.get("changes", []):
                mark = "+" if c["kind"] == "add" else "-" if c["kind"] == "delete" else "~"
                flag = "   # forces replacement" if c.get("replace") else ""
                lines.append(f"    {mark} {change_text(c, MAX_VALUE)}{flag}")
        details += _fenced("### Resources", "diff", lines, budget)
    if result["outputs"]:
        lines = [f"{'+' if c['kind'] == 'add' else '-' if c['kind'] == 'delete' else '~'} {change_text(c, MAX_VALUE)}" for c in result["outputs"]]
        details += _fenced("### Stack outputs", "diff", lines, budget - len("\n".join(details)))
    mf = result["manifests"]
    if any(mf.values()):
        listing = [f"- `+` `{p}`" for p in mf["added"]] + [f"- `-` `{p}`" for p in mf["removed"]] + [f"- `~` `{c['path']}`" for c in mf["changed"]]
        details += ["### Kubernetes manifests", "", f"Under `build/{stack}/manifests/`:", ""]
        details += _capped(listing, budget - len("\n".join(details))) + [""]
        text = [line for c in mf["changed"] for line in c["diff"].splitlines()]
        if text:
            details += ["<details><summary>Manifest diffs</summary>", ""]
            details += _fenced(None, "diff", text, budget - len("\n".join(details)))
            details += ["</details>", ""]
    out = "\n".join(head + details + tail).rstrip() + "\n"
    if len(out) > limit:
        out = out[: limit - 200].rsplit("\n", 1)[0] + "\n\n*(cut to fit a comment; the whole diff is in diff.json)*\n"
    return out


def _capped(lines: list[str], budget: int) -> list[str]:
    used, kept = 0, []
    for line in lines:
        if used + len(line) + 1 > max(budget, 1000):
            return kept + [f"... {len(lines) - len(kept)} more line(s) in diff.json"]
        kept.append(line)
        used += len(line) + 1
    return kept


def _fenced(title: Optional[str], lang: str, lines: list[str], budget: int) -> list[str]:
    return ([title, ""] if title else []) + [f"```{lang}", *_capped(lines, budget), "```", ""]


# --- Running both sides --------------------------------------------------------------------------

def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise DiffError(f"git {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def resolve(root: Path, ref: str) -> str:
    if not ref or ref.startswith("-"):
        raise DiffError(f"BASE must be a git ref (a branch, tag or commit), not {ref!r}")
    if _git(root, "rev-parse", "--git-dir", check=False).returncode != 0:
        raise DiffError(f"{root} is not a git checkout; make diff compares git refs")
    proc = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise DiffError(f"BASE={ref}: not a commit in this repository (fetch it first, e.g. `git fetch origin main`)")
    return proc.stdout.strip()


def record_base(root: Path, stack: str, ref: str, commit: str, python: str = sys.executable) -> dict[str, Any]:
    """Check out `commit` in a temporary worktree and run its own `python -m engine.record` there."""
    with tempfile.TemporaryDirectory(prefix="platform-diff-") as tmp:
        worktree, out = Path(tmp) / "base", Path(tmp) / "base.json"
        _git(root, "worktree", "add", "--detach", "--quiet", str(worktree), commit)
        try:
            if not (worktree / RECORD_MODULE).is_file():
                raise DiffError(f"BASE={ref} ({commit[:10]}) predates {RECORD_MODULE}, the entry point `make diff` runs the base with; "
                                "diff against a newer base (one that has it), or run `make preview` on both checkouts and compare by hand")
            # The base's own code must run: its checkout is the working directory (first on sys.path
            # with -m), and nothing from this tree may leak in through PYTHONPATH.
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            proc = subprocess.run([python, "-m", "engine.record", stack, "--out", str(out)], cwd=worktree, env=env,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise DiffError(f"BASE={ref} ({commit[:10]}): the engine could not run stack {stack!r} there:\n{proc.stderr.strip()}")
            doc = json.loads(out.read_text())
        finally:
            _git(root, "worktree", "remove", "--force", str(worktree), check=False)
            _git(root, "worktree", "prune", check=False)
    if doc.get("format") != 1:
        raise DiffError(f"BASE={ref}: engine.record wrote format {doc.get('format')!r}; this diff reads format 1")
    return doc


def head_label(root: Path) -> str:
    short = _git(root, "rev-parse", "--short", "HEAD", check=False).stdout.strip()
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no", check=False).stdout.strip()
    return f"working tree ({short}{' + local changes' if dirty else ''})" if short else "working tree"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="make diff", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="stack name (stacks/<stack>.yaml)")
    parser.add_argument("--base", required=True, help="git ref to compare against (branch, tag or commit)")
    parser.add_argument("--root", type=Path, default=None, help="project root, a git checkout (default: this one)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default build/<stack>)")
    parser.add_argument("--quiet", action="store_true", help="do not print the Markdown")
    args = parser.parse_args(argv)

    from components.spec import SpecError

    from .record import record
    from .runtime import PROJECT_ROOT, ProgramError

    root = (args.root or PROJECT_ROOT).resolve()
    out = args.out or root / "build" / args.stack
    try:
        commit = resolve(root, args.base)
        base = record_base(root, args.stack, args.base, commit)
        try:
            head = record(args.stack, root)
        except SpecError as err:
            raise DiffError(f"working tree: invalid stack declarations:\n{err}") from None
        except ProgramError as err:
            raise DiffError(f"working tree: {err}") from None
    except DiffError as err:
        print(f"make diff: {err}", file=sys.stderr)
        return EXIT_ERROR
    result = compare(base, head, base_label=f"{args.base} ({commit[:10]})", head_label=head_label(root))
    text = markdown(result)
    out.mkdir(parents=True, exist_ok=True)
    (out / "diff.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (out / "diff.md").write_text(text)
    if not args.quiet:
        print(text)
    print(f"wrote {out / 'diff.md'} and {out / 'diff.json'}", file=sys.stderr)
    return exit_status(result)


if __name__ == "__main__":
    sys.exit(main())
