"""Fairness audits of a registered version: on a data file it scores, or on its live traffic.

A data file (.csv or .parquet) is scored by the batch scorer (the server's validation, then the
version's predictions and probabilities); sensitive columns need not be model features, and the
label column is optional. Live traffic is the prediction log over a window (mirrored shadow rows and
failed predictions left out, a request id counted once, its latest row) joined by request id to the
feedback labels; group columns come from the logged inputs, or from a side file with a
``request_id`` column. Predictions and labels are compared as the version's classes (``1``, ``1.0``
and ``"1"`` are the same class); the selected class is the version's positive class (``register
--positive-class``; by default the second class).

Each audit returns a :class:`FairnessRun`; :func:`save_run` keeps it with the version in the
governance store (kind ``fairness``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from sqlalchemy import func, select

from modelward.errors import ConfigError, NotFound
from modelward.governance.fairness import FairnessReport, audit_fairness
from modelward.governance.reports import StoredReport, VersionReports
from modelward.registry.calibration import class_index
from modelward.routing.spec import SHADOW_ARM
from modelward.store import Store
from modelward.store.tables import feedback, predictions

if TYPE_CHECKING:
    import pandas as pd

    from modelward.registry import Registry
    from modelward.runtime import LoadedModel

__all__ = ["KIND", "FairnessRun", "audit_file", "audit_live", "read_table", "save_run", "stored_summary"]

KIND = "fairness"


@dataclass(frozen=True, slots=True)
class FairnessRun:
    """A fairness report of ``model`` version ``version``, and where its data came from."""

    model: str
    version: str
    report: FairnessReport
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, **self.report.to_dict(), "data": self.data}


def save_run(store: Store, run: FairnessRun, *, actor: str) -> StoredReport:
    """Keep the report with its version (the newest is what ``show`` and the card read)."""
    body = run.report.to_dict() | {"data": run.data}
    return VersionReports(store).save(run.model, run.version, KIND, body, actor=actor)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A whole .csv or .parquet file; ConfigError for a missing, unreadable or empty one."""
    import pandas as pd
    import pyarrow as pa

    source = Path(path).expanduser()
    if not source.is_file():
        raise ConfigError(f"data file {source} does not exist")
    suffix = source.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            frame = pd.read_parquet(source)
        elif suffix == ".csv":
            frame = pd.read_csv(source)
        else:
            raise ConfigError(f"{source}: use a .csv or .parquet file")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, pa.ArrowException) as exc:
        raise ConfigError(f"cannot read {source}: {exc}") from exc
    if frame.empty:
        raise ConfigError(f"{source} has no rows")
    return frame


