"""Registering scans the training data: a warning by default, a refusal when the setting or the
model's policy says so, nothing when off; the scan is kept with the version and `show` prints it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import modelward
from modelward.cli import main
from modelward.config import Settings
from modelward.errors import RegistrationError
from modelward.governance.reports import VersionReports
from modelward.store import Store


def _with_emails(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["contact"] = [f"user{i % 40}@example.com" for i in range(len(out))]
    return out


def _model(frame: pd.DataFrame) -> object:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=200).fit(frame[["age", "tenure"]], frame["churn"])


def _reports(settings: Settings) -> VersionReports:
    store = Store(settings.resolved_database_url).open()
    store.migrate()
    return VersionReports(store)


def test_register_warns_and_keeps_the_scan_with_the_version(
    settings: Settings, churn_frame: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _with_emails(churn_frame[["age", "tenure", "churn"]])
    with pytest.warns(
        UserWarning, match=r"training data of churn holds personal data: email 2000 \(column contact\)"
    ):
        info = modelward.register(_model(data), "churn", train_data=data, target="churn", settings=settings)
    stored = _reports(settings).latest("churn", info.version, "pii")
    assert stored is not None
    assert stored.body["found"] and stored.body["mode"] == "warn"
    assert stored.body["totals"] == {"email": 2000}
    assert "user1@example.com" not in json.dumps(stored.body)  # examples are masked
    assert main(["show", "churn:1", "--quick", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["pii"]["totals"] == {"email": 2000}
    assert main(["show", "churn:1", "--quick"]) == 0
    assert "found in the training data: email 2000 (columns contact)" in capsys.readouterr().out


def test_register_of_clean_data_records_a_clean_scan(settings: Settings, churn_frame: pd.DataFrame) -> None:
    data = churn_frame[["age", "tenure", "churn"]]
    info = modelward.register(_model(data), "churn", train_data=data, target="churn", settings=settings)
    stored = _reports(settings).latest("churn", info.version, "pii")
    assert stored is not None and not stored.body["found"] and stored.body["rows"] == len(data)


def test_the_setting_refuses_or_turns_the_scan_off(
    settings: Settings, churn_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _with_emails(churn_frame[["age", "tenure", "churn"]])
    monkeypatch.setenv("MODELWARD_PII_ON_REGISTER", "refuse")
    with pytest.raises(RegistrationError, match=r"not registering churn: .*MODELWARD_PII_ON_REGISTER=refuse"):
        modelward.register(_model(data), "churn", train_data=data, target="churn", settings=Settings())
    monkeypatch.setenv("MODELWARD_PII_ON_REGISTER", "off")
    info = modelward.register(_model(data), "churn", train_data=data, target="churn", settings=Settings())
    assert info.version == "1"  # nothing was registered by the refused call
    assert _reports(settings).latest("churn", "1", "pii") is None


def test_a_policy_saying_pii_refuse_refuses(
    settings: Settings, churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    data = _with_emails(churn_frame[["age", "tenure", "churn"]])
    _reports(settings).set_policy("churn", "pii: refuse\n", actor="tester")
    path = tmp_path / "train.csv"
    data.to_csv(path, index=False)
    with pytest.raises(RegistrationError, match="its policy says pii: refuse"):
        modelward.register(_model(data), "churn", train_data=path, target="churn", settings=settings)
    _reports(settings).set_policy("other", "pii: off\n", actor="tester")
    with pytest.warns(UserWarning, match="holds personal data"):  # a policy cannot loosen the setting
        modelward.register(_model(data), "other", train_data=path, target="churn", settings=settings)
