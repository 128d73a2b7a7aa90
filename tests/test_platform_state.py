"""The platform stack's recorded state (engine/platform_state.py) is served only where running the
platform again would register exactly it.

That rests on the platform program reading services only through their views
(components/spec/platform_view.py): a change outside the views leaves the platform stack as it
was and its key as it was; a change inside them, to the code, or to anything else of the checkout
changes the key. `make diff` serves the state; `make preview` always runs the program."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tools import custom_resource

from components.spec import load
from components.spec.platform_view import PlatformService, platform_view
from engine import platform_state
from engine.recording import Recording
from engine.runtime import ProgramError
from engine.stacks import State, load_and_run, run_platform

ROOT = Path(__file__).resolve().parent.parent
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]


def commit_all(root: Path) -> None:
    if not (root / ".git").exists():
        subprocess.run([*GIT, "init", "--quiet", str(root)], check=True)
    subprocess.run([*GIT, "-C", str(root), "add", "--all"], check=True)
    subprocess.run([*GIT, "-C", str(root), "commit", "--quiet", "--allow-empty", "-m", "state"], check=True)


def bump_outside_the_views(scratch) -> None:
    """What an image promotion and a tuning change touch: nothing the platform is given."""

    def edit(data):
        data["image"] = data["image"].rsplit(":", 1)[0] + ":9.9.9"
        data["env"] = {**data.get("env", {}), "LOG_LEVEL": "debug"}
        data["replicas"] = {"min": 2, "max": 3}

    scratch.edit(scratch.service_file("orders"), edit)


def drop_the_egress_host(scratch) -> None:
    """payment stops calling api.stripe.com: the egress gateway's routes for it go (a view field)."""
    scratch.edit(scratch.service_file("payment"), lambda data: data.update(egress=[]))


@pytest.fixture(scope="module")
def dev_platform() -> Recording:
    return run_platform("dev", ROOT)


def test_a_change_outside_the_views_leaves_the_platform_stack_and_its_key(scratch, dev_platform):
    commit_all(scratch.root)
    before = platform_state.key("dev", scratch.root, load("dev", scratch.root))
    bump_outside_the_views(scratch)
    decl = load("dev", scratch.root)
    assert {s.name: s.image for s in decl.services}["orders"].endswith(":9.9.9")
    assert platform_state.key("dev", scratch.root, decl) == before
    after = run_platform("dev", scratch.root)
    assert [r.to_json() for r in after] == [r.to_json() for r in dev_platform]
    assert after.outputs == dev_platform.outputs


def test_a_change_inside_the_views_changes_the_platform_stack_and_its_key(scratch, dev_platform):
    commit_all(scratch.root)
    before = platform_state.key("dev", scratch.root, load("dev", scratch.root))
    drop_the_egress_host(scratch)
    assert platform_state.key("dev", scratch.root, load("dev", scratch.root)) != before
    after = run_platform("dev", scratch.root)
    gone = {r.urn for r in dev_platform} - {r.urn for r in after}
    assert any("egress-api-stripe-com" in urn for urn in gone), sorted(gone)


def test_the_platform_program_is_handed_views_and_a_view_is_all_it_may_read(monkeypatch):
    import components.platform

    given = []
    init = components.platform.Platform.__init__

    def spy(self, name, decl, *args, **kwargs):
        given.extend(decl.services)
        init(self, name, decl, *args, **kwargs)

    monkeypatch.setattr(components.platform.Platform, "__init__", spy)
    run_platform("dev", ROOT)
    assert given and all(isinstance(s, PlatformService) for s in given)
    assert [s.name for s in given] == [s.name for s in platform_view(load("dev", ROOT)).services]
    svc = load("dev", ROOT).services[0]
    view = PlatformService.of(svc)
    for outside in ("image", "env", "replicas", "canary", "secrets", "depends_on", "egress"):
        assert hasattr(svc, outside)
        with pytest.raises(AttributeError):
            getattr(view, outside)


def test_the_single_stack_layout_is_never_served(scratch):
    """Before the split the platform stack renders the services whole: no key covers them."""
    scratch.write("Pulumi.dev.yaml", {"config": {"aws:region": "eu-west-1", "platform:singleStack": "true"}})
    commit_all(scratch.root)
    state = State(scratch.root / "build" / ".platform-state")
    recorded = run_platform("dev", scratch.root, state=state)
    state.keep()
    assert any(r.type == "kubernetes:apps/v1:Deployment" and r.name.startswith("orders") for r in recorded)
    assert not state.store.exists()


