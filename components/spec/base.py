"""The shared base of every declaration model.

Declarations are written by people in YAML, so every model forbids unknown keys (a typo must
fail, not be ignored), accepts the camelCase names used in the files, and documents each field
so the generated JSON Schema gives editors completion and hover text.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

# A team or service name: a DNS label, short enough for the names derived from it.
DNS_LABEL = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$"

# Kubernetes' resource.Quantity grammar (apimachinery): a non-negative decimal with an optional
# binary (Ki..Ei), decimal (n, u, m, k, M..E) or exponent suffix. A limit Kubernetes or Karpenter
# cannot parse fails at apply time, so it fails here.
QUANTITY = re.compile(r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")


def _number_as_text(value: Any) -> Any:
    # `cpuLimit: 64` is as natural in YAML as `cpuLimit: "64"`; booleans are not numbers here.
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _quantity(value: str) -> str:
    if not QUANTITY.match(value):
        raise ValueError(f'{value[:40]!r} is not a Kubernetes quantity (e.g. "500m", "2", "512Mi", "4Gi")')
    return value


# A Kubernetes resource quantity such as "250m" or "512Mi".
Quantity = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_quantity)]
# The forms the platform does arithmetic on (team budgets, requests): plain or milli CPUs, and
# whole bytes with a unit. Inside the type, so the JSON Schema shows the pattern even when optional.
CpuQuantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?m?$"), BeforeValidator(_number_as_text), AfterValidator(_quantity)]
MemoryQuantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$"), BeforeValidator(_number_as_text), AfterValidator(_quantity)]


MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def cpu_millis(quantity: str) -> int:
    """ "250m" -> 250, "2" -> 2000, "0.5" -> 500."""
    return round(float(quantity[:-1])) if quantity.endswith("m") else round(float(quantity) * 1000)


def memory_bytes(quantity: str) -> int:
    match = re.match(r"^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$", quantity)
    if not match:
        raise ValueError(f"{repr(quantity[:40])} is not a memory quantity")
    return int(match[1]) * MEMORY_UNITS[match[2] or ""]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True, validate_default=True)


def field(description: str, default: Any = ..., **kwargs: Any) -> Any:
    """A model field; the description is mandatory so no field reaches the schema undocumented."""
    return Field(default, description=description, **kwargs)
