"""Alertmanager: routing compiled from the stack's `alerting` and `teams`, checked with amtool.

The configuration is the chart's default `alertmanager.config` with the program's values merged
over it, exactly what Helm renders into the Alertmanager's configuration Secret.
"""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import ROOT, recorded
from monitoring import RELEASE, config_file, rendered, routes_to, values
from tools import run

from components.monitoring import alertmanager
from components.spec import SpecError, load
from components.versions import KUBE_PROMETHEUS_STACK
from engine import chart_values

STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="session")
def amconfig(tmp_path_factory):
    return lambda stack: config_file(recorded(stack), tmp_path_factory.getbasetemp())


def test_amtool_accepts_the_rendered_configuration(stack, amconfig):
    proc = run("amtool", "check-config", amconfig(stack.stack))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_amtool_refuses_a_broken_configuration(tmp_path):
    # The check is real: a route to an undeclared receiver fails it.
    broken = rendered(recorded("dev"))
    broken["route"]["routes"][0]["receiver"] = "nobody"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    assert run("amtool", "check-config", path).returncode != 0


TEAM_CASES = [(stack, team) for stack in STACKS for team in load(stack, ROOT).spec.teams]


@pytest.mark.parametrize("stack, team", TEAM_CASES)
def test_each_teams_critical_alerts_page_that_team(stack, team, amconfig):
    alerts = load(stack, ROOT).spec.teams[team].alerts
    # As a service alert fires (team and service labels) and as a chart alert about the team's namespace does.
    assert routes_to(amconfig(stack), alertname="ServiceErrorBudgetFastBurn", severity="critical", team=team, namespace=team, service="svc") == alerts.critical
    assert routes_to(amconfig(stack), alertname="ServiceErrorBudgetSlowBurn", severity="warning", team=team, namespace=team, service="svc") == alerts.warning
    if team != load(stack, ROOT).spec.alerting.platform_team:
        # As the chart emits it: kubernetes-mixin's KubePodCrashLooping is a warning, so it reaches the team's warning receiver.
        assert routes_to(amconfig(stack), alertname="KubePodCrashLooping", severity="warning", namespace=team, pod="p") == alerts.warning
        assert routes_to(amconfig(stack), alertname="KubeDeploymentReplicasMismatch", severity="warning", namespace=team, deployment="d") == alerts.warning


@pytest.mark.parametrize("stack", STACKS)
def test_platform_alerts_unowned_alerts_and_the_heartbeat(stack, amconfig):
    spec = load(stack, ROOT).spec
    platform = spec.teams[spec.alerting.platform_team].alerts
    assert routes_to(amconfig(stack), alertname="KarpenterInterruptions", severity="warning", team="platform") == platform.warning
    assert routes_to(amconfig(stack), alertname="KubeNodeNotReady", severity="critical", namespace="kube-system") == platform.critical
    assert routes_to(amconfig(stack), alertname="TargetDown", severity="warning", namespace="monitoring") == platform.warning
    assert routes_to(amconfig(stack), alertname="Watchdog", severity="none") == spec.alerting.dead_mans_switch
    assert routes_to(amconfig(stack), alertname="InfoInhibitor", severity="none", namespace="web") == "null"


def test_grouping_and_inhibition(stack):
    config = rendered(stack)
    assert config["route"]["group_by"] == ["alertname", "namespace", "service"]
    same_service = [r for r in config["inhibit_rules"] if r["equal"] == ["namespace", "service"]]
    assert same_service == [
        {"source_matchers": ['severity="critical"', 'service=~".+"'], "target_matchers": ['severity=~"warning|info"'], "equal": ["namespace", "service"]}
    ]


def test_no_credential_in_values_or_rendered_output(stack):
    """Receivers read every credential from a file of the mounted Secret; the Secret's data is a Pulumi secret."""
    config = values(stack)["alertmanager"]
    assert config["alertmanagerSpec"]["secrets"] == [alertmanager.SECRET_NAME]
    secret = stack.manifest("Secret", alertmanager.SECRET_NAME, "monitoring")
    spec = load(stack.stack, ROOT).spec
    keys = alertmanager.credentials(spec.alerting)
    # Masked per key: the keys show, every value is a Pulumi secret.
    assert secret["stringData"] == dict.fromkeys(keys, "[secret]")
    assert keys and len(keys) == len({s.config for r in spec.alerting.receivers.values() for s in r.secrets()})
    text = json.dumps(config["config"])
    for key in keys:
        assert text.count(f'"{alertmanager.SECRET_DIR}/{key}"') == 1
    for r in config["config"]["receivers"]:
        for kind, entries in r.items():
            for entry in entries if isinstance(entries, list) else []:
                assert not {"routing_key", "service_key", "api_url", "auth_password", "auth_secret"} & set(entry), (r["name"], kind)
                assert "credentials" not in json.dumps(entry.get("http_config", {})).replace("credentials_file", "")
    # The engine's stand-in values for secret config never reach a recorded input.
    assert "offline-secret" not in json.dumps([r.inputs for r in stack.resources])


def test_the_secret_is_in_place_before_the_release(stack):
    [release] = [r for r in stack.of_type(RELEASE) if r.inputs["name"] == "kube-prometheus-stack"]
    secret = stack.named("prometheus-alertmanager-receivers")
    assert secret.urn in release.dependencies


