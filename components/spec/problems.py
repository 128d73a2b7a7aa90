"""How a declaration mistake is reported: `file: key.path: what is wrong (what is allowed)`, one line each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Iterable, Optional, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from . import secrets_scan
from pydantic_core import ErrorDetails

# No message quotes more of a value than this: a hostile file must not be echoed back at length.
QUOTE_CHARS = 100
# A last bound on one reported line (allowed-key lists are the longest legitimate messages).
MAX_LINE_CHARS = 1000


def short(value: Any, limit: int = QUOTE_CHARS, quote: bool = True) -> str:
    """A value as a message quotes it: repr (or str), cut to a prefix, always on one line."""
    text = repr(value) if quote else str(value)
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


# URL user info and query strings, the places a credential hides in an address.
_USERINFO = re.compile(r"(?<=://)[^/@\s'\"]+@")
_QUERY = re.compile(r"(?<=[^\s'\"?])\?[^\s'\"]+")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """`text` with anything that may be a credential replaced: URL user info and query strings, and
    every value detect-secrets' detectors find in it. The last line of defence: a message quoting a
    hostile or careless value never prints the credential it carries (rules also avoid quoting it)."""
    text = _QUERY.sub("?" + REDACTED, _USERINFO.sub(REDACTED + "@", text))
    for value in sorted(secrets_scan.secret_values(text), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


@dataclass(frozen=True)
class Problem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        line = f"{self.file}: {self.path}: {self.message}" if self.path else f"{self.file}: {self.message}"
        line = redact(line.replace("\n", "\\n").replace("\r", "\\r"))
        return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "..."


class SpecError(Exception):
    """One or more declaration mistakes; str() is the complete, user-facing report: one line per
    problem, each problem once, sorted by file (the order within a file is the order found)."""

    def __init__(self, problems: Iterable[Problem]):
        unique = list(dict.fromkeys(problems))
        self.problems = sorted(unique, key=lambda p: p.file)
        super().__init__("\n".join(str(p) for p in self.problems))


def dotted(loc: tuple) -> str:
    """("a", 0, "b") -> "a[0].b"; keys that are not plain names are quoted, shortened."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = str(part)
        if not text or len(text) > QUOTE_CHARS or not text.replace("-", "").replace("_", "").replace(".", "").replace("/", "").isalnum():
            text = short(part)
        out += f".{text}" if out else text
    return out


def validate(
    model: type[BaseModel], data: Any, rel: str, context: Optional[dict] = None, overlay: Optional[tuple[str, dict]] = None, prefix: tuple = ()
) -> Any:
    """The model built from `data`, or SpecError with one problem per pydantic error, each naming
    `rel` and the key path (under `envs.<stack>` when the value came from that overlay)."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as err:
        raise SpecError(_problems(model, err, rel, overlay, prefix)) from None


def _problems(model: type[BaseModel], err: ValidationError, rel: str, overlay: Optional[tuple[str, dict]], prefix: tuple = ()) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        if overlay and loc and _has_path(overlay[1], loc):
            shown = ("envs", overlay[0], *loc)
        else:
            shown = (*prefix, *loc)
        problems.append(Problem(rel, dotted(shown), _message(model, e)))
    return problems


def _message(model: type[BaseModel], e: ErrorDetails) -> str:
    kind, loc = e["type"], tuple(e["loc"])
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return f"unknown key {short(loc[-1])}; allowed keys: {', '.join(allowed)}" if allowed else f"unknown key {short(loc[-1])}"
    if kind == "missing":
        return "required key is missing"
    msg = e["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in ("value_error", "assertion_error"):
        return msg
    return f"{msg} (got {short(e['input'])})"


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Walk the model's annotations along loc to the nested model whose keys are allowed there."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    current = _step(current, None)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted((f.alias or n) for n, f in current.model_fields.items())
    return []


def _step(annotation: Any, part: Any) -> Any:
    """The annotation found at `part` inside `annotation` (part None: unwrap Optional only)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _step(args[0], part)
    if origin in (Union, UnionType):
        inner = [a for a in args if a is not type(None)]
        return _step(inner[0], part) if len(inner) == 1 else None
    if part is None:
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = {(f.alias or n): f for n, f in annotation.model_fields.items()}
        return fields[part].annotation if part in fields else None
    if origin in (list, tuple) and isinstance(part, int):
        return args[0]
    if origin is dict:
        return args[1]
    return None


def _has_path(data: Any, loc: tuple) -> bool:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return False
    return True
