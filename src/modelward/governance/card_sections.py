"""The sections of a model card, each read from where modelward keeps it.

Every function answers ``(data, None)`` or ``(None, why there is no data)``; the card assembles them
(:mod:`modelward.governance.card`). Reports of other governance modules (``validation``,
``fairness``) are read as stored JSON, defensively: an unexpected shape shows what is there and
never fails the card.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelward.errors import ModelwardError
from modelward.registry.federation import Federation
from modelward.registry.types import TAG_PREFIX

if TYPE_CHECKING:
    from modelward.drift.profile import DatasetProfile
    from modelward.governance.reports import StoredReport, VersionReports
    from modelward.registry import Registry, VersionInfo
    from modelward.store import Store

__all__ = [
    "SectionInputs",
    "calibration_section",
    "fairness_section",
    "gates_section",
    "history_section",
    "intended_use_section",
    "lineage_section",
    "live_section",
    "metrics_section",
    "profile_section",
]

Made = tuple[dict[str, Any] | None, str | None]


@dataclass(frozen=True, slots=True)
class SectionInputs:
    registry: Registry
    store: Store
    reports: VersionReports
    info: VersionInfo
    record: dict[str, Any] | None
    profile: DatasetProfile | None
    native: Any
    problems: list[str] = field(default_factory=list)


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def intended_use_section(inputs: SectionInputs) -> Made:
    info = inputs.info
    notes = inputs.reports.notes(info.name, info.version)
    if notes is None or (notes.intended_use is None and notes.limitations is None):
        return None, (
            "no intended use or limitations were recorded for this version; set them with "
            f"`modelward card edit {info.ref} --intended-use TEXT --limitations TEXT`"
        )
    return {
        "intended_use": notes.intended_use,
        "limitations": notes.limitations,
        "updated_by": notes.actor,
        "updated_at": iso(notes.updated_at),
    }, None


def lineage_section(inputs: SectionInputs) -> Made:
    tags, record = inputs.info.tags, inputs.record or {}
    lineage = {**tags, **(record.get("lineage") or {})}

    def tag(key: str) -> str | None:
        value = lineage.get(TAG_PREFIX + key)
        return None if value is None else str(value)

    federation = Federation.from_tags({k: str(v) for k, v in lineage.items()})
    if tag("dataset.sha256") is None and federation is None and not record:
        return None, "this version carries no lineage: it was not registered through modelward"
    dvc = None
    if tag("dvc.file") is not None:
        dvc = {
            "file": tag("dvc.file"),
            "path": tag("dvc.path"),
            "md5": tag("dvc.md5"),
            "remote": tag("dvc.remote"),
        }
    git = None
    if tag("git.commit") is not None:
        git = {"commit": tag("git.commit"), "branch": tag("git.branch"), "dirty": tag("git.dirty") == "true"}
    time_range = None
    if tag("dataset.time_column") is not None:
        time_range = {
            "column": tag("dataset.time_column"),
            "start": tag("dataset.time_start"),
            "end": tag("dataset.time_end"),
        }
    return {
        "dataset_sha256": tag("dataset.sha256"),
        "dataset_path": tag("dataset.path"),
        "dvc": dvc,
        "git": git,
        "rows": record.get("rows"),
        "features": list(record.get("features") or []),
        "target": record.get("target"),
        "time_range": time_range,
        "federation": None if federation is None else federation.to_dict(),
        "run_id": inputs.info.run_id,
    }, None


def profile_section(inputs: SectionInputs) -> Made:
    from modelward.drift.summary import profile_summary

    summary = profile_summary(inputs.profile, histograms=True)
    if summary is None:
        why = next((p for p in inputs.problems if "profile" in p), "no reference profile was recorded")
        return None, why
    return summary, None


def metrics_section(inputs: SectionInputs) -> Made:
    run_id = inputs.info.run_id or inputs.info.tags.get(TAG_PREFIX + "run_id")
    if not run_id:
        return None, "the version has no MLflow run, so no metrics were recorded"
    try:
        run = inputs.registry.client.get_run(run_id)
    except Exception as exc:  # MLflow raises several types for a run it cannot read
        return None, f"the run {run_id} cannot be read: {exc}"
    metrics = {str(k): float(v) for k, v in sorted((run.data.metrics or {}).items()) if math.isfinite(v)}
    if not metrics:
        return None, f"no metrics were logged on the run {run_id} (register with metrics= to record them)"
    return {"run_id": run_id, "metrics": metrics}, None


def _stored(report: StoredReport) -> dict[str, Any]:
    return {"created_at": iso(report.created_at), "actor": report.actor, "report_id": report.id}


def _readable(detail: dict[str, Any]) -> str | None:
    """A gate's detail as a reader wants it: ``key: value`` pairs, not a mapping's repr."""
    if not detail:
        return None
    return "; ".join(
        f"{k}: {v if isinstance(v, str | int | float) else json.dumps(v)}" for k, v in detail.items()
    )


def gates_section(inputs: SectionInputs) -> Made:
    from modelward.governance.gate_result import Validation

    info = inputs.info
    report = inputs.reports.latest(info.name, info.version, "validation")
    if report is None:
        return None, f"the promotion gates were not run on this version (`modelward validate {info.ref}`)"
    try:
        validation = Validation.from_dict(report.body)
    except (KeyError, TypeError, ValueError) as exc:
        return None, f"its newest validation report cannot be read ({exc}): `modelward validate {info.ref}`"
    return {
        **_stored(report),
        "passed": validation.passed,
        "against": validation.against,
        "holdout_rows": validation.holdout_rows,
        "gates": [
            {
                "name": g.name,
                "value": g.value,
                "threshold": g.threshold,
                "verdict": g.verdict,
                "detail": g.reason or _readable(g.detail),
            }
            for g in validation.gates
        ],
    }, None


def fairness_section(inputs: SectionInputs) -> Made:
    info = inputs.info
    report = inputs.reports.latest(info.name, info.version, "fairness")
    if report is None:
        return None, (
            f"no fairness audit was run on this version (`modelward fairness {info.ref} --data FILE "
            "--sensitive COLUMNS`)"
        )
    features = []
    for entry in report.body.get("features") or []:
        if not isinstance(entry, dict):
            continue
        groups = [g for g in entry.get("groups") or [] if isinstance(g, dict)]
        four_fifths = entry.get("four_fifths") if isinstance(entry.get("four_fifths"), dict) else None
        features.append(
            {
                "feature": entry.get("feature"),
                "groups": groups,
                "demographic_parity_difference": entry.get("demographic_parity_difference"),
                "demographic_parity_ratio": entry.get("demographic_parity_ratio"),
                "equalized_odds_difference": entry.get("equalized_odds_difference"),
                "four_fifths": four_fifths,
            }
        )
    if not features:
        return None, "the stored fairness report holds no sensitive feature"
    return {**_stored(report), "features": features}, None


def calibration_section(inputs: SectionInputs) -> Made:
    from modelward.feedback.calibrate import version_facts

    if inputs.info.task == "regression":
        return None, "calibration is measured for classifiers; this version is a regression model"
    try:
        facts = version_facts(inputs.registry, inputs.info.name, inputs.info.version)
    except ModelwardError as exc:
        return None, f"its calibration cannot be read: {exc}"
    if facts is None or facts.calibration is None:
        return (
            None,
            "no calibration was recorded (registered without a target column, or without probabilities)",
        )
    return facts.calibration.to_dict(), None


def live_section(inputs: SectionInputs, window: float, now: float) -> Made:
    from modelward.feedback import performance_report
    from modelward.monitoring.alerts import AlertCenter
    from modelward.monitoring.live_drift import live_report, live_versions

    info, since = inputs.info, now - window
    rows = live_versions(inputs.store, info.name, since=since, until=now).get(info.version, 0)
    drift = None
    if rows and inputs.profile is not None:
        live = live_report(
            inputs.registry, info.name, info.version, window, reference=inputs.profile, now=now
        )
        if live.report is not None:
            d = live.report
            drift = {
                "dataset_drift": d.dataset_drift,
                "share_drifted": d.share_drifted,
                "threshold_share": d.threshold_share,
                "drifted_features": list(d.drifted_features),
                "prediction_drift": d.prediction_drift,
            }
    performance = None
    report = performance_report(inputs.registry, info.name, since=since, until=now, version=info.version)
    group = report.of_version(info.version)
    if group is not None and group.n_predictions:
        performance = {
            "n_predictions": group.n_predictions,
            "n_labelled": group.n_labelled,
            "coverage": group.coverage,
            "metrics": {k: m.value for k, m in group.metrics.items() if m.value is not None},
            "estimated": {
                k: {"value": e.value, "trusted": e.trusted}
                for k, e in group.estimated.items()
                if e.value is not None
            },
        }
    alerts = [
        {
            "rule": a.rule,
            "severity": a.severity,
            "subject": a.subject,
            "message": a.message,
            "since": iso(a.first_fired_at),
        }
        for a in AlertCenter(inputs.store, ()).active(info.name)
    ]
    if not rows and performance is None and not alerts:
        days = window / 86_400
        return None, f"no serving data for this version in the last {days:g} day(s): it has not been served"
    return {
        "since": iso(since),
        "until": iso(now),
        "window_seconds": window,
        "rows": rows,
        "drift": drift,
        "performance": performance,
        "alerts": alerts,
    }, None


def history_section(inputs: SectionInputs) -> Made:
    info = inputs.info
    events = []
    for e in inputs.registry.audit.events(subject=info.name):
        payload = e.payload
        displaced = e.action in {"promote", "rollback"} and payload.get("from") == info.version
        if e.subject != info.ref and not displaced:
            continue
        action = e.action if e.subject == info.ref else f"{e.action} of {e.subject} (replaced this version)"
        events.append(
            {
                "seq": e.seq,
                "ts": e.ts,
                "action": action,
                "actor": e.actor,
                "alias": payload.get("alias"),
                "from": payload.get("from"),
                "to": payload.get("to"),
                "reason": payload.get("reason"),
                "hash": e.hash,
            }
        )
    if not events:
        return None, "the audit chain holds no event about this version"
    return {"events": events}, None
