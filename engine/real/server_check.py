"""`make server-check STACK=…`: a real kube-apiserver judges every object the stack renders.

Each object of build/<stack>/manifests/ (the program's own objects; the contents of Helm charts are
not in the repo) goes to the local cluster (`make cluster-up`) as a server-side apply with
dryRun=All and strict field validation, in dependency order. A pod-bearing workload is judged once
more as the Pod its template makes, so Pod Security Admission, the ServiceAccount, LimitRanger,
ResourceQuota and Priority admission plugins see what a ReplicaSet would create.

The objects those admission plugins look up (namespaces, priority classes, service accounts, limit
ranges, quotas) are applied for real once their own dry run passes: a dry run persists nothing, and
a pod in a namespace the server has never seen would be judged against nothing.

Every rejection is printed with the object and the server's message; exit 1 on any, 2 when it cannot
run (no cluster, no manifests).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from components.spec.base import QUANTITY
from engine.project import PROJECT_ROOT

from .cluster import KUBECONFIG
from .kube import BUILT_IN_GROUPS, Kube, NoSuchApi, Response

# Objects other objects' admission reads: applied for real after their dry run passes.
FOUNDATION = {"Namespace", "PriorityClass", "ServiceAccount", "LimitRange", "ResourceQuota"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
# Dependency order: what an object names must exist before it (namespaces, then cluster-wide classes,
# then what pods need, then workloads, then what points at workloads, then custom resources).
RANK = {
    "Namespace": 0,
    "PriorityClass": 1,
    "StorageClass": 1,
    "IngressClass": 1,
    "RuntimeClass": 1,
    "ClusterRole": 1,
    "ServiceAccount": 2,
    "LimitRange": 2,
    "ResourceQuota": 2,
    "Role": 2,
    "ClusterRoleBinding": 3,
    "RoleBinding": 3,
    "ConfigMap": 3,
    "Secret": 3,
    "Service": 4,
    **{kind: 5 for kind in WORKLOADS},
}


@dataclass
class Rejection:
    what: str
    message: str

    def __str__(self) -> str:
        return f"REJECTED {self.what}: {self.message}"


def describe(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('apiVersion')} {obj.get('kind')} {where}{meta.get('name')}"


def rank(obj: dict[str, Any]) -> int:
    kind = obj.get("kind", "")
    if kind in RANK:
        return RANK[kind]
    group = obj.get("apiVersion", "").rpartition("/")[0]
    return 6 if group in BUILT_IN_GROUPS else 7


def load_manifests(folder: Path) -> list[dict[str, Any]]:
    objects = [yaml.safe_load(p.read_text()) for p in sorted(folder.rglob("*.yaml"))]
    return sorted(objects, key=rank)  # a stable sort keeps the rendered order within a rank


def pod_of(workload: dict[str, Any]) -> dict[str, Any] | None:
    """The Pod a workload's controller would create (CronJob: through its Job template)."""
    spec = workload.get("spec", {})
    if workload["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template")
    if not template:
        return None
    meta = dict(template.get("metadata") or {})
    meta["name"] = f"{workload['metadata']['name']}-server-check"
    meta["namespace"] = workload["metadata"].get("namespace", "default")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec", {})}


def judged(resp: Response) -> str | None:
    """The server's verdict: its error, or a Pod Security warning (enforced on the pods it would make)."""
    if not resp.ok:
        return resp.message
    violations = [w for w in resp.warnings if "PodSecurity" in w]
    return "; ".join(violations) or None


# Write-only fields: the server turns them into others (a Secret's stringData into data).
WRITE_ONLY = {("Secret", "stringData")}


