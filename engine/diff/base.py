"""Recording BASE for `make diff`: its checkout in a temporary `git worktree`, run with its own code.

The base's code is the base checkout's: `python -m engine.record` in a subprocess whose working
directory is the worktree. When the two checkouts hold the same files but the service files
(engine/platform_state.py:checkout_digest; any pull request that only edits services), this
process's code *is* the base's, and the base is recorded in a fork of this process instead: it
starts with everything imported, while this process records the working tree on the other core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

RECORD_MODULE = "engine/record.py"


class DiffError(Exception):
    """The diff cannot be made; the message says why (exit 2)."""


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise DiffError(f"git {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def base_takes(root: Path, commit: str, option: str) -> bool:
    """Whether the base's engine.record takes `option` (--teams came with team stacks, --state with
    the platform's recorded state: older bases take neither)."""
    proc = git(root, "show", f"{commit}:{RECORD_MODULE}", check=False)
    return proc.returncode == 0 and f'"{option}"' in proc.stdout


def record_base(
    root: Path,
    stack: str,
    ref: str,
    commit: str,
    python: str = sys.executable,
    teams: Optional[list[str]] = None,
    head: Optional[Callable[[Optional[list[str]]], Any]] = None,
    state: Optional[Path] = None,
) -> tuple[dict[str, Any], Any, Optional[list[str]]]:
    """Record `commit` for the stacks of `teams` only (None: every stack), served the platform's
    recorded states kept in `state`, as far as the base's engine can; `head(teams)` runs meanwhile,
    limited as the base is. The base's document, head's result, and the teams both were limited to."""
    from ..platform_state import checkout_digest
    from ..project import PROJECT_ROOT

    head_doc, limit = None, None
    with tempfile.TemporaryDirectory(prefix="platform-diff-") as tmp:
        worktree, out, log = Path(tmp) / "base", Path(tmp) / "base.json", Path(tmp) / "base.log"
        git(root, "worktree", "add", "--detach", "--quiet", str(worktree), commit)
        wait: Optional[Callable[[], tuple[int, str]]] = None
        stop: Callable[[], None] = lambda: None
        try:
            if not (worktree / RECORD_MODULE).is_file():
                raise DiffError(
                    f"BASE={ref} ({commit[:10]}) predates {RECORD_MODULE}, the entry point `make diff` runs the base with; "
                    "diff against a newer base (one that has it), or run `make preview` on both checkouts and compare by hand"
                )
            code = checkout_digest(PROJECT_ROOT)
            same = code is not None and code == checkout_digest(worktree)
            limit = teams if same or base_takes(root, commit, "--teams") else None
            forked = _fork(stack, worktree, limit, state, out, log) if same else None
            if forked is not None:
                wait, stop = forked
            else:
                wait, stop = _subprocess(python, stack, worktree, limit, state if base_takes(root, commit, "--state") else None, out)
            # The base records on one core while this process records the working tree on the other.
            head_doc = head(limit) if head else None
            status, stderr = wait()
            if status != 0:
                raise DiffError(f"BASE={ref} ({commit[:10]}): the engine could not run stack {stack!r} there:\n{stderr.strip()}")
            doc = json.loads(out.read_text())
        finally:
            stop()  # a no-op once the base has finished; else this side failed and its answer is not needed
            git(root, "worktree", "remove", "--force", str(worktree), check=False)
            git(root, "worktree", "prune", check=False)
    if doc.get("format") != 1:
        raise DiffError(f"BASE={ref}: engine.record wrote format {doc.get('format')!r}; this diff reads format 1")
    return doc, head_doc, limit


def _subprocess(python: str, stack: str, worktree: Path, teams: Optional[list[str]], state: Optional[Path], out: Path) -> tuple[Callable, Callable]:
    # The base's own code must run: its checkout is the working directory (first on sys.path with
    # -m), and nothing from this tree may leak in through PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    options = (["--teams", ",".join(teams)] if teams is not None else []) + (["--state", str(state)] if state is not None else [])
    proc = subprocess.Popen(
        [python, "-m", "engine.record", stack, "--out", str(out), *options], cwd=worktree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

    def wait() -> tuple[int, str]:
        _, stderr = proc.communicate()
        return proc.returncode, stderr

    def stop() -> None:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    return wait, stop


def _fork(stack: str, worktree: Path, teams: Optional[list[str]], state: Optional[Path], out: Path, log: Path) -> Optional[tuple[Callable, Callable]]:
    """The base recorded in a fork of this process, or None where a fork cannot be trusted: no
    fork() (Windows), or threads already running here (a program has run in this process: its
    executor's threads would not exist in the child, whose runs would wait on them for ever)."""
    from components.spec import SpecError

    from ..record import record
    from ..runtime import ProgramError

    if not hasattr(os, "fork") or threading.active_count() > 1:
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    # Ctrl-C between fork() and the child's `try` would run this process's cleanup in the child.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        return None
    if pid == 0:  # the base: write the document or the message, and leave without running this process's exit handlers
        status = 1
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
            asyncio.set_event_loop(asyncio.new_event_loop())  # none of this process's loop or its executor
            with open(log, "w") as errors, contextlib.redirect_stdout(errors), contextlib.redirect_stderr(errors):
                try:
                    out.write_text(json.dumps(record(stack, worktree, teams, state), sort_keys=True))
                    status = 0
                except (SpecError, ProgramError) as err:
                    print(f"invalid stack declarations:\n{err}" if isinstance(err, SpecError) else err)
                    status = 2
                except BaseException:  # noqa: BLE001 (reported by the parent, whose message names the base)
                    traceback.print_exc()
        finally:
            os._exit(status)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    def wait() -> tuple[int, str]:
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), log.read_text() if log.is_file() else ""

    def stop() -> None:
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            if os.waitpid(pid, os.WNOHANG) == (0, 0):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)

    return wait, stop
