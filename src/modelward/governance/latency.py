"""The latency gate's measurement: p95 of single-row calls to the runtime the server would use.

The version is prepared exactly as the server prepares it (:func:`modelward.runtime.predictor.prepare`:
compiled to ONNX or a booster's fast path when it converts and agrees, else native), and each sample
row goes through the server's validation and that predictor, one row per call, as a request of one
row does. HTTP and the network are not part of the figure.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelward.runtime.model import LoadedModel
from modelward.validation import validate_columns

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LatencySample", "single_row_latency"]

_WARM_CALLS = 5


class LatencySample:
    """Per-call seconds of ``rows`` single-row calls on ``runtime``."""

    def __init__(self, runtime: str, seconds: np.ndarray) -> None:
        self.runtime = runtime
        self.seconds = seconds

    @property
    def rows(self) -> int:
        return len(self.seconds)

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.seconds, q) * 1000.0)


def single_row_latency(
    model: LoadedModel,
    rows: pd.DataFrame | None,
    *,
    sample: int,
    compile: bool = True,
    cache_dir: Path | None = None,
    digest: str | None = None,
) -> LatencySample:
    """Time ``sample`` single-row calls; rows come from ``rows`` (the holdout) or, without it, from
    the version's reference profile (:func:`modelward.runtime.compiled.sample_frame`)."""
    from modelward.runtime.compiled import sample_frame
    from modelward.runtime.predictor import prepare

    predictor = prepare(model, compile=compile, cache_dir=cache_dir, digest=digest)
    if rows is None or len(rows) == 0:
        rows = sample_frame(model.profile, model.schema, rows=sample)
    elif len(rows) > sample:
        rows = rows.sample(n=sample, random_state=0)
    names = [f.name for f in model.schema.fields if f.name in rows.columns]
    records = [{n: rows[n].iloc[i : i + 1].to_numpy() for n in names} for i in range(len(rows))]
    for record in records[:_WARM_CALLS]:
        predictor.predict(validate_columns(record, model.schema).columns)
    seconds = np.empty(len(records), dtype=np.float64)
    clock = time.perf_counter
    for i, record in enumerate(records):
        started = clock()
        predictor.predict(validate_columns(record, model.schema).columns)
        seconds[i] = clock() - started
    return LatencySample(predictor.runtime, seconds)
