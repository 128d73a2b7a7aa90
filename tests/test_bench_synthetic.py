"""The benchmark's synthetic projects stay valid declarations: `make bench` measures the program on
them, so a synthetic service the loader refuses (a queue its team does not own, say) would make the
benchmark measure a refusal, or nothing. Not timed: speed is bench/'s to report."""

from __future__ import annotations

import subprocess
from collections import Counter

from bench.diff import bump_one_image, make_repository
from bench.synthetic import make_project

from components.spec import load
from components.spec.loader import known_stacks
from engine.diff.involved import involved_teams


def test_every_stack_of_a_synthetic_project_loads(tmp_path):
    project = make_project(tmp_path / "project", 60)
    for stack in known_stacks(project):
        services = load(stack, project).services
        assert len(services) == 60
    features = Counter()
    for svc in load("prod", project).services:
        features.update(
            name for name, used in (("queue", svc.scaling.sqs), ("secret", svc.secrets), ("host", svc.expose), ("caller", svc.allowed_callers)) if used
        )
    # The shapes the benchmark is meant to exercise are all there.
    assert set(features) == {"queue", "secret", "host", "caller"}, features


def test_the_one_service_change_is_one_prod_pin(tmp_path):
    project = make_repository(tmp_path / "repo", 24)
    changed = bump_one_image(project)
    diff = subprocess.run(["git", "-C", str(project), "diff", "--unified=0"], capture_output=True, text=True, check=True).stdout
    removed = [line for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert len(removed) == len(added) == 1 and "image:" in added[0], diff
    before = {s.name: s for s in load("prod", project).services}
    name = changed.rsplit("/", 1)[1].removesuffix(".yaml")
    # Only prod's pin moved: staging still runs what it ran.
    subprocess.run(["git", "-C", str(project), "stash", "--quiet"], check=True)
    base = {s.name: s for s in load("prod", project).services}
    base_staging = {s.name: s.image for s in load("staging", project).services}
    subprocess.run(["git", "-C", str(project), "stash", "pop", "--quiet"], check=True)
    assert before[name].image != base[name].image
    assert {s.name: s.image for s in load("staging", project).services} == base_staging
    commit = subprocess.run(["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert involved_teams(project, commit) == [changed.split("/")[2]]