# -- refusals -------------------------------------------------------------------------------------
def refused(scratch, edit, match):
    scratch.edit("stacks/dev.yaml", edit)
    with pytest.raises(SpecError, match=match):
        load("dev", scratch.root)


def test_a_plaintext_credential_is_refused(scratch):
    refused(
        scratch,
        lambda d: d["alerting"]["receivers"]["web-pager"]["pagerduty"].update(routingKey="R0UT1NGKEY"),
        r"stacks/dev.yaml: alerting.receivers.web-pager.pagerduty.routingKey: Input should be a valid dictionary",
    )


def test_a_webhook_url_with_a_token_is_refused(scratch):
    refused(
        scratch,
        lambda d: d["alerting"]["receivers"]["heartbeat"]["webhook"].update(url="https://h.example.com/ping?token=abc"),
        r"alerting.receivers.heartbeat.webhook: .*carries credentials",
    )


def test_a_team_route_to_an_undeclared_receiver_is_refused(scratch):
    refused(scratch, lambda d: d["teams"]["web"]["alerts"].update(critical="web-phone"), r"teams.web.alerts.critical: 'web-phone' is not a receiver")


def test_a_team_without_routes_is_refused(scratch):
    refused(scratch, lambda d: d["teams"]["web"].pop("alerts"), r"teams.web.alerts: required when the stack has alerting")


def test_prometheus_without_alerting_is_refused(scratch):
    refused(scratch, lambda d: d.pop("alerting"), r"alerting: required with the prometheus addon")


def test_the_dead_mans_switch_and_platform_team_must_exist(scratch):
    refused(scratch, lambda d: d["alerting"].update(deadMansSwitch="nowhere"), r"deadMansSwitch: 'nowhere' is not a declared receiver")


def test_the_platform_team_must_be_declared(scratch):
    refused(scratch, lambda d: d["alerting"].update(platformTeam="sre"), r"alerting.platformTeam: 'sre' is not under teams")


def test_a_receiver_declares_exactly_one_kind(scratch):
    refused(
        scratch,
        lambda d: d["alerting"]["receivers"]["web-pager"].update(email={"to": "a@b.co", "sender": "c@d.co", "smarthost": "smtp.x.io:587"}),
        r"alerting.receivers.web-pager: .*exactly one of pagerduty, slack, webhook, email",
    )


def test_a_budget_is_all_or_nothing(scratch):
    refused(scratch, lambda d: d["teams"]["web"].pop("pods"), r"teams.web: .*set all three or none")


# -- the tools are never skipped silently -----------------------------------------------------------
def test_a_missing_tool_skips_locally_and_fails_under_require_tools(monkeypatch, tmp_path):
    import build_tools
    import tools

    monkeypatch.setattr(build_tools, "CACHE", tmp_path / "none")
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    monkeypatch.delenv("PLATFORM_REQUIRE_TOOLS", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"amtool v0\.\d+\.\d+ is not built \(run `make tools`\)"):
        tools.require("amtool")
    monkeypatch.setenv("PLATFORM_REQUIRE_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="PLATFORM_REQUIRE_TOOLS=1 forbids skipping"):
        tools.require("promtool")


def test_a_tool_of_another_version_is_not_used(monkeypatch, tmp_path):
    """Debian's promtool (2.42) on PATH is not production's Prometheus 3: skipped locally, failed in CI."""
    import build_tools
    import tools

    fake = tmp_path / "promtool"
    fake.write_text("#!/bin/sh\necho 'promtool, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5)'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(build_tools, "CACHE", tmp_path / "none")
    monkeypatch.setattr(tools.shutil, "which", lambda name: str(fake))
    monkeypatch.delenv("PLATFORM_REQUIRE_TOOLS", raising=False)
    assert build_tools.TOOLS["promtool"].version.startswith("v3.")
    with pytest.raises(pytest.skip.Exception, match=r"promtool on PATH is v2\.42\.0, production runs v3\."):
        tools.require("promtool")


def test_the_tools_are_built_at_the_charts_versions():
    import build_tools

    defaults = chart_values.defaults(KUBE_PROMETHEUS_STACK)
    promtool, amtool = build_tools.TOOLS["promtool"], build_tools.TOOLS["amtool"]
    assert defaults["prometheus"]["prometheusSpec"]["image"]["tag"].startswith(promtool.version)
    assert defaults["alertmanager"]["alertmanagerSpec"]["image"]["tag"].startswith(amtool.version)
    major, minor, patch = promtool.version[1:].split(".")
    assert promtool.module_version == f"v0.{int(major) * 100 + int(minor)}.{patch}" and amtool.module_version == amtool.version
    assert promtool.binary.parent.name == f"promtool-{promtool.version}" and ".tools/" in (ROOT / ".gitignore").read_text()


def test_message_templates_reach_alertmanager_verbatim(stack):
    # The Slack title and text are Alertmanager templates: Helm must not expand them (tplConfig off).
    assert chart_values.defaults(KUBE_PROMETHEUS_STACK)["alertmanager"]["tplConfig"] is False
    assert "tplConfig" not in values(stack)["alertmanager"]
    slack = [c for r in rendered(stack)["receivers"] for c in r.get("slack_configs", [])]
    assert slack and all("{{ .CommonLabels.alertname }}" in c["title"] for c in slack)
