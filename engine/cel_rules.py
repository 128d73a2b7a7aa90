"""The CRDs' CEL rules (`x-kubernetes-validations`), evaluated on an object as the API server
does on create: defaults applied first, each rule run with `self` bound to the value of the node
that declares it, and only where that value is present.

CEL itself comes from the `common-expression-language` package with its extension libraries
(strings, lists, math, sets); the Kubernetes libraries the reference CRDs use (regex `find`,
`findAll`; `isURL`/`url` with their getters) are added here. A rule that cannot be evaluated,
for a missing function or a type error, is reported as an error, never counted as passed.
Transition rules (those reading `oldSelf`) only run on update, so on create they are not run;
a rule with `optionalOldSelf` does run on create, with no old value, which this evaluator does not
model, so it is reported as not evaluable. Values reach CEL typed as the API server types them:
`format: date-time`/`date` strings as timestamps, `duration` as durations, `byte` as bytes,
`type: number` as doubles; a null value is not validated (and a null in a non-nullable field is
dropped first). Known gap: the package's `size()` counts a string's UTF-8 bytes where CEL counts
code points, which only matters for non-ASCII strings.
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import re
import urllib.parse
from typing import Any, Callable

import cel
from cel import stdlib

VALIDATIONS = "x-kubernetes-validations"


def _find(text: str, pattern: str) -> str:
    found = re.search(pattern, text)
    return found.group(0) if found else ""


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    found = [m.group(0) for m in re.finditer(pattern, text)]
    return found if limit < 0 else found[:limit]


def _is_url(text: str) -> bool:
    """Go's url.ParseRequestURI: an absolute URL, or an absolute path."""
    if text.startswith("/"):
        return True
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:
        return False
    return bool(parts.scheme) and bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", parts.scheme)) and " " not in text


def _url(text: str) -> str:
    if not _is_url(text):
        raise ValueError(f"URL parse error: {text[:60]!r}")
    return text


def _scheme(text: str) -> str:
    return urllib.parse.urlsplit(text).scheme


def _host(text: str) -> str:
    return urllib.parse.urlsplit(text).netloc.rpartition("@")[2]


def _hostname(text: str) -> str:
    return urllib.parse.urlsplit(text).hostname or ""


def _port(text: str) -> str:
    port = urllib.parse.urlsplit(text).port
    return "" if port is None else str(port)


def _escaped_path(text: str) -> str:
    return urllib.parse.urlsplit(text).path


KUBERNETES_LIBRARIES: dict[str, Callable[..., Any]] = {
    "find": _find,
    "findAll": _find_all,
    "isURL": _is_url,
    "url": _url,
    "getScheme": _scheme,
    "getHost": _host,
    "getHostname": _hostname,
    "getPort": _port,
    "getEscapedPath": _escaped_path,
}


@functools.lru_cache(maxsize=None)
def _program(rule: str) -> Any:
    return cel.compile(rule)


def _context(value: Any) -> cel.Context:
    context = cel.Context(variables={"self": value})
    stdlib.add_stdlib_to_context(context)
    for name, fn in KUBERNETES_LIBRARIES.items():
        context.add_function(name, fn)
    return context


GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def _typed(value: Any, schema: dict[str, Any]) -> Any:
    """The CEL value the API server would bind for a JSON value of this schema."""
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)  # numbers recorded through Pulumi arrive as floats
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "string" and isinstance(value, str):
        try:
            if fmt == "date-time":
                return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if fmt == "date":
                return datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.timezone.utc)
            if fmt == "duration" and value and GO_DURATION.sub("", value.lstrip("-")) == "":
                seconds = sum(float(n) * DURATION_UNITS[u] for n, u in GO_DURATION.findall(value))
                return datetime.timedelta(seconds=-seconds if value.startswith("-") else seconds)
            if fmt == "byte":
                return base64.b64decode(value, validate=True)
        except ValueError:
            return value  # the schema check reports the malformed value
    return value


def _check(value: Any, rule: dict[str, Any], path: str) -> str | None:
    text = str(rule.get("rule", ""))
    try:
        program = _program(text)
        if rule.get("optionalOldSelf"):
            return f"{path}: rule `{text}` could not be evaluated: optionalOldSelf rules are not modelled"
        if "oldSelf" in program.variables():
            return None
        result = program.execute(_context(value))
    except KeyError as err:  # the API server's "no such key": the object is rejected
        return f"{path}: rule `{text}` failed: no such key {err}"
    except Exception as err:  # noqa: BLE001 - any failure to evaluate is reported, never passed
        return f"{path}: rule `{text}` could not be evaluated: {type(err).__name__}: {str(err)[:200]}"
    if result is True:
        return None
    return f"{path}: {rule.get('message') or 'failed rule'} (rule `{text}`)"


def _walk(value: Any, schema: Any, path: str, found: list[str]) -> Any:
    if not isinstance(schema, dict) or value is None:
        return value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key in list(value):
            child = props.get(key, extra if isinstance(extra, dict) else None)
            if value[key] is None and not (child or {}).get("nullable"):
                del value[key]  # the API server drops nulls of non-nullable fields before validating
        for key, child in props.items():
            if key not in value and isinstance(child, dict) and "default" in child:
                value[key] = copy.deepcopy(child["default"])
        for key in list(value):
            child = props.get(key, extra if isinstance(extra, dict) else None)
            value[key] = _walk(value[key], child, f"{path}.{key}" if path else key, found)
    elif isinstance(value, list):
        value[:] = [_walk(item, schema.get("items"), f"{path}[{i}]", found) for i, item in enumerate(value)]
    value = _typed(value, schema)
    for rule in schema.get(VALIDATIONS) or ():
        message = _check(value, rule, path or "(object)")
        if message:
            found.append(message)
    return value


def errors(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every CEL rule of the schema the object breaks or that cannot be evaluated on it."""
    found: list[str] = []
    _walk(copy.deepcopy(obj), schema, "", found)
    return found
