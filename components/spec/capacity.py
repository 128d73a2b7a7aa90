"""The largest node a Karpenter pool can launch, and whether a service's container fits on it.

A container whose request or limit exceeds every node its pool can launch stays Pending for ever
(Karpenter finds no instance type for it); one whose memory limit exceeds the node is admitted and
then OOM-killed by the node rather than by its own limit. Both are refused at load time.

How the largest node is computed, from what the stack declares of each pool:
- the pool's `instanceCategories` (its NodePool requirement `karpenter.k8s.aws/instance-category`)
  each have a largest size; `LARGEST` holds it (vCPUs, GiB) for the current generations, i.e. those
  above every `minGeneration` allowed here. A larger type in a new generation only makes a node bigger,
  so the table errs towards refusing, never towards admitting what cannot run;
- Karpenter never launches a node that would take the pool over its `limits` (`cpuLimit`,
  `memoryLimit`), so a pool's node is at most that big; its memory is then bounded by the category's
  memory per vCPU at that size;
- the kubelet reserves part of every node (EKS AMIs: kube-reserved CPU 6% of the first core, 1% of
  the second, 0.5% of the next two, 0.25% above; memory 255 MiB + 11 MiB per pod at the 110 pods
  Kubernetes recommends; 100 MiB eviction threshold), and the Istio sidecar takes its requests in
  every meshed pod. DaemonSets' requests are not subtracted: they vary per stack, and a node that
  fits the container but not the DaemonSets is still found by Karpenter on a larger size when one exists.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from .base import cpu_millis, memory_bytes

GIB = 2**30
MIB = 2**20
# Largest instance per EC2 category (vCPUs, GiB): c7i/c7a/c8g.48xlarge, m7i/m8g.48xlarge, r7i/r8g.48xlarge,
# t3/t4g.2xlarge, i7ie.48xlarge, g6e.48xlarge, p5.48xlarge.
LARGEST = {"c": (192, 384), "m": (192, 768), "r": (192, 1536), "t": (8, 32), "i": (192, 1536), "g": (192, 1536), "p": (192, 2048)}
MAX_PODS = 110


def kube_reserved_cpu_millis(vcpus: int) -> int:
    steps = ((1, 60), (1, 10), (2, 5), (max(vcpus - 4, 0), 2.5))
    left, total = vcpus, 0.0
    for cores, per_core in steps:
        used = min(left, cores)
        total += used * per_core
        left -= used
    return round(total)


def _parsed(parse: Any, quantity: str, default: int) -> int:
    try:
        return int(parse(quantity))
    except ValueError:
        return default  # a limit in a form not parsed here (e.g. "1e3") does not bound the node


def largest_node(pool: Any) -> tuple[int, int]:
    """(allocatable CPU millis, allocatable memory bytes) of the largest node `pool` can launch."""
    vcpus = max(LARGEST[c][0] for c in pool.instance_categories)
    vcpus = min(vcpus, _parsed(cpu_millis, pool.cpu_limit, vcpus * 1000) // 1000)
    by_category = max(min(LARGEST[c][1], LARGEST[c][1] * vcpus // LARGEST[c][0]) for c in pool.instance_categories) * GIB
    memory = min(by_category, _parsed(memory_bytes, pool.memory_limit, by_category))
    reserved_memory = (255 + 11 * MAX_PODS + 100) * MIB
    return max(vcpus * 1000 - kube_reserved_cpu_millis(vcpus), 0), max(memory - reserved_memory, 0)


def pools_for(tier: str, pools: Iterable[Any]) -> list[Any]:
    """The pools a service's pods may land on: critical ones on the critical pool, others on untainted pools."""
    pools = list(pools)
    if tier == "critical":
        return [p for p in pools if p.labels.get("service-tier") == "critical"]
    return [p for p in pools if not p.taints]


def fit_problems(svc: Any, pools: Iterable[Any], sidecar: Optional[tuple[str, str]]) -> list[tuple[str, str]]:
    """(key path, message) when the service's container cannot fit the largest node of any pool it may use."""
    eligible = pools_for(svc.tier, pools)
    if not eligible:
        return []  # placement.py reports a critical service with no pool
    cpu, memory = max(largest_node(p)[0] for p in eligible), max(largest_node(p)[1] for p in eligible)
    side_cpu, side_memory = (cpu_millis(sidecar[0]), memory_bytes(sidecar[1])) if sidecar else (0, 0)
    names = ", ".join(p.name for p in eligible)
    res = svc.resources
    checks = [
        ("resources.requests.cpu", res.requests.cpu, cpu_millis(res.requests.cpu) + side_cpu, cpu, "CPU"),
        ("resources.limits.memory", res.limits.memory, memory_bytes(res.limits.memory) + side_memory, memory, "memory"),
    ]
    if res.limits.cpu:
        checks.append(("resources.limits.cpu", res.limits.cpu, cpu_millis(res.limits.cpu) + side_cpu, cpu, "CPU"))
    found = []
    for key, declared, needed, available, what in checks:
        if needed > available:
            shown = f"{available / 1000:g} CPUs" if what == "CPU" else f"{available / GIB:.1f} GiB"
            found.append(
                (
                    key,
                    f"{declared} (with the sidecar's share) does not fit the largest node pool(s) {names} can launch: {shown} allocatable "
                    "(the pool's instance categories and cpuLimit/memoryLimit, less what the kubelet reserves); lower it or widen the pool",
                )
            )
    return found
