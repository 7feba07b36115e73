"""A registered version, loaded and ready to predict on a DataFrame."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from modelward.drift.profile import DatasetProfile
from modelward.errors import ModelwardError
from modelward.registry.types import VersionInfo
from modelward.schema import FeatureSchema, Field

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

    def _frame(self, frame: pd.DataFrame) -> Any:
        return self.schema.model_input(frame)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """One prediction per row: a model that answers a list (or a tensor) per row gives an
        object array of those, never a 2-d array."""
        out = np.asarray(self.native.predict(self._frame(frame)))
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim > 1:
            rows = np.empty(len(out), dtype=object)
            rows[:] = list(out)
            out = rows
        return out

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.is_classifier or not hasattr(self.native, "predict_proba"):
            raise ModelwardError(f"{self.info.ref} is a {self.task} model: it has no predict_proba()")
        return np.asarray(self.native.predict_proba(self._frame(frame)))

    @cached_property
    def named_probability(self) -> tuple[str, int] | None:
        """(answer member, probability column) when registered with ``response={"probability_name"}``."""
        from modelward.registry.response import positive_probability

        return positive_probability(self.record, self.class_values) if self.is_classifier else None

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
        for f in self.schema.fields:  # lists and objects are not profiled: a small value of the type
            if f.name not in row and f.nested:
                row[f.name] = _blank(f)
        return pd.DataFrame([row])

    def warm(self) -> None:
        """Run one prediction so the first real request does not pay for lazy initialisation."""
        frame = self.warm_frame()
        self.predict(frame)
        if self.is_classifier and hasattr(self.native, "predict_proba"):
            self.predict_proba(frame)

    def __repr__(self) -> str:
        return f"LoadedModel({self.info.ref}, runtime={self.runtime!r}, task={self.task!r})"


def _blank(field: Field) -> Any:
    if field.type == "tensor":
        return np.zeros([max(d, 1) for d in field.shape or ()], dtype=field.dtype or "float64")
    return [] if field.type == "array" else None
