"""Credentials in plain declarations, found by detect-secrets' detectors (AWS keys, tokens of the
common providers, private keys, basic-auth URLs, high-entropy strings, secret-looking keywords).

Only the detector names ever leave this module: a caller reports which kind of credential a key
holds, never the value, so a refused declaration does not leak the secret into an error, a log,
summary.md or diff.md.
"""

from __future__ import annotations

import functools
import re
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
    """The detectors that flag `key: value` (empty when it looks like plain configuration). A value
    of several lines (a PEM block, a dashboard's JSON, a config file) is scanned as detect-secrets
    scans a file, line by line, its first line beside its key; and a keyword's line with the next
    one that is not blank, for a keyword whose value is on a line of its own (`password:` then the
    password)."""
    if not isinstance(value, str) or not value:
        return []
    first, *rest = value.splitlines() or [""]
    units = [f'{key}: "{first}"', *rest]
    # A keyword's line with the next line that is not blank: only the keyword detector reads
    # across lines, and only from a line that holds one of its keywords (the key's own included).
    plain = [f"{key}: {first}", *rest]
    for i, line in enumerate(plain):
        following = next((later for later in plain[i + 1 :] if later.strip()), None) if _keyword().search(line) else None
        if following is not None:
            units.append(f"{line}\n{following}")
    units = list(dict.fromkeys(units))
    known = {unit: _SCANNED[unit] for unit in units if unit in _SCANNED}
    missing = [unit for unit in units if unit not in known]
    if missing:
        from detect_secrets.settings import default_settings

        # Entering the settings resets every detector's caches: once per value, not once per line.
        with default_settings():
            for unit in missing:
                known[unit] = tuple(sorted({secret.type for secret in _found(unit)}))
        if len(_SCANNED) + len(missing) > MAX_SCANNED:
            _SCANNED.clear()
        _SCANNED.update((unit, known[unit]) for unit in missing)
    return sorted({kind for unit in units for kind in known[unit]})


@functools.lru_cache(maxsize=1)
def _keyword() -> re.Pattern[str]:
    from detect_secrets.plugins.keyword import DENYLIST_REGEX

    return re.compile(DENYLIST_REGEX, re.IGNORECASE)


# Declarations and rendered objects repeat the same lines (LOG_LEVEL: info in every file and stack,
# the same dashboard template for every service): each is scanned once.
_SCANNED: dict[str, tuple[str, ...]] = {}
MAX_SCANNED = 65536


# Detectors that read a message's own words as credentials ("authPassword: declared ...", a CIDR).
NOT_IN_MESSAGES = ("Secret Keyword", "Public IP (ipv4)")


def secret_values(text: str) -> set[str]:
    """The values detect-secrets' detectors find in one line of text (to be masked, never shown)."""
    from detect_secrets.settings import default_settings

    with default_settings():
        return {secret.secret_value for secret in _found(text) if secret.secret_value and secret.type not in NOT_IN_MESSAGES}


def _found(line: str) -> list[Any]:
    """What every detector finds in one line (inside detect-secrets' default settings)."""
    return [secret for detector in _detectors() for secret in detector.analyze_line(filename=SCANNED_AS, line=line, line_number=1)]
