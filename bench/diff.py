"""The one-service pull request at scale: `make diff STACK=prod BASE=HEAD` after one image bump.

A synthetic project of N services is made a git repository with the project's code (both sides run
from it, as in a user's clone), one service's image is bumped in the working tree, and the whole
`python -m engine.diff` runs in a fresh process inside it, timed for wall clock and peak memory.
The goal (docs/operations.md#scale): at 500 services, <= 10 s, under 1 GiB, showing 1 changed
resource and 1 changed manifest. Measured twice: `cold`, in a fresh clone, where the platform stack
has no recorded state yet and runs on both sides; `warm`, for another service's bump after that,
where the platform's inputs are the ones it was recorded from and only the team stack runs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable

from bench.synthetic import COPIED, ROOT, make_project

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "commit.gpgsign=false"]


def make_repository(target: Path, n: int) -> Path:
    project = make_project(target, n)
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in tracked:
        top = rel.split("/")[0]
        if top in COPIED or top in ("bench", "tests", "docs") or not (ROOT / rel).is_file():
            continue
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, project / rel)
    subprocess.run([*GIT, "init", "--quiet", str(project)], check=True)
    subprocess.run([*GIT, "-C", str(project), "add", "--all"], check=True)
    subprocess.run([*GIT, "-C", str(project), "commit", "--quiet", "-m", "base"], check=True)
    return project


def bump_one_image(project: Path, which: float = 0.5) -> str:
    """Bump the prod image pin of one service (the middle one by default): the one change a
    promotion to prod makes."""
    files = sorted(project.glob("stacks/services/*/*.yaml"))
    path = files[int(len(files) * which)]
    text = path.read_text()
    # The pin under envs.prod (staging and prod run only pinned images: components/spec/environments.py).
    bumped = re.sub(r"(\n  prod:\n    image: \S+:)(\d+)\.", lambda m: f"{m[1]}{int(m[2]) + 1}.", text, count=1)
    if bumped == text:
        raise RuntimeError(f"{path}: no prod image pin to bump")
    path.write_text(bumped)
    return str(path.relative_to(project))


def bench_diff(n: int, work: Path, measure: Callable[..., dict]) -> dict:
    project = make_repository(work / f"diff-n{n}", n)
    runs = {}
    for run, which in (("cold", 0.5), ("warm", 0.25)):
        subprocess.run(["git", "-C", str(project), "checkout", "--quiet", "--", "."], check=True)
        changed = bump_one_image(project, which)
        out = work / f"diff-n{n}-{run}"
        # Cold happens once per clone; warm is every later diff, best of three on a shared machine.
        timing = measure(["-m", "engine.diff", "prod", "--base", "HEAD", "--out", str(out), "--quiet"], cwd=project, repeat=1 if run == "cold" else 3)
        result = json.loads((out / "diff.json").read_text())
        summary = result["summary"]
        runs[run] = {
            "changed_file": changed,
            "diff": timing,
            "changed_resources": summary["update"] + summary["create"] + summary["delete"] + summary["replace"],
            "changed_manifests": summary["manifests"]["changed"] + summary["manifests"]["added"] + summary["manifests"]["removed"],
            "stacks": (out / "diff.md").read_text().splitlines()[0].removeprefix("Stacks previewed: "),
        }
    return {"services": n, **runs}
