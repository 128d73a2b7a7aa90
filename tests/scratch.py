"""A throwaway copy of the project's declarations, to run the real program on edited input."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COPIED = ["__main__.py", "Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml", "stacks"]


class Scratch:
    def __init__(self, tmp: Path):
        self.root = tmp
        for name in COPIED:
            src = ROOT / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp / name)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def read(self, rel: str) -> dict[str, Any]:
        return yaml.safe_load(self.path(rel).read_text())

    def write(self, rel: str, data: Any) -> None:
        self.path(rel).parent.mkdir(parents=True, exist_ok=True)
        self.path(rel).write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))

    def edit(self, rel: str, fn) -> None:
        data = self.read(rel)
        fn(data)
        self.write(rel, data)

    def rejected(self, capsys, stack: str = "dev") -> str:
        """Run `make preview` on this project: exit 2, no traceback, nothing written; the message."""
        from engine.preview import main as preview

        out = self.root / "out"
        assert preview([stack, "--root", str(self.root), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.startswith("invalid stack declarations:\n")
        assert not out.exists()
        return err
