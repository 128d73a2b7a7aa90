"""`make cluster-up [STACK=…]` / `make cluster-down`: etcd, kube-apiserver and a trimmed
kube-controller-manager on loopback, with certificates and service-account keys made here.

The API server runs its default admission plugins (PodSecurity, ServiceAccount, LimitRanger,
ResourceQuota, Priority, …), so pods are judged as on a real cluster. The controller manager runs only
the controllers whose absence would make the server lie about what it accepts or keeps: namespace
(a deleted namespace finishes terminating), garbage collector, service accounts and their tokens, and
resource quota (quota admission needs the quota's status). No scheduler, no kubelet: nothing runs, and
nothing becomes Ready (engine/real/up_local.py says how the cycle copes).

State, logs and the kubeconfig live in build/cluster/; `down` stops only the processes `up` started.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from engine.project import PROJECT_ROOT

from .crds import install_crds
from .kube import Kube

STATE = PROJECT_ROOT / "build" / "cluster"
KUBECONFIG = STATE / "kubeconfig"
TOOLS = Path(os.environ.get("ENGINE_TOOLS_BIN", PROJECT_ROOT / ".engine-tools" / "bin"))
SERVICE_CIDR = "10.96.0.0/16"
CONTROLLERS = "namespace-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller,resourcequota-controller"


class ClusterError(RuntimeError):
    """The local control plane cannot be started, reached or stopped; the message says which part and why."""


def tool(name: str) -> str:
    path = TOOLS / name
    if not os.access(path, os.X_OK):
        raise ClusterError(f"{path} is missing: run `make engine-tools`")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(pki: Path) -> None:
    """A throw-away CA, the API server's serving certificate, an admin client and the SA key pair."""
    pki.mkdir(parents=True)
    days = "7"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{pki}/ca.key", "-out", f"{pki}/ca.crt", "-days", days,
            "-subj", "/CN=platform-local-ca", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    leaves = {
        "apiserver": ("/CN=kube-apiserver", "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc,IP:10.96.0.1\nextendedKeyUsage=serverAuth"),
        # system:masters: the admin, as on a cluster's break-glass credential; the controller manager uses it too.
        "admin": ("/O=system:masters/CN=platform-admin", "extendedKeyUsage=clientAuth"),
    }
    for name, (subject, extensions) in leaves.items():
        ext = pki / f"{name}.ext"
        ext.write_text(extensions + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{pki}/{name}.key", "-out", f"{pki}/{name}.csr", "-subj", subject)
        openssl("x509", "-req", "-in", f"{pki}/{name}.csr", "-CA", f"{pki}/ca.crt", "-CAkey", f"{pki}/ca.key", "-CAcreateserial",
                "-days", days, "-out", f"{pki}/{name}.crt", "-extfile", str(ext))  # fmt: skip
    openssl("genrsa", "-out", f"{pki}/sa.key", "2048")
    openssl("rsa", "-in", f"{pki}/sa.key", "-pubout", "-out", f"{pki}/sa.pub")


def write_kubeconfig(state: Path, pki: Path, port: int) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": f"https://127.0.0.1:{port}", "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": "admin", "user": {"client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
        "current-context": "local",
    }
    (state / "kubeconfig").write_text(yaml.safe_dump(config, sort_keys=False))


