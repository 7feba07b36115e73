"""Tables on an 80-column terminal: no line wider than the terminal, no header or word cut in pieces
("mode/l", "descr/iptio/n"), ids whole; less important columns are left out instead."""

from __future__ import annotations

import json
import time
import uuid

import pandas as pd
import pytest

from modelward.cli import main
from modelward.registry import Registry, register_model
from modelward.store.tables import predictions


@pytest.fixture
def churn(registry: Registry, churn_models: dict, churn_frame: pd.DataFrame) -> Registry:
    for model, description in (("logreg", "churn logistic regression"), ("forest", "churn random forest")):
        register_model(
            registry,
            churn_models[model],
            "churn",
            train_data=churn_frame,
            target="churn",
            description=description,
        )
    registry.promote("churn", 1, reason="first model")
    registry.promote("churn", 2, "challenger", reason="candidate for an A/B test")
    return registry


@pytest.fixture(autouse=True)
def eighty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def table(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    # table lines; show's header lines soft-wrap on purpose (a sha256 stays whole for copying)
    assert max(len(line) for line in out.splitlines() if line[:1] in "┏┃┡│└") <= 80, out
    return out


def words(out: str) -> set[str]:
    return {w for line in out.splitlines() for w in line.replace("│", " ").replace("┃", " ").split()}


def test_registry_tables_keep_headers_and_words_whole(
    churn: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    out = words(table(capsys, "versions", "churn"))
    assert {
        "version",
        "aliases",
        "model",
        "status",
        "description",
        "Pipeline",
        "champion",
        "challenger",
    } <= out
    assert {"logistic", "regression", "forest"} <= out
    out = words(table(capsys, "models"))
    assert {"model", "latest", "aliases", "churn", "challenger→2,", "champion→1"} <= out
    out = words(table(capsys, "show", "churn", "--quick"))
    assert {"feature", "summary", "estimated_salary", "categories"} <= out
    assert "1.049e+05" in out  # a numeric summary on one line, not broken before its value


def test_the_audit_log_wraps_details_between_words(
    churn: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    out = table(capsys, "audit", "log")
    found = words(out)
    assert {"seq", "action", "subject", "details", "register", "promote", "churn:1", "churn:2"} <= found
    assert {"alias:", "champion,", "reason:", "first", "model,"} <= found
    assert '"' not in out  # details read as "key: value", not JSON


def test_prediction_tail_keeps_request_ids_whole(churn: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    rows = [
        {
            "request_id": rid,
            "ts": time.time() - 10 + i,
            "model": "churn",
            "version": "1",
            "arm": "primary",
            "routing_key": None,
            "inputs": "{}",
            "outputs": json.dumps({"prediction": 1, "probabilities": {"0": 0.25, "1": 0.75}}),
            "latency_ms": 2.5,
            "error": None,
        }
        for i, rid in enumerate(ids)
    ]
    with churn.store.write() as conn:
        conn.execute(predictions.insert(), rows)
    found = words(table(capsys, "predictions", "tail", "churn"))
    assert set(ids) <= found
    assert {"request", "id", "version", "prediction"} <= found
