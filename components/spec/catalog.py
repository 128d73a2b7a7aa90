"""The addons a stack may declare, as the declarations see them: name, required addons, Settings model.

The models here sit below the addons (every addon builds on them), so the loader never imports an
addon module. Each addon class registers its entry when its module is imported
(components/addons/base.py), and `discover()` loads the modules of the addon package by path: addons
are plugins, so adding one is adding a file and no module names another.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from .base import Spec

ADDON_PACKAGE = "components.addons"
ADDON_DIR = Path(__file__).resolve().parents[1] / "addons"
# Modules of the addon package that are its machinery, not addons.
MACHINERY = ("base", "registry", "gitops")


@dataclass(frozen=True)
class AddonEntry:
    name: str
    requires: tuple[str, ...]
    settings: type[Spec]
    # The addon's class name: the title of its settings in the editor schema.
    title: str
    # Every namespace the addon creates (its own first), which no team may take.
    namespaces: tuple[str, ...] = ()


_ENTRIES: dict[str, AddonEntry] = {}


def register(entry: AddonEntry) -> None:
    if entry.name in _ENTRIES and _ENTRIES[entry.name].title != entry.title:
        raise TypeError(f"addon name {entry.name!r} is used by both {_ENTRIES[entry.name].title} and {entry.title}")
    _ENTRIES[entry.name] = entry


def discover() -> dict[str, AddonEntry]:
    """Every addon of the addon package, loaded once; unknown requirements are a programming error."""
    for module in pkgutil.iter_modules([str(ADDON_DIR)]):
        if module.name not in MACHINERY:
            importlib.import_module(f"{ADDON_PACKAGE}.{module.name}")
    for entry in _ENTRIES.values():
        unknown = [r for r in entry.requires if r not in _ENTRIES]
        if unknown:
            raise TypeError(f"addon {entry.name!r} requires unknown addon(s) {unknown}")
    return dict(_ENTRIES)
