"""A digest of every declaration file, so a validated environment is reused only while nothing changed."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

from . import yamlsafe


def fingerprint(root: Path) -> str:
    """A digest of every input of the loader: the stack and service files (their kind too: a symlink
    or FIFO is refused, so only regular files are read) and the Pulumi files (the team project's too)."""
    digest = hashlib.sha256()
    pulumi_files = list(root.glob("Pulumi*.yaml")) + list((root / "teams").glob("Pulumi*.yaml"))
    entries = sorted(list((root / "stacks").rglob("*")) + pulumi_files) if (root / "stacks").is_dir() else []
    for path in entries:
        mode = path.lstat().st_mode
        digest.update(f"{path.relative_to(root)}\0{mode}\0".encode())
        if stat.S_ISREG(mode) and path.suffix in (".yaml", ".yml", ".YAML") and path.stat().st_size <= yamlsafe.MAX_FILE_BYTES:
            digest.update(path.read_bytes())
    return digest.hexdigest()
