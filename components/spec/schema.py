"""JSON Schema for editors, generated from the models: `make schema` writes stacks/schema/.

A service file may leave out what the stack's serviceDefaults supply, and its `envs.<stack>`
blocks are partial overlays; the generated schema says exactly that.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from . import catalog
from .service import Service
from .stack import StackSpec

FILE_REQUIRED = ["name", "image", "port"]
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "stacks" / "schema"


def stack_schema() -> dict[str, Any]:
    """The stack model, with `addons` spelled out per registered addon and its typed settings."""
    schema = StackSpec.model_json_schema(by_alias=True)
    defs = schema["$defs"]
    addon = defs["AddonSpec"]
    per_addon = {}
    for name, known in sorted(catalog.discover().items()):
        settings = known.settings.model_json_schema(by_alias=True)
        defs.update(settings.pop("$defs", {}))
        defs[f"{known.title}Settings"] = settings
        entry = copy.deepcopy(addon)
        entry["properties"]["settings"] = {"$ref": f"#/$defs/{known.title}Settings", "description": addon["properties"]["settings"]["description"]}
        entry["title"] = f"Addon {name}"
        per_addon[name] = entry
    schema["properties"]["addons"] = {
        "description": schema["properties"]["addons"]["description"],
        "type": "object",
        "properties": per_addon,
        "additionalProperties": False,
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Stack declaration (stacks/<stack>.yaml)"
    return schema


def service_schema() -> dict[str, Any]:
    schema = Service.model_json_schema(by_alias=True)
    schema["required"] = FILE_REQUIRED
    # The team is the file's folder (components/spec/team_files.py): an editor must not offer the key.
    schema["properties"].pop("team")
    overlay = copy.deepcopy({k: v for k, v in schema.items() if k not in ("$defs", "title", "required")})
    for key in ("name", "envs"):
        overlay["properties"].pop(key)
    overlay["description"] = "Overrides for one stack, deep-merged over the file."
    schema["$defs"]["ServiceOverlay"] = overlay
    schema["properties"]["envs"]["additionalProperties"] = {"$ref": "#/$defs/ServiceOverlay"}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Service declaration (stacks/services/<team>/<name>.yaml)"
    return schema


def rendered() -> dict[str, str]:
    return {
        name: json.dumps(fn(), indent=2, sort_keys=True) + "\n" for name, fn in (("stack.schema.json", stack_schema), ("service.schema.json", service_schema))
    }


def main() -> int:
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (SCHEMA_DIR / name).write_text(text)
        print(f"wrote {SCHEMA_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
