"""Declaration strings never reach a shell as shell text (issue 24, class 1).

Flagger's load tester runs a webhook's `cmd` with `sh -c` in a pod that every team's canaries use.
Whatever a team file declares, each rendered command must split back (as the shell splits it) into
exactly the words the platform meant, each inside the command grammar; a value outside the grammar
is refused by the model, and one that got past it is refused by the renderer, never passed on.
"""

from __future__ import annotations

import re
import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from components.spec.service import Service
from components.spec.shellsafe import URL_PATH, URL_PATH_MAX, WORD, UnsafeArgument, argument, command
from components.workloads.delivery import canary_spec

BASE = {
    "name": "orders",
    "team": "checkout",
    "image": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/orders:1.0.0",
    "port": 8080,
    "replicas": {"min": 2, "max": 4},
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    "canary": {"enabled": True},
    "slo": {"availability": 99.0, "latencyMs": 500, "latencyPercent": 99},
}
# Everything a shell reads as more than a literal character, and the ways to smuggle it.
HOSTILE = ["/h;id", "/h$(id)", "/h`id`", "/h|id", "/h&&id", "/h>x", "/h'x", '/h"x', "/h\\x", "/h x", "/h\nid", "/h*", "/h?", "/~x", "/h#x", "/h{a,b}"]


def service(**probes: str) -> Service:
    return Service.model_validate({**BASE, "probes": probes})


def commands(svc: Service) -> list[str]:
    hooks = canary_spec(svc, None, "http://flagger-loadtester.flagger-loadtester/", None)["analysis"]["webhooks"]
    for hook in hooks:
        # Never bash: nothing here needs it, and `sh` is what the load tester's `cmd` type runs.
        assert hook["metadata"]["type"] == "cmd"
    return [hook["metadata"]["cmd"] for hook in hooks]


@pytest.mark.parametrize("path", HOSTILE)
def test_shell_characters_in_a_probe_path_are_refused(path):
    with pytest.raises(ValidationError, match="probes.path"):
        service(path=path)
    with pytest.raises(ValidationError, match="probes.readinessPath"):
        service(readinessPath=path)


@pytest.mark.parametrize("path", ["/../admin", "/a/../b", "//evil.io/x", "/./x", "/" + "a" * 200])
def test_paths_that_are_not_plain_paths_are_refused(path):
    with pytest.raises(ValidationError):
        service(path=path)


def test_the_smoke_test_is_one_curl_of_the_canary():
    [smoke, load] = commands(service(path="/ready/v1"))
    assert shlex.split(smoke) == ["curl", "-sf", "--max-time", "10", "http://orders-canary.checkout:8080/ready/v1"]
    # Load for two analysis intervals (the default 15 s each).
    assert shlex.split(load) == ["hey", "-z", "30s", "-q", "10", "-c", "2", "http://orders-canary.checkout:8080/"]


def test_the_renderer_refuses_what_the_model_should_have():
    for bad in HOSTILE:
        with pytest.raises(UnsafeArgument):
            argument("http://x" + bad)
    # Even if a model rule is removed, an unsafe value cannot be rendered into a command.
    svc = service().model_copy(update={"probes": service().probes.model_copy(update={"path": "/h;id"})})
    with pytest.raises(UnsafeArgument):
        commands(svc)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_no_declared_path_reaches_a_command_outside_the_grammar(tail):
    """Property: any declared path is refused, or every command splits into grammar words, the URL last."""
    path = "/" + tail
    try:
        svc = service(path=path)
    except ValidationError:
        assert not re.match(URL_PATH, path) or len(path) > URL_PATH_MAX
        return
    for cmd in commands(svc):
        words = shlex.split(cmd)
        assert all(WORD.match(w) for w in words), cmd
        # Joining the words back gives the same command: nothing was interpreted or lost.
        assert command(words) == cmd
    assert shlex.split(commands(svc)[0])[-1] == f"http://orders-canary.checkout:8080{path}"


@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=5))
def test_command_words_split_back_exactly(words):
    """`command` either refuses a word or builds a line the shell splits into exactly those words."""
    try:
        line = command(words)
    except UnsafeArgument:
        assert not all(WORD.match(w) for w in words)
        return
    assert shlex.split(line) == words


@settings(max_examples=200, deadline=None)
@given(name=st.text(min_size=1, max_size=20), team=st.text(min_size=1, max_size=20), path=st.text(max_size=30), port=st.integers(-5, 70000))
def test_no_declared_string_reaches_a_command_outside_the_grammar(name, team, path, port):
    """Every declared value a command carries (name, team, port, probe path): refused, or inside the grammar."""
    try:
        svc = Service.model_validate({**BASE, "name": name, "team": team, "port": port, "probes": {"path": "/" + path}})
    except ValidationError:
        return
    for cmd in commands(svc):
        words = shlex.split(cmd)
        assert all(WORD.match(w) for w in words) and command(words) == cmd
