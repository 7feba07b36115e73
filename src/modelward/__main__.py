"""``python -m modelward``: the same as the ``modelward`` command."""

from __future__ import annotations

import sys

from modelward.cli import main

sys.exit(main())
