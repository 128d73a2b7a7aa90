"""Moving an image pin: the `envs.<stack>.image` line of a service file, edited in place.

Only that value changes (comments, order and the rest of the file stay as the team wrote them),
and the result must load: otherwise the file is restored and the promotion stops.
"""

from __future__ import annotations

import re
from pathlib import Path

from components.spec import SpecError, load
from components.spec.loader import SERVICES_DIR, read_yaml


class PinError(Exception):
    """The pin cannot be written: no such service, a stack it does not run in, or a pin that does not load. Nothing is changed."""


def service_file(root: Path, service: str) -> Path:
    """The file declaring `service` (wherever it lives under stacks/services/)."""
    for path in sorted((root / SERVICES_DIR).rglob("*.yaml")):
        if read_yaml(path, root).get("name", path.stem) == service:
            return path
    raise PinError(f"no service {service!r} is declared under {SERVICES_DIR}/")


def with_pin(text: str, stack: str, image: str) -> str:
    lines = text.splitlines(keepends=True)
    try:
        envs = next(i for i, line in enumerate(lines) if re.match(r"^envs:\s*(#.*)?$", line))
        block = next(i for i in range(envs + 1, len(lines)) if re.match(rf"^  {re.escape(stack)}:\s*(#.*)?$", lines[i]))
    except StopIteration:
        raise PinError(f"the file has no `envs.{stack}:` block (a mapping under `envs:`) holding the pin") from None
    for i in range(block + 1, len(lines)):
        line = lines[i]
        if line.strip() and not line.startswith("   "):
            break
        match = re.match(r"^(    image:\s*)(\S+)(.*)$", line.rstrip("\n"))
        if match:
            lines[i] = f"{match[1]}{image}{match[3]}" + ("\n" if line.endswith("\n") else "")
            return "".join(lines)
    raise PinError(f"the file has no `envs.{stack}.image:` line to move")


def move(root: Path, service: str, stack: str, image: str) -> Path:
    """Pin `image` for `stack` in the service's file; every stack must still load."""
    path = service_file(root, service)
    before = path.read_text()
    path.write_text(with_pin(before, stack, image))
    try:
        load(stack, root)
    except SpecError as err:
        path.write_text(before)
        raise PinError(f"the new pin does not load; {path.relative_to(root)} is unchanged:\n{err}") from None
    return path
