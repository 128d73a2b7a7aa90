"""Every namespace and object a runbook command names exists in the rendered stacks.

On call, a command copied from a runbook must work the first time: `kubectl -n karpenter ...` in a
cluster where Karpenter runs in kube-system wastes the minutes the runbook is there to save. The
commands are the `kubectl` and `velero` lines of docs/runbooks/ (fenced blocks and inline code);
placeholders (`<namespace>`) are left alone. What exists: the objects the program renders, and what the
Helm releases create, named after their release (`<fullname>` or `<fullname>-<part>`), in their namespace.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

import pytest
from conftest import ROOT, recorded

RUNBOOKS = sorted((ROOT / "docs" / "runbooks").glob("*.md"))
RELEASE = "kubernetes:helm.sh/v3:Release"
KINDS = {
    "deploy": "Deployment",
    "deployment": "Deployment",
    "svc": "Service",
    "service": "Service",
    "sts": "StatefulSet",
    "statefulset": "StatefulSet",
    "ds": "DaemonSet",
    "daemonset": "DaemonSet",
    "cronjob": "CronJob",
    "job": "Job",
    "secret": "Secret",
    "pod": "Pod",
    "po": "Pod",
    "prometheus": "Prometheus",
    "canary": "Canary",
}
# Options whose value is not an object (the next word is not a name).
VALUED = {"-o", "--output", "-l", "--selector", "--field-selector", "--type", "-p", "--patch", "--replicas", "--timeout", "--for", "-c", "--container"}


@dataclass
class Cluster:
    """What a stack creates: namespaces, (kind, namespace) -> names, and namespace -> Helm release fullnames."""

    namespaces: set[str] = field(default_factory=set)
    objects: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    releases: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, rec) -> "Cluster":
        found = cls()
        for o in rec.kubernetes_objects():
            ns = o.metadata.get("namespace")
            if o.kind == "Namespace":
                found.namespaces.add(o.metadata["name"])
            elif ns:
                found.namespaces.add(ns)
                found.objects.setdefault((o.kind, ns), set()).add(o.metadata["name"])
                if o.kind == "Certificate":  # cert-manager writes the key pair into this Secret
                    found.objects.setdefault(("Secret", ns), set()).add(o.inputs["spec"]["secretName"])
        for r in rec.of_type(RELEASE):
            ns = r.inputs.get("namespace", "default")
            found.namespaces.add(ns)
            found.releases.setdefault(ns, set()).add((r.inputs.get("values") or {}).get("fullnameOverride") or r.inputs["name"])
        return found

    def has(self, kind: str, namespace: str, name: str) -> bool:
        if name in self.objects.get((kind, namespace), set()):
            return True
        return any(name == full or name.startswith(f"{full}-") for full in self.releases.get(namespace, set()))


def commands(text: str) -> list[str]:
    """The kubectl and velero command lines of a page, from fenced blocks and inline code."""
    lines = []
    fenced = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    for block in fenced:
        lines += [line.split(" #")[0].strip() for line in block.replace("\\\n", " ").splitlines()]
    lines += re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    found = []
    for line in lines:
        for part in re.split(r"\s*(?:\||&&|;)\s*", line):
            if re.match(r"(kubectl|velero)\s", part):
                found.append(part.strip().rstrip("&").strip())
    return found


def problems(text: str, cluster: Cluster) -> list[str]:
    found: list[str] = []
    created: set[str] = set()
    for command in commands(text):
        try:
            words = shlex.split(command)
        except ValueError:
            words = command.split()
        placeholder = lambda w: "<" in w or "$" in w
        if words[0] == "velero":
            for value in [w.split("=", 1)[1] if "=" in w else "" for w in words if w.startswith("--include-namespaces")] + [
                words[i + 1] for i, w in enumerate(words[:-1]) if w == "--include-namespaces"
            ]:
                found += [f"{command}: no namespace {ns}" for ns in value.split(",") if ns and not placeholder(ns) and ns not in cluster.namespaces]
            continue
        namespace, rest, skip = None, [], False
        for i, w in enumerate(words[1:], start=1):
            if skip:
                skip = False
            elif w in ("-n", "--namespace"):
                namespace, skip = words[i + 1], True
            elif w.startswith("--namespace="):
                namespace = w.split("=", 1)[1]
            elif w in VALUED:
                skip = True
            elif not w.startswith("-"):
                rest.append(w)
        if namespace is not None and not placeholder(namespace) and namespace not in cluster.namespaces:
            found.append(f"{command}: no namespace {namespace}")
            continue
        if namespace is None or placeholder(namespace) or not rest:
            continue
        verb, args = rest[0], rest[1:]
        if verb == "create":
            created.update(a.split("/")[-1] for a in args)
            continue
        refs = [tuple(a.split("/", 1)) for a in args if "/" in a and a.split("/", 1)[0] in KINDS]
        if verb in ("get", "describe", "patch", "delete") and len(args) >= 2 and args[0] in KINDS:
            refs.append((args[0], args[1]))
        if verb == "exec" and args and "/" not in args[0]:
            refs.append(("pod", args[0]))
        for kind, name in refs:
            if not placeholder(name) and name not in created and not cluster.has(KINDS[kind], namespace, name):
                found.append(f"{command}: no {KINDS[kind]} {namespace}/{name}")
    return found


@pytest.mark.parametrize("page", RUNBOOKS, ids=lambda p: p.name)
def test_runbook_commands_name_what_the_stacks_render(page):
    text = page.read_text()
    clusters = [Cluster.of(recorded(s)) for s in ("dev", "prod")]
    # A command is right when some stack renders what it names (restore.md's data-mover steps are prod's).
    wrong = [p for p in problems(text, clusters[0]) if p in problems(text, clusters[1])]
    assert wrong == [], f"{page.name}: commands naming what no stack renders"


def test_the_check_reads_commands_and_catches_a_wrong_namespace_and_name():
    cluster = Cluster.of(recorded("dev"))
    text = (
        "1. `kubectl -n karpenter logs deploy/karpenter | grep -i interrupt`\n"
        "```sh\nkubectl -n kube-system logs deploy/karpenter\nkubectl -n vault get secret vault-tls\n"
        "kubectl -n velero get cronjob vault-snapshots\nkubectl -n <namespace> get pod <pod>\n"
        "velero restore create x --from-schedule platform --include-namespaces argocd,monitor\n```\n"
    )
    assert len(commands(text)) == 6
    assert problems(text, cluster) == [
        "kubectl -n velero get cronjob vault-snapshots: no CronJob velero/vault-snapshots",
        "velero restore create x --from-schedule platform --include-namespaces argocd,monitor: no namespace monitor",
        "kubectl -n karpenter logs deploy/karpenter: no namespace karpenter",
    ]
