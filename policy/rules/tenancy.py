"""Tenancy: a team's objects read only the team's secrets, through the team's own store.

Team namespaces are named after the team, and a team's Vault paths live under `<team>/`; the loader
refuses other paths, and Vault's per-team role refuses them again. This rule judges the rendered
ExternalSecrets, so an object that reached the stack another way is caught by `make check` and the
policy pack too.
"""

from __future__ import annotations

from typing import Iterator

from .base import Rule, Settings, Subject, as_list, as_map, dig


def _team_secrets(s: Subject, settings: Settings) -> Iterator[str]:
    team = s.namespace
    spec = as_map(s.props.get("spec"))
    store = as_map(spec.get("secretStoreRef"))
    if store.get("kind") != "SecretStore":
        yield f"secretStoreRef is a {store.get('kind') or 'ClusterSecretStore'}; use the namespace's own SecretStore, which reads only the team's Vault prefix"
    keys = [dig(d, "remoteRef", "key") for d in as_list(spec.get("data"))]
    keys += [dig(d, "extract", "key") or dig(d, "find", "path") for d in as_list(spec.get("dataFrom"))]
    for key in keys:
        if not isinstance(key, str) or not key.startswith(f"{team}/"):
            yield f"reads Vault path {key!r}, outside the team's prefix {team}/"


RULES = [
    Rule(
        "external-secret-team-prefix",
        "ExternalSecrets read only their team's Vault prefix, through their namespace's own SecretStore.",
        "critical",
        "security",
        "Name Vault paths under <team>/ and reference the namespace's SecretStore `vault` (kind SecretStore).",
        ("external-secrets.io/ExternalSecret",),
        _team_secrets,
    )
]
