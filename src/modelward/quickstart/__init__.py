"""``modelward quickstart``: the whole loop on the embedded default, in one command."""

from __future__ import annotations

from modelward.quickstart.run import STEPS, Options, Reporter, Summary, run

__all__ = ["STEPS", "Options", "Reporter", "Summary", "run"]
