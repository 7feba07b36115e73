"""With e-mail redaction configured, a served request's e-mail address never reaches the store (the
SQLite file and its WAL are read byte by byte), two requests with the same address share one token,
and a kind rule drops a free-text field holding a card number."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest

from modelward.config import Settings
from tests.serving.conftest import server_env, start_server
from tests.serving.test_prediction_log_serving import _settled

SECRET = "redaction-key-for-tests"


def _register(home: Path, churn_frame: pd.DataFrame) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    import modelward

    data = churn_frame[["age", "tenure", "churn"]].copy()
    data["email"] = [f"person{i % 30}@training.example" for i in range(len(data))]
    data["note"] = "no comment"
    model = Pipeline(
        [
            ("pick", ColumnTransformer([("num", "passthrough", ["age", "tenure"])])),
            ("model", LogisticRegression(max_iter=200)),
        ]
    ).fit(data.drop(columns=["churn"]), data["churn"])
    settings = Settings(
        home=home, actor="tester", tracking_uri=f"sqlite:///{home / 'mlflow.db'}", pii_on_register="off"
    )
    modelward.register(model, "contact", train_data=data, target="churn", settings=settings)
    modelward.promote("contact", 1, settings=settings)


def _store_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.glob("modelward.db*"))


@pytest.mark.parametrize("log_process", ["true", "false"])
def test_a_redacted_email_never_reaches_the_store_and_equal_emails_share_a_token(
    tmp_path: Path, churn_frame: pd.DataFrame, log_process: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _register(home, churn_frame)
    env = server_env(
        home,
        MODELWARD_LOG_REDACT="email=hash,kind:card=drop",
        MODELWARD_LOG_REDACT_SECRET=SECRET,
        MODELWARD_LOG_PROCESS=log_process,
        MODELWARD_PROFILE_BUCKET_SECONDS="1",
    )
    server = start_server(home, "contact", "--reload-interval", "0", env=env)
    bodies = [
        {"age": 40, "tenure": 2, "email": "alice.secret@private.example", "note": "hello"},
        {"age": 50, "tenure": 5, "email": "alice.secret@private.example", "note": "card 4111 1111 1111 1111"},
        {"age": 60, "tenure": 7, "email": "bob.hidden@private.example", "note": "bye"},
    ]
    try:
        with server.client() as c:
            for i, body in enumerate(bodies):
                r = c.post(
                    "/models/contact/predict", json={"features": body}, headers={"X-Request-ID": f"r{i}"}
                )
                assert r.status_code == 200, r.text
        _settled(server.url)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # live profiles are written when their bucket ends
            with sqlite3.connect(home / "modelward.db") as db:
                if db.execute("select count(*) from modelward_live_profiles").fetchone()[0]:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError("no live profile was written")
        raw = _store_bytes(home)  # while the server runs: the WAL still holds recent pages
    finally:
        server.stop()
    raw += _store_bytes(home)
    for secret in (b"alice.secret", b"bob.hidden", b"private.example", b"4111 1111"):
        assert secret not in raw, secret
    with sqlite3.connect(home / "modelward.db") as db:
        rows = db.execute("select request_id, inputs from modelward_predictions order by id").fetchall()
    inputs = {rid.split("-")[0]: json.loads(text) for rid, text in rows}
    assert inputs["r0"]["email"] == inputs["r1"]["email"] != inputs["r2"]["email"]
    assert inputs["r0"]["email"].startswith("hmac:")
    assert inputs["r0"]["note"] == "hello"
    assert inputs["r1"].get("note") is None  # the field holding a card number is dropped
    assert inputs["r0"]["age"] == 40
