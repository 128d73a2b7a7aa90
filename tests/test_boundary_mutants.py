"""Every boundary rule is load-bearing: with the rule removed or loosened, a declaration that only
it refuses gets through (issue 24: hand-made mutants of the boundary code survived the suite).

Each row names a rule (where its callers look it up), a permissive stand-in, and an edit a careless
or hostile team would make. The test checks both halves: the real rule refuses the edit, naming the
file, and the mutant accepts it, so the refusal is the rule's doing and a regression in the rule
fails here. Rules are patched where they are used (modules import them by name)."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from components.spec import SpecError, load

INVENTORY = "stacks/services/catalog/inventory.yaml"
ORDERS = "stacks/services/checkout/orders.yaml"


def none(*_: Any, **__: Any) -> None:
    return None


def nothing(*_: Any, **__: Any) -> list:
    return []


def same(value: Any, *_: Any) -> Any:
    return value


def grant(scratch, team: str, **egress: list[str]) -> None:
    for stack in ("dev", "staging", "prod"):
        scratch.edit(f"stacks/{stack}.yaml", lambda d: d["teams"][team].setdefault("egress", {}).update(egress))


def env(name: str) -> Callable:
    return lambda scratch: scratch.edit(ORDERS, lambda d: d["env"].update({name: "x"}))


ROWS: list[tuple[str, str, Any, Callable, str]] = [
    # (id, target "module:attribute", mutant, edit(scratch), needle the real rule's message holds)
    ("reserved team", "components.spec.tenancy:team_problem", none, lambda s: s.move_service("inventory", "vault"), "reserved namespace"),
    (
        "vault prefix",
        "components.spec.ownership:vault_path_problem",
        none,
        lambda s: s.edit(ORDERS, lambda d: d["secrets"][0].update(vaultPath="web/storefront/db")),
        "outside what team 'checkout' may read in Vault",
    ),
    (
        "host under domains",
        "components.spec.tenancy:check_host",
        same,
        lambda s: s.edit(INVENTORY, lambda d: d.update(expose={"host": "login.bank.io"})),
        "not under a domain",
    ),
    (
        "one service per host",
        "components.spec.tenancy:host_claims",
        nothing,
        lambda s: s.edit(INVENTORY, lambda d: d.update(expose={"host": "shop.acme-shop.com"}, envs={"dev": {"expose": {"host": "shop.dev.acme-shop.com"}}})),
        "already routed",
    ),
    (
        "hosts across stacks",
        "components.spec.hosts:cross_stack_problems",
        nothing,
        lambda s: s.edit(INVENTORY, lambda d: d.setdefault("envs", {}).setdefault("prod", {}).update(expose={"host": "heartbeat.acme-shop.com"})),
        "host of the platform",
    ),
    (
        "platform networks",
        "components.spec.service:egress_problems",
        nothing,
        lambda s: (s.edit(INVENTORY, lambda d: d.update(egress=[{"cidr": "10.20.8.0/24", "port": 5432}])), grant(s, "catalog", networks=["10.20.8.0/24"])),
        "which the platform owns",
    ),
    (
        "team egress grants",
        "components.spec.service:grant_problems",
        nothing,
        lambda s: s.edit(INVENTORY, lambda d: d.update(egress=[{"host": "api.stripe.com", "port": 443}])),
        "not granted to team 'catalog'",
    ),
    (
        "egress width cap",
        "components.spec.egress:MAX_PREFIX_WIDTH",
        8,
        lambda s: (s.edit(INVENTORY, lambda d: d.update(egress=[{"cidr": "100.64.0.0/12", "port": 5432}])), grant(s, "catalog", networks=["100.64.0.0/12"])),
        "wider than /16",
    ),
    (
        "egress entry cap",
        "components.spec.egress:MAX_ENTRIES",
        100,
        lambda s: (
            s.edit(INVENTORY, lambda d: d.update(egress=[{"cidr": f"10.60.{i}.0/24", "port": 5432} for i in range(21)])),
            grant(s, "catalog", networks=["10.60.0.0/16"]),
        ),
        "over the 20",
    ),
    ("one network owner", "components.spec.loader:shared_network_problems", nothing, lambda s: grant(s, "catalog", networks=["10.40.0.0/24"]), "one owner"),
    ("object names", "components.spec.names:TEAM_OBJECTS", (), lambda s: s.edit(ORDERS, lambda d: d.update(name="platform-egress")), "reserved"),
    ("env prefixes", "components.spec.limits:PLATFORM_ENV_PREFIXES", ("NONE_",), env("VAULT_ADDR"), "prefix the platform owns"),
    ("env length", "components.spec.limits:ENV_NAME_MAX", 10_000, env("A" * 300), "longer than 253"),
    (
        "node fit",
        "components.spec.capacity:fit_problems",
        nothing,
        lambda s: s.edit(ORDERS, lambda d: d.update(resources={"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "900Gi"}})),
        "largest node",
    ),
    (
        "receiver urls",
        "components.spec.alerting:webhook_url_problem",
        none,
        lambda s: s.edit("stacks/dev.yaml", lambda d: d["alerting"]["receivers"]["heartbeat"]["webhook"].update(url="https://10.0.0.9/hook")),
        "not a public host",
    ),
    (
        "egress host names",
        "components.spec.egress:INTERNAL_SUFFIXES",
        ("never.example",),
        lambda s: (
            s.edit(INVENTORY, lambda d: d.update(egress=[{"host": "vault.platform.internal", "port": 443}])),
            grant(s, "catalog", hosts=["vault.platform.internal"]),
        ),
        "external DNS name",
    ),
]


@pytest.mark.parametrize("target, mutant, edit, needle", [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_each_boundary_rule_is_what_refuses(scratch, monkeypatch, target, mutant, edit, needle):
    edit(scratch)
    with pytest.raises(SpecError) as caught:
        load("dev", scratch.root)
    assert needle in str(caught.value)
    module, attribute = target.split(":")
    monkeypatch.setattr(f"{module}.{attribute}", mutant)
    try:
        load("dev", scratch.root)
    except SpecError as err:
        # Other rules may still object to the edit, but never this one.
        assert needle not in str(err), f"{target} removed or loosened, yet its refusal remains"
