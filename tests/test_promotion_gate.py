"""`make promote` (engine/promote): each gate's pass and fail cases, against a real Prometheus.

Prometheus is the production version `make tools` builds (tests/tools.py), started on loopback over
a TSDB that `promtool tsdb create-blocks-from openmetrics` builds from exporter-shaped series (ALERTS as Prometheus writes it,
the SLO ratios as the services' recording rules do). The Kubernetes side is a loopback server that
answers GETs with the API's own object shapes (Canary, Deployment, Workflow, WorkflowNode, Status).
Evaluation time is fixed (--at) so nothing depends on how long the tests take.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tools import require

from components.workloads.chaos import slo_breach_query
from engine.promote.__main__ import main
from engine.promote.pin import PinError, with_pin

T0 = (int(time.time()) // 60) * 60
REGISTRY = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/"
TOKEN = "staging-reader-token"


def iso(seconds_before: float) -> str:
    return datetime.fromtimestamp(T0 - seconds_before, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def samples(name: str, labels: dict[str, str], value: float, start_min: float, end_min: float) -> list[str]:
    """One series sampled every 30 s from `start_min` to `end_min` minutes before T0."""
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    steps = int((start_min - end_min) * 2)
    return [f"{name}{{{text}}} {value} {T0 - start_min * 60 + i * 30}" for i in range(steps + 1)]


def page(service: str, namespace: str, severity: str = "critical", state: str = "firing", alert: str = "ServiceErrorBudgetFastBurn", **extra) -> dict:
    labels = {"alertname": alert, "alertstate": state, "severity": severity, "team": namespace, "namespace": namespace, "slo": "availability"}
    return {**labels, **({"service": service} if service else {}), **extra}


def sli(service: str, namespace: str, slo: str) -> dict:
    return {"team": namespace, "namespace": namespace, "service": service, "slo": slo}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    binary, promtool = require("prometheus"), require("promtool")
    work = tmp_path_factory.mktemp("prometheus")
    alerts = (
        samples("ALERTS", page("orders", "checkout"), 1, 30, 5)  # paged until 5 minutes ago
        + samples("ALERTS", page("storefront", "web"), 1, 60, 15)  # paged, but 15 minutes ago
        + samples("ALERTS", page("storefront", "web", severity="warning", alert="ServiceErrorBudgetSlowBurn"), 1, 20, 0)
        + samples("ALERTS", page("payment", "checkout", state="pending"), 1, 3, 0)  # not fired
        + samples("ALERTS", page("notifications", "messaging"), 1, 10, 0)  # another team's service
        + samples("ALERTS", page("", "catalog", alert="HighPodRestartRate", pod="inventory-7d9f8c6b5-x2x4q"), 1, 8, 2)
    )
    ratios = {
        "slo:sli_error:ratio_rate5m": [(sli("orders", "checkout", "availability"), 0.05), (sli("payment", "checkout", "availability"), 0.0001)],
        "slo:sli_latency_error:ratio_rate5m": [(sli("orders", "checkout", "latency"), 0.002), (sli("payment", "checkout", "latency"), 0.001)],
    }
    lines = ["# TYPE ALERTS gauge", *alerts]
    for name, series in ratios.items():
        lines += [f"# TYPE {name} gauge"] + [line for labels, value in series for line in samples(name, labels, value, 20, 0)]
    source = work / "series.om"
    source.write_text("\n".join(lines) + "\n# EOF\n")
    data = work / "data"
    made = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)], capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    (work / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=3650d",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(work / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                assert proc.poll() is None and time.time() < deadline, (work / "prometheus.log").read_text()
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeApi(BaseHTTPRequestHandler):
    """GET-only Kubernetes API over `objects` (path -> object) and `lists` ((path, labelSelector) -> items)."""

    objects: dict = {}
    lists: dict = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.reply(401, status("Unauthorized", 401))
        url = urllib.parse.urlparse(self.path)
        selector = urllib.parse.parse_qs(url.query).get("labelSelector", [None])[0]
        if selector is not None:
            kind = url.path.rsplit("/", 1)[1]
            return self.reply(
                200, {"kind": f"{kind[:-1].capitalize()}List", "apiVersion": "v1", "metadata": {}, "items": self.lists.get((url.path, selector), [])}
            )
        found = self.objects.get(url.path)
        return self.reply(200, found) if found is not None else self.reply(404, status("NotFound", 404))

    def reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass  # no access log on the test's output


def status(reason: str, code: int) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": reason, "code": code}


@pytest.fixture
def kube():
    FakeApi.objects, FakeApi.lists = {}, {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", FakeApi
    server.shutdown()


def deployment(namespace: str, name: str, container: str, image: str, rolled_out_before: float = 3 * 3600) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "generation": 4},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": container, "image": image}]}}},
        "status": {
            "observedGeneration": 4,
            "replicas": 2,
            "updatedReplicas": 2,
            "availableReplicas": 2,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "lastUpdateTime": iso(rolled_out_before)},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "lastUpdateTime": iso(rolled_out_before)},
            ],
        },
    }


def released(api, namespace: str, name: str, image: str, phase: str = "Succeeded", landed_before: float = 3 * 3600, primary: str | None = None) -> None:
    """Flagger's objects after an analysis of `image` in staging."""
    apps = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    api.objects[f"{apps}/{name}"] = deployment(namespace, name, name, image)
    api.objects[f"{apps}/{name}-primary"] = deployment(namespace, f"{name}-primary", name, primary or image)
    api.objects[f"/apis/flagger.app/v1beta1/namespaces/{namespace}/canaries/{name}"] = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "status": {"phase": phase, "failedChecks": 0, "canaryWeight": 0, "lastTransitionTime": iso(landed_before)},
    }


