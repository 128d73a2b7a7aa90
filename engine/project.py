"""Where the project is: the one fact every part of the engine needs, in a module that imports nothing of it.

Kept apart from runtime.py so the modules that only read files under the project (reference.py, and
through it the conformance and chart-values checks) do not depend on the mock runtime, and the
runtime can use those checks without an import circle.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
