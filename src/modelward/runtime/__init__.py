"""Load a registered model for inference; make it fast: compiled predictors and adaptive batching."""

from __future__ import annotations

from modelward.runtime.batcher import Batcher, Overloaded
from modelward.runtime.loader import load_version
from modelward.runtime.model import LoadedModel
from modelward.runtime.predictor import ArrayPredictor, prepare

__all__ = ["ArrayPredictor", "Batcher", "LoadedModel", "Overloaded", "load_version", "prepare"]
