"""Who gets paged: Alertmanager receivers and each team's routes, in `stacks/<stack>.yaml`.

Credentials are never written in a declaration: a receiver names the Pulumi secret config key that
holds its routing key, API URL, token or password (`pulumi config set --secret <key>`). Plain text
where a credential belongs is refused by the model (a credential is `{config: <key>}`, not a string).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Optional
from urllib.parse import urlsplit

from pydantic import ValidationInfo, field_validator, model_validator

from .base import Spec, field
from .domains import refuse_placeholder, reserved_domain
from .egress import internal_name
from .secrets_scan import credential_types

# Services whose webhook URLs are themselves the credential (the path holds the token).
TOKEN_URLS = (
    ("hooks.slack.com", "/"),
    ("events.pagerduty.com", "/integration/"),
    ("discord.com", "/api/webhooks/"),
    ("discordapp.com", "/api/webhooks/"),
    ("chat.googleapis.com", "/"),
    ("hooks.zapier.com", "/"),
)

# Alertmanager's receiver for alerts that must go nowhere (the chart's InfoInhibitor).
NULL_RECEIVER = "null"
RECEIVER_NAME = r"^[a-z][a-z0-9-]{0,62}$"


class SecretConfig(Spec):
    """A credential held in the stack's encrypted Pulumi config, never in Git."""

    config: str = field(
        "Name of the Pulumi secret config key in the `platform` namespace (`pulumi config set --secret <key>`).", pattern=r"^[a-z][A-Za-z0-9]{2,62}$"
    )

    @field_validator("config")
    @classmethod
    def _a_name(cls, key: str) -> str:
        # A routing key pasted where its config key's name belongs (32 hex characters fit the name pattern).
        if re.fullmatch(r"[0-9a-f]{16,}", key) or credential_types("config", key):
            raise ValueError(
                "config: this looks like the credential itself (value not shown); store it with `pulumi config set --secret <key>` and name the key here"
            )
        return key


class PagerDuty(Spec):
    routing_key: SecretConfig = field("The PagerDuty Events API v2 integration (routing) key.")


class Slack(Spec):
    api_url: SecretConfig = field("The Slack incoming-webhook URL (it embeds the token, so it is a secret).")
    channel: str = field('Channel the messages are posted to, e.g. "#checkout-alerts".', pattern=r"^[#@][a-z0-9][a-z0-9_.-]{0,79}$")


class Webhook(Spec):
    url: str = field("HTTPS endpoint receiving Alertmanager's JSON; no credentials in it (use bearerToken).")
    bearer_token: Optional[SecretConfig] = field("Token sent as `Authorization: Bearer`, for endpoints that require one.", default=None)

    @field_validator("url")
    @classmethod
    def _real_host(cls, url: str, info: ValidationInfo) -> str:
        return refuse_placeholder(url, info.context, "the alerts (and the dead man's switch's heartbeat) posted there reach nobody")

    @model_validator(mode="after")
    def _check(self) -> "Webhook":
        problem = webhook_url_problem(self.url)
        if problem:
            raise ValueError(problem)
        return self


def webhook_url_problem(url: str) -> Optional[str]:
    """Why `url` cannot be a receiver's plain-text URL, or None. Messages show the host, never the URL:
    a URL that carries a credential must not reach a log by way of its refusal."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        return "url is not a URL (https://<public host>/<path>)"
    if parts.username or parts.password or parts.query or parts.fragment:
        return f"url to {host!r} carries credentials (user info, a query string or a fragment; value not shown); put the token in bearerToken"
    if parts.scheme != "https" or not host:
        return f"url to {host or 'nowhere'!r} must be an https:// URL (alerts carry internal details; plain HTTP exposes them)"
    if not public_host(host):
        return (
            f"url host {host!r} is not a public host name (an IP address, localhost, link-local, private or cluster-internal name); "
            "Alertmanager posts alerts from inside the cluster, where such a name reaches the cluster itself"
        )
    if credential_types("url", url) or any(host == h and parts.path.startswith(p) for h, p in TOKEN_URLS):
        return (
            f"url to {host!r} embeds a credential in its path (value not shown); use the slack or pagerduty receiver, whose "
            "secret comes from Pulumi config, or bearerToken"
        )
    return None


def public_host(host: str) -> bool:
    """A DNS name with a dot, not an IP literal, not a cluster-internal, VPC or special-use name."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return False
    except ValueError:
        pass
    # A real top-level domain last: `0x7f.0.0.1`, `127.1` and the like are addresses in disguise.
    tld = host.rsplit(".", 1)[-1]
    if not re.fullmatch(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}", tld):
        return False
    return "." in host and not internal_name(host) and reserved_domain(host) not in ("localhost", "local", "invalid", "home.arpa")


