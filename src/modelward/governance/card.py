"""A model card: one document a reviewer can read about a version, built from what modelward knows.

Sections, in order: intended use and limitations (the version's notes), training data lineage, the
reference profile, evaluation metrics (the registration run's), promotion gate results and fairness
results (the newest ``validation`` and ``fairness`` reports kept with the version), calibration,
global feature importance, live status (traffic, drift, live and estimated performance, firing
alerts) and the version's history from the audit chain. A section without data carries ``missing``,
a sentence saying so plainly, and no placeholder figures.

:func:`build_card` reads; :func:`refresh_card` also stores the card (Markdown, HTML and JSON) as
artifacts of the version's registration run, beside its reference profile, and is called on every
promotion. The run's other files are not pinned as a folder (only the profile and the registration
record are, one by one), so storing the card changes no integrity check. Rendering lives in
:mod:`modelward.governance.card_html` and :mod:`modelward.governance.card_md`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelward.errors import ConfigError, ModelwardError
from modelward.governance.card_importance import importance_section
from modelward.governance.card_sections import (
    SectionInputs,
    calibration_section,
    fairness_section,
    gates_section,
    history_section,
    intended_use_section,
    lineage_section,
    live_section,
    metrics_section,
    profile_section,
)
from modelward.governance.reports import VersionReports
from modelward.registry.types import TAG_PREFIX

if TYPE_CHECKING:
    import pandas as pd

    from modelward.registry import Registry, VersionInfo
    from modelward.store import Store

__all__ = [
    "CARD_FORMATS",
    "DEFAULT_LIVE_WINDOW",
    "NOTES_ACTION",
    "CardSection",
    "ModelCard",
    "build_card",
    "edit_notes",
    "refresh_card",
    "render_card",
    "stored_card",
]

log = logging.getLogger(__name__)

CARD_FORMATS = ("md", "html", "json")
DEFAULT_LIVE_WINDOW = 7 * 86_400.0
NOTES_ACTION = "notes"
CARD_FOLDER = "card"


@dataclass(frozen=True, slots=True)
class CardSection:
    """One section; ``data`` is None exactly when there is nothing to show, and ``missing`` says why."""

    key: str
    title: str
    data: dict[str, Any] | None
    missing: str | None = None

    @property
    def available(self) -> bool:
        return self.data is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "available": self.available,
            "missing": self.missing,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class ModelCard:
    model: str
    version: str
    aliases: tuple[str, ...]
    description: str
    task: str | None
    model_class: str | None
    flavor: str | None
    created_at: str | None
    generated_at: str
    generated_by: str
    sections: tuple[CardSection, ...]

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}"

    def section(self, key: str) -> CardSection:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "aliases": list(self.aliases),
            "description": self.description,
            "task": self.task,
            "model_class": self.model_class,
            "flavor": self.flavor,
            "created_at": self.created_at,
            "generated_at": self.generated_at,
            "generated_by": self.generated_by,
            "sections": [s.to_dict() for s in self.sections],
        }


def _section(key: str, title: str, made: tuple[dict[str, Any] | None, str | None]) -> CardSection:
    data, missing = made
    return CardSection(key, title, data, None if data is not None else (missing or "no data"))


def _inputs(registry: Registry, store: Store, info: VersionInfo, load_model: bool) -> SectionInputs:
    """The version's record, reference profile and native model, each verified against its pins."""
    from modelward.feedback.calibrate import read_record
    from modelward.monitoring.live_drift import load_reference

    problems: list[str] = []
    native: Any = None
    record: dict[str, Any] | None = None
    profile = None
    if load_model:
        from modelward.runtime import load_version

        try:
            loaded = load_version(registry, info)
            native, record, profile = loaded.native, loaded.record, loaded.profile
        except ModelwardError as exc:
            problems.append(f"the model does not load: {exc}")
    if record is None:
        try:
            record = read_record(registry, info)
        except ModelwardError as exc:
            problems.append(f"its registration record cannot be read: {exc}")
    if profile is None:
        try:
            profile = load_reference(registry, info.name, info.version)
        except ModelwardError as exc:
            problems.append(f"its reference profile cannot be read: {exc}")
    return SectionInputs(registry, store, VersionReports(store), info, record, profile, native, problems)


