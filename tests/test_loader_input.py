"""Hostile or careless files: each ends in exit 2 with a one-line message naming the file and where,
within a small memory budget, and nothing is written. Clean files still load."""

from __future__ import annotations

import tracemalloc

import pytest

from components.spec import SpecError, load
from components.spec.problems import Problem, short
from components.spec.yamlsafe import MAX_DEPTH, MAX_FILE_BYTES
from engine import render
from engine.preview import main as preview

ORDERS = "stacks/services/checkout/orders.yaml"
# 637 bytes that expand to 9^9 list items (the "billion laughs").
BOMB = (
    "name: orders\nteam: checkout\n"
    + "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    + "image: *i\n"
)


def rejected(scratch, capsys, stack: str = "dev") -> str:
    return scratch.rejected(capsys, stack)


def refused(scratch, text: str | bytes, rel: str = ORDERS) -> str:
    path = scratch.path(rel)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(SpecError) as caught:
        load("dev", scratch.root)
    return str(caught.value)


def test_alias_bomb_is_refused_before_it_expands(scratch, capsys):
    assert len(BOMB) < 700
    scratch.write(ORDERS, BOMB)
    tracemalloc.start()
    try:
        err = rejected(scratch, capsys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"{ORDERS}: line 3, column 4: anchors (&name) are not allowed" in err
    assert peak < 64 * 2**20
    assert len(err) < 2000


def test_aliases_merge_keys_and_anchors_are_refused(scratch):
    assert "aliases (*name) are not allowed" in refused(scratch, "name: orders\nteam: *x\n")
    assert "anchors (&name) are not allowed" in refused(scratch, "name: &n orders\n")
    assert "merge keys (<<) are not allowed" in refused(scratch, "name: orders\n<<: {team: checkout}\n")


def test_duplicate_key_is_refused_not_overridden(scratch, capsys):
    text = scratch.path(ORDERS).read_text() + "port: 9999\n"
    scratch.write(ORDERS, text)
    line = text.count("\n")
    assert f"{ORDERS}: line {line}, column 1: duplicate key 'port'; each key may appear once" in rejected(scratch, capsys)


def test_duplicate_nested_key(scratch):
    assert "line 2, column 20: duplicate key 'min'" in refused(scratch, "name: orders\nreplicas: {min: 1, min: 2}\n")


def test_non_utf8_names_the_byte_offset(scratch, capsys):
    scratch.path(ORDERS).write_bytes(b"name: orders\nteam: check\xffout\n")
    assert f"{ORDERS}: byte 24: not UTF-8 text" in rejected(scratch, capsys)


def test_nul_byte(scratch):
    assert f"{ORDERS}: byte 6: NUL byte" in refused(scratch, b"name: \x00orders\n")


def test_file_over_the_size_limit(scratch):
    msg = refused(scratch, "name: orders\n" + "# padding\n" * (MAX_FILE_BYTES // 10))
    assert msg == f"{ORDERS}: larger than {MAX_FILE_BYTES // 1024} KiB, the limit for one declaration file"


def test_nesting_is_bounded(scratch):
    assert f"nested more than {MAX_DEPTH} levels deep" in refused(scratch, "name: " + "[" * 200 + "]" * 200 + "\n")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "expected a mapping of keys at the top level, got nothing (an empty file)"),
        ("- a\n- b\n", "expected a mapping of keys at the top level, got list"),
        ("? [a, b]\n: c\n", "a mapping key must be a plain value"),
        ("name: orders\n  team: x\n", "YAML syntax error"),
        ("name: !!python/object:os.system x\n", "YAML syntax error"),
    ],
)
def test_other_malformed_files(scratch, text, expected):
    msg = refused(scratch, text)
    assert msg.startswith(f"{ORDERS}: ") and expected in msg and "\n" not in msg


def test_yml_files_are_refused_explicitly(scratch, capsys):
    scratch.write("stacks/services/catalog/reviews.yml", "name: reviews\n")
    scratch.write("stacks/qa.YAML", "environment: dev\n")
    err = rejected(scratch, capsys)
    assert "stacks/services/catalog/reviews.yml: declaration files end in .yaml; rename it to reviews.yaml so it is read" in err
    assert "stacks/qa.YAML: declaration files end in .yaml" in err


def test_messages_quote_only_a_prefix_of_a_value(scratch):
    huge = "x" * 100_000
    scratch.edit(ORDERS, lambda d: d.update(image=huge, tier=huge, **{huge: 1}))
    with pytest.raises(SpecError) as caught:
        load("dev", scratch.root)
    msg = str(caught.value)
    assert len(msg) < 5000 and "(100002 characters)" in msg
    assert all(line.startswith(f"{ORDERS}: ") for line in msg.splitlines())


def test_short_and_problem_stay_on_one_line():
    assert short("a\nb") == "'a\\nb'"
    assert short("y" * 500).endswith("... (502 characters)")
    assert "\n" not in str(Problem("f.yaml", "k", "one\ntwo"))


def test_errors_are_sorted_by_file(scratch):
    scratch.edit("stacks/services/web/storefront.yaml", lambda d: d.update(port="x"))
    scratch.edit("stacks/services/catalog/inventory.yaml", lambda d: d.update(port="x"))
    scratch.edit("stacks/dev.yaml", lambda d: d["cluster"].update(name="Bad"))
    with pytest.raises(SpecError) as caught:
        load("dev", scratch.root)
    files = [p.file for p in caught.value.problems]
    assert files == sorted(files) and files[0] == "stacks/dev.yaml" and len(set(files)) == 3


def test_stack_config_file_is_read_safely(scratch, capsys):
    scratch.path("Pulumi.dev.yaml").write_text("config:\n  aws:region: &r eu-west-1\n")
    out = scratch.root / "out"
    assert preview(["dev", "--root", str(scratch.root), "--out", str(out)]) == 2
    assert "Pulumi.dev.yaml: line 2, column 15: anchors (&name) are not allowed" in capsys.readouterr().err


# -- build/<stack>/ is replaced whole, or not at all --------------------------------------------


def test_a_failed_run_keeps_the_previous_complete_output(scratch, capsys):
    out = scratch.root / "build" / "dev"
    assert preview(["dev", "--root", str(scratch.root), "--out", str(out)]) == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    (out / "stale.txt").write_text("from an older run")
    scratch.edit(ORDERS, lambda d: d.update(port=15001))
    assert preview(["dev", "--root", str(scratch.root), "--out", str(out)]) == 2
    assert (out / "stale.txt").exists() and (out / "policy.json").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["dev"]
    capsys.readouterr()
    assert before and (out / "manifests").is_dir()


def test_a_crash_while_writing_leaves_the_previous_output(scratch, monkeypatch):
    out = scratch.root / "build" / "dev"
    out.mkdir(parents=True)
    (out / "summary.md").write_text("previous complete output")

    def half_written(recording, decl, staging):
        (staging / "resources.json").write_text("[")
        raise OSError("disk full")

    monkeypatch.setattr(render, "write", half_written)
    with pytest.raises(OSError):
        preview(["dev", "--root", str(scratch.root), "--out", str(out)])
    assert (out / "summary.md").read_text() == "previous complete output"
    assert sorted(p.name for p in out.parent.iterdir()) == ["dev"]


def test_a_successful_run_replaces_the_whole_folder(scratch):
    out = scratch.root / "build" / "dev"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("from an older run")
    assert preview(["dev", "--root", str(scratch.root), "--out", str(out)]) == 0
    assert not (out / "stale.txt").exists() and (out / "summary.md").exists() and (out / "policy.json").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["dev"]
