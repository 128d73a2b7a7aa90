"""Secrets never leak through declarations: credentials in plain values are refused without ever
being printed back, and config declared secret must be stored encrypted."""

from __future__ import annotations

import pytest
from policy_samples import findings
from test_declarations import refused
from test_tenancy import preview_refuses

from components.spec import load
from components.spec.secrets_scan import credential_types

# Values shaped like real credentials (AWS's documented example key, a GitHub token, a Stripe key, a URL with a password).
LEAKS = {
    "AWS_ACCESS": "AKIAIOSFODNN7EXAMPLE",
    "GH": "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB",
    "BILLING": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "DB": "postgres://app:Hunter2Horse@db.checkout:5432/orders",
}


@pytest.mark.parametrize("key, value", LEAKS.items())
def test_credential_in_env_is_refused_and_never_printed(scratch, capsys, key, value):
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d["env"].update({key: value}))
    msg = refused(scratch)
    assert f"stacks/services/web/storefront.yaml: env.{key}: the value looks like a credential" in msg
    assert value not in msg and value[4:16] not in msg
    err = preview_refuses(scratch, capsys, f"stacks/services/web/storefront.yaml: env.{key}:")
    assert value not in err


def test_credential_in_an_overlay_is_refused_too(scratch):
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d["envs"]["dev"]["env"].update(SENTRY_DSN=LEAKS["DB"]))
    msg = refused(scratch)
    assert "env.SENTRY_DSN: the value looks like a credential" in msg and LEAKS["DB"] not in msg


def test_plain_configuration_passes():
    for key, value in (
        ("PAYMENT_URL", "http://payment.checkout.svc.cluster.local:8080"),
        ("LOG_LEVEL", "debug"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("FEATURE_FLAGS", "checkout-v2,fast-search"),
    ):
        assert credential_types(key, value) == [], key


def test_configmap_data_is_scanned_by_the_policy_rule_without_printing_the_value():
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-config", "namespace": "shop"},
        "data": {"UPSTREAM": "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "MODE": "fast"},
    }
    messages = findings("no-plaintext-secrets", configmap)
    assert messages == ["ConfigMap key UPSTREAM holds what looks like a credential"]
    assert "hooks.slack.com" not in messages[0]
    configmap["data"].pop("UPSTREAM")
    assert findings("no-plaintext-secrets", configmap) == []


def test_secret_config_in_plaintext_is_refused(scratch, capsys):
    scratch.write("Pulumi.dev.yaml", "config:\n  aws:region: eu-west-1\n  platform:grafanaAdminPassword: Tr0ub4dor&3-horse\n")
    msg = refused(scratch)
    assert "Pulumi.dev.yaml: config.platform:grafanaAdminPassword: declared `secret: true` in Pulumi.yaml but stored in plaintext" in msg
    assert "Tr0ub4dor" not in msg
    err = preview_refuses(scratch, capsys, "Pulumi.dev.yaml: config.platform:grafanaAdminPassword:")
    assert "Tr0ub4dor" not in err


def test_secret_config_stored_encrypted_loads(scratch):
    scratch.write("Pulumi.dev.yaml", "config:\n  aws:region: eu-west-1\n  platform:grafanaAdminPassword:\n    secure: AAABAKm0YWJjZGVmZ2hpamtsbW5vcA==\n")
    assert load("dev", scratch.root).services


def test_make_diff_refuses_a_leak_without_printing_it(tmp_path):
    """The PR comment is diff.md: a leaking change stops `make diff` with exit 2, no diff.md, no value."""
    import os
    import shutil
    import subprocess
    import sys

    import yaml
    from conftest import ROOT
    from test_diff import git

    repo = tmp_path / "repo"
    git(tmp_path, "clone", "--quiet", str(ROOT), str(repo))
    for rel in git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard").splitlines():
        if (ROOT / rel).is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, repo / rel)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "base: the working tree under test")
    service = repo / "stacks" / "services" / "web" / "storefront.yaml"
    data = yaml.safe_load(service.read_text())
    data["env"]["STRIPE"] = LEAKS["BILLING"]
    service.write_text(yaml.safe_dump(data, sort_keys=False))

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "engine.diff", "dev", "--base", "HEAD"], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "stacks/services/web/storefront.yaml: env.STRIPE: the value looks like a credential" in proc.stderr
    assert LEAKS["BILLING"] not in proc.stdout + proc.stderr
    assert not (repo / "build" / "dev" / "diff.md").exists()


PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n-----END RSA PRIVATE KEY-----\n"


@pytest.mark.parametrize("line", [0, 2, 5])
def test_a_credential_on_any_line_of_a_long_value_is_found(line):
    """A value of several lines (a dashboard's JSON, a config file) is scanned line by line, as
    detect-secrets scans a file: a credential on its first, a middle or its last line is found."""
    lines = ["{", '  "title": "orders",', '  "refresh": "30s",', '  "panels": [],', '  "tags": ["shop"],', "}"]
    clean = "\n".join(lines)
    assert credential_types("dashboard.json", clean) == []
    lines.insert(line, f'  "aws": "{LEAKS["AWS_ACCESS"]}",')
    assert credential_types("dashboard.json", "\n".join(lines)) == ["AWS Access Key"]
    assert credential_types("KEY", PEM) == ["Private Key"]
    # The same lines again are answered from what was scanned, with the same verdict.
    assert credential_types("other.json", "\n".join(lines)) == ["AWS Access Key"] and credential_types("other.json", clean) == []


@pytest.mark.parametrize(
    "key, value",
    [
        ("app.yaml", "db:\n  password:\n    Xk9f2LmQ7rT4"),
        ("app.yaml", "password:\n  Xk9f2LmQ7rT4"),
        ("app.yaml", "db:\n  password:\n\n    Xk9f2LmQ7rT4"),
        ("cfg", "user=a\npassword=\nXk9f2LmQ7rT4"),
        ("secrets.env", "DB_PASSWORD=\nXk9f2LmQ7rT4"),
        ("app.json", '{"password":\n  "Xk9f2LmQ7rT4"}'),
        ("password", "\nXk9f2LmQ7rT4"),
    ],
)
def test_a_keyword_whose_value_is_on_a_line_of_its_own_is_found(key, value):
    """The keyword on the first line, a later one, beside the key, or a blank line before the value."""
    assert credential_types(key, value) == ["Secret Keyword"]
    assert credential_types(key, value.replace("Xk9f2LmQ7rT4", "")) == []


def test_a_full_scan_cache_starts_over_without_losing_a_verdict(monkeypatch):
    from components.spec import secrets_scan

    monkeypatch.setattr(secrets_scan, "MAX_SCANNED", 3)
    monkeypatch.setattr(secrets_scan, "_SCANNED", {})
    for _ in range(2):
        assert credential_types("C", "x3\ny") == []
        assert credential_types("KEY", PEM) == ["Private Key"]
        assert len(secrets_scan._SCANNED) <= 3 + 5