def build_card(
    registry: Registry,
    ref: str | VersionInfo,
    *,
    actor: str,
    store: Store | None = None,
    data: pd.DataFrame | None = None,
    label: str | None = None,
    live_window: float = DEFAULT_LIVE_WINDOW,
    now: float | None = None,
    load_model: bool = True,
) -> ModelCard:
    """The card of ``ref`` (``name``, ``name@alias``, ``name:version`` or a resolved version).

    With ``data`` (a labelled holdout; ``label`` its label column) importance is permutation
    importance on it; otherwise the model's own importances, else a stored ``importance`` report.
    ``load_model=False`` skips loading the model (no model-own importance)."""
    if data is not None and label is None:
        raise ConfigError("importance on a holdout needs its label column (--label)")
    if not live_window > 0:
        raise ConfigError(f"the live window must be positive, not {live_window} s")
    info = registry.resolve(ref) if isinstance(ref, str) else ref
    store = store or registry.store
    now = time.time() if now is None else now
    inputs = _inputs(registry, store, info, load_model or data is not None)
    sections = (
        _section("intended_use", "Intended use and limitations", intended_use_section(inputs)),
        _section("lineage", "Training data lineage", lineage_section(inputs)),
        _section("reference_profile", "Reference profile", profile_section(inputs)),
        _section("metrics", "Evaluation metrics", metrics_section(inputs)),
        _section("gates", "Promotion gates", gates_section(inputs)),
        _section("fairness", "Fairness", fairness_section(inputs)),
        _section("calibration", "Calibration", calibration_section(inputs)),
        _section("importance", "Global feature importance", importance_section(inputs, data, label)),
        _section("live", "Live status", live_section(inputs, live_window, now)),
        _section("history", "History", history_section(inputs)),
    )
    return ModelCard(
        model=info.name,
        version=info.version,
        aliases=info.aliases,
        description=info.description,
        task=info.task,
        model_class=info.model_class,
        flavor=info.flavor,
        created_at=info.created_at.isoformat() if info.created_at else None,
        generated_at=datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        generated_by=actor,
        sections=sections,
    )


def render_card(card: ModelCard, fmt: str) -> str:
    """The card as ``md``, ``html`` or ``json`` text."""
    if fmt == "json":
        import json

        return json.dumps(card.to_dict(), indent=2, sort_keys=False, allow_nan=False, default=str) + "\n"
    if fmt == "md":
        from modelward.governance.card_md import render_markdown

        return render_markdown(card)
    if fmt == "html":
        from modelward.governance.card_html import render_html

        return render_html(card)
    raise ConfigError(f"unknown card format '{fmt}' (known: {', '.join(CARD_FORMATS)})")


def refresh_card(registry: Registry, store: Store, name: str, version: str, actor: str) -> ModelCard:
    """Build the card of ``name:version`` and store it (card.md, card.html, card.json) with the
    version, under its registration run's ``modelward/`` folder; called after every promotion."""
    info = registry.version(name, version)
    card = build_card(registry, info, actor=actor, store=store)
    run_id = info.tags.get(TAG_PREFIX + "run_id")
    folder = info.tags.get(TAG_PREFIX + "artifacts")
    if not run_id or not folder:
        raise ConfigError(f"{info.ref} was not registered through modelward: it has no artifact folder")
    for fmt in CARD_FORMATS:
        registry.client.log_text(run_id, render_card(card, fmt), f"{folder}/{CARD_FOLDER}/card.{fmt}")
    return card


def stored_card(registry: Registry, info: VersionInfo, fmt: str) -> str | None:
    """The card stored by :func:`refresh_card` (None when the version has none yet)."""
    import tempfile
    from pathlib import Path

    run_id = info.tags.get(TAG_PREFIX + "run_id")
    folder = info.tags.get(TAG_PREFIX + "artifacts")
    if not run_id or not folder or fmt not in CARD_FORMATS:
        return None
    with tempfile.TemporaryDirectory(prefix="modelward-card-") as tmp:
        try:
            path = registry.client.download_artifacts(run_id, f"{folder}/{CARD_FOLDER}/card.{fmt}", tmp)
        except Exception:  # MLflow raises several types for a missing artifact: no card stored yet
            return None
        return Path(path).read_text("utf-8")


def edit_notes(
    registry: Registry,
    ref: str,
    *,
    actor: str,
    intended_use: str | None = None,
    limitations: str | None = None,
) -> dict[str, Any]:
    """Set a version's intended use and/or limitations; the change goes into the audit chain."""
    if intended_use is None and limitations is None:
        raise ConfigError("nothing to change: give --intended-use and/or --limitations")
    info = registry.resolve(ref)
    notes = VersionReports(registry.store).set_notes(
        info.name, info.version, actor=actor, intended_use=intended_use, limitations=limitations
    )
    changed = {
        k: v for k, v in (("intended_use", intended_use), ("limitations", limitations)) if v is not None
    }
    registry.audit.append(NOTES_ACTION, info.ref, changed, actor=actor)
    return {
        "model": info.name,
        "version": info.version,
        "intended_use": notes.intended_use,
        "limitations": notes.limitations,
        "updated_by": notes.actor,
    }
