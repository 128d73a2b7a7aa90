"""A throwaway copy of the project's declarations, to run the real program on edited input."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COPIED = ["__main__.py", "Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml", "stacks", "teams"]


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

    def add_service(self, data: dict[str, Any]) -> str:
        """Write a new service file where its team owns it, `stacks/services/<team>/<name>.yaml`
        (the team is the folder, never a key in the file); its path."""
        data = dict(data)
        rel = f"stacks/services/{data.pop('team')}/{data['name']}.yaml"
        self.write(rel, data)
        return rel

    def service_file(self, name: str) -> str:
        """The path of the service file named `name`.yaml, in whichever team folder holds it."""
        (found,) = self.root.glob(f"stacks/services/*/{name}.yaml")
        return str(found.relative_to(self.root))

    def move_service(self, name: str, team: str) -> str:
        """Move a service file into another team's folder (which makes it that team's); its new path."""
        old = self.path(self.service_file(name))
        rel = f"stacks/services/{team}/{name}.yaml"
        self.path(rel).parent.mkdir(parents=True, exist_ok=True)
        old.rename(self.path(rel))
        return rel

    def service_files(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.glob("stacks/services/*/*.yaml"))

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