def test_the_checkout_hash_covers_every_file_but_the_service_files(tmp_path):
    repo = tmp_path / "repo"
    (repo / "components").mkdir(parents=True)
    (repo / "stacks" / "services" / "web").mkdir(parents=True)
    (repo / "components" / "a.py").write_text("A = 1\n")
    (repo / "stacks" / "dev.yaml").write_text("cluster: {}\n")
    (repo / "stacks" / "services" / "web" / "shop.yaml").write_text("name: shop\n")
    (repo / ".gitignore").write_text("*.log\n")
    commit_all(repo)

    def digest() -> str:
        found = platform_state.checkout_digest(repo)
        assert found is not None
        return found

    first = digest()
    (repo / "stacks" / "services" / "web" / "shop.yaml").write_text("name: shop\nimage: x:2\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.json").write_text("{}")
    (repo / "debug.log").write_text("x")
    assert digest() == first  # a service file, build/ (where the states are kept), what git ignores
    for change in (
        lambda: (repo / "components" / "a.py").write_text("A = 2\n"),  # code
        lambda: (repo / "stacks" / "dev.yaml").write_text("cluster: {name: x}\n"),  # a stack file
        lambda: (repo / "components" / "new.py").write_text(""),  # a new file, not committed yet
        lambda: (repo / "components" / "a.py").unlink(),  # a deleted one
    ):
        change()
        assert digest() != first
        first = digest()
    assert platform_state.checkout_digest(tmp_path / "not-a-checkout") is None
    # Not the path: a clone hashes as its origin does.
    commit_all(repo)
    subprocess.run([*GIT, "clone", "--quiet", str(repo), str(tmp_path / "clone")], check=True)
    assert platform_state.checkout_digest(tmp_path / "clone") == digest()


def recording(value: str) -> Recording:
    resource = custom_resource(f"urn:pulumi:dev::platform::t::{value}", "t", {"v": value, "n": 3})
    return Recording(stack="dev", resources=[resource], outputs={"clusterName": value, "list": [1, 2.5]})


def test_a_state_is_served_only_under_its_own_key(tmp_path):
    store = tmp_path / "store"
    platform_state.record(store, "dev", "k1", recording("one"))
    served = platform_state.served(store, "dev", "k1")
    assert served is not None and served.served
    assert served == recording("one") and served.outputs == recording("one").outputs
    assert platform_state.served(store, "dev", "k2") is None
    assert platform_state.served(store, "prod", "k1") is None
    path = store / "dev" / "k1.json"
    doc = json.loads(path.read_text())
    for broken in ("{not json", json.dumps({**doc, "format": 0}), json.dumps({**doc, "key": "k2"}), json.dumps({**doc, "resources": [{"urn": "x"}]})):
        path.write_text(broken)
        assert platform_state.served(store, "dev", "k1") is None
    assert [p.name for p in (store / "dev").iterdir()] == ["k1.json"]  # no temporary file left behind


def test_the_newest_states_are_kept(tmp_path):
    store = tmp_path / "store"
    for i in range(platform_state.KEEP + 2):
        platform_state.record(store, "dev", f"k{i}", recording(str(i)))
        os.utime(store / "dev" / f"k{i}.json", (1000 + i, 1000 + i))
    platform_state.record(store, "dev", "last", recording("last"))
    kept = sorted(p.stem for p in (store / "dev").glob("*.json"))
    assert len(kept) == platform_state.KEEP and "last" in kept and "k0" not in kept and "k1" not in kept


def run_and_keep(root: Path, store: Path, serve: bool = True) -> Recording:
    state = State(store, serve=serve)
    recording = run_platform("dev", root, state=state)
    state.keep()
    return recording


def test_preview_runs_the_platform_and_diff_serves_its_state(scratch):
    """A state under the right key is served where serving is allowed, and never to a run that
    must run the program (make preview), which records the truth over it."""
    commit_all(scratch.root)
    store = scratch.root / "build" / ".platform-state"
    fresh = run_and_keep(scratch.root, store, serve=False)
    (path,) = (store / "dev").glob("*.json")
    doc = json.loads(path.read_text())
    doc["outputs"]["clusterName"] = "planted"
    path.write_text(json.dumps(doc))
    assert run_and_keep(scratch.root, store).outputs["clusterName"] == "planted"
    again = run_and_keep(scratch.root, store, serve=False)
    assert not again.served and again.outputs == fresh.outputs
    assert json.loads(path.read_text())["outputs"]["clusterName"] == fresh.outputs["clusterName"]
    # No git checkout, no key: nothing is recorded, nothing served.
    plain = scratch.root.parent / "plain"
    shutil.copytree(scratch.root, plain, ignore=shutil.ignore_patterns(".git", "build"))
    run_and_keep(plain, plain / "build" / ".platform-state")
    assert not (plain / "build").exists()


