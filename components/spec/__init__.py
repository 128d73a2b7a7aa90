"""Typed stack and service declarations, and the one loader that reads them."""

from .loader import Declarations, Problem, SpecError, deep_merge, load
from .service import Service
from .stack import StackSpec

__all__ = ["Declarations", "Problem", "Service", "SpecError", "StackSpec", "deep_merge", "load"]
