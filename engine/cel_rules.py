"""The CRDs' CEL rules (`x-kubernetes-validations`), evaluated on an object as the API server
does on create: defaults applied first, each rule run with `self` bound to the value of the node
that declares it, and only where that value is present.

CEL itself comes from the `common-expression-language` package with its extension libraries
(strings, lists, math, sets); the Kubernetes libraries the reference CRDs use (regex `find`,
`findAll`; `isURL`/`url` with their getters) are added here. A rule that cannot be evaluated,
for a missing function or a type error, is reported as an error, never counted as passed.
Transition rules (those reading `oldSelf`) only run on update, so on create they are not run.
"""

from __future__ import annotations

import copy
import functools
import re
import urllib.parse
from typing import Any

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


KUBERNETES_LIBRARIES = {
    "find": _find, "findAll": _find_all,
    "isURL": _is_url, "url": _url, "getScheme": _scheme, "getHost": _host, "getHostname": _hostname,
    "getPort": _port, "getEscapedPath": _escaped_path,
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


def _check(value: Any, rule: dict[str, Any], path: str) -> str | None:
    text = str(rule.get("rule", ""))
    try:
        program = _program(text)
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
    if not isinstance(schema, dict):
        return value
    kind = schema.get("type")
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)  # numbers recorded through Pulumi arrive as floats
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, child in props.items():
            if key not in value and isinstance(child, dict) and "default" in child:
                value[key] = copy.deepcopy(child["default"])
        extra = schema.get("additionalProperties")
        for key in list(value):
            child = props.get(key, extra if isinstance(extra, dict) else None)
            value[key] = _walk(value[key], child, f"{path}.{key}" if path else key, found)
    elif isinstance(value, list):
        value[:] = [_walk(item, schema.get("items"), f"{path}[{i}]", found) for i, item in enumerate(value)]
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
