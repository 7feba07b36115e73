"""What the quickstart leaves behind: the stored promotion policy, the drift report and the model
card under the home folder, and the check of the audit chain."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from modelward.errors import ModelwardError
from modelward.quickstart.scenario import TARGET

if TYPE_CHECKING:
    from modelward.config import Settings

__all__ = ["set_policy", "verify_audit", "write_reports"]


def set_policy(
    settings: Settings,
    name: str,
    holdout: Path,
    folder: Path,
    *,
    auc_floor: float,
    steps: tuple[float, ...],
    step_seconds: float,
    min_requests: int,
    min_labels: int,
) -> None:
    """As ``modelward policy set NAME policy.yaml``: the gates (an AUC floor on the holdout, no
    regression against the champion) and the automatic rollout: the server's controller takes each new
    version through the gates into a canary that judges live AUC from the labels. Divergence is allowed,
    since the new version is meant to answer differently, and latency is judged only beyond 250 ms (a
    version just loaded on a busy laptop is slower for a while). Retraining starts on dataset drift or
    a live AUC under the floor (the server's alert rules judge the same), and runs the quickstart's
    retrain job with the fresh customers."""
    import json
    import sys

    import modelward

    body = (
        f"holdout: {holdout.resolve()}\nlabel: {TARGET}\n"
        f"metrics: {{auc: {{min: {auc_floor}}}}}\nregression: {{metric: auc, margin: 0.01}}\n"
        "rollout:\n  strategy: canary\n"
        f"  steps: [{', '.join(f'{s:g}' for s in steps)}]\n  step_duration: {step_seconds:g}\n"
        "  metric: roc_auc\n  max_divergence: 1.0\n  latency_slack_ms: 250\n"
        f"  min_requests: {min_requests}\n  min_labels: {min_requests}\n"
        "retrain:\n  drift: {windows: 1, window: 10m}\n"
        f"  performance: {{metric: auc, min: {auc_floor}, min_labels: {min_labels}, window: 10m}}\n"
        "  cooldown: 1h\n  timeout: 10m\n"
        "  command: "
        + json.dumps(
            [
                sys.executable,
                "-m",
                "modelward.quickstart.retrain_job",
                "--fresh",
                str((folder / "data" / "fresh.parquet").resolve()),
                "--folder",
                str(folder.resolve()),
            ]
        )
        + "\n"
    )
    (folder / "policy.yaml").write_text(body)
    modelward.set_policy(name, body, source="the quickstart's policy", settings=settings)


def write_reports(
    settings: Settings, name: str, v1: str, v2: str, window: float, folder: Path
) -> dict[str, str]:
    """v1's live drift over the last ``window`` seconds as HTML (``modelward drift NAME --html``) and
    v2's model card (``modelward card NAME:V --format html``), in ``folder``."""
    import modelward
    from modelward.drift.html import profile_histograms, render_html
    from modelward.files import write_text
    from modelward.governance.card import build_card, render_card
    from modelward.monitoring.live_drift import live_report, load_reference

    with modelward.open_registry(settings) as registry:
        reference = load_reference(registry, name, v1)
        live = live_report(registry, name, v1, window, reference=reference)
        if live.report is None or live.window is None:
            raise ModelwardError(f"no live profile of {name}:{v1} to report on")
        context = {
            "model": f"{name} version {v1}",
            "window": " to ".join(live.bounds),
            "rows": f"{live.rows:,} served rows",
        }
        html = render_html(
            live.report, profile_histograms(reference, live.window), title=f"Drift of {name}", context=context
        )
        card = render_card(build_card(registry, f"{name}:{v2}", actor=settings.resolved_actor), "html")
    return {
        "drift_report": str(write_text(folder / f"drift-{name}-v{v1}.html", html)),
        "model_card": str(write_text(folder / f"card-{name}-v{v2}.html", card)),
    }


def verify_audit(settings: Settings) -> int:
    """As ``modelward audit verify``: the chain and every version's pins; returns the event count."""
    import modelward
    from modelward.governance.pins import verify_pins

    with modelward.open_registry(settings) as registry:
        chain = registry.audit.verify()
        pins = verify_pins(registry.store)
    if not (chain.ok and pins.ok):
        raise ModelwardError(f"the audit chain does not verify: {chain.reason or pins.to_dict()}")
    return int(chain.events)
