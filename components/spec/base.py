"""The shared base of every declaration model.

Declarations are written by people in YAML, so every model forbids unknown keys (a typo must
fail, not be ignored), accepts the camelCase names used in the files, and documents each field
so the generated JSON Schema gives editors completion and hover text.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Quantity = str  # a Kubernetes resource quantity such as "250m" or "512Mi"


class Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        validate_default=True,
    )


def field(description: str, default: Any = ..., **kwargs: Any) -> Any:
    """A model field; the description is mandatory so no field reaches the schema undocumented."""
    return Field(default, description=description, **kwargs)
