"""Load a registered model for inference (compiled runtimes and the batcher come later)."""

from __future__ import annotations

from modelward.runtime.loader import load_version
from modelward.runtime.model import LoadedModel

__all__ = ["LoadedModel", "load_version"]
