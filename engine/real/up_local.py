"""`make up-local STACK=…`: the real Pulumi CLI and Kubernetes provider apply a stack to a fresh local
API server, as a cycle whose every step must hold:

1. `pulumi up` creates every object;
2. `pulumi preview --expect-no-changes` finds nothing to do (the provider reads back what it wrote);
3. `pulumi up` after one image bump is exactly one update, nothing created, deleted or replaced;
4. `pulumi destroy` leaves no object of the stack in the cluster and no resource in the state.

State lives in a file backend under build/<stack>/up-local/ with a passphrase secrets provider (a
random passphrase per run); PULUMI_HOME is there too, and plugins come only from .engine-tools/bin
(automatic plugin downloads are off). The program is engine/real/program.py's rendering of the
recorded stack, or, with --project, a Pulumi project folder to run as it is (a team stack, once its
language host can be built). Each step's time goes to build/<stack>/up-local.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from engine.project import PROJECT_ROOT
from engine.stacks import team_stack

from . import cluster, program
from .kube import Kube, NoSuchApi

STACK_NAME = "local"


class CycleError(RuntimeError):
    """A step of the cycle failed; the message holds the command and the tail of its output."""


def cli_env(home: Path, tools: Path = cluster.TOOLS, **settings: str) -> dict[str, str]:
    """The environment the real CLI runs in here: the built tools first on PATH (plugins come only
    from there, never downloaded), its own PULUMI_HOME, no update check, and none of the caller's
    PULUMI_* settings (a backend, a token, a passphrase meant for another stack), then `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(
        PATH=f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
        PULUMI_HOME=str(home),
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
    )
    env.update(settings)
    return env


class Cli:
    def __init__(self, workdir: Path, home: Path, backend: Path, log: Path):
        self.workdir, self.log = workdir, log
        home.mkdir(parents=True, exist_ok=True)
        backend.mkdir(parents=True, exist_ok=True)
        self.env = cli_env(
            home,
            PULUMI_BACKEND_URL=f"file://{backend}",
            PULUMI_CONFIG_PASSPHRASE=secrets.token_urlsafe(24),
            PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK="true",
            KUBECONFIG=str(cluster.KUBECONFIG),
        )

    def __call__(self, *args: str, timeout: float = 1800, check: bool = True) -> subprocess.CompletedProcess:
        argv = [cluster.tool("pulumi"), *args, "--non-interactive", "--cwd", str(self.workdir)]
        with self.log.open("a") as log:
            log.write(f"\n$ pulumi {' '.join(args)}\n")
            proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)
            log.write(proc.stdout + proc.stderr)
        if check and proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
            raise CycleError(f"`pulumi {' '.join(args)}` exited {proc.returncode}:\n{tail}")
        return proc


def last_changes(cli: Cli) -> dict[str, int]:
    """resourceChanges of the newest update in the stack's history (what the engine really did)."""
    history = json.loads(cli("stack", "history", "--json", "--show-secrets=false").stdout)
    newest = max(history, key=lambda u: (u.get("version") or 0, u.get("startTime") or ""))
    return dict(newest.get("resourceChanges") or {})


def remaining(kube: Kube, objects: list[dict[str, Any]]) -> list[str]:
    """The objects the cluster still holds."""
    return _where(kube, objects, lambda status: status != 404)


def missing(kube: Kube, objects: list[dict[str, Any]]) -> list[str]:
    """The objects the cluster does not hold."""
    return _where(kube, objects, lambda status: status == 404)


def _where(kube: Kube, objects: list[dict[str, Any]], wanted: Callable[[int], bool]) -> list[str]:
    found = []
    for obj in objects:
        try:
            resp = kube.get(obj)
        except NoSuchApi:
            continue
        if wanted(resp.status):
            found.append(f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}".replace(" /", " "))
    return found


def wait_gone(kube: Kube, objects: list[dict[str, Any]], timeout: float = 120) -> list[str]:
    """Namespaces terminate asynchronously (the namespace controller empties them first)."""
    deadline = time.monotonic() + timeout
    while (left := remaining(kube, objects)) and time.monotonic() < deadline:
        time.sleep(1)
    return left


def run_cycle(stack: str, project: Path | None, out: Path) -> dict[str, Any]:
    stack_dir = PROJECT_ROOT / "build" / stack
    resources = program.load_recording(stack_dir)
    objects = [r.inputs for r in resources if r.is_kubernetes_object]
    work = stack_dir / "up-local"
    workdir = project or work / "program"
    # Each cycle starts from nothing: a state or stack settings file left by an earlier run carries
    # that run's encryption salt, which this run's fresh passphrase cannot open.
    shutil.rmtree(work / "state", ignore_errors=True)
    (workdir / f"Pulumi.{STACK_NAME}.yaml").unlink(missing_ok=True)
    cli = Cli(workdir, work / "home", work / "state", work / "pulumi.log")
    (work / "pulumi.log").write_text("")
    image = program.first_image(resources)
    new_image = program.bumped(image)
    secret_keys: list[str] = []
    if project is None:
        doc, secret_keys = program.build(resources, cluster.KUBECONFIG)
        program.write(workdir, doc)
    times: dict[str, float] = {}
    report: dict[str, Any] = {"stack": stack, "objects": len(objects), "image": image, "bumpedTo": new_image, "seconds": times}

    def step(name: str, *args: str) -> subprocess.CompletedProcess:
        started = time.monotonic()
        proc = cli(*args)
        times[name] = round(time.monotonic() - started, 1)
        print(f"up-local {stack}: {name}: {times[name]}s", flush=True)
        return proc

    cli("stack", "init", STACK_NAME, "--secrets-provider", "passphrase")
    if secret_keys:
        cli("config", "set-all", *(arg for key in secret_keys for arg in ("--secret", f"{key}={secrets.token_hex(16)}")))
    kube = Kube(cluster.KUBECONFIG)
    step("up", "up", "--yes", "--skip-preview")
    created = last_changes(cli)
    report["up"] = created
    absent = missing(kube, objects)
    if absent:
        raise CycleError(f"after up, objects are missing from the cluster: {absent[:10]}")
    step("preview --expect-no-changes", "preview", "--expect-no-changes", "--diff")
    if project is None:
        doc, _ = program.build(resources, cluster.KUBECONFIG, images={image: new_image})
        program.write(workdir, doc)
    step("up (image bump)", "up", "--yes", "--skip-preview")
    bump = last_changes(cli)
    report["bump"] = bump
    changed = {k: v for k, v in bump.items() if k != "same"}
    if changed != {"update": 1}:
        raise CycleError(f"the image bump must be exactly 1 update, the engine did {bump}")
    step("destroy", "destroy", "--yes", "--skip-preview")
    report["destroy"] = last_changes(cli)
    left = wait_gone(kube, objects)
    state = json.loads(cli("stack", "export", "--show-secrets=false").stdout)
    in_state = [r["urn"] for r in state.get("deployment", {}).get("resources") or [] if not r["type"].startswith("pulumi:")]
    if left or in_state:
        raise CycleError(f"destroy left objects in the cluster {left[:10]} and resources in the state {in_state[:10]}")
    report["ok"] = True
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make up-local", description=__doc__)
    parser.add_argument("stack", help="the recorded stack (build/<stack>/resources.json; make preview writes it)")
    parser.add_argument("--project", type=Path, help="a Pulumi project folder to run instead of the recorded objects")
    parser.add_argument("--use-running-cluster", action="store_true", help="use the cluster `make cluster-up` started")
    args = parser.parse_args(argv)
    if not (PROJECT_ROOT / "build" / args.stack / "resources.json").is_file():
        print(f"up-local: build/{args.stack}/resources.json is missing: run `make preview STACK={args.stack}`", file=sys.stderr)
        return 2
    out = PROJECT_ROOT / "build" / args.stack / "up-local.json"
    out.unlink(missing_ok=True)
    own = not args.use_running_cluster
    try:
        if own:
            started = time.monotonic()
            # A team stack deploys into the room its platform stack built: the cluster starts with the
            # environment's namespaces, labelled as the platform renders them (build/<env>/).
            team = team_stack(args.stack, PROJECT_ROOT)
            cluster.up(team[1] if team else None)
            print(f"up-local {args.stack}: cluster up in {time.monotonic() - started:.0f}s", flush=True)
        report = run_cycle(args.stack, args.project, out)
    except (CycleError, cluster.ClusterError, TimeoutError) as err:
        print(f"up-local {args.stack}: FAILED: {err}", file=sys.stderr)
        print(f"  log: build/{args.stack}/up-local/pulumi.log", file=sys.stderr)
        return 1
    finally:
        if own:
            cluster.down()
    print(f"up-local {args.stack}: cycle passed: {json.dumps(report['seconds'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