class Email(Spec):
    to: str = field("Recipient address.", pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
    sender: str = field("From address.", pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
    smarthost: str = field("SMTP relay as host:port (STARTTLS is required).", pattern=r"^[a-z0-9.-]+:[0-9]{2,5}$")
    auth_username: Optional[str] = field("SMTP user; needs authPassword.", default=None)
    auth_password: Optional[SecretConfig] = field("SMTP password; needs authUsername.", default=None)

    @field_validator("to", "sender", "smarthost")
    @classmethod
    def _real_domain(cls, value: str, info: ValidationInfo) -> str:
        return refuse_placeholder(value, info.context, "the alerts e-mailed through it reach nobody")

    @model_validator(mode="after")
    def _check(self) -> "Email":
        host = self.smarthost.rsplit(":", 1)[0]
        if not public_host(host):
            raise ValueError(f"smarthost: {host!r} is not a public host name (not an IP address, localhost or a cluster-internal name)")
        if (self.auth_username is None) != (self.auth_password is None):
            raise ValueError("authUsername and authPassword must be set together")
        return self


class Receiver(Spec):
    pagerduty: Optional[PagerDuty] = field("Page through PagerDuty.", default=None)
    slack: Optional[Slack] = field("Post to a Slack channel.", default=None)
    webhook: Optional[Webhook] = field("POST to a generic webhook (also the usual dead-man's-switch service).", default=None)
    email: Optional[Email] = field("Send e-mail.", default=None)

    @model_validator(mode="after")
    def _check(self) -> "Receiver":
        kinds = [k for k in ("pagerduty", "slack", "webhook", "email") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"declare exactly one of pagerduty, slack, webhook, email (got {kinds or 'none'})")
        return self

    def secrets(self) -> list[SecretConfig]:
        found = [
            self.pagerduty and self.pagerduty.routing_key,
            self.slack and self.slack.api_url,
            self.webhook and self.webhook.bearer_token,
            self.email and self.email.auth_password,
        ]
        return [s for s in found if s]


class TeamAlerts(Spec):
    critical: str = field("Receiver of the team's critical alerts (pages).", pattern=RECEIVER_NAME)
    warning: str = field("Receiver of the team's warning alerts (tickets).", pattern=RECEIVER_NAME)


class AlertingSpec(Spec):
    repository_url: str = field(
        "Web address of this repository's default branch (e.g. https://github.com/acme-shop/platform/blob/main); "
        "runbook links are <repositoryUrl>/docs/runbooks/<alert>.md.",
        pattern=r"^https://[^\s?#]+[^/\s?#]$",
    )
    platform_team: str = field("The team (under `teams:`) that receives the platform's own alerts and everything no other team owns.")
    dead_mans_switch: str = field(
        "Receiver of the always-firing Watchdog heartbeat; the service behind it pages when the heartbeat stops.", pattern=RECEIVER_NAME
    )
    receivers: dict[str, Receiver] = field("Receivers by name; teams and the dead man's switch refer to them.", min_length=1)

    @field_validator("repository_url")
    @classmethod
    def _real_repository(cls, url: str, info: ValidationInfo) -> str:
        if "@" in url.split("/", 3)[2]:
            raise ValueError("repositoryUrl carries user info (a credential; value not shown); runbook links are public addresses")
        return refuse_placeholder(url, info.context, "every alert's runbook link leads nowhere")

    @model_validator(mode="after")
    def _check(self) -> "AlertingSpec":
        for name in self.receivers:
            if not re.match(RECEIVER_NAME, name) or name == NULL_RECEIVER:
                raise ValueError(f"receivers.{name}: receiver names are lowercase DNS-style names, and {NULL_RECEIVER!r} is reserved")
        if self.dead_mans_switch not in self.receivers:
            raise ValueError(f"deadMansSwitch: {self.dead_mans_switch!r} is not a declared receiver; declared: {', '.join(sorted(self.receivers))}")
        keys: dict[str, str] = {}
        for name, receiver in self.receivers.items():
            for secret in receiver.secrets():
                if keys.setdefault(secret.config, name) != name:
                    raise ValueError(f"receivers.{name}: config key {secret.config!r} is also used by receivers.{keys[secret.config]}; one key per credential")
        return self

    def runbook(self, alert: str) -> str:
        return f"{self.repository_url}/docs/runbooks/{alert}.md"