def rewritten(sent: Any, stored: Any, path: str = "") -> list[str]:
    """Fields the server dropped or stored differently: what the program declares is not what runs."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [f"{path or '.'} stored as {stored!r}"]
        found = []
        for key, value in sent.items():
            if key not in stored:
                # Go's omitempty: a zero value (false, 0, "", empty) is stored as absent, which reads back the same.
                if value not in (None, {}, [], False, 0, ""):
                    found.append(f"{path}.{key} dropped")
            else:
                found += rewritten(value, stored[key], f"{path}.{key}")
        return found
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(stored) != len(sent):
            return [f"{path} stored as {stored!r}"]
        return [d for i, (a, b) in enumerate(zip(sent, stored, strict=True)) for d in rewritten(a, b, f"{path}[{i}]")]
    if sent != stored and str(sent) != str(stored) and not _same_quantity(sent, stored):
        return [f"{path} {sent!r} stored as {stored!r}"]
    return []


SUFFIXES = {"n": "1e-9", "u": "1e-6", "m": "1e-3", "": "1", "k": "1e3", "M": "1e6", "G": "1e9", "T": "1e12", "P": "1e15", "E": "1e18"}
SUFFIXES.update({"Ki": str(2**10), "Mi": str(2**20), "Gi": str(2**30), "Ti": str(2**40), "Pi": str(2**50), "Ei": str(2**60)})


def _amount(value: Any) -> Decimal | None:
    match = QUANTITY.match(str(value))
    if not match:
        return None
    suffix = match.group(3) or ""
    if suffix[:1] in ("e", "E"):
        return Decimal(f"{match.group(1)}{suffix}")
    return Decimal(match.group(1)) * Decimal(SUFFIXES[suffix])


def _same_quantity(a: Any, b: Any) -> bool:
    """The server writes quantities canonically (1000m as 1, 1024Mi as 1Gi): the same amount."""
    amount = _amount(a)
    return amount is not None and amount == _amount(b)


def wait_quotas_computed(kube: Kube, quotas: list[dict[str, Any]], timeout: float = 60) -> None:
    """Quota admission refuses pods until the quota controller has written status.hard."""
    deadline = time.monotonic() + timeout
    for quota in quotas:
        while time.monotonic() < deadline:
            if (kube.get(quota).body or {}).get("status", {}).get("hard"):
                break
            time.sleep(0.5)


def check(kube: Kube, objects: list[dict[str, Any]], out=sys.stdout) -> list[Rejection]:
    rejections: list[Rejection] = []
    quotas: list[dict[str, Any]] = []
    for obj in objects:
        what = describe(obj)
        try:
            dry = kube.apply(obj, dry_run=True)
            verdict = judged(dry)
            if verdict is None:
                sent = {k: v for k, v in obj.items() if (obj["kind"], k) not in WRITE_ONLY}
                changes = rewritten(sent, dry.body)
                verdict = "; ".join(changes) or None
            if verdict is None and obj["kind"] in FOUNDATION:
                resp = kube.apply(obj)
                verdict = None if resp.ok else resp.message
                if obj["kind"] == "ResourceQuota" and resp.ok:
                    quotas.append(obj)
            if verdict is None and obj["kind"] in WORKLOADS and (pod := pod_of(obj)) is not None:
                wait_quotas_computed(kube, quotas)
                quotas = []
                pod_verdict = judged(kube.apply(pod, dry_run=True))
                if pod_verdict:
                    rejections.append(Rejection(f"the Pod of {what}", pod_verdict))
                    print(rejections[-1], file=out)
        except NoSuchApi as err:
            verdict = str(err)
        if verdict:
            rejections.append(Rejection(what, verdict))
            print(rejections[-1], file=out)
    return rejections


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make server-check", description=__doc__)
    parser.add_argument("stack")
    parser.add_argument("--manifests", type=Path, help="folder of manifests (default build/<stack>/manifests)")
    parser.add_argument("--kubeconfig", type=Path, default=KUBECONFIG)
    args = parser.parse_args(argv)
    folder = args.manifests or PROJECT_ROOT / "build" / args.stack / "manifests"
    if not folder.is_dir():
        print(f"server-check: {folder} is missing: run `make preview STACK={args.stack}` first", file=sys.stderr)
        return 2
    if not args.kubeconfig.is_file():
        print(f"server-check: no local cluster ({args.kubeconfig}): run `make cluster-up` first", file=sys.stderr)
        return 2
    kube = Kube(args.kubeconfig)
    try:
        kube.wait_ready(30)
    except TimeoutError as err:
        print(f"server-check: {err}", file=sys.stderr)
        return 2
    objects = load_manifests(folder)
    started = time.monotonic()
    rejections = check(kube, objects)
    pods = sum(1 for o in objects if o["kind"] in WORKLOADS)
    print(
        f"server-check {args.stack}: {len(objects)} objects and {pods} workload pods judged by kube-apiserver "
        f"in {time.monotonic() - started:.0f}s: {len(rejections)} rejection(s)"
    )
    return 1 if rejections else 0


if __name__ == "__main__":
    sys.exit(main())
