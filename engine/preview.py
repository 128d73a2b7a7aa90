"""`make preview STACK=<stack>`: run the program offline and write build/<stack>/."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from components.spec import SpecError
from policy.evaluate import evaluate_recording

from . import render
from .project import PROJECT_ROOT
from .runtime import ProgramError, rejected
from .platform_state import store_of
from .stacks import State, load_and_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make preview", description=__doc__)
    parser.add_argument("stack", help="stack name (stacks/<stack>.yaml)")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="project root")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default build/<stack>)")
    args = parser.parse_args(argv)
    out = args.out or args.root / "build" / args.stack
    try:
        # Loaded here as well as in the program: the summary describes the declared services.
        # It runs the platform stack, and keeps its state for `make diff` to serve (engine/platform_state.py).
        decl, recording = load_and_run(args.stack, args.root, state=State(store_of(args.root), serve=False))
    except (SpecError, ProgramError) as err:
        return rejected(err)
    # The policy pack's rules, offline: the same verdict `pulumi preview --policy-pack policy` gives.
    report = evaluate_recording(recording, decl.spec)
    with render.replacing(out) as staging:
        render.write(recording, decl, staging)
        report.write(staging / "policy.json")
    kinds = Counter(r.kind for r in recording.kubernetes_objects())
    print(f"stack {args.stack}: {len(recording)} resources, {sum(kinds.values())} Kubernetes objects, {len(decl.services)} services")
    print(f"  wrote {out / 'resources.json'}, {out / 'manifests'}/, {out / 'summary.md'}, {out / 'policy.json'}")
    print(report.text())
    return 1 if report.blocking else 0


if __name__ == "__main__":
    sys.exit(main())
