"""Synthetic stacks of N services, shaped like the samples: mixed tiers, canaries, fan-out."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COPIED = ["__main__.py", "Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml", "stacks", "teams"]
REGISTRY = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop"


def service(i: int, rng: random.Random) -> dict:
    name = f"svc-{i:04d}"
    tier = rng.choices(["critical", "standard", "batch"], weights=[1, 7, 2])[0]
    decl: dict = {
        "name": name,
        "team": f"team-{i % max(1, 5 + i // 50):02d}" if i else "team-00",
        "image": f"{REGISTRY}/{name}:1.{i % 7}.{i % 3}",
        "port": 8080,
        "tier": tier,
    }
    if tier == "critical":
        # The canary may not be looser than the critical tier's 99.9% availability objective.
        decl["canary"] = {"successRate": 99.9}
    # Fan-out like the samples: a few calls to services declared before this one.
    if i:
        decl["dependsOn"] = sorted({f"svc-{rng.randrange(i):04d}" for _ in range(rng.choice([0, 1, 2, 3]))})
    # Staging and prod run only pinned images (components/spec/environments.py).
    decl["envs"] = {"staging": {"image": decl["image"]}, "prod": {"image": decl["image"]}}
    if rng.random() < 0.1:
        # Each stack serves its own domain (ingress.domains): prod acme-shop.com, dev dev.acme-shop.com, staging staging.acme-shop.com.
        decl["expose"] = {"host": f"{name}.acme-shop.com"}
        decl["envs"]["dev"] = {"expose": {"host": f"{name}.dev.acme-shop.com"}}
        decl["envs"]["staging"]["expose"] = {"host": f"{name}.staging.acme-shop.com"}
    if rng.random() < 0.3:
        decl["secrets"] = [{"name": f"{name}-db", "vaultPath": f"{decl['team']}/{name}/db", "keys": ["DATABASE_URL"]}]
    if tier == "batch" and rng.random() < 0.5:
        decl["scaling"] = {"sqs": {"queueName": f"{decl['team']}-{name}-jobs"}}
        decl["replicas"] = {"min": 1, "max": 10}
    decl["env"] = {"LOG_LEVEL": "info"}
    return decl


def make_project(target: Path, n: int, seed: int = 7) -> Path:
    """A copy of the project's declarations whose services are n synthetic ones."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in COPIED:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, target / name)
    services = target / "stacks" / "services"
    shutil.rmtree(services)
    services.mkdir()
    rng = random.Random(seed)
    declared = [service(i, rng) for i in range(n)]
    # Cross-team calls need the callee's consent: each callee lists its callers of other teams.
    team_of = {d["name"]: d["team"] for d in declared}
    for decl in declared:
        for dep in decl.get("dependsOn", []):
            callee = next(d for d in declared if d["name"] == dep)
            if team_of[dep] != decl["team"]:
                callee.setdefault("allowedCallers", []).append(f"{decl['team']}/{decl['name']}")
    for decl in declared:
        # The folder is the team: the file does not say it.
        folder = services / decl.pop("team")
        folder.mkdir(exist_ok=True)
        (folder / f"{decl['name']}.yaml").write_text(yaml.safe_dump(decl, sort_keys=False))
    # Every team needs a budget; a generous one, so quotas never stop a synthetic stack. Alerts go to
    # the sample stack's receivers; its platform team stays.
    teams = sorted({team_of[d["name"]] for d in declared})
    for stack in ("dev", "staging", "prod"):
        path = target / "stacks" / f"{stack}.yaml"
        spec = yaml.safe_load(path.read_text())
        platform = spec["alerting"]["platformTeam"]
        alerts = spec["teams"][platform]["alerts"]
        spec["teams"] = {platform: spec["teams"][platform]} | {
            team: {"cpu": "1000", "memory": "4000Gi", "pods": 5000, "alerts": dict(alerts)} for team in teams
        }
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return target