def chaos_run(api, namespace: str, service: str, started_before: float, aborted: bool = False) -> None:
    base = f"/apis/chaos-mesh.org/v1alpha1/namespaces/{namespace}"
    name = f"{service}-chaos-gate-{int(started_before)}"
    run = {
        "apiVersion": "chaos-mesh.org/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, "namespace": namespace, "labels": {"managed-by": f"{service}-chaos-gate"}, "creationTimestamp": iso(started_before)},
        "status": {
            "entryNode": f"gate-{name}",
            "startTime": iso(started_before),
            "endTime": iso(started_before - 480),
            "conditions": [{"type": "Accomplished", "status": "True", "reason": ""}, {"type": "Scheduled", "status": "True", "reason": ""}],
        },
    }
    api.lists.setdefault((f"{base}/workflows", f"managed-by={service}-chaos-gate"), []).append(run)
    node = {
        "apiVersion": "chaos-mesh.org/v1alpha1",
        "kind": "WorkflowNode",
        "metadata": {"name": f"slo-{name}", "namespace": namespace, "labels": {"chaos-mesh.org/workflow": name}},
        "status": {
            "conditions": [{"type": "Accomplished", "status": "True", "reason": ""}]
            + ([{"type": "Aborted", "status": "True", "reason": "StatusCheckFailed"}] if aborted else [])
        },
    }
    api.lists[(f"{base}/workflownodes", f"chaos-mesh.org/workflow={name}")] = [node]


def promote(scratch, kube_url: str, service: str, prometheus: str, *extra: str) -> int:
    token = scratch.root / "token"
    token.write_text(TOKEN)
    return main([service, "--kube-api", kube_url, "--kube-token-file", str(token), "--prometheus", prometheus, "--at", str(T0), *extra], root=scratch.root)


@pytest.fixture
def release(scratch):
    """payment 3.1.0 in staging (prod pins 3.0.2)."""
    scratch.edit("stacks/services/checkout/payment.yaml", lambda d: d["envs"]["staging"].update(image=f"{REGISTRY}payment:3.1.0"))
    return f"{REGISTRY}payment:3.1.0"


