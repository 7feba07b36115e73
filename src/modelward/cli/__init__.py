"""The ``modelward`` command line (Typer + Rich); the only place that reads argv.

Commands import what they need when they run, so ``modelward --help`` answers at once.
"""

from __future__ import annotations

import sys

from modelward.cli.app import app, main

__all__ = ["app", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
