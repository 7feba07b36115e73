"""A registered version, loaded and ready to predict on a DataFrame."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
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
    example: dict[str, Any] | None = None  # MLflow input example, pandas "split" orient

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

    @cached_property
    def class_values(self) -> list[Any]:
        """The classes as the model returns them (ints stay ints), as plain Python values."""
        raw = getattr(self.native, "classes_", None)
        if raw is None:
            return list(self.classes)
        return [v.item() if hasattr(v, "item") else v for v in raw]

    def warm_frame(self) -> pd.DataFrame:
        """Rows to warm the model with: its input example, else one typical row from the profile."""
        import pandas as pd

        if self.example is not None:
            return pd.DataFrame(self.example["data"], columns=self.example["columns"])
        row: dict[str, Any] = {}
        for name, feature in self.profile.features.items():
            if feature.kind == "numeric":
                row[name] = feature.mean if feature.mean is not None else 0.0
            else:
                row[name] = max(feature.categories, key=lambda c: feature.categories[c], default=None)
        return pd.DataFrame([row])

    def warm(self) -> None:
        """Run one prediction so the first real request does not pay for lazy initialisation."""
        frame = self.warm_frame()
        self.predict(frame)
        if self.is_classifier and hasattr(self.native, "predict_proba"):
            self.predict_proba(frame)

    def __repr__(self) -> str:
        return f"LoadedModel({self.info.ref}, runtime={self.runtime!r}, task={self.task!r})"
