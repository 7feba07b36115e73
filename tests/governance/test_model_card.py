"""`modelward card`: the card of a real registered churn model, read back and checked against the
registry, a stored fairness report and the audit chain; Markdown, JSON, notes and empty sections."""

from __future__ import annotations

import json
import os
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    selection_rate,
)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from tests.conftest import make_pipeline

from modelward.cli import main
from modelward.governance.card import stored_card
from modelward.governance.reports import VersionReports
from modelward.registry import Registry, register_model

CHROMIUM = Path("/usr/bin/chromium")
SECTIONS = [
    "intended_use",
    "lineage",
    "reference_profile",
    "metrics",
    "gates",
    "fairness",
    "calibration",
    "importance",
    "live",
    "history",
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _fairness_body(model: Any, holdout: pd.DataFrame) -> dict[str, Any]:
    """A report of the fairness module's shape, every figure from Fairlearn on the holdout."""
    x, y = holdout.drop(columns=["churn"]), holdout["churn"]
    predicted = model.predict(x)
    sensitive = holdout["gender"]
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "accuracy": accuracy_score},
        y_true=y,
        y_pred=predicted,
        sensitive_features=sensitive,
    )
    rates = frame.by_group["selection_rate"]
    groups = [
        {
            "group": str(g),
            "count": int((sensitive == g).sum()),
            "selection_rate": float(rates[g]),
            "accuracy": float(frame.by_group["accuracy"][g]),
            "tpr": None,
            "fpr": None,
            "auc": None,
            "small": bool((sensitive == g).sum() < 30),
        }
        for g in rates.index
    ]
    return {
        "features": [
            {
                "feature": "gender",
                "groups": groups,
                "demographic_parity_difference": float(
                    demographic_parity_difference(y, predicted, sensitive_features=sensitive)
                ),
                "demographic_parity_ratio": float(
                    demographic_parity_ratio(y, predicted, sensitive_features=sensitive)
                ),
                "equalized_odds_difference": float(
                    equalized_odds_difference(y, predicted, sensitive_features=sensitive)
                ),
                "four_fifths": {
                    "passed": bool(rates.min() / rates.max() >= 0.8),
                    "worst_group": str(rates.idxmin()),
                    "best_group": str(rates.idxmax()),
                    "ratio": float(rates.min() / rates.max()),
                },
            }
        ]
    }


