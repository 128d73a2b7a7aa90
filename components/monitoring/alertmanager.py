"""The Alertmanager configuration, compiled from the stack's `alerting` and `teams`.

It goes to kube-prometheus-stack as `alertmanager.config` (the chart writes it into the
Alertmanager's configuration Secret) and holds no credential: every receiver reads its routing
key, API URL, token or password from a file (`*_file`), mounted from the Secret
`alertmanager-receivers` that Pulumi fills from the stack's secret config
(`alertmanager.alertmanagerSpec.secrets`). The values, the state and the rendered output only ever
hold file paths.

Routing: alerts group by alertname, namespace and service. A `team` label routes to that team;
otherwise the alert's namespace does (a team's services run in the namespace named after it);
whatever is left goes to the platform team. Critical goes to the team's pager, the rest to its
ticket receiver. The chart's always-firing Watchdog goes to the dead man's switch, often, so its
silence is noticed.
"""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import urlsplit

from components.spec.alerting import NULL_RECEIVER, AlertingSpec, Receiver, SecretConfig
from components.spec.stack import StackSpec

SECRET_NAME = "alertmanager-receivers"
# Where the operator mounts each Secret listed in alertmanagerSpec.secrets.
SECRET_DIR = f"/etc/alertmanager/secrets/{SECRET_NAME}"
GROUP_BY = ["alertname", "namespace", "service"]
HEARTBEAT = "Watchdog"


def secret_file(secret: SecretConfig) -> str:
    return f"{SECRET_DIR}/{secret.config}"


def credentials(alerting: AlertingSpec) -> list[str]:
    """The secret config keys the receivers read, each a key of the Secret."""
    return sorted({s.config for r in alerting.receivers.values() for s in r.secrets()})


def receiver_ports(alerting: Optional[AlertingSpec]) -> tuple[int, ...]:
    """The ports Alertmanager's notifications leave on: HTTPS (PagerDuty, Slack), each webhook's and each SMTP relay's."""
    ports = {443}
    for r in alerting.receivers.values() if alerting else ():
        if r.webhook:
            ports.add(urlsplit(r.webhook.url).port or 443)
        if r.email:
            ports.add(int(r.email.smarthost.rsplit(":", 1)[1]))
    return tuple(sorted(ports))


def receiver(name: str, r: Receiver) -> dict[str, Any]:
    if r.pagerduty:
        return {"name": name, "pagerduty_configs": [{"routing_key_file": secret_file(r.pagerduty.routing_key), "send_resolved": True}]}
    if r.slack:
        return {
            "name": name,
            "slack_configs": [
                {
                    "api_url_file": secret_file(r.slack.api_url),
                    "channel": r.slack.channel,
                    "send_resolved": True,
                    "title": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} {{ .CommonLabels.namespace }}/{{ .CommonLabels.service }}",
                    "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ .Annotations.runbook_url }}\n{{ end }}",
                }
            ],
        }
    if r.webhook:
        hook: dict[str, Any] = {"url": r.webhook.url, "send_resolved": True}
        if r.webhook.bearer_token:
            hook["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": secret_file(r.webhook.bearer_token)}}
        return {"name": name, "webhook_configs": [hook]}
    mail = r.email
    assert mail is not None  # a receiver declares exactly one kind (Receiver._check)
    email: dict[str, Any] = {"to": mail.to, "from": mail.sender, "smarthost": mail.smarthost, "require_tls": True, "send_resolved": True}
    if mail.auth_username:
        assert mail.auth_password is not None  # Email._check: a username comes with its password
        email.update(auth_username=mail.auth_username, auth_password_file=secret_file(mail.auth_password))
    return {"name": name, "email_configs": [email]}


def by_severity(critical: str, warning: str, matchers: list[str]) -> dict[str, Any]:
    return {"matchers": matchers, "receiver": warning, "routes": [{"matchers": ['severity="critical"'], "receiver": critical}]}


def config(spec: StackSpec) -> dict[str, Any]:
    alerting = spec.alerting
    assert alerting is not None  # the stack model requires it with the prometheus addon
    # With alerting, the stack model requires every team's `alerts` (StackSpec._alerting).
    teams = {name: t.alerts for name, t in sorted(spec.teams.items()) if t.alerts is not None}
    platform = teams[alerting.platform_team]
    routes: list[dict[str, Any]] = [
        # The heartbeat is resent every minute: the dead man's switch pages when it stops arriving.
        {"matchers": [f'alertname="{HEARTBEAT}"'], "receiver": alerting.dead_mans_switch, "group_wait": "0s", "group_interval": "1m", "repeat_interval": "1m"},
        # The chart's InfoInhibitor only exists to inhibit info alerts; it notifies no one.
        {"matchers": ['alertname="InfoInhibitor"'], "receiver": NULL_RECEIVER},
    ]
    routes += [by_severity(t.critical, t.warning, [f'team="{name}"']) for name, t in teams.items()]
    routes += [by_severity(t.critical, t.warning, [f'namespace="{name}"']) for name, t in teams.items() if name != alerting.platform_team]
    return {
        "route": {
            "receiver": platform.warning,
            "group_by": GROUP_BY,
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [*routes, {"matchers": ['severity="critical"'], "receiver": platform.critical}],
        },
        "inhibit_rules": [
            # A critical alert of a service silences its warnings (a fast burn and the slow one, errors and latency).
            {"source_matchers": ['severity="critical"', 'service=~".+"'], "target_matchers": ['severity=~"warning|info"'], "equal": ["namespace", "service"]},
            # The chart's own: the same alert at a lower severity, and its info alerts behind InfoInhibitor.
            {"source_matchers": ['severity="critical"'], "target_matchers": ['severity=~"warning|info"'], "equal": ["namespace", "alertname"]},
            {"source_matchers": ['severity="warning"'], "target_matchers": ['severity="info"'], "equal": ["namespace", "alertname"]},
            {"source_matchers": ['alertname="InfoInhibitor"'], "target_matchers": ['severity="info"'], "equal": ["namespace"]},
        ],
        "receivers": [{"name": NULL_RECEIVER}, *(receiver(name, r) for name, r in sorted(alerting.receivers.items()))],
    }