def test_a_refused_run_keeps_no_state(scratch, monkeypatch):
    """The platform ran, then a team stack was refused: nothing is written, the state included."""
    import engine.stacks

    commit_all(scratch.root)
    state = State(scratch.root / "build" / ".platform-state")

    def refused(*args, **kwargs):
        raise ProgramError("stack checkout-dev: refused")

    monkeypatch.setattr(engine.stacks, "run_team", refused)
    with pytest.raises(ProgramError):
        load_and_run("dev", scratch.root, state=state)
    assert state.ran and not state.store.exists()


def test_make_diff_serves_the_platform_state_on_both_sides(tmp_path):
    """End to end through git: the first diff of an image bump runs the platform stack on both
    sides and records it; the next one (another service's bump) is served it on both sides and
    gives the same answer a full run gives."""
    repo = tmp_path / "repo"
    subprocess.run([*GIT, "clone", "--quiet", str(ROOT), str(repo)], check=True)
    for rel in subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"], capture_output=True, text=True, check=True
    ).stdout.splitlines():
        if (ROOT / rel).is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, repo / rel)
    commit_all(repo)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def diff(service: str, tag: str) -> tuple[str, dict]:
        subprocess.run(["git", "-C", str(repo), "checkout", "--quiet", "--", "."], check=True)
        (path,) = repo.glob(f"stacks/services/*/{service}.yaml")
        text = path.read_text()
        image = next(line for line in text.splitlines() if line.startswith("image: "))
        path.write_text(text.replace(image, image.rsplit(":", 1)[0] + f":{tag}", 1))
        # `python -m engine.diff`, telling which way the base was recorded: a services-only change
        # has the same code on both sides, so the base is a fork of this very process.
        run = "import sys, engine.diff.base as b; f = b._fork\ndef fork(*a):\n    r = f(*a)\n    print('forked:', r is not None, file=sys.stderr)\n    return r\nb._fork = fork\n"
        run += "from engine.diff.cli import main; sys.exit(main(['dev', '--base', 'HEAD', '--quiet']))"
        proc = subprocess.run([sys.executable, "-c", run], cwd=repo, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "forked: True" in proc.stderr
        return (repo / "build" / "dev" / "diff.md").read_text().splitlines()[0], json.loads((repo / "build" / "dev" / "diff.json").read_text())

    first, cold = diff("orders", "7.0.0")
    assert first == "Stacks previewed: dev, checkout-dev"
    line, warm = diff("orders", "7.0.0")
    assert line == "Stacks previewed: dev, checkout-dev (dev: served its recorded state on both sides)"
    assert warm == cold
    line, other = diff("inventory", "7.0.0")
    assert line.endswith("(dev: served its recorded state on both sides)")
    assert [(r["op"], r["name"]) for r in other["resources"]] == [("update", "inventory-deployment")]

    # The base is recorded in a fork of the diff's own process (same code): its refusal still comes
    # back as one paragraph naming the base, exit 2, no traceback.
    subprocess.run(["git", "-C", str(repo), "checkout", "--quiet", "--", "."], check=True)
    (path,) = repo.glob("stacks/services/*/inventory.yaml")
    good = path.read_text()
    path.write_text(good + "replicas: {min: 0, max: -1}\n")
    commit_all(repo)
    path.write_text(good)
    proc = subprocess.run([sys.executable, "-m", "engine.diff", "dev", "--base", "HEAD", "--quiet"], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "BASE=HEAD" in proc.stderr and "the engine could not run stack 'dev' there" in proc.stderr and "replicas" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_state_that_cannot_be_kept_costs_only_speed(tmp_path, capsys):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    state = State(blocked)
    state.ran.append(("dev", "k1", recording("one")))
    state.keep()
    assert "the platform stack's state was not kept" in capsys.readouterr().err and not state.ran


def test_no_fork_once_threads_run(tmp_path):
    """A process that has run a program has executor threads, which a fork would not have: the base
    then runs in its own process instead (engine/diff/base.py)."""
    import threading

    from engine.diff.base import _fork

    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        assert _fork("dev", tmp_path, None, None, tmp_path / "out.json", tmp_path / "log") is None
    finally:
        release.set()
        worker.join()
    assert not (tmp_path / "out.json").exists()