def prod_pin(scratch, name: str) -> str:
    return scratch.read(scratch.service_file(name))["envs"]["prod"]["image"]


def test_every_gate_holds_and_the_prod_pin_moves(scratch, kube, prometheus, release, capsys):
    url, api = kube
    released(api, "checkout", "payment", release)
    chaos_run(api, "checkout", "payment", started_before=2 * 3600)
    before = scratch.path("stacks/services/checkout/payment.yaml").read_text()
    assert promote(scratch, url, "payment", prometheus, "--write") == 0
    assert prod_pin(scratch, "payment") == release
    # Only the pin's line changed.
    after = scratch.path("stacks/services/checkout/payment.yaml").read_text()
    assert [a for a, b in zip(after.splitlines(), before.splitlines(), strict=True) if a != b] == [f"    image: {release}"]
    body = (scratch.root / "build" / "promote" / "payment.md").read_text()
    assert body.count("| holds |") == 4 and "Flagger promoted" in body and "finished with the SLO held" in body


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (lambda api, image: released(api, "checkout", "payment", image, phase="Failed"), "is 'Failed', not Succeeded"),
        (lambda api, image: released(api, "checkout", "payment", image, primary=f"{REGISTRY}payment:3.0.2"), "the succeeded analysis was not of"),
        (lambda api, image: None, "no Canary checkout/payment in staging"),
        (lambda api, image: released(api, "checkout", "payment", image, landed_before=30 * 60), "has run 30 of the 120 minutes"),
    ],
)
def test_the_canary_and_soak_gates_fail_closed(scratch, kube, prometheus, release, capsys, setup, fragment):
    url, api = kube
    setup(api, release)
    chaos_run(api, "checkout", "payment", started_before=20 * 60)
    assert promote(scratch, url, "payment", prometheus, "--write") == 1
    assert fragment in capsys.readouterr().out
    assert prod_pin(scratch, "payment") == f"{REGISTRY}payment:3.0.2"


@pytest.mark.parametrize(
    "runs, fragment",
    [
        ([], "no run of the chaos workflow checkout/payment-chaos-gate has finished since"),
        ([4 * 3600], "no run of the chaos workflow"),  # only before the image landed
        ([2 * 3600, (3600, True)], "was aborted by its SLO status check"),  # the newest run failed
    ],
)
def test_the_chaos_gate_needs_a_passing_run_since_the_image_landed(scratch, kube, prometheus, release, capsys, runs, fragment):
    url, api = kube
    released(api, "checkout", "payment", release)
    for run in runs:
        before, aborted = run if isinstance(run, tuple) else (run, False)
        chaos_run(api, "checkout", "payment", started_before=before, aborted=aborted)
    assert promote(scratch, url, "payment", prometheus) == 1
    assert fragment in capsys.readouterr().out


def test_a_page_in_the_last_ten_minutes_blocks_the_promotion(scratch, kube, prometheus, capsys):
    url, api = kube
    released(api, "checkout", "orders", f"{REGISTRY}orders:1.13.0")
    chaos_run(api, "checkout", "orders", started_before=3600)
    assert promote(scratch, url, "orders", prometheus) == 1
    assert "page-severity alerts fired for checkout/orders in the last 10m: ServiceErrorBudgetFastBurn" in capsys.readouterr().out


def test_old_pages_warnings_and_other_services_pages_do_not_block(scratch, kube, prometheus, capsys):
    url, api = kube
    image = f"{REGISTRY}storefront:2.5.0"
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d["envs"]["staging"].update(image=image))
    released(api, "web", "storefront", image, landed_before=2 * 3600)
    assert promote(scratch, url, "storefront", prometheus) == 0
    out = capsys.readouterr().out
    assert "no page-severity alert for web/storefront" in out and "not required (standard tier)" in out


