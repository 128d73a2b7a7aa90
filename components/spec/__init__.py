"""Typed stack and service declarations, and the one loader that reads them."""

from . import names
from .loader import Declarations, deep_merge, load
from .problems import Problem, SpecError
from .service import Service
from .stack import StackSpec

__all__ = ["Declarations", "Problem", "Service", "SpecError", "StackSpec", "deep_merge", "load", "names"]
