"""A model's page, as plain data and SVG: traffic, latency and errors per arm over time, drift per
feature as a heat map with a chosen feature's histograms, live and label-free performance per
version over time, the A/B report, shadow agreement, alert history and the versions."""

from __future__ import annotations

import html
import logging
import threading
import time
from typing import Any

from modelward.drift.summary import feature_histogram
from modelward.errors import ModelwardError
from modelward.feedback.abreport import deployment_ab_report
from modelward.feedback.performance import PerformanceReport
from modelward.monitoring.alerts import AlertCenter
from modelward.monitoring.window_stats import shadow_agreement
from modelward.registry import DEFAULT_ALIAS
from modelward.ui.board import PERFORMANCE_ROWS, Board
from modelward.ui.charts import heat_map, histogram, line_chart
from modelward.ui.series import drift_map, slots, traffic_series

__all__ = ["WARM_WINDOWS", "WINDOWS", "model_page", "warm", "warm_in_background"]

WINDOWS = {"15m": 900.0, "1h": 3600.0, "6h": 21_600.0, "1d": 86_400.0}
COMPARE_WINDOW = 900.0
"""The A/B report and shadow agreement read the last fifteen minutes."""
PERFORMANCE_SLOTS = 6
WARM_WINDOWS = ("1h", "1d")
"""The model page's windows read once at start-up (:func:`warm`): the default and the longest."""

log = logging.getLogger("modelward.ui")


def _performance(board: Board, name: str, window: float, now: float) -> dict[str, str]:
    s = slots(window, now, PERFORMANCE_SLOTS)
    live: dict[str, dict[str, list[float | None]]] = {}
    estimated: dict[str, dict[str, list[float | None]]] = {}
    rows = max(200, PERFORMANCE_ROWS // PERFORMANCE_SLOTS)
    for i, start in enumerate(s.starts):
        end = start + s.seconds
        key = ("performance", name, f"{s.seconds:g}", f"{start:.0f}")

        def read(start: float = start, end: float = end) -> PerformanceReport:
            return board.performance(name, start, end, rows)

        report = board.slot(key, end, read, stale=True)  # labels arrive late anyway
        for group in report.versions:
            for out, found in ((live, group.metrics), (estimated, group.estimated)):
                for metric, m in found.items():
                    line = out.setdefault(metric, {}).setdefault(f"v{group.version}", [None] * s.count)
                    line[i] = m.value
    charts = {}
    for title, out in (("live", live), ("estimated (label-free)", estimated)):
        for metric, series in list(out.items())[:2]:
            charts[f"{metric} {title}"] = line_chart(f"{metric}, {title}", s.starts, series)
    return {k: v for k, v in charts.items() if v}


def _figure(caption: str, svg: str) -> str:
    if not svg:
        return ""
    return f'<figure class="plot"><figcaption>{html.escape(caption)}</figcaption>{svg}</figure>'


def model_page(
    board: Board, name: str, *, window: str = "1h", feature: str | None = None, now: float | None = None
) -> dict[str, Any]:
    """Everything the model page shows; ModelNotFound for an unknown model."""
    now = time.time() if now is None else now
    info = board.model(name)
    seconds = WINDOWS.get(window, WINDOWS["1h"])
    s = slots(seconds, now)
    spec, revision = board.spec(name)
    traffic = traffic_series(board.store, name, s, keep=board.slot)
    charts = {
        "traffic": line_chart("requests per second, per arm", s.starts, traffic.rate, unit="/s"),
        "p50": line_chart("p50 latency per arm (ms)", s.starts, traffic.p50, unit=" ms"),
        "p95": line_chart("p95 latency per arm (ms)", s.starts, traffic.p95, unit=" ms"),
        "errors": line_chart("share of failed requests per arm", s.starts, traffic.errors),
    }
    version = info.aliases.get(DEFAULT_ALIAS) or info.latest_version
    drift: dict[str, Any] = {"version": version, "features": [], "drifted": (), "map": "", "hist": {}}
    if version is not None:
        try:
            reference = board.reference(name, version)
        except ModelwardError as exc:
            drift["problem"] = str(exc)
        else:
            dm = drift_map(board.store, reference, name, version, s, keep=board.slot)
            names = list(reference.features)
            first = [*dm.drifted, *names]
            chosen = feature if feature in reference.features else (first[0] if first else None)
            drift.update(
                features=names,
                drifted=dm.drifted,
                chosen=chosen,
                map=heat_map(f"drift per feature of v{version} (red: drifted)", dm.times, dm.cells),
            )
            if chosen is not None:
                ref_h = feature_histogram(reference.features[chosen])
                current = dm.current
                cur_h = feature_histogram(current.features[chosen]) if current else {"bins": [], "counts": []}
                drift["hist"] = {
                    "reference": _figure(
                        f"{chosen}: reference",
                        histogram(f"reference: {chosen}", ref_h["bins"], ref_h["counts"]),
                    ),
                    "current": _figure(
                        f"{chosen}: served in the window",
                        histogram(f"current: {chosen}", cur_h["bins"], cur_h["counts"]),
                    ),
                }
    # The A/B report and the shadow agreement join the log with itself and with the labels: read in
    # the background, the page shows their newest answer (or says it is being computed).
    ab: dict[str, Any] | None = None
    ab_pending = False
    if spec.strategy != "single":
        ab, ab_pending = board.later(
            ("ab", name),
            lambda: deployment_ab_report(
                board.store,
                name,
                since=now - COMPARE_WINDOW,
                until=now,
                deployments=board.registry.deployments,
            ).to_dict(),
            15.0,
        )
    shadow: dict[str, Any] | None = None
    shadow_pending = False
    if spec.shadow is not None:
        shadow, shadow_pending = board.later(
            ("shadow", name),
            lambda: shadow_agreement(board.store, name, now - COMPARE_WINDOW, now).to_dict(),
            15.0,
        )
    return {
        "info": info,
        "window": window if window in WINDOWS else "1h",
        "windows": list(WINDOWS),
        "spec": spec,
        "revision": revision,
        "summary": spec.describe(),
        "charts": {k: v for k, v in charts.items() if v},
        "sampled": traffic.sampled,
        "drift": drift,
        "performance": _performance(board, name, seconds, now),
        "ab": ab,
        "ab_pending": ab_pending and ab is None,
        "shadow": shadow,
        "shadow_pending": shadow_pending and shadow is None,
        "alerts": [e.to_dict() for e in AlertCenter(board.store, ()).history(limit=30, model=name)],
        "versions": board.versions(name),
    }


def warm(board: Board, windows: tuple[str, ...] = WARM_WINDOWS) -> None:
    """Read every page once, so that the first person to open one does not wait for what is read once
    and kept: MLflow's client and modules, each served version's reference profile and facts, and
    the time slots that have ended (not the newest: traffic logged after start-up must show on the
    first view). Sets ``board.warmed`` when done (also on failure)."""
    try:
        with board.warming():
            board.overview()
            for info in board.models():
                for window in windows:
                    model_page(board, info.name, window=window)
    except Exception:  # a page that fails here fails again, with its message, when it is opened
        log.warning("dashboard: reading the pages at start-up failed", exc_info=True)
    finally:
        board.warmed.set()


def warm_in_background(board: Board) -> threading.Thread:
    """:func:`warm` in a thread of its own: the server answers meanwhile (a page asked for in the
    meantime waits only for the reads it shares with the warm-up, which are not done twice)."""
    thread = threading.Thread(target=warm, args=(board,), name="modelward-ui-warm", daemon=True)
    thread.start()
    return thread