def test_a_page_about_the_services_pods_blocks_a_service_without_a_canary(scratch, kube, prometheus, capsys):
    url, api = kube
    image = f"{REGISTRY}inventory:0.9.8"
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d["envs"]["staging"].update(image=image))
    api.objects["/apis/apps/v1/namespaces/catalog/deployments/inventory"] = deployment("catalog", "inventory", "inventory", image)
    assert promote(scratch, url, "inventory", prometheus) == 1
    out = capsys.readouterr().out
    assert "its rollout of" in out and "HighPodRestartRate" in out


def test_an_unreachable_prometheus_fails_closed(scratch, kube, release, capsys):
    url, api = kube
    released(api, "checkout", "payment", release)
    assert promote(scratch, url, "payment", f"http://127.0.0.1:{free_port()}", "--write") == 1
    err = capsys.readouterr().err
    assert "Prometheus at http://127.0.0.1:" in err and "the promotion gate fails closed" in err
    assert prod_pin(scratch, "payment") == f"{REGISTRY}payment:3.0.2"


def test_an_unreachable_or_refusing_kubernetes_api_fails_closed(scratch, kube, prometheus, release, capsys):
    url, api = kube
    assert promote(scratch, f"http://127.0.0.1:{free_port()}", "payment", prometheus) == 1
    assert "the Kubernetes API at http://127.0.0.1:" in capsys.readouterr().err
    (scratch.root / "token").write_text("wrong")
    released(api, "checkout", "payment", release)
    code = main(
        ["payment", "--kube-api", url, "--kube-token-file", str(scratch.root / "token"), "--prometheus", prometheus, "--at", str(T0)], root=scratch.root
    )
    assert code == 1 and "HTTP 401" in capsys.readouterr().err


def test_bad_input_and_nothing_to_do(scratch, kube, prometheus, capsys):
    url, _ = kube
    assert main(["payment"], root=scratch.root) == 2 and "PROMOTE_KUBE_API" in capsys.readouterr().err
    assert promote(scratch, url, "nosuch", prometheus) == 2 and "does not run in stack 'staging'" in capsys.readouterr().err
    # Staging and prod pin the same image: nothing to promote, no API is asked.
    assert promote(scratch, url, "payment", f"http://127.0.0.1:{free_port()}") == 0 and "already pins" in capsys.readouterr().out


def test_the_pin_edit_touches_only_the_pin():
    text = "name: x\nenvs:\n  staging:\n    image: a:1  # staging\n  prod:\n    replicas: {min: 3, max: 4}\n    image: a:0  # prod\n"
    assert with_pin(text, "prod", "a:1") == text.replace("image: a:0  # prod", "image: a:1  # prod")
    with pytest.raises(PinError, match="no `envs.prod.image:` line"):
        with_pin("name: x\nenvs:\n  prod:\n    replicas: {min: 3, max: 4}\n", "prod", "a:1")
    with pytest.raises(PinError, match="no `envs.prod:` block"):
        with_pin("name: x\nimage: a:0\n", "prod", "a:1")


def test_the_chaos_status_check_query_answers_200_within_the_slo_and_422_past_it(prometheus):
    """Chaos Mesh's HTTP StatusCheck judges the status code only: the workflow's query (components/workloads/chaos.py)
    must succeed while the service is within its page burn rate and fail to evaluate once it is not."""
    from components.spec import load
    from conftest import ROOT

    services = {s.name: s for s in load("staging", ROOT).services}

    def code(name: str) -> int:
        url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": slo_breach_query(services[name]), "time": T0})
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                assert json.loads(response.read())["data"]["result"] == []
                return response.status
        except urllib.error.HTTPError as err:
            assert "same labelset" in err.read().decode()
            return err.code

    assert code("payment") == 200  # 0.01% errors: within budget
    assert code("orders") == 422  # 5% errors against a 0.1% budget at burn 14.4
