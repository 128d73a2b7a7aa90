"""`make check FILES="a.yaml b.yaml"`: the policy rules on plain Kubernetes manifest files.

Any manifests, not only the ones this project renders: multi-document YAML, `kind: List`, every
workload kind. The files are judged together, as one stack would be (a namespace's default-deny
NetworkPolicy may sit in another file). Settings and enforcement are a stack's, read from
`policy/config/<stack>.json` exactly as the Pulumi CLI reads them: `--stack prod` unless told
otherwise, because prod's rules are the ones a change must pass.

Exit status: 0 clean (advisory findings allowed), 1 a mandatory violation, 2 an input that cannot
be judged (unreadable, not YAML, not Kubernetes objects) or an unknown stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml

from policy import settings as policy_settings
from policy.evaluate import evaluate
from policy.rules import Subject
from policy.rules.base import kubernetes_type


class CheckError(Exception):
    """An input file that cannot be judged; the message names the file and what is wrong."""


def read_documents(path: Path) -> list[Any]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise CheckError(f"{path}: cannot read: {getattr(err, 'strerror', None) or err}") from None
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise CheckError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', None) or err}") from None


def objects(path: Path, doc: Any, where: str) -> Iterator[dict[str, Any]]:
    """The Kubernetes objects in one document; a `kind: List` holds them under items."""
    if not isinstance(doc, dict) or not isinstance(doc.get("apiVersion"), str) or not isinstance(doc.get("kind"), str):
        raise CheckError(f"{path}: {where} is not a Kubernetes object (a mapping with apiVersion and kind)")
    if doc["kind"] == "List" or (doc["kind"].endswith("List") and isinstance(doc.get("items"), list)):
        for i, item in enumerate(doc.get("items") or []):
            yield from objects(path, item, f"{where}, item {i + 1}")
    else:
        yield doc


def load_manifests(paths: list[Path]) -> list[Subject]:
    subjects = []
    for path in paths:
        found: list[dict[str, Any]] = []
        for n, doc in enumerate(read_documents(path), start=1):
            if doc is not None:
                found += objects(path, doc, f"document {n}")
        if not found:
            raise CheckError(f"{path}: no Kubernetes objects in the file")
        for i, obj in enumerate(found):
            metadata = obj.get("metadata")
            meta: dict[str, Any] = metadata if isinstance(metadata, dict) else {}
            name = f"{meta['namespace']}/{meta.get('name', '?')}" if meta.get("namespace") else meta.get("name", "?")
            subjects.append(Subject(kubernetes_type(obj["apiVersion"], obj["kind"]), f"{path}#{i + 1}", obj, label=f"{path}: {obj['kind']} {name}"))
    return subjects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make check", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="manifest files (YAML, multi-document allowed)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="report format (default text)")
    parser.add_argument("--stack", default="prod", help="whose settings and enforcement to apply (default prod)")
    args = parser.parse_args(argv)
    try:
        subjects = load_manifests(args.files)
        policy = policy_settings.for_stack(args.stack)
    except (CheckError, FileNotFoundError) as err:
        print(f"make check: {err}", file=sys.stderr)
        return 2
    report = evaluate(subjects, policy)
    if args.format == "json":
        print(json.dumps({"stack": args.stack, "files": [str(p) for p in args.files], **report.to_json()}, indent=2))
    else:
        print(report.text())
    return 1 if report.blocking else 0


if __name__ == "__main__":
    sys.exit(main())
