"""Bad input gets one clear message naming the file, the key path and what is allowed,
and nothing is registered. Good input loads with defaults and overlays applied."""

from __future__ import annotations

import pytest
from conftest import ROOT

from components.spec import SpecError, load
from engine.preview import main as preview
from engine.runtime import ProgramError
from engine.stacks import run


def refused(scratch, stack: str = "dev") -> str:
    """Run the real program on the scratch project: it must stop before registering anything."""
    with pytest.raises(ProgramError) as caught:
        run(stack, scratch.root)
    assert caught.value.registered == []
    with pytest.raises(SpecError) as direct:
        load(stack, scratch.root)
    assert str(direct.value) in str(caught.value)
    return str(direct.value)


def test_sample_stacks_load_with_overlays():
    dev, prod = load("dev", ROOT), load("prod", ROOT)
    store_dev = {s.name: s for s in dev.services}["storefront"]
    store_prod = {s.name: s for s in prod.services}["storefront"]
    assert store_dev.expose.host == "shop.dev.acme-shop.com" and store_dev.env["LOG_LEVEL"] == "debug"
    assert store_prod.expose.host == "shop.acme-shop.com" and store_prod.replicas.min == 3
    # Overlay maps merge key by key: prod overrides requests and keeps nothing stale.
    assert store_prod.resources.requests.cpu == "500m" and store_prod.resources.limits.memory == "1Gi"
    # Stack defaults fill what a file leaves out.
    inventory = {s.name: s for s in prod.services}["inventory"]
    assert inventory.replicas.min == prod.spec.service_defaults.replicas.min == 2


def test_yaml_syntax_error(scratch):
    scratch.write("stacks/services/checkout/orders.yaml", "name: orders\nteam: [checkout\nport: 8080\n")
    msg = refused(scratch)
    assert msg.startswith("stacks/services/checkout/orders.yaml: line ")
    assert "YAML syntax error" in msg


def test_unknown_key_lists_allowed_keys(scratch):
    scratch.edit("stacks/services/checkout/orders.yaml", lambda d: d.update(replicaz={"min": 2}))
    msg = refused(scratch)
    assert "stacks/services/checkout/orders.yaml: replicaz: unknown key 'replicaz'; allowed keys:" in msg
    assert "replicas" in msg and "dependsOn" in msg


def test_unknown_nested_key_in_stack(scratch):
    scratch.edit("stacks/dev.yaml", lambda d: d["cluster"]["endpoint"].update(publicAcess=True))
    msg = refused(scratch)
    assert "stacks/dev.yaml: cluster.endpoint.publicAcess: unknown key 'publicAcess'; allowed keys: privateAccessCidrs, publicAccess, publicAccessCidrs" in msg


def test_wrong_type(scratch):
    scratch.edit("stacks/services/checkout/payment.yaml", lambda d: d.update(port="http"))
    msg = refused(scratch)
    assert "stacks/services/checkout/payment.yaml: port: Input should be a valid integer" in msg
    assert "(got 'http')" in msg


def test_wrong_literal_says_what_is_allowed(scratch):
    scratch.edit("stacks/services/checkout/payment.yaml", lambda d: d.update(tier="gold"))
    msg = refused(scratch)
    assert "tier: Input should be 'critical', 'standard' or 'batch'" in msg


def test_error_inside_overlay_names_the_overlay_path(scratch):
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d["envs"]["dev"].update(replicas={"min": "two", "max": 3}))
    msg = refused(scratch)
    assert "stacks/services/web/storefront.yaml: envs.dev.replicas.min: Input should be a valid integer" in msg


def test_unknown_dependency(scratch):
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d.update(dependsOn=["orders", "invntory"]))
    msg = refused(scratch)
    assert (
        "stacks/services/web/storefront.yaml: dependsOn[1]: unknown service 'invntory'; declared services: inventory, notifications, orders, payment, storefront"
        in msg
    )


def test_duplicate_service_name(scratch):
    # Names are unique across teams too: dependsOn and allowedCallers name services.
    image = scratch.read("stacks/services/checkout/orders.yaml")["image"]
    scratch.write("stacks/services/web/orders-v2.yaml", {"name": "orders", "image": image, "port": 8080})
    msg = refused(scratch)
    assert "stacks/services/web/orders-v2.yaml: name: duplicate service 'orders', already declared in stacks/services/checkout/orders.yaml" in msg


def test_unknown_stack_in_envs(scratch):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d["envs"].update(qa={"port": 81}))
    assert "stacks/services/catalog/inventory.yaml: envs.qa: unknown stack 'qa'; declared stacks: dev, prod, staging" in refused(scratch)


def test_latest_image_refused(scratch):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(image="111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/inventory:latest"))
    assert "image: image '111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/inventory:latest' uses the mutable tag latest" in refused(scratch)


def test_prod_needs_two_replicas(scratch):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d["envs"]["prod"].update(replicas={"min": 1, "max": 3}))
    assert "replicas.min: prod needs at least 2 replicas" in refused(scratch, "prod")


def test_several_mistakes_are_reported_together(scratch):
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(port=0))
    scratch.edit("stacks/services/checkout/payment.yaml", lambda d: d.update(tier="gold"))
    msg = refused(scratch)
    assert "inventory.yaml: port:" in msg and "payment.yaml: tier:" in msg


def test_unknown_stack(scratch):
    with pytest.raises(SpecError, match="no declaration for stack 'qa'; declared stacks: dev, prod"):
        load("qa", scratch.root)


def test_offline_preview_exits_2_without_traceback(scratch, capsys):
    scratch.edit("stacks/services/checkout/orders.yaml", lambda d: d.update(replicaz=1))
    assert preview(["dev", "--root", str(scratch.root), "--out", str(scratch.root / "out")]) == 2
    err = capsys.readouterr().err
    assert "stacks/services/checkout/orders.yaml: replicaz: unknown key" in err
    assert "Traceback" not in err
    assert not (scratch.root / "out").exists()
