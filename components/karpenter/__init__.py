"""Karpenter: node role, controller identity, interruption handling, the controller release, and pools."""

from .controller import KarpenterController
from .pools import NodePools

__all__ = ["KarpenterController", "NodePools"]
