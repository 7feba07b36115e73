"""Textbook request bodies: a positional list of values in the signature's order, and MLflow's
scoring-server forms (``dataframe_split``, ``dataframe_records``, ``inputs`` as a list), answer
what the keyed forms answer, on the server's own path and on the FastAPI route alike."""

from __future__ import annotations

from typing import Any

import pytest

from tests.serving.conftest import Server, server_env, start_server
from tests.serving.test_predict_api import ROW, ROW2

PREDICT = "/models/churn/predict"


@pytest.fixture(scope="module", params=["fast-path", "fastapi-route"])
def server(request: pytest.FixtureRequest, churn_home: Any) -> Any:
    env = server_env(churn_home, MODELWARD_FAST_PATH="true" if request.param == "fast-path" else "false")
    s = start_server(churn_home, "churn", "--reload-interval", "0", env=env)
    yield s
    s.stop()


def _answers(c: Any, body: dict[str, Any]) -> list[tuple[Any, Any]]:
    r = c.post(PREDICT, json=body)
    assert r.status_code == 200, (body, r.text)
    return [(p["prediction"], p.get("probabilities")) for p in r.json()["predictions"]]


def test_positional_and_mlflow_forms_answer_like_the_keyed_forms(server: Server) -> None:
    with server.client() as c:
        names = [f["name"] for f in c.get("/models/churn").json()["schema"]]
        rows = [ROW, ROW2]
        positional = [[row[n] for n in names] for row in rows]
        keyed = _answers(c, {"instances": rows})
        assert _answers(c, {"features": ROW}) == keyed[:1]
        assert _answers(c, {"features": positional[0]}) == keyed[:1]
        forms = {
            "dataframe_split": {"columns": names, "data": positional},
            "dataframe_records": rows,
            "inputs": rows,
        }
        for member, data in forms.items():
            assert _answers(c, {member: data}) == keyed, member
        shuffled = names[::-1]
        split = {"columns": shuffled, "data": [[row[n] for n in shuffled] for row in rows]}
        assert _answers(c, {"dataframe_split": split}) == keyed
        assert _answers(c, {"dataframe_split": {"data": positional}}) == keyed  # the signature's order
        assert _answers(c, {"instances": positional}) == keyed
        assert _answers(c, {"inputs": positional}) == keyed


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"features": [42, 3]}, "'features' as a list has 2 values for"),
        (
            {"dataframe_split": {"columns": ["age"], "data": [[1, 2]]}},
            "row 0 of 'dataframe_split.data' has 2",
        ),
        ({"dataframe_split": [1, 2]}, "'dataframe_split' must be an object with 'columns' and 'data'"),
        ({"dataframe_records": {"age": 1}}, "'dataframe_records' must be a list of objects"),
        ({"dataframe_split": {"data": [[1]], "extra": 1}}, "'dataframe_split' has unknown member(s) 'extra'"),
    ],
    ids=["short-list", "split-width", "split-not-object", "records-not-list", "split-extra"],
)
def test_a_malformed_textbook_body_gets_a_422_naming_the_problem(
    server: Server, body: dict[str, Any], detail: str
) -> None:
    with server.client() as c:
        r = c.post(PREDICT, json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert detail in r.json()["detail"], r.json()
