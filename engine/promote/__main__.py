"""make promote SERVICE=<name>: move a service's image from staging to prod once every gate holds.

    python -m engine.promote orders [--write] [--kube-api URL] [--prometheus URL] ...

Reads the staging cluster's Kubernetes API (PROMOTE_KUBE_API, a bearer token in
PROMOTE_KUBE_TOKEN_FILE, its CA in PROMOTE_KUBE_CA) and Prometheus (PROMOTE_PROMETHEUS_URL; by
default through the API server's service proxy). Writes build/promote/<service>.md (the gates and
their evidence, the PR's body) and, with --write, the prod pin. Exit 0: promotable (or already
promoted); 1: a gate does not hold or an API did not answer (fail closed); 2: bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from components.addons.prometheus import NAMESPACE as MONITORING, PROMETHEUS_SERVICE
from components.spec import Declarations, SpecError, load
from components.workloads.chaos import gate_name

from .gates import Candidate, Verdict, evaluate
from .pin import PinError, move
from .sources import Kubernetes, Prometheus, Unreachable, tls_context

ROOT = Path(__file__).resolve().parents[2]


def candidate(decl: Declarations, service: str) -> tuple[Candidate, str]:
    """What the gates judge, and the image as the service file pins it for the source stack."""
    svc = next((s for s in decl.services if s.name == service), None)
    if svc is None:
        raise PinError(f"service {service!r} does not run in stack {decl.stack!r}")
    chaos = svc.tier == "critical" and decl.environment == "staging" and decl.spec.addon_enabled("chaos-mesh")
    found = Candidate(
        service=svc.name,
        team=svc.team,
        tier=svc.tier,
        image=decl.spec.pulled(svc).image,
        canary=svc.canary_enabled(decl.environment),
        chaos=gate_name(svc) if chaos else None,
        soak_minutes=getattr(decl.spec.policy.soak_minutes, svc.tier),
    )
    return found, svc.image


def report(c: Candidate, declared: str, source: str, target: str, verdicts: list[Verdict]) -> str:
    rows = "\n".join(f"| {v.gate} | {'holds' if v.ok else '**does not hold**'} | {v.detail} |" for v in verdicts)
    return (
        f"## Promote {c.service} to {target}: `{declared}`\n\n"
        f"Staging stack `{source}` runs `{c.image}`; the gates (docs/delivery.md#promotion-gates):\n\n"
        f"| gate | | evidence |\n|---|---|---|\n{rows}\n"
    )


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="make promote", description=__doc__.splitlines()[0])
    parser.add_argument("service")
    parser.add_argument("--from", dest="source", default="staging", help="the stack the image has proven itself in")
    parser.add_argument("--to", dest="target", default="prod", help="the stack whose pin moves")
    parser.add_argument("--kube-api", default=env("PROMOTE_KUBE_API"), help="the staging cluster's API server URL")
    parser.add_argument("--kube-token-file", default=env("PROMOTE_KUBE_TOKEN_FILE"))
    parser.add_argument("--kube-ca", default=env("PROMOTE_KUBE_CA"), help="CA bundle of the API server")
    parser.add_argument("--prometheus", default=env("PROMOTE_PROMETHEUS_URL"), help="Prometheus base URL (default: the API server's service proxy)")
    parser.add_argument("--at", type=float, default=None, help="evaluate at this Unix time (default: now)")
    parser.add_argument("--write", action="store_true", help="move the pin in the service file when every gate holds")
    args = parser.parse_args(argv)
    if not args.kube_api:
        print("make promote: set the staging cluster's API server (--kube-api or PROMOTE_KUBE_API)", file=sys.stderr)
        return 2
    try:
        c, declared = candidate(load(args.source, root), args.service)
        current = next((s.image for s in load(args.target, root).services if s.name == args.service), None)
    except (SpecError, PinError) as err:
        print(f"make promote: {err}", file=sys.stderr)
        return 2
    if current == declared:
        print(f"{args.service}: {args.target} already pins {declared}; nothing to promote")
        return 0
    token = Path(args.kube_token_file).read_text().strip() if args.kube_token_file else None
    context = tls_context(args.kube_ca)
    k8s = Kubernetes(args.kube_api, token, context)
    proxy = f"{args.kube_api.rstrip('/')}/api/v1/namespaces/{MONITORING}/services/{PROMETHEUS_SERVICE}:9090/proxy"
    auth = (("Authorization", f"Bearer {token}"),) if token and not args.prometheus else ()
    prometheus = Prometheus(args.prometheus or proxy, auth, context if not args.prometheus else None)
    try:
        verdicts = evaluate(c, k8s, prometheus, args.at if args.at is not None else time.time())
    except Unreachable as err:
        print(f"make promote: {err}", file=sys.stderr)
        return 1
    text = report(c, declared, args.source, args.target, verdicts)
    out = root / "build" / "promote" / f"{args.service}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    if not all(v.ok for v in verdicts):
        print(f"make promote: {args.service} stays at {current} in {args.target}: a gate does not hold", file=sys.stderr)
        return 1
    if args.write:
        try:
            path = move(root, args.service, args.target, declared)
        except PinError as err:
            print(f"make promote: {err}", file=sys.stderr)
            return 2
        print(f"{path.relative_to(root)}: envs.{args.target}.image = {declared}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
