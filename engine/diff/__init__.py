"""`make diff STACK=<stack> BASE=<git ref>`: the offline desired-state diff of a change.

Runs the embedded engine twice: on BASE, checked out in a temporary `git worktree` and run there by
*its own* code (`python -m engine.record` in a subprocess whose working directory is the worktree,
on this project's interpreter; a fork of this process when the two checkouts differ only in service
files, `base.py`), and on the working tree (in-process). Then it compares the two by URN, the way
`pulumi preview --diff` does:

- resources to create, update, replace and delete, with property-level changes
  (`spec.template.spec.containers[0].image: "shop/orders:1.12.0" -> "shop/orders:1.13.0"`);
- a replacement warning wherever a changed property forces the provider to replace the resource
  (`REPLACE_ON_CHANGE` and `KUBERNETES_REPLACE_ON_CHANGE` in `replacement.py`);
- the rendered Kubernetes manifests that change (by `build/<stack>/manifests/` path);
- policy violations the change introduces or fixes;
- the services the change touches, as a Mermaid graph with their `dependsOn` edges;
- stack outputs that change.

It writes `build/<stack>/diff.md` (Markdown for a PR comment) and `build/<stack>/diff.json`, prints
the Markdown, and exits 0; 1 when the change introduces a mandatory policy violation; 2 when it
cannot diff (an unknown ref, a base that predates `engine.record`, declarations or a program that
the engine rejects). Secrets stay "[secret]": the engine masks them before anything is recorded, so
a changed secret value is invisible here (the real `pulumi preview` shows it as changed).

The comparison itself is `compare(base, head)` over two `engine.record` documents, so tests (and
other tools) can diff any two runs without git.

One module per concern: `paths` (property paths and leaf-level changes), `replacement` (what forces
a replacement), `compare` (the comparison by URN), `report` (Markdown and Mermaid), `base` (the
base's worktree and recording) and `cli` (the working tree's recording, the files written). `python -m engine.diff` runs `cli.main`.
"""

from __future__ import annotations

from .base import DiffError, record_base
from .cli import head_label, main, resolve
from .compare import EXIT_BLOCKING, EXIT_ERROR, EXIT_OK, OPS, SYMBOL, compare, compare_violations, exit_status, services_of
from .paths import change_text, parse_pattern, path_text, property_changes, value_text
from .replacement import KUBERNETES_REPLACE_ON_CHANGE, REPLACE_ON_CHANGE, kubernetes_api, replace_patterns, replacement_reasons
from .report import MAX_MARKDOWN, MAX_VALUE, markdown, mermaid

__all__ = [
    "EXIT_BLOCKING",
    "EXIT_ERROR",
    "EXIT_OK",
    "KUBERNETES_REPLACE_ON_CHANGE",
    "MAX_MARKDOWN",
    "MAX_VALUE",
    "OPS",
    "REPLACE_ON_CHANGE",
    "SYMBOL",
    "DiffError",
    "change_text",
    "compare",
    "compare_violations",
    "exit_status",
    "head_label",
    "kubernetes_api",
    "main",
    "markdown",
    "mermaid",
    "parse_pattern",
    "path_text",
    "property_changes",
    "record_base",
    "replace_patterns",
    "replacement_reasons",
    "resolve",
    "services_of",
    "value_text",
]
