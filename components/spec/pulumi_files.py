"""What the loader reads from the Pulumi project files: `Pulumi.yaml` and `Pulumi.<stack>.yaml`.

They hold provider settings and encrypted secrets; the environment's shape lives in stacks/. They are
read with the same safe reader as every declaration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from . import yamlsafe
from .problems import Problem, SpecError


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def pulumi_config(stack: str, root: Path) -> dict[str, Any]:
    """The `config` map of Pulumi.<stack>.yaml (empty when the file is absent)."""
    path = Path(root) / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return {}
    config = yamlsafe.read(path, _rel(path, Path(root))).get("config") or {}
    if not isinstance(config, dict):
        raise SpecError([Problem(_rel(path, Path(root)), "config", f"expected a mapping, got {type(config).__name__}")])
    return config


def _project(root: Path) -> tuple[str, set[str]]:
    """The project's name and the config keys Pulumi.yaml declares `secret: true`."""
    project_file = Path(root) / "Pulumi.yaml"
    project = yamlsafe.read(project_file, "Pulumi.yaml") if project_file.is_file() else {}
    declared = project.get("config") or {}
    return str(project.get("name")), {name for name, schema in declared.items() if isinstance(schema, dict) and schema.get("secret") is True}


def _stored(stack: str, root: Path, project: str) -> list[tuple[str, str, bool]]:
    """(config key, its name in the project, stored encrypted) for every value of Pulumi.<stack>.yaml."""
    return [
        (key, key.split(":", 1)[1] if key.startswith(f"{project}:") else key, isinstance(value, dict) and set(value) == {"secure"})
        for key, value in pulumi_config(stack, root).items()
    ]


def plaintext_secrets(stack: str, root: Path) -> list[Problem]:
    """Config values Pulumi.yaml declares `secret: true` must be stored encrypted (`secure:`) in
    Pulumi.<stack>.yaml; the value itself is never repeated in the message."""
    project, secret = _project(root)
    return [
        Problem(
            f"Pulumi.{stack}.yaml",
            f"config.{key}",
            f"declared `secret: true` in Pulumi.yaml but stored in plaintext (value not shown); "
            f"remove it and run `pulumi config set --secret {name}`, then rotate the exposed value",
        )
        for key, name, encrypted in _stored(stack, root, project)
        if name in secret and not encrypted
    ]


def secret_keys(stack: str, root: Path) -> set[str]:
    """The `platform` config keys that hold a secret for this stack: declared `secret: true` in Pulumi.yaml
    (the CLI then refuses to run a stack that has not set it) or stored encrypted in Pulumi.<stack>.yaml."""
    project, secret = _project(root)
    return secret | {name for _, name, encrypted in _stored(stack, root, project) if encrypted}


def config_problems(stack: str, root: Path) -> list[Problem]:
    """Plain settings of Pulumi.<stack>.yaml the program would otherwise refuse mid-run: Vault's address
    for pulumi-vault (platform:vaultAddress) must be https, since Vault serves TLS only."""
    address = pulumi_config(stack, root).get("platform:vaultAddress")
    if address is None:
        return []
    if not isinstance(address, str) or not address.startswith("https://") or len(address) == len("https://"):
        return [
            Problem(
                f"Pulumi.{stack}.yaml",
                "config.platform:vaultAddress",
                f"{address!r} is not an https:// address; Vault serves TLS only: give its https address on the deploy network, or remove the key "
                "to use the listener's in-cluster address",
            )
        ]
    return []


def team_stack_secrets(root: Path) -> list[Problem]:
    """A team stack holds no secret (teams/Pulumi.<team>-<env>.yaml has no `secure:` value): its state sits
    in the team's own backend, which the team's pipelines and the preview and drift roles read, under a
    passphrase every team stack shares. A service's secrets come from Vault, through its team's SecretStore."""
    found = []
    for path in sorted((Path(root) / "teams").glob("Pulumi.*.yaml")):
        if path.name == "Pulumi.yaml":
            continue
        rel = _rel(path, Path(root))
        config = yamlsafe.read(path, rel).get("config") or {}
        if not isinstance(config, dict):
            found.append(Problem(rel, "config", f"expected a mapping, got {type(config).__name__}"))
            continue
        found += [
            Problem(
                rel,
                f"config.{key}",
                "an encrypted (`secure:`) value: team stacks hold no secret; put it in Vault under the team's path and read it through its SecretStore",
            )
            for key, value in config.items()
            if _holds_secure(value)
        ]
    return found


def _holds_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return "secure" in value or any(_holds_secure(v) for v in value.values())
    return isinstance(value, list) and any(_holds_secure(v) for v in value)


def aws_region(stack: str, root: Path) -> Optional[str]:
    region = pulumi_config(stack, root).get("aws:region")
    return region if isinstance(region, str) else None


def missing_secrets(stack: str, spec: Any, rel: str, root: Path) -> list[Problem]:
    """The secret config the stack's declarations name must exist for it, or `pulumi up` stops half-way."""
    backup = spec.backup
    if backup is None or backup.repository_password is None or not backup.moves_data:
        return []
    key = backup.repository_password.config
    if key in secret_keys(stack, root):
        return []
    return [
        Problem(
            rel,
            "backup.repositoryPassword.config",
            f"Pulumi secret config key {key!r} is neither declared `secret: true` in Pulumi.yaml nor stored encrypted in Pulumi.{stack}.yaml; "
            f"moved volume data is encrypted with it and a restore needs it: declare it and run `pulumi config set --secret {key}`",
        )
    ]
