"""A registered version, loaded and ready to predict on a DataFrame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelward.drift.profile import DatasetProfile
from modelward.errors import ModelwardError
from modelward.registry.types import VersionInfo
from modelward.schema import FeatureSchema

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LoadedModel"]


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """``.predict(frame)``, and ``.predict_proba(frame)`` for classifiers, with the version's
    signature (``schema``), reference ``profile`` and registration ``record`` at hand."""

    info: VersionInfo
    native: Any
    runtime: str
    task: str
    classes: tuple[str, ...]
    schema: FeatureSchema
    profile: DatasetProfile
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def is_classifier(self) -> bool:
        return self.task == "classification"

    def _frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.schema.select(frame) if len(self.schema) else frame

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.asarray(self.native.predict(self._frame(frame)))
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        return out

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.is_classifier or not hasattr(self.native, "predict_proba"):
            raise ModelwardError(f"{self.info.ref} is a {self.task} model: it has no predict_proba()")
        return np.asarray(self.native.predict_proba(self._frame(frame)))

    def __repr__(self) -> str:
        return f"LoadedModel({self.info.ref}, runtime={self.runtime!r}, task={self.task!r})"
