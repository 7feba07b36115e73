"""One pass over a model's logged predictions in a time window, joined to their labels.

Which rows count (docs/feedback.md, "Which predictions count"):

- mirrored traffic (``arm = 'shadow'``) never reached a client: left out, and never joined;
- a request id logged more than once (a client reusing ids) counts once, as its latest row that
  reached a client (highest id); an older row is left out even when it falls in the window;
- a request whose latest row failed (``error`` set) has no output: it is counted in ``errors`` and
  left out of everything else (the same rule as the A/B report's);
- a NULL arm (rows logged before routing existed) is the arm ``"primary"``.

Labels join by request id at query time, so a label stored before its prediction was logged (an
orphan) joins as soon as the prediction is there. Rows are streamed newest first, ``_CHUNK`` at a
time, and kept as compact columns per (version, arm).
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.sql import ColumnElement

from modelward.registry.calibration import class_index
from modelward.routing.spec import SHADOW_ARM
from modelward.store import Store
from modelward.store.tables import feedback, predictions

__all__ = ["Group", "Window", "natural_classes", "read_window"]

_CHUNK = 20_000
PRIMARY = "primary"


def natural_classes(keys: list[str]) -> tuple[str, ...]:
    """Class names in the order a model without a record would have them: numerically when they are
    all numbers (as scikit-learn sorts integer classes), else as text."""
    try:
        return tuple(sorted(keys, key=float))
    except ValueError:
        return tuple(sorted(keys))


@dataclass
class Group:
    """The rows of one (version, arm): predictions of every row, labels where joined."""

    version: str
    arm: str
    task: str  # classification | regression
    classes: tuple[str, ...] = ()
    n: int = 0
    predicted: array[float] = field(default_factory=lambda: array("d"))  # class index or value; NaN: none
    probabilities: array[float] = field(default_factory=lambda: array("d"))  # n x len(classes), flat
    label_rows: list[int] = field(default_factory=list)  # row numbers that have a label
    labels: list[Any] = field(default_factory=list)  # the decoded label of each labelled row
    values: list[float | None] = field(default_factory=list)  # its numeric form, when stored
    lookup: dict[tuple[type, Any], int] = field(default_factory=dict)  # logged prediction -> class index

    @property
    def n_labelled(self) -> int:
        return len(self.label_rows)


@dataclass
class Window:
    model: str
    since: float | None
    until: float | None
    groups: dict[tuple[str, str], Group]
    errors: int
    truncated: bool


def _conditions(model: str, since: float | None, until: float | None) -> list[ColumnElement[bool]]:
    p = predictions
    out: list[ColumnElement[bool]] = [p.c.model == model]
    if since is not None:
        out.append(p.c.ts >= since)
    if until is not None:
        out.append(p.c.ts < until)
    return out


def _served(table: Any) -> ColumnElement[bool]:
    return func.coalesce(table.c.arm, PRIMARY) != SHADOW_ARM


def _add(group: Group, outputs: dict[str, Any]) -> None:
    prediction = outputs.get("prediction")
    if group.task == "classification":
        probs = outputs.get("probabilities")
        probs = probs if isinstance(probs, dict) else {}
        append = group.probabilities.append
        for c in group.classes:
            v = probs.get(c)
            append(float(v) if isinstance(v, int | float) else math.nan)
        key = (type(prediction), prediction)
        index = group.lookup.get(key)
        if index is None:
            index = class_index(prediction, group.classes) if prediction is not None else -1
            if len(group.lookup) < 1_000:
                group.lookup[key] = index
        group.predicted.append(float(index) if index >= 0 else math.nan)
    else:
        ok = isinstance(prediction, int | float) and not isinstance(prediction, bool)
        group.predicted.append(float(prediction) if ok else math.nan)  # type: ignore[arg-type]
    group.n += 1


def read_window(
    store: Store,
    model: str,
    *,
    since: float | None = None,
    until: float | None = None,
    version: str | None = None,
    arm: str | None = None,
    describe: Callable[[str], tuple[str, tuple[str, ...]] | None] = lambda _v: None,
    max_rows: int | None = None,
) -> Window:
    """Read the window; ``describe(version)`` gives a version's (task, classes) when it is known
    (from its registration record), else they are inferred from the first logged row.

    One pass, newest rows first, so that ``max_rows`` keeps the newest rows (``truncated`` then
    says so; failed rows are counted among the rows read)."""
    p, later = predictions, predictions.alias("later")
    superseded = (
        select(later.c.id)
        .where(later.c.request_id == p.c.request_id, later.c.id > p.c.id, _served(later))
        .exists()
    )
    where = [*_conditions(model, since, until), _served(p), ~superseded]
    if version is not None:
        where.append(p.c.version == str(version))
    if arm is not None:
        where.append(func.coalesce(p.c.arm, PRIMARY) == arm)
    columns = (p.c.id, p.c.version, p.c.arm, p.c.outputs, p.c.error, feedback.c.label, feedback.c.value)
    joined = p.outerjoin(feedback, feedback.c.request_id == p.c.request_id)
    groups: dict[tuple[str, str], Group] = {}
    errors = read = 0
    truncated = False
    # One streamed query: paging by id would make SQLite re-evaluate the window for every page.
    # Newest first along the (model, ts) index, so max_rows keeps the newest rows without a sort.
    query = select(*columns).select_from(joined).where(*where).order_by(p.c.ts.desc())
    with store.read() as conn:
        # A bounded read fetches about what it keeps: a first chunk of 20,000 rows would read (and
        # join, and check for later rows) every row of a busy window to keep the newest few hundred.
        chunk = _CHUNK if max_rows is None else min(_CHUNK, max_rows + 64)
        result = conn.execution_options(yield_per=chunk).execute(query)
        for row in result:
            if row.error is not None:
                errors += 1
                continue
            if max_rows is not None and read >= max_rows:
                truncated = True
                break
            read += 1
            outputs = orjson.loads(row.outputs)
            outputs = outputs if isinstance(outputs, dict) else {}
            key = (str(row.version), str(row.arm or PRIMARY))
            group = groups.get(key)
            if group is None:
                group = groups[key] = _new_group(key, outputs, describe)
            if row.label is not None:
                group.label_rows.append(group.n)
                group.labels.append(json.loads(row.label))
                group.values.append(None if row.value is None else float(row.value))
            _add(group, outputs)
        result.close()
    return Window(model, since, until, groups, errors, truncated)


def _new_group(
    key: tuple[str, str], outputs: Any, describe: Callable[[str], tuple[str, tuple[str, ...]] | None]
) -> Group:
    known = describe(key[0])
    if known is not None:
        task, classes = known
        return Group(key[0], key[1], task, tuple(classes) if task == "classification" else ())
    probs = outputs.get("probabilities") if isinstance(outputs, dict) else None
    if isinstance(probs, dict) and probs:
        return Group(key[0], key[1], "classification", natural_classes([str(k) for k in probs]))
    return Group(key[0], key[1], "regression")
