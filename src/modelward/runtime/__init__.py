"""Load a registered model for inference; make it fast: compiled predictors and adaptive batching."""

from __future__ import annotations

# skops finds SciPy's ufuncs (they carry no __module__) by scanning sys.modules in import order until
# a module holds them. Imported before MLflow's and pandas' thousands of modules, as here (whatever
# loads a model imports this package first), scipy.special is found near the start; imported after
# them, the scans took about a second of loading a scikit-learn model on 2 cores.
import scipy.special  # noqa: F401

from modelward.runtime.batcher import Batcher, Overloaded
from modelward.runtime.loader import load_version
from modelward.runtime.model import LoadedModel
from modelward.runtime.predictor import ArrayPredictor, prepare

__all__ = ["ArrayPredictor", "Batcher", "LoadedModel", "Overloaded", "load_version", "prepare"]
