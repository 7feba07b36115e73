"""Consent over HTTP on a real server: requests without it are answered, logged without their inputs
and marked, left out of live profiles and of exports; the consent member never reaches the model;
erasure over HTTP and with ``modelward forget``."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelward.config import Settings
from modelward.errors import ConfigError
from modelward.serving import create_app
from tests.monitoring.test_prediction_log import wait_until
from tests.serving.conftest import Server, server_env, start_server
from tests.serving.test_predict_api import ROW


@pytest.fixture(scope="module")
def served(churn_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("consent") / "home"
    shutil.copytree(churn_home, home, ignore=shutil.ignore_patterns("server-*.log"))
    server = start_server(home, "churn", "--reload-interval", "0")
    yield server
    server.stop()


def _rows(home: Path, ids: list[str]) -> dict[str, tuple[dict[str, object], bool]]:
    """request id -> (logged inputs, consent), once every one of ``ids`` is logged."""
    found: dict[str, tuple[dict[str, object], bool]] = {}

    def logged() -> bool:
        with sqlite3.connect(home / "modelward.db") as db:
            marks = ",".join("?" * len(ids))
            query = (
                f"SELECT request_id, inputs, consent FROM modelward_predictions WHERE request_id IN ({marks})"
            )
            for rid, inputs, consent in db.execute(query, ids):
                found[rid] = (json.loads(inputs), bool(consent))
        return len(found) == len(ids)

    wait_until(logged, timeout=30)
    return found


def _fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_requests_without_consent_are_answered_and_logged_without_inputs(served: Server) -> None:
    asked = {
        _fresh("header"): ("/models/churn/predict", {"features": ROW}, {"X-Consent": "false"}),
        _fresh("member"): ("/models/churn/predict", {"features": ROW, "consent": False}, {}),
        _fresh("rows"): ("/models/churn/predict", {"instances": [ROW], "consent": False}, {}),
        _fresh("named"): ("/models/churn/versions/1/predict", {"features": ROW, "consent": False}, {}),
        _fresh("yes"): ("/models/churn/predict", {"features": ROW, "consent": True}, {"X-Consent": "TRUE"}),
        _fresh("plain"): ("/models/churn/predict", {"features": ROW}, {}),
    }
    ids: list[str] = []
    with served.client() as c:
        for rid, (path, body, headers) in asked.items():
            r = c.post(path, json=body, headers={**headers, "X-Request-ID": rid})
            assert r.status_code == 200, r.text
            [row] = r.json()["predictions"]
            assert row["prediction"] in (0, 1)
            ids.append(row["request_id"])
    rows = _rows(served.home, ids)
    without = [i for i in ids if not i.startswith(("yes", "plain"))]
    assert all(rows[i] == ({}, False) for i in without), rows
    for i in set(ids) - set(without):
        inputs, consent = rows[i]
        assert consent and inputs["age"] == ROW["age"]


def test_the_open_inference_protocol_takes_consent_from_its_parameters(served: Server) -> None:
    rid = _fresh("v2")
    inputs = [
        {"name": k, "datatype": "BYTES" if isinstance(v, str) else "FP64", "shape": [1], "data": [v]}
        for k, v in ROW.items()
    ]
    with served.client() as c:
        r = c.post(
            "/v2/models/churn/infer", json={"id": rid, "inputs": inputs, "parameters": {"consent": False}}
        )
        bad = c.post("/v2/models/churn/infer", json={"inputs": inputs}, headers={"X-Consent": "perhaps"})
    assert r.status_code == 200, r.text
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")
    assert _rows(served.home, [rid]) == {rid: ({}, False)}


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/models/churn/predict", {"features": ROW}, {"X-Consent": "maybe"}),
        ("/models/churn/predict", {"features": ROW, "consent": "no"}, {}),
        ("/models/churn/predict", {"features": ROW, "consent": False}, {"X-Consent": "true"}),
        ("/models/churn/predict", {"instances": [ROW], "consent": 0}, {}),
        ("/models/churn/versions/1/predict", {"features": ROW}, {"X-Consent": "maybe"}),
        ("/models/churn/versions/1/predict", {"features": ROW, "consent": None}, {}),
    ],
)
def test_a_consent_that_is_not_true_or_false_is_a_400_problem(
    served: Server, path: str, body: dict[str, object], headers: dict[str, str]
) -> None:
    with served.client() as c:
        r = c.post(path, json=body, headers=headers)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "consent" in r.json()["detail"].lower()


def test_export_leaves_out_requests_without_consent_and_says_how_many(served: Server, tmp_path: Path) -> None:
    kept, private = _fresh("kept"), _fresh("private")
    with served.client() as c:
        for rid, consent in ((kept, True), (private, False)):
            body = {"features": ROW, "request_id": rid, "consent": consent}
            assert c.post("/models/churn/predict", json=body).status_code == 200
    _rows(served.home, [kept, private])
    out = tmp_path / "export.csv"
    done = subprocess.run(
        ["modelward", "predictions", "export", "churn", "-o", str(out), "--json"],
        env=served.env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    with out.open() as f:
        exported = {row["request_id"] for row in csv.DictReader(f)}
    assert kept in exported and private not in exported
    assert summary["rows"] == len(exported) and summary["excluded_without_consent"] >= 1


def test_with_consent_false_by_default_a_request_that_does_not_say_is_not_kept_or_profiled(
    home: Path,
) -> None:
    env = server_env(home, MODELWARD_CONSENT_DEFAULT="false", MODELWARD_CONSENT_HEADER="Privacy-Consent")
    server = start_server(home, "churn", "--reload-interval", "0", env=env)
    silent, agreed = [_fresh("silent") for _ in range(3)], [_fresh("agreed") for _ in range(2)]
    db = home / "modelward.db"
    with sqlite3.connect(db) as conn:
        profiled_before = conn.execute(
            "SELECT coalesce(sum(rows), 0) FROM modelward_live_profiles"
        ).fetchone()[0]
    try:
        with server.client() as c:
            for rid in silent:
                assert (
                    c.post("/models/churn/predict", json={"features": ROW, "request_id": rid}).status_code
                    == 200
                )
            for rid in agreed:
                r = c.post(
                    "/models/churn/predict",
                    json={"features": ROW, "request_id": rid},
                    headers={"Privacy-Consent": "true"},
                )
                assert r.status_code == 200
        rows = _rows(home, silent + agreed)
    finally:
        server.stop()  # live profiles are written when their bucket ends, or at shutdown
    assert all(rows[rid] == ({}, False) for rid in silent)
    assert all(rows[rid][1] and rows[rid][0]["age"] == ROW["age"] for rid in agreed)
    with sqlite3.connect(db) as conn:
        profiled = conn.execute("SELECT coalesce(sum(rows), 0) FROM modelward_live_profiles").fetchone()[0]
    assert profiled - profiled_before == len(agreed)


def test_redacting_requests_without_consent_needs_redaction_rules(churn_home: Path) -> None:
    with pytest.raises(ConfigError, match="MODELWARD_LOG_REDACT"):
        create_app(Settings(home=churn_home, consent_without="redact"), ["churn"])


def test_redact_mode_logs_inputs_of_requests_without_consent_through_the_rules(home: Path) -> None:
    env = server_env(home, MODELWARD_CONSENT_WITHOUT="redact", MODELWARD_LOG_REDACT="geography=hash,age=drop")
    server = start_server(home, "churn", "--reload-interval", "0", env=env)
    rid = _fresh("redacted")
    try:
        with server.client() as c:
            body = {"features": ROW, "request_id": rid}
            assert (
                c.post("/models/churn/predict", json=body, headers={"X-Consent": "false"}).status_code == 200
            )
        ((inputs, consent),) = _rows(home, [rid]).values()
    finally:
        server.stop()
    assert not consent
    assert "age" not in inputs and str(inputs["geography"]).startswith("hmac:")
    assert inputs["tenure"] == ROW["tenure"]


def _modelward(server: Server, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["modelward", *argv], env=server.env, capture_output=True, text=True)


def test_forget_erases_a_persons_predictions_and_labels_and_the_chain_verifies(served: Server) -> None:
    by_id, by_key = _fresh("forget-id"), _fresh("forget-key")
    person = {**ROW, "age": 93, "balance": 4321.5}  # the values that single this person out
    with served.client() as c:
        assert c.post("/models/churn/predict", json={"features": ROW, "request_id": by_id}).status_code == 200
        assert (
            c.post("/models/churn/predict", json={"features": person, "request_id": by_key}).status_code
            == 200
        )
    _rows(served.home, [by_id, by_key])
    with served.client() as c:
        labels = {"items": [{"request_id": by_id, "label": 1}, {"request_id": by_key, "label": 0}]}
        assert c.post("/feedback", json=labels).status_code == 200

    first = _modelward(served, "forget", "--request-id", by_id, "--yes", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) | {"audit_seq": None} == {
        "predictions": 1,
        "feedback": 1,
        "requests": 1,
        "audit_seq": None,
    }
    again = _modelward(served, "forget", "--request-id", by_id, "--yes", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["predictions"] == 0

    keyed = _modelward(served, "forget", "--key", "balance=4321.5", "--model", "churn", "--yes", "--json")
    assert keyed.returncode == 0, keyed.stderr
    assert json.loads(keyed.stdout)["predictions"] == 1 and json.loads(keyed.stdout)["feedback"] == 1

    with sqlite3.connect(served.home / "modelward.db") as db:
        for table in ("modelward_predictions", "modelward_feedback"):
            left = db.execute(f"SELECT count(*) FROM {table} WHERE request_id IN (?, ?)", (by_id, by_key))
            assert left.fetchone()[0] == 0
    log = _modelward(served, "audit", "log", "--action", "forget", "--json")
    text = log.stdout
    assert by_id not in text and by_key not in text and "4321.5" not in text and "balance" not in text
    assert len(json.loads(text)) >= 3
    verify = _modelward(served, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_forget_without_a_target_or_with_a_bad_key_is_a_one_line_error(served: Server) -> None:
    for argv in (["forget", "--yes"], ["forget", "--key", "balance", "--yes"]):
        done = _modelward(served, *argv)
        assert done.returncode == 1
        assert done.stderr.strip().startswith("error:") and len(done.stderr.strip().splitlines()) == 1


def test_delete_feedback_erases_a_request_and_needs_the_admin_token(served: Server) -> None:
    rid = _fresh("delete")
    with served.client() as c:
        assert c.post("/models/churn/predict", json={"features": ROW, "request_id": rid}).status_code == 200
        _rows(served.home, [rid])
        assert c.post("/feedback", json={"request_id": rid, "label": 1}).status_code == 200
        assert c.delete(f"/feedback/{rid}").status_code == 401
        r = c.delete(f"/feedback/{rid}", headers=served.admin_headers())
        assert r.status_code == 200, r.text
        assert r.json() | {"audit_seq": None} == {
            "request_id": rid,
            "predictions": 1,
            "feedback": 1,
            "requests": 1,
            "audit_seq": None,
        }
        again = c.delete(f"/feedback/{rid}", headers=served.admin_headers())
    assert again.status_code == 200 and again.json()["predictions"] == 0 and again.json()["feedback"] == 0
