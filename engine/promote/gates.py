"""The promotion gates: may this exact image move from staging to prod? (docs/delivery.md#promotion-gates)

1. canary: Flagger's analysis of this exact image succeeded in staging. The Canary's
   `status.phase` is Succeeded, and both `<name>-primary` (what Flagger promoted) and `<name>` (the
   target, so no newer release is under analysis) run the image. Its `lastTransitionTime` is when
   the image landed. A service without a canary: its Deployment runs the image, fully rolled out.
2. alerts: no page-severity (critical) alert about the service fired in the last 10 minutes
   (Prometheus' ALERTS series, by `service`, or by pod for alerts about its pods).
3. chaos (critical services, where staging runs the experiments): the newest run of the service's
   chaos workflow that started after the image landed finished (Accomplished) and was not aborted
   by its SLO status check.
4. soak: the image has run in staging for the tier's time (policy.soakMinutes of the staging stack).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from .sources import Kubernetes, Prometheus

ALERT_WINDOW = "10m"
CHAOS_LABEL = "managed-by"


@dataclass(frozen=True)
class Candidate:
    service: str
    team: str
    tier: str
    image: str
    canary: bool
    chaos: Optional[str]  # the chaos workflow's Schedule name, when the gate applies
    soak_minutes: int


@dataclass(frozen=True)
class Verdict:
    gate: str
    ok: bool
    detail: str


def timestamp(text: Any) -> Optional[float]:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def shown(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def image_of(deployment: Optional[dict[str, Any]], container: str) -> Optional[str]:
    if deployment is None:
        return None
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    named = [c for c in containers if c.get("name") == container] or containers[:1]
    return named[0].get("image") if named else None


def _conditions(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in ((obj.get("status") or {}).get("conditions") or []) if isinstance(c, dict)]


def landed(k8s: Kubernetes, c: Candidate) -> tuple[Verdict, Optional[float]]:
    """The canary gate, and when the image landed in staging (None unless it passed)."""
    apps = f"/apis/apps/v1/namespaces/{c.team}/deployments"
    target = k8s.get(f"{apps}/{c.service}")
    if not c.canary:
        status = (target or {}).get("status") or {}
        if image_of(target, c.service) != c.image:
            return Verdict("canary", False, f"Deployment {c.team}/{c.service} runs {image_of(target, c.service)}, not {c.image}"), None
        want = (target or {}).get("spec", {}).get("replicas", 1)
        done = (
            status.get("observedGeneration", 0) >= (target or {}).get("metadata", {}).get("generation", 0)
            and status.get("updatedReplicas") == status.get("availableReplicas") == want
        )
        rolled = [x for x in _conditions(target or {}) if x.get("type") == "Progressing" and x.get("reason") == "NewReplicaSetAvailable"]
        at = timestamp(rolled[0].get("lastUpdateTime")) if rolled else None
        if not done or at is None:
            return Verdict("canary", False, f"{c.team}/{c.service} (no canary) has not finished rolling out {c.image}"), None
        return Verdict("canary", True, f"{c.service} has no canary; its rollout of {c.image} completed at {shown(at)}"), at
    canary = k8s.get(f"/apis/flagger.app/v1beta1/namespaces/{c.team}/canaries/{c.service}")
    if canary is None:
        return Verdict("canary", False, f"no Canary {c.team}/{c.service} in staging"), None
    status = canary.get("status") or {}
    primary = image_of(k8s.get(f"{apps}/{c.service}-primary"), c.service)
    if status.get("phase") != "Succeeded":
        return Verdict("canary", False, f"Canary {c.team}/{c.service} is {status.get('phase')!r}, not Succeeded (primary runs {primary})"), None
    if primary != c.image or image_of(target, c.service) != c.image:
        return (
            Verdict(
                "canary", False, f"the succeeded analysis was not of {c.image}: {c.service}-primary runs {primary}, the target {image_of(target, c.service)}"
            ),
            None,
        )
    at = timestamp(status.get("lastTransitionTime"))
    if at is None:
        return Verdict("canary", False, f"Canary {c.team}/{c.service} has no lastTransitionTime"), None
    return Verdict("canary", True, f"Flagger promoted {c.image} in staging at {shown(at)}"), at


def alerts(prometheus: Prometheus, c: Candidate, at: float) -> Verdict:
    pods = f"{c.service}(-primary)?-[a-z0-9]+-[a-z0-9]+"
    page = f'alertstate="firing", severity="critical", namespace="{c.team}"'
    expr = (
        f'max by (alertname) (max_over_time(ALERTS{{{page}, service="{c.service}"}}[{ALERT_WINDOW}])) '
        f'or max by (alertname) (max_over_time(ALERTS{{{page}, pod=~"{pods}"}}[{ALERT_WINDOW}]))'
    )
    fired = sorted({r["metric"].get("alertname", "?") for r in prometheus.query(expr, at)})
    if fired:
        return Verdict("alerts", False, f"page-severity alerts fired for {c.team}/{c.service} in the last {ALERT_WINDOW}: {', '.join(fired)}")
    return Verdict("alerts", True, f"no page-severity alert for {c.team}/{c.service} in the last {ALERT_WINDOW}")


def chaos(k8s: Kubernetes, c: Candidate, since: float) -> Verdict:
    if c.chaos is None:
        return Verdict("chaos", True, f"not required ({c.tier} tier)")
    base = f"/apis/chaos-mesh.org/v1alpha1/namespaces/{c.team}"
    runs = []
    for w in k8s.list(f"{base}/workflows", f"{CHAOS_LABEL}={c.chaos}"):
        start = timestamp((w.get("status") or {}).get("startTime")) or timestamp(w.get("metadata", {}).get("creationTimestamp"))
        finished = any(x.get("type") == "Accomplished" and x.get("status") == "True" for x in _conditions(w))
        if start is not None and start >= since and finished:
            runs.append((start, w))
    if not runs:
        return Verdict("chaos", False, f"no run of the chaos workflow {c.team}/{c.chaos} has finished since {c.image} landed ({shown(since)})")
    start, newest = max(runs, key=lambda r: r[0])
    name = newest["metadata"]["name"]
    nodes = k8s.list(f"{base}/workflownodes", f"chaos-mesh.org/workflow={name}")
    aborted = any(x.get("type") == "Aborted" and x.get("status") == "True" for obj in (newest, *nodes) for x in _conditions(obj))
    if aborted:
        return Verdict("chaos", False, f"chaos run {c.team}/{name} (started {shown(start)}) was aborted by its SLO status check")
    return Verdict("chaos", True, f"chaos run {c.team}/{name} (started {shown(start)}) finished with the SLO held")


def soak(c: Candidate, since: float, at: float) -> Verdict:
    need, have = c.soak_minutes * 60, at - since
    if have < need:
        return Verdict("soak", False, f"{c.image} has run {int(have // 60)} of the {c.soak_minutes} minutes a {c.tier} image soaks in staging")
    return Verdict("soak", True, f"soaked {int(have // 60)} minutes (at least {c.soak_minutes} for the {c.tier} tier)")


def evaluate(c: Candidate, k8s: Kubernetes, prometheus: Prometheus, at: float) -> list[Verdict]:
    canary, since = landed(k8s, c)
    verdicts = [canary, alerts(prometheus, c, at)]
    if since is None:
        waiting = "not judged: the image has not landed in staging (see the canary gate)"
        return verdicts + [Verdict("chaos", False, waiting), Verdict("soak", False, waiting)]
    return verdicts + [chaos(k8s, c, since), soak(c, since, at)]
