"""Build promtool, Prometheus and amtool at the versions production runs, from the Go module proxy: `make tools`.

The versions are the kube-prometheus-stack chart's own image tags (reference/charts/<chart>/values.json:
prometheus.prometheusSpec.image.tag and alertmanager.alertmanagerSpec.image.tag), so a chart bump moves
the tools with it. Binaries are cached under .tools/<tool>-<version>/ (ignored by git): a second run
with the same versions builds nothing. Only the standard library and the `go` command are needed.

Prometheus 3 publishes its Go module as v0.3XX.Y for release v3.XX.Y, and its go.mod has `replace`
directives, which `go install pkg@version` refuses; so each tool is built inside its downloaded module
(`go mod download`, then `go build` there, the workspace file off), exactly as its go.mod and go.sum pin.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".tools"
CHART = "kube-prometheus-stack"


@dataclass(frozen=True)
class Tool:
    name: str
    module: str
    package: str
    # Where the chart's values name the image whose version the tool must match.
    image: tuple[str, ...]

    @property
    def version(self) -> str:
        """The release version (v3.14.0), from the chart's image tag (v3.14.0-distroless)."""
        values = json.loads(chart_values().read_text())
        for key in self.image:
            values = values[key]
        found = re.match(r"^(v\d+\.\d+\.\d+)", values["tag"])
        if not found:
            raise SystemExit(f"{CHART}: cannot read a version from {'.'.join(self.image)}.tag={values['tag']!r}")
        return found[1]

    @property
    def module_version(self) -> str:
        """The Go module version of the release: Prometheus v3.14.0 is module v0.314.0."""
        major, minor, patch = (int(p) for p in self.version[1:].split("."))
        return f"v0.{major * 100 + minor}.{patch}" if major >= 2 else self.version

    @property
    def binary(self) -> Path:
        return CACHE / f"{self.name}-{self.version}" / self.name


TOOLS = {
    t.name: t
    for t in (
        Tool("promtool", "github.com/prometheus/prometheus", "./cmd/promtool", ("prometheus", "prometheusSpec", "image")),
        # Prometheus itself, for the promotion gates' queries (tests/test_promotion_gate.py).
        Tool("prometheus", "github.com/prometheus/prometheus", "./cmd/prometheus", ("prometheus", "prometheusSpec", "image")),
        Tool("amtool", "github.com/prometheus/alertmanager", "./cmd/amtool", ("alertmanager", "alertmanagerSpec", "image")),
    )
}


def chart_values() -> Path:
    sys.path.insert(0, str(ROOT))
    from components.versions import KUBE_PROMETHEUS_STACK

    return ROOT / "reference" / "charts" / KUBE_PROMETHEUS_STACK.reference_folder / "values.json"


def build(tool: Tool) -> Path:
    if tool.binary.is_file():
        return tool.binary
    go = shutil.which("go")
    if go is None:
        raise SystemExit(f"{tool.name}: the Go toolchain is needed to build it (Debian: apt-get install golang-go)")
    env = {**os.environ, "GOWORK": "off", "GOFLAGS": "-mod=readonly -buildvcs=false"}
    found = subprocess.run([go, "mod", "download", "-json", f"{tool.module}@{tool.module_version}"], env=env, capture_output=True, text=True)
    if found.returncode != 0:
        raise SystemExit(f"{tool.name}: go mod download {tool.module}@{tool.module_version} failed:\n{found.stdout}{found.stderr}")
    source = json.loads(found.stdout)["Dir"]
    # The version the tool reports (`promtool --version`), as the release build stamps it.
    stamp = f"-X github.com/prometheus/common/version.Version={tool.version[1:]} -X github.com/prometheus/common/version.Branch=release"
    tool.binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tool.binary.parent) as scratch:
        out = Path(scratch) / tool.name
        built = subprocess.run([go, "build", "-trimpath", "-ldflags", f"-s -w {stamp}", "-o", str(out), tool.package], cwd=source, env=env)
        if built.returncode != 0:
            raise SystemExit(f"{tool.name}: go build of {tool.module}@{tool.module_version} failed")
        out.replace(tool.binary)
    return tool.binary


def main(argv: list[str]) -> int:
    for name in argv or list(TOOLS):
        if name not in TOOLS:
            raise SystemExit(f"unknown tool {name!r}; known: {', '.join(TOOLS)}")
        tool = TOOLS[name]
        cached = tool.binary.is_file()
        print(f"{tool.name} {tool.version} ({tool.module}@{tool.module_version}): {build(tool).relative_to(ROOT)}{' (cached)' if cached else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