def _require(frame: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = ", ".join(str(c) for c in frame.columns)
        raise ConfigError(f"{where} has no column {', '.join(repr(m) for m in missing)} (columns: {have})")


def _sensitive_names(sensitive: Sequence[str]) -> list[str]:
    names = [s.strip() for s in sensitive if s.strip()]
    if not names:
        raise ConfigError("name at least one sensitive column (--sensitive gender,age_band)")
    return list(dict.fromkeys(names))


def _positive(record: dict[str, Any], classes: Sequence[str]) -> str:
    response = record.get("response")
    if isinstance(response, dict) and response.get("positive_class") is not None:
        return str(response["positive_class"])
    if len(classes) < 2:
        raise ConfigError("the version has fewer than two classes: nothing to audit")
    return str(classes[1])


def _as_classes(values: Sequence[Any], classes: Sequence[str], what: str) -> list[str | None]:
    """Each value as the text of the class it is (None: missing); ConfigError names a stranger."""
    import pandas as pd

    out: list[str | None] = []
    for value in values:
        if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
            out.append(None)
            continue
        plain = value.item() if hasattr(value, "item") else value
        index = class_index(plain, classes)
        if index < 0:
            raise ConfigError(f"{what} {plain!r} is not a class of the model (classes: {', '.join(classes)})")
        out.append(classes[index])
    return out


def audit_file(
    registry: Registry,
    ref: str,
    path: str | os.PathLike[str],
    sensitive: Sequence[str],
    *,
    label: str | None = None,
    min_group: int = 30,
    bins: int = 4,
    model: LoadedModel | None = None,
) -> FairnessRun:
    """Score ``path`` with the version ``ref`` and audit its decisions across ``sensitive`` columns.
    ``model``: the version already loaded (``ref`` is then not looked up again)."""
    from modelward.registry.lineage import fingerprint_file
    from modelward.runtime import load_version
    from modelward.runtime.batch import score_file

    names = _sensitive_names(sensitive)
    frame = read_table(path)
    _require(frame, names + ([label] if label else []), Path(path).name)
    if model is None:
        model = load_version(registry, registry.resolve(ref))
    if not model.is_classifier:
        raise ConfigError(f"{model.info.ref} is a {model.task} model: fairness audits need a classifier")
    classes = list(model.classes)
    positive = _positive(model.record, classes)
    with tempfile.TemporaryDirectory(prefix="modelward-fairness-") as tmp:
        scored_path = Path(tmp) / "scored.parquet"
        score_file(model, path, scored_path)
        import pandas as pd

        scored = pd.read_parquet(scored_path)
    y_pred = _as_classes(scored["prediction"].tolist(), classes, "prediction")
    score_column = f"probability_{positive}"
    y_score = scored[score_column].to_numpy(dtype=np.float64) if score_column in scored.columns else None
    y_true = _as_classes(frame[label].tolist(), classes, f"label in {label!r}") if label else None
    report = audit_fairness(
        y_true,
        y_pred,
        frame[names],
        y_score=y_score,
        positive_label=positive,
        min_group=min_group,
        bins=bins,
    )
    data = {
        "source": "file",
        "path": str(Path(path).expanduser().resolve()),
        "rows": len(frame),
        "fingerprint": fingerprint_file(path),
        "label": label,
        "sensitive": names,
    }
    return FairnessRun(model.name, model.version, report, data)


def _logged(
    store: Store, name: str, since: float, until: float, version: str | None
) -> list[tuple[int, str, str, str, str, str | None]]:
    """(id, request id, version, inputs, outputs, label JSON) of the served rows in the window."""
    p = predictions
    query = (
        select(p.c.id, p.c.request_id, p.c.version, p.c.inputs, p.c.outputs, feedback.c.label)
        .select_from(p.outerjoin(feedback, feedback.c.request_id == p.c.request_id))
        .where(
            p.c.model == name,
            p.c.ts >= since,
            p.c.ts < until,
            p.c.error.is_(None),
            func.coalesce(p.c.arm, "primary") != SHADOW_ARM,
        )
        .order_by(p.c.id)
    )
    if version is not None:
        query = query.where(p.c.version == str(version))
    with store.read() as conn:
        rows = conn.execute(query).all()
    latest: dict[str, tuple[int, str, str, str, str, str | None]] = {}
    for r in rows:  # a request id logged twice counts once, as its latest row
        latest[str(r.request_id)] = (
            int(r.id),
            str(r.request_id),
            str(r.version),
            r.inputs,
            r.outputs,
            r.label,
        )
    return sorted(latest.values())


def audit_live(
    registry: Registry,
    name: str,
    window: float,
    sensitive: Sequence[str],
    *,
    version: str | None = None,
    groups_path: str | os.PathLike[str] | None = None,
    min_group: int = 30,
    bins: int = 4,
    now: float | None = None,
) -> FairnessRun:
    """Audit the traffic of ``name`` in the last ``window`` seconds (one version's: ``version``, or
    the only one that served then)."""
    import json

    import pandas as pd

    from modelward.feedback.calibrate import read_record

    names = _sensitive_names(sensitive)
    registry.model(name)  # NotFound for an unknown model, with its suggestion
    side = None
    if groups_path is not None:
        side = read_table(groups_path)
        _require(side, ["request_id", *names], Path(groups_path).name)
        side = side.assign(request_id=side["request_id"].astype(str)).drop_duplicates(
            "request_id", keep="last"
        )
    end = time.time() if now is None else now
    rows = _logged(registry.store, name, end - window, end, version)
    if not rows:
        which = f" version {version}" if version else ""
        raise NotFound(f"no served predictions of {name}{which} in the window")
    versions = sorted({r[2] for r in rows}, key=lambda v: (len(v), v))
    if len(versions) > 1:
        raise ConfigError(
            f"{name} served versions {', '.join(versions)} in the window: name one with --version"
        )
    chosen = versions[0]
    record = read_record(registry, registry.version(name, chosen)) or {}
    classes = [str(c) for c in record.get("classes") or ()]
    if record.get("task") != "classification" or len(classes) < 2:
        raise ConfigError(f"{name}:{chosen} is not a classifier: fairness audits need one")
    positive = _positive(record, classes)
    inputs = [orjson.loads(r[3]) for r in rows]
    outputs = [orjson.loads(r[4]) for r in rows]
    request_ids = [r[1] for r in rows]
    if side is not None:
        groups = pd.DataFrame({"request_id": request_ids}).merge(side[["request_id", *names]], how="left")
        groups = groups[names]
        where = f"{Path(groups_path or '').name} (joined by request_id)"
    else:
        groups = pd.DataFrame({n: [i.get(n) if isinstance(i, dict) else None for i in inputs] for n in names})
        absent = [n for n in names if groups[n].isna().all()]
        if absent:
            raise ConfigError(
                f"no logged input has {', '.join(repr(a) for a in absent)}: "
                "give the groups in a side file with --groups (request_id plus the columns)"
            )
        where = "logged inputs"
    y_pred = _as_classes([o.get("prediction") for o in outputs], classes, "logged prediction")
    probabilities = [
        o.get("probabilities") if isinstance(o.get("probabilities"), dict) else {} for o in outputs
    ]
    scores = [p.get(positive) for p in probabilities]
    y_score = None if any(s is None for s in scores) else np.asarray(scores, dtype=np.float64)
    labels = [None if r[5] is None else json.loads(r[5]) for r in rows]
    y_true = _as_classes(labels, classes, "feedback label")
    labelled = sum(v is not None for v in y_true)
    report = audit_fairness(
        y_true if labelled else None,
        y_pred,
        groups,
        y_score=y_score,
        positive_label=positive,
        min_group=min_group,
        bins=bins,
    )
    data = {
        "source": "live",
        "window_seconds": window,
        "since": end - window,
        "until": end,
        "rows": len(rows),
        "labelled": labelled,
        "groups_from": where,
        "sensitive": names,
    }
    return FairnessRun(name, chosen, report, data)


def stored_summary(store: Store, model: str, version: str) -> dict[str, Any] | None:
    """The newest stored fairness report of a version, cut to what ``show`` prints: when, from what
    data, and per feature the parity figures and the four-fifths verdict (None: never audited)."""
    stored = VersionReports(store).latest(model, version, KIND)
    if stored is None:
        return None
    body = stored.body
    data = body.get("data") or {}
    return {
        "created_at": stored.created_at,
        "actor": stored.actor,
        "source": data.get("source"),
        "rows": body.get("rows"),
        "labelled": body.get("labelled"),
        "features": [
            {
                "feature": f.get("feature"),
                "demographic_parity_difference": f.get("demographic_parity_difference"),
                "demographic_parity_ratio": f.get("demographic_parity_ratio"),
                "equalized_odds_difference": f.get("equalized_odds_difference"),
                "four_fifths": (f.get("four_fifths") or {}).get("passed"),
                "worst_gap": f.get("worst_gap"),
                "small_groups": f.get("small_groups") or [],
            }
            for f in body.get("features") or []
        ],
    }
