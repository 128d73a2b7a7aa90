"""The loader's contract under generated input (Hypothesis): whatever a service or stack file holds,
`load` either returns the declarations or raises SpecError whose every line names a declaration
file, and does so within a time and memory budget; never another exception."""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.spec import Declarations, SpecError, load
from engine.runtime import rejected
from scratch import Scratch

# The team is the folder: a fuzzed file lies in a team folder like any other.
FUZZ_SERVICE = "stacks/services/catalog/fuzz.yaml"
# Generous bounds: a clean load takes milliseconds and a few MB; these catch blow-ups, not drift.
SECONDS = 5.0
PEAK_BYTES = 128 * 2**20
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize=not os.environ.get("FUZZ_EXAMPLES"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

names = st.from_regex(r"[a-z][a-z0-9-]{0,12}[a-z0-9]", fullmatch=True)
env_names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.just("x" * 5000),
    st.sampled_from(["15001", "1.35", "arn:aws:iam::1:role/x", "10.0.0.0/8", "64", "@", "~"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)


@st.composite
def services(draw) -> dict[str, Any]:
    """A service declaration that is valid, or close to it (ports and names may hit real limits)."""
    low = draw(st.integers(1, 3))
    svc: dict[str, Any] = {
        "name": draw(names),
        "image": f"111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/fuzz:{draw(st.from_regex(r'[0-9]{1,2}[.][0-9]', fullmatch=True))}",
        "port": draw(st.integers(1, 65535)),
        "replicas": {"min": low, "max": low + draw(st.integers(0, 2))},
        "env": draw(st.dictionaries(env_names, st.text(max_size=20), max_size=3)),
    }
    if draw(st.booleans()):
        svc["secrets"] = [{"name": f"{svc['name']}-db", "vaultPath": "fuzz/db", "keys": draw(st.lists(env_names, min_size=1, max_size=3))}]
    # Staging and prod run only pinned images.
    svc["envs"] = {"staging": {"image": svc["image"]}, "prod": {"image": svc["image"]}, "dev": {}}
    if draw(st.booleans()):
        svc["envs"][draw(st.sampled_from(["dev", "prod"]))]["replicas"] = {"min": 2, "max": 3}
    return svc


def mutate(draw, data: Any) -> Any:
    """Replace, drop or add one key somewhere in the tree."""
    if not isinstance(data, dict) or not data:
        return draw(values)
    key = draw(st.sampled_from(sorted(data, key=str)))
    action = draw(st.sampled_from(["replace", "drop", "add", "descend"]))
    out = dict(data)
    if action == "replace":
        out[key] = draw(values)
    elif action == "drop":
        del out[key]
    elif action == "add":
        out[draw(st.text(max_size=12))] = draw(values)
    else:
        out[key] = mutate(draw, data[key])
    return out


TEXT_EDITS = [
    lambda text, _: text.replace(": ", ": &a ", 1) + "extra: *a\n",
    lambda text, _: text + text.splitlines()[0] + "\n",
    lambda text, cut: text[:cut],
    lambda text, cut: text[:cut] + '\t{["' + text[cut:],
    lambda text, cut: text[:cut] + "<<: {}\n" + text[cut:],
]


@st.composite
def service_files(draw) -> bytes:
    data = draw(services())
    if draw(st.booleans()):
        data = mutate(draw, data)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if draw(st.booleans()):
        text = draw(st.sampled_from(TEXT_EDITS))(text, draw(st.integers(0, len(text))))
    raw = text.encode()
    if draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=4)) + raw[at:]
    return raw


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Scratch:
    return Scratch(tmp_path_factory.mktemp("fuzz"))


def known_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in (root / "stacks").rglob("*") if p.is_file()}


def check_contract(root: Path, stack: str) -> None:
    tracemalloc.start(1)
    started = time.perf_counter()
    try:
        result: Any = load(stack, root)
    except SpecError as err:
        result = err
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < SECONDS and peak < PEAK_BYTES, (elapsed, peak)
    if isinstance(result, Declarations):
        return
    files = known_files(root)
    lines = str(result).splitlines()
    assert lines and len(lines) == len(result.problems)
    for line in lines:
        assert line.split(": ", 1)[0] in files, line
        assert len(line) <= 1003
    assert rejected(result) == 2


@FUZZ
@given(raw=service_files())
def test_service_files(project, raw):
    project.path(FUZZ_SERVICE).write_bytes(raw)
    try:
        check_contract(project.root, "dev")
    finally:
        project.path(FUZZ_SERVICE).unlink()


@FUZZ
@given(data=st.data(), stack=st.sampled_from(["dev", "prod"]))
def test_stack_files(project, data, stack):
    rel = f"stacks/{stack}.yaml"
    original = project.path(rel).read_bytes()
    mutated = mutate(data.draw, yaml.safe_load(original))
    try:
        project.write(rel, yaml.safe_dump(mutated, sort_keys=False, allow_unicode=True))
        check_contract(project.root, data.draw(st.sampled_from(["dev", "prod"])))
    finally:
        project.path(rel).write_bytes(original)


def test_valid_generated_services_load(project):
    """The generator does produce clean declarations: the contract's other branch is exercised."""
    svc = {
        "name": "fuzzed",
        "image": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/fuzz:1.0",
        "port": 8080,
        "replicas": {"min": 2, "max": 2},
        "env": {"A_B": "c"},
    }
    svc["envs"] = {"staging": {"image": svc["image"]}, "prod": {"image": svc["image"]}}
    project.write(FUZZ_SERVICE, svc)
    try:
        assert "fuzzed" in {s.name for s in load("dev", project.root).services}
    finally:
        project.path(FUZZ_SERVICE).unlink()
