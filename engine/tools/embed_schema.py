"""Write the provider's embedded schema and mapping the way its release build does (generate.go).

The module holds schema.json and terraform-mapping.json; the binary embeds compact copies with the
build's version stamped into the schema.
"""

import json
import sys
from pathlib import Path


def main(folder: str, version: str) -> None:
    root = Path(folder)
    schema = json.loads((root / "schema.json").read_text())
    schema["version"] = version.removeprefix("v")
    (root / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
    mapping = json.loads((root / "terraform-mapping.json").read_text())
    (root / "terraform-mapping-embed.json").write_text(json.dumps(mapping, separators=(",", ":")))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
