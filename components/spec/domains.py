"""Reserved domain names, and the one rule about them: a prod stack never points production at one.

A certificate for `example.com` never issues, mail to `ops@example.com` reaches nobody, a webhook on
`heartbeat.test` never answers: in prod, a reserved name where the platform serves, sends or calls
is a placeholder left in a declaration, and nothing would say so until the day it matters. Dev and
staging may use them (tests and sandboxes do, on purpose).

The reserved names come from two sources:
- IANA's Special-Use Domain Names registry (RFC 6761 `invalid`, `localhost`, `test`; RFC 6762
  `local`; RFC 7686 `onion`; `arpa`, which holds RFC 8375's `home.arpa`), as email-validator
  maintains it (`email_validator.SPECIAL_USE_DOMAIN_NAMES`, its documented list);
- RFC 2606's documentation names, which that list leaves out on purpose (RFC 6761 section 6.5 lets
  applications treat them as ordinary names): the `example` TLD (section 2) and `example.com`,
  `example.net`, `example.org` (section 3).

Each field the rule covers calls `refuse_placeholder` from its validator, with the validation
context's environment (the loader passes it to the stack, its addons' settings and the services).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

from email_validator import SPECIAL_USE_DOMAIN_NAMES

from .problems import short

DOCUMENTATION_DOMAINS = ("example", "example.com", "example.net", "example.org")
# A copy taken at import: the library's list is mutable by design (its callers may drop "test").
RESERVED_DOMAINS = tuple(sorted({*SPECIAL_USE_DOMAIN_NAMES, *DOCUMENTATION_DOMAINS}))
# The environments in which a reserved name is refused.
STRICT_ENVIRONMENTS = ("prod",)


def host_of(value: str) -> str:
    """The DNS name in an address, URL or host:port: `a@b.com` and `git@b.com:org/x.git` -> b.com,
    `https://b.com/x` -> b.com, `smtp.b.com:587` -> smtp.b.com."""
    if "://" in value:
        return (urlsplit(value).hostname or "").rstrip(".")
    rest = value.rsplit("@", 1)[-1]
    return rest.split("/", 1)[0].split(":", 1)[0].lower().rstrip(".")


def reserved_domain(name: str) -> Optional[str]:
    """The reserved domain `name` is, or lies under, or None."""
    name = name.lower().rstrip(".")
    found = [d for d in RESERVED_DOMAINS if name == d or name.endswith("." + d)]
    return max(found, key=len) if found else None


def placeholder_problem(value: str, consequence: str) -> Optional[str]:
    """Why `value` (an address, URL, host or domain) cannot be used in prod, or None."""
    domain = reserved_domain(host_of(value))
    if domain is None:
        return None
    return (
        f"{short(value)} is a placeholder: {domain} is reserved for documentation or special use (RFC 2606, RFC 6761), so {consequence}; "
        f"prod needs a real, registered domain here (none under {', '.join(RESERVED_DOMAINS)})"
    )


def refuse_placeholder(value: Any, context: Optional[Mapping[str, Any]], consequence: str) -> Any:
    """A validator body: `value` unchanged, or ValueError when the environment is prod and the value
    names a reserved domain. `consequence` says what would silently break."""
    if isinstance(value, str) and (context or {}).get("environment") in STRICT_ENVIRONMENTS:
        problem = placeholder_problem(value, consequence)
        if problem:
            raise ValueError(problem)
    return value
