"""The one reader of declaration files: YAML that cannot blow up, hide a key or smuggle bytes in.

Declarations come from pull requests, forks included, so a file is read as hostile input:
- its size is bounded before it is parsed;
- it must be UTF-8 (the error names the byte offset of the first bad byte);
- anchors, aliases and merge keys are refused (aliases are how a few hundred bytes expand to
  gigabytes; a declaration has no need for them), and so is nesting deeper than any model goes;
- a key given twice in one mapping is an error, not a silent override of the first.
Every message quotes at most a short prefix of a value (`short`), so no input is echoed at length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .problems import Problem, SpecError, short

_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The largest sample file is under 4 KiB. 2 MiB bounds parse time and memory, yet is above the
# 1 MiB a ConfigMap may hold, so an oversized `env` is reported as that, at its key.
MAX_FILE_BYTES = 2 * 1024 * 1024
# The models nest at most six levels deep (addons.<name>.values.<chart>.<key>...); Helm values go deeper.
MAX_DEPTH = 32
MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(_BASE):  # type: ignore[misc, valid-type]
    """libyaml's parser where PyYAML has it (several times faster on hundreds of files), with a
    constructor that refuses duplicate and merge keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                raise _Refused(key_node, "merge keys (<<) are not allowed; write the keys out")
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                raise _Refused(key_node, "a mapping key must be a plain value (a string), not a list or mapping") from None
            if duplicate:
                raise _Refused(key_node, f"duplicate key {short(key)}; each key may appear once in a mapping")
        return super().construct_mapping(node, deep=deep)


class _Refused(Exception):
    def __init__(self, node: Any, message: str):
        super().__init__(message)
        self.mark = node.start_mark


def read(path: Path, rel: str) -> dict[str, Any]:
    """The top-level mapping of a declaration file, or SpecError naming `rel` and where it went wrong."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise SpecError([Problem(rel, "", f"cannot be read: {err.strerror}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError([Problem(rel, "", f"larger than {MAX_FILE_BYTES // 1024} KiB, the limit for one declaration file")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError([Problem(rel, f"byte {err.start}", "not UTF-8 text; save the file as UTF-8")]) from None
    if "\x00" in text:
        raise SpecError([Problem(rel, f"byte {data.index(0)}", "NUL byte; a declaration is text")])
    problem = _structure_problem(text)
    if problem:
        raise SpecError([Problem(rel, *problem)])
    try:
        loaded = yaml.load(text, Loader=_Loader)
    except _Refused as err:
        raise SpecError([Problem(rel, _where(err.mark), str(err))]) from None
    except yaml.MarkedYAMLError as err:
        raise SpecError([Problem(rel, _where(err.problem_mark), f"YAML syntax error: {short(err.problem, 80, quote=False)}")]) from None
    except (yaml.YAMLError, ValueError, OverflowError) as err:
        raise SpecError([Problem(rel, "", f"YAML syntax error: {short(str(err), 80, quote=False)}")]) from None
    if not isinstance(loaded, dict):
        raise SpecError([Problem(rel, "", f"expected a mapping of keys at the top level, got {_kind(loaded)}")])
    return loaded


def _structure_problem(text: str) -> tuple[str, str] | None:
    """One pass over the parser's events, before anything is built: anchors, aliases and depth."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_BASE):
            if isinstance(event, yaml.AliasEvent):
                return _where(event.start_mark), "aliases (*name) are not allowed; write the value out"
            if getattr(event, "anchor", None):
                return _where(event.start_mark), "anchors (&name) are not allowed; write the value out"
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    return _where(event.start_mark), f"nested more than {MAX_DEPTH} levels deep"
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.MarkedYAMLError as err:
        return _where(err.problem_mark), f"YAML syntax error: {short(err.problem, 80, quote=False)}"
    except yaml.YAMLError as err:
        return "", f"YAML syntax error: {short(str(err), 80, quote=False)}"
    return None


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def _kind(value: Any) -> str:
    return "nothing (an empty file)" if value is None else type(value).__name__
