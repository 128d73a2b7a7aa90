"""Platform addons installed with Helm: one file per addon, registered by subclassing `Addon`."""

from .base import Addon, AddonContext
from .registry import discover, install, requirements

__all__ = ["Addon", "AddonContext", "discover", "install", "requirements"]
