"""Credentials in plain declarations, found by detect-secrets' detectors (AWS keys, tokens of the
common providers, private keys, basic-auth URLs, high-entropy strings, secret-looking keywords).

Only the detector names ever leave this module: a caller reports which kind of credential a key
holds, never the value, so a refused declaration does not leak the secret into an error, a log,
summary.md or diff.md.
"""

from __future__ import annotations

import functools
from typing import Any

# The detectors read a line of a file; a YAML line is what a declaration is.
SCANNED_AS = "declaration.yaml"


@functools.lru_cache(maxsize=1)
def _detectors() -> tuple[Any, ...]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.settings import default_settings

    with default_settings():
        plugins: list[Any] = list(get_mapping_from_secret_type_to_class().values())
        return tuple(plugin() for plugin in plugins)


def credential_types(key: str, value: Any) -> list[str]:
    """The detectors that flag `key: value` (empty when it looks like plain configuration)."""
    if not isinstance(value, str) or not value:
        return []
    return list(_credential_types(key, value))


# Declarations repeat the same pairs (LOG_LEVEL: info in every file, every stack): scan each once.
@functools.lru_cache(maxsize=65536)
def _credential_types(key: str, value: str) -> tuple[str, ...]:
    line = f'{key}: "{value}"'
    from detect_secrets.settings import default_settings

    found: set[str] = set()
    with default_settings():
        for detector in _detectors():
            found.update(secret.type for secret in detector.analyze_line(filename=SCANNED_AS, line=line, line_number=1))
    return tuple(sorted(found))


# Detectors that read a message's own words as credentials ("authPassword: declared ...", a CIDR).
NOT_IN_MESSAGES = ("Secret Keyword", "Public IP (ipv4)")


def secret_values(text: str) -> set[str]:
    """The values detect-secrets' detectors find in one line of text (to be masked, never shown)."""
    from detect_secrets.settings import default_settings

    found: set[str] = set()
    with default_settings():
        for detector in _detectors():
            for secret in detector.analyze_line(filename=SCANNED_AS, line=text, line_number=1):
                if secret.secret_value and secret.type not in NOT_IN_MESSAGES:
                    found.add(secret.secret_value)
    return found