@pytest.fixture
def carded(
    registry: Registry, churn_frame: pd.DataFrame, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> dict[str, Any]:
    """churn:1 trained on 1,500 rows with its holdout AUC and accuracy logged, notes, a fairness and a
    validation report stored, promoted through the CLI with a reason; churn:2 registered bare."""
    train, holdout = churn_frame.iloc[:1500], churn_frame.iloc[1500:].reset_index(drop=True)
    model = make_pipeline(LogisticRegression(max_iter=500)).fit(train.drop(columns=["churn"]), train["churn"])
    x, y = holdout.drop(columns=["churn"]), holdout["churn"]
    metrics = {
        "roc_auc": float(roc_auc_score(y, model.predict_proba(x)[:, 1])),
        "accuracy": float(accuracy_score(y, model.predict(x))),
    }
    register_model(
        registry,
        model,
        "churn",
        train_data=train,
        target="churn",
        metrics=metrics,
        description="logistic regression",
        intended_use="Rank retail customers by churn risk for retention offers.",
        limitations="Not for credit decisions; trained on synthetic data.",
    )
    register_model(registry, model, "churn", train_data=train, target="churn")
    reports = VersionReports(registry.store)
    fairness = _fairness_body(model, holdout)
    reports.save("churn", "1", "fairness", fairness, actor="auditor")
    # The gates of the promotion itself: a stored policy with an AUC floor, scored on the holdout.
    policy = tmp_path / "policy.yaml"
    policy.write_text("metrics: {auc: {min: 0.6}}\n")
    holdout_file = tmp_path / "holdout.csv"
    holdout.to_csv(holdout_file, index=False)
    assert run(capsys, "policy", "set", "churn", str(policy))[0] == 0
    code, _, err = run(
        capsys,
        "promote",
        "churn",
        "1",
        "--reason",
        "first release after review",
        "--data",
        str(holdout_file),
        "--label",
        "churn",
    )
    assert code == 0, err
    return {
        "registry": registry,
        "holdout": holdout,
        "metrics": metrics,
        "fairness": fairness,
        "model": model,
    }


class _Card(HTMLParser):
    """Collects data-key/data-value pairs, section states, svg count and every src/href."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.texts: dict[str, str] = {}
        self.states: dict[str, str] = {}
        self.links: list[str] = []
        self.tags: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        self.links += [a[k] for k in ("src", "href") if k in a]
        if "data-section" in a:
            self.states[a["data-section"]] = a["data-state"]
        if "data-key" in a:
            if "data-value" in a:
                self.values[a["data-key"]] = a["data-value"]
            self._open.append(a["data-key"])
            self.texts[a["data-key"]] = ""

    def handle_data(self, data: str) -> None:
        for key in self._open:
            self.texts[key] += data

    def handle_endtag(self, tag: str) -> None:
        if tag in {"td", "span", "p"} and self._open:
            self._open.pop()


def _screenshot(page: Path, shot: Path, profile: Path) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI installs Debian's chromium (.ci/run): /usr/bin/chromium is missing")
        pytest.skip("needs a headless browser: apt-get install -y chromium")
    browser = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # a page that needed another host would show it
            "--window-size=1024,3000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert browser.returncode == 0, browser.stderr


def test_the_html_card_of_the_champion_carries_the_registry_fairness_and_audit_figures(
    carded: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry: Registry = carded["registry"]
    page = tmp_path / "card.html"
    code, _, err = run(capsys, "card", "churn@champion", "--format", "html", "--output", str(page))
    assert code == 0, err
    card = _Card()
    card.feed(page.read_text("utf-8"))

    assert list(card.states) == SECTIONS
    no_traffic = {"live"}  # never served: the section says so
    assert {k for k, v in card.states.items() if v == "available"} == set(SECTIONS) - no_traffic
    info = registry.version("churn", "1")
    for name, value in carded["metrics"].items():
        assert json.loads(card.values[f"metrics.{name}"]) == value
    assert card.values["lineage.dataset_sha256"] == info.tags["modelward.dataset.sha256"]
    assert json.loads(card.values["lineage.rows"]) == 1500
    assert card.texts["notes.intended_use"] == "Rank retail customers by churn risk for retention offers."

    stored = carded["fairness"]["features"][0]
    assert json.loads(card.values["fairness.gender.dpd"]) == stored["demographic_parity_difference"]
    assert json.loads(card.values["fairness.gender.eod"]) == stored["equalized_odds_difference"]
    for group in stored["groups"]:
        key = f"fairness.gender.{group['group']}.selection_rate"
        assert json.loads(card.values[key]) == group["selection_rate"]
    validation = VersionReports(registry.store).latest("churn", "1", "validation")
    assert validation is not None
    for gate in validation.body["gates"]:
        assert card.texts[f"gates.{gate['name']}.verdict"] == gate["verdict"]
        if gate["value"] is not None:
            assert json.loads(card.values[f"gates.{gate['name']}.value"]) == gate["value"]
    auc = next(g for g in validation.body["gates"] if g["name"] == "metric:auc")
    assert auc["value"] == pytest.approx(carded["metrics"]["roc_auc"], abs=1e-9)

    promotion = next(e for e in registry.audit.events(subject="churn") if e.action == "promote")
    assert card.texts[f"history.{promotion.seq}.actor"] == promotion.actor == "tester"
    assert card.texts[f"history.{promotion.seq}.reason"] == "first release after review"

    assert card.tags.count("svg") >= 3  # importance, selection rates, reference histograms
    assert not {"script", "link", "img", "iframe"} & set(card.tags)
    assert [u for u in card.links if u.startswith(("http://", "https://", "//"))] == []

    shot = tmp_path / "card.png"
    _screenshot(page, shot, tmp_path / "chromium")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 30_000  # a rendered page of tables and charts, not a blank one


def test_markdown_and_json_carry_the_same_figures(
    carded: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "card", "churn:1", "--json")
    assert code == 0, err
    body = json.loads(out)
    sections = {s["key"]: s for s in body["sections"]}
    assert list(sections) == SECTIONS
    assert sections["metrics"]["data"]["metrics"] == carded["metrics"]
    fairness = sections["fairness"]["data"]["features"][0]
    assert (
        fairness["demographic_parity_ratio"] == carded["fairness"]["features"][0]["demographic_parity_ratio"]
    )
    assert sections["live"]["available"] is False and "not been served" in sections["live"]["missing"]

    code, md, err = run(capsys, "card", "churn:1", "--format", "md")
    assert code == 0, err
    for section in sections.values():
        assert f"## {section['title']}" in md
    auc = carded["metrics"]["roc_auc"]
    assert f"| roc_auc | {auc:.4g} |" in md
    assert f"{fairness['demographic_parity_difference']:.4g}" in md
    assert "Not for credit decisions" in md


def test_model_importance_is_the_models_own_and_permutation_importance_matches_scikit_learn(
    carded: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.inspection import permutation_importance

    code, out, _ = run(capsys, "card", "churn:1", "--json")
    importance = next(s for s in json.loads(out)["sections"] if s["key"] == "importance")["data"]
    assert importance["method"] == "model" and importance["metric"] == "|coef_|"
    coef = np.abs(carded["model"][-1].coef_).mean(axis=0)
    assert max(r["importance"] for r in importance["features"]) == pytest.approx(coef.max())

    holdout = carded["holdout"]
    path = tmp_path / "holdout.parquet"
    holdout.to_parquet(path)
    code, out, err = run(capsys, "card", "churn:1", "--json", "--data", str(path), "--label", "churn")
    assert code == 0, err
    importance = next(s for s in json.loads(out)["sections"] if s["key"] == "importance")["data"]
    assert importance["method"] == "permutation" and importance["rows"] == len(holdout)
    x = holdout.drop(columns=["churn"])
    expected = permutation_importance(
        carded["model"], x, holdout["churn"], scoring="roc_auc", n_repeats=5, random_state=0
    )
    by_name = dict(zip(x.columns, expected.importances_mean, strict=True))
    for row in importance["features"]:
        assert row["importance"] == pytest.approx(by_name[row["feature"]], abs=1e-12)


def test_a_stored_shap_importance_is_what_the_card_ranks_features_by(
    carded: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "holdout.parquet"
    carded["holdout"].to_parquet(path)
    code, _, err = run(
        capsys, "explain", "churn:1", "--global", "--data", str(path), "--rows", "200", "--json"
    )
    assert code == 0, err
    stored = VersionReports(carded["registry"].store).latest("churn", "1", "importance")
    assert stored is not None and stored.body["method"] == "mean_abs_shap"
    code, out, _ = run(capsys, "card", "churn:1", "--json")
    importance = next(s for s in json.loads(out)["sections"] if s["key"] == "importance")["data"]
    assert importance["method"] == "mean_abs_shap"
    assert {r["feature"]: r["importance"] for r in importance["features"]} == pytest.approx(
        stored.body["features"]
    )


def test_card_edit_changes_the_notes_keeps_the_rest_and_is_audited(
    carded: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "card", "edit", "churn:1", "--intended-use", "Retention offers in the EU only."
    )
    assert code == 0, err
    code, out, _ = run(capsys, "card", "churn:1", "--json")
    notes = next(s for s in json.loads(out)["sections"] if s["key"] == "intended_use")["data"]
    assert notes["intended_use"] == "Retention offers in the EU only."
    assert notes["limitations"] == "Not for credit decisions; trained on synthetic data."
    code, out, _ = run(capsys, "audit", "log", "--json")
    edits = [e for e in json.loads(out) if e["action"] == "notes"]
    assert [(e["subject"], e["actor"], e["payload"]) for e in edits] == [
        ("churn:1", "tester", {"intended_use": "Retention offers in the EU only."})
    ]


def test_sections_without_data_say_so(carded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "card", "churn:2", "--json")
    assert code == 0, err
    sections = {s["key"]: s for s in json.loads(out)["sections"]}
    empty = {k for k, s in sections.items() if not s["available"]}
    assert empty == {"intended_use", "metrics", "gates", "fairness", "live"}
    assert "modelward card edit churn:2" in sections["intended_use"]["missing"]
    assert "modelward validate churn:2" in sections["gates"]["missing"]
    assert "modelward fairness churn:2" in sections["fairness"]["missing"]
    assert all(sections[k]["data"] is None for k in empty)
    code, md, _ = run(capsys, "card", "churn:2", "--format", "md")
    assert md.count("_No data: ") == len(empty)


def test_promotion_stores_the_card_with_the_version_and_it_still_loads(
    carded: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from modelward.runtime import load_version

    registry: Registry = carded["registry"]
    code, _, err = run(capsys, "promote", "churn", "2", "--alias", "challenger")
    assert code == 0, err
    info = registry.version("churn", "2")
    stored = json.loads(stored_card(registry, info, "json") or "{}")
    assert (stored["model"], stored["version"], stored["aliases"]) == ("churn", "2", ["challenger"])
    assert "<svg" in (stored_card(registry, registry.version("churn", "1"), "html") or "")
    load_version(registry, info)  # the card beside the pinned files changed no integrity check


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["card", "churn:9"], "version"),
        (["card", "churn:1", "--format", "pdf"], "unknown --format"),
        (["card", "churn:1", "--data", "x.parquet"], "--label"),
        (["card", "edit", "churn:1"], "nothing to change"),
        (["card", "churn:1", "--intended-use", "x"], "card edit"),
    ],
)
def test_card_mistakes_print_one_line_and_exit_1(
    carded: dict[str, Any], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_notes_given_to_register_from_mlflow_and_promotion_through_the_api_reach_the_card(
    carded: dict[str, Any], settings: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow
    import mlflow.sklearn

    import modelward

    registry: Registry = carded["registry"]
    reference = tmp_path / "reference.parquet"
    carded["holdout"].to_parquet(reference)
    with registry.mlflow_context(), mlflow.start_run() as r:
        mlflow.sklearn.log_model(carded["model"], name="model", serialization_format="skops")
    code, out, err = run(
        capsys,
        "register",
        "--from-mlflow",
        f"runs:/{r.info.run_id}/model",
        "--name",
        "imported",
        "--reference",
        str(reference),
        "--target",
        "churn",
        "--intended-use",
        "Offline scoring of the monthly customer file.",
        "--limitations",
        "Unreliable for customers under 21.",
        "--json",
    )
    assert code == 0, err
    version = json.loads(out)["version"]
    promoted = modelward.promote("imported", version, reason="imported for batch scoring", settings=settings)
    stored = json.loads(stored_card(registry, promoted, "json") or "{}")
    notes = next(s for s in stored["sections"] if s["key"] == "intended_use")["data"]
    assert notes["intended_use"] == "Offline scoring of the monthly customer file."
    assert notes["limitations"] == "Unreliable for customers under 21."
    assert stored["aliases"] == ["champion"]


def test_the_time_range_of_the_training_data_is_its_date_column_span(registry: Registry) -> None:
    from modelward.governance.card import build_card

    frame = pd.DataFrame(
        {
            "age": [25, 32, 47, 51, 62, 38, 29, 55],
            "signup": pd.date_range("2025-01-03", periods=8, freq="7D"),
            "churn": [0, 0, 1, 1, 1, 0, 0, 1],
        }
    )
    model = LogisticRegression().fit(frame[["age"]], frame["churn"])
    info = register_model(registry, model, "dated", train_data=frame, target="churn")
    lineage = build_card(registry, info, actor="tester", load_model=False).section("lineage").data
    assert lineage is not None
    assert lineage["time_range"] == {
        "column": "signup",
        "start": "2025-01-03T00:00:00",
        "end": "2025-02-21T00:00:00",
    }