def start(state: Path, name: str, argv: list[str]) -> int:
    log = open(state / f"{name}.log", "ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return proc.pid


def up(stack: str | None, state: Path = STATE, timeout: float = 180) -> Kube:
    if (state / "pids.json").exists():
        raise ClusterError(f"a local cluster is already up ({state}); run `make cluster-down` first")
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    pki = state / "pki"
    kubeconfig = state / "kubeconfig"
    make_pki(pki)
    etcd_client, etcd_peer, api = free_port(), free_port(), free_port()
    pids: dict[str, int] = {}
    pids["etcd"] = start(
        state,
        "etcd",
        [tool("etcd"), "--name=local", f"--data-dir={state / 'etcd'}", f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
         f"--advertise-client-urls=http://127.0.0.1:{etcd_client}", f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
         f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}", f"--initial-cluster=local=http://127.0.0.1:{etcd_peer}",
         "--unsafe-no-fsync", "--log-level=warn"],
    )  # fmt: skip
    (state / "pids.json").write_text(json.dumps(pids))
    pids["kube-apiserver"] = start(
        state,
        "kube-apiserver",
        [tool("kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_client}", "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
         f"--secure-port={api}", f"--cert-dir={state / 'certs'}", f"--tls-cert-file={pki / 'apiserver.crt'}",
         f"--tls-private-key-file={pki / 'apiserver.key'}", f"--client-ca-file={pki / 'ca.crt'}",
         f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
         "--service-account-issuer=https://kubernetes.default.svc.cluster.local", f"--service-cluster-ip-range={SERVICE_CIDR}",
         "--authorization-mode=RBAC", "--allow-privileged=true", "--profiling=false", "--v=1"],
    )  # fmt: skip
    (state / "pids.json").write_text(json.dumps(pids))
    write_kubeconfig(state, pki, api)
    kube = Kube(kubeconfig)
    kube.wait_ready(timeout)
    pids["kube-controller-manager"] = start(
        state,
        "kube-controller-manager",
        [tool("kube-controller-manager"), f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
         f"--authorization-kubeconfig={kubeconfig}", "--leader-elect=false", f"--controllers={CONTROLLERS}",
         f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
         "--bind-address=127.0.0.1", "--secure-port=0", "--v=1"],
    )  # fmt: skip
    (state / "pids.json").write_text(json.dumps(pids))
    failed = install_crds(kube)
    for message in failed:
        print(f"cluster-up: CRD not installed: {message}", file=sys.stderr)
    if stack:
        apply_namespaces(kube, stack)
    return kube


def stack_objects(stack: str, kind: str) -> list[dict[str, Any]]:
    manifests = PROJECT_ROOT / "build" / stack / "manifests"
    if not manifests.is_dir():
        raise ClusterError(f"{manifests} is missing: run `make preview STACK={stack}` first")
    found = []
    for path in sorted(manifests.rglob(f"{kind.lower()}-*.yaml")):
        obj = yaml.safe_load(path.read_text())
        if obj.get("kind") == kind:
            found.append(obj)
    return found


def apply_namespaces(kube: Kube, stack: str) -> None:
    """The stack's namespaces with the labels it renders (Pod Security levels among them)."""
    for ns in stack_objects(stack, "Namespace"):
        resp = kube.apply(ns)
        if not resp.ok:
            raise ClusterError(f"namespace {ns['metadata']['name']}: {resp.message}")


def _ours(pid: int, name: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False
    return Path(cmdline).name == name


def down(state: Path = STATE) -> None:
    pids_file = state / "pids.json"
    pids: dict[str, int] = json.loads(pids_file.read_text()) if pids_file.exists() else {}
    # The controller manager and the API server before etcd, as a node shuts down.
    for name, pid in sorted(pids.items(), key=lambda item: item[0] == "etcd"):
        if not _ours(pid, name):
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _ours(pid, name) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _ours(pid, name):
            os.kill(pid, signal.SIGKILL)
    pids_file.unlink(missing_ok=True)
    shutil.rmtree(state / "etcd", ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make cluster-up / cluster-down", description=__doc__)
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--stack", help="create this stack's namespaces (from build/<stack>/manifests)")
    args = parser.parse_args(argv)
    try:
        if args.action == "down":
            down()
            print("cluster-down: stopped")
            return 0
        started = time.monotonic()
        up(args.stack)
        print(f"cluster-up: ready in {time.monotonic() - started:.0f}s; KUBECONFIG={KUBECONFIG}")
        return 0
    except (ClusterError, TimeoutError, subprocess.CalledProcessError) as err:
        print(f"cluster-{args.action}: {err}", file=sys.stderr)
        if args.action == "up" and not isinstance(err, ClusterError):
            print(f"  logs: {STATE}/*.log", file=sys.stderr)
            down()
        return 2


if __name__ == "__main__":
    sys.exit(main())
