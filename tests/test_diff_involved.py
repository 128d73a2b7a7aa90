"""`make diff` previews only the stacks a change can touch (engine/diff/involved.py). The rule is
only as good as its premise, checked here: a change to a service that leaves its interface alone
leaves every other team's stack exactly as it was."""

from __future__ import annotations

import subprocess

from conftest import ROOT

from engine.diff.involved import interface, involved_teams
from engine.stacks import run_environment

ORDERS = "stacks/services/checkout/orders.yaml"


def inputs(rec):
    return {r.urn: r.inputs for r in rec}


def test_a_change_inside_a_service_leaves_the_other_teams_stacks_alone(scratch, dev):
    def edit(d):
        d.update(image=d["image"].replace(":1.", ":7."), env={"LOG_LEVEL": "debug"}, replicas={"min": 2, "max": 3})
        d["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}

    before = scratch.read(ORDERS)
    scratch.edit(ORDERS, edit)
    assert interface(before) == interface(scratch.read(ORDERS))
    after = run_environment("dev", scratch.root)
    for stack in ("catalog-dev", "messaging-dev", "web-dev"):
        assert inputs(after.stacks[stack]) == inputs(dev.stacks[stack]), stack
    assert inputs(after.stacks["checkout-dev"]) != inputs(dev.stacks["checkout-dev"])


def test_an_interface_change_reaches_the_neighbours(scratch, dev):
    scratch.edit(ORDERS, lambda d: d.update(port=8081))
    after = run_environment("dev", scratch.root)
    # storefront (web) calls orders: its egress names the new port.
    assert inputs(after.stacks["web-dev"]) != inputs(dev.stacks["web-dev"])


def test_involved_teams(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(repo)], check=True)
    path = repo / ORDERS
    original = path.read_text()
    path.write_text(original.replace("orders:1.", "orders:2.", 1))
    assert involved_teams(repo, "HEAD") == ["checkout"]
    path.write_text(original.replace("port: 8080", "port: 8081", 1))
    # Its callee teams and its caller's: catalog (inventory), messaging (notifications), web (storefront).
    assert involved_teams(repo, "HEAD") == ["catalog", "checkout", "messaging", "web"]
    path.write_text(original)
    (repo / "components" / "platform.py").write_text((repo / "components" / "platform.py").read_text() + "\n")
    assert involved_teams(repo, "HEAD") is None
