"""What a prediction answered: the rows each arm answered (:class:`Part`), put back in the request's
order (:class:`Outcome`); per-row request ids; labels as plain Python values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelward.serving.middleware import new_request_id
from modelward.serving.models import Served
from modelward.validation import Batch

__all__ = ["Outcome", "Part", "plain_labels", "row_ids"]


@dataclass(frozen=True, slots=True)
class Part:
    """The rows of a request that one arm answered."""

    served: Served
    arm: str
    rows: np.ndarray | None  # row indices into the request; None: every row
    labels: list[Any]
    probabilities: np.ndarray | None


@dataclass(frozen=True, slots=True)
class Outcome:
    request_ids: list[str]
    parts: list[Part]

    @property
    def served(self) -> Served:
        """The version that answered (the first part's when rows were split across arms)."""
        return self.parts[0].served

    @property
    def arm(self) -> str | None:
        return self.parts[0].arm if len(self.parts) == 1 else None

    @property
    def version(self) -> str | None:
        return self.parts[0].served.version if len(self.parts) == 1 else None

    @property
    def classes(self) -> list[Any]:
        part = self.parts[0]
        return part.served.model.class_values if part.probabilities is not None else []

    def _ordered(self, pick: Callable[[Part], Any]) -> list[Any]:
        if len(self.parts) == 1:
            return list(pick(self.parts[0]))
        out: list[Any] = [None] * len(self.request_ids)
        for part in self.parts:
            assert part.rows is not None  # noqa: S101 - split parts always carry their rows
            for i, v in zip(part.rows.tolist(), pick(part), strict=True):
                out[i] = v
        return out

    @property
    def labels(self) -> list[Any]:
        return self._ordered(lambda p: p.labels)

    @property
    def probabilities(self) -> np.ndarray | None:
        if self.parts[0].probabilities is None:
            return None
        if len(self.parts) == 1:
            return self.parts[0].probabilities
        rows = np.concatenate([p.rows for p in self.parts if p.rows is not None])
        stacked = np.concatenate([p.probabilities for p in self.parts if p.probabilities is not None])
        out = np.empty_like(stacked)
        out[rows] = stacked
        return out

    def row_arms(self) -> list[str]:
        return self._ordered(lambda p: [p.arm] * len(p.labels))

    def row_versions(self) -> list[str]:
        return self._ordered(lambda p: [p.served.version] * len(p.labels))


def row_ids(batch: Batch, header_id: str | None) -> list[str]:
    """Per-row request ids: the body's ``request_ids``; else one id (the body's ``request_id``, the
    ``X-Request-ID`` header, or a new one) for a single row, suffixed ``-<row>`` for several."""
    if batch.request_ids is not None:
        return list(batch.request_ids)
    base = batch.request_id or header_id or new_request_id()
    if batch.n_rows == 1:
        return [base]
    return [f"{base}-{i}" for i in range(batch.n_rows)]


def plain_labels(values: np.ndarray) -> list[Any]:
    """Labels as plain Python values (an object array may hold NumPy scalars; others convert at once)."""
    flat = np.asarray(values)
    if flat.ndim > 1 and len(flat) > 0 and flat.size != len(flat):  # a list per row
        return list(flat.tolist())
    flat = flat.reshape(-1)
    if flat.dtype != object:
        return flat.tolist()
    # NumPy scalars and arrays (a list, or a tensor, per row) as plain values
    return [v.tolist() if hasattr(v, "tolist") else v for v in flat.tolist()]
