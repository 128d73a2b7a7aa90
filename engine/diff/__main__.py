"""`python -m engine.diff <stack> --base <ref>` (what `make diff` runs)."""

import sys

from .cli import main

sys.exit(main())
